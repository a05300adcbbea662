"""How long a plan will take on this machine: said before it starts, corrected while it runs.

Two speeds are measured on this machine once and kept (``$XDG_CACHE_HOME/bat-explorer/speeds/…json``, by default
under ``~/.cache``: they belong to the machine, not to a project), then scaled to any corpus by its size:

* the student's: one training step of a stack of m members costs
  ``m·(B·(V·(a + b·K) + u·e) + V·(E + K)·w) + d·B·V·t + c`` seconds (B the batch, V the vocabulary, K the topics, E
  the encoder's width, u the mean distinct words of a training document, d the members that read a dense teacher
  target); a, b, c, e, t and w come from short stacked trainings on synthetic counts, long and short documents,
  with and without a teacher, at two batch sizes, timed epoch by epoch (:func:`student_speeds`), and so does how
  much slower two CPU stacks train side by side than one alone;
* the encoder's, when a transformer must encode the corpus: seconds per window as ``d + e·tokens``, from two batches
  of windows of different lengths (:func:`encoder_speeds`); the corpus's windows are counted with the tokenizer
  alone.

The plan's runs are then laid out exactly as the trainer lays them out (``scheduling.stacks``) and the stacks given
to the cores in order, as ``scheduling.run`` does. The γ rule's later rounds train only when its first round keeps
no γ, so they are an upper bound (``high_s``). While a job runs, :meth:`Estimate.remaining` rescales what is left by
how fast the finished part went against its own estimate.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import torch

from ..base.device import cpu_threads, describe, pick_device, thread_budget
from ..base.progress import ProgressEvent
from ..config import CorpusConfig, DistillConfig, StudentConfig, TeacherConfig
from ..data.corpus import SPLITS, Corpus
from . import scheduling

if TYPE_CHECKING:  # only for hints: the grid sits above training
    from ..grid import Member, Plan

SPEEDS_VERSION = 6  # 3: words and a dense target; 4: a faster decoder, CPU time; 5: weights, side by side; 6: side by
# side as seconds per step, targets read from tables
END_OF_RUN = 0.05  # θ for every document, BN statistics, scores: about 5% of a run (perf-tries.md, "end-of-epoch")


@dataclass(frozen=True)
class StudentSpeeds:
    """Seconds per training step of a stack:
    ``B·(m·(V·(per_cell + per_cell_topic·K) + u·per_word) + d·V·per_cell_target) + m·V·(E + K)·per_weight
    + per_step``.

    Why the two terms after the first: the encoder's input and the loss on the counts read each document's u distinct
    words (about 100 on news articles, 5 on sentences), and a member reading a dense teacher target pays for it over
    the whole vocabulary, a clipped one on short texts hardly at all (``trainer.SPARSE_TARGET_SHARE``). With one cost
    per cell, measured on long documents with a dense target, 4,000 sentences were estimated at 1.5× what they took.
    The dense target's term is measured on stacks whose targets the trainer reads from tables made once
    (``trainer.TARGET_TABLE_ENTRIES``); a stack too large for them computes its targets each step and costs more.

    Why ``per_weight``: Adam and the gradient buffers go over every member's V × (E + K) weights (the embeddings and
    β) once a step, whatever the batch. Folded into the cost per cell at a batch of 200, it made the demo (batches
    of 58) cost 2× their estimate (10 baselines, 50 epochs: 4.9 s taken, one-off imports left out; 2.4 s estimated).

    Why ``side_by_side_s``: CPU stacks train side by side as threads of one process, and two of them do not get two
    cores' worth: each waits for the interpreter's lock while the other launches its operations. That wait comes
    with every step, whatever the step computes, so it is a number of seconds added to each step, not a factor:
    on the 2-core VM, NYT sentences (4,000), two one-member baselines took 1.6× their time alone side by side (5.3 ms
    steps), two 5-member stacks 1.19× (25 ms steps), the calibration's 4-member stack 1.13× (28 ms); each is 3-5 ms
    more per step. As two processes, the one-member pair took 1.04× (no shared lock). One factor for every
    stack, measured on the calibration's, estimated NYT's first look at 0.7× what it took."""

    per_cell: float
    per_cell_topic: float
    per_step: float
    per_word: float = 0.0
    per_cell_target: float = 0.0
    per_weight: float = 0.0
    side_by_side_s: float = 0.0  # seconds added to each step of a CPU stack while another trains beside it

    def side_by_side(self, step: float) -> float:
        """How many times longer a step of ``step`` seconds alone takes while another stack trains beside it (at
        most 2: then two stacks side by side are no faster than one after the other)."""
        return min(1.0 + self.side_by_side_s / max(step, 1e-9), 2.0)

    def step_s(self, members: int, batch: int, vocab: int, topics: int, words: float = 0.0,
               dense_targets: int = 0, width: int = 0) -> float:
        """A step of ``members`` (``dense_targets`` of them with a dense teacher target) on documents of ``words``
        distinct words on average; ``width`` is the encoder's (``StudentConfig.emb_dim``)."""
        per_member = vocab * (self.per_cell + self.per_cell_topic * topics) + words * self.per_word
        weights = members * vocab * (width + topics) * self.per_weight
        return batch * (members * per_member + dense_targets * vocab * self.per_cell_target) + weights + self.per_step


