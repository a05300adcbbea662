"""Where and how a grid's members train: which members share one stacked model, how a CPU stack is split so that
every core has work, and how the stacks run (side by side on a CPU, one thread each; alone on a GPU).

Nothing here changes a result: a member gives what it gives when trained alone (training/trainer.py), whatever stack
it lands in. These are speed decisions, each with the measurement that made it (benchmarks/results/perf.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np
import torch

from ..base.device import cpu_threads, pick_device, thread_budget
from ..config import DistillConfig, StudentConfig
from ..data.corpus import Corpus

Member = tuple[StudentConfig, DistillConfig]
Job = tuple[list[int], torch.device]  # a stack: its members (indices into the grid's list) and its device


def cpu_workers() -> int:
    """How many CPU stacks may train side by side: torch's thread budget (the cores, or what OMP_NUM_THREADS or
    torch.set_num_threads set), so that a user who limits threads limits this too. The process's budget, not the
    calling thread's count, which a stack training elsewhere may have lowered (``base.device.thread_budget``)."""
    return max(1, thread_budget())


def stacks(members: Sequence[Member], corpus: Corpus, workers: int, first: Sequence[int] = ()) -> list[Job]:
    """The stacks to train, in the order they start: members whose student settings agree except for the seed, and
    that feed the encoder the same way (encode_logits), form one stack; on a CPU a large one is split by
    :func:`chunks`. Within a stack the λ = 0 members come first, then by seed: the teacher term runs on one
    contiguous slice.

    ``first`` (indices into ``members``): on a CPU with more than one worker, these train first, each in a stack
    of its own when there is a core for each (else together), while the other cores take the rest: the first thing a
    user looks at (a baseline and one BAT run) lands after one member's training instead of a whole chunk's. One
    each, not one stack of two: a distilled member costs up to twice a baseline (the teacher's target; NYT
    sentences, one `bat fit`: 105-119 s against 55-74 s per run, each a share of its stack), so side by side the
    pair lands when the slower one does, not after both on one core."""
    lead = set(first) if workers > 1 else set()
    same: dict[str, list[int]] = {}
    for i, (cfg, distill) in enumerate(members):
        shared = {k: v for k, v in cfg.to_dict().items() if k != "seed"}
        same.setdefault(repr((sorted(shared.items()), distill.encode_logits)), []).append(i)
    jobs: list[Job] = []
    for idx_all in same.values():
        device = pick_device(members[idx_all[0]][0].device)
        ahead = [i for i in idx_all if i in lead] if device.type == "cpu" else []
        rest = [i for i in idx_all if i not in ahead]
        lead_stacks = [[i] for i in ahead] if len(ahead) <= workers else [ahead] if ahead else []
        for idx in lead_stacks + (chunks(rest, members, corpus, device, workers) if rest else []):
            idx.sort(key=lambda i: (members[i][1].lam > 0, members[i][0].seed, i))
            jobs.append((idx, device))
    jobs.sort(key=lambda job: not (set(job[0]) & lead))  # stable: the lead stacks first, the others in order
    return jobs


def distilled_first(lams: Sequence[float]) -> list[int]:
    """The order in which the grid hands its rest to the trainer after a γ step (indices into ``lams``): the λ > 0
    members first, then the baselines, each in its given order. With one kind of stack (the default) :func:`stacks`
    orders the members itself (seed, then λ) and this changes nothing; where a baseline cannot share the distilled
    members' stack (they read teacher logits in the encoder, ``encode_logits``), its stack would otherwise start first
    and hold back the first seed's curve. The estimate lays the rest out in the same order."""
    return sorted(range(len(lams)), key=lambda i: lams[i] == 0)


def run(jobs: list[Job], train: Callable[[Job], None], workers: int, vocab_size: int) -> None:
    """Train every stack with ``train``: the CPU stacks side by side when there are several, the others alone."""
    cpu = [j for j in jobs if j[1].type == "cpu"]
    if len(cpu) > 1 and workers > 1:
        # one intra-op thread per stack, the stacks on as many threads as there are cores: Scholar's matrices are
        # too small to split well inside one op, so whole stacks side by side use the cores better (measured on
        # the demo grid, 2 cores: 52 s instead of 83 s)
        def alone_on_a_core(job: Job) -> None:
            with cpu_threads(1):  # in the stack's own thread: a thread's count is its own
                train(job)

        with ThreadPoolExecutor(min(workers, len(cpu)), thread_name_prefix="bat-stack") as pool:
            for _ in pool.map(alone_on_a_core, cpu):
                pass
        jobs = [j for j in jobs if j[1].type != "cpu"]
    for job in jobs:
        # one stack alone: on a CPU, one thread per 2,500 vocabulary words, at most what torch has. Not more for a
        # large batch: two threads cut a NewsArticles epoch from 0.21 to 0.13 s on an idle machine, but took 1.2-1.3 s
        # when a second such run shared the 2 cores (OpenMP's spinning threads; 0.18-0.24 s on one thread each)
        threads = max(1, min(workers, vocab_size // 2500))
        with cpu_threads(threads) if job[1].type == "cpu" else nullcontext():
            train(job)


# On a CPU a stack pays off while its (members × batch × V) decoder activations stay around cache-friendly sizes;
# beyond, each elementwise pass streams from memory and a member-step gets slower than in a smaller stack (measured:
# NewsArticles, K = 50, batch 200: 0.16 s per member-epoch with 11 members, 0.25 s with 33; demo, batch 58: 33
# members are faster than 11). So CPU stacks are capped at 2²² activation entries; a GPU takes every member at once.
CPU_STACK_ELEMENTS = 2**22


def chunks(idx: list[int], members: Sequence[Member], corpus: Corpus, device: torch.device,
            workers: int = 1) -> list[list[int]]:
    """Split one stack's members into chunks, in the order they should train: the first seed's members first,
    spread over every core (so that its whole λ curve lands early: the Compare slider is complete on one seed while
    the other seeds train), then the rest. Each part is split under the cap into as many chunks as a multiple of the
    workers, grouped by seed (members of one seed share minibatches), so every core gets the same work and no core
    waits alone for the last one."""
    if device.type != "cpu":
        return [list(idx)]
    cfg = members[idx[0]][0]
    per_member = batch_size(cfg, len(corpus.splits["train"])) * corpus.vocab_size
    cap = max(1, CPU_STACK_ELEMENTS // per_member)
    order = sorted(idx, key=lambda i: (members[i][0].seed, members[i][1].lam, i))
    head = [i for i in order if members[i][0].seed == members[order[0]][0].seed]
    if workers > 1 and workers <= len(head) < len(order):
        return _balanced(head, cap, workers) + _balanced(order[len(head):], cap, workers)
    return _balanced(order, cap, workers)


def _balanced(order: list[int], cap: int, workers: int) -> list[list[int]]:
    """``order`` in chunks of at most ``cap``, as many as a multiple of the workers, sizes differing by at most one
    (29 members in 4: 8, 7, 7, 7, not 8, 8, 8, 5, which left a core idle for 3/8 of the last pair's time: ≈ 36 s of
    a NewsArticles grid)."""
    n_chunks = -(-len(order) // cap)
    n_chunks = min(len(order), -(-n_chunks // workers) * workers)
    return [[int(i) for i in part] for part in np.array_split(np.asarray(order), n_chunks)]


def batch_size(cfg: StudentConfig, n_train: int) -> int:
    """Small corpora get smaller batches: with 250 documents, batch 200 would mean one step per epoch."""
    return min(cfg.batch_size, max(32, n_train // 4), n_train)
