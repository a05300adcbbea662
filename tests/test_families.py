"""Run families (runs that differ only in λ and seed) and the labels the views show."""

from __future__ import annotations

from types import SimpleNamespace

from bat_core.explore.families import comparable, families, family_label, is_baseline, teacher_is_weak


def test_run_families():
    """Runs group by everything but λ and seed; one baseline serves every T, c and teacher."""
    def run(lam, seed, k=5, temp=1.0, teacher="t1"):
        cfg = {"student": {"n_topics": k, "epochs": 3, "seed": seed, "device": "auto"},
               "distill": {"lam": lam, "temperature": temp, "clip": 10.0, "encode_logits": "off"},
               "teacher_key": teacher if lam > 0 else None, "teacher": {"model": "/x/tiny", "mode": "frozen"}}
        return SimpleNamespace(lam=lam, seed=seed, config=cfg, key=f"{lam}-{seed}-{k}-{temp}-{teacher}")

    runs = [run(0.5, 0), run(0.5, 0, temp=2.0), run(0.0, 0), run(0.0, 1), run(0.25, 0, teacher="t2"), run(0.0, 0, k=9)]
    fams = list(families(runs).values())
    assert [sorted((r.lam, r.seed) for r in f) for f in fams] == [
        [(0.0, 0), (0.0, 1), (0.5, 0)],  # T=1, teacher t1
        [(0.0, 0), (0.0, 1), (0.5, 0)],  # T=2
        [(0.0, 0), (0.0, 1), (0.25, 0)],  # teacher t2
        [(0.0, 0)],  # K=9: a baseline on its own
    ]
    assert "T=2" in family_label(fams[1]) and "teacher tiny (frozen)" in family_label(fams[0])
    assert fams[0][0].lam == 0.5  # newest first, as given


def test_comparable_needs_a_baseline_and_a_bat_run():
    def run(lam, seed=0):
        cfg = {"student": {"n_topics": 5, "epochs": 3, "seed": seed, "device": "auto"},
               "distill": {"lam": lam, "temperature": 1.0, "clip": None, "encode_logits": "off"},
               "teacher_key": "t" if lam > 0 else None, "teacher": None}
        return SimpleNamespace(lam=lam, seed=seed, config=cfg, key=f"{lam}-{seed}")

    only_base = families([run(0.0), run(0.0, 1)])
    assert len(only_base) == 1 and comparable(only_base) == {}
    both = families([run(0.5), run(0.0)])
    assert len(comparable(both)) == 1
    encoded = run(0.0)
    encoded.config["distill"]["encode_logits"] = "raw"
    assert not is_baseline(encoded) and is_baseline(run(0.0))


def test_weak_teacher():
    assert teacher_is_weak({"dev_perplexity": 900.0, "unigram_dev_perplexity": 800.0})
    assert not teacher_is_weak({"dev_perplexity": 700.0, "unigram_dev_perplexity": 800.0})
    assert not teacher_is_weak(None) and not teacher_is_weak({"dev_perplexity": 700.0})


def test_close_counterpart_needs_two_shared_top_words():
    from bat_core.explore.families import close_counterpart, pair_rows, shared_top_words

    a = [f"a{i}" for i in range(10)]
    one = ["a0"] + [f"b{i}" for i in range(9)]
    two = ["x", "a3", "y", "a7"] + [f"b{i}" for i in range(6)]
    assert shared_top_words(a, one) == 1 and not close_counterpart(a, one)
    assert shared_top_words(a, two) == 2 and close_counterpart(a, two)
    # only the top 10 count: a shared 11th word does not make a match
    assert not close_counterpart(a + ["z"], [f"b{i}" for i in range(9)] + ["a0", "z"])
    import numpy as np

    rows = pair_rows([(1, 0, 0.2), (0, 1, 0.9)], [a, two], [two, one], np.array([0.1, 0.2]), np.array([0.3, 0.4]))
    assert [(r["n"], r["a"], r["b"], r["shared"], r["close"]) for r in rows] == [(1, 2, 1, 10, True),
                                                                                (2, 1, 2, 1, False)]
    assert rows[0]["npmi_a"] == 0.2 and rows[0]["npmi_b"] == 0.3 and rows[1]["jsd"] == 0.9


def test_faded_families_read_as_the_pipelines_two_rounds():
    """After a second round (no constant-λ γ kept TU) the faded run the rule chose is the default family; the other
    candidates are flagged as not chosen, and labels and settings say that λ faded."""
    from bat_core.explore.families import gamma_candidates, settings_line, unchosen_gamma

    def run(lam, gamma=0.0, fade=0.0, tu=0.80, dev=0.10):
        distill = {"lam": lam, "temperature": 1.0, "clip": None, "encode_logits": "off"}
        if lam > 0:
            distill.update(background_correction=gamma, **({"fade": fade} if fade else {}))
        cfg = {"student": {"n_topics": 5, "epochs": 3, "seed": 1, "device": "auto"}, "distill": distill,
               "teacher_key": "t" if lam > 0 else None, "teacher": None}
        return SimpleNamespace(lam=lam, seed=1, config=cfg, key=f"{lam}-{gamma}-{fade}",
                               metrics={"tu": tu, "dev_npmi": dev, "best_epoch": 3})

    base = run(0.0, tu=0.80)
    first = [run(0.5, g, tu=0.70, dev=0.20) for g in (0.0, 0.25)]  # better dev NPMI, but TU lost: round 2 ran
    second = [run(0.5, 0.0, 1.0, tu=0.78, dev=0.12), run(0.5, 0.25, 1.0, tu=0.72, dev=0.15)]
    saved = [*first, *second, base]
    picked = second[0]  # kept, and the only kept candidate
    _, cands = gamma_candidates(picked, saved)
    assert [c.key for c in cands] == [c.key for c in first + second]
    fams = families(saved)
    flags = {next(r for r in f if r.lam > 0).key: unchosen_gamma(f, saved) for f in fams.values()}
    assert flags == {picked.key: False, **{r.key: True for r in [*first, second[1]]}}
    assert "λ fading over the last 100% of the epochs" in family_label([picked, base])
    assert "fading towards 0 over the last 100% of the epochs" in settings_line(picked)
    assert "fading" not in family_label([first[0], base])


