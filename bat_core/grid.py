"""The λ × seeds grid: one path from settings to runs, shared by the CLI, the app, the estimator and the benchmarks.

    p = plan(corpus, tcfg, scfg, dbase, lambdas, seeds)   # what would be trained: members, keys, teacher or not
    result = execute(p, cache_dir, progress, should_stop, on_step)   # teacher once, cached runs read, rest trained
    out = summary(result, settings, wall_time_s, reference)   # per λ over seeds, paired with λ = 0; coherence

* A *member* is one (λ, seed) student. λ = 0 is always the plain baseline (no teacher, no teacher logits in the
  encoder, T and c reset), so every λ = 0 run of a corpus and student setting shares one cache entry.
* Run keys come from :func:`bat_core.runs.store.run_key`, computed here once per member before anything trains, so
  ``execute`` knows which runs are in the cache, and reports per member whether it came from there.
* The teacher is built (or read from its cache) once, and only when a member needs it.
* When the background correction γ is unset (the default), the plan carries a :class:`GammaChoice`: a few
  first-seed runs that ``execute`` trains (or reads) right after the teacher, chooses γ from with the dev-data rule
  of :mod:`bat_core.training.selection`, then keys and trains every λ > 0 member with that γ. When no γ keeps the topics
  distinct, the rule's later rounds (the same γ with a faded teacher, then with a clipped target) train too, within
  the plan's ``selection_budget``, and the members get the chosen fade and clip.
* First look first: the γ step's first stack is the first seed's baseline and one candidate, and after γ the first
  seed's runs train before the other seeds (``training.scheduling``), so there is something to compare early; the
  other seeds' baselines train last, with their seeds' λ > 0 runs. With the ``auto`` teacher still to build, that
  first look does not wait for its encoding: the baseline and the candidate train first on the teacher ``auto``
  builds when the encoder loses (``Plan.early``, no encoding), and when ``auto`` then chooses that teacher (the same
  logits, bit for bit) the candidate's run is its run too.
* Every missing member is trained by :func:`_train_missing`, the one place that calls the student trainer.
"""

from __future__ import annotations

import numbers
import platform
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .base.device import cpu_threads, thread_budget
from .base.errors import BatError
from .base.io import check_writable_dir, write_json
from .base.progress import Progress, ShouldStop, check_stop
from .config import (
    DEFAULT_BAT_LAMBDA,
    MAX_SEEDS,
    PAPER_SEEDS,
    DistillConfig,
    FitConfig,
    StudentConfig,
    TeacherConfig,
    check_lambdas,
    check_seeds,
)
from .data.corpus import Corpus, load_corpus, vectorize_reference
from .data.readers import read_documents
from .evaluation.coherence import MIN_PAIRS_SEEN, coherence, which_to_read
from .evaluation.metrics import top_words
from .evaluation.stats import by_lambda, mean_std, paired_differences, summarize
from .runs.store import Run, run_key
from .teachers.choice import median_length, teacher_name, without_encoder
from .teachers.store import TeacherLogits
from .training import scheduling, selection
from .training.cache import Cache, teacher_key
from .training.selection import CLIP, FADE, GAMMA_GRID, GAMMA_SEEDS, selection_lambda

__all__ = ["GammaChoice", "Member", "Plan", "Prepared", "Result", "Step", "arm", "default_lambdas", "execute",
           "fit", "get_teacher", "in_cache", "member", "plan", "prepare", "seed_list", "summary"]