@dataclass(frozen=True)
class EncoderSpeeds:
    """Seconds to encode one window of ``t`` tokens: ``per_window + per_token·t`` (batched as the teacher does)."""

    per_window: float
    per_token: float


# A nearest-neighbour teacher without encoding (the search, k and ε on the dev split, the export): 1.2-1.5 s from 300
# to 3,800 documents (measured)
KNN_SEARCH_S = 1.5


@dataclass(frozen=True)
class Estimate:
    """Seconds for each part of a plan on this machine; ``high_s`` if the γ rule needs all its budget."""

    teacher_s: float
    selection_s: float  # the γ rule's first round
    selection_high_s: float  # ... and its later rounds, within its budget
    grid_s: float  # the rest of the grid
    runs: int  # runs to train (not in the cache), the γ rule's first round included
    runs_high: int
    teacher_more_s: float = 0.0  # auto: every window encoded, if the screen on first windows picks the encoder
    first_look_s: float = 0.0  # to the first comparison (a baseline and a BAT run on disk); 0 when nothing trains
    early_s: float = 0.0  # the early look's training (before the teacher; part of selection_s)
    grid_runs: int | None = None  # the runs of grid_s (after the γ step); None: all of ``runs``
    selection_runs: int = 0  # the γ rule's first round (its baseline and one run per γ)
    # (λ, seed, seconds into the grid's part) at which each run of grid_s lands: the ETA's yardstick
    landing: tuple[tuple[float, int, float], ...] = ()

    @property
    def total_s(self) -> float:
        return self.teacher_s + self.selection_s + self.grid_s

    @property
    def rest_runs(self) -> int:
        """The runs of ``grid_s``."""
        return self.runs if self.grid_runs is None else self.grid_runs

    @property
    def high_s(self) -> float:
        return self.teacher_s + self.teacher_more_s + self.selection_high_s + self.grid_s

    def sentence(self) -> str:
        """One line for the Train page and the CLI."""
        if self.runs == 0 and self.teacher_s == 0:
            return "Everything is in the cache: nothing to train."
        why = " and ".join(w for w, extra in (("the γ rule needs its later rounds", self.selection_high_s >
                                              self.selection_s), ("the transformer wins the teacher's screen",
                                                                  self.teacher_more_s > 0)) if extra)
        high = f" (up to {duration(self.high_s)} if {why})" if self.high_s > self.total_s * 1.1 else ""
        teacher = f", teacher {duration(self.teacher_s)}" if self.teacher_s else ""
        look = f" The first comparison in about {duration(self.first_look_s)}." if self.first_look_s else ""
        return (f"Estimated time on this machine: about {duration(self.total_s)} for {self.runs} runs"
                f"{teacher}{high}.{look}")

    @staticmethod
    def remaining(estimated_total_s: float, estimated_done_s: float, elapsed_s: float) -> float:
        """Seconds left: the estimate of what is not done, rescaled by how long the done part really took against
        its estimate (so a machine slower than at calibration, or busier, is accounted for as soon as a stack
        finishes)."""
        left = max(0.0, estimated_total_s - estimated_done_s)
        if estimated_done_s <= 0:
            return left
        return left * elapsed_s / estimated_done_s


