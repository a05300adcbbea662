"""Quality benchmark: the paper's protocol on a corpus, each teacher against the λ = 0 baseline and against the
no-transformer control, paired by seed.

    python benchmarks/quality.py --corpus newsarticles --jobs 2     # K = 50, 5 seeds, every arm at the default λ
    python benchmarks/quality.py --corpus demo --seeds 3 --lambdas 0.25,0.75   # plus a λ curve for the default

Arms (the same seeds, the same student settings; only the teacher changes):

* ``baseline``: λ = 0, plain Scholar (no teacher anywhere).
* ``default``: the teacher a user gets (``TeacherConfig()``: kind ``auto``, the candidate with the lowest dev
  perplexity among lexical, transformer and hybrid neighbours).
* ``transformer``: neighbours in frozen MiniLM's embedding space (the previous default).
* ``lexical``: neighbours by sublinear TF-IDF cosine; no transformer at all. The control for "the transformer helps".
* ``random``: neighbours by random vectors; the null control for "the teacher knows something".
* ``wordvec``, ``cooc``, ``placebo`` (not run unless named in --arms): the lexical neighbours mixed with each
  document's words spread onto related words (bat_core/teachers/wordlevel.py): by MiniLM's word vectors among
  co-occurring words, by co-occurrence alone (the control), by shuffled word vectors under the same gate (the
  placebo). Their "Δ vs lexical control" column is what the word-level knowledge adds.

When the default teacher chose the same neighbours as another arm (same kind, k and ε: the same targets bit for
bit), that arm's runs are reused and the table says so. Every teacher and (arm, seed) run is cached under
--cache-dir, so a rerun only trains what changed. Writes a markdown table and a JSON file under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bat_core.base.progress import TqdmProgress
from bat_core.config import DEFAULT_BAT_LAMBDA, STUDENT_KINDS, CorpusConfig, DistillConfig, StudentConfig, TeacherConfig
from bat_core.data import datasets
from bat_core.data.corpus import load_corpus, vectorize_reference
from bat_core.data.readers import read_documents
from bat_core.evaluation.align import align_topics
from bat_core.evaluation.downstream import evaluate_runs
from bat_core.evaluation.metrics import npmi_per_topic, robust_summary, top_words
from bat_core.evaluation.stats import mean_std, paired_differences
from bat_core.grid import execute, get_teacher, plan, seed_list
from bat_core.teachers.choice import choice_line
from bat_core.training.selection import describe_gamma

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_K = {"newsarticles": 50}  # small corpora: K = 20
ARMS = {"default": "auto", "transformer": "transformer", "lexical": "lexical", "random": "random",
        "wordvec": "wordvec", "cooc": "cooc", "placebo": "wordvec-shuffled"}


def _fmt(v: list[float], digits: int = 4) -> str:
    ms = mean_std(v)
    return f"{ms['mean']:.{digits}f} ± {ms['std']:.{digits}f}"


def head_to_head(base, bat) -> tuple[int, int]:
    """Aligned topic pairs (optimal JSD matching) where BAT's per-topic test NPMI beats the baseline's."""
    pairs = align_topics(base.beta, bat.beta)
    a = base.metrics["test_npmi_per_topic"]
    b = bat.metrics["test_npmi_per_topic"]
    return sum(b[j] > a[i] for i, j, _ in pairs), len(pairs)


def arm_runs(corpus, tcfg: TeacherConfig, scfg: StudentConfig, dcfg: DistillConfig, lam: float, seeds: list[int],
             cache_dir: Path, progress=None) -> list:
    """The runs of one arm at λ over the seeds, through the engine's one path (cached runs are read, not retrained)."""
    return execute(plan(corpus, tcfg, scfg, dcfg, [lam], seeds), cache_dir, progress).runs


def _choose_gamma(task: tuple) -> dict | None:
    """Worker: the pipeline's dev rule for γ for one arm, as ``bat fit`` runs it (the first seed, then the shared seed
    list's next seeds when no γ passes on one)."""
    source, ccfg, tcfg, scfg, dcfg, lam, cache_dir = task
    return execute(plan(_worker_corpus(source, ccfg), tcfg, scfg, dcfg, [lam], [scfg.seed]), cache_dir).gamma


def _train_one(task: tuple) -> str:
    """Worker for --jobs: load the corpus (and the cached teacher), train one (λ, seed) run into the run cache."""
    source, ccfg, tcfg, scfg, dcfg, lam, cache_dir = task
    return arm_runs(_worker_corpus(source, ccfg), tcfg, scfg, dcfg, lam, [scfg.seed], cache_dir)[0].key


