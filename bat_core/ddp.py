"""Multi-process teacher training with ``torchrun`` (data parallel), and the teacher command line.

Usage::

    torchrun --nproc_per_node 2 -m bat_core.ddp demo --out teacher_dir [--mode top-n --max-length 128 ...]
    python -m bat_core.ddp demo --out teacher_dir          # the same, one process

``torchrun`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; :func:`init_from_env` then joins the process group (gloo on
CPU, nccl on CUDA, one GPU per local rank) and :func:`bat_core.teacher.build_teacher` notices it by itself:

* every rank gets a strided shard of the documents to encode / export, and a slice of every global training batch;
* gradients are summed over ranks before clipping and the optimiser step. This is the all-reduce that
  ``DistributedDataParallel`` does, done by hand on one flat buffer so that the frozen-head path (no encoder), ranks
  whose slice of a short last batch is empty, and the exact single-process scaling (Σ loss / global batch) all work
  with one code path. Every rank starts from the same seed, so parameters agree without a broadcast;
* dev perplexities are all-reduced, so early stopping decides the same on every rank;
* each rank compresses the logits of its shard (top-k + tail, :mod:`bat_core.logits`) and the shards are gathered
  and merged in corpus order; rank 0 writes the store.

With dropout off, a 2-process run gives the same teacher as a 1-process run up to float summation order.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from .config import CorpusConfig, TeacherConfig
from .errors import BatError


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a (possibly trivial) process group."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    comm_device: str = "cpu"  # nccl collectives need CUDA tensors

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, ids: np.ndarray) -> np.ndarray:
        """This rank's strided share: balanced even when ``ids`` is sorted by length."""
        return ids[self.rank:: self.world]

    def sum_floats(self, *xs: float) -> list[float]:
        if not self.active:
            return [float(x) for x in xs]
        t = torch.tensor(xs, dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(t)
        return t.tolist()

    def all_reduce_grads(self, params: list[torch.nn.Parameter]) -> None:
        """Sum gradients over ranks in one flat buffer (a rank with no documents contributes zeros)."""
        if not self.active:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1).float() for g in grads]).to(self.comm_device)
        dist.all_reduce(flat)
        offset = 0
        for p, g in zip(params, grads, strict=True):
            n = g.numel()
            p.grad = flat[offset: offset + n].view_as(g).to(device=p.device, dtype=p.dtype)
            offset += n

    def gather_rows(self, arr: np.ndarray) -> np.ndarray:
        """Concatenate every rank's rows (rank 0 first); rows may differ in number between ranks."""
        if not self.active:
            return arr
        wire = arr.astype(np.int32) if arr.dtype in (np.uint16, np.int8, np.int16) else arr
        t = torch.from_numpy(np.ascontiguousarray(wire)).to(self.comm_device)
        n = torch.tensor([t.shape[0]], dtype=torch.int64, device=self.comm_device)
        sizes = [torch.zeros_like(n) for _ in range(self.world)]
        dist.all_gather(sizes, n)
        longest = int(max(s.item() for s in sizes))
        padded = torch.zeros((longest, *t.shape[1:]), dtype=t.dtype, device=self.comm_device)
        padded[: t.shape[0]] = t
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded)
        out = np.concatenate([p[: int(s.item())].cpu().numpy() for p, s in zip(parts, sizes, strict=True)])
        return out.astype(arr.dtype)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def current_dist() -> DistEnv:
    """The process group joined by :func:`init_from_env` (or by the caller), else a single process."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistEnv()
    comm = "cuda" if dist.get_backend() == "nccl" else "cpu"
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if comm == "cuda":
        comm = f"cuda:{local}"
    return DistEnv(dist.get_rank(), dist.get_world_size(), local, comm)


def init_from_env(device: str = "auto") -> bool:
    """Join the torchrun process group when WORLD_SIZE > 1. Returns True when this call created it."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available() or dist.is_initialized():
        return False
    use_cuda = torch.cuda.is_available() and not device.startswith("cpu")
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return True


# ----------------------------------------------------------------------------------------------------- command line
_TYPES = {"int": int, "float": float, "str": str}


def _add_dataclass_args(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type) -> None:
    """One ``--flag`` per dataclass field (underscores become dashes); defaults come from the dataclass."""
    for f in fields(cls):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        kind = str(f.type).replace(" ", "")
        if kind == "bool":
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default)
        elif kind.startswith("tuple["):
            parser.add_argument(flag, dest=f.name, nargs="*", default=default, metavar="WORD")
        else:
            base = kind.split("|")[0]
            parser.add_argument(flag, dest=f.name, type=_TYPES.get(base, str), default=default,
                                metavar=f.name.upper())


def add_teacher_args(parser: argparse.ArgumentParser, corpus_options: bool = True) -> None:
    """Teacher (and optionally corpus) options, named after the config fields: ``--mode``, ``--max-length`` …"""
    _add_dataclass_args(parser.add_argument_group("teacher"), TeacherConfig)
    if corpus_options:
        _add_dataclass_args(parser.add_argument_group("corpus"), CorpusConfig)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bat_core.ddp", description="Train the BAT teacher and store its "
                                "logits for every document (run under torchrun for data parallel training).")
    p.add_argument("input", help="corpus: a file, folder, zip or installed corpus name (demo)")
    p.add_argument("--out", required=True, type=Path, help="folder for the teacher logits (meta.json + safetensors)")
    p.add_argument("--cache-dir", type=Path, default=None, help="reuse / store teachers and embeddings here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_teacher_args(p)
    return p


def _config_from_args(cls: type, args: argparse.Namespace):  # noqa: ANN202
    """Fields present in ``args``; a None only counts where None is the field's own default."""
    values = {f.name: getattr(args, f.name) for f in fields(cls)
              if hasattr(args, f.name) and (getattr(args, f.name) is not None or f.default is None)}
    return cls.from_dict(values)


def teacher_config_from_args(args: argparse.Namespace) -> TeacherConfig:
    return _config_from_args(TeacherConfig, args)


def run_teacher_cli(args: argparse.Namespace) -> int:
    """Build the teacher for ``args.input`` and write it to ``args.out``; works alone or under torchrun."""
    from .corpus import load_corpus
    from .progress import TqdmProgress
    from .teacher import build_teacher

    tcfg = teacher_config_from_args(args)
    ccfg = _config_from_args(CorpusConfig, args)
    created = init_from_env(tcfg.device)
    try:
        env = current_dist()
        bar = TqdmProgress(disable=getattr(args, "quiet", False) or not env.is_main)
        corpus = load_corpus(args.input, ccfg)
        logits = build_teacher(corpus, tcfg, cache_dir=getattr(args, "cache_dir", None), progress=bar)
        bar.close()
        if env.is_main:
            out = logits.save(args.out)
            m = logits.meta
            print(f"teacher {logits.key}: {m['n_docs']} docs × {m['V']} words, dev perplexity "
                  f"{m['dev_perplexity']:.1f} (unigram {m['unigram_dev_perplexity']:.1f}), {m['mode']} "
                  f"{m['model']}, {m['wall_time_s']:.0f} s on {m['device']} × {m['world_size']} → {out}")
        env.barrier()
    finally:
        if created:
            dist.destroy_process_group()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_teacher_cli(args)
    except BatError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