class Tally:
    """What a running job has done, in its estimate's units, from the grid's steps (``grid.Step``): the teacher, the
    γ step, and each run trained after it. The CLI and the app feed it the steps and ask it for the seconds left.

    Why by phase and not by runs counted: the runs of the early look and of the γ rule's rounds are not reported one
    by one (only the γ step is), and the grid's later runs land a whole stack at once. Counting runs alone, `bat fit
    demo` said "1 of about 37 runs trained, 27 s so far, about 213 s left" when 45 s were left: the early look, the
    teacher and the γ round (10 runs) had counted as one run. So the teacher step counts the teacher and the early
    look, the γ step the rule's rounds (with the part of its later rounds it read), and each later run its stack's
    estimated landing; runs read from the cache cost nothing."""

    def __init__(self, plan: Plan | None = None, cache_dir: Path | None = None) -> None:
        # the job's plan and cache: with them, the γ step lays the grid's rest out again for the rule's choice
        self.plan, self.cache_dir = plan, cache_dir
        # the grid's runs trained and reported one by one: the grid reports none before its γ step, so once that
        # step is done these are the rest's
        self.trained = 0
        self.teacher_done = False
        self.gamma_runs: int | None = None  # the runs the γ rule read, once its step is done
        self.landed: list[tuple[float, int]] = []  # (λ, seed) of each of those runs
        self._event_at: float | None = None  # time.monotonic() of the last step that did work
        self._regrid: tuple[Estimate, Estimate] | None = None  # (the job's estimate, its rest re-laid after γ)

    def chose(self, e: Estimate, p: Plan, choice: dict[str, Any], cache_dir: Path | None = None) -> None:
        """The γ rule chose: from now on, count against ``e`` with the grid's rest laid out for that choice
        (:func:`regrid`). :meth:`step` calls it at the γ step itself when the tally has the plan: later the rest's own
        runs are in the cache, and the rest would be laid out without them. An estimate only: a failure keeps
        ``e``."""
        try:
            self._regrid = (e, regrid(e, p, choice, cache_dir))
        except Exception:  # noqa: BLE001 - the job never depends on its ETA
            self._regrid = None

    def _use(self, e: Estimate) -> Estimate:
        return self._regrid[1] if self._regrid is not None and self._regrid[0] is e else e

    def step(self, step: object, e: Estimate | None = None) -> None:
        """Count a grid step; ``e``: the job's estimate, whose rest the γ step lays out again (with the plan)."""
        gamma = getattr(step, "gamma", None)
        if getattr(step, "member", None) is None and getattr(step, "run", None) is None and gamma is None:
            self.teacher_done = True  # cached or not: the estimate priced what the cache held when it was made
        elif gamma is not None:
            self.gamma_runs = int(gamma.get("budget", {}).get("runs", 0))
            if e is not None and self.plan is not None:
                self.chose(e, self.plan, gamma, self.cache_dir)
        elif getattr(step, "run", None) is not None:
            if getattr(step, "cached", False) or getattr(step, "trained_before", False):
                return  # read from the cache (no work), or trained in the γ step and counted there
            self.trained += 1
            member = getattr(step, "member", None)
            if hasattr(member, "lam") and hasattr(member, "seed"):
                self.landed.append((float(member.lam), int(member.seed)))
        else:
            return
        self._event_at = time.monotonic()

    def _later_share(self, e: Estimate) -> float:
        """How much of the γ rule's later rounds it read (0 before its step or when its first round sufficed)."""
        if self.gamma_runs is None or e.runs_high <= e.runs:
            return 0.0
        return min(max(self.gamma_runs - e.selection_runs, 0) / (e.runs_high - e.runs), 1.0)

    def runs_done(self, e: Estimate) -> int:
        """Runs trained so far: the reported ones, and once the γ step is done, every run before the grid's rest."""
        e = self._use(e)
        if self.gamma_runs is None:
            return self.trained
        return self.runs_total(e) - e.rest_runs + self.trained

    def runs_total(self, e: Estimate) -> int:
        """The plan's runs with the part of the γ rule's later rounds it read."""
        e = self._use(e)
        return e.runs + round(self._later_share(e) * (e.runs_high - e.runs))

    def done_s(self, e: Estimate) -> float:
        """Estimated seconds of work done: the teacher with the early look once built, the γ rule's rounds once it
        chose, and of the rest, the estimated landing of the latest run that landed (stacks train side by side: when
        one lands, the one beside it is as far along as the estimate says; a share per run counted it as not begun).
        Runs the estimate has no landing for count their share of the rest."""
        e = self._use(e)
        when = dict(((lam, seed), t) for lam, seed, t in e.landing)
        known = [when[k] for k in self.landed if k in when]
        rest = (max(known) if known and len(known) == self.trained
                else e.grid_s / max(1, e.rest_runs) * min(self.trained, e.rest_runs))
        if self.gamma_runs is None:
            return ((e.teacher_s + e.early_s) if self.teacher_done else 0.0) + rest
        return e.teacher_s + self._selection_s(e) + rest

    def _selection_s(self, e: Estimate) -> float:
        return e.selection_s + self._later_share(e) * (e.selection_high_s - e.selection_s)

    def total_s(self, e: Estimate) -> float:
        """The estimate's total with the part of the γ rule's later rounds it read."""
        e = self._use(e)
        return e.total_s - e.selection_s + self._selection_s(e)

    def left_s(self, e: Estimate, elapsed_s: float) -> float:
        """Seconds left. Before any work is done, the estimate less the time spent; after, what is left rescaled by
        how fast the done part went (:meth:`Estimate.remaining`, as of the last step that did work), less the time
        since that step: the ETA counts down between steps instead of growing while a stack trains."""
        e = self._use(e)
        done = self.done_s(e)
        if done <= 0 or self._event_at is None:
            return max(0.0, self.total_s(e) - elapsed_s)
        since = min(max(0.0, time.monotonic() - self._event_at), elapsed_s)
        return max(0.0, e.remaining(self.total_s(e), done, elapsed_s - since) - since)


