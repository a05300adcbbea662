"""The plotly figures: right traces, right numbers, no Streamlit needed."""

import numpy as np
import plotly.graph_objects as go
import pytest

from bat_core.explore import plots


def _runs():
    rows = []
    for lam, base in ((0.0, 0.10), (0.5, 0.15), (1.0, 0.12)):
        for seed in (0, 1, 2):
            rows.append({"lam": lam, "seed": seed, "key": f"k{lam}{seed}",
                         "metrics": {"test_npmi": base + 0.01 * seed, "dev_npmi": base, "tu": 0.8 - lam / 10,
                                     "test_perplexity": 900.0, "epochs_run": 5}})
    return rows


def test_metrics_frame_and_summary():
    df = plots.metrics_frame(_runs())
    assert list(df["lam"].unique()) == [0.0, 0.5, 1.0]
    s = plots.summarise(df)
    row = s[s["lam"] == 0.5].iloc[0]
    assert row["n"] == 3
    assert row["npmi_mean"] == pytest.approx(0.16)
    assert row["npmi_std"] == pytest.approx(0.01)
    one = plots.summarise(df[df["seed"] == 0])
    assert (one["npmi_std"] == 0).all()  # a single seed has no spread, not NaN


def test_topic_npmi_pairs():
    pairs = [(2, 0, 0.1), (0, 1, 0.3), (1, 2, 0.5)]
    fig = plots.topic_npmi_pairs(pairs, [0.1, 0.2, 0.3], [0.4, 0.5, 0.6], name_b="BAT (λ=0.5)")
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["Baseline (λ=0)", "BAT (λ=0.5)"]
    assert list(fig.data[0].x) == ["#1: 3↔1", "#2: 1↔2", "#3: 2↔3"]
    np.testing.assert_allclose(fig.data[0].y, [0.3, 0.1, 0.2])
    np.testing.assert_allclose(fig.data[1].y, [0.4, 0.5, 0.6])


def test_seed_summary_mean_std():
    df = plots.metrics_frame(_runs())
    fig = plots.seed_summary(df, 0.5)
    bars = [t for t in fig.data if t.type == "bar"]
    assert len(bars) == 4  # (baseline, BAT) × (NPMI, TU)
    bat_npmi = next(t for t in bars if t.name.startswith("BAT") and t.xaxis == "x")
    assert bat_npmi.y[0] == pytest.approx(0.16)
    assert bat_npmi.error_y.array[0] == pytest.approx(0.01)


def test_lambda_sweep_has_band_and_mean():
    fig = plots.lambda_sweep(plots.metrics_frame(_runs()), current=0.5)
    means = [t for t in fig.data if t.name == "mean over seeds"]
    assert len(means) == 2
    np.testing.assert_allclose(means[0].x, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(means[0].y, [0.11, 0.16, 0.13])
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 2 and len(bands[0].x) == 6


def test_history_and_corpus_charts():
    hist = {"Baseline (λ=0)": [{"epoch": 1, "dev_npmi": 0.1}, {"epoch": 2, "dev_npmi": 0.2}],
            "BAT (λ=0.5)": [{"epoch": 1, "dev_npmi": 0.15}]}
    fig = plots.training_history(hist)
    assert [len(t.x) for t in fig.data] == [2, 1]
    h = plots.doc_length_histogram([1, 2, 3, 40])
    assert h.data[0].type == "histogram"
    b = plots.top_words_bar(["a", "b"], [10, 5])
    assert list(b.data[0].y) == ["b", "a"]  # most frequent on top
    np.testing.assert_allclose(b.data[0].x, [5, 10])


def test_lambda_sweep_counts_each_seed_once_and_shows_seeds():
    runs = _runs()
    dup = dict(runs[3], key="older", metrics=dict(runs[3]["metrics"], test_npmi=9.0))  # (0.5, seed 0) retrained
    df = plots.metrics_frame([*runs, dup])
    assert len(df) == 9 and 9.0 not in df["npmi"].tolist()  # the first (newest) one counts
    fig = plots.lambda_sweep(df, current=0.5)
    dots = [t for t in fig.data if t.name == "one seed"]
    assert len(dots) == 2 and len(dots[0].x) == 9
    hlines = [s for s in fig.layout.shapes if s.y0 == s.y1]
    assert len(hlines) == 2 and hlines[0].y0 == pytest.approx(0.11)  # the λ = 0 mean as reference


def test_topic_npmi_pairs_marks_pairs_without_counterpart():
    fig = plots.topic_npmi_pairs([(0, 0, 0.1), (1, 1, 0.9)], [0.1, 0.2], [0.3, 0.4], close=[True, False])
    assert list(fig.data[0].x) == ["#1: 1↔1", "#2: 2↔2?"]
    assert list(fig.data[1].marker.opacity) == [1.0, 0.35]


def test_teacher_shift_bar():
    from bat_core.explore.teacher_effect import WordShift

    raised = [WordShift("up1", 0.01, 0.03), WordShift("up2", 0.01, 0.02)]
    lowered = [WordShift("down1", 0.05, 0.02)]
    fig = plots.teacher_shift_bar(raised, lowered)
    by_name = {t.name: t for t in fig.data}
    np.testing.assert_allclose(by_name["raised by the teacher"].x, [2.0, 1.0])
    np.testing.assert_allclose(by_name["lowered by the teacher"].x, [-3.0])
    assert list(fig.layout.yaxis.categoryarray) == ["down1", "up2", "up1"]  # biggest gain on top


def test_scores_in_the_unit_interval_keep_their_axes_there():
    """Accuracy 1.0 on every seed drew the downstream chart's axes from 0 to 2."""
    import pandas as pd

    df = pd.DataFrame({"lam": [0.0, 0.5], "seed": [1, 1], "accuracy": [1.0, 1.0], "macro_f1": [1.0, 1.0]})
    fig = plots.lambda_sweep(df, 0.5, plots.DOWNSTREAM_PANELS)
    for axis in (fig.layout.yaxis, fig.layout.yaxis2):
        assert axis.range is not None and 0.0 <= axis.range[0] < 1.0 < axis.range[1] <= 1.02
    assert fig.layout.legend.y < 0  # under the panels: at the top right it covered the second panel's title
