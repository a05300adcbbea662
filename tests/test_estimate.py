"""The time estimate: speeds measured once and kept, plans laid out as the trainer lays them out, an ETA that
follows the machine."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest

from bat_core import grid
from bat_core.config import DistillConfig, StudentConfig, TeacherConfig
from bat_core.training import estimate as E
from bat_core.training import scheduling

SPEEDS = E.StudentSpeeds(per_cell=2e-8, per_cell_topic=1e-10, per_step=1e-3)


@pytest.fixture
def speeds_here(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


def test_student_speeds_are_measured_once_and_kept(speeds_here, monkeypatch):
    monkeypatch.setattr(E, "QUIET_SHARE", 0.0)  # kept however busy the machine running the tests is
    first = E.student_speeds("cpu")
    assert min(first.per_cell, first.per_cell_topic, first.per_step, first.per_word, first.per_cell_target) >= 0
    assert first.step_s(1, 200, 1500, 20, 50.0, 1) > 0
    assert list((speeds_here / "bat-explorer" / "speeds").glob("student-cpu-*.json"))

    def again(*a, **k):
        raise AssertionError("measured again although the speeds were kept")

    monkeypatch.setattr(E, "_step_time", again)
    assert E.student_speeds("cpu") == first


def test_the_calibration_recovers_each_term_of_the_step(speeds_here, monkeypatch):
    """Steps timed exactly as a known machine would take them: the fit gives back that machine's terms, the weights'
    (Adam over V × (E + K) per member, whatever the batch) apart from the batch's and the step's own."""
    truth = E.StudentSpeeds(per_cell=3e-9, per_cell_topic=1.5e-10, per_step=2e-3, per_word=6e-8,
                            per_cell_target=5e-9, per_weight=1.5e-9, side_by_side_s=3e-3)
    width = StudentConfig().emb_dim

    def step(members, topics, vocab, batch, steps, device, words=E.LONG_WORDS, lam=0.5, **kwargs):
        return truth.step_s(members, batch, vocab, topics, words, members if lam else 0, width)

    monkeypatch.setattr(E, "QUIET_SHARE", 0.0)
    monkeypatch.setattr(E, "_step_time", step)
    monkeypatch.setattr(E, "_side_by_side", lambda *a, **k: 3e-3)
    monkeypatch.setattr(scheduling, "cpu_workers", lambda: 2)
    got = E.student_speeds("cpu")
    for name, value in vars(truth).items():
        assert getattr(got, name) == pytest.approx(value, rel=1e-6, abs=1e-15), name


def test_stacks_side_by_side_cost_the_measured_seconds_per_step(demo_corpus, monkeypatch):
    """Two CPU stacks on two workers: each step takes side_by_side_s longer while both train, so a light stack is
    slowed more than a heavy one; a stack alone costs its own time."""
    speeds = E.StudentSpeeds(per_cell=2e-8, per_cell_topic=1e-10, per_step=1e-3, per_weight=1e-9, side_by_side_s=2e-3)
    scfg = StudentConfig(n_topics=10, epochs=20, device="cpu")
    one = [(scfg, DistillConfig(background_correction=0.0))]
    two = [*one, (replace(scfg, seed=2), DistillConfig(background_correction=0.0))]
    monkeypatch.setattr(scheduling, "cpu_workers", lambda: 2)
    alone = E.stacks_time(one, demo_corpus, speeds)
    n_train = len(demo_corpus.splits["train"])
    batch = scheduling.batch_size(scfg, n_train)
    step = speeds.step_s(1, batch, demo_corpus.vocab_size, 10, width=scfg.emb_dim)
    assert alone == pytest.approx(scfg.epochs * (n_train // batch) * (1 + E.END_OF_RUN) * step)
    assert len(scheduling.stacks(two, demo_corpus, 2, first=[0, 1])) == 2
    assert E.stacks_time(two, demo_corpus, speeds, first=[0, 1]) == pytest.approx((1 + 2e-3 / step) * alone)
    # seconds per step, not a factor: a step of 2 ms takes 2× as long beside another, one of 20 ms 1.1×
    assert speeds.side_by_side(2e-3) == pytest.approx(2.0) and speeds.side_by_side(20e-3) == pytest.approx(1.1)
    assert speeds.side_by_side(1e-4) == 2.0  # never slower than one after the other
    # unequal stacks: side by side until the shorter ends, then the longer alone at full speed
    assert E._share_cores([2.0, 4.0], 2, [1.5, 1.5]) == pytest.approx([3.0, 5.0])
    assert E._share_cores([2.0, 2.0, 2.0], 2, [1.5] * 3) == pytest.approx([3.0, 3.0, 5.0])  # the third alone
    assert E._share_cores([2.0, 4.0], 1, [1.5, 1.5]) == pytest.approx([2.0, 6.0])  # one core: one after the other
    # each at its own pace: the light one (2×) ends at 4 s with the heavy one (1.25×) 3.2 s along, 0.8 s left alone
    assert E._share_cores([2.0, 4.0], 2, [2.0, 1.25]) == pytest.approx([4.0, 4.8])


def test_a_calibration_measured_beside_other_work_is_not_kept(speeds_here, monkeypatch):
    """When the calibrating thread got little of a core (the app trains its first look meanwhile), the speeds serve
    this process but are not written: a later process measures again."""
    def busy_step(*args, **kwargs) -> float:  # a step measured by working: thread time runs with the wall clock
        end = time.perf_counter() + 0.02
        while time.perf_counter() < end:
            pass
        return 1e-3

    monkeypatch.setattr(E, "_CONTENDED", {})
    monkeypatch.setattr(E, "_step_time", busy_step)
    monkeypatch.setattr(E.time, "thread_time", lambda: 0.0)  # as if the thread had not run at all
    first = E.student_speeds("cpu")
    assert not list(speeds_here.glob("**/student-cpu-*.json"))
    assert E.student_speeds("cpu") is first  # kept in memory for this process only
    monkeypatch.setattr(E, "_CONTENDED", {})
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(speeds_here))
    monkeypatch.setattr(E, "_step_time", busy_step)
    monkeypatch.setattr(E.time, "thread_time", time.perf_counter)  # the thread had the core all along
    E.student_speeds("cpu")  # a quiet calibration: kept
    assert list(speeds_here.glob("**/student-cpu-*.json"))


def test_a_plan_costs_what_its_stacks_cost(demo_corpus, tmp_path, monkeypatch, speeds_here):
    monkeypatch.setattr(E, "student_speeds", lambda device="auto": SPEEDS)
    monkeypatch.setattr(scheduling, "cpu_workers", lambda: 2)
    scfg = StudentConfig(n_topics=10, epochs=20, device="cpu")
    small = grid.plan(demo_corpus, TeacherConfig(kind="lexical"), scfg, DistillConfig(background_correction=0.0),
                      [0.0, 0.5], [1])
    big = grid.plan(demo_corpus, TeacherConfig(kind="lexical"), scfg, DistillConfig(background_correction=0.0),
                    [0.0, 0.25, 0.5, 0.75, 1.0], [1, 2, 3])
    e_small, e_big = E.estimate(small, tmp_path), E.estimate(big, tmp_path)
    assert e_small.runs == 2 and e_big.runs == 15 and e_big.grid_s > 3 * e_small.grid_s
    assert e_small.teacher_s > 0 and e_small.selection_s == 0  # γ set: no γ step
    # by hand: two stacks of one member side by side (2 workers): one member's time
    n_train = len(demo_corpus.splits["train"])
    batch = scheduling.batch_size(scfg, n_train)
    one = scfg.epochs * (n_train // batch) * SPEEDS.step_s(1, batch, demo_corpus.vocab_size, 10) * (1 + E.END_OF_RUN)
    assert e_small.grid_s == pytest.approx(one)
    # the γ rule unset: its first round and, as an upper bound, its later rounds within the budget
    auto = grid.plan(demo_corpus, TeacherConfig(kind="lexical"), scfg, DistillConfig(), [0.0, 0.5], [1])
    e = E.estimate(auto, tmp_path)
    assert e.selection_s > 0 and e.selection_high_s > e.selection_s and e.runs_high == e.runs + 10
    assert "Estimated time on this machine: about" in e.sentence() and "later rounds" in e.sentence()
    # the first comparison: the γ step's first stack (a baseline and one candidate) after the teacher
    look = e.teacher_s + E.stacks_time([(auto.gamma.baseline.student, auto.gamma.baseline.distill),
                                        (auto.gamma.first_look.student, auto.gamma.first_look.distill)],
                                       demo_corpus, SPEEDS, first=[0, 1])  # one stack of the two, started first
    assert e.first_look_s == pytest.approx(look) and "The first comparison in about" in e.sentence()


def test_the_first_comparison_does_not_wait_for_the_encoder(demo_corpus, tmp_path, monkeypatch, speeds_here):
    """With the auto teacher to build, the estimate's first comparison is the early look's (no encoding): the
    nearest-neighbour search and one stack of two runs, however long the encoder takes."""
    monkeypatch.setattr(E, "student_speeds", lambda device="auto": SPEEDS)
    monkeypatch.setattr(E, "encoder_speeds", lambda tcfg, device="auto": E.EncoderSpeeds(10.0, 0.0))  # a slow one
    scfg = StudentConfig(n_topics=10, epochs=20, device="cpu")
    p = grid.plan(demo_corpus, TeacherConfig(), scfg, DistillConfig(), [0.0, 0.5], [1])
    e = E.estimate(p, tmp_path)
    pair = E.stacks_time([(p.gamma.baseline.student, p.gamma.baseline.distill), (p.early.student, p.early.distill)],
                         demo_corpus, SPEEDS, first=[0, 1])
    assert e.teacher_s > 1000 and e.first_look_s == pytest.approx(1.5 + pair)


def test_cached_runs_cost_nothing(demo_corpus, tmp_path, monkeypatch, speeds_here):
    monkeypatch.setattr(E, "student_speeds", lambda device="auto": SPEEDS)
    scfg = StudentConfig(n_topics=5, epochs=2, device="cpu")
    p = grid.plan(demo_corpus, TeacherConfig(kind="lexical"), scfg, DistillConfig(background_correction=0.0),
                  [0.0, 0.5], [1])
    grid.execute(p, tmp_path)
    e = E.estimate(p, tmp_path)
    assert (e.runs, e.teacher_s, e.total_s) == (0, 0.0, 0.0)
    assert e.sentence() == "Everything is in the cache: nothing to train."


def test_the_eta_follows_the_machine():
    # estimated 100 s; the first 20 s of estimated work took 40 s: the other 80 s will take about 160 s
    assert E.Estimate.remaining(100.0, 20.0, 40.0) == pytest.approx(160.0)
    assert E.Estimate.remaining(100.0, 0.0, 5.0) == pytest.approx(100.0)
    assert E.Estimate.remaining(100.0, 120.0, 90.0) == 0.0


def test_the_eta_counts_each_phase_of_a_grid(monkeypatch):
    """The teacher step counts the teacher and the early look, the γ step the rule's rounds (its upper bound when it
    read later rounds), the later runs their estimated landing; runs the γ step trained, reported again by the grid,
    count once; between steps the ETA counts down."""
    from types import SimpleNamespace as Step

    now = [100.0]
    monkeypatch.setattr(E.time, "monotonic", lambda: now[0])
    # the grid's part: seed 1's three runs land together at 20 s, seed 2's beside them at 60 s
    landing = tuple((lam, seed, t) for seed, t in ((1, 20.0), (2, 60.0)) for lam in (0.1, 0.2, 0.3))
    e = E.Estimate(teacher_s=10.0, selection_s=30.0, selection_high_s=50.0, grid_s=60.0, runs=12, runs_high=17,
                   early_s=8.0, grid_runs=6, selection_runs=6, landing=landing)
    tally = E.Tally()
    assert tally.left_s(e, 5.0) == pytest.approx(95.0) and tally.runs_done(e) == 0
    teacher = Step(cached=False, member=None, run=None, gamma=None, wall_time_s=20.0)
    tally.step(teacher)  # 36 s in: 18 s of estimated work took twice as long
    assert tally.done_s(e) == pytest.approx(18.0) and tally.left_s(e, 36.0) == pytest.approx(164.0)
    now[0] += 10.0
    assert tally.left_s(e, 46.0) == pytest.approx(154.0)  # counts down while the next step trains
    tally.step(Step(cached=False, member=None, run=None, gamma={"budget": {"runs": 6}}, wall_time_s=5.0))
    assert tally.done_s(e) == pytest.approx(40.0) and tally.runs_done(e) == 6
    again = Step(cached=False, member=object(), run=object(), gamma=None, wall_time_s=0.0, trained_before=True)
    tally.step(again)  # trained in the γ step, reported again by the grid
    assert tally.runs_done(e) == 6
    for lam in (0.1, 0.2, 0.3):
        tally.step(Step(cached=False, member=Step(lam=lam, seed=1), run=object(), gamma=None, wall_time_s=4.0))
    # the estimated landing of seed 1's stack, not three sixths of the rest: seed 2's trained beside it
    assert tally.done_s(e) == pytest.approx(60.0) and tally.runs_done(e) == 9 and tally.runs_total(e) == 12
    unknown = E.Tally()  # a run the estimate has no landing for: its share of the rest
    unknown.step(Step(cached=False, member=None, run=None, gamma={"budget": {"runs": 6}}, wall_time_s=5.0))
    unknown.step(Step(cached=False, member=Step(lam=0.9, seed=7), run=object(), gamma=None, wall_time_s=4.0))
    assert unknown.done_s(e) == pytest.approx(50.0)
    tally.step(Step(cached=True, member=object(), run=object(), gamma=None, wall_time_s=0.0))  # read: no work
    assert tally.runs_done(e) == 9
    later = E.Tally()  # the rule read 11 runs: all 5 of its later rounds' runs, the upper bound holds
    later.step(teacher)
    later.step(Step(cached=False, member=None, run=None, gamma={"budget": {"runs": 11}}, wall_time_s=5.0))
    assert later.done_s(e) == pytest.approx(60.0) and later.total_s(e) == pytest.approx(120.0)
    assert later.runs_done(e) == 11 and later.runs_total(e) == 17
    part = E.Tally()  # 8 runs: 2 of the 5 later ones, 2/5 of the way to the upper bound
    part.step(Step(cached=False, member=None, run=None, gamma={"budget": {"runs": 8}}, wall_time_s=5.0))
    assert part.done_s(e) == pytest.approx(48.0) and part.total_s(e) == pytest.approx(108.0)
    assert part.runs_done(e) == 8 and part.runs_total(e) == 14
    cached = E.Tally()  # a γ step whose first round came from the cache still ends the rule's phase
    cached.step(Step(cached=True, member=None, run=None, gamma={"budget": {"runs": 6}}, wall_time_s=0.0))
    cached.step(Step(cached=False, member=object(), run=object(), gamma=None, wall_time_s=0.0, trained_before=True))
    assert cached.done_s(e) == pytest.approx(40.0) and cached.runs_done(e) == 6


def test_the_rest_is_laid_out_again_once_gamma_is_chosen(demo_corpus, tmp_path, monkeypatch, speeds_here):
    """Before γ is chosen the rest's λ > 0 runs count as reading a dense target; a clipped choice (sparse here) makes
    them cheaper, an unclipped one leaves them as they were, and a run the rule already trained drops out. The other
    seeds' baselines are in the rest: they train last, with their seeds (grid.execute)."""
    from bat_core.runs.store import RunStore

    speeds = E.StudentSpeeds(per_cell=2e-9, per_cell_topic=1e-10, per_step=1e-3, per_word=1e-7, per_cell_target=2e-8)
    monkeypatch.setattr(E, "student_speeds", lambda device="auto": speeds)
    scfg = StudentConfig(n_topics=10, epochs=20, device="cpu")
    p = grid.plan(demo_corpus, TeacherConfig(kind="lexical"), scfg, DistillConfig(), [0.0, 0.5, 1.0], [1, 2])
    e = E.estimate(p, tmp_path)
    assert e.grid_runs == 4 and {(lam, seed) for lam, seed, _ in e.landing} == {(1.0, 1), (0.0, 2), (0.5, 2),
                                                                                (1.0, 2)}
    assert e.runs == 6 + 4  # the γ step (its baseline and five candidates), then the rest
    same = E.regrid(e, p, {"gamma": 0.25, "fade": 0.0, "clip": None}, tmp_path)
    assert same.grid_s == pytest.approx(e.grid_s) and same.grid_runs == 4
    clipped = E.regrid(e, p, {"gamma": 0.25, "fade": 0.0, "clip": 2.0}, tmp_path)
    assert clipped.grid_s < e.grid_s and clipped.grid_runs == 4 and clipped.total_s < e.total_s
    done = p.with_gamma(0.25, 0.0, 2.0).members  # the rule trained seed 2's λ = 0.5 run already
    key = next(m.key for m in done if (m.lam, m.seed) == (0.5, 2))
    monkeypatch.setattr(RunStore, "has", lambda self, k: k == key)
    fewer = E.regrid(e, p, {"gamma": 0.25, "fade": 0.0, "clip": 2.0}, tmp_path)
    assert fewer.grid_runs == 3 and fewer.runs == e.runs - 1 and fewer.runs_high == e.runs_high - 1
    tally = E.Tally()  # the ETA counts against the re-laid rest once told of the choice
    tally.chose(e, p, {"gamma": 0.25, "fade": 0.0, "clip": 2.0}, tmp_path)
    assert tally.total_s(e) == pytest.approx(fewer.total_s) and tally.runs_total(e) == fewer.runs
    # a tally that holds the job's plan does it itself at the γ step (what the CLI and the app feed it)
    own = E.Tally(p, tmp_path)
    own.step(grid.Step(0, "γ", False, 0.0, gamma={"gamma": 0.25, "fade": 0.0, "clip": 2.0, "budget": {"runs": 6}}), e)
    assert own.total_s(e) == pytest.approx(fewer.total_s)