def duration(s: float) -> str:
    """Seconds as the estimate says them: ``12 s``, ``4 min``, ``1.5 h`` (the CLI and the app share it)."""
    if s < 90:
        return f"{max(1, round(s))} s"
    return f"{s / 60:.0f} min" if s < 5400 else f"{s / 3600:.1f} h"


# ============================================================================================== measured speeds
def speeds_dir() -> Path:
    """Where measured speeds are kept: per machine and user, shared by every project and cache folder."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "bat-explorer" / "speeds"


def _speeds_path(what: str, device: torch.device) -> Path:
    threads = thread_budget()
    tag = f"{what}-{device.type}-{threads}t-torch{torch.__version__}-{platform.machine()}".replace("/", "_")
    return speeds_dir() / f"{tag}.json"


def _cached(path: Path, cls: type) -> object | None:
    try:
        d = json.loads(path.read_text())
        return cls(**d["speeds"]) if d.get("version") == SPEEDS_VERSION else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _store(path: Path, speeds: object, device: torch.device) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"version": SPEEDS_VERSION, "device": describe(device),
                                    "measured": time.strftime("%Y-%m-%dT%H:%M:%S"), "speeds": asdict(speeds)}))
    except OSError:
        pass  # a cache that cannot be written only means measuring again next time


def student_speeds(device: str = "auto") -> StudentSpeeds:
    """The student's step cost on this machine (measured once, ≈ 20 s on a 2-core CPU, then read from the cache)."""
    dev = pick_device(device)
    path = _speeds_path("student", dev)
    with _CALIBRATING:  # one calibration at a time: two side by side would each find the other's load
        found = _cached(path, StudentSpeeds) or _CONTENDED.get(str(path))
        if isinstance(found, StudentSpeeds):
            return found
        return _measure_student(dev, path)


def _measure_student(dev: torch.device, path: Path) -> StudentSpeeds:
    """Short stacked trainings (see :func:`_step_time`) fitted to :class:`StudentSpeeds`'s terms; kept at ``path``
    unless this thread got under ``QUIET_SHARE`` of a core meanwhile.

    The step's own cost, the weights' and the batch's are fitted together (non-negative least squares) to stacks of
    1 and 4 members at batches of 200 and 25, each the faster of two measurements: one measurement of a step strays
    by up to 30 % on the shared VM, and solving for three terms from three such figures gave a step's own cost
    anywhere from 0 to 6 ms (1.2-2.3 ms fitted so). The topics', a short document's and a dense target's shares then
    come from one stack each (again the faster of two), against that fit."""
    from scipy.optimize import nnls

    wall, cpu = time.perf_counter(), time.thread_time()
    V, K, steps = 1500, 20, 4
    weights = V * (StudentConfig().emb_dim + K)  # a member's weights that grow with the vocabulary
    shapes = [(m, batch) for m in (1, 4) for batch in (200, 25)]
    twice = lambda *a, **k: min(_step_time(*a, **k) for _ in range(2))  # noqa: E731
    measured = [twice(m, K, V, batch, steps, dev) for m, batch in shapes]
    # a step of m members at batch B: m·B·(a member's cost per document) + m·weights·per_weight + per_step
    (per_doc, per_member_weights, per_step), _ = nnls(np.array([[m * batch, m, 1.0] for m, batch in shapes]),
                                                     np.array(measured))
    B = 200
    s4 = 4 * (B * per_doc + per_member_weights) + per_step  # the fitted 4-member stack the other three are read against
    s4k = twice(4, 3 * K, V, B, steps, dev)
    short = twice(4, K, V, B, steps, dev, words=SHORT_WORDS)
    short_base = twice(4, K, V, B, steps, dev, words=SHORT_WORDS, lam=0.0)
    per_weight = per_member_weights / weights
    per_member = B * per_doc  # a member's batch share, long documents, dense target
    per_topic = min(max((s4k - s4 - 4 * V * 2 * K * per_weight) / (4 * B * V * 2 * K), 0.0),
                    per_member / (B * V) / (2 * K))  # K ≤ 60 at most doubles it
    fixed = per_step + 4 * per_member_weights
    member_short = min(max((short - fixed) / 4, 0.0), per_member)  # a member on short documents, dense target
    member_base = min(max((short_base - fixed) / 4, 0.0), member_short)  # ... and without a teacher
    per_word = (per_member - member_short) / (B * (LONG_WORDS - SHORT_WORDS))
    per_target = (member_short - member_base) / (B * V)
    share = (time.thread_time() - cpu) / max(time.perf_counter() - wall, 1e-9)
    # last, and left out of the share above: two threads, each waiting for the other's turn, are slower by design
    added = _side_by_side(4, K, V, B, 2 * steps, dev) if dev.type == "cpu" and scheduling.cpu_workers() > 1 else 0.0
    speeds = StudentSpeeds(per_cell=max(member_base / (B * V) - SHORT_WORDS * per_word / V - K * per_topic, 0.0),
                           per_cell_topic=per_topic, per_step=per_step, per_word=per_word,
                           per_cell_target=per_target, per_weight=per_weight,
                           side_by_side_s=max(added, 0.0))
    if dev.type == "cpu" and share < QUIET_SHARE:
        _CONTENDED[str(path)] = speeds  # this process uses it; a later one measures again, perhaps on a quiet machine
    else:
        _store(path, speeds, dev)
    return speeds


