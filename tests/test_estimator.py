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
    import pandas as pd

    for table in ({"text": ["a", "b"]}, pd.DataFrame({"text": ["a", "b"]})):  # iterated, they gave their keys
        with pytest.raises(BatError, match="its text column"):
            BAT().fit(table)
    with pytest.raises(BatError, match="document 1 is a int"):
        fitted.transform(["fine", 3])
    with pytest.raises(BatError, match="seed must be a whole number"):
        BAT(seed="first").fit(["a text"] * 20)
    with pytest.raises(BatError, match="not fitted"):
        BAT().transform(["text"])
    with pytest.raises(BatError, match="not a saved BAT model"):
        BAT.load(tmp_path)
    assert cli(["transform", str(tmp_path), str(Path(__file__)), "--out", str(tmp_path / "t.csv")]) == 2


@pytest.mark.parametrize("params, needle", [
    ({"n_topics": "5"}, "n_topics must be a whole number, not '5'"),
    ({"n_topics": 2.5}, "n_topics must be a whole number"),
    ({"epochs": None}, "epochs must be a whole number"),
    ({"seed": -1}, "seed must be a whole number from 0"),
    ({"seed": 2**70}, "seed must be a whole number from 0"),
    ({"gamma": "0.5"}, "gamma must be a number"),  # named as the parameter, not as the engine's setting
    ({"temperature": "1"}, "temperature must be a number"),
    ({"lam": True}, "lam must be a number"),
    ({"vocab_size": 10.5}, "vocab_size must be a whole number"),
])
def test_parameters_of_the_wrong_kind_are_plain_errors(params, needle):
    """They reached numpy or torch and came back as TypeError or ValueError tracebacks."""
    with pytest.raises(BatError, match=needle):
        BAT(**params).settings()


def test_whole_numbers_given_as_floats_or_numpy_integers_are_taken():
    cfg = BAT(n_topics=4.0, seed=np.int64(7), epochs=np.int32(3)).settings()
    assert (cfg.student.n_topics, cfg.student.seed, cfg.student.epochs) == (4, 7, 3)
    assert all(type(v) is int for v in (cfg.student.n_topics, cfg.student.seed, cfg.student.epochs))


def test_grid_arguments_of_the_wrong_kind_are_plain_errors():
    from bat_core.config import check_lambdas, check_seeds
    from bat_core.grid import seed_list

    for bad in (0.5, "0.5"):
        with pytest.raises(BatError, match="λ values as a list"):
            check_lambdas(bad)
    for bad, needle in ((3, "seeds as a list"), (["x"], "not 'x'"), ([None], "not None"), ([-1], "not -1")):
        with pytest.raises(BatError, match=needle):
            check_seeds(bad)
    assert check_seeds([3, 1.0, 3]) == [3, 1]
    with pytest.raises(BatError, match="number of seeds"):
        seed_list("3")
    with pytest.raises(BatError, match="from 1 to 1,000"):  # a billion seeds filled the memory without a word
        seed_list(10**9)
    with pytest.raises(BatError, match="at most 1,000"):
        check_seeds(range(2000))