def test_a_baseline_the_rules_later_rounds_would_train_is_counted_once(demo_corpus, tmp_path, monkeypatch):
    """The γ rule's rounds on further seeds start with that seed's baseline; when the seed is the plan's own, that
    baseline is a run of the grid's rest too: the "up to" estimate counts it once."""
    from bat_core.config import DEFAULT_LAMBDA_GRID

    monkeypatch.setattr(E, "student_speeds", lambda device="auto": E.StudentSpeeds(
        per_cell=2e-9, per_cell_topic=1e-10, per_step=1e-3, per_word=1e-7, per_cell_target=2e-8))
    # a clip and a fade set by the user: no faded or clipped round, so the budget reaches the further seeds
    p = grid.plan(demo_corpus, TeacherConfig(kind="lexical"), StudentConfig(n_topics=10, epochs=20, device="cpu"),
                  DistillConfig(clip=2.0, fade=0.5), list(DEFAULT_LAMBDA_GRID), [1, 2, 3])
    g = p.gamma
    later = [m for base, constant, _, _ in g.more for m in (base, *constant)][:p.selection_budget - len(g.members)]
    base2 = next(m.key for m in p.members if (m.lam, m.seed) == (0.0, 2))
    assert later[0].key == base2 and len(later) == 5
    e = E.estimate(p, tmp_path)
    assert e.runs == len(p.members) + len(g.members) - 2  # less the first seed's baseline and chosen candidate
    assert e.runs_high - e.runs == len(later) - 1  # seed 2's baseline: in the rest, not again in the rule's rounds