def seed_list(n: int) -> list[int]:
    """The first ``n`` seeds of the shared scheme: those of the original multiple-run script (config.PAPER_SEEDS),
    in its order, then 1, 2, …. The app, the CLI and the benchmarks all use them, so a run trained in one is found
    in the cache by the others."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= MAX_SEEDS:
        raise BatError(f"the number of seeds must be a whole number from 1 to {MAX_SEEDS:,}, not {n!r}")
    n = int(n)
    return list(PAPER_SEEDS[:n]) + list(range(1, n - len(PAPER_SEEDS) + 1))


def default_lambdas() -> list[float]:
    """The baseline and the default BAT λ: what is trained when the user names no λ."""
    return [0.0, DEFAULT_BAT_LAMBDA]


# ================================================================================================== the plan
@dataclass(frozen=True)
class Member:
    """One student to have: its settings, the teacher it needs (if any) and its run-cache key."""

    lam: float
    seed: int
    student: StudentConfig
    distill: DistillConfig  # canonical: a λ = 0 member carries the plain baseline settings
    teacher_key: str | None  # None for the baseline
    key: str

    @property
    def needs_teacher(self) -> bool:
        return self.distill.active

    @property
    def label(self) -> str:
        return f"λ={self.lam:g} seed={self.seed}"


@dataclass(frozen=True)
class GammaChoice:
    """The choice of γ a plan still has to make on dev data: the baseline and one candidate per γ, first seed; the
    second round (``faded``: the same γ with the teacher faded), trained only if no candidate keeps the topics
    distinct; the third (``clipped``: the same γ, the teacher's target clipped), only if neither round did; and
    (``more``) the rounds that ran on further seeds, read one at a time while still none does."""

    lam: float
    seed: int
    baseline: Member
    candidates: tuple[Member, ...]
    faded: tuple[Member, ...] = ()
    clipped: tuple[Member, ...] = ()
    # further seeds, read one at a time while no candidate keeps the uniqueness: (baseline, candidates, faded,
    # clipped) each
    more: tuple[tuple[Member, tuple[Member, ...], tuple[Member, ...], tuple[Member, ...]], ...] = ()

    @property
    def members(self) -> tuple[Member, ...]:
        return (self.baseline, *self.candidates)

    @property
    def first_look(self) -> Member:
        """The candidate trained first, next to the baseline, so that a BAT run can be looked at (as provisional)
        while the others train: the middle γ of the grid."""
        return self.candidates[len(self.candidates) // 2]

    @property
    def label(self) -> str:
        more = f"; {len(self.faded)} more, teacher faded, if no γ keeps the topics distinct" if self.faded else ""
        if self.clipped:
            more += f"; {len(self.clipped)} more, target clipped, if still none does"
        if self.more:
            more += f"; the same on up to {len(self.more)} more seeds if still none does"
        return (f"background correction γ on dev data ({len(self.members)} runs at λ={self.lam:g} seed={self.seed}"
                f"{more})")


@dataclass(frozen=True)
class Plan:
    corpus: Corpus
    teacher: TeacherConfig
    members: tuple[Member, ...]  # λ > 0 members have γ unset (and a provisional key) while ``gamma`` is pending
    gamma: GammaChoice | None = None
    # the first look before the ``auto`` teacher exists: the γ step's first-look candidate with ``early_teacher``,
    # the teacher ``auto`` builds when no candidate that uses the encoder wins (teachers.choice.without_encoder)
    early: Member | None = None
    early_teacher: TeacherConfig | None = None

    @property
    def needs_teacher(self) -> bool:
        return any(m.needs_teacher for m in self.members)

    @property
    def early_look_keys(self) -> frozenset[str]:
        """The run keys of the early look (the first seed's baseline and ``early``), or none without one."""
        if self.early is None or self.gamma is None:
            return frozenset()
        return frozenset({self.gamma.baseline.key, self.early.key})

    @property
    def selection_budget(self) -> int:
        """The most runs the γ rule may train for this plan (0 when γ is set): see ``selection.selection_budget``."""
        g = self.gamma
        return selection.selection_budget(len(g.members) + len(g.faded) + len(g.clipped), len(self.members)) if g else 0

    @property
    def teacher_key(self) -> str | None:
        return teacher_key(self.corpus, self.teacher) if self.needs_teacher else None

    @property
    def steps(self) -> list[str]:
        """Human-readable steps in execution order: the teacher (when needed), then each member."""
        return ((["teacher"] if self.needs_teacher else []) + ([self.gamma.label] if self.gamma else [])
                + [m.label for m in self.members])

    def with_gamma(self, gamma: float, fade: float | None = None, clip: float | None = None) -> Plan:
        """The plan once γ (and the fade and clip, when the rule chose them) is chosen: every pending member gets
        it, and with it its final run key."""
        def chosen(d: DistillConfig) -> DistillConfig:
            return replace(d, background_correction=gamma, fade=d.fade if fade is None else fade,
                           clip=d.clip if not clip else clip)

        members = tuple(member(self.corpus, self.teacher, m.student, chosen(m.distill))
                        if m.distill.gamma_pending else m for m in self.members)
        return replace(self, members=members, gamma=None)


def arm(distill: DistillConfig, lam: float) -> DistillConfig:
    """The distillation settings at λ; λ = 0 is always the plain baseline (no teacher anywhere, encoder input off)."""
    return replace(distill, lam=float(lam)).canonical() if lam > 0 else DistillConfig().canonical()


def member(corpus: Corpus, tcfg: TeacherConfig, student: StudentConfig, distill: DistillConfig) -> Member:
    """The member for exactly these settings (``distill.lam`` is its λ, ``student.seed`` its seed)."""
    d = arm(distill, distill.lam)
    tkey = teacher_key(corpus, tcfg) if d.active else None
    key = run_key(corpus.hash, tkey, student.to_dict(), d.to_dict())
    return Member(lam=d.lam, seed=student.seed, student=student, distill=d, teacher_key=tkey, key=key)


def plan(corpus: Corpus, teacher: TeacherConfig, student: StudentConfig, distill: DistillConfig,
         lambdas: Sequence[float], seeds: Sequence[int]) -> Plan:
    """Every (λ, seed) member, baselines first, then by λ; ``distill`` gives T, c, … for the λ > 0 members."""
    from .training.trainer import check_trainable

    check_trainable(corpus, student)
    if student.student == "prodlda" and distill.encode_logits != "off":  # before the teacher is built, not after
        raise BatError("ProdLDA does not read teacher logits in its encoder (encode_logits must be off); "
                       "use the Scholar student for that")
    seeds = check_seeds(seeds)
    lams = check_lambdas(lambdas)
    members = tuple(member(corpus, teacher, replace(student, seed=s), replace(distill, lam=lam))
                    for lam in lams for s in seeds)
    gamma = None
    median = median_length(corpus.counts, corpus.splits["train"])  # words per training document: short or not
    if any(m.distill.gamma_pending for m in members):
        lam = selection_lambda(lams)
        fades = selection.has_faded_round(median)

        def at(seed: int) -> tuple[Member, tuple[Member, ...], tuple[Member, ...], tuple[Member, ...]]:
            cfg = replace(student, seed=seed)
            cand = lambda g, fade, clip=distill.clip: member(corpus, teacher, cfg, replace(
                distill, lam=lam, background_correction=g, fade=fade, clip=clip))
            # a set fade is the user's; short documents have no faded round (selection.has_faded_round)
            faded = tuple(cand(g, FADE) for g in GAMMA_GRID) if distill.fade == 0 and fades else ()
            clipped = tuple(cand(g, distill.fade, CLIP) for g in GAMMA_GRID) if not distill.clip else ()  # so is a clip
            constant = tuple(cand(g, distill.fade) for g in GAMMA_GRID)
            return member(corpus, teacher, cfg, DistillConfig()), constant, faded, clipped

        # further seeds for the rule: the plan's own first (their runs serve the grid), then the default seeds
        extra = [s for s in [*seeds[1:], *seed_list(GAMMA_SEEDS)] if s != seeds[0]]
        gamma = GammaChoice(lam, seeds[0], *at(seeds[0]),
                            more=tuple(at(s) for s in list(dict.fromkeys(extra))[:GAMMA_SEEDS - 1]))
    early = early_teacher = None
    if gamma is not None and teacher.kind == "auto" and teacher.head_kind == "knn":
        early_teacher = replace(teacher, kind=without_encoder(median))
        early = member(corpus, early_teacher, gamma.first_look.student, gamma.first_look.distill)
    return Plan(corpus, teacher, members, gamma, early, early_teacher)


def in_cache(p: Plan, cache_dir: Path | None = None) -> tuple[int, int]:
    """(runs found in the cache, runs whose settings are known now): what a restart will not train again.

    While γ is still to be chosen, the λ > 0 members' keys are not known yet: the γ step's first round stands for
    them (its later rounds train only if the rule needs them), so the second number grows once γ is chosen."""
    store = Cache(cache_dir).runs
    keys = {m.key for m in p.members if not m.distill.gamma_pending}
    if p.gamma is not None:
        keys |= {m.key for m in p.gamma.members}
    return sum(store.has(k) for k in keys), len(keys)


# ================================================================================================= execution
@dataclass(frozen=True)
class Step:
    """What ``execute`` just finished: the teacher (``member`` None) or one member's run."""

    index: int  # into plan.steps
    label: str
    cached: bool
    wall_time_s: float
    member: Member | None = None
    run: Run | None = None
    teacher_meta: dict[str, Any] | None = None
    gamma: dict[str, Any] | None = None  # the γ step: what was chosen, from which runs
    # a run this execution trained before the grid's own step (the early look's, the γ step's), reported again here
    trained_before: bool = False


@dataclass
class Result:
    plan: Plan
    runs: list[Run]  # in plan.members order
    cached: list[bool]  # per member: read from the run cache (True) or trained now (False)
    teacher: TeacherLogits | None = None
    teacher_cached: bool | None = None  # None when no member needed a teacher
    teacher_time_s: float = 0.0
    steps: list[Step] = field(default_factory=list)
    gamma: dict[str, Any] | None = None  # γ chosen on dev data by this execution (None when it was set)

    @property
    def teacher_meta(self) -> dict[str, Any] | None:
        return {"key": self.teacher.key, **self.teacher.meta} if self.teacher is not None else None


OnStep = Callable[[Step], None]


_BUILDING: dict[str, threading.Lock] = {}  # teacher cache path → the lock of whoever builds it in this process
_BUILDING_LOCK = threading.Lock()


def get_teacher(corpus: Corpus, tcfg: TeacherConfig, cache_dir: Path | None = None, progress: Progress | None = None,
                should_stop: ShouldStop | None = None) -> TeacherLogits:
    """The teacher for (corpus, settings): trained once, then read from the cache.

    One build per teacher at a time in a process: the app may start building the default teacher when a corpus is
    loaded, and a Train pressed meanwhile waits for that build and reads its result instead of starting another."""
    from .teachers.build import build_teacher  # imports transformers: only when a teacher is needed

    cache = Cache(cache_dir)
    where = str(cache.teacher_path(teacher_key(corpus, tcfg)))
    with _BUILDING_LOCK:
        lock = _BUILDING.setdefault(where, threading.Lock())
    while not lock.acquire(timeout=0.25):  # waiting for another build: still cancellable
        check_stop(should_stop)
    try:
        # on every thread the process has: this thread may have first touched torch while stacks trained elsewhere
        # (it would then encode on one; base.device.thread_budget)
        with cpu_threads(thread_budget()):
            return build_teacher(corpus, tcfg, cache.root, progress, should_stop)
    finally:
        lock.release()


def _train_missing(corpus: Corpus, members: list[tuple[StudentConfig, DistillConfig]],
                   teacher: TeacherLogits | None, progress: Progress | None, should_stop: ShouldStop | None,
                   on_run: Callable[[int, Run], None], first: Sequence[int] = ()) -> None:
    """Train every member not in the cache; ``on_run(i, run)`` as each one is ready (it saves the run), so a
    cancelled or failed job keeps every stack that finished.

    The one call site of the student trainer: members that share student settings train together as one stacked
    model (``train.fit_students``), each with the same result as if it were trained alone.
    """
    from .training.trainer import fit_students

    if not members:
        return
    needed = teacher if any(d.active for _, d in members) else None
    fit_students(corpus, members, needed, progress, should_stop, on_run, first)  # each saved as its stack finishes


def execute(p: Plan, cache_dir: Path | None = None, progress: Progress | None = None,
            should_stop: ShouldStop | None = None, on_step: OnStep | None = None) -> Result:
    """Load or train the teacher once (if a member needs it), choose γ if the plan asks for it, read cached runs,
    train and save the missing ones.

    ``on_step`` hears about every finished step (the teacher, the γ choice, then each member) as it happens; runs
    are saved as soon as they exist, so a cancelled job keeps what it finished. ``result.plan`` is the plan with γ
    resolved, whose member keys are those of the runs.
    """
    cache = Cache(cache_dir)
    result = Result(p, runs=[], cached=[])

    def done(step: Step) -> None:
        result.steps.append(step)
        if on_step is not None:
            on_step(step)

    fresh: set[str] = set()  # keys trained by this execution before the grid's own step (not "from the cache")
    if p.needs_teacher:
        ready = prepare(p, cache.root, progress, should_stop)
        result.teacher, result.teacher_cached, result.teacher_time_s = ready.teacher, ready.cached, ready.wall_s
        fresh |= ready.trained
        done(Step(0, "teacher", result.teacher_cached, result.teacher_time_s, teacher_meta=result.teacher_meta))
    if p.gamma is not None:
        t0 = time.time()
        g = p.gamma
        # the γ runs alone: the plan's other baselines do not depend on γ, but they train last, with their seed's
        # λ > 0 runs (a seed's whole curve in one stack). Trained ahead (before the teacher, or with the γ runs) they
        # were 1-member stacks, the dearest per run, and held back the teacher, γ and the first seed's curve: the
        # demo's curve came 4-7 s later and the whole job 1-6 s later (docs/results.md, section 11)
        sel, sel_cached = _runs(p.corpus, list(g.members), cache, result.teacher, progress, should_stop,
                                first={g.baseline.key, g.first_look.key})
        fresh |= {r.key for r, c in zip(sel, sel_cached, strict=True) if not c}
        cached = not any(r.key in fresh for r in sel)

        def train(members: Sequence[Member]) -> list[Run]:  # the rule's later rounds, when it reads them
            nonlocal cached
            runs, were_cached = _runs(p.corpus, list(members), cache, result.teacher, progress, should_stop)
            fresh.update(r.key for r, c in zip(runs, were_cached, strict=True) if not c)
            cached = cached and all(were_cached)
            return runs

        result.gamma = selection.read_rule(sel, g.faded, g.clipped, g.more, train, p.selection_budget)
        done(Step(len(result.steps), g.label, cached, time.time() - t0, gamma=result.gamma))
        p = result.plan = p.with_gamma(result.gamma["gamma"], result.gamma["fade"], result.gamma["clip"])
    first = len(result.steps)
    # after a γ step, the other seeds' baselines must not hold back the first seed's curve
    order = scheduling.distilled_first([m.lam for m in p.members]) if result.gamma else list(range(len(p.members)))

    def on_member(j: int, run: Run, cached: bool, wall: float) -> None:
        i = order[j]
        done(Step(first + i, p.members[i].label, cached and run.key not in fresh, wall, p.members[i], run,
                  trained_before=cached and run.key in fresh))

    runs, were = _runs(p.corpus, [p.members[i] for i in order], cache, result.teacher, progress, should_stop,
                       on_member)
    at = {i: j for j, i in enumerate(order)}
    result.runs = [runs[at[i]] for i in range(len(p.members))]
    result.cached = [were[at[i]] and result.runs[i].key not in fresh for i in range(len(p.members))]
    return result


@dataclass(frozen=True)
class Prepared:
    """What :func:`prepare` did: the plan's teacher, whether it was read from the cache, the seconds it took (the
    early look's training not counted) and the run keys trained on the way (the early look's)."""

    teacher: TeacherLogits
    cached: bool
    wall_s: float
    trained: frozenset[str] = frozenset()


def prepare(p: Plan, cache_dir: Path | None = None, progress: Progress | None = None,
            should_stop: ShouldStop | None = None) -> Prepared:
    """The plan's teacher, read from the cache or built; when ``auto`` must build it for a plan that chooses γ, the
    early first look trains before it (:func:`_early_look`) and is adopted once it exists (:func:`_adopt`).

    The first part of :func:`execute`; the app also runs it ahead, for the Train page's defaults, as soon as a corpus
    is loaded (``ui.prebuild``), so that a Train pressed later finds the first look on disk."""
    cache = Cache(cache_dir)
    cached = cache.teacher_cached(p.corpus, p.teacher)
    early = _early_look(p, cache, progress, should_stop) if not cached else None
    t0 = time.time()
    teacher = get_teacher(p.corpus, p.teacher, cache.root, progress, should_stop)
    trained = _adopt(p, cache, teacher, *early) if early is not None else set()
    return Prepared(teacher, cached, time.time() - t0, frozenset(trained))


def _early_look(p: Plan, cache: Cache, progress: Progress | None, should_stop: ShouldStop | None
                ) -> tuple[TeacherLogits, list[Run], list[bool]] | None:
    """The first look while the ``auto`` teacher is still to build: the teacher ``auto`` builds when the encoder
    loses (``p.early_teacher``: no encoding, seconds), then the first seed's baseline and the first-look candidate
    on it, side by side. Returns that teacher, the two runs and whether each came from the cache; None without an
    early look.

    Why: the encoding ``auto`` screens with is most of the time to the first comparison (demo 18 s of 33 s,
    NewsArticles 236 s of 340 s; docs/results.md, section 11), and the teacher it then chose was this one on every
    corpus measured. The runs are real runs of that teacher, saved under its key; :func:`_adopt` moves the
    candidate's run to its ``auto`` key when the logits agree (and keeps it under its own key otherwise).

    The plan's other baselines do not train here, nor in the γ step: they train last, in their seed's stack (see
    :func:`execute`)."""
    g = p.gamma
    if p.early is None or p.early_teacher is None or g is None:
        return None
    teacher = get_teacher(p.corpus, p.early_teacher, cache.root, progress, should_stop)
    runs, cached = _runs(p.corpus, [g.baseline, p.early], cache, teacher, progress, should_stop,
                         first={g.baseline.key, p.early.key})
    return teacher, runs, cached


def _adopt(p: Plan, cache: Cache, teacher: TeacherLogits, early_teacher: TeacherLogits, runs: list[Run],
           cached: list[bool]) -> set[str]:
    """After the early look, with ``teacher`` built: the keys this execution trained, and the first-look
    candidate's run moved to its ``auto`` key when ``teacher`` holds ``early_teacher``'s logits bit for bit (the
    same student, trained once). Otherwise that candidate trains in the γ step as it would have, and the early run
    stays, a run of its own teacher."""
    g = p.gamma
    assert g is not None
    trained = {r.key for r, c in zip(runs, cached, strict=True) if not c}
    early = runs[1]
    if cache.runs.has(g.first_look.key) or not teacher.same_logits(early_teacher):
        return trained
    config = {**early.config, "teacher_key": teacher.key, "teacher": dict(teacher.meta)}
    key = run_key(p.corpus.hash, teacher.key, config["student"], config["distill"])
    if key != g.first_look.key:  # the plan and the trainer must agree, or the cache would never hit
        raise RuntimeError(f"run key mismatch adopting the first look: planned {g.first_look.key}, got {key}")
    cache.runs.save(replace(early, key=key, config=config))
    # the early run was this one under another teacher's name: one family on the pages, not two alike (a family
    # holding only the early look would otherwise stay in the pickers, and a picker left on it showed one λ)
    cache.runs.remove(early.key)
    return trained | ({key} if early.key in trained else set())


def _runs(corpus: Corpus, members: list[Member], cache: Cache, teacher: TeacherLogits | None,
          progress: Progress | None, should_stop: ShouldStop | None,
          on_member: Callable[[int, Run, bool, float], None] | None = None,
          first: set[str] | frozenset[str] = frozenset()) -> tuple[list[Run], list[bool]]:
    """Every member's run, read from the run cache or trained (and saved at once); and which were cached. Members
    whose key is in ``first`` train in a stack of their own that starts first (``scheduling.stacks``)."""
    store = cache.runs
    found = [store.load(m.key) for m in members]
    runs: list[Run | None] = list(found)
    for i, run in enumerate(found):
        if run is not None and on_member is not None:
            on_member(i, run, True, 0.0)
    missing = [i for i, run in enumerate(found) if run is None]
    t_last = time.time()

    def on_run(j: int, run: Run) -> None:
        nonlocal t_last
        i = missing[j]
        if run.key != members[i].key:  # the trainer and the plan must agree, or the cache would never hit
            raise RuntimeError(f"run key mismatch for {members[i].label}: planned {members[i].key}, trained {run.key}")
        store.save(run)
        runs[i] = run
        now = time.time()
        if on_member is not None:
            on_member(i, run, False, now - t_last)
        t_last = now

    _train_missing(corpus, [(members[i].student, members[i].distill) for i in missing], teacher, progress,
                   should_stop, on_run, [j for j, i in enumerate(missing) if members[i].key in first])
    return [r for r in runs if r is not None], [r is not None for r in found]


# =================================================================================================== summaries
def coherence_table(result: Result, reference: sp.spmatrix | None = None) -> dict[str, Any]:
    """NPMI of every run against the test split, the whole corpus and an outside reference (counts over the
    corpus vocabulary, or None), per run key and per λ (mean ± std over seeds, and paired with λ = 0 by seed), and
    which one to read (``evaluation.coherence``)."""
    corpus = result.plan.corpus
    test = corpus.split_counts("test")
    per_run = {r.key: coherence(top_words(r.beta, int(r.config["student"].get("npmi_top_n", 10))), test,
                                corpus.counts, reference) for r in result.runs}
    sparse = bool(np.mean([c["test_sparse"] for c in per_run.values()]) >= 0.5) if per_run else False
    by_lam = by_lambda(result.runs)
    base = by_lam.get(0.0, [])
    metrics = ["test_npmi", "corpus_npmi", "test_pairs_seen", "corpus_pairs_seen", "top_word_df"]
    if reference is not None:
        metrics += ["reference_npmi", "reference_pairs_seen"]
    table: dict[str, Any] = {}
    for lam, rs in by_lam.items():
        entry: dict[str, Any] = {m: mean_std([per_run[r.key][m] for r in rs]) for m in metrics}
        for m in ("test_npmi", "corpus_npmi", "reference_npmi"):
            d = paired_differences(rs, base, of=lambda r, m=m: per_run[r.key][m]) if lam > 0 and m in metrics else []
            if d:
                entry[f"paired_{m}_diff_vs_baseline"] = {**mean_std(d), "won": int(sum(x > 0 for x in d))}
        table[f"{lam:g}"] = entry
    def seen(where: str) -> float:  # the share of top-word pairs seen together there, mean over the runs
        return float(np.mean([c[f"{where}_pairs_seen"] or 0.0 for c in per_run.values()])) if per_run else 0.0

    read = which_to_read(sparse, seen("reference") if reference is not None else None, seen("corpus"))
    return {"test_sparse": sparse, "read": read,
            "min_pairs_seen": MIN_PAIRS_SEEN, "runs": per_run, "by_lambda": table}


def summary(result: Result, settings: dict[str, Any], wall_time_s: float,
            reference: sp.spmatrix | None = None) -> dict[str, Any]:
    """What ``summary.json`` holds: corpus, settings, teacher (meta and time), every run, per-λ statistics, and
    coherence against the test split, the whole corpus and an outside reference (:func:`coherence_table`)."""
    corpus = result.plan.corpus
    meta = result.teacher_meta
    return {
        "corpus": {"name": corpus.name, "hash": corpus.hash, **corpus.stats},
        "settings": settings,
        "teacher": ({**meta, "description": teacher_name(meta), "wall_time_s": result.teacher_time_s}
                    if meta is not None else None),
        "background_correction": result.gamma,
        "runs": [{"lam": r.lam, "seed": r.seed, "key": r.key, "teacher_key": r.config["teacher_key"], **r.metrics,
                  "topics": r.topics} for r in result.runs],
        "by_lambda": summarize(result.runs),
        "coherence": coherence_table(result, reference),
        "wall_time_s": wall_time_s,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }


def fit(source: str | Path, cfg: FitConfig, lambdas: Sequence[float], seeds: Sequence[int], out_dir: Path,
        cache_dir: Path | None = None, progress: Progress | None = None,
        label_column: str | None = None, on_plan: Callable[[Plan], None] | None = None,
        on_step: OnStep | None = None, on_result: Callable[[Result], None] | None = None,
        reference: str | Path | None = None, should_stop: ShouldStop | None = None) -> dict[str, Any]:
    """Read the corpus, then :func:`plan` and :func:`execute` every (λ, seed) run; write ``out_dir/summary.json``.

    With labels (``label_column`` of a table, or an installed labelled corpus) the summary also says how well each
    run's θ predicts them (:mod:`bat_core.evaluation.downstream`). ``on_result`` sees the finished result before the
    summary is written (``bat fit --save-model`` saves models from it); ``on_plan`` sees the plan before anything
    trains (the CLI says what the cache already holds and how long the rest will take), ``on_step`` every finished
    step (as :func:`execute`). ``reference``: an outside reference for NPMI (any input ``read_documents`` reads, or
    an installed corpus), counted over the corpus vocabulary; read before training, so a bad file fails at once.
    ``should_stop``: checked every epoch (the CLI's Ctrl-C); the runs finished by then stay in the cache."""
    from .evaluation.downstream import evaluate_runs, source_labels

    if not str(out_dir).strip():  # Path("") is the working folder: a summary.json would land there unasked
        raise BatError("give an output folder for summary.json")
    out_dir = Path(out_dir).expanduser()
    check_writable_dir(out_dir, "the output folder", create=False)  # before the training, not after it
    t0 = time.time()
    corpus = load_corpus(source, cfg.corpus, progress)
    labels = source_labels(source, corpus, label_column)  # read before training: a bad column fails at once
    ref = None
    if reference is not None:
        ref = vectorize_reference(read_documents(reference)[1], corpus, f"the reference {reference}")
    p = plan(corpus, cfg.teacher, cfg.student, cfg.distill, lambdas, seeds)
    if on_plan is not None:
        on_plan(p)
    result = execute(p, cache_dir, progress, should_stop, on_step=on_step)
    if on_result is not None:
        on_result(result)
    out = summary(result, cfg.to_dict(), time.time() - t0, ref)
    if reference is not None:
        out["coherence"]["reference"] = {"source": str(reference), "documents": int(ref.shape[0])}
    if labels is not None:
        scores = evaluate_runs(corpus, result.runs, labels)
        out["downstream"] = {
            "labels": f"column {label_column!r}" if label_column else f"the {source} categories",
            "runs": scores,
            "by_lambda": {f"{lam:g}": {m: mean_std([s[m] for s in scores if s["lam"] == lam])
                                       for m in ("accuracy", "macro_f1")}
                          for lam in sorted({s["lam"] for s in scores})}}
    write_json(out_dir / "summary.json", out)
    return out