def test_a_damaged_or_tampered_model_is_a_plain_error(fitted, tmp_path):
    """Every way a saved model's files can be wrong is a BatError at load, never a raw exception at load or at the
    first transform; no file is unpickled."""
    import json
    import os

    good = fitted.save(tmp_path / "good")

    def copy(name: str) -> Path:
        import shutil

        return Path(shutil.copytree(good, tmp_path / name))

    def edit(name: str, change) -> Path:
        p = copy(name)
        meta = json.loads((p / "model.json").read_text())
        (p / "model.json").write_text(json.dumps(change(meta)))
        return p

    cases = {
        "truncated": lambda: (p := copy("truncated"), os.truncate(p / "arrays.safetensors", 100))[0],
        "list": lambda: edit("list", lambda m: [1]),
        "version": lambda: edit("version", lambda m: {**m, "version": "abc"}),
        "no params": lambda: edit("noparams", lambda m: {k: v for k, v in m.items() if k != "params"}),
        "params list": lambda: edit("paramslist", lambda m: {**m, "params": [1]}),
        "duplicate words": lambda: edit("dupes", lambda m: {**m, "vocabulary": [m["vocabulary"][0]] * len(
            m["vocabulary"])}),
        "other student": lambda: (p := copy("student"), (p / "run.json").write_text(
            (p / "run.json").read_text().replace('"emb_dim": 300', '"emb_dim": 7')))[0],
        "run.json list": lambda: (p := copy("runlist"), (p / "run.json").write_text("[1]"))[0],
    }
    for what, make in cases.items():
        with pytest.raises(BatError, match="save it again|save the model again|version"):
            BAT.load(make())
        assert what  # (the case's name shows in the traceback's locals if one fails)
    fifo = copy("fifo")
    (fifo / "model.json").unlink()
    os.mkfifo(fifo / "model.json")
    with pytest.raises(BatError, match="not a regular file"):  # a FIFO blocked the read forever
        BAT.load(fifo)
    with pytest.raises(BatError, match="a path"):
        BAT.load(None)
    np.testing.assert_allclose(BAT.load(good).transform(["space nasa"]), fitted.transform(["space nasa"]))


def test_a_damaged_run_in_the_cache_is_trained_again(texts, tmp_path):
    """A truncated arrays file in the run cache made every later fit crash with a SafetensorError."""
    import os

    model = BAT(n_topics=3, lam=0, epochs=3, cache_dir=tmp_path).fit(texts[0])
    (arrays,) = (tmp_path / "runs").glob("*/arrays.safetensors")
    os.truncate(arrays, 100)
    again = BAT(n_topics=3, lam=0, epochs=3, cache_dir=tmp_path).fit(texts[0])
    np.testing.assert_allclose(again.run_.beta, model.run_.beta, atol=1e-5)


def test_folders_that_cannot_be_written_are_plain_errors(fitted, tmp_path):
    with pytest.raises(BatError, match="is a file"):
        BAT(n_topics=3, lam=0, epochs=2, cache_dir=Path(__file__)).fit(["a text about space"] * 20)
    with pytest.raises(BatError, match="cannot (create|write)"):
        fitted.save("/proc/bat-model")


def test_a_cache_folder_under_home_is_expanded(texts, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    BAT(n_topics=3, lam=0, epochs=2, cache_dir="~/bat-cache").fit(texts[0])
    assert (tmp_path / "bat-cache" / "runs").is_dir() and not Path("~").exists()


def test_more_topics_than_words_is_a_plain_error():
    """K = 100 over 40 words trained to topic uniqueness 0.04 without a word said."""
    rng = np.random.default_rng(0)
    words = ["apple", "river", "stone", "cloud", "green", "music", "table", "light", "paper", "horse", "ocean", "metal"]
    texts = [" ".join(rng.choice(words, 8)) for _ in range(300)]
    with pytest.raises(BatError, match="20 topics over a vocabulary of 12 words"):
        BAT(n_topics=20, lam=0, epochs=1).fit(texts)


def test_a_saved_model_says_what_its_weights_are(fitted, tmp_path):
    """set_params(n_topics=7) after a K = 3 fit saved "7 topics" beside 3 topics' weights; a model.json of another
    model, or a run.json of another run, loaded as if it described these weights."""
    import json

    from sklearn.base import clone

    model = clone(fitted)
    model.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    model.set_params(n_topics=7)
    loaded = BAT.load(model.save(tmp_path / "m"))
    assert loaded.n_topics == 3 and loaded.transform(["space"]).shape == (1, 3)
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["params"]["n_topics"] = 6
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(BatError, match="says 6 topics.*the weights are 3 topics"):
        BAT.load(tmp_path / "m")
    run = fitted.save(tmp_path / "r") / "run.json"
    run.write_text(run.read_text().replace('"n_topics": 3', '"n_topics": 6'))
    with pytest.raises(BatError, match="run.json describes 6 topics"):
        BAT.load(tmp_path / "r")
