"""The process group for data-parallel teacher training under ``torchrun``. Imports torch only, nothing of ours.

Usage (the ordinary teacher command, started by torchrun)::

    torchrun --nproc_per_node 2 -m bat_core teacher demo --out teacher_dir [--teacher-mode top-n ...]

``torchrun`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; :func:`init_from_env` then joins the process group (gloo on
CPU, nccl on CUDA, one GPU per local rank) and :func:`bat_core.teachers.build.build_teacher` notices it by itself:

* every rank gets a strided shard of the documents to encode / export, and a slice of every global training batch;
* gradients are summed over ranks before clipping and the optimiser step. This is the all-reduce that
  ``DistributedDataParallel`` does, done by hand on one flat buffer so that the frozen-head path (no encoder), ranks
  whose slice of a short last batch is empty, and the exact single-process scaling (Σ loss / global batch) all work
  with one code path. Every rank starts from the same seed, so parameters agree without a broadcast;
* dev perplexities are all-reduced, so early stopping decides the same on every rank;
* each rank compresses the logits of its shard (top-k + tail, ``teachers.store``) and the shards are gathered
  and merged in corpus order; rank 0 writes the store.

With dropout off, a 2-process run gives the same teacher as a 1-process run up to float summation order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


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


def destroy() -> None:
    """Leave the process group joined by :func:`init_from_env`."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