@functools.lru_cache(maxsize=2)
def _worker_corpus(source: str, ccfg: CorpusConfig):
    """A worker builds the corpus once, not once per (arm, seed) task it is handed."""
    return load_corpus(source, ccfg)


def _downstream(corpus, runs: list) -> dict:
    """Accuracy and macro-F1 of a logistic regression on each run's θ, for a labelled corpus (else nothing)."""
    if corpus.name not in datasets.LABELLED:
        return {}
    scores = evaluate_runs(corpus, runs)
    return {"accuracy": [s["accuracy"] for s in scores], "macro_f1": [s["macro_f1"] for s in scores]}


def reference_npmi(runs, reference) -> dict[str, float]:
    """Mean NPMI of each run's top-10 topic words on the reference corpus, by run key: once per run, however many
    arms share it or pair against it."""
    return {r.key: float(npmi_per_topic(top_words(r.beta, 10), reference).mean()) for r in runs}


def _scores(corpus, runs: list, base: list | None, control: list | None, on_ref: dict[str, float]) -> dict:
    """Per-seed numbers of one arm; differences are paired by seed (same position in the lists). ``on_ref``: every
    run's NPMI on the reference corpus (:func:`reference_npmi`)."""
    row = {**_downstream(corpus, runs), "test_npmi": [r.metrics["test_npmi"] for r in runs],
           "tu": [r.metrics["tu"] for r in runs],
           "dev_npmi": [r.metrics["dev_npmi"] for r in runs], "best_epoch": [r.metrics["best_epoch"] for r in runs],
           "median_topic_npmi": [robust_summary(np.array(r.metrics["test_npmi_per_topic"]))["median"] for r in runs],
           "wiki_npmi": [on_ref[r.key] for r in runs]}
    for name, ref in (("baseline", base), ("lexical", control)):
        if ref is None or ref is runs:
            continue
        diff = paired_differences(runs, ref)
        row[f"diff_vs_{name}"] = diff
        row[f"seeds_won_vs_{name}"] = int(sum(d > 0 for d in diff))
        row[f"rel_vs_{name}"] = float(np.mean(diff) / np.mean([a.metrics["test_npmi"] for a in ref]))
        row[f"tu_diff_vs_{name}"] = paired_differences(runs, ref, "tu")
        ref_by_seed = {r.seed: on_ref[r.key] for r in ref}
        ref_diff = [on_ref[r.key] - ref_by_seed[r.seed] for r in runs if r.seed in ref_by_seed]
        row[f"ref_diff_vs_{name}"] = ref_diff
        row[f"ref_seeds_won_vs_{name}"] = int(sum(d > 0 for d in ref_diff))
        if name == "baseline":
            h2h = [head_to_head(a, b) for a, b in zip(ref, runs)]
            row.update(pairs_won=[w for w, _ in h2h], pairs_total=[n for _, n in h2h])
    return row


def _teacher_row(t) -> dict:
    m = t.meta
    return {k: m.get(k) for k in ("teacher_kind", "head", "knn_k", "knn_smoothing", "dev_perplexity",
                                  "unigram_dev_perplexity", "candidates", "median_tokens", "choice", "wall_time_s")}


