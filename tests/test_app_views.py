"""AppTest over the views of issues #10 and #11: λ = 1 next to λ = 0, the teacher's word shift, the whole λ curve,
per-run caches (a revisited λ recomputes nothing), and pyLDAvis with baseline and BAT side by side."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_app import SEED, new_app, wait_for_job

from bat_core.explore.families import close_counterpart, pick


def _runs(at):
    from ui.runs import cache

    return cache().runs.runs(at.session_state["corpus"].hash)


def _values(v) -> list[float]:
    """A plotly spec array: a plain list, or {"dtype", "bdata"} (base64 of the raw array)."""
    if isinstance(v, dict):
        import base64

        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


def _raise(*a, **k):
    raise AssertionError("recomputed on a revisit: the per-run cache missed")


@pytest.fixture(scope="module")
def trained(app_env):
    """Baseline, λ = 0.5 and λ = 1 (K = 6, one seed), trained through the Train page once for this module."""
    at = new_app(timeout=120)
    at.switch_page("views/train.py").run()
    at.number_input(key="s_k").set_value(6)
    at.multiselect(key="s_lams").set_value([0.5, 1.0]).run()
    at.button(key="train").click().run()
    assert not at.exception and not at.error
    wait_for_job(at)
    return app_env


def _compare(tab: str | None = None):
    at = new_app(timeout=120)
    at.switch_page("views/compare.py").run()
    assert not at.exception, at.exception
    if tab is not None:
        at.session_state["cmp_tab"] = tab
        at.run()
        assert not at.exception, at.exception
    return at


@pytest.mark.slow
def test_lambda_one_next_to_baseline(trained):
    at = _compare("λ = 1 next to λ = 0")
    assert at.select_slider(key="cmp_lam").options == ["0.5", "1"]
    labels = [m.label for m in at.metric]
    assert "λ = 1 NPMI (test)" in labels and "Close counterparts" in labels
    tables = [m.value for m in at.markdown if "bat-align" in m.value]
    assert len(tables) == 2 and "λ = 1 (teacher only)" in tables[1]
    saved = _runs(at)
    base, one = pick(saved, 0.0, SEED), pick(saved, 1.0, SEED)
    from bat_core.evaluation.align import align_topics

    pairs = align_topics(base.beta, one.beta)
    body = tables[1].split("<tbody>")[1].split("<tr")[1:]
    assert len(body) == len(pairs) == 6
    for n, ((i, j, _), row) in enumerate(zip(pairs, body, strict=True), 1):  # alignment order, topic numbers
        assert f"<td class='num'>{n}</td><td class='num'>{i + 1}</td>" in row
        assert row.split("</tr>")[0].endswith(f"<td class='num'>{j + 1}</td>")
    n_far = sum(not close_counterpart(base.topics[i], one.topics[j]) for i, j, _ in pairs)
    assert tables[1].count("no close counterpart") == n_far
    close = {m.label: m.value for m in at.metric}["Close counterparts"]
    assert close == f"{len(pairs) - n_far} of {len(pairs)}"


@pytest.mark.slow
def test_teacher_word_shift(trained):
    at = _compare("Teacher's word shift")
    assert [c.key for c in at.get("plotly_chart")] == ["cmp_word_shift"]
    raised = next(m.value for m in at.markdown if m.value.startswith("Raised most:"))
    lowered = next(m.value for m in at.markdown if m.value.startswith("Lowered most:"))
    # the same sums, done here by hand from the teacher store
    from ui.runs import cache

    corpus = at.session_state["corpus"]
    bat = pick(_runs(at), float(at.select_slider(key="cmp_lam").value), SEED)
    z = cache().teacher_logits(bat.config["teacher_key"]).dense(corpus.splits["train"]).astype(np.float64)
    x = corpus.split_counts("train").toarray().astype(np.float64)
    t = bat.config["distill"]["temperature"]
    p = np.exp(z / t - (z / t).max(axis=1, keepdims=True))
    target = (x.sum(axis=1, keepdims=True) * p / p.sum(axis=1, keepdims=True)).sum(axis=0)
    change = target / target.sum() - x.sum(axis=0) / x.sum()
    top_up, top_down = corpus.vocab[int(np.argmax(change))], corpus.vocab[int(np.argmin(change))]
    assert raised.split("**")[1] == top_up and lowered.split("**")[1] == top_down
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert {d["name"] for d in spec["data"]} == {"raised by the teacher", "lowered by the teacher"}


@pytest.mark.slow
def test_against_lambda_shows_the_whole_curve(trained):
    at = _compare("Against λ")
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "3 λ values" in spec["layout"]["title"]["text"]
    names = [d["name"] for d in spec["data"]]
    assert names.count("mean over seeds") == 2 and names.count("± std over seeds") == 2
    assert names.count("one seed") == 2
    # the NPMI the page says to read is the one plotted: on the demo's sparse test split, the whole corpus's
    assert any("too sparse" in w.value for w in at.warning)
    titles = [a["text"] for a in spec["layout"]["annotations"]]
    assert "NPMI (whole corpus) vs λ" in titles and not any("test split" in t for t in titles)
    import base64

    y = next(d for d in spec["data"] if d["name"] == "mean over seeds")["y"]
    if isinstance(y, dict):  # plotly's typed array
        y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"])
    base = next(m for m in at.metric if m.label == "Baseline NPMI (whole corpus)")
    assert f"{y[0]:.3f}" == base.value  # λ = 0, one seed: the baseline's whole-corpus NPMI


@pytest.mark.slow
def test_revisiting_a_lambda_recomputes_nothing(trained, monkeypatch):
    import ui.compare_cache as cc

    at = _compare()
    at.select_slider(key="cmp_lam").set_value(1.0).run()
    at.select_slider(key="cmp_lam").set_value(0.5).run()
    assert not at.exception
    monkeypatch.setattr(cc, "align_topics", _raise)
    monkeypatch.setattr(cc, "pair_rows", _raise)
    monkeypatch.setattr(cc.plots, "topic_npmi_pairs", _raise)
    monkeypatch.setattr(cc.exports, "aligned_pairs_csv", _raise)
    for v in (1.0, 0.5, 1.0):
        at.select_slider(key="cmp_lam").set_value(v).run()
        assert not at.exception, at.exception
        assert f"BAT (λ={v:g}) NPMI (test)" in {m.label for m in at.metric}


@pytest.mark.slow
def test_ldavis_side_by_side_and_cached(trained, monkeypatch):
    at = new_app(timeout=120)
    at.switch_page("views/ldavis.py").run()
    assert not at.exception, at.exception
    at.select_slider(key="lda_lam").set_value(1.0).run()
    assert not at.exception, at.exception
    left, right = (f.proto.srcdoc for f in at.get("iframe"))
    assert f"Baseline (λ=0), seed {SEED}" in left and f"BAT (λ=1), seed {SEED}" in right
    assert "zoom:0.55" in left and "zoom:0.55" in right and 'src="http' not in left + right
    saved = _runs(at)
    mapping = next(m.value for m in at.markdown if "↔" in m.value)
    from bat_core.evaluation.align import align_topics

    base, one = pick(saved, 0.0, SEED), pick(saved, 1.0, SEED)
    first = align_topics(base.beta, one.beta)[0]
    assert mapping.startswith(f"{first[0] + 1} ↔ {first[1] + 1}")
    import bat_core.explore.ldavis

    monkeypatch.setattr(bat_core.explore.ldavis, "run_html", _raise)  # both pages come from the per-run cache now
    at.radio(key="lda_layout").set_value("One above the other").run()
    assert not at.exception, at.exception
    frames = [f.proto.srcdoc for f in at.get("iframe")]
    assert len(frames) == 2 and not any("zoom:0.55" in f for f in frames)


def test_heap_frozen_once_for_cheap_post_run_gc():
    """The pages freeze the imported libraries out of Streamlit's full collection after every run, once."""
    import gc

    from ui import perf

    perf.freeze_once()
    assert gc.get_freeze_count() > 0
    assert perf.freeze_once() is False  # never again: later objects stay collectable


