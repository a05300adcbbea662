"""fit_students: a member trained in a grid gives what it gives alone; order, stacks, progress and cancelling."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from bat_core.base.progress import Cancelled
from bat_core.config import DistillConfig, StudentConfig
from bat_core.training import scheduling
from bat_core.training import trainer as train
from bat_core.training.trainer import fit_student, fit_students

TINY = StudentConfig(n_topics=5, epochs=4, emb_dim=32, patience=2)


@dataclass
class Teacher:
    logits: np.ndarray
    key: str = "fake"
    meta: dict = field(default_factory=lambda: {"mode": "fake"})

    def dense(self, rows):
        return self.logits[rows]


@pytest.fixture(scope="module")
def teacher(demo_corpus):
    x = demo_corpus.counts.toarray()
    rng = np.random.default_rng(0)
    return Teacher((np.log1p(x) * 2 + rng.normal(0, 0.5, x.shape)).astype(np.float32))


def _cfg(seed: int) -> StudentConfig:
    return StudentConfig(**{**TINY.to_dict(), "seed": seed})


def _assert_same_run(a, b, atol=1e-4):
    np.testing.assert_allclose(a.beta, b.beta, atol=atol)
    np.testing.assert_allclose(a.theta, b.theta, atol=atol)
    assert a.key == b.key and a.config == b.config and a.topics == b.topics
    assert a.metrics["best_epoch"] == b.metrics["best_epoch"] and a.metrics["epochs_run"] == b.metrics["epochs_run"]
    for m in ("dev_npmi", "test_npmi", "tu", "test_perplexity"):
        assert a.metrics[m] == pytest.approx(b.metrics[m], rel=1e-4, abs=1e-5), m
    assert [h["epoch"] for h in a.history] == [h["epoch"] for h in b.history]
    np.testing.assert_allclose([h["loss"] for h in a.history], [h["loss"] for h in b.history], rtol=1e-4)
    assert a.state.keys() == b.state.keys()
    # A bias right before a BatchNorm has no effect and a zero gradient up to rounding, which Adam rescales into
    # steps of size lr: it drifts with the rounding noise. Only bias − running mean is determined; compare that.
    for head in ("mean", "logvar"):
        np.testing.assert_allclose(a.state[f"{head}_b"] - a.state[f"{head}_bn.running_mean"],
                                   b.state[f"{head}_b"] - b.state[f"{head}_bn.running_mean"], atol=atol)
    for k in a.state.keys() - {"mean_b", "logvar_b", "mean_bn.running_mean", "logvar_bn.running_mean"}:
        np.testing.assert_allclose(a.state[k], b.state[k], atol=atol, err_msg=k)


def test_member_in_a_grid_equals_the_member_alone(demo_corpus, teacher):
    members = [(_cfg(1), DistillConfig(lam=0.5)), (_cfg(1), DistillConfig()), (_cfg(2), DistillConfig(lam=1.0)),
               (_cfg(2), DistillConfig()), (_cfg(1), DistillConfig(lam=0.3, temperature=2.0, clip=3.0)),
               (_cfg(1), DistillConfig(lam=0.5, fade=1.0))]
    grid = fit_students(demo_corpus, members, teacher)
    assert len(grid) == len(members)
    for (cfg, distill), run in zip(members, grid):
        assert run.seed == cfg.seed and run.lam == distill.lam  # one Run per member, in the given order
        _assert_same_run(run, fit_student(demo_corpus, cfg, distill, teacher if distill.active else None))
    # members really differ: λ changes the result, and so does the seed
    assert not np.allclose(grid[0].beta, grid[1].beta) and not np.allclose(grid[1].beta, grid[3].beta)
    assert grid[1].config["teacher_key"] is None and grid[0].config["teacher_key"] == "fake"
    # fading the teacher changes the training too (same λ, seed and target otherwise): the same first epoch, then a
    # smaller teacher term (this tiny run keeps epoch 1 as its best, so its weights cannot show it)
    assert grid[0].history[0]["loss"] == pytest.approx(grid[5].history[0]["loss"], rel=1e-6)
    assert grid[5].history[1]["loss"] < grid[0].history[1]["loss"] - 1


def test_fade_lowers_lambda_linearly_over_the_last_epochs():
    fade = torch.tensor([0.0, 1.0, 0.5])
    got = np.array([train._fade_factor(fade, e, 10).tolist() for e in range(1, 11)])
    np.testing.assert_allclose(got[:, 0], 1.0)  # no fade: λ throughout
    np.testing.assert_allclose(got[:, 1], np.arange(10, 0, -1) / 10)  # the whole run: 1, 0.9, …, 0.1
    np.testing.assert_allclose(got[:, 2], [1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2])  # the last half


@pytest.mark.parametrize("mode", ["raw", "doc_layer"])
def test_members_that_encode_logits_match_alone(demo_corpus, teacher, mode):
    members = [(_cfg(3), DistillConfig(lam=0.0, encode_logits=mode, clip=2.0)),
               (_cfg(4), DistillConfig(lam=0.5, encode_logits=mode))]
    for (cfg, distill), run in zip(members, fit_students(demo_corpus, members, teacher)):
        _assert_same_run(run, fit_student(demo_corpus, cfg, distill, teacher))


def test_members_with_other_settings_train_in_their_own_stack(demo_corpus):
    other = StudentConfig(**{**TINY.to_dict(), "n_topics": 4, "seed": 1})
    members = [(_cfg(1), DistillConfig()), (other, DistillConfig()), (_cfg(2), DistillConfig())]
    runs = fit_students(demo_corpus, members)
    assert [r.n_topics for r in runs] == [5, 4, 5]
    _assert_same_run(runs[1], fit_student(demo_corpus, other))


def test_progress_every_epoch_and_cancel(demo_corpus, monkeypatch):
    monkeypatch.setattr(scheduling, "cpu_workers", lambda: 1)  # one stack of two, as on a one-core machine
    events = []
    members = [(_cfg(1), DistillConfig()), (_cfg(2), DistillConfig())]
    cfg = StudentConfig(**{**TINY.to_dict(), "patience": None})
    fit_students(demo_corpus, [(cfg, DistillConfig()), (cfg, DistillConfig(lam=0.0, temperature=3.0))],
                 progress=events.append)  # the same member twice: one stack of two
    fit_student(demo_corpus, cfg, progress=events.append)
    stacked = [e for e in events if e.stage.startswith("students")]
    single = [e for e in events if e.stage.startswith("student λ")]
    assert [e.done for e in single] == [1, 2, 3, 4] and single[0].stage == "student λ=0 seed=0"
    assert set(single[0].metrics) == {"loss", "dev_npmi", "best_dev_npmi"}
    assert stacked and all(e.total == cfg.epochs and np.isfinite(e.metrics["dev_npmi"]) for e in stacked)
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        fit_students(demo_corpus, members, should_stop=stop)


def test_stacks_side_by_side_on_cores_match_one_after_the_other(demo_corpus, monkeypatch):
    """With 2 workers a grid is split into CPU stacks trained on 2 threads; every member equals the one-thread result,
    and on_run hears about each member once, as its stack finishes."""
    members = [(_cfg(s), DistillConfig(lam=lam, background_correction=0.0)) for s in (1, 2) for lam in (0.0,)]
    monkeypatch.setattr(scheduling, "cpu_workers", lambda: 1)
    alone = fit_students(demo_corpus, members)
    monkeypatch.setattr(scheduling, "cpu_workers", lambda: 2)
    assert len(scheduling.chunks([0, 1], members, demo_corpus, torch.device("cpu"), 2)) == 2
    heard: list[int] = []
    side = fit_students(demo_corpus, members, on_run=lambda i, run: heard.append(i))
    assert sorted(heard) == [0, 1]
    for a, b in zip(alone, side, strict=True):
        _assert_same_run(a, b)


def test_cpu_stacks_are_balanced(demo_corpus, monkeypatch):
    """A grid split into CPU stacks: the first seed's members first, on every core, then the rest; each part in
    sizes that differ by at most one (never 8, 8, 8, 5, which left one core idle while the other finished), grouped
    by seed, every member once."""
    lams = [round(0.1 * i, 1) for i in range(11)]
    members = [(_cfg(s), DistillConfig(lam=lam)) for s in (1, 2, 3) for lam in lams][:29]
    per_member = scheduling.batch_size(members[0][0], len(demo_corpus.splits["train"])) * demo_corpus.vocab_size
    monkeypatch.setattr(scheduling, "CPU_STACK_ELEMENTS", 10 * per_member)
    chunks = scheduling.chunks(list(range(29)), members, demo_corpus, torch.device("cpu"), 2)
    assert [len(c) for c in chunks] == [6, 5, 9, 9]  # the first seed's 11 on both cores first, then the other 18
    assert {members[i][0].seed for c in chunks[:2] for i in c} == {1}
    assert sorted(i for c in chunks for i in c) == list(range(29))
    assert all(isinstance(i, int) for c in chunks for i in c)
    seeds = [[members[i][0].seed for i in c] for c in chunks]
    assert all(s == sorted(s) for s in seeds)  # in seed order: members of one seed share minibatches


def test_the_first_look_trains_in_its_own_stack_first(demo_corpus):
    """The members a user looks at first (a baseline and one BAT run) start first on a CPU with several workers, one
    stack each when there is a core for each (together otherwise); every member still trains once. With one worker
    nothing changes."""
    members = [(_cfg(s), DistillConfig(lam=lam)) for s in (1, 2) for lam in (0.0, 0.3, 0.5, 0.7)]
    jobs = scheduling.stacks(members, demo_corpus, 2, first=[0, 2])
    assert [idx for idx, _ in jobs[:2]] == [[0], [2]] and sorted(i for idx, _ in jobs for i in idx) == list(range(8))
    assert scheduling.stacks(members, demo_corpus, 2, first=[0, 1, 2])[0][0] == [0, 1, 2]  # more than the cores
    assert scheduling.stacks(members, demo_corpus, 1, first=[0, 2]) == scheduling.stacks(members, demo_corpus, 1)


def test_a_diverging_member_stops_training_with_a_plain_error(demo_corpus, monkeypatch):
    """A loss that becomes NaN (too high a learning rate) is an error that says what to change, not a run of
    identical topics saved and scored as a result."""
    from bat_core.base.errors import BatError

    real = train.bat_loss
    monkeypatch.setattr(train, "bat_loss", lambda *args: real(*args) * float("nan"))
    with pytest.raises(BatError, match=r"diverged.*λ = 0, seed 1.*epoch 1.*learning rate"):
        fit_students(demo_corpus, [(_cfg(1), DistillConfig(lam=0.0))])


def test_a_job_waiting_for_another_teacher_build_can_be_cancelled(demo_corpus, tmp_path, monkeypatch):
    """Two builds of one teacher never run at once in a process, and the one that waits still hears Cancel."""
    import threading

    from bat_core import grid
    from bat_core.base.progress import Cancelled
    from bat_core.config import TeacherConfig
    from bat_core.teachers import build

    started, release = threading.Event(), threading.Event()

    def slow_build(*args, **kwargs):
        started.set()
        release.wait(10)
        return "built"

    monkeypatch.setattr(build, "build_teacher", slow_build)
    tcfg = TeacherConfig(kind="lexical")
    first = threading.Thread(target=grid.get_teacher, args=(demo_corpus, tcfg, tmp_path))
    first.start()
    assert started.wait(10)
    with pytest.raises(Cancelled):
        grid.get_teacher(demo_corpus, tcfg, tmp_path, should_stop=lambda: True)
    release.set()
    first.join(10)
    assert grid.get_teacher(demo_corpus, tcfg, tmp_path) == "built"  # the lock was released


def _first_look_runs(cache_dir, how: str, tiny_bert_dir, monkeypatch, seeds=(1,), calls=None,  # noqa: ANN001, ANN202
                     distill=None):
    """Execute a plan of λ 0 and 0.5 on ``seeds`` with the auto teacher (the tiny BERT) in ``cache_dir``: ``how`` =
    "lexical" (auto offered only the shared-word neighbours, so it chooses them), "refused" (the same, with the early
    look's logits taken as different from auto's) or "own" (auto's own choice). Returns the plan, the result, the
    teacher kinds built in order and the (λ, γ) of every member trained; ``calls`` (a list) gets the members of each
    call to the trainer, as handed over; ``distill``: the plan's DistillConfig (default: the defaults)."""
    from teacher_fixtures import make_topic_corpus

    from bat_core import grid
    from bat_core.config import TeacherConfig
    from bat_core.teachers import build, neighbours
    from bat_core.teachers.store import TeacherLogits

    corpus = make_topic_corpus()
    tcfg = TeacherConfig(model=str(tiny_bert_dir), max_length=64, device="cpu")
    p = grid.plan(corpus, tcfg, StudentConfig(n_topics=3, epochs=3, device="cpu"), distill or DistillConfig(),
                  [0.0, 0.5], list(seeds))
    built, real = [], build.build_teacher
    monkeypatch.setattr(build, "build_teacher", lambda c, cfg, *a, **k: built.append(cfg.kind) or real(c, cfg, *a, **k))
    if how in ("lexical", "refused"):
        views = neighbours.candidate_views
        monkeypatch.setattr(neighbours, "candidate_views", lambda kind, *a, **k: {
            n: v for n, v in views(kind, *a, **k).items() if kind != "auto" or n == "lexical"})
    if how == "refused":
        monkeypatch.setattr(TeacherLogits, "same_logits", lambda self, other: False)
    trained = []
    real_fit = train.fit_students
    monkeypatch.setattr(train, "fit_students", lambda c, members, *a, **k: trained.extend(
        (m[1].lam, m[1].background_correction) for m in members) or (calls if calls is not None else []).append(
        list(members)) or real_fit(c, members, *a, **k))
    res = grid.execute(p, cache_dir)
    monkeypatch.undo()
    return p, res, built, trained


@pytest.mark.parametrize("encode", ["off", "raw"])
def test_the_other_seeds_baselines_train_last_with_their_seeds(tmp_path, tiny_bert_dir, monkeypatch, encode):
    """The early look trains the first seed's pair alone and the γ step its candidates alone: the other seeds'
    baselines train with the grid's rest (their seeds' λ > 0 runs), after γ is chosen, so that they hold back neither
    the teacher, nor γ, nor the first seed's curve; where they cannot share the λ > 0 runs' stack (the students
    read teacher logits, a baseline never does) their stack starts after those. Every run trains once, and the
    result lists the runs in the plan's order."""
    calls: list = []
    p, res, _, _ = _first_look_runs(tmp_path, "lexical", tiny_bert_dir, monkeypatch, seeds=(1, 2), calls=calls,
                                    distill=DistillConfig(encode_logits=encode))
    early, gamma_step, rest = ([(d.lam, c.seed) for c, d in call] for call in calls)
    assert sorted(early) == [(0.0, 1), (0.5, 1)]  # the first look: the first seed's baseline and candidate
    assert {seed for _, seed in gamma_step} == {1} and (0.0, 2) not in gamma_step
    assert sorted(rest) == [(0.0, 2), (0.5, 2)]  # seed 2: its baseline with its λ > 0 run
    if encode == "raw":  # two kinds of stack: the λ > 0 one starts first (with "off" one kind, seed then λ)
        jobs = scheduling.stacks(calls[2], p.corpus, 2)
        assert [calls[2][i][1].lam for idx, _ in jobs for i in idx] == [0.5, 0.0]
    assert len(res.runs) == 4 and not any(res.cached)
    assert [(r.lam, r.seed) for r in res.runs] == [(m.lam, m.seed) for m in res.plan.members]


def test_the_first_look_trains_before_the_auto_teacher_and_is_its_run(tmp_path, tiny_bert_dir, monkeypatch):
    """With the auto teacher still to build, the first seed's baseline and the first-look candidate train first on
    the teacher auto builds when the encoder loses (no encoding); when auto then chooses that teacher, the candidate's
    run is saved under its auto key instead of training again, and it is the run the auto teacher trains (the
    same execution with the adoption refused trains it in the γ step: the same weights, the same key)."""
    from bat_core.training.cache import Cache

    p, res, built, trained = _first_look_runs(tmp_path / "a", "lexical", tiny_bert_dir, monkeypatch)
    look = p.gamma.first_look
    assert p.early_teacher.kind == "lexical" and p.early.teacher_key != look.teacher_key
    assert built == ["lexical", "auto"] and res.teacher.meta["teacher_kind"] == "lexical"
    assert trained.count((0.5, 0.25)) == 1  # the first look trained once: on the early teacher, then adopted
    store = Cache(tmp_path / "a").runs
    adopted = store.load(look.key)
    assert adopted.config["teacher_key"] == res.teacher.key and adopted.config["teacher"]["teacher_kind"] == "lexical"
    assert not store.has(p.early.key)  # moved to its auto key: one run, one family on the pages

    p2, _, _, trained2 = _first_look_runs(tmp_path / "b", "refused", tiny_bert_dir, monkeypatch)
    assert trained2.count((0.5, 0.25)) == 2  # refused: the γ step trained it with the auto teacher
    again = Cache(tmp_path / "b").runs.load(p2.gamma.first_look.key)
    assert again.key == adopted.key
    np.testing.assert_array_equal(again.beta, adopted.beta)
    np.testing.assert_array_equal(again.theta, adopted.theta)

    # auto's own choice on this corpus uses the tiny encoder: other logits, nothing adopted, the early run kept
    p3, res3, built3, trained3 = _first_look_runs(tmp_path / "c", "own", tiny_bert_dir, monkeypatch)
    assert built3 == ["lexical", "auto"] and res3.teacher.meta["teacher_kind"] != "lexical"
    assert trained3.count((0.5, 0.25)) == 2
    store3 = Cache(tmp_path / "c").runs
    assert store3.has(p3.early.key) and store3.load(p3.gamma.first_look.key).config["teacher_key"] == res3.teacher.key


def test_an_output_folder_that_cannot_be_written_fails_before_any_training(tmp_path, monkeypatch):
    """grid.fit trained every run and then raised FileExistsError when out_dir was a file; "" wrote summary.json
    into the working folder."""
    from pathlib import Path

    from bat_core import grid
    from bat_core.base.errors import BatError
    from bat_core.config import FitConfig

    def no_corpus(*a, **k):
        raise AssertionError("the corpus was read before the output folder was checked")

    monkeypatch.setattr(grid, "load_corpus", no_corpus)
    for out, needle in ((Path(__file__), "is a file"), ("", "give an output folder"),
                        (Path(__file__) / "sub", "is a file")):
        with pytest.raises(BatError, match=needle):
            grid.fit("demo", FitConfig(), [0.0], [1], out, cache_dir=tmp_path)
    with pytest.raises(AssertionError, match="corpus was read"):  # a folder that can be made passes the check...
        grid.fit("demo", FitConfig(), [0.0], [1], tmp_path / "new", cache_dir=tmp_path)
    assert not (tmp_path / "new").exists()  # ... and is not made by it: it appears with summary.json
