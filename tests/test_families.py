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
    assert "T=2" in family_label(fams[1])
    assert "teacher: a bag-of-words head on frozen tiny embeddings" in family_label(fams[0])
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


def test_pages_name_the_teacher_by_what_produces_the_target():
    """Before training, by what the settings will do; after it, by the trained teacher's meta: a lexical teacher is
    neighbours by shared words, and only a teacher that ran an encoder names one (no "BERT" for MiniLM or TF-IDF)."""
    from bat_core.config import TeacherConfig
    from bat_core.explore.families import settings_line
    from bat_core.explore.wording import neighbour_options, planned_teacher

    assert planned_teacher(TeacherConfig()) == \
        "chosen on dev data among neighbours by shared words, by MiniLM embeddings, or both"
    assert planned_teacher(TeacherConfig(kind="lexical")) == "nearest neighbours by shared words (TF-IDF)"
    assert planned_teacher(TeacherConfig(kind="transformer")) == "nearest neighbours by MiniLM embeddings"
    assert planned_teacher(TeacherConfig(mode="full", head="linear")) == \
        "fine-tuned MiniLM with a bag-of-words head (the paper's teacher)"
    assert planned_teacher(TeacherConfig(head="mlp")) == "a bag-of-words head on frozen MiniLM embeddings"
    assert neighbour_options("minilm")["auto"].startswith("auto: chosen on dev data among neighbours by shared words")
    assert not any("BERT" in v for v in neighbour_options("minilm").values())

    def run(teacher):
        cfg = {"student": {"n_topics": 5, "epochs": 3, "seed": 1, "device": "auto"},
               "distill": {"lam": 0.5, "temperature": 1.0, "clip": None, "encode_logits": "off",
                           "background_correction": 0.25},
               "teacher_key": "t", "teacher": teacher}
        return SimpleNamespace(lam=0.5, seed=1, config=cfg, key="k", metrics={"best_epoch": 3})

    lexical = {"teacher_kind": "lexical", "head": "knn", "mode": "frozen", "model": "minilm", "max_length": 256,
               "dev_perplexity": 700.0, "unigram_dev_perplexity": 800.0}
    line = settings_line(run(lexical))
    assert "teacher: nearest neighbours by shared words (TF-IDF): dev perplexity 700 vs 800" in line
    assert "max length" not in line and "minilm" not in line.lower()  # the encoder did not make this target
    assert "teacher: nearest neighbours by shared words (TF-IDF)" in family_label([run(lexical)])
    knn = {**lexical, "teacher_kind": "transformer"}
    assert "teacher: nearest neighbours by MiniLM embeddings (max length 256 tokens)" in settings_line(run(knn))


def test_plan_in_one_sentence_and_the_rule_behind_it():
    from bat_core.explore.wording import plan_details, plan_sentence
    from bat_core.training.selection import GAMMA_GRID

    assert plan_sentence([0.0, 0.5], [121958], True) == (
        "2 runs: λ = 0 (the baseline) and 0.5, on seed 121958, after at most 16 runs that choose the background "
        "correction γ on dev data.")
    assert "after at most 22 runs" in plan_sentence([i / 10 for i in range(11)], [1, 2, 3, 4, 5, 6], True)  # 66/3
    assert plan_sentence([0.0, 0.5, 1.0], [1, 2], False) == \
        "6 runs: λ = 0 (the baseline), 0.5 and 1, each on seeds 1 and 2."
    assert plan_sentence([0.0], [1], True) == "1 run: λ = 0 (the baseline), on seed 1."  # no teacher, no γ
    details = plan_details([0.0, 0.5], [7], True, "nearest neighbours by shared words (TF-IDF)", True)
    assert details[0] == ("No teacher to train: the teacher for these settings is in the cache (nearest neighbours "
                          "by shared words (TF-IDF)).")
    assert details[1].startswith(f"Choosing γ: {len(GAMMA_GRID) - 1} more runs at the first seed (7) train λ = 0.5")
    assert "read from the cache" in details[-1]
    assert plan_details([0.0, 0.5], [7], False, "x")[:2] == ["The teacher is trained first: x.",
                                                             "γ is set, so no extra runs choose it."]
    assert plan_details([0.0], [7], True, "x") == [details[-1]]
    assert not any("minute" in s or "CPU" in s for s in [plan_sentence([0.0, 0.5], [1], True), *details])


def test_gamma_in_one_sentence():
    from bat_core.explore.wording import gamma_sentence

    rows = [{"gamma": 0.0, "fade": 0.0, "kept": False}, {"gamma": 0.25, "fade": 0.0, "kept": True}]
    choice = {"gamma": 0.25, "fade": 0.0, "lam": 0.5, "seed": 1, "seeds": [1], "rows": rows}
    assert gamma_sentence(choice) == (
        "Background correction: γ = 0.25, chosen on dev data at λ = 0.5 (2 candidates on the first seed): the best "
        "dev NPMI among the candidates whose topics stay about as distinct as the baseline's.")
    none_kept = {**choice, "gamma": 0.0, "fade": 1.0, "seeds": [1, 2],
                 "rows": [{"gamma": 0.0, "fade": 1.0, "kept": False}]}
    assert gamma_sentence(none_kept) == (
        "Background correction: no correction (γ = 0), with the teacher fading towards 0, chosen on dev data at "
        "λ = 0.5 (1 candidate on 2 seeds): no candidate kept the topics as distinct as the baseline's, so the one "
        "that lost the least.")