@pytest.mark.slow
def test_warm_up_fills_the_other_lambdas(trained, monkeypatch):
    """After the page shows one λ, a background thread fills the caches of the other λ of that seed: the first move
    to λ = 1 is a lookup too."""
    import threading

    import ui.compare_cache as cc

    for f in (cc.aligned, cc.pair_table, cc.fig_topic_npmi):
        f.clear()
    cc._warmed.clear()
    at = _compare()
    assert at.select_slider(key="cmp_lam").value == 0.5
    for t in threading.enumerate():
        if t.name == "bat-compare-warm":
            t.join(60)
    monkeypatch.setattr(cc, "align_topics", _raise)
    monkeypatch.setattr(cc, "pair_rows", _raise)
    monkeypatch.setattr(cc.plots, "topic_npmi_pairs", _raise)
    at.select_slider(key="cmp_lam").set_value(1.0).run()
    assert not at.exception, at.exception
    assert "BAT (λ=1) NPMI (test)" in {m.label for m in at.metric}


@pytest.mark.slow
def test_downstream_says_plainly_when_the_corpus_has_no_labels(trained):
    at = _compare("Downstream: θ → labels")
    assert not at.get("plotly_chart")
    assert any("No downstream check for this corpus" in i.value and "has no labels" in i.value for i in at.info)


