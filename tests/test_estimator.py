"""The estimator on raw texts: scikit-learn's conventions, fit → transform → save → load → the same θ, the CLI too."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from teacher_fixtures import topic_docs

from bat_core import BAT, BatError
from bat_core.cli import main as cli


@pytest.fixture(scope="module")
def texts() -> tuple[list[str], list[str]]:
    docs, _ = topic_docs(30, seed=4)
    new, _ = topic_docs(4, seed=99)  # texts the model never saw
    return docs, new


@pytest.fixture(scope="module")
def fitted(texts, tmp_path_factory) -> BAT:
    cache = tmp_path_factory.mktemp("cache")
    return BAT(n_topics=3, lam=0.5, teacher="lexical", epochs=8, cache_dir=cache).fit(texts[0])


def test_init_stores_parameters_only_and_clones():
    model = BAT(n_topics=7, lam=0.3, teacher="nonsense")  # validated by fit, not by __init__ (scikit-learn)
    assert model.get_params()["n_topics"] == 7 and not hasattr(model, "run_")
    twin = clone(model)
    assert twin.get_params() == model.get_params() and twin is not model
    with pytest.raises(BatError, match="teacher must be one of"):
        model.fit(["a b c"] * 30)


def test_fit_returns_self_with_fitted_attributes(fitted):
    assert isinstance(fitted, BAT)
    assert fitted.components_.shape == (3, len(fitted.vocabulary_))
    np.testing.assert_allclose(fitted.components_.sum(axis=1), 1, rtol=1e-5)
    assert fitted.teacher_ == "nearest neighbours by shared words (TF-IDF)"
    assert {"test_npmi", "tu"} <= set(fitted.metrics_)
    topics = fitted.get_topics(n_words=4)
    assert len(topics) == 3 and all(len(t) == 4 and set(t) <= set(fitted.vocabulary_) for t in topics)


def test_transform_save_load_gives_the_same_theta_without_pickle(fitted, texts, tmp_path):
    theta = fitted.transform(texts[1])
    assert theta.shape == (len(texts[1]), 3)
    np.testing.assert_allclose(theta.sum(axis=1), 1, rtol=1e-5)
    assert theta.std(axis=0).max() > 0.05  # documents of different subjects get different proportions
    fitted.save(tmp_path / "m")
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == ["arrays.safetensors", "model.json", "run.json"]  # no pickle anywhere
    loaded = BAT.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.transform(texts[1]), theta, atol=1e-6)
    assert loaded.get_topics() == fitted.get_topics() and loaded.get_params() == {
        **fitted.get_params(), "cache_dir": str(fitted.cache_dir)}
    fitted.save(tmp_path / "m")  # a saved model's own folder may be replaced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(BatError, match="already holds other files"):
        fitted.save(tmp_path / "mine")


def test_the_cli_gives_the_same_theta(fitted, texts, tmp_path):
    fitted.save(tmp_path / "m")
    with open(tmp_path / "new.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows(enumerate(texts[1]))
    assert cli(["transform", str(tmp_path / "m"), str(tmp_path / "new.csv"), "--out", str(tmp_path / "t.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "t.csv", encoding="utf-8")))
    got = np.array([[float(r[f"topic_{k + 1}"]) for k in range(3)] for r in rows])
    np.testing.assert_allclose(got, fitted.transform(texts[1]), atol=1e-6)


def test_lambda_zero_is_the_baseline_of_the_same_class(texts, tmp_path):
    base = BAT(n_topics=3, lam=0, teacher="lexical", epochs=3, cache_dir=tmp_path).fit(texts[0])
    assert base.teacher_ == "" and base.run_.lam == 0 and base.run_.config["teacher_key"] is None


def test_bad_input_is_a_plain_error(fitted, tmp_path):
    with pytest.raises(BatError, match="not a single string"):
        BAT().fit("one long string")
    with pytest.raises(BatError, match="document 1 is a int"):
        fitted.transform(["fine", 3])
    with pytest.raises(BatError, match="seed must be an integer"):
        BAT(seed="first").fit(["a text"] * 20)
    with pytest.raises(BatError, match="not fitted"):
        BAT().transform(["text"])
    with pytest.raises(BatError, match="not a saved BAT model"):
        BAT.load(tmp_path)
    assert cli(["transform", str(tmp_path), str(Path(__file__)), "--out", str(tmp_path / "t.csv")]) == 2