def test_a_running_grid_in_one_line_and_what_the_pages_show_meanwhile(demo_corpus):
    """ui.live.GridWatch follows a job's plan through the run keys in the cache: what trains now and how many runs are
    done; the first look (the first seed's baseline and the γ = 0.25 candidate) is shown, as provisional, while γ is
    being chosen, then a run of the chosen γ."""
    from bat_core import grid
    from bat_core.config import DEFAULT_LAMBDA_GRID, DistillConfig, StudentConfig, TeacherConfig
    from bat_core.training.selection import GAMMA_GRID
    from ui.live import CHOSEN, EARLY_LOOK, FIRST_LOOK, GridWatch

    seeds = grid.seed_list(3)
    p = grid.plan(demo_corpus, TeacherConfig(head="knn"), StudentConfig(), DistillConfig(), list(DEFAULT_LAMBDA_GRID),
                  seeds)
    w = GridWatch(p)
    n = len(DEFAULT_LAMBDA_GRID) * len(seeds) + len(GAMMA_GRID) - 1  # the grid, and the γ candidates it does not hold
    assert w.line(set(), teacher_ready=False) == (
        f"Training: a first look: the baseline and λ = 0.5 at γ = 0.25 on seed {seeds[0]}, on neighbours by shared "
        f"words (no encoding); then the teacher is chosen · 0 of {n} runs done")
    assert w.line(set(), True).startswith("Training: a first look: the baseline and λ = 0.5 at γ = 0.25")
    assert w.showing(set()) is None
    base, look = w.first_look
    assert look.lam == 0.5 and look.seed == seeds[0] and w.first_look_gamma == 0.25 and base.lam == 0
    # the early look (before the auto teacher exists) is shown as provisional until the first look itself lands
    early = {base.key, w.early.key}
    assert w.showing(early) == (EARLY_LOOK, w.early.key) and w.provisional(w.early.key)
    assert w.line(early, teacher_ready=False).startswith("Training: the teacher (a first look, on neighbours by "
                                                         "shared words, is ready to compare) · 2 of ")
    assert w.showing(early | {look.key}) == (FIRST_LOOK, look.key)
    no_early = GridWatch(grid.plan(demo_corpus, TeacherConfig(kind="lexical"), StudentConfig(), DistillConfig(),
                                   [0.0, 0.5], seeds))
    assert no_early.early is None and no_early.line(set(), False).startswith("Training: the teacher, then a first look")
    both = {base.key, look.key}
    assert w.showing(both) == (FIRST_LOOK, look.key) and w.provisional(look.key)
    assert w.line(both, True) == (
        f"Training: the γ step on seed {seeds[0]}: 4 more candidates (γ = 0, 0.1, 0.4, 0.5), then γ is chosen on dev "
        f"data · 2 of {n} runs done")
    first_round = {m.key for m in p.gamma.members}
    # the other seeds' baselines train last, with their seeds' λ curves: once the first round is in, γ is chosen
    # from it, or the rule goes on to its later rounds
    assert w.line(first_round, True).startswith("Training: the γ step: γ is chosen on dev data from the first round")

    w.choose({"gamma": 0.1, "fade": 0.0})  # the job's γ step chose γ = 0.1
    assert not w.gamma_pending and not w.provisional(look.key)
    chosen = next(m for m in w.resolved.members if m.lam == 0.5 and m.seed == seeds[0])
    assert chosen.key in first_round and chosen.key != look.key  # the γ = 0.1 candidate is a run of the grid now
    assert w.showing(first_round) == (CHOSEN, chosen.key)
    assert w.line(first_round, True) == (
        f"Training (γ = 0.1 chosen): seed {seeds[0]}, λ = 9 values (0.1 … 1); then seeds {seeds[1]}, {seeds[2]} · "
        f"{len(GAMMA_GRID) + 1} of {n} runs done")
    every = first_round | {m.key for m in w.resolved.members}
    assert w.counts(every) == (n, n) and w.line(every, True).endswith(f"finishing · {n} of {n} runs done")


def test_coherence_reading_names_the_npmi_to_read():
    """The Compare page's sentence follows which_to_read: the test split when it saw enough pairs, else the reference
    (with a caution when the reference too is sparse), else the whole corpus with a pointer to the reference upload."""
    from bat_core.explore.wording import coherence_reading

    assert "its NPMI can be read; the whole-corpus NPMI is shown" in coherence_reading("test", 0.8, None, 0.5)
    assert "and against the reference are shown" in coherence_reading("test", 0.8, 0.9, 0.5)
    corpus = coherence_reading("corpus", 0.1, None, 0.5)
    assert "only 10%" in corpus and "against the whole corpus instead" in corpus and "Corpus page" in corpus
    ref = coherence_reading("reference", 0.1, 0.7, 0.5)
    assert "against the reference instead: it saw 70%" in ref and "with care" not in ref
    assert "read its NPMI with care" in coherence_reading("reference", 0.1, 0.3, 0.5)