def _train_and_open_downstream(at, k: int) -> None:
    """Train λ ∈ {0, 0.5} (γ off, K = k) on the session's corpus from Train, then open Compare's downstream tab."""
    at.switch_page("views/train.py").run()
    at.number_input(key="s_k").set_value(k)
    at.multiselect(key="s_lams").set_value([0.5])
    at.selectbox(key="s_gamma").set_value(0.0).run()
    at.button(key="train").click().run()
    assert not at.exception and not at.error
    wait_for_job(at)
    at.switch_page("views/compare.py").run()
    at.session_state["cmp_tab"] = "Downstream: θ → labels"
    at.run()
    assert not at.exception, at.exception


@pytest.mark.slow
def test_downstream_chart_on_a_labelled_builtin_corpus(app_env):
    """mini20ng picked on the Corpus page, trained at λ ∈ {0, 0.5}: the tab plots accuracy and macro-F1 against λ,
    the same numbers as bat_core.evaluation.downstream on the saved runs."""
    at = new_app(timeout=120)
    at.selectbox(key="builtin_name").set_value("mini20ng").run()
    at.button(key="use_demo").click().run()
    assert not at.exception and at.session_state["corpus"].name == "mini20ng"
    _train_and_open_downstream(at, k=4)
    charts = at.get("plotly_chart")
    assert [c.key for c in charts] == ["cmp_downstream"]
    spec = json.loads(charts[0].proto.spec)
    titles = [a["text"] for a in spec["layout"]["annotations"]]
    assert titles == ["Accuracy (test split) vs λ", "Macro-F1 (test split) vs λ"]
    from bat_core.evaluation.downstream import evaluate_runs

    want = {s["lam"]: s["accuracy"] for s in evaluate_runs(at.session_state["corpus"], _runs(at))}
    mean = next(d for d in spec["data"] if d["name"] == "mean over seeds" and d.get("xaxis", "x") == "x")
    assert dict(zip(_values(mean["x"]), _values(mean["y"]), strict=True)) == pytest.approx(want)
    assert any(m.value.startswith("At λ = 0.5: accuracy") for m in at.markdown)


@pytest.mark.slow
def test_compare_says_which_gamma_was_chosen_and_why(trained):
    """The Train page's default γ is chosen on dev data; Compare states the choice and the candidates it weighed."""
    from bat_core.explore.families import gamma, gamma_candidates
    from bat_core.training.selection import GAMMA_GRID, gamma_choice

    at = _compare()
    saved = _runs(at)
    one = pick(saved, 1.0, SEED)  # λ = 1 is only in the grid: it carries the chosen γ
    # the γ runs: λ = 0.5 (the λ nearest the default), first seed, every γ of the grid
    bat = next(r for r in saved if r.lam == 0.5 and gamma(r) == gamma(one))
    bases, cands = gamma_candidates(bat, saved)
    assert [gamma(r) for r in cands] == list(GAMMA_GRID) and [b.lam for b in bases] == [0]
    choice = gamma_choice(bases, cands)
    assert choice["gamma"] == gamma(one)
    # the γ candidates the rule did not choose are listed last, and say so
    options = at.selectbox(key="cmp_family").options
    flags = ["did not choose" in o for o in options]
    assert sum(flags) == len(GAMMA_GRID) - 1 and flags == sorted(flags)
    # one sentence on the page, the rule and every candidate behind an expander
    line, rule = (c.value for c in at.caption if c.value.startswith("Background correction:"))
    # ranked on the dev split, or on the training split where the dev split cannot score (this small corpus may not)
    data, npmi = {"dev": ("dev data", "dev"), "train": ("the training split", "training-split")}[
        choice["rows"][0]["score_on"]]
    assert f"chosen on {data} at λ = 0.5" in line and f"({len(GAMMA_GRID)} candidates on the first seed)" in line
    how = next(e for e in at.expander if e.label.startswith("How γ was chosen"))
    assert [c.value for c in how.caption] == [rule]
    assert f"chosen on {data}" in rule and all(f"γ={g:g} {npmi} NPMI" in rule for g in GAMMA_GRID)


@pytest.mark.slow
def test_downstream_from_an_uploaded_label_column(app_env):
    """A CSV with a label column: its categories are what the downstream tab classifies."""
    import random

    rng = random.Random(3)
    topics = {"weather": "rain storm flood river cloud wind snow cold forecast", "court": "judge trial police jury "
              "verdict lawyer prison charge appeal", "sport": "football match goal season player coach team win cup"}
    rows = ["id,text,topic"]
    for i in range(90):
        name = list(topics)[i % 3]
        rows.append(f'{i},"{" ".join(rng.choice(topics[name].split()) for _ in range(15))}",{name}')
    at = new_app(timeout=120)
    at.file_uploader(key="upload").set_value(("labelled.csv", "\n".join(rows).encode(), "text/csv")).run()
    assert at.selectbox(key="label_column").options == ["(none)", "id", "text", "topic"]
    at.selectbox(key="label_column").set_value("topic").run()
    at.button(key="load_upload").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["corpus"].name == "labelled"
    _train_and_open_downstream(at, k=3)
    assert [c.key for c in at.get("plotly_chart")] == ["cmp_downstream"]
    assert any("Labels: column 'topic'" in c.value for c in at.caption)