def _seeded(lam, seed, gamma=0.0, tu=0.80, dev=0.10):
    """A saved run (test double) at λ and seed with γ, TU and dev NPMI: what the γ rule reads."""
    distill = {"lam": lam, "temperature": 1.0, "clip": None, "encode_logits": "off"}
    if lam > 0:
        distill["background_correction"] = gamma
    cfg = {"student": {"n_topics": 5, "epochs": 3, "seed": seed, "device": "auto"}, "distill": distill,
           "teacher_key": "t" if lam > 0 else None, "teacher": None}
    return SimpleNamespace(lam=lam, seed=seed, config=cfg, key=f"{lam}-{seed}-{gamma}",
                           metrics={"tu": tu, "dev_npmi": dev, "best_epoch": 3})


def test_gamma_candidates_read_further_seeds_as_the_pipeline_does():
    """The Compare page rebuilds a choice the rule made over several seeds: the first seed's candidates, then (no γ
    kept) the next seeds in the shared order, as long as each has every candidate; the choice is the pipeline's,
    whichever of the family's runs the page starts from."""
    from bat_core.config import PAPER_SEEDS
    from bat_core.explore.families import gamma_candidates, rule_reading, unchosen_gamma
    from bat_core.training.selection import gamma_choice

    s1, s2, s3 = PAPER_SEEDS[:3]
    saved = [_seeded(0.0, s) for s in (s1, s2, s3)]
    # nothing is kept on seed 1; on the mean over seeds 1 and 2, γ 0.5 is
    saved += [_seeded(0.5, s1, 0.0, tu=0.70, dev=0.2), _seeded(0.5, s1, 0.5, tu=0.76, dev=0.1)]
    saved += [_seeded(0.5, s2, 0.0, tu=0.70, dev=0.2), _seeded(0.5, s2, 0.5, tu=0.80, dev=0.1)]
    grid = [_seeded(lam, s, 0.5) for lam in (0.1, 1.0) for s in (s1, s2, s3)]  # the grid with the chosen γ
    saved += [*grid, _seeded(0.5, s3, 0.5)]
    bases, cands = gamma_candidates(saved[3], saved)
    assert [b.seed for b in bases] == [s1, s2] and [c.seed for c in cands] == [s1, s1, s2, s2]
    assert gamma_choice(bases, cands)["gamma"] == 0.5  # loses 0.02 over two seeds: within 0.05 − 0.025/√2
    # the page holds the chosen family newest first (seed 3's run last saved): the rebuild still starts at seed 1
    chosen = [r for r in saved if r.lam > 0 and r.config["distill"]["background_correction"] == 0.5]
    assert gamma_choice(*rule_reading(list(reversed(chosen)), saved))["gamma"] == 0.5
    fams = families(saved)
    flags = {tuple(sorted({r.seed for r in v if r.lam > 0})): unchosen_gamma(v, saved) for v in fams.values()
             if any(r.lam > 0 for r in v)}
    assert flags == {(s1, s2, s3): False, (s1, s2): True}  # the γ = 0 candidate, read on two seeds, not chosen
    # a seed missing a candidate ends the reading there, as the pipeline trains every candidate on a seed it reads
    gap = [r for r in saved if r.key != f"0.5-{s2}-0.0"]
    assert [b.seed for b in gamma_candidates(saved[3], gap)[0]] == [s1]


def test_a_users_own_multi_seed_family_is_not_an_unchosen_candidate():
    """The rule chose on the first seed; a family the user trained at the same λ on three seeds with another γ is
    theirs, not a candidate the rule passed over (it is not listed last with that note)."""
    from bat_core.explore.families import unchosen_gamma

    saved = [_seeded(0.0, 1), _seeded(0.5, 1, 0.25, tu=0.79, dev=0.2), _seeded(0.5, 1, 0.0, tu=0.70)]  # 0.25 kept
    mine = [_seeded(0.5, s, 0.0, tu=0.70) for s in (2, 3)]
    saved += mine
    fam0 = [r for r in saved if r.lam > 0 and r.config["distill"]["background_correction"] == 0.0]
    assert not unchosen_gamma(fam0, saved)
    assert unchosen_gamma(fam0[:1], saved)  # seed 1 alone: the candidate the rule did not choose