# A calibration whose thread got less than this share of a core was measured beside other work (in the app, the
# first look trained in the background): it is used by this process but not kept. Even timed in CPU time, such a
# measurement came out 1.8× dear (two busy threads beside it on the 2-core VM), where wall time gave 2.7×.
QUIET_SHARE = 0.8
_CONTENDED: dict[str, StudentSpeeds] = {}
_CALIBRATING = threading.Lock()


# the calibration's documents: distinct words of a long one (news articles: about 100) and of a sentence
LONG_WORDS, SHORT_WORDS = 95, 5


def _side_by_side(members: int, topics: int, vocab: int, batch: int, steps: int, device: torch.device,
                  rounds: int = 3) -> float:
    """Seconds a step of the stack of :func:`_step_time` takes longer while a second one trains beside it in another
    thread (as ``scheduling.run`` trains CPU stacks) than alone: wall time, the mean later epoch of the slower of the
    pair less the same stack alone measured just before, the median of ``rounds`` such differences (3.3-5.0 ms in
    three calibrations in a row on the shared 2-core VM, where one difference alone strays more)."""
    run = lambda _: _step_time(members, topics, vocab, batch, steps, device, clock=time.perf_counter, pick=np.mean)
    added = []
    with ThreadPoolExecutor(2) as pool:
        for _ in range(rounds):
            alone = run(0)
            added.append(max(pool.map(run, range(2))) - alone)
    return float(np.median(added))


def _step_time(members: int, topics: int, vocab: int, batch: int, steps: int, device: torch.device,
               words: int = LONG_WORDS, lam: float = 0.5, clock: Callable[[], float] | None = None,
               pick: Callable[[np.ndarray], float] = np.min) -> float:
    """Seconds per step of the fastest later epoch of a short stacked training on synthetic counts (documents of
    about ``words`` distinct words; λ > 0 as most of a grid, with a dense target), one thread, as CPU stacks train
    side by side (set in the calling thread, as each stack's thread sets its own). ``clock``: the thread's CPU time on
    a CPU unless given; ``pick``: which later epoch (the fastest unless given)."""
    from .trainer import _fit_stack

    rng = np.random.default_rng(0)
    n_train = batch * steps
    n = int(n_train / 0.8) + 2
    common = 20 if words > 40 else 1  # words every document has (none is empty)
    dense = rng.poisson((words - common) / vocab, (n, vocab)).astype(np.float32)
    dense[:, :common] += 1
    counts = sp.csr_matrix(dense)
    idx = rng.permutation(n)
    n_dev = (n - n_train) // 2
    splits = dict(zip(SPLITS, (np.sort(idx[:n_train]), np.sort(idx[n_train:n_train + n_dev]),
                               np.sort(idx[n_train + n_dev:])), strict=True))
    corpus = Corpus("calibration", [""] * n, counts, [f"w{i}" for i in range(vocab)], splits, CorpusConfig())

    class Logits:
        key, meta = "calibration", {}
        z = rng.normal(0, 1, (n, vocab)).astype(np.float32)

        def dense(self, rows: np.ndarray) -> np.ndarray:
            return self.z[rows]

    cfg = StudentConfig(n_topics=topics, epochs=6, batch_size=batch, device=device.type)
    stamps: list[float] = []
    # On a CPU the stack trains on this thread alone (one intra-op thread), so its CPU time is its cost on a free
    # core: the app calibrates while it trains the first look in the background, and wall time then measured the
    # steps up to 2.7× dearer than on a free core (4,000 questions: 27 min estimated beside two busy threads, 9-11
    # min when quiet, 11 min taken).
    clock = clock or (time.thread_time if device.type == "cpu" else time.perf_counter)

    def tick(event: ProgressEvent) -> None:
        stamps.append(clock())

    members_ = [(replace(cfg, seed=s), DistillConfig(lam=lam, background_correction=0.0) if lam else DistillConfig())
                for s in range(members)]
    start = clock()
    with cpu_threads(1) if device.type == "cpu" else nullcontext():
        _fit_stack(corpus, members_, Logits(), device, tick, None)  # one stack of exactly ``members``
    epochs = np.diff([start, *stamps])
    # the fastest later epoch: another process on the cores only ever slows an epoch down, and the estimate is for
    # this machine, not for this minute (while a job runs, its ETA follows the load)
    return float(pick(epochs[1:]) / steps) if len(epochs) > 1 else float(epochs.sum() / steps)