def _same_targets(a, b) -> bool:
    return all(a.meta.get(k) == b.meta.get(k) for k in ("teacher_kind", "knn_k", "knn_smoothing", "head"))


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - one linear script: parse, train, score, write
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default="newsarticles", help="newsarticles, demo, mini20ng, or a file path")
    p.add_argument("--arms", default="baseline,default,transformer,lexical,random")
    p.add_argument("--lam", type=float, default=DEFAULT_BAT_LAMBDA, help="λ of every teacher arm")
    p.add_argument("--lambdas", default="", help="extra λ values for the default arm (a λ curve)")
    p.add_argument("--topics", type=int, default=None)
    p.add_argument("--student", choices=STUDENT_KINDS, default=None, help="scholar (default) or prodlda")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--clip", type=float, default=None)
    p.add_argument("--vocab-size", type=int, default=None)
    p.add_argument("--no-boilerplate-removal", action="store_true")
    p.add_argument("--gamma", type=float, default=None,
                   help="background correction γ of every teacher arm (default: chosen per arm on dev data, first "
                        "seed, as bat fit does; 0 = off, the setting of the results before γ was the default)")
    p.add_argument("--reference", default="wiki",
                   help="external NPMI reference (the last column): an installed corpus or a file, e.g. bbcnews's "
                        "full articles for a corpus of their leads")
    p.add_argument("--jobs", type=int, default=1, help="runs trained in parallel (each uses one CPU thread)")
    p.add_argument("--tag", default="", help="suffix for the result files, e.g. a configuration name")
    p.add_argument("--cache-dir", type=Path, default=ROOT / ".bat_cache")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args(argv)

    def given(**kw):
        return {k: v for k, v in kw.items() if v is not None}

    t_start = time.time()
    ccfg = CorpusConfig(**given(vocab_size=args.vocab_size), remove_boilerplate=not args.no_boilerplate_removal)
    dcfg = replace(DistillConfig(), **given(temperature=args.temperature, clip=args.clip,
                                            background_correction=args.gamma))
    name = Path(args.corpus).stem if Path(args.corpus).exists() else args.corpus
    scfg = replace(StudentConfig(n_topics=args.topics or DEFAULT_K.get(name, 20)),
                   **given(epochs=args.epochs, student=args.student))
    seeds = seed_list(args.seeds)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    extra = sorted({float(v) for v in args.lambdas.split(",") if v.strip()} - {0.0, args.lam})
    progress = TqdmProgress()

    corpus = load_corpus(args.corpus, ccfg)
    wiki = vectorize_reference([d for d in read_documents(args.reference)[1] if d.strip()], corpus)
    # teachers: the default first (it encodes the corpus once; the transformer arm then reads those embeddings)
    teachers, tcfgs, t_teacher = {}, {}, {}
    for a in sorted((a for a in arms if a in ARMS), key=lambda a: a != "default"):
        tcfgs[a] = TeacherConfig(kind=ARMS[a])
        t0 = time.time()
        teachers[a] = get_teacher(corpus, tcfgs[a], args.cache_dir, progress)
        t_teacher[a] = time.time() - t0
    shared = {}
    if "default" in teachers:
        for a in ("lexical", "transformer"):
            if a in teachers and _same_targets(teachers["default"], teachers[a]):
                shared["default"] = a
    # (arm label, λ, teacher arm) for every run to train; λ = 0 is the plain baseline whatever the arm
    todo = [(a, args.lam, a, dcfg) for a in arms if a != "baseline" and a not in shared] + \
        [(f"default λ={lam:g}", lam, "default", dcfg) for lam in extra]
    if "baseline" in arms:
        todo.insert(0, ("baseline", 0.0, None, dcfg))
    t_students = time.time()
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    gammas: dict[str, dict] = {}
    if dcfg.background_correction is None:  # each teacher arm gets the dev rule for γ, as bat fit runs it
        pending = [t for t in todo if t[2] is not None]
        tasks = [(args.corpus, ccfg, tcfgs.get(ta) or TeacherConfig(), replace(scfg, seed=seeds[0]), d, lam,
                  args.cache_dir) for _, lam, ta, d in pending]
        with ProcessPoolExecutor(max(1, min(args.jobs, len(tasks))), mp_context=mp.get_context("spawn")) as pool:
            for (label, *_), choice in zip(pending, pool.map(_choose_gamma, tasks), strict=True):
                gammas[label] = choice
                print(f"{label}: γ = {choice['gamma']:g}{', teacher faded' if choice['fade'] else ''} chosen on dev "
                      "data", flush=True)
        todo = [(label, lam, ta, replace(d, background_correction=gammas[label]["gamma"], fade=gammas[label]["fade"])
                 if label in gammas else d) for label, lam, ta, d in todo]
    if args.jobs > 1:  # fill the run cache in parallel, seed by seed so that partial results pair up
        tasks = [(args.corpus, ccfg, tcfgs.get(ta) or TeacherConfig(), replace(scfg, seed=s), d, lam,
                  args.cache_dir) for s in seeds for _, lam, ta, d in todo]
        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
            for i, key in enumerate(pool.map(_train_one, tasks), 1):
                print(f"[{i}/{len(tasks)}] run {key} done after {time.time() - t_students:.0f} s", flush=True)
    runs = {label: arm_runs(corpus, tcfgs.get(ta) or TeacherConfig(), scfg, d, lam, seeds, args.cache_dir, progress)
            for label, lam, ta, d in todo}
    for a, b in shared.items():
        runs[a] = runs[b]
    t_students = time.time() - t_students
    progress.close()

    base, control = runs.get("baseline"), runs.get("lexical")
    order = [a for a in arms if a in runs] + [label for label, *_ in todo if label not in arms]
    on_ref = reference_npmi({r.key: r for a in order for r in runs[a]}.values(), wiki)
    rows = [{"arm": a, "lam": 0.0 if a == "baseline" else next((lam for lb, lam, *_ in todo if lb == a), args.lam),
             "shared_with": shared.get(a), **_scores(corpus, runs[a], base, control, on_ref)} for a in order]
    result = {
        "corpus": {"name": corpus.name, "hash": corpus.hash, **corpus.stats},
        "settings": {"corpus": ccfg.to_dict(), "student": scfg.to_dict(), "distill": dcfg.to_dict(), "lam": args.lam,
                     "seeds": seeds, "arms": arms, "reference": Path(args.reference).name},
        "teachers": {a: _teacher_row(t) for a, t in teachers.items()},
        "rows": rows,
        "gamma_rule": gammas,
        "time_s": {"teachers": t_teacher, "students": t_students, "total": time.time() - t_start},
    }
    tag = f"-{args.tag}" if args.tag else ""
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"quality-{name}{tag}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=float))
    md = render_markdown(result)
    stem.with_suffix(".md").write_text(md)
    print(md)
    return 0


