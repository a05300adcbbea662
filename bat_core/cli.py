"""`bat …` (or `python -m bat_core …`): the headless entry point for big jobs and scripts.

    bat fit INPUT --out DIR [--topics K] [--lambdas 0,0.5] [--seeds N] [--save-model DIR] [--teacher-mode top-n] …
    bat transform MODEL INPUT --out theta.csv      # θ for new documents from a saved model
    bat teacher INPUT --out DIR [teacher options]
    torchrun --nproc_per_node 2 -m bat_core teacher INPUT --out DIR …     # data-parallel teacher

Every setting of the config dataclasses has a flag, generated from the dataclass (``--vocab-size``,
``--teacher-max-length``, ``--student-lr``, ``--temperature`` …), so a new setting needs no CLI code.

Problems the user can fix exit with status 2 and one line on stderr; never a traceback (set BAT_DEBUG=1 to see one).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .base.errors import BatError
from .base.io import atomic_write_bytes, check_replaceable, check_writable_dir
from .base.progress import Cancelled
from .config import CorpusConfig, DistillConfig, FitConfig, StudentConfig, TeacherConfig
from .grid import default_lambdas, seed_list
from .teachers.choice import choice_line
from .teachers.store import ARRAYS_FILE, META_FILE
from .training.cache import Cache, default_cache_dir

_TYPES = {"int": int, "float": float, "str": str}
SMALL_SPLIT = 10  # fewer dev or test documents than this: NPMI is noise, and the CLI says so


@dataclass(frozen=True)
class _Flags:
    """How one config dataclass appears on the command line."""

    cls: type
    tag: str  # argparse dest prefix, so that teacher and student ``epochs`` do not collide
    prefix: str = ""  # flag prefix, e.g. "teacher-"
    skip: tuple[str, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()  # (field, extra flag)


CORPUS = _Flags(CorpusConfig, "corpus")
TEACHER = _Flags(TeacherConfig, "teacher", "teacher-", skip=("device",),
                 aliases=(("cross_fit_folds", "--cross-fit"), ("kind", "--teacher")))
STUDENT = _Flags(StudentConfig, "student", "student-", skip=("seed", "device"),
                 aliases=(("n_topics", "--topics"), ("epochs", "--epochs"), ("student", "--student")))
DISTILL = _Flags(DistillConfig, "distill", skip=("lam",))

HELP = {
    "text_column": "column holding the text (csv/jsonl/json; auto-detected)",
    "remove_boilerplate": "drop lines and word runs repeated across many documents",
    "model": "'minilm' (offline default), a Hugging Face id, or a local folder",
    "mode": "frozen, top-n or full",
    "head": "auto, linear, mlp or knn (auto: knn if frozen, else linear)",
    "cross_fit_folds": "k ≥ 2: out-of-fold teacher logits for training documents",
    "n_topics": "number of topics K",
    "student": "the student model: scholar or prodlda",
    "kind": "knn teacher: auto (lowest dev perplexity among lexical, transformer, hybrid), transformer, lexical "
            "(TF-IDF neighbours, no transformer: the control), hybrid, random (the null control), or a word-level "
            "teacher: wordvec (lexical neighbours plus each document's words spread to related words by MiniLM word "
            "vectors, among co-occurring words), cooc (spread by co-occurrence alone) or wordvec-shuffled (the "
            "placebo); never chosen by auto",
    "word_k": "word-level teachers: related words kept per vocabulary word",
    "word_weight": "word-level teachers: the spread's share of the target, in (0, 1)",
    "clip": "logit clipping c (0 = off)",
    "background_correction": "γ: the target comes from z − γ·log p(word) (0 = off); unset: chosen on dev data "
                             "(a few γ on the first seed, more seeds if needed; bat_core/training/selection.py)",
    "fade": "fraction of the epochs, at the end, over which λ falls linearly towards 0 (0 = constant λ); with γ unset "
            "the dev rule fades the teacher (1) when no γ keeps the topics distinct",
    "encode_logits": "off, raw or doc_layer",
}


def _add_flags(parser: argparse.ArgumentParser, spec: _Flags) -> None:
    """One ``--flag`` per dataclass field (underscores become dashes); unset flags keep the dataclass default."""
    group = parser.add_argument_group(spec.tag)
    extra = dict(spec.aliases)
    for f in fields(spec.cls):
        if f.name in spec.skip:
            continue
        names = ["--" + spec.prefix + f.name.replace("_", "-")] + ([extra[f.name]] if f.name in extra else [])
        dest = f"{spec.tag}__{f.name}"
        kind = str(f.type).replace(" ", "")
        default = f.default
        helptext = HELP.get(f.name, "") + (f" (default: {default})" if default not in (None, ()) else "")
        if kind == "bool":
            group.add_argument(*names, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=helptext)
        elif kind.startswith("tuple["):
            group.add_argument(*names, dest=dest, nargs="*", default=None, metavar="WORD", help=helptext)
        else:
            group.add_argument(*names, dest=dest, type=_TYPES.get(kind.split("|")[0], str), default=None,
                               metavar=f.name.upper(), help=helptext)


def _config(spec: _Flags, args: argparse.Namespace, **extra: Any) -> Any:
    values = {name.split("__", 1)[1]: v for name, v in vars(args).items()
              if name.startswith(spec.tag + "__") and v is not None}
    return spec.cls.from_dict({**values, **extra})


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, status 2
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _folder(text: str) -> Path:
    """A folder argument, ``~`` expanded: the shell leaves ``--out=~/x`` alone (no expansion after ``=``), and a
    ``~`` kept here became a folder named ``~`` in the working folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty folder name (an unset variable?); give a folder")
    return Path(text).expanduser()