def encoder_speeds(tcfg: TeacherConfig, device: str = "auto") -> EncoderSpeeds:
    """The frozen encoder's cost per window on this machine (measured once per model and length, then cached)."""
    from ..teachers.encoder import DocEncoder, load_encoder

    dev = pick_device(device)
    path = _speeds_path(f"encoder-{Path(str(tcfg.model)).name}-{tcfg.max_length}", dev)
    found = _cached(path, EncoderSpeeds)
    if isinstance(found, EncoderSpeeds):
        return found
    from ..base.device import amp_dtype

    tok, model, _ = load_encoder(tcfg.model, tcfg.seed)
    model.to(dev).eval()
    enc = DocEncoder(model, tcfg.pooling, int(tok.pad_token_id), amp_dtype(dev))
    batch = tcfg.encode_batch_size
    short, long = 32, min(tcfg.max_length, 256)
    times = {}
    with torch.no_grad():
        enc.embed_chunks([[101] * short] * 2)  # first call: kernels and allocations
        for length in (short, long):
            runs = []
            for _ in range(3):  # the fastest of three: other processes only ever slow a batch down
                t0 = time.perf_counter()
                enc.embed_chunks([[101] * length] * batch)
                runs.append((time.perf_counter() - t0) / batch)
            times[length] = min(runs)
    per_token = max((times[long] - times[short]) / (long - short), 0.0)
    speeds = EncoderSpeeds(per_window=max(times[short] - per_token * short, 0.0), per_token=per_token)
    _store(path, speeds, dev)
    return speeds


def window_tokens(corpus: Corpus, tcfg: TeacherConfig) -> tuple[list[int], list[int]]:
    """The token counts of every window the encoder may see, and of each document's first window (what ``auto``
    screens its choice on). The tokenizer alone: no model is loaded."""
    from transformers import AutoTokenizer

    from ..teachers.encoder import resolve_model, tokenize

    source, _ = resolve_model(tcfg.model)
    tok = AutoTokenizer.from_pretrained(source, local_files_only=True)
    chunks = tokenize(tok, corpus.texts, tcfg.max_length, tcfg.long_docs, tcfg.max_chunks)
    lengths = [len(w) for w in chunks.ids]
    return lengths, [lengths[i] for i in chunks.start[:-1]]


# ====================================================================================================== the plan
def sparse_target(distill: DistillConfig, vocab: int, words: float) -> bool:
    """Whether the trainer will hand this member's teacher target to the loss as sparse rows: a clip c keeps about
    c × u of V entries per document (u its distinct words), sparse below ``trainer.SPARSE_TARGET_SHARE``. A member
    whose clip the γ rule has yet to choose counts as dense (the estimate stays on the slow side)."""
    from .trainer import SPARSE_TARGET_SHARE

    c = distill.clip or 0.0
    return c > 0 and c * words <= SPARSE_TARGET_SHARE * vocab


def stacks_time(members: Sequence[scheduling.Member], corpus: Corpus, speeds: StudentSpeeds,
                first: Sequence[int] = ()) -> float:
    """Seconds to train ``members`` as the trainer would (:func:`landing_times`: when the last one lands)."""
    return max(landing_times(members, corpus, speeds, first), default=0.0)