def test_a_label_column_with_one_category_is_said_when_the_file_is_loaded(app_env):
    """Found in an app walk: it was accepted without a word, and only the Compare page said so after training."""
    import random

    rng = random.Random(0)
    words = ["word" + "".join(chr(97 + int(c)) for c in f"{i:02d}") for i in range(80)]
    rows = ["text,label"] + [f'"{" ".join(rng.choice(words) for _ in range(12))}",sports' for _ in range(60)]
    at = new_app(timeout=120)
    at.file_uploader(key="upload").set_value(("onelabel.csv", "\n".join(rows).encode(), "text/csv")).run()
    at.selectbox(key="label_column").set_value("label").run()
    at.button(key="load_upload").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("fewer than two distinct labels" in w.value for w in at.warning), [w.value for w in at.warning]


@pytest.mark.slow
def test_pages_follow_a_running_job_from_the_first_look_to_the_chosen_gamma(trained):
    """While a job runs, Compare and Train show what it trains and how many runs are done; while γ is being chosen
    they show the first look (the γ = 0.25 candidate next to the baseline) labelled provisional, then switch by
    themselves to the chosen γ's runs. Replayed over the runs the module trained: a job object in the state the
    real one was in at each point."""
    from bat_core.explore.families import family_key, gamma
    from ui.jobs import Job, manager
    from ui.live import GridWatch

    done = next(j for j in reversed(list(manager().jobs.values()))
                if isinstance(j.watch, GridWatch) and j.state == "done"
                and {m.lam for m in j.watch.plan.members} == {0.0, 0.5, 1.0})
    watch = GridWatch(done.watch.plan)  # the same plan, γ not chosen yet
    job = Job(label="Training on demo", corpus_hash=done.corpus_hash, steps=done.steps, watch=watch)
    job.step = 1  # the teacher is ready
    manager().jobs[job.id], manager().current = job, job
    try:
        at = _compare()
        base, look = watch.first_look
        saved = _runs(at)
        look_run = next(r for r in saved if r.key == look.key)
        assert at.selectbox(key="cmp_family").value == family_key(look_run)  # the first look, whatever is newest
        assert any(i.value.startswith("Training: the γ step") and i.value.endswith("runs done") for i in at.info)
        assert any(w.value.startswith("**Provisional**: γ is not chosen yet. This is the γ = 0.25 candidate")
                   for w in at.warning)
        table = next(m.value for m in at.markdown if "bat-align" in m.value)
        assert "BAT (λ=0.5, γ=0.25, provisional)" in table
        assert not any(c.value.startswith("Background correction:") for c in at.caption)  # no choice claimed yet
        at.switch_page("views/train.py").run()
        assert not at.exception, at.exception
        assert any(c.value.startswith("Provisional: γ is not chosen yet") for c in at.caption)
        # the first look's family: the baseline and λ = 0.5 at γ = 0.25 (in this replay the finished grid's λ = 1 run
        # is in the cache too, and joins the family when the rule chose that same γ)
        same = np.isclose(done.watch.choice["gamma"], watch.first_look_gamma) and not done.watch.choice["fade"]
        assert sorted(set(at.dataframe[0].value["λ"].tolist())) == [0.0, 0.5] + ([1.0] if same else [])

        watch.choose(done.watch.choice)  # the γ step ends: the pages move to the chosen γ's runs
        job.step = 2
        at.switch_page("views/compare.py").run()
        assert not at.exception, at.exception
        one = pick(saved, 1.0, SEED)  # λ = 1 is only in the grid: it carries the chosen γ
        assert at.selectbox(key="cmp_family").value == family_key(one)
        assert gamma(one) == done.watch.choice["gamma"]
        assert not any("Provisional" in w.value for w in at.warning)
        table = next(m.value for m in at.markdown if "bat-align" in m.value)
        assert "provisional" not in table and "BAT (λ=0.5)" in table
        assert at.select_slider(key="cmp_lam").options == ["0.5", "1"]
        assert any(i.value.startswith(f"Training (γ = {gamma(one):g} chosen): finishing") for i in at.info)
    finally:
        job.state = "done"
    at.run()
    assert not at.exception, at.exception
    assert not any(i.value.startswith("Training") for i in at.info)