def _file(text: str) -> Path:
    """A file argument, ``~`` expanded (as :func:`_folder`)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty file name (an unset variable?); give a file")
    return Path(text).expanduser()


def _source(text: str) -> str:
    """An input: a path, ``~`` expanded (as :func:`_folder`), or the name of an installed corpus ('demo'), kept."""
    return os.path.expanduser(text)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=_source,
                   help="a .txt/.csv/.tsv/.jsonl/.json file, a folder or .zip of .txt files, or 'demo'")
    p.add_argument("--out", required=True, type=_folder, help="output folder")
    p.add_argument("--cache-dir", type=_folder, default=None,
                   help="teacher and run cache (default: $BAT_CACHE_DIR or ./.bat_cache)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda or mps")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-boilerplate-removal", dest="corpus__remove_boilerplate", action="store_false",
                   default=None, help="the same as --no-remove-boilerplate")
    _add_flags(p, CORPUS)
    _add_flags(p, TEACHER)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bat", description="BAT Explorer: topic models with knowledge distillation")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    fit = sub.add_parser("fit", help="train the teacher (if needed) and the student for every (λ, seed)")
    _add_common(fit)
    fit.add_argument("--lambdas", default=",".join(f"{lam:g}" for lam in default_lambdas()),
                     help="distillation weights, comma-separated; 0 is the baseline (default: %(default)s)")
    fit.add_argument("--seeds", type=int, default=1, help="number of seeds per λ (the same seeds as the app)")
    fit.add_argument("--label-column", default=None,
                     help="csv/tsv/jsonl/json: a column of categories; summary.json then reports how well each run's "
                          "θ predicts them (installed labelled corpora: automatic)")
    fit.add_argument("--reference", type=_source, default=None, metavar="FILE",
                     help="an outside reference for coherence (NPMI): longer in-domain texts in any input format, "
                          "or an installed corpus; summary.json and the lines below report NPMI against it too")
    fit.add_argument("--save-model", type=_folder, default=None, metavar="DIR",
                     help="also save the first seed's model at each λ as DIR/lambda-<λ>/ (for `bat transform` or "
                          "BAT.load)")
    _add_flags(fit, STUDENT)
    _add_flags(fit, DISTILL)
    teacher = sub.add_parser("teacher", help="train a teacher and export its logits store (works under torchrun)")
    _add_common(teacher)
    tr = sub.add_parser("transform", help="θ (topic proportions) of new documents from a saved model")
    tr.add_argument("model", type=_folder, help="a saved model folder (bat fit --save-model, or BAT.save)")
    tr.add_argument("input", type=_source,
                    help="the documents: a .txt/.csv/.tsv/.jsonl/.json file, or a folder or .zip of .txt")
    tr.add_argument("--out", required=True, type=_file,
                    help="the CSV file to write: one row per document read, doc, topic_1 … topic_K")
    tr.add_argument("--text-column", default=None, help="column holding the text (csv/jsonl/json; auto-detected)")
    tr.add_argument("--quiet", action="store_true", help="no messages on stderr")
    return parser


def configs(args: argparse.Namespace) -> FitConfig:
    """The settings the parsed flags name; every flag not given keeps the engine's default."""
    corpus = _config(CORPUS, args)
    teacher = _config(TEACHER, args, device=args.device)
    student, distill = StudentConfig(device=args.device), DistillConfig()
    if args.command == "fit":
        student = _config(STUDENT, args, device=args.device)
        distill = _config(DISTILL, args)
        if not distill.clip:
            distill = replace(distill, clip=None)  # 0 and None both mean "off": one cache entry
    return FitConfig(corpus=corpus, teacher=teacher, student=student, distill=distill)


