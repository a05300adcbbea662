"""Device choice: CUDA when present (bf16 autocast there), then Apple MPS, then CPU (bf16 autocast where the CPU
has it in hardware)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .errors import BatError


def pick_device(name: str = "auto") -> torch.device:
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BatError("device 'cuda' was asked for but no CUDA GPU is visible; use --device auto or cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise BatError("device 'mps' was asked for but Apple MPS is not available; use --device auto or cpu")
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        raise BatError(f"unknown device {name!r}; use auto, cpu, cuda or mps")
    return torch.device(name)


def cpu_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX), where bf16 autocast pays.

    Measured on a 2-core AVX512-BF16 EPYC: MiniLM-L6 encodes the demo corpus in 9.3 s under bf16 autocast against
    17.8 s in fp32, embeddings at cosine ≥ 0.99995 to fp32. CPUs without it emulate bf16 and get slower, so they
    keep fp32. ``BAT_CPU_BF16=0`` turns it off (``=1`` forces it).
    """
    forced = os.environ.get("BAT_CPU_BF16", "").strip().lower()
    if forced in ("0", "1", "false", "true", "no", "yes", "off", "on"):
        return forced in ("1", "true", "yes", "on")
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private in torch 2.x; absent means no
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 autocast on CUDA GPUs that support it and on CPUs with native bf16; None (plain fp32) elsewhere."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if device.type == "cpu" and cpu_native_bf16():
        return torch.bfloat16
    return None


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


# torch's thread count belongs to each OS thread (OpenMP's), and a thread starts with the count the process set last:
# torch.set_num_threads writes both. So a thread that first touches torch while a cpu_threads(1) block is open
# anywhere in the process keeps one thread for its life, and reading the budget from it gives 1. Measured in the app:
# the Train page's estimate, computed while the background first look trained, laid the demo grid out on one core
# (98 s instead of 74 s), and a thread started then reported one worker. Hence the bookkeeping below: the budget is
# read once when the first block opens, reported as such while blocks are open, and given back when the last closes.
_threads_lock = threading.Lock()
_open_blocks = 0  # cpu_threads blocks open in this process, in any thread
_budget = 0  # the process's thread count when the first of them opened


def thread_budget() -> int:
    """How many threads torch may use in this process: its count outside every :func:`cpu_threads` block (the
    cores, or what OMP_NUM_THREADS or torch.set_num_threads set), whichever thread asks. Use it, not
    ``torch.get_num_threads()``, to decide how many workers or threads to use: the calling thread's own count may
    have been lowered by a block in another thread (see above)."""
    with _threads_lock:
        return _budget if _open_blocks else _process_count()


def _process_count() -> int:
    """The count a new thread starts with (the process's), read in a new thread: the caller's may be stale."""
    box: list[int] = []
    reader = threading.Thread(target=lambda: box.append(torch.get_num_threads()), name="bat-thread-count")
    reader.start()
    reader.join()
    return box[0]


@contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads (at least 1) in the calling thread, then restore its count; when the
    last block open in the process closes, the process's count is the budget again (:func:`thread_budget`).

    Small models lose more to thread hand-offs than they gain, and collapse when other processes share the cores
    (measured: 5 Scholar epochs on NewsArticles took 8.9 s on 1 thread, 109 s on 2 threads with another job busy).
    Set it in the thread that computes: threads started inside the block inherit ``n`` only by chance (they read the
    process's count when they first touch torch, and another block may have restored it meanwhile).
    """
    global _open_blocks, _budget
    with _threads_lock:
        if not _open_blocks:
            _budget = _process_count()
        _open_blocks += 1
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        with _threads_lock:
            _open_blocks -= 1
            torch.set_num_threads(before if _open_blocks else _budget)
