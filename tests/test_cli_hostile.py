"""The command line under hostile use: Ctrl-C in the middle of training, settings whose result could never be used,
`~` in paths, documents a model cannot read, folders that would fail only after all the training, advice that does
not fit the command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_runs_cli import _assert_one_line_error, _InProcess

ROOT = Path(__file__).resolve().parents[1]
TINY = ("--lambdas", "0", "--epochs", "1", "--topics", "5", "--quiet")


# ------------------------------------------------------------------------------------------------ Ctrl-C
def _fit_then_interrupt(tmp_path: Path, presses: int) -> tuple[int | None, str, float]:
    """`bat fit` in its own process, interrupted ``presses`` times (50 ms apart) once it trains: (exit status, stderr,
    seconds from the first Ctrl-C to the exit). Two seeds train as two stacks side by side, on threads of their own:
    the case where Ctrl-C used to reach the main thread only."""
    env = dict(os.environ, BAT_CACHE_DIR=str(tmp_path / "cache"), PYTHONUNBUFFERED="1")
    # SIGINT as a terminal gives it: a suite run in the background (nohup, `&` in a script) inherits it ignored, and
    # `bat fit` rightly leaves an ignored SIGINT alone (test_an_ignored_sigint_stays_ignored)
    p = subprocess.Popen([sys.executable, "-m", "bat_core", "fit", "demo", "--out", str(tmp_path / "o"), "--lambdas",
                          "0", "--seeds", "2", "--epochs", "2000", "--topics", "5", "--quiet"],
                         cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: list[str] = []
    training = threading.Event()

    def read() -> None:
        assert p.stderr is not None
        for line in p.stderr:
            lines.append(line)
            if line.startswith(("Estimated time", "no time estimate")):  # printed just before the first epoch
                training.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert training.wait(90), "".join(lines)
        time.sleep(2.0)  # mid-epoch, well inside the 2,000
        t0 = time.time()
        for _ in range(presses):
            p.send_signal(signal.SIGINT)
            time.sleep(0.05)
        try:
            rc = p.wait(20)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.time() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    reader.join(5)
    return rc, "".join(lines), took


def test_ctrl_c_stops_every_training_thread_and_exits_130(tmp_path):
    rc, err, took = _fit_then_interrupt(tmp_path, 1)
    assert rc == 130, (rc, err)
    assert took < 20 and "Traceback" not in err, err
    assert "stopping after the current epoch" in err and "Ctrl-C again" in err, err
    assert "interrupted:" in err and "kept in the cache" in err, err
    assert not (tmp_path / "o").exists()  # nothing was written there: the folder this command made is gone


def test_ctrl_c_twice_quits_at_once_without_a_traceback(tmp_path):
    rc, err, took = _fit_then_interrupt(tmp_path, 2)
    # 130 from the CLI; when the first Ctrl-C had already ended the job (one epoch here is milliseconds) and main
    # had returned, the second one ends the exiting interpreter by SIGINT, which a shell reports as 130 too
    assert rc in (130, -signal.SIGINT) and took < 10, (rc, took, err)
    assert "Traceback" not in err and "terminate called" not in err and "Exception ignored" not in err, err


def test_second_ctrl_c_exits_at_once(monkeypatch, capfd):
    """The handler itself (a real process cannot be timed to press twice before the first epoch ends): the first
    Ctrl-C asks to stop, the second exits with 130 without unwinding the training threads."""
    from bat_core import cli

    exits: list[int] = []
    monkeypatch.setattr(cli.os, "_exit", exits.append)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, whatever ran the suite
    before = signal.getsignal(signal.SIGINT)
    try:
        _press_twice(cli, exits, before)
    finally:
        signal.signal(signal.SIGINT, inherited)
    err = capfd.readouterr().err
    assert "stopping after the current epoch" in err and "quitting now" in err


def _press_twice(cli, exits: list[int], before) -> None:
    with cli._Interrupt() as stop:
        assert signal.getsignal(signal.SIGINT) is not before and not stop()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs in this (the main) thread at the next bytecode
        assert stop() and exits == []
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert exits == [130]
    assert signal.getsignal(signal.SIGINT) is before


def test_main_in_process_restores_the_sigint_handler(tmp_path, capsys):
    before = signal.getsignal(signal.SIGINT)
    p = _InProcess(capsys)("fit", "demo", "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"), *TINY)
    assert p.returncode == 0, p.stderr
    assert signal.getsignal(signal.SIGINT) is before


def test_an_ignored_sigint_stays_ignored():
    """A job a shell starts in the background inherits SIGINT ignored: a Ctrl-C meant for the foreground stopped it."""
    from bat_core.cli import _Interrupt

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _Interrupt() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            assert not stop()
    finally:
        signal.signal(signal.SIGINT, before)


# ------------------------------------------------------------------------------------------------ settings
def test_encode_logits_with_save_model_is_refused_before_training(tmp_path, capsys):
    _cli = _InProcess(capsys)  # noqa: N806
    cache = tmp_path / "c"
    for mode in ("raw", "doc_layer"):
        p = _cli("fit", "demo", "--out", str(tmp_path / "o"), "--cache-dir", str(cache), "--lambdas", "0,0.5",
                 "--epochs", "1", "--topics", "5", "--teacher", "lexical", "--encode-logits", mode,
                 "--save-model", str(tmp_path / "m"), "--quiet")
        _assert_one_line_error(p, "--encode-logits")
        assert "--save-model" in p.stderr and "off" in p.stderr
        assert not (cache / "runs").exists() and not (tmp_path / "m").exists()  # refused before anything trained
    # the baselines never read teacher logits (λ = 0 resets encode_logits): their saved models work
    p = _cli("fit", "demo", "--out", str(tmp_path / "o"), "--cache-dir", str(cache), "--encode-logits", "raw",
             "--save-model", str(tmp_path / "m"), *TINY)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "m" / "lambda-0" / "model.json").is_file()


# ------------------------------------------------------------------------------------------------ paths
def test_tilde_is_expanded_in_every_path(tmp_path, capsys, monkeypatch):
    home, wd = tmp_path / "home", tmp_path / "wd"
    home.mkdir()
    wd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(wd)
    (home / "ref.txt").write_text("the government said the market would rise\n" * 5)
    _cli = _InProcess(capsys)  # noqa: N806
    p = _cli("fit", "demo", "--out=~/o", "--cache-dir=~/bc", "--save-model=~/m", "--reference=~/ref.txt", *TINY)
    assert p.returncode == 0, p.stderr
    assert (home / "o" / "summary.json").is_file() and (home / "bc" / "runs").is_dir()
    assert (home / "m" / "lambda-0" / "model.json").is_file()
    (home / "in.txt").write_text("the market fell\n")
    p = _cli("transform", "~/m/lambda-0", "~/in.txt", "--out=~/theta.csv")
    assert p.returncode == 0, p.stderr
    assert (home / "theta.csv").is_file()
    assert list(wd.iterdir()) == []  # no literal "~" folder in the working folder


# ------------------------------------------------------------------------------------------------ transform
@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    """One tiny model (demo, λ = 0, K = 5, 2 epochs), saved by `bat fit --save-model`."""
    from bat_core.cli import main

    tmp = tmp_path_factory.mktemp("model")
    rc = main(["fit", "demo", "--out", str(tmp / "o"), "--cache-dir", str(tmp / "c"), "--save-model", str(tmp / "m"),
               "--lambdas", "0", "--epochs", "2", "--topics", "5", "--quiet"])
    assert rc == 0
    return tmp / "m" / "lambda-0"


def test_transform_warns_about_documents_without_a_vocabulary_word(saved_model, tmp_path, capsys):
    vocab = json.loads((saved_model / "model.json").read_text())["vocabulary"]
    (tmp_path / "in.txt").write_text(f"qqxz zzqy\n{' '.join(vocab[:5])}\nxyzzy plugh\n")
    p = _InProcess(capsys)("transform", str(saved_model), str(tmp_path / "in.txt"), "--out", str(tmp_path / "t.csv"))
    assert p.returncode == 0, p.stderr
    assert "2 of 3 documents share no word with the model's vocabulary" in p.stderr, p.stderr
    assert len((tmp_path / "t.csv").read_text().strip().splitlines()) == 4  # the rows are still written
    p = _InProcess(capsys)("transform", str(saved_model), str(tmp_path / "in.txt"), "--out", str(tmp_path / "u.csv"),
                           "--quiet")
    assert p.returncode == 0 and p.stderr == ""  # --quiet: no messages on stderr


def test_transform_advice_fits_the_command(saved_model, tmp_path, capsys):
    _cli = _InProcess(capsys)  # noqa: N806
    (tmp_path / "in.txt").write_text("the market fell\n")
    p = _cli("transform", str(tmp_path / "in.txt"), str(tmp_path / "in.txt"), "--out", str(tmp_path / "t.csv"))
    _assert_one_line_error(p, "folder")
    assert "bat fit --save-model" in p.stderr and "save it again" not in p.stderr
    (tmp_path / "afile").write_text("x")
    for out in [tmp_path / "afile" / "t.csv"] + ([Path("/proc/version")] if Path("/proc/version").exists() else []):
        p = _cli("transform", str(saved_model), str(tmp_path / "in.txt"), "--out", str(out))
        _assert_one_line_error(p, "--out")
        assert "--cache-dir" not in p.stderr


# ------------------------------------------------------------------------------------------------ outputs
def test_save_model_folders_are_checked_before_training(tmp_path, capsys):
    _cli = _InProcess(capsys)  # noqa: N806
    cache, models = tmp_path / "c", tmp_path / "m"
    (models / "lambda-0").mkdir(parents=True)
    (models / "lambda-0" / "notes.txt").write_text("mine")
    p = _cli("fit", "demo", "--out", str(tmp_path / "o"), "--cache-dir", str(cache), "--save-model", str(models),
             *TINY)
    _assert_one_line_error(p, "already holds other files")
    assert (models / "lambda-0" / "notes.txt").read_text() == "mine"
    assert not (cache / "runs").exists()  # nothing trained
    (models / "lambda-0" / "notes.txt").unlink()
    (models / "lambda-0").rmdir()
    (models / "lambda-0").write_text("mine")  # a file where the model's folder goes
    p = _cli("fit", "demo", "--out", str(tmp_path / "o"), "--cache-dir", str(cache), "--save-model", str(models),
             *TINY)
    _assert_one_line_error(p, "lambda-0")
    assert (models / "lambda-0").read_text() == "mine" and not (cache / "runs").exists()


def test_summary_path_is_checked_before_training(tmp_path, capsys):
    (tmp_path / "o" / "summary.json").mkdir(parents=True)
    p = _InProcess(capsys)("fit", "demo", "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"), *TINY)
    _assert_one_line_error(p, "summary.json")
    assert not (tmp_path / "c" / "runs").exists()


def test_a_failed_fit_leaves_no_empty_folder_it_made(tmp_path, capsys):
    _cli = _InProcess(capsys)  # noqa: N806
    missing = str(tmp_path / "missing.txt")
    p = _cli("fit", missing, "--out", str(tmp_path / "new" / "o"), "--cache-dir", str(tmp_path / "c"),
             "--save-model", str(tmp_path / "m"))
    _assert_one_line_error(p, "no such file")
    assert sorted(x.name for x in tmp_path.iterdir()) == []
    (tmp_path / "mine").mkdir()  # a folder the user made stays, empty or not
    _assert_one_line_error(_cli("fit", missing, "--out", str(tmp_path / "mine")), "no such file")
    assert (tmp_path / "mine").is_dir()