def _floats(s: str, what: str) -> list[float]:
    try:
        vals = [float(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise BatError(f"{what} must be comma-separated numbers, like 0,0.5") from None
    if not vals:
        raise BatError(f"{what} is empty")
    return vals


def _make_cache_dir(folder: Path, what: str, created: list[Path]) -> None:
    """The cache folder, made (and checked) now, before any training (``check_writable_dir``); the folders made
    (``folder`` and its missing parents) are added to ``created``, so that a command that fails can remove them
    again while they are empty (:func:`_remove_if_empty`)."""
    absolute = folder.absolute()
    missing = [d for d in (absolute, *absolute.parents) if not d.exists()]
    try:
        check_writable_dir(folder, what)
    finally:
        created.extend(d for d in missing if d.is_dir())


def _remove_if_empty(created: list[Path]) -> None:
    """Remove the folders this command made, deepest first, where they are still empty: a failed command must not
    leave an empty cache folder behind. A folder with anything in it (a cache entry, a file of someone else's written
    meanwhile) stays: ``rmdir`` removes empty folders only."""
    for d in sorted(set(created), key=lambda d: len(d.parts), reverse=True):
        try:
            d.rmdir()
        except OSError:
            pass


SAVED_MODEL_FILES = {"model.json", "run.json", "arrays.safetensors"}  # BAT.save: estimator.MODEL_FILE + Run.save


def _check_outputs(args: argparse.Namespace, cfg: FitConfig, lambdas: list[float]) -> None:
    """Everything `bat fit` will write, checked before it trains: these used to fail only after all the training
    (a user's file in DIR/lambda-0.5/, a folder where summary.json goes), and a model no command could use was
    saved (a student that reads teacher logits)."""
    summary = Path(args.out) / "summary.json"
    if summary.is_dir():
        raise BatError(f"{summary} is a folder, and bat fit writes its summary there; give another --out folder")
    if args.save_model is None:
        return
    if cfg.distill.encode_logits != "off" and any(lam > 0 for lam in lambdas):
        # λ = 0 resets encode_logits (config.DistillConfig.baseline): only the λ > 0 models need the logits
        raise BatError(f"--encode-logits {cfg.distill.encode_logits} makes the λ > 0 students read the teacher's "
                       "logits of each document, which `bat transform` and BAT.transform do not have for new "
                       "documents, so the saved models could never be used; drop --save-model, or use "
                       "--encode-logits off (the default)")
    for lam in lambdas:  # the folders _save_models writes
        folder = Path(args.save_model) / f"lambda-{lam:g}"
        if folder.exists() and not folder.is_dir():
            raise BatError(f"{folder} is a file, where --save-model would write the model λ = {lam:g}; move it, or "
                           "give another --save-model folder")
        check_replaceable(folder.resolve(), SAVED_MODEL_FILES)


class _Interrupt:
    """Ctrl-C during `bat fit`. Python delivers SIGINT to the main thread only, as a KeyboardInterrupt: the training
    threads went on for tens of seconds, and a second Ctrl-C broke the interpreter's shutdown (a traceback from
    threading._shutdown, then SIGABRT). Now the first Ctrl-C only sets a flag, the ``should_stop`` of ``grid.fit``,
    which the trainer reads as it goes (each stack stops within its epoch); the second one exits at once (the threads
    may be inside a torch op).

    Installed in the main thread only (``signal.signal`` works nowhere else), and the previous handler is back
    afterwards, so ``main`` called in-process (tests, scripts) leaves Ctrl-C as it was."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> _Interrupt:
        # not where SIGINT is ignored: a job started in the background by a shell (`bat fit … &` in a script)
        # inherits that, and must not be stopped by a Ctrl-C meant for the foreground
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def __call__(self) -> bool:  # a ShouldStop
        return self.requested.is_set()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested.is_set():
            _say("interrupted again: quitting now (the runs finished so far are kept in the cache)")
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError, RuntimeError):  # a stream closed, or in the middle of a write
                    pass
            os._exit(130)  # not sys.exit: the training threads cannot be joined, and joining them hung
        self.requested.set()
        _say("stopping after the current epoch (finished runs are kept); press Ctrl-C again to quit now")


def _say(line: str) -> None:
    """One line on stderr from a signal handler: written to the descriptor, not through sys.stderr, whose buffer the
    interrupted code may be writing (a reentrant write raises RuntimeError)."""
    try:
        os.write(2, ("\n" + line + "\n").encode())
    except OSError:
        pass


class _Interrupted(Exception):
    """The job was stopped by Ctrl-C; the message says what was kept."""


@contextmanager
def _stopping(stop: _Interrupt | None, cache_dir: Path | None, clock: _Clock) -> Iterator[None]:
    """Turn the Cancelled that a Ctrl-C (``stop``) raises inside the job into an :class:`_Interrupted` that says how
    many runs this job finished and left in the cache (counted as the cache's run folders before and after)."""
    store = Cache(cache_dir).runs
    before = len(store.listing()) if stop is not None else 0
    try:
        yield
    except Cancelled:
        if stop is None or not stop():
            raise
        clock.took()  # no ETA line after the message
        kept = max(0, len(store.listing()) - before)
        runs, were, them = ("run", "was", "it") if kept == 1 else ("runs", "were", "them")
        raise _Interrupted(f"interrupted: {kept} {runs} finished by this job {were} kept in the cache (the same "
                           f"`bat fit` reads {them} instead of training again); no summary was written") from None


def _fit(args: argparse.Namespace, cfg: FitConfig, progress: Any, stop: _Interrupt | None = None) -> None:
    from .config import check_lambdas
    from .grid import fit, in_cache
    from .training.estimate import estimate

    lambdas = check_lambdas(_floats(args.lambdas, "--lambdas"))
    try:  # checked (1 to MAX_SEEDS) before anything is read
        seeds = seed_list(args.seeds)
    except BatError as e:
        raise BatError(f"--seeds: {e}") from None
    _check_outputs(args, cfg, lambdas)
    clock = _Clock()

    def before(p: Any) -> None:
        found, known = in_cache(p, args.cache_dir)
        later = "; the λ > 0 runs are keyed once γ is chosen" if p.gamma is not None else ""
        print(f"cache: {found} of {known} runs found, {known - found} to train{later}", file=sys.stderr)
        try:
            clock.start(estimate(p, args.cache_dir), p, args.cache_dir)
        except (BatError, OSError, ValueError, RuntimeError) as e:  # the job does not depend on its estimate
            print(f"no time estimate: {e}", file=sys.stderr)
            return
        print(clock.estimate.sentence(), file=sys.stderr)

    def after(result: Any) -> None:
        read = sum(result.cached)
        print(f"runs: {len(result.runs) - read} trained now, {read} read from the cache", file=sys.stderr)
        print(clock.took(), file=sys.stderr)
        if args.save_model is not None:
            _save_models(args.save_model, cfg, result)

    with _stopping(stop, args.cache_dir, clock):
        summary = fit(args.input, cfg, lambdas, seeds, args.out, args.cache_dir, progress,
                      label_column=args.label_column, on_plan=before, on_step=clock.step, on_result=after,
                      reference=args.reference, should_stop=stop)
    progress.close()
    print(json.dumps(summary["by_lambda"], indent=1))
    for line in coherence_lines(summary["coherence"]):
        print(line, file=sys.stderr)
    t = summary.get("teacher") or {}
    line = choice_line(t)
    if line:
        print(line, file=sys.stderr)
    if summary.get("background_correction"):
        from .training.selection import describe_gamma

        print(describe_gamma(summary["background_correction"]), file=sys.stderr)
    if summary.get("downstream"):
        d = summary["downstream"]
        print(f"Downstream ({d['labels']}): accuracy of a logistic regression on θ, "
              + ", ".join(f"λ={lam} {v['accuracy']['mean']:.3f}" for lam, v in d["by_lambda"].items()),
              file=sys.stderr)
    if (t.get("dev_perplexity") or 0) >= (t.get("unigram_dev_perplexity") or float("inf")):
        print(f"warning: the teacher's dev perplexity ({t['dev_perplexity']:.0f}) is no better than word "
              f"frequencies alone ({t['unigram_dev_perplexity']:.0f}); distillation is unlikely to help",
              file=sys.stderr)
    small = {s: summary["corpus"].get(f"{s}_docs", 0) for s in ("dev", "test")}
    if min(small.values()) < SMALL_SPLIT:
        print(f"warning: NPMI is scored on only {small['dev']} dev and {small['test']} test documents: with so few, "
              "its values (and the differences between runs) are mostly noise; give more documents", file=sys.stderr)
    print(f"wrote {Path(args.out) / 'summary.json'}", file=sys.stderr)


class _Clock:
    """The estimate before a job, an ETA line as stacks finish (at most one every few seconds), what it took.

    The line waits until the steps have been quiet for a moment (``SETTLE_S``): a stack's runs land together, one
    step each, and a line printed at the first of them counted one run of the stack where all had landed (`bat fit
    demo`: "9 of about 37 runs trained, 34 s so far, about 55 s left", 25 s before the end)."""

    EVERY_S, SETTLE_S = 5.0, 0.3

    def __init__(self) -> None:
        from .training.estimate import Tally

        self.estimate: Any = None
        self.t0 = time.time()
        self.tally = Tally()
        self.last = 0.0
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._closed = False  # set by took(): a timer already fired must not print after it

    def start(self, estimate: Any, plan: Any = None, cache_dir: Path | None = None) -> None:
        """Count against ``estimate`` from now; with the ``plan`` (and its cache), the rest of the grid is laid out
        again once the γ rule chooses (``Tally.chose``)."""
        self.estimate, self.t0 = estimate, time.time()
        self.tally.plan, self.tally.cache_dir = plan, cache_dir

    def step(self, step: Any) -> None:
        if self.estimate is None:
            return
        with self._lock:
            self.tally.step(step, self.estimate)
            if self._timer is not None:
                self._timer.cancel()
            if time.time() - self.last >= self.EVERY_S:
                self._timer = threading.Timer(self.SETTLE_S, self._line)
                self._timer.daemon = True
                self._timer.start()

    def _line(self) -> None:
        with self._lock:
            e, now = self.estimate, time.time()
            done = self.tally.runs_done(e)
            if self._closed or done == 0 or now - self.last < self.EVERY_S:
                return
            self.last = now
            left = self.tally.left_s(e, now - self.t0)
            print(f"{done} of about {self.tally.runs_total(e)} runs trained, {now - self.t0:.0f} s so far, about "
                  f"{left:.0f} s left", file=sys.stderr)

    def took(self) -> str:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
        est = f" (estimated {self.estimate.total_s:.0f} s)" if self.estimate is not None else ""
        return f"took {time.time() - self.t0:.0f} s{est}"


def coherence_lines(c: dict[str, Any]) -> list[str]:
    """NPMI per λ against every reference scored, the paired change against λ = 0, and which one to read: a gain on
    a sparse test split is never shown without the larger reference beside it."""
    refs = [("test", "test split"), ("corpus", "whole corpus")] + (
        [("reference", "reference")] if c.get("reference") else [])
    out = []
    for lam, e in c["by_lambda"].items():
        parts = []
        for key, label in refs:
            s = f"{label} {e[f'{key}_npmi']['mean']:.4f} ({e[f'{key}_pairs_seen']['mean']:.0%} of pairs seen)"
            d = e.get(f"paired_{key}_npmi_diff_vs_baseline")
            if d:
                s += f", {d['mean']:+.4f} vs λ=0 ({d['won']}/{d['n']} seeds)"
            parts.append(s)
        out.append(f"NPMI λ={lam}: " + "; ".join(parts) + f"; top words in {e['top_word_df']['mean']:.0f} documents "
                   "on average")
    read = {"test": "the test split", "corpus": "the whole corpus", "reference": "the reference"}[c["read"]]
    if c["test_sparse"]:
        out.append(f"warning: the test split saw fewer than {c['min_pairs_seen']:.0%} of the top-word pairs "
                   f"together: its NPMI is mostly zeros and its differences are noise; read the NPMI against {read}"
                   + ("" if not c.get("reference") else "" if c["read"] == "reference" else
                      " (the reference saw fewer of the pairs than the whole corpus: too small, or another domain)")
                   + ("" if c.get("reference") else " (or give --reference FILE: longer in-domain texts)"))
    else:
        out.append(f"read the NPMI against {read}")
    return out


def _save_models(folder: Path, cfg: FitConfig, result: Any) -> None:
    """``bat fit --save-model``: the first seed's run at each λ, saved as a model (the estimator's format)."""
    from .estimator import BAT

    first = result.plan.members[0].seed
    for run in result.runs:
        if run.seed == first:
            path = BAT.from_run(run, result.plan.corpus.vocab, cfg).save(folder / f"lambda-{run.lam:g}")
            print(f"saved the model λ = {run.lam:g}, seed {run.seed} to {path}", file=sys.stderr)


def _transform(args: argparse.Namespace) -> None:
    """``bat transform``: read the model and the documents, write θ as CSV (one row per document read)."""
    from .data.readers import read_documents
    from .estimator import BAT
    from .runs.exports import theta_csv
    from .students.inference import transform

    out = Path(args.out)
    if out.is_dir():
        raise BatError(f"--out {out} is a folder; name the CSV file to write")
    model_dir = Path(args.model)
    if model_dir.exists() and not model_dir.is_dir():  # the documents named first, or a file of the model's
        raise BatError(f"{model_dir} is a file; the model must be a folder saved by `bat fit --save-model` or "
                       "BAT.save (bat transform MODEL_FOLDER DOCUMENTS --out FILE)")
    model = BAT.load(model_dir)
    _, docs = read_documents(args.input, args.text_column)
    # BAT.transform with the counts kept: a document with no word of the vocabulary gets the proportions of an
    # empty document (the prior), which look like any other row of the CSV
    counts = model.vectorize(docs)
    theta = transform(model.run_, counts)
    atomic_write_bytes(out, theta_csv(theta))
    empty = int((counts.getnnz(axis=1) == 0).sum())
    if not args.quiet:
        if empty:
            print(f"warning: {empty} of {len(docs)} documents share no word with the model's vocabulary: their rows "
                  "are the model's prior, not evidence", file=sys.stderr)
        print(f"wrote θ of {len(docs)} documents × {model.n_topics} topics to {out}", file=sys.stderr)


def _teacher(args: argparse.Namespace, cfg: FitConfig, progress: Any) -> None:
    """Build the teacher and write its logits store to ``--out``; alone, or on every rank under torchrun."""
    from .base.distributed import current_dist, destroy, init_from_env
    from .data.corpus import load_corpus
    from .grid import get_teacher

    created = init_from_env(cfg.teacher.device)
    try:
        env = current_dist()
        if not env.is_main:
            progress.close()
            progress = None
        corpus = load_corpus(args.input, cfg.corpus, progress)
        teacher = get_teacher(corpus, cfg.teacher, args.cache_dir, progress)
        if progress is not None:
            progress.close()
        if env.is_main:
            out = teacher.save(Path(args.out))
            print(json.dumps({"key": teacher.key, **teacher.meta}, indent=1, default=str))
            print(f"wrote the teacher logits store to {out}", file=sys.stderr)
        env.barrier()
    finally:
        if created:
            destroy()


def _run(args: argparse.Namespace, progress: Any, stop: _Interrupt | None = None) -> int:
    if args.command == "transform":
        progress.close()
        _transform(args)
        return 0
    cfg = configs(args)
    from .base.device import pick_device

    pick_device(args.device)  # a device that is not there fails now, before anything is read or said
    # the output folders are checked, not made: they appear with their first file (a failed `bat fit` left an
    # empty --out folder behind, made before the input was read)
    check_writable_dir(Path(args.out), "--out", create=False)
    if getattr(args, "save_model", None) is not None:
        check_writable_dir(Path(args.save_model), "--save-model", create=False)
    if args.command == "teacher":  # the store replaces --out: only a folder with nothing else in it may be it
        check_replaceable(Path(args.out).resolve(), {ARRAYS_FILE, META_FILE})
    created: list[Path] = []
    try:
        if args.cache_dir is not None:
            _make_cache_dir(Path(args.cache_dir), "--cache-dir", created)
        elif "BAT_CACHE_DIR" in os.environ:
            if not os.environ["BAT_CACHE_DIR"].strip():
                raise BatError("BAT_CACHE_DIR is set but empty; unset it (the cache is then ./.bat_cache) or name a "
                               "folder")
            _make_cache_dir(default_cache_dir(), "BAT_CACHE_DIR", created)
        if args.command == "fit":
            _fit(args, cfg, progress, stop)
        else:
            _teacher(args, cfg, progress)
    except BaseException:
        _remove_if_empty(created)
        raise
    return 0


def _os_error_hint(command: str) -> str:
    """What to check after an OSError, naming only the paths this command writes (`bat transform` has no
    --cache-dir)."""
    if command == "transform":
        return "check that the file named by --out can be written (its folder exists and is writable)"
    if command == "fit":
        return "check that the folders named by --out, --save-model and --cache-dir can be written"
    return "check that the folders named by --out and --cache-dir can be written"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "fit":
        return _main(args)
    # Ctrl-C stops `bat fit` at an epoch's end; the handler stays until the last line is printed, so that a second
    # Ctrl-C while the job winds down still exits at once, without a traceback
    with _Interrupt() as stop:
        return _main(args, stop)


def _main(args: argparse.Namespace, stop: _Interrupt | None = None) -> int:
    from .base.progress import TqdmProgress

    progress = TqdmProgress(disable=args.quiet)
    try:
        return _run(args, progress, stop)
    except BatError as e:
        msg, rc = f"error: {e}", 2
    except _Interrupted as e:
        msg, rc = str(e), 130
    except (Cancelled, KeyboardInterrupt) as e:
        msg, rc = ("cancelled" if isinstance(e, Cancelled) else "interrupted"), 130
    except MemoryError:
        msg, rc = "error: out of memory; use a smaller --vocab-size, fewer documents or a smaller teacher", 2
    except BrokenPipeError:  # `bat fit … | head`: the reader left, nothing to say
        return 1
    except OSError as e:  # the machine's, not ours: a full disk, a folder that vanished or turned read-only
        if os.environ.get("BAT_DEBUG"):
            raise
        where = f" ({e.filename})" if e.filename else ""
        hint = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space"}.get(
            e.errno, _os_error_hint(args.command))
        msg, rc = f"error: {e.strerror or e}{where}; {hint}", 2
    except Exception as e:  # noqa: BLE001 - last resort: one line, not a traceback
        if os.environ.get("BAT_DEBUG"):
            raise
        msg, rc = f"internal error: {type(e).__name__}: {e} (rerun with BAT_DEBUG=1 for details)", 1
    progress.close()
    print(msg.replace("\n", " "), file=sys.stderr)
    return rc