def landing_times(members: Sequence[scheduling.Member], corpus: Corpus, speeds: StudentSpeeds,
                  first: Sequence[int] = ()) -> list[float]:
    """Seconds from the start until each member's run lands, trained as the trainer would: the same stacks, given to
    the cores in order, each step slowed by the measured ``side_by_side_s`` while several share the cores
    (:class:`StudentSpeeds`, :func:`_share_cores`); a stack's members land together."""
    if not members:
        return []
    workers = scheduling.cpu_workers()
    jobs = scheduling.stacks(members, corpus, workers, first)
    n_train = len(corpus.splits["train"])
    words = float(np.diff(corpus.counts[corpus.splits["train"]].indptr).mean()) if n_train else 0.0
    costs, slower = [], []  # per stack: seconds alone, and how many times longer while another trains beside it
    for idx, _ in jobs:
        cfg = members[idx[0]][0]
        batch = scheduling.batch_size(cfg, n_train)
        steps = max(1, n_train // batch)
        kd = [members[i][1] for i in idx if members[i][1].lam > 0]
        # the trainer goes sparse only when every target of the stack is sparse (trainer._Teacher.step)
        dense = 0 if all(sparse_target(d, corpus.vocab_size, words) for d in kd) else len(kd)
        step = speeds.step_s(len(idx), batch, corpus.vocab_size, cfg.n_topics, words, dense, cfg.emb_dim)
        costs.append(cfg.epochs * steps * step * (1 + END_OF_RUN))
        slower.append(speeds.side_by_side(step))
    landed = [0.0] * len(members)
    cpu = [(c, idx, f) for c, (idx, d), f in zip(costs, jobs, slower, strict=True) if d.type == "cpu"]
    if len(cpu) <= 1 or workers <= 1:  # one after the other (scheduling.run)
        order = list(zip(costs, (idx for idx, _ in jobs), strict=True))
        t = 0.0
    else:
        ends = _share_cores([c for c, _, _ in cpu], workers, [f for *_, f in cpu])
        for end, (_, idx, _) in zip(ends, cpu, strict=True):
            for i in idx:
                landed[i] = end
        order = [(c, idx) for c, (idx, d) in zip(costs, jobs, strict=True) if d.type != "cpu"]
        t = max(ends)
    for c, idx in order:
        t += c
        for i in idx:
            landed[i] = t
    return landed


def _share_cores(costs: Sequence[float], workers: int, slower: Sequence[float]) -> list[float]:
    """When each of ``costs`` (seconds alone, in the order they start) finishes on ``workers`` cores, each taking the
    next when it is free (``ThreadPoolExecutor.map``): while two or more train, stack i goes ``slower[i]`` times
    slower (:meth:`StudentSpeeds.side_by_side`); one left alone (an odd stack at the end, the shorter of the first
    look's pair done) at full speed."""
    queue, running, t = list(enumerate(costs)), {}, 0.0
    ends = [0.0] * len(costs)
    while queue or running:
        while queue and len(running) < workers:
            i, c = queue.pop(0)
            running[i] = c
        rate = {i: 1.0 / slower[i] if len(running) > 1 else 1.0 for i in running}
        dt = min(left / rate[i] for i, left in running.items())
        t += dt
        for i in list(running):
            running[i] -= dt * rate[i]
            if running[i] <= 1e-9 * max(1.0, costs[i]):
                ends[i] = t
                del running[i]
    return ends


def calibrate(device: str = "auto") -> str:
    """Measure (or read) the student's speeds and the default encoder's on this machine; what ``make install`` runs,
    so that the first estimate is not measured beside the app's background training (a calibration measured there
    is not kept: see ``QUIET_SHARE``). Returns one line saying where they are kept."""
    student_speeds(device)
    encoder_speeds(TeacherConfig(), device)
    if not _speeds_path("student", pick_device(device)).exists():
        return ("training speeds measured but not kept: the machine was busy or the folder "
                f"{speeds_dir()} cannot be written; the app measures them again on first use")
    return f"training speeds of this machine measured and kept in {speeds_dir()}"


def estimate(p: Plan, cache_dir: Path | None = None) -> Estimate:
    """Seconds for plan ``p`` on this machine, from the cached speeds (measured on first use): the teacher when it
    must be built, the γ rule's first round, its later rounds as an upper bound, and the rest of the grid (the other
    seeds' baselines with it). Runs already in the cache cost nothing."""
    from .cache import Cache

    cache = Cache(cache_dir)
    corpus, tcfg, g = p.corpus, p.teacher, p.gamma
    speeds = student_speeds(p.members[0].student.device)

    def todo(ms: Sequence[Member]) -> list[Member]:
        return [m for m in ms if not cache.runs.has(m.key)]

    def time_of(ms: Sequence[Member], first: Sequence[Member] = ()) -> float:
        keys = {f.key for f in first}
        return stacks_time([(m.student, m.distill) for m in ms], corpus, speeds,
                           [i for i, m in enumerate(ms) if m.key in keys])

    teacher_s = teacher_more_s = 0.0
    if p.needs_teacher and not cache.teacher_cached(corpus, tcfg):
        teacher_s = KNN_SEARCH_S
        if tcfg.uses_encoder:
            enc = encoder_speeds(tcfg, tcfg.device)
            every, first_windows = window_tokens(corpus, tcfg)
            cost = lambda tokens: len(tokens) * enc.per_window + sum(tokens) * enc.per_token
            if tcfg.head_kind == "knn" and tcfg.kind == "auto":  # screened on first windows; the rest if it must
                teacher_s += cost(first_windows)
                teacher_more_s = cost(every) if len(every) > len(first_windows) else 0.0
            else:  # fine-tuning: forward and backward (≈ 3 forwards) for every epoch of every fold
                runs = 1 if tcfg.mode == "frozen" else 3 * tcfg.epochs * max(1, tcfg.cross_fit_folds)
                teacher_s += runs * cost(every)
    fixed = [m for m in p.members if not m.distill.gamma_pending]
    if g is None:
        grid = todo(fixed)
        lands = _landing(grid, corpus, speeds)
        return Estimate(teacher_s, 0.0, 0.0, _last(lands), len(grid), len(grid), teacher_more_s, landing=lands)
    first_keys = {m.key for m in g.members}
    first = todo(g.members)
    selection_s = time_of(first, [g.baseline, g.first_look])
    # the first comparison: the early look's pair before the teacher when there is one (grid._early_look; its
    # teacher is the nearest-neighbour search alone), else the γ step's first stack after the teacher
    early = p.early is not None and teacher_s > 0
    look = todo([g.baseline, p.early if early else g.first_look])  # type: ignore[list-item]
    # the early look trains the pair alone, before the teacher (grid._early_look)
    early_s = time_of(look, look) if early else 0.0
    # the pair trains first, side by side (scheduling.stacks with both as ``first``)
    first_look_s = (KNN_SEARCH_S if early else teacher_s) + time_of(look, look) if look else 0.0
    later_runs = [*g.faded, *g.clipped]
    for base, constant, faded, clipped in g.more:
        later_runs += [base, *constant, *faded, *clipped]
    # after γ: the λ > 0 runs, less the one the γ step trained already (the chosen candidate, first seed), and the
    # other seeds' baselines, in the order grid.execute hands them over
    rest = _distilled_first([*(m for m in p.members if m.distill.gamma_pending and not (m.lam == g.lam and
                                                                                      m.seed == g.seed)),
                             *(m for m in todo(fixed) if m.key not in first_keys)])
    # the later rounds on further seeds train those seeds' baselines when the plan holds them: counted in the rest
    in_rest = {m.key for m in rest}
    later = [m for m in todo(later_runs)[:max(0, p.selection_budget - len(g.members))] if m.key not in in_rest]
    # the early look trains its candidate once more when auto chooses another teacher; adopted otherwise (no cost)
    lands = _landing(rest, corpus, speeds)
    return Estimate(teacher_s, selection_s, selection_s + time_of(later), _last(lands), len(first) + len(rest),
                    len(first) + len(later) + len(rest), teacher_more_s, first_look_s, early_s,
                    grid_runs=len(rest), selection_runs=len(g.members), landing=lands)


def _landing(ms: Sequence[Member], corpus: Corpus, speeds: StudentSpeeds) -> tuple[tuple[float, int, float], ...]:
    """(λ, seed, seconds) at which each of ``ms`` lands (:func:`landing_times`), as ``Estimate.landing`` holds them."""
    times = landing_times([(m.student, m.distill) for m in ms], corpus, speeds)
    return tuple((float(m.lam), int(m.seed), t) for m, t in zip(ms, times, strict=True))


def _distilled_first(ms: Sequence[Member]) -> list[Member]:
    """``ms`` in the order the grid hands the rest to the trainer after γ (``scheduling.distilled_first``)."""
    return [ms[i] for i in scheduling.distilled_first([m.lam for m in ms])]


def _last(lands: tuple[tuple[float, int, float], ...]) -> float:
    return max((t for *_, t in lands), default=0.0)


def regrid(e: Estimate, p: Plan, choice: dict[str, Any], cache_dir: Path | None = None) -> Estimate:
    """``e`` with the grid's rest laid out again for the γ the rule chose. Before the choice the rest's λ > 0 runs
    count as reading a dense teacher target (the clip is not known yet); a clipped choice on short texts makes
    them sparse and cheaper (4,000 questions: the rest estimated at 362 s, taken in 216 s, and the ETA after the γ
    step 1.7× too long). Runs the rule already trained at the chosen γ (on further seeds) drop out of the rest; the
    other seeds' baselines stay in it (they train last, with their seeds)."""
    from .cache import Cache

    g = p.gamma
    if g is None:
        return e
    cache = Cache(cache_dir)
    resolved = p.with_gamma(choice["gamma"], choice["fade"], choice.get("clip"))
    rest = _distilled_first([m for m in resolved.members if not (m.lam == g.lam and m.seed == g.seed)
                             and m.key != g.baseline.key and not cache.runs.has(m.key)])
    lands = _landing(rest, p.corpus, student_speeds(p.members[0].student.device))
    gone = e.rest_runs - len(rest)  # trained by the rule: counted in its rounds
    return replace(e, grid_s=_last(lands), grid_runs=len(rest), runs=e.runs - gone, runs_high=e.runs_high - gone,
                   landing=lands)