def _cell(r: dict, name: str) -> str:
    if f"diff_vs_{name}" not in r:
        return "– | –"
    d = r[f"diff_vs_{name}"]
    return f"{_fmt(d)} ({100 * r[f'rel_vs_{name}']:+.1f}%) | {r[f'seeds_won_vs_{name}']}/{len(d)}"


def _ref_vs_lexical(r: dict) -> str:
    """The reference-corpus NPMI against the lexical control, paired by seed (older result files lack it)."""
    if "ref_diff_vs_lexical" not in r:
        return ""
    d = r["ref_diff_vs_lexical"]
    return f"; vs lexical {np.mean(d):+.4f}, {r['ref_seeds_won_vs_lexical']}/{len(d)}"


def render_markdown(res: dict) -> str:
    c, st = res["corpus"], res["settings"]
    lines = [
        f"## {c['name']}: {c['documents']} documents ({c['train_docs']}/{c['dev_docs']}/{c['test_docs']} "
        f"train/dev/test), V = {c['vocabulary']}, K = {st['student']['n_topics']}, {len(st['seeds'])} seeds "
        f"{st['seeds']}, {st['student']['epochs']} epochs, λ = {st['lam']:g}",
        "",
        "| teacher arm | chosen neighbours | k | ε | dev perplexity | unigram dev perplexity |",
        "|---|---|---|---|---|---|",
    ]
    for a, t in res["teachers"].items():
        lines.append(f"| {a} | {t['teacher_kind'] or t['head']} | {t['knn_k']} | {t['knn_smoothing']} | "
                     f"{(t['dev_perplexity'] or float('nan')):,.0f} | {(t['unigram_dev_perplexity'] or 0):,.0f} |")
    if "default" in res["teachers"]:
        lines += ["", f"Default rule: {choice_line(res['teachers']['default'])}"]
    for arm, choice in (res.get("gamma_rule") or {}).items():
        lines += ["", f"{arm}: {describe_gamma(choice)}"]
    if not res.get("gamma_rule"):
        lines += ["", f"Background correction γ = {st['distill'].get('background_correction', 0.0):g} for every arm."]
    lines += [
        "",
        "| arm | λ | test NPMI | Δ vs baseline (paired) | seeds won | Δ vs lexical control | seeds won | "
        f"aligned pairs won | TU | median topic NPMI | {st.get('reference', 'wiki')} NPMI |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        pairs = f"{sum(r['pairs_won'])}/{sum(r['pairs_total'])}" if "pairs_won" in r else "–"
        label = r["arm"] + (f" (= {r['shared_with']}: same targets)" if r.get("shared_with") else "")
        lines.append(f"| {label} | {r['lam']:g} | {_fmt(r['test_npmi'])} | {_cell(r, 'baseline')} | "
                     f"{_cell(r, 'lexical')} | {pairs} | {_fmt(r['tu'], 3)} | {_fmt(r['median_topic_npmi'])} | "
                     f"{_fmt(r['wiki_npmi'])}{_ref_vs_lexical(r)} |")
    if any("accuracy" in r for r in res["rows"]):
        lines += ["", "Downstream: θ as features for a logistic regression (fitted on the train split, scored on the "
                  "test split; labels: " + ("outlet" if c["name"] == "newsarticles" else "category") + ")", "",
                  "| arm | λ | accuracy | macro-F1 |", "|---|---|---|---|"]
        lines += [f"| {r['arm']} | {r['lam']:g} | {_fmt(r['accuracy'], 3)} | {_fmt(r['macro_f1'], 3)} |"
                  for r in res["rows"] if "accuracy" in r]
    ts = res["time_s"]
    lines += ["", f"Wall time: teachers {', '.join(f'{a} {v:.0f} s' for a, v in ts['teachers'].items())} "
                  f"(≈0 when cached), students {ts['students']:.0f} s, total {ts['total']:.0f} s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    from entry import run  # here, not at the top: tests load scripts as modules from elsewhere

    run(main, __file__)