def test_a_clipped_target_on_short_documents_costs_no_dense_target(monkeypatch):
    """The trainer hands a target to the loss as sparse rows when a clip keeps at most SPARSE_TARGET_SHARE of the
    vocabulary; the estimate charges the dense target's cost only to the members that read one."""
    from bat_core.config import CorpusConfig
    from bat_core.data.corpus import build_corpus
    from bat_core.training.trainer import SPARSE_TARGET_SHARE

    rng = np.random.default_rng(0)
    words = sorted({"".join(rng.choice(list("bcdfghklmnprstvz"), 6)) for _ in range(300)})  # letters: tokens
    corpus = build_corpus([" ".join(rng.choice(words, 5, replace=False)) for _ in range(600)],
                          CorpusConfig(min_df=1, remove_boilerplate=False))
    V, u = corpus.vocab_size, float(np.diff(corpus.counts[corpus.splits["train"]].indptr).mean())
    assert 2.0 * u <= SPARSE_TARGET_SHARE * V  # short documents: a clip of 2 keeps a few entries of V
    assert E.sparse_target(DistillConfig(lam=0.5, clip=2.0), V, u)
    assert not E.sparse_target(DistillConfig(lam=0.5), V, u)  # no clip: every entry
    assert not E.sparse_target(DistillConfig(lam=0.5, clip=2.0), V, SPARSE_TARGET_SHARE * V)  # long documents
    speeds = E.StudentSpeeds(per_cell=2e-8, per_cell_topic=1e-10, per_step=1e-3, per_word=1e-7, per_cell_target=1e-8)
    scfg = StudentConfig(n_topics=10, epochs=20, device="cpu")
    arms = {"clipped": DistillConfig(lam=0.5, clip=2.0, background_correction=0.0),
            "dense": DistillConfig(lam=0.5, background_correction=0.0), "base": DistillConfig()}
    t = {k: E.stacks_time([(scfg, d)], corpus, speeds) for k, d in arms.items()}
    n_train = len(corpus.splits["train"])
    batch = scheduling.batch_size(scfg, n_train)
    one = scfg.epochs * (n_train // batch) * (1 + E.END_OF_RUN)
    assert t["base"] == pytest.approx(one * speeds.step_s(1, batch, V, 10, u))
    assert t["dense"] == pytest.approx(one * speeds.step_s(1, batch, V, 10, u, dense_targets=1))
    assert t["dense"] > t["base"]
    assert t["clipped"] == pytest.approx(t["base"])
    # one stack mixing a clipped and an unclipped member: the trainer goes dense for both, and so does the estimate
    monkeypatch.setattr(scheduling, "cpu_workers", lambda: 1)
    mixed = E.stacks_time([(scfg, arms["clipped"]), (scfg, arms["dense"])], corpus, speeds)
    assert mixed == pytest.approx(one * speeds.step_s(2, batch, V, 10, u, dense_targets=2))
