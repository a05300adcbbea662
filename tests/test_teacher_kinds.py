"""Teacher kinds: the lexical control (no transformer), the random null, the hybrid mix and the auto choice; and the
duplicate removal that keeps near-twins from being each other's neighbour."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from bat_core.base.errors import BatError
from bat_core.config import CorpusConfig, TeacherConfig
from bat_core.data.cleaning import drop_duplicates
from bat_core.data.corpus import build_corpus
from bat_core.teachers.choice import choice_line, describe_choice
from bat_core.teachers.neighbours import KnnIndex, candidate_views, choose_index, tfidf_features
from bat_core.training.cache import Cache


def test_lexical_teacher_needs_no_transformer_and_beats_unigram_and_random(demo_corpus, tmp_path, monkeypatch):
    from bat_core.teachers import build as teacher_mod
    def no_encoder(*a, **k):
        raise AssertionError("the lexical and random teachers must not load a transformer")

    monkeypatch.setattr(teacher_mod, "_load_for_job", no_encoder)
    lex = teacher_mod.build_teacher(demo_corpus, TeacherConfig(kind="lexical", device="cpu"), tmp_path)
    rnd = teacher_mod.build_teacher(demo_corpus, TeacherConfig(kind="random", device="cpu"), tmp_path)
    assert lex.meta["teacher_kind"] == "lexical" and rnd.meta["teacher_kind"] == "random"
    uni = lex.meta["unigram_dev_perplexity"]
    # shared words predict a news article's held-out words far better than frequencies; random neighbours do not
    assert lex.meta["dev_perplexity"] < 0.7 * uni
    assert rnd.meta["dev_perplexity"] > 0.95 * uni
    assert lex.key != rnd.key
    assert "No teacher predicts" in rnd.meta["choice"]


def test_hybrid_similarity_is_the_weighted_mix_of_cosines():
    rng = np.random.default_rng(0)
    emb = torch.from_numpy(rng.normal(size=(12, 5)).astype(np.float32))
    lex = sp.csr_matrix(rng.poisson(1.0, size=(12, 30)).astype(np.float32))
    counts = lex.copy()
    train = np.arange(12)
    a = 0.3
    index = KnnIndex([(lex, a), (emb, 1 - a)], counts, train, np.log(np.full(30, 1 / 30)))
    e = torch.nn.functional.normalize(emb, dim=1)
    ln = lex.toarray() / np.linalg.norm(lex.toarray(), axis=1, keepdims=True)
    want = a * (ln @ ln.T) + (1 - a) * (e @ e.T).numpy()
    assert np.allclose(index.similarity(np.arange(12)).numpy(), want, atol=1e-5)


def test_auto_picks_lowest_dev_perplexity_and_says_why():
    rng = np.random.default_rng(1)
    # two word groups; lexical neighbours find a document's group, the "embeddings" are noise
    docs = np.zeros((80, 20), dtype=np.float32)
    for i in range(80):
        g = i % 2
        docs[i, rng.choice(np.arange(10) + 10 * g, size=8)] += 1
    counts = sp.csr_matrix(docs)
    train, dev = np.arange(60), np.arange(60, 80)
    views = candidate_views("auto", torch.randn(80, 4), tfidf_features(counts, train), n_docs=80)
    assert set(views) == {"lexical", "transformer", "hybrid a=0.25", "hybrid a=0.5", "hybrid a=0.75"}
    log_uni = np.log(np.asarray(counts[train].sum(0)).ravel() + 1) - np.log(counts[train].sum() + 20)
    name, _, (_, _, ppl), table = choose_index(views, counts, train, dev, log_uni)
    assert name == "lexical" and ppl == min(r["dev_perplexity"] for r in table)
    text = describe_choice(name, table, 20.0)
    assert "transformer adds nothing" in text and "lexical" in text
    assert describe_choice(name, table, 20.0, median_tokens=100) == text
    # on short documents perplexity cannot speak for the transformer: the line must not claim that it adds nothing
    short = describe_choice(name, table, 20.0, median_tokens=8)
    assert "adds nothing" not in short and "short" in short and "--teacher transformer" in short
    # a stored teacher or run is described from its facts with today's wording; older metas keep their stored line
    meta = {"teacher_kind": name, "candidates": table, "unigram_dev_perplexity": 20.0, "median_tokens": 8,
            "choice": "an old line"}
    assert choice_line(meta) == short
    assert choice_line({"choice": "an old line"}) == "an old line" and choice_line({}) == ""


def test_teacher_kind_settings_are_checked_and_keyed():
    with pytest.raises(BatError, match="knn head"):
        TeacherConfig(kind="lexical", head="linear")
    with pytest.raises(BatError, match="teacher must be one of"):
        TeacherConfig(kind="tfidf")
    # the lexical teacher does not depend on the encoder's settings; the transformer teacher does
    assert TeacherConfig(kind="lexical").key() == TeacherConfig(kind="lexical", model="other", max_length=128).key()
    assert TeacherConfig(kind="transformer").key() != TeacherConfig(kind="transformer", max_length=128).key()
    assert TeacherConfig(head="linear").kind_resolved == "transformer"
    assert len({TeacherConfig(kind=k).key() for k in ("auto", "transformer", "lexical", "hybrid", "random")}) == 5


def test_near_twins_are_dropped_after_boilerplate_removal():
    assert drop_duplicates(["The cat sat.", "the CAT  sat!", "A dog ran."]) == ["The cat sat.", "A dog ran."]
    body = [f"article {i} about {w} and more words on {w} here" for i, w in
            enumerate(["rates", "rain", "cricket", "mining", "wheat", "ships", "voting", "films", "banks", "roads"])]
    share = "Share this story on social media with your friends today"
    # the same article twice, once with a share line: a twin only once boilerplate removal strips that line
    docs = [b + "\n" + share for b in body] + [body[0]]
    corpus = build_corpus(docs, CorpusConfig(min_df=1, max_df=1.0), name="twins")
    assert corpus.stats["duplicates_dropped"] == 1
    assert corpus.stats["documents"] == len(body)


def test_clipping_counts_from_the_compressed_store_tail():
    """A document with 100 types at c = 10 keeps 1,000 of 2,000 words, also when only the top 512 logits are stored
    and every other word shares one tail logit (the old threshold left all 2,000)."""
    from bat_core.students.loss import clip_logits
    from bat_core.teachers.store import TeacherLogits

    rng = np.random.default_rng(0)
    V = 2000
    z = rng.normal(size=(2, V)).astype(np.float32)
    dense = torch.from_numpy(TeacherLogits.from_dense(z, {"key": "t"}, k=512).dense(np.arange(2)))
    x = torch.zeros(2, V)
    x[0, :100] = 1
    x[1, :10] = 1
    kept = torch.isfinite(clip_logits(dense, x, 10.0)).sum(1).tolist()
    want = [V - int(np.ceil((1 - 10 * u / V) * (V - 1))) for u in (100, 10)]
    assert kept == want and want[0] == 1000
    # on distinct logits the count and the kept words are the released code's (np.quantile threshold)
    raw = torch.from_numpy(z)
    thr = np.quantile(z[1], 1 - 100 / V)
    assert torch.equal(torch.isfinite(clip_logits(raw, x, 10.0))[1], torch.from_numpy(z[1] >= thr))


def test_background_correction_divides_the_target_by_unigram_to_the_gamma():
    """x̃ ∝ p_teacher / p_unigram^γ: the words every neighbourhood shares lose weight; γ = 0 is the plain target."""
    from dataclasses import replace

    from bat_core.config import DistillConfig
    from bat_core.teachers.store import TeacherLogits
    from bat_core.training.trainer import _Teacher

    V = 5
    p = np.array([[0.4, 0.3, 0.1, 0.1, 0.1]], dtype=np.float32)
    uni = np.log(np.array([0.5, 0.2, 0.1, 0.1, 0.1], dtype=np.float32))
    source = TeacherLogits.from_dense(np.log(p), {"key": "t"}, k=V)
    block = sp.csr_matrix(np.array([[2, 1, 0, 0, 1]], dtype=np.float32))
    fetch = _Teacher(source, [DistillConfig(lam=0.5), DistillConfig(lam=0.5, background_correction=0.5)], [0, 0],
                     torch.device("cpu"), uni)
    _, targets = fetch.step([np.array([0])], [block])
    plain, corrected = targets[:, 0].numpy()
    assert np.allclose(plain, 4 * p[0], rtol=2e-3)  # the store keeps logits in fp16
    want = p[0] / np.exp(uni) ** 0.5
    assert np.allclose(corrected, 4 * want / want.sum(), rtol=2e-3)
    assert corrected[0] < plain[0] and corrected[2] > plain[2]
    # off and λ = 0 keep the run keys they had before the setting existed
    assert "background_correction" not in DistillConfig(lam=0.5, background_correction=0.0).to_dict()
    assert DistillConfig(background_correction=0.5).canonical() == DistillConfig().canonical()
    # a stored config without γ was trained with γ = 0, whatever today's default (unset: chosen on dev data)
    assert DistillConfig.from_stored(DistillConfig(lam=0.5, background_correction=0.0).to_dict()
                                     ).background_correction == 0.0
    assert DistillConfig(lam=0.5).gamma_pending and not DistillConfig(lam=0.5, background_correction=0.2).gamma_pending
    # the fade: off leaves the stored settings (hence every run key from before it existed) as they were; a stored
    # fade comes back (the Compare page trains a further λ of a family with the family's γ and fade)
    assert "fade" not in DistillConfig(lam=0.5, background_correction=0.1).to_dict()
    faded = DistillConfig(lam=0.5, background_correction=0.1, fade=1.0)
    assert DistillConfig.from_stored(faded.to_dict()) == faded and faded.key() != replace(faded, fade=0.0).key()
    with pytest.raises(BatError, match="fade"):
        DistillConfig(lam=0.5, fade=1.5)


def test_gamma_rule_keeps_uniqueness_and_picks_best_dev_npmi():
    from types import SimpleNamespace

    from bat_core.training.selection import gamma_choice

    def run(gamma, dev, tu):
        return SimpleNamespace(config={"distill": {"background_correction": gamma}}, key=f"k{gamma}", lam=0.5, seed=1,
                               metrics={"dev_npmi": dev, "tu": tu})

    def choose_gamma(base, candidates):
        choice = gamma_choice(base, candidates)
        return choice["gamma"], choice["rows"]

    base = run(0.0, 0.10, 0.80)
    # γ = 0.5 has the best dev NPMI but loses more than 0.025 TU: the best kept one (0.25) wins
    gamma, rows = choose_gamma(base, [run(0.0, 0.12, 0.70), run(0.25, 0.13, 0.78), run(0.5, 0.20, 0.74)])
    assert gamma == 0.25 and [r["kept"] for r in rows] == [False, True, False]
    # none kept: the one that loses the least uniqueness, even with a lower dev NPMI (the limit comes first)
    gamma, _ = choose_gamma(base, [run(0.0, 0.12, 0.50), run(0.4, 0.11, 0.60)])
    assert gamma == 0.4
    # ... and on equal uniqueness, the better dev NPMI
    assert choose_gamma(base, [run(0.0, 0.11, 0.60), run(0.4, 0.12, 0.60)])[0] == 0.4
    assert choose_gamma(base, [run(0.0, 0.12, 0.60), run(0.4, 0.11, 0.60)])[0] == 0.0
    # a NaN dev NPMI never wins (NaN compares false both ways, so max() alone would keep whatever came first)
    assert choose_gamma(base, [run(0.0, float("nan"), 0.8), run(0.1, 0.05, 0.8)])[0] == 0.1


def test_gamma_rule_fades_the_teacher_only_when_no_gamma_keeps_uniqueness():
    from types import SimpleNamespace

    from bat_core.training.selection import describe_gamma, gamma_choice, needs_fading

    def run(gamma, dev, tu, fade=0.0):
        return SimpleNamespace(config={"distill": {"background_correction": gamma, "fade": fade}}, lam=0.5, seed=1,
                               key=f"k{gamma}-{fade}", metrics={"dev_npmi": dev, "tu": tu})

    base = run(0.0, 0.10, 0.80)
    constant = [run(0.0, 0.14, 0.70), run(0.5, 0.13, 0.74)]
    assert needs_fading(base, constant)  # nothing within 0.025 of 0.80
    assert not needs_fading(base, [*constant, run(0.25, 0.11, 0.78)])  # one kept: no second round
    # 0.04 lost on the first seed is within the 0.05 limit but not within it less one seed's spread: not kept
    assert needs_fading(base, [*constant, run(0.25, 0.11, 0.76)])
    assert not needs_fading(base, [run(0.0, 0.1, 0.5, fade=1.0)])  # already faded: no third round
    # both rounds together: the faded γ = 0.5 keeps the uniqueness and has the best dev NPMI of those kept
    choice = gamma_choice(base, [*constant, run(0.0, 0.12, 0.74, 1.0), run(0.5, 0.125, 0.78, 1.0)])
    assert (choice["gamma"], choice["fade"]) == (0.5, 1.0)
    assert "teacher faded" in describe_gamma(choice) and "γ=0.5 faded" in describe_gamma(choice)
    # without fading runs (or with the constant λ kept) the choice says fade 0, as before
    assert gamma_choice(base, [run(0.25, 0.11, 0.78)])["fade"] == 0.0
    # a fade the user set is theirs: said as set, not as the second round's reason
    own = describe_gamma(gamma_choice(base, [run(0.0, 0.12, 0.79, 0.5), run(0.5, 0.13, 0.78, 0.5)]))
    assert "last 50% of the epochs (as set)" in own and "no γ kept" not in own


def test_gamma_rule_reads_more_seeds_as_means_with_less_room():
    """When nothing keeps TU on the first seed, the rule reads each candidate's TU loss averaged over the seeds
    (paired with each seed's baseline) and dev NPMI averaged, and the room for noise shrinks as 0.025/√seeds."""
    from types import SimpleNamespace

    from bat_core.training.selection import describe_gamma, gamma_choice, needs_more_seeds, tu_slack

    def run(seed, gamma, dev, tu, lam=0.5):
        return SimpleNamespace(config={"distill": {"background_correction": gamma}}, key=f"k{gamma}-{seed}", lam=lam,
                               seed=seed, metrics={"dev_npmi": dev, "tu": tu})

    bases = [run(1, 0.0, 0.1, 0.90, 0.0), run(2, 0.0, 0.1, 0.80, 0.0)]
    first = [run(1, 0.0, 0.20, 0.84), run(1, 0.5, 0.15, 0.86)]  # lose 0.06 and 0.04 on seed 1: neither kept
    assert needs_more_seeds(bases[:1], first)
    second = [run(2, 0.0, 0.16, 0.76), run(2, 0.5, 0.13, 0.80)]  # lose 0.04 and 0.00 on seed 2
    assert tu_slack(1) == pytest.approx(0.025) and tu_slack(2) == pytest.approx(0.05 - 0.025 / 2**0.5)
    choice = gamma_choice(bases, first + second)
    rows = {r["gamma"]: r for r in choice["rows"]}
    assert rows[0.0]["tu_loss"] == pytest.approx(0.05) and not rows[0.0]["kept"]  # mean loss 0.05 > 0.0323
    assert rows[0.5]["tu_loss"] == pytest.approx(0.02) and rows[0.5]["kept"]
    assert rows[0.5]["dev_npmi"] == pytest.approx(0.14) and rows[0.5]["seeds"] == 2 and rows[0.5]["key"] == "k0.5-1"
    assert choice["gamma"] == 0.5 and choice["seeds"] == [1, 2] and choice["baseline_tu"] == pytest.approx(0.85)
    assert not needs_more_seeds(bases, first + second)
    assert "seeds 1, 2: no γ kept the topics distinct on fewer" in describe_gamma(choice)
    # a seed without its baseline is not read (no pairing): only seed 1 counts; with nothing to pair, a plain error
    assert gamma_choice(bases[:1], first + second)["rows"][1]["seeds"] == 1
    with pytest.raises(ValueError, match="no γ candidate was trained on a seed of the baselines"):
        gamma_choice(bases[:1], second)


def test_rule_candidates_follow_the_pipelines_two_rounds():
    """The Compare page rebuilds the rule's choice from saved runs: which fades it reads must be what the pipeline
    read, or a user-set fade run would make the default family look unchosen."""
    from types import SimpleNamespace

    from bat_core.training.selection import FADE, rule_candidates

    def run(gamma, tu, fade=0.0):
        return SimpleNamespace(config={"distill": {"background_correction": gamma, "fade": fade}}, seed=1,
                               key=f"{gamma}-{fade}", metrics={"dev_npmi": 0.1, "tu": tu})

    base = run(0.0, 0.80)
    kept = [run(0.0, 0.70), run(0.25, 0.78)]  # round 1 kept γ = 0.25: no second round
    failed = [run(0.0, 0.70), run(0.25, 0.72)]
    faded = [run(0.0, 0.77, FADE), run(0.25, 0.79, FADE)]
    keys = lambda rs: [r.key for r in rs]
    assert keys(rule_candidates(base, kept + faded, 0.0)) == keys(kept)  # a user's fade-1 runs are not candidates
    assert keys(rule_candidates(base, kept + faded, FADE)) == keys(faded)  # ... they compete among themselves
    assert keys(rule_candidates(base, failed + faded, 0.0)) == keys(failed + faded)  # both rounds
    assert keys(rule_candidates(base, failed + faded, FADE)) == keys(failed + faded)
    half = [run(0.0, 0.7, 0.5), run(0.5, 0.7, 0.5)]
    assert keys(rule_candidates(base, failed + half, 0.5)) == keys(half)


def test_rule_candidates_follow_the_pipelines_clipped_round():
    """The third round (the same γ with the target clipped) is read only when neither earlier round kept the topics
    distinct; then every round is a candidate, whichever round's run is asked about. A clip the user set competes
    only with its own γ grid."""
    from types import SimpleNamespace

    from bat_core.training.selection import CLIP, FADE, rule_candidates

    def run(gamma, tu, fade=0.0, clip=None):
        return SimpleNamespace(config={"distill": {"background_correction": gamma, "fade": fade, "clip": clip}},
                               seed=1, key=f"{gamma}-{fade}-{clip}", metrics={"dev_npmi": 0.1, "tu": tu})

    base = run(0.0, 0.80)
    failed = [run(0.0, 0.70), run(0.5, 0.72)]
    faded_failed = [run(0.0, 0.71, FADE), run(0.5, 0.73, FADE)]
    faded_kept = [run(0.0, 0.71, FADE), run(0.5, 0.79, FADE)]
    clipped = [run(0.0, 0.76, 0.0, CLIP), run(0.5, 0.79, 0.0, CLIP)]
    keys = lambda rs: [r.key for r in rs]
    every = keys(failed + faded_failed + clipped)
    assert keys(rule_candidates(base, failed + faded_failed + clipped, 0.0, CLIP)) == every
    assert keys(rule_candidates(base, failed + faded_failed + clipped, FADE)) == every
    assert keys(rule_candidates(base, failed + faded_failed + clipped, 0.0)) == every
    # the faded round kept one: the rule stopped there, so clipped runs are the user's own and compete alone
    assert keys(rule_candidates(base, failed + faded_kept + clipped, 0.0)) == keys(failed + faded_kept)
    assert keys(rule_candidates(base, failed + faded_kept + clipped, 0.0, CLIP)) == keys(clipped)
    # short documents have no faded round: the clipped round follows the constant one
    assert keys(rule_candidates(base, failed + clipped, 0.0)) == keys(failed + clipped)
    assert keys(rule_candidates(base, failed + clipped, 0.0, CLIP)) == keys(failed + clipped)


def test_short_documents_plan_no_faded_round(tmp_path, monkeypatch):
    """On short documents (median under SHORT_DOC_TOKENS vocabulary words) the rule's second round is the clipped
    one: no faded member is planned or trained, and the budget counts the rounds that exist."""
    from teacher_fixtures import corpus_config, topic_docs

    from bat_core import grid
    from bat_core.config import DistillConfig, StudentConfig
    from bat_core.data.corpus import build_corpus
    from bat_core.training import selection

    docs = [" ".join(d.split()[:8]) for d in topic_docs()[0]]
    corpus = build_corpus(docs, corpus_config(), name="short")
    p = grid.plan(corpus, TeacherConfig(kind="lexical", device="cpu"),
                  StudentConfig(n_topics=3, epochs=3, device="cpu"), DistillConfig(), [0.0, 0.5], [1])
    n = len(selection.GAMMA_GRID)
    assert p.gamma.faded == () and len(p.gamma.clipped) == n and p.selection_budget == 1 + 2 * n
    monkeypatch.setattr(selection, "needs_fading", lambda base, cands: True)  # as if no γ kept the uniqueness
    monkeypatch.setattr(selection, "needs_more_seeds", lambda bases, cands: True)  # ... on any number of seeds
    res = grid.execute(p, tmp_path)
    assert res.gamma["budget"] == {"limit": 1 + 2 * n, "runs": 1 + 2 * n, "stopped": True}
    assert [(r["fade"], r["clip"]) for r in res.gamma["rows"]] == [(0.0, 0.0)] * n + [(0.0, selection.CLIP)] * n
    assert not any(selection.run_fade(r) for r in Cache(tmp_path).runs.runs())
    assert "no faded round for short documents" in selection.describe_gamma(res.gamma)


def test_pipeline_fades_the_teacher_when_no_gamma_keeps_uniqueness(tmp_path, monkeypatch):
    """The second round: the same γ with the teacher faded trains in the γ step, the rule reads both rounds, and
    the grid's λ > 0 members get the chosen γ and fade (their keys as planned: the trainer checks)."""
    from teacher_fixtures import make_topic_corpus

    from bat_core import grid
    from bat_core.config import DistillConfig, StudentConfig
    from bat_core.training import selection

    corpus = make_topic_corpus()
    tcfg = TeacherConfig(kind="lexical", device="cpu")
    scfg = StudentConfig(n_topics=3, epochs=3, device="cpu")
    p = grid.plan(corpus, tcfg, scfg, DistillConfig(), [0.0, 0.5], [1])
    assert [m.distill.fade for m in p.gamma.faded] == [selection.FADE] * len(selection.GAMMA_GRID)
    monkeypatch.setattr(selection, "needs_fading", lambda base, cands: True)  # as if no γ kept the uniqueness
    monkeypatch.setattr(selection, "needs_more_seeds", lambda bases, cands: False)  # ... but the faded ones do
    monkeypatch.setattr(selection, "selection_budget", lambda first, grid_runs: 10**6)  # the rounds, not the budget
    seen = {}
    choice = selection.gamma_choice

    def faded_only(base, cands):  # the rule over the second round alone, so that a faded run must be chosen
        seen["fades"] = [selection.run_fade(c) for c in cands]
        return choice(base, cands[len(selection.GAMMA_GRID):])

    monkeypatch.setattr(selection, "gamma_choice", faded_only)
    res = grid.execute(p, tmp_path)
    assert seen["fades"] == [0.0] * 5 + [1.0] * 5  # both rounds reach the rule
    assert res.gamma["fade"] == selection.FADE
    best = next(r for r in res.gamma["rows"] if r["gamma"] == res.gamma["gamma"])
    bat = next(r for r in res.runs if r.lam > 0)
    assert bat.key == best["key"] and selection.run_fade(bat) == selection.FADE
    assert selection.run_gamma(bat) == res.gamma["gamma"]
    # a fade the user set is theirs: no second round is planned
    assert grid.plan(corpus, tcfg, scfg, DistillConfig(fade=0.5), [0.0, 0.5], [1]).gamma.faded == ()


def test_pipeline_reads_more_seeds_when_no_gamma_keeps_uniqueness(tmp_path, monkeypatch):
    """Neither round kept TU on the first seed: both rounds train on the next seed (the plan's own second seed first),
    the rule reads the means, and the grid's run at that seed with the chosen γ is the one trained there."""
    from teacher_fixtures import make_topic_corpus

    from bat_core import grid
    from bat_core.config import PAPER_SEEDS, DistillConfig, StudentConfig
    from bat_core.training import selection

    corpus = make_topic_corpus()
    tcfg = TeacherConfig(kind="lexical", device="cpu")
    scfg = StudentConfig(n_topics=3, epochs=3, device="cpu")
    p = grid.plan(corpus, tcfg, scfg, DistillConfig(), [0.0, 0.5], [1, 2])
    assert [more[0].seed for more in p.gamma.more] == [2, PAPER_SEEDS[0]]  # the plan's seeds, then the shared ones
    monkeypatch.setattr(selection, "needs_fading", lambda base, cands: True)
    monkeypatch.setattr(selection, "needs_more_seeds", lambda bases, cands: len(bases) < 2)  # exactly one more
    monkeypatch.setattr(selection, "selection_budget", lambda first, grid_runs: 10**6)
    res = grid.execute(p, tmp_path)
    assert res.gamma["seeds"] == [1, 2]
    assert [r["seeds"] for r in res.gamma["rows"]] == [2] * 3 * len(selection.GAMMA_GRID)  # every round, 2 seeds
    chosen = next(r for r in res.gamma["rows"] if (r["gamma"], r["fade"]) == (res.gamma["gamma"], res.gamma["fade"]))
    bat2 = next(r for r in res.runs if r.lam > 0 and r.seed == 2)
    assert selection.run_gamma(bat2) == chosen["gamma"] and selection.run_fade(bat2) == chosen["fade"]
    assert not res.cached[[r.key for r in res.runs].index(bat2.key)]  # trained by the γ step of this execution


def test_the_rule_stops_at_its_budget_and_says_so(tmp_path, monkeypatch):
    """The γ rule trains at most the larger of its rounds on the first seed and a third of the grid's runs: on a
    2-run grid where no γ keeps the uniqueness, the three rounds run (constant, faded, clipped) but no second seed;
    the best of what it read is taken, the grid's λ > 0 runs get its γ, fade and clip, and the choice says why."""
    from teacher_fixtures import make_topic_corpus

    from bat_core import grid
    from bat_core.config import DistillConfig, StudentConfig
    from bat_core.training import selection

    every = 1 + 3 * len(selection.GAMMA_GRID)
    assert selection.selection_budget(every, 2) == every == 16  # the CLI's default grid: every round, no more seeds
    assert selection.selection_budget(every, 66) == 22  # a third of a large grid
    corpus = make_topic_corpus()
    p = grid.plan(corpus, TeacherConfig(kind="lexical", device="cpu"), StudentConfig(n_topics=3, epochs=3,
                                                                                    device="cpu"),
                  DistillConfig(), [0.0, 0.5], [1])
    assert p.selection_budget == every
    assert [m.distill.clip for m in p.gamma.clipped] == [selection.CLIP] * len(selection.GAMMA_GRID)
    monkeypatch.setattr(selection, "needs_fading", lambda base, cands: True)  # as if no γ kept the uniqueness
    monkeypatch.setattr(selection, "needs_more_seeds", lambda bases, cands: True)  # ... on any number of seeds
    seen = {}
    choice = selection.gamma_choice

    def clipped_only(bases, cands):  # the rule over the third round alone, so that a clipped run must be chosen
        seen["rounds"] = [(selection.run_fade(c), selection.run_clip(c)) for c in cands]
        return choice(bases, [c for c in cands if selection.run_clip(c)])

    monkeypatch.setattr(selection, "gamma_choice", clipped_only)
    res = grid.execute(p, tmp_path)
    n = len(selection.GAMMA_GRID)
    assert seen["rounds"] == [(0.0, 0.0)] * n + [(selection.FADE, 0.0)] * n + [(0.0, selection.CLIP)] * n
    assert res.gamma["budget"] == {"limit": every, "runs": every, "stopped": True} and res.gamma["seeds"] == [1]
    assert {r.seed for r in Cache(tmp_path).runs.runs()} == {1}  # no run of a second seed was trained
    bat = next(r for r in res.runs if r.lam > 0)
    assert selection.run_clip(bat) == res.gamma["clip"] == selection.CLIP
    assert selection.run_gamma(bat) == res.gamma["gamma"]
    assert "stopped at its budget of 16 runs" in selection.describe_gamma(res.gamma)
    assert "clipped to 2" in selection.describe_gamma(
        {**res.gamma, "rows": [*res.gamma["rows"], {**res.gamma["rows"][0], "clip": 0.0}]})
    # a clip the user set is theirs: no clipped round is planned
    assert grid.plan(corpus, TeacherConfig(kind="lexical"), StudentConfig(n_topics=3, epochs=3),
                     DistillConfig(clip=3.0), [0.0, 0.5], [1]).gamma.clipped == ()


def test_pipeline_chooses_gamma_on_dev_data_before_training_the_grid(tmp_path):
    """γ unset (the default): the plan trains the first seed at each γ of the grid, the rule picks one, and every
    λ > 0 member is keyed and trained with it; the chosen candidate is the grid's own run (read, not retrained)."""
    from teacher_fixtures import make_topic_corpus

    from bat_core import grid
    from bat_core.config import DistillConfig, StudentConfig
    from bat_core.training import selection

    corpus = make_topic_corpus()
    tcfg = TeacherConfig(kind="lexical", device="cpu")
    scfg = StudentConfig(n_topics=3, epochs=3, device="cpu")
    p = grid.plan(corpus, tcfg, scfg, DistillConfig(), [0.0, 0.5], [1, 2])
    assert p.gamma is not None and p.gamma.seed == 1 and p.gamma.lam == 0.5
    assert [m.distill.background_correction for m in p.gamma.candidates] == list(selection.GAMMA_GRID)
    assert p.steps[:2] == ["teacher", p.gamma.label]
    steps = []
    res = grid.execute(p, tmp_path, on_step=steps.append)
    chosen = res.gamma["gamma"]
    assert chosen in selection.GAMMA_GRID and len(res.gamma["rows"]) == len(selection.GAMMA_GRID)
    kept = [r for r in res.gamma["rows"] if r["kept"]] or res.gamma["rows"]
    assert chosen == max(kept, key=lambda r: r["npmi"])["gamma"]
    assert [s.gamma is not None for s in steps] == [False, True, False, False, False, False]
    bats = [r for r in res.runs if r.lam > 0]
    assert {DistillConfig.from_stored(r.config["distill"]).background_correction for r in bats} == {chosen}
    # the chosen candidate is the grid's own run, and the job reports its runs as trained here, none as cached
    chosen_key = next(r["key"] for r in res.gamma["rows"] if r["gamma"] == chosen)
    assert chosen_key == res.plan.members[[m.label for m in res.plan.members].index("λ=0.5 seed=1")].key
    assert not any(res.cached) and not any(s.cached for s in steps)
    # the same settings with γ given train nothing new, and the summary says what was chosen and why
    again = grid.execute(grid.plan(corpus, tcfg, scfg, DistillConfig(background_correction=chosen),
                                           [0.0, 0.5], [1, 2]), tmp_path)
    assert all(again.cached) and again.gamma is None
    assert [r.key for r in again.runs] == [r.key for r in res.runs]
    s = grid.summary(res, {}, 0.0)
    assert s["background_correction"]["gamma"] == chosen
    on = res.gamma["rows"][0]["score_on"]  # this tiny corpus's dev split may be too sparse to score: then "train"
    assert ("chosen on dev data" if on == "dev" else "chosen on the training split") in selection.describe_gamma(
        s["background_correction"])
    # γ changes the target, hence what the student learns
    cand = {r["gamma"]: r["key"] for r in res.gamma["rows"]}
    from bat_core.training.cache import Cache

    a, b = (Cache(tmp_path).runs.load(cand[g]) for g in (0.0, 0.5))
    assert not np.allclose(a.beta, b.beta)


def test_gamma_rule_ranks_on_the_split_that_chose_the_baselines_checkpoint():
    """Where the dev split was too sparse to choose the baseline's checkpoint (short texts), the rule ranks the
    candidates by their NPMI on the training split instead of the dev split, and says so."""
    from types import SimpleNamespace

    from bat_core.training.selection import describe_gamma, gamma_choice

    def run(gamma, dev, train, tu, on, lam=0.5):
        return SimpleNamespace(config={"distill": {"background_correction": gamma}}, key=f"k{gamma}", lam=lam, seed=1,
                               metrics={"dev_npmi": dev, "train_npmi": train, "tu": tu, "checkpoint_on": on})

    for on, chosen in (("dev", 0.1), ("train", 0.5)):
        base = run(0.0, 0.04, 0.14, 0.85, on, lam=0.0)
        cands = [run(0.1, 0.06, 0.08, 0.84, on), run(0.5, 0.03, 0.13, 0.84, on)]  # both keep TU
        choice = gamma_choice(base, cands)
        assert choice["gamma"] == chosen and {r["score_on"] for r in choice["rows"]} == {on}
        said = describe_gamma(choice)
        assert ("chosen on dev data" in said) == (on == "dev")
        assert ("training-split NPMI 0.1300" in said) == (on == "train")


def test_the_clip_table_keeps_what_clipping_each_step_keeps(demo_corpus):
    """The trainer reads each training document's clipped entries from a table made once per c; the encoder
    inputs and targets of a minibatch are the same as clipping the minibatch itself (several c, a stack of two
    seeds)."""
    from bat_core.config import DistillConfig
    from bat_core.teachers.store import TeacherLogits
    from bat_core.training.trainer import _Teacher

    rng = np.random.default_rng(0)
    V = demo_corpus.vocab_size
    train = demo_corpus.splits["train"]
    source = TeacherLogits.from_dense(rng.normal(size=(demo_corpus.n_docs, V)).astype(np.float32), {"key": "t"},
                                      k=64)  # a short store: many tail ties
    counts = sp.csr_matrix(demo_corpus.counts[train], dtype=np.float32)
    raw = {"encode_logits": "raw"}  # the encoder reads the clipped logits too
    distills = [DistillConfig(lam=0.5, clip=2.0, **raw),
                DistillConfig(lam=0.5, clip=10.0, background_correction=0.5, **raw),
                DistillConfig(lam=0.5, **raw), DistillConfig(lam=0.5, clip=2.0, **raw)]
    args = (source, distills, [0, 0, 0, 1], torch.device("cpu"), np.zeros(V, dtype=np.float32))
    plain, table = _Teacher(*args), _Teacher(*args, train_rows=train, train_counts=counts)
    for _ in range(3):
        local = [rng.integers(len(train), size=16) for _ in range(2)]
        rows, blocks = [train[r] for r in local], [counts[r] for r in local]
        (e1, t1), (e2, t2) = plain.step(rows, blocks), table.step(rows, blocks)
        assert torch.equal(e1, e2) and torch.equal(t1, t2)
    assert set(table.tables) == {2.0, 10.0} and not torch.isfinite(e2[0]).all()
    # a table too large to keep: each step clips its minibatch, with the same result
    import bat_core.training.trainer as trainer

    small = trainer.CLIP_TABLE_ENTRIES
    try:
        trainer.CLIP_TABLE_ENTRIES = 0
        none = _Teacher(*args, train_rows=train, train_counts=counts)
        e3, t3 = none.step(rows, blocks)
    finally:
        trainer.CLIP_TABLE_ENTRIES = small
    assert none.tables == {2.0: None, 10.0: None} and torch.equal(e1, e3) and torch.equal(t1, t3)


def _same_targets(a, b) -> None:
    assert type(a) is type(b)
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    else:
        assert (a.n_members, a.batch, a.vocab_size) == (b.n_members, b.batch, b.vocab_size)
        for field in ("counts", "flat", "bag"):
            assert torch.equal(getattr(a, field), getattr(b, field)), field


@pytest.mark.parametrize("clipped", [True, False])
def test_target_tables_give_each_step_the_targets_it_would_compute(demo_corpus, monkeypatch, clipped):
    """The trainer makes each training document's target once per setting (c, T, min count, γ) and a step reads its
    rows: the loss must get the same numbers, bit for bit and in the same form (sparse rows or dense), as when each
    step computes them; and when the tables would be too large, each step computes them as before."""
    import bat_core.training.trainer as trainer
    from bat_core.config import DistillConfig
    from bat_core.students.layers import SparseRows
    from bat_core.teachers.store import TeacherLogits

    rng = np.random.default_rng(1)
    V = demo_corpus.vocab_size
    train = demo_corpus.splits["train"]
    source = TeacherLogits.from_dense(rng.normal(size=(demo_corpus.n_docs, V)).astype(np.float32) * 3, {"key": "t"},
                                      k=64)
    counts = sp.csr_matrix(demo_corpus.counts[train], dtype=np.float32)
    clip = {"clip": 2.0} if clipped else {}
    distills = [DistillConfig(lam=0.5, background_correction=0.25, **clip),
                DistillConfig(lam=0.5, background_correction=0.5, temperature=2.0, min_count=0.05, **clip),
                DistillConfig(lam=1.0, background_correction=0.25, **clip), DistillConfig(lam=0.5, **clip)]
    args = (source, distills, [0, 0, 1, 1], torch.device("cpu"), rng.normal(size=V).astype(np.float32))
    per_step, tabled = trainer._Teacher(*args), trainer._Teacher(*args, train_rows=train, train_counts=counts)
    per_step._targets_tried = True  # no tables: each step computes its targets
    read = trainer._Teacher._read_targets
    reads = []
    monkeypatch.setattr(trainer._Teacher, "_read_targets", lambda self, *a: reads.append(self) or read(self, *a))
    for _ in range(3):
        local = [rng.integers(len(train), size=32) for _ in range(2)]
        rows, blocks = [train[r] for r in local], [counts[r] for r in local]
        (_, a), (_, b) = per_step.step(rows, blocks), tabled.step(rows, blocks)
        _same_targets(a, b)
    assert reads == [tabled] * 3  # every step of the tabled teacher read the tables, none of the other
    assert tabled.targets is not None and len(tabled.targets) == 3  # λ 0.5 and 1.0 at γ 0.25 share one table
    assert isinstance(b, SparseRows) == clipped
    monkeypatch.setattr(trainer, "TARGET_TABLE_ENTRIES", 0)
    too_large = trainer._Teacher(*args, train_rows=train, train_counts=counts)
    _same_targets(a, too_large.step(rows, blocks)[1])
    assert too_large.targets is None and len(reads) == 3
