"""`python -m bat_core …`: the headless entry point for big jobs and scripts.

    python -m bat_core fit INPUT --out DIR [--topics K] [--lambdas 0,0.5] [--seeds N] …
    python -m bat_core teacher INPUT --out DIR [teacher options]

Problems the user can fix exit with status 2 and one line on stderr; never a traceback (set BAT_DEBUG=1 to see one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .config import DEFAULT_BAT_LAMBDA
from .errors import BatError

# The seeds of the original multiple-run script, in its order; further seeds continue from there.
PAPER_SEEDS = (121958, 131932, 259178, 365838, 671155)


def seed_list(n: int) -> list[int]:
    if n < 1:
        raise BatError("--seeds must be at least 1")
    return list(PAPER_SEEDS[:n]) + list(range(1, n - len(PAPER_SEEDS) + 1))


def _floats(s: str, what: str) -> list[float]:
    try:
        vals = [float(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise BatError(f"{what} must be comma-separated numbers, like 0,0.5") from None
    if not vals:
        raise BatError(f"{what} is empty")
    return vals


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, status 2
        print(f"error: {message} (see python -m bat_core {self.prog.split()[-1]} --help)", file=sys.stderr)
        raise SystemExit(2)


def _add_corpus_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="a .txt/.csv/.tsv/.jsonl/.json file, a folder or .zip of .txt files, or 'demo'")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--text-column", default=None, help="column holding the text (csv/jsonl/json; auto-detected)")
    p.add_argument("--vocab-size", type=int, default=None)
    p.add_argument("--min-df", type=float, default=None)
    p.add_argument("--max-df", type=float, default=None)
    p.add_argument("--no-boilerplate-removal", action="store_true",
                   help="keep lines and word runs repeated across many documents")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="teacher and run cache (default: $BAT_CACHE_DIR or ./.bat_cache)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda or mps")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_teacher_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--teacher-model", default=None,
                   help="'minilm' (offline default), a Hugging Face id, or a local folder")
    p.add_argument("--teacher-mode", default=None, choices=["frozen", "top-n", "full"])
    p.add_argument("--teacher-head", default=None, choices=["linear", "mlp", "knn"],
                   help="how the teacher maps an embedding to words (default: knn if frozen, else linear)")
    p.add_argument("--teacher-epochs", type=int, default=None)
    p.add_argument("--teacher-max-length", type=int, default=None)
    p.add_argument("--cross-fit", type=int, default=None,
                   help="k ≥ 2: out-of-fold teacher logits for training documents")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bat_core", description="BAT Explorer: topic models with knowledge distillation")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    fit = sub.add_parser("fit", help="train the teacher (if needed) and the student for every (λ, seed)")
    _add_corpus_args(fit)
    _add_teacher_args(fit)
    fit.add_argument("--topics", type=int, default=None, help="number of topics K")
    fit.add_argument("--lambdas", default=f"0,{DEFAULT_BAT_LAMBDA:g}",
                     help="distillation weights, comma-separated; 0 is the baseline (default: %(default)s)")
    fit.add_argument("--temperature", type=float, default=None)
    fit.add_argument("--clip", type=float, default=None, help="logit clipping c (0 = off)")
    fit.add_argument("--encode-logits", default=None, choices=["off", "raw", "doc_layer"])
    fit.add_argument("--seeds", type=int, default=1, help="number of seeds per λ")
    fit.add_argument("--epochs", type=int, default=None)
    teacher = sub.add_parser("teacher", help="train a teacher and export its logits store, on its own")
    _add_corpus_args(teacher)
    _add_teacher_args(teacher)
    return parser


def _configs(args: argparse.Namespace):
    from dataclasses import replace

    from .config import CorpusConfig, DistillConfig, FitConfig, StudentConfig, TeacherConfig

    def given(**kw):
        return {k: v for k, v in kw.items() if v is not None}

    corpus = CorpusConfig(**given(vocab_size=args.vocab_size, min_df=args.min_df, max_df=args.max_df,
                                  text_column=args.text_column), remove_boilerplate=not args.no_boilerplate_removal)
    teacher = TeacherConfig(**given(model=args.teacher_model, mode=args.teacher_mode, head=args.teacher_head,
                                    epochs=args.teacher_epochs, max_length=args.teacher_max_length,
                                    cross_fit_folds=args.cross_fit),
                            device=args.device)
    student = StudentConfig(device=args.device)
    distill = DistillConfig()
    if args.command == "fit":
        student = replace(student, **given(n_topics=args.topics, epochs=args.epochs))
        distill = replace(distill, **given(temperature=args.temperature, clip=args.clip,
                                           encode_logits=args.encode_logits))
    return FitConfig(corpus=corpus, teacher=teacher, student=student, distill=distill)


def _check_writable_dir(folder: Path, flag: str) -> None:
    """Fail before any training, not after it, when results or caches could not be written."""
    if folder.exists() and not folder.is_dir():
        raise BatError(f"{flag} {folder} is a file; give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BatError(f"cannot create the folder {folder} ({flag}): {e.strerror or e}") from None
    if not os.access(folder, os.W_OK):
        raise BatError(f"cannot write to the folder {folder} ({flag}): permission denied")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .progress import Cancelled, TqdmProgress

    progress = TqdmProgress(disable=args.quiet)
    try:
        cfg = _configs(args)
        _check_writable_dir(Path(args.out), "--out")
        if args.cache_dir is not None:
            _check_writable_dir(Path(args.cache_dir), "--cache-dir")
        if args.command == "fit":
            from .pipeline import fit

            lambdas = _floats(args.lambdas, "--lambdas")
            for lam in lambdas:
                if not 0 <= lam <= 1:
                    raise BatError(f"λ must be in [0, 1], not {lam:g}")
            lambdas = sorted({abs(lam) for lam in lambdas})  # a λ named twice is trained once (and -0.0 is 0)
            summary = fit(args.input, cfg, lambdas, seed_list(args.seeds), args.out, args.cache_dir, progress)
            progress.close()
            print(json.dumps(summary["by_lambda"], indent=1))
            t = summary.get("teacher") or {}
            if (t.get("dev_perplexity") or 0) >= (t.get("unigram_dev_perplexity") or float("inf")):
                print(f"warning: the teacher's dev perplexity ({t['dev_perplexity']:.0f}) is no better than word "
                      f"frequencies alone ({t['unigram_dev_perplexity']:.0f}); distillation is unlikely to help",
                      file=sys.stderr)
            print(f"wrote {Path(args.out) / 'summary.json'}", file=sys.stderr)
        else:
            from .corpus import load_corpus
            from .pipeline import get_teacher

            corpus = load_corpus(args.input, cfg.corpus, progress)
            teacher = get_teacher(corpus, cfg.teacher, args.cache_dir, progress)
            progress.close()
            out = Path(args.out)
            teacher.save(out)
            print(json.dumps({"key": teacher.key, **teacher.meta}, indent=1, default=str))
            print(f"wrote the teacher logits store to {out}", file=sys.stderr)
        return 0
    except BatError as e:
        progress.close()
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Cancelled:
        progress.close()
        print("cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        progress.close()
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        progress.close()
        print("error: out of memory; use a smaller --vocab-size, fewer documents or a smaller teacher", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - last resort: one line, not a traceback
        progress.close()
        if os.environ.get("BAT_DEBUG"):
            raise
        print(f"internal error: {type(e).__name__}: {e} (rerun with BAT_DEBUG=1 for details)", file=sys.stderr)
        return 1


