"""Student training speed, side by side: the per-run loop of commit ac5ffce vs the stacked path (fit_students).

    python benchmarks/perf.py            # ≈ 5–10 min on 2 CPU cores; writes benchmarks/results/perf.md
    python benchmarks/perf.py --quick    # a smoke run with few epochs (numbers not meaningful)

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
  phase timed, against a bare ``AutoModel`` forward (``torch.inference_mode``) over the same tokenised windows in the
  same length-sorted batches; the peak RSS of the export; the bytes per document of the logits store it writes;
* scaling: 1k, 4k, 16k, 64k documents (demo texts replicated, each copy made distinct by a pseudo-word
  ``docid<n>`` that is not a token, so the duplicate filter keeps it and the vocabulary does not change): ingestion
  (``build_corpus``), one student epoch (one member, K = 50), one NPMI call (K = 50) on the dev / test split;
* CPU stacks side by side: the demo grid with ``cpu_workers()`` = 1 vs torch's thread count;
* CUDA: when a GPU is visible, the epoch, grid and teacher rows again on it (teacher in bf16 autocast; the student
  has no reduced-precision path and trains in fp32); otherwise one line says it was not available.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OLD_COMMIT = "ac5ffce"
LAMBDAS = [round(0.1 * i, 1) for i in range(11)]
SEEDS = [0, 1, 2]
K = {"demo": 20, "newsarticles": 50}


# ------------------------------------------------------------------------------------------------ child processes
def _old_package() -> Path:
    """The engine as of OLD_COMMIT, as package ``bat_old`` in a temporary folder."""
    tmp = Path(tempfile.mkdtemp(prefix="bat-old-"))
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


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _child(task: dict) -> dict:
    from bat_core.config import DistillConfig, StudentConfig
    from bat_core.corpus import load_corpus
    from bat_core.logits import TeacherLogits

    corpus = load_corpus(task["corpus"])
    rng = np.random.default_rng(0)
    teacher = TeacherLogits.from_dense(rng.normal(0, 2, (corpus.n_docs, corpus.vocab_size)).astype(np.float32),
                                       {"key": "random", "mode": "random"})
    if task["impl"] == "old":
        sys.path.insert(0, str(_old_package()))
        from bat_old.train import fit_student as old_fit  # type: ignore[import-not-found]

        def train(epochs: int) -> list:
            cfg = StudentConfig(n_topics=task["k"], epochs=epochs, seed=0)
            return [old_fit(corpus, cfg, DistillConfig(lam=task.get("lam", 0.0)), teacher)]
    else:
        from bat_core.train import fit_students

        def train(epochs: int) -> list:
            members = [(StudentConfig(n_topics=task["k"], epochs=epochs, seed=s), DistillConfig(lam=lam))
                       for lam in task.get("lambdas", [0.0]) for s in task.get("seeds", [0])]
            return fit_students(corpus, members, teacher)

    out: dict = {"members": len(task.get("lambdas", [0.0])) * len(task.get("seeds", [0]))}
    train(1)  # warm-up (lazy imports, first-call kernel set-up, allocator): not timed, for old and new alike
    for epochs in task["epochs"]:
        mem = _PeakRss()
        c0, w0 = _cpu(), time.perf_counter()
        runs = train(epochs)
        out[f"wall_{epochs}"] = time.perf_counter() - w0
        out[f"cpu_{epochs}"] = _cpu() - c0
        out[f"peak_mb_{epochs}"] = mem.stop()
        out[f"test_npmi_{epochs}"] = float(np.mean([r.metrics["test_npmi"] for r in runs]))
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # whole process, Linux: KiB
    return out


def run_child(task: dict) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(task)], capture_output=True, text=True,
                          env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"child {task} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {task} → {result}", file=sys.stderr, flush=True)
    return result


# ------------------------------------------------------------------------------------------------ NPMI
def npmi_comparison(corpus_name: str, n_top: int = 10) -> dict:
    """Our NPMI vs gensim c_npmi on the topics of one trained student, the whole corpus as reference."""
    import scipy.sparse as sp
    from gensim.corpora import Dictionary
    from gensim.models.coherencemodel import CoherenceModel

    from bat_core.config import DistillConfig, StudentConfig
    from bat_core.corpus import load_corpus
    from bat_core.metrics import NpmiScorer, npmi_per_topic, top_words
    from bat_core.train import fit_students

    corpus = load_corpus(corpus_name)
    members = [(StudentConfig(n_topics=K[corpus_name], epochs=30, seed=s), DistillConfig()) for s in SEEDS]
    runs = fit_students(corpus, members)
    tops = np.stack([top_words(r.beta, n_top) for r in runs])  # M×K×n
    ref = sp.csr_matrix(corpus.counts)
    coo = ref.tocoo()
    texts: list[list[str]] = [[] for _ in range(ref.shape[0])]
    for d, w, c in zip(coo.row, coo.col, coo.data.astype(int)):
        texts[d].extend([corpus.vocab[w]] * c)
    window = max(len(t) for t in texts)
    topics = [[corpus.vocab[i] for i in topic] for run_top in tops for topic in run_top]

    t0 = time.perf_counter()
    ours = np.stack([npmi_per_topic(t, ref) for t in tops]).ravel()
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    scorer = NpmiScorer(ref)  # the same reference as the other two; training builds one on the dev split
    t_build = time.perf_counter() - t0
    reps = 200
    t0 = time.perf_counter()
    for _ in range(reps):
        scorer.per_topic(tops)
    t_scorer = (time.perf_counter() - t0) / reps

    dictionary = Dictionary(texts)
    t0 = time.perf_counter()
    cm = CoherenceModel(topics=topics, texts=texts, dictionary=dictionary, coherence="c_npmi", topn=n_top,
                        window_size=window, processes=1)
    theirs = np.asarray(cm.get_coherence_per_topic())
    t_gensim = time.perf_counter() - t0

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
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "perf.md"))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return
    q = args.quick
    full = 5 if q else 200  # the app's default epochs
    t_start = time.perf_counter()
    res: dict = {}
    print("epoch times …", file=sys.stderr)
    ep = {"demo": (1, 6 if q else 11), "newsarticles": (1, 2 if q else 4)}
    for name in ("demo", "newsarticles"):
        for impl in ("old", "new"):
            res[("epoch", name, impl)] = run_child({"corpus": name, "impl": impl, "k": K[name], "epochs": ep[name]})
        # the old loop at λ > 0 (dense teacher targets cost more): 30 of the grid's 33 runs are like this
        res[("epoch", name, "old-kd")] = run_child({"corpus": name, "impl": "old", "k": K[name], "epochs": ep[name],
                                                     "lam": 0.5})
    print("one run and the grid on demo …", file=sys.stderr)
    for impl in ("old", "new"):
        res[("run", "demo", impl)] = run_child({"corpus": "demo", "impl": impl, "k": 20, "epochs": [full]})
    res[("run", "demo", "old-kd")] = run_child({"corpus": "demo", "impl": "old", "k": 20, "epochs": [full],
                                                "lam": 0.5})
    res[("grid", "demo")] = run_child({"corpus": "demo", "impl": "new", "k": 20, "epochs": [full],
                                       "lambdas": LAMBDAS, "seeds": SEEDS})
    print("the grid on NewsArticles (few epochs) …", file=sys.stderr)
    ge = (1, 2) if q else (1, 3)
    res[("grid", "newsarticles")] = run_child({"corpus": "newsarticles", "impl": "new", "k": 50, "epochs": ge,
                                               "lambdas": LAMBDAS, "seeds": SEEDS})
    print("NPMI …", file=sys.stderr)
    npmi = [npmi_comparison(name) for name in ("demo", "newsarticles")]
    total = time.perf_counter() - t_start
    text = render(res, npmi, ep, ge, full, total, q)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


def _per_epoch(r: dict, e: tuple[int, int], kind: str) -> float:
    return (r[f"{kind}_{e[1]}"] - r[f"{kind}_{e[0]}"]) / (e[1] - e[0])


def render(res: dict, npmi: list[dict], ep: dict, ge: tuple[int, int], full: int, total: float, quick: bool) -> str:
    n_grid = len(LAMBDAS) * len(SEEDS)
    lines = ["# Student training speed: per-run loop (ac5ffce) vs stacked members (fit_students)", "",
             f"Measured by `benchmarks/perf.py`{' --quick (smoke run: not meaningful)' if quick else ''} in "
             f"{total:.0f} s on this machine ({os.cpu_count()} CPU cores, shared with other jobs, so wall times "
             "are noisy; CPU time is the process's own user + system time). Student: Scholar, λ = 0 unless stated, "
             "random-logits teacher. Each row ran in a fresh process.", "",
             "## Epoch time (one run, λ = 0)", "",
             "| corpus | K | old s/epoch (wall / CPU) | new s/epoch (wall / CPU) | speed-up (wall / CPU) |",
             "|---|---|---|---|---|"]
    for name in ("demo", "newsarticles"):
        o, n = res[("epoch", name, "old")], res[("epoch", name, "new")]
        ow, oc, nw, nc = (_per_epoch(o, ep[name], "wall"), _per_epoch(o, ep[name], "cpu"),
                          _per_epoch(n, ep[name], "wall"), _per_epoch(n, ep[name], "cpu"))
        lines.append(f"| {name} | {K[name]} | {ow:.3f} / {oc:.3f} | {nw:.3f} / {nc:.3f} | "
                     f"{ow / nw:.1f}× / {oc / nc:.1f}× |")
    for name in ("demo", "newsarticles"):
        okd = res[("epoch", name, "old-kd")]
        lines.append(f"| {name}, old loop at λ = 0.5 | {K[name]} | {_per_epoch(okd, ep[name], 'wall'):.3f} / "
                     f"{_per_epoch(okd, ep[name], 'cpu'):.3f} | – | – |")
    lines += ["", "Process peak RSS (everything: Python, torch, corpus, teacher, training), MB: " + ", ".join(
        f"{' '.join(map(str, k))} {r['maxrss_mb']:.0f}" for k, r in res.items() if "maxrss_mb" in r) + "."]
    lines += ["", f"Epoch time = (t({ep['demo'][1]} epochs) − t({ep['demo'][0]})) / {ep['demo'][1] - ep['demo'][0]} "
              f"on demo, (t({ep['newsarticles'][1]}) − t({ep['newsarticles'][0]})) / "
              f"{ep['newsarticles'][1] - ep['newsarticles'][0]} on NewsArticles.", "",
              f"## The λ grid: {len(LAMBDAS)} λ × {len(SEEDS)} seeds = {n_grid} runs", "",
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
              f"| demo | {full} | new, the {n_grid}-member grid as one job (measured) | {g[f'wall_{full}']:.1f} | "
              f"{g[f'cpu_{full}']:.1f} | {g[f'peak_mb_{full}']:.0f} |"]
    ng = res[("grid", "newsarticles")]
    e0, e1 = ge
    gw, gc = _per_epoch(ng, ge, "wall"), _per_epoch(ng, ge, "cpu")
    fix_w, fix_c = ng[f"wall_{e0}"] - e0 * gw, ng[f"cpu_{e0}"] - e0 * gc

    def old_run(kind: str, clock: str) -> float:  # set-up + `full` epochs of one old run
        r, e = res[("epoch", "newsarticles", kind)], ep["newsarticles"]
        per = _per_epoch(r, e, clock)
        return r[f"{clock}_{e[0]}"] - e[0] * per + full * per

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
              "sampled every 5 ms.", "",
              "## NPMI: ours vs gensim `CoherenceModel(coherence='c_npmi')`", "",
              "Topics: top 10 words of 3 students (seeds 0–2, 30 epochs); reference: the whole corpus; gensim's "
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
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
