"""Run storage round trip, the run cache, and the CLI contract (summary.json, one-line errors with status 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bat_core.config import DistillConfig, StudentConfig, TeacherConfig
from bat_core.grid import execute, plan
from bat_core.runs.store import Run, RunStore

ROOT = Path(__file__).resolve().parents[1]


def test_run_roundtrip_and_cache(demo_corpus, tmp_path):
    cfg = StudentConfig(n_topics=6, epochs=3)
    p = plan(demo_corpus, TeacherConfig(), cfg, DistillConfig(), [0.0], [5])
    assert not p.needs_teacher and p.steps == ["λ=0 seed=5"]
    first = execute(p, tmp_path)
    run = first.runs[0]
    assert first.cached == [False] and run.key == p.members[0].key and first.teacher is None
    loaded = Run.load(tmp_path / "runs" / run.key)
    assert np.array_equal(loaded.beta, run.beta) and loaded.metrics == json.loads(json.dumps(run.metrics))
    assert loaded.topics == run.topics and loaded.lam == 0.0 and loaded.seed == 5
    assert np.allclose(loaded.topic_word().sum(1), 1)
    assert loaded.reconstruction(np.array([0, 1])).shape == (2, demo_corpus.vocab_size)
    # second call is a cache hit: same object content, no retraining (the file is not rewritten)
    mtime = (tmp_path / "runs" / run.key / "run.json").stat().st_mtime_ns
    again = execute(p, tmp_path)
    assert again.cached == [True] and again.runs[0].key == run.key
    assert (tmp_path / "runs" / run.key / "run.json").stat().st_mtime_ns == mtime
    assert [r.key for r in RunStore(tmp_path / "runs").runs(demo_corpus.hash)] == [run.key]
    # no pickle anywhere in a run folder
    assert sorted(p.name for p in (tmp_path / "runs" / run.key).iterdir()) == ["arrays.safetensors", "run.json"]


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "bat_core", *args], cwd=cwd or ROOT, capture_output=True, text=True,
                          timeout=300)


def test_cli_fit_demo_writes_summary(tmp_path, tiny_bert_dir):
    """The default λ grid (baseline + BAT) end to end, with a tiny random BERT as the teacher to keep it fast."""
    bert = tiny_bert_dir
    p = _cli("fit", "demo", "--out", str(tmp_path / "o"), "--topics", "8", "--epochs", "5", "--seeds", "2",
             "--teacher-model", str(bert), "--teacher-max-length", "64", "--cache-dir", str(tmp_path / "c"), "--quiet",
             "--reference", "wiki")
    assert p.returncode == 0, p.stderr
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    # coherence against the test split, the whole corpus and the outside reference, and which one to read
    c = s["coherence"]
    assert c["reference"]["source"] == "wiki" and c["reference"]["documents"] > 100
    assert {"test_npmi", "corpus_npmi", "reference_npmi", "top_word_df"} <= set(c["by_lambda"]["0.5"])
    assert "paired_reference_npmi_diff_vs_baseline" in c["by_lambda"]["0.5"]
    assert c["read"] == ("reference" if c["test_sparse"] else "test")
    assert any(line.startswith("NPMI λ=0.5: test split") and "reference" in line for line in p.stderr.splitlines())
    assert "Estimated time on this machine" in p.stderr and "took" in p.stderr
    assert s["corpus"]["name"] == "demo" and s["corpus"]["documents"] > 250
    assert len(s["runs"]) == 4 and {r["seed"] for r in s["runs"]} == {121958, 131932}
    assert {r["lam"] for r in s["runs"]} == {0.0, 0.5}
    assert s["teacher"]["mode"] == "frozen" and s["teacher"]["head"] == "knn"
    assert s["teacher"]["dev_perplexity"] > 0 and s["teacher"]["unigram_dev_perplexity"] > 0
    bat = [r for r in s["runs"] if r["lam"] == 0.5]
    assert all(r["teacher_key"] == s["teacher"]["key"] for r in bat)
    assert "paired_test_npmi_diff_vs_baseline" in s["by_lambda"]["0.5"]
    r = s["runs"][0]
    assert len(r["topics"]) == 8 and len(r["topics"][0]) == 10
    for k in ("dev_npmi", "test_npmi", "tu", "wall_time_s", "device"):
        assert k in r
    assert s["by_lambda"]["0"]["test_npmi"]["n"] == 2 and s["by_lambda"]["0.5"]["test_npmi"]["n"] == 2


def _assert_one_line_error(p, needle):
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr and needle in lines[0], lines[0]


class _InProcess:
    """Runs ``main`` in this process (fast) and captures what a subprocess would show."""

    def __init__(self, capsys):
        self.capsys = capsys

    def __call__(self, *args):
        from bat_core.cli import main

        try:
            rc = main(list(args))
        except SystemExit as e:  # argparse errors
            rc = e.code
        err = self.capsys.readouterr().err
        return subprocess.CompletedProcess(args, rc, "", err)


def test_cli_missing_file_in_a_real_process(tmp_path):
    _assert_one_line_error(_cli("fit", str(tmp_path / "missing.txt"), "--out", str(tmp_path)), "no such file")


def test_cli_label_column_reports_downstream_accuracy(tmp_path, capsys):
    import random

    rng = random.Random(0)
    words = {k: [k + "".join(chr(97 + int(c)) for c in f"{i:02d}") for i in range(40)] for k in ("rain", "court")}
    rows = ["text,topic"] + [f'"{" ".join(rng.choice(words[k]) for _ in range(15))}",{k}'
                             for k in ("rain", "court") * 30]
    (tmp_path / "t.csv").write_text("\n".join(rows))
    _cli = _InProcess(capsys)  # noqa: N806
    out = tmp_path / "o"
    p = _cli("fit", str(tmp_path / "t.csv"), "--out", str(out), "--topics", "2", "--epochs", "3", "--lambdas", "0",
             "--label-column", "topic", "--cache-dir", str(tmp_path / "c"), "--quiet")
    assert p.returncode in (0, None), p.stderr
    d = json.loads((out / "summary.json").read_text())["downstream"]
    assert d["labels"] == "column 'topic'" and len(d["runs"]) == 1 and 0 <= d["runs"][0]["accuracy"] <= 1
    assert d["by_lambda"]["0"]["accuracy"]["n"] == 1 and "Downstream (column 'topic')" in p.stderr
    assert "only 6 dev and 6 test documents" in p.stderr and "mostly noise" in p.stderr  # 60 documents: said
    _assert_one_line_error(_cli("fit", str(tmp_path / "t.csv"), "--out", str(out), "--label-column", "nope"),
                           "no column 'nope'")
    _assert_one_line_error(_cli("fit", "demo", "--out", str(out), "--label-column", "topic"), "installed corpus")
    (tmp_path / "t.txt").write_text("\n".join(r.split(",")[0].strip('"') for r in rows[1:]))
    _assert_one_line_error(_cli("fit", str(tmp_path / "t.txt"), "--out", str(out), "--label-column", "topic"),
                           "labels need a table")


def test_cli_bad_inputs(tmp_path, capsys):
    _cli = _InProcess(capsys)  # noqa: N806 - same call shape as the subprocess helper
    out = str(tmp_path / "o")
    _assert_one_line_error(_cli("fit", str(tmp_path / "missing.txt"), "--out", out), "no such file")
    (tmp_path / "empty.txt").write_text("")
    _assert_one_line_error(_cli("fit", str(tmp_path / "empty.txt"), "--out", out), "at least")
    (tmp_path / "bin.txt").write_bytes(bytes(range(256)) * 100)
    _assert_one_line_error(_cli("fit", str(tmp_path / "bin.txt"), "--out", out), "not a text file")
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3,4\n")
    _assert_one_line_error(_cli("fit", str(tmp_path / "t.csv"), "--out", out), "text column")
    _assert_one_line_error(_cli("fit", "demo", "--out", out, "--topics", "1000", "--epochs", "1"), "topics")
    _assert_one_line_error(_cli("fit", "demo", "--out", out, "--lambdas", "0,abc"), "comma-separated")
    _assert_one_line_error(_cli("fit", "demo", "--out", out, "--lambdas", "2"), "λ must be in [0, 1]")
    _assert_one_line_error(_cli("fit", "demo", "--out", out, "--topics", "x"), "invalid int")
    _assert_one_line_error(_cli("fit", "demo"), "--out")
    (tmp_path / "afile").write_text("x")
    _assert_one_line_error(_cli("fit", "demo", "--out", str(tmp_path / "afile"), "--lambdas", "0"), "is a file")
    import torch

    if not torch.cuda.is_available():
        _assert_one_line_error(_cli("fit", "demo", "--out", out, "--device", "cuda", "--lambdas", "0"), "cuda")
    _assert_one_line_error(_cli("fit", "demo", "--out", out, "--seeds", "0"), "--seeds")
    _assert_one_line_error(_cli("fit", "demo", "--out", out, "--max-df", "inf"), "finite")
    _assert_one_line_error(_cli("fit", "demo", "--out", out, "--cache-dir", str(tmp_path / "afile")), "is a file")


def test_cli_never_overwrites_a_folder_of_the_users_and_checks_paths_first(tmp_path, capsys, monkeypatch):
    """`bat teacher --out DIR` replaces DIR with the store: only a new, empty or older store folder may be it (a
    sweep found it deleting whatever DIR held, the working folder with `--out .`)."""
    _cli = _InProcess(capsys)  # noqa: N806
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "thesis.docx").write_text("x")
    _assert_one_line_error(_cli("teacher", "demo", "--out", str(mine), "--teacher", "lexical"), "already holds")
    assert (mine / "thesis.docx").read_text() == "x" and (mine / "sub").is_dir()
    monkeypatch.chdir(mine)
    _assert_one_line_error(_cli("teacher", "demo", "--out", ".", "--teacher", "lexical"), "already holds")
    _assert_one_line_error(_cli("teacher", "demo", "--out", "", "--teacher", "lexical"), "empty folder name")
    assert (mine / "thesis.docx").exists()
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("BAT_CACHE_DIR", str(tmp_path / "afile"))
    _assert_one_line_error(_cli("fit", "demo", "--out", str(tmp_path / "o")), "BAT_CACHE_DIR")
    monkeypatch.setenv("BAT_CACHE_DIR", " ")
    _assert_one_line_error(_cli("fit", "demo", "--out", str(tmp_path / "o")), "BAT_CACHE_DIR is set but empty")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BAT_CACHE_DIR", "~/afile")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "afile").write_text("x")
    _assert_one_line_error(_cli("fit", "demo", "--out", str(tmp_path / "o")), "BAT_CACHE_DIR")  # ~ expanded
    assert not (mine / "~").exists()  # no literal "~" folder in the working folder
    monkeypatch.delenv("BAT_CACHE_DIR")
    _assert_one_line_error(_cli("fitt", "demo"), "(see bat --help)")
    _assert_one_line_error(_cli("fit", "demo", "--out", str(tmp_path / "o"), "--foo"), "unrecognized arguments: --foo")
    for flag, value in (("--student-lr", "100"), ("--student-alpha", "inf"), ("--temperature", "1e30")):
        _assert_one_line_error(_cli("fit", "demo", "--out", str(tmp_path / "o"), flag, value), "must be in")


def test_atomic_dir_replaces_an_older_store_but_nothing_else(tmp_path):
    from bat_core.base.errors import BatError
    from bat_core.base.io import atomic_dir

    store = tmp_path / "store"
    for text in ("one", "two"):  # a store replaces its older self
        with atomic_dir(store) as tmp:
            (tmp / "a.json").write_text(text)
    assert (store / "a.json").read_text() == "two"
    (store / "notes.txt").write_text("mine")
    with pytest.raises(BatError, match="notes.txt"), atomic_dir(store) as tmp:
        (tmp / "a.json").write_text("three")
    assert (store / "a.json").read_text() == "two" and (store / "notes.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["store"]  # the temporary folder is gone
    with atomic_dir(store, guard=False) as tmp:  # a cache's key folder: replaced whatever it holds
        (tmp / "a.json").write_text("four")
    assert sorted(p.name for p in store.iterdir()) == ["a.json"] and (store / "a.json").read_text() == "four"


def test_cli_says_in_one_line_when_the_disk_refuses_the_results(tmp_path, capsys, monkeypatch):
    from bat_core import cli
    def full(*_, **__):
        raise OSError(28, "No space left on device", str(tmp_path / "o" / "summary.json"))

    monkeypatch.setattr(cli, "_fit", full)
    p = _InProcess(capsys)("fit", "demo", "--out", str(tmp_path / "o"))
    assert p.returncode == 2
    _assert_one_line_error(p, "No space left on device")


def test_execute_trains_the_teacher_once_and_reports_each_step(demo_corpus, tmp_path, tiny_bert_dir):
    """Baseline first, the teacher once, every member's cache state; a second execute reads everything."""
    tcfg = TeacherConfig(model=str(tiny_bert_dir), max_length=64, head_epochs=3, device="cpu")
    dbase = DistillConfig(temperature=2.0, encode_logits="raw", background_correction=0.0)  # γ given: no γ step
    p = plan(demo_corpus, tcfg, StudentConfig(n_topics=5, epochs=2), dbase, [0.5, 0.0, 0.5], [7, 7, 8])
    assert p.steps == ["teacher", "λ=0 seed=7", "λ=0 seed=8", "λ=0.5 seed=7", "λ=0.5 seed=8"]
    base, bat = p.members[0], p.members[2]
    # λ = 0 is the plain baseline whatever the distillation settings: no teacher, no encoder input, T reset
    assert base.teacher_key is None and base.distill == DistillConfig().canonical()
    assert bat.teacher_key == p.teacher_key and bat.distill.temperature == 2.0
    steps = []
    first = execute(p, tmp_path, on_step=steps.append)
    assert first.teacher_cached is False and first.cached == [False] * 4
    # the teacher first; members as their stacks finish (stacks may train side by side on the cores)
    assert steps[0].label == "teacher" and sorted((s.index, s.label) for s in steps) == list(enumerate(p.steps))
    assert steps[0].teacher_meta["key"] == p.teacher_key and steps[0].teacher_meta["dev_perplexity"] > 0
    assert [r.key for r in first.runs] == [m.key for m in p.members]
    assert all(r.config["teacher_key"] == p.teacher_key for r in first.runs[2:])
    again = execute(p, tmp_path)
    assert again.teacher_cached is True and again.cached == [True] * 4
    assert [r.metrics["test_npmi"] for r in again.runs] == [r.metrics["test_npmi"] for r in first.runs]


def test_cli_eta_line_waits_for_the_stack_and_never_follows_took(monkeypatch, capsys):
    """The CLI's ETA line is printed once a stack's runs have all landed (the steps quiet for a moment), with every
    one of them counted; none is printed after the job's "took" line."""
    import time
    from types import SimpleNamespace

    from bat_core.cli import _Clock
    from bat_core.training.estimate import Estimate

    monkeypatch.setattr(_Clock, "SETTLE_S", 0.05)
    e = Estimate(teacher_s=0.0, selection_s=0.0, selection_high_s=0.0, grid_s=40.0, runs=4, runs_high=4)
    run = lambda lam: SimpleNamespace(cached=False, member=SimpleNamespace(lam=lam, seed=1), run=object(),  # noqa: E731
                                      gamma=None, wall_time_s=1.0)
    clock = _Clock()
    clock.start(e)
    clock.step(run(0.0))
    clock.step(run(0.5))  # the same stack, a moment later
    time.sleep(0.3)
    assert "2 of about 4 runs trained" in capsys.readouterr().err
    clock.last = 0.0  # a line is due again
    clock.step(run(0.7))
    took = clock.took()
    time.sleep(0.3)
    assert took.startswith("took ") and "runs trained" not in capsys.readouterr().err
