"""Plotly figures for the explorer: one pure function per chart, no Streamlit.

Every function takes plain numbers (lists, numpy arrays, a pandas frame built by :func:`metrics_frame`) and returns
a ``plotly.graph_objects.Figure``; the pages only place them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

BASELINE_COLOR = "#8a8f98"
BAT_COLOR = "#2563eb"
TEMPLATE = "plotly_white"
_LAYOUT: dict[str, Any] = dict(template=TEMPLATE, margin=dict(l=50, r=20, t=50, b=40),
                               legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1))


def _fmt_lam(lam: float) -> str:
    return f"{lam:g}"


def metrics_frame(runs: Iterable[Any]) -> pd.DataFrame:
    """One row per (λ, seed): lam, seed, npmi (test), dev_npmi, tu, perplexity, epochs, key.

    Takes anything with ``lam``, ``seed``, ``key`` and a ``metrics`` dict (a ``Run``) or plain dicts with the same
    names. When several runs share a (λ, seed) (retrained), the first one given (the newest) counts, so a seed is
    never counted twice in a mean ± std.
    """
    rows = []
    for r in runs:
        if isinstance(r, dict):
            get = lambda k, d=None, _r=r: _r.get(k, d)  # noqa: E731
        else:
            get = lambda k, d=None, _r=r: getattr(_r, k, d)  # noqa: E731
        m = get("metrics", {}) or {}
        rows.append({"lam": float(get("lam")), "seed": int(get("seed")), "key": get("key", ""),
                     "npmi": m.get("test_npmi", np.nan), "dev_npmi": m.get("dev_npmi", np.nan),
                     "tu": m.get("tu", np.nan), "perplexity": m.get("test_perplexity", np.nan),
                     "epochs": m.get("epochs_run", np.nan), "best_epoch": m.get("best_epoch", np.nan),
                     "wall_time_s": m.get("wall_time_s", np.nan)})
    cols = ["lam", "seed", "key", "npmi", "dev_npmi", "tu", "perplexity", "epochs", "best_epoch", "wall_time_s"]
    df = pd.DataFrame(rows, columns=cols).drop_duplicates(["lam", "seed"], keep="first")
    return df.sort_values(["lam", "seed"], kind="stable").reset_index(drop=True)


def summarise(df: pd.DataFrame, metrics: Sequence[str] = ("npmi", "tu")) -> pd.DataFrame:
    """Mean, std (0 for a single seed) and seed count of each metric per λ."""
    g = df.groupby("lam")
    out = pd.DataFrame({"lam": sorted(df["lam"].unique())}).set_index("lam")
    out["n"] = g.size()
    for m in metrics:
        out[f"{m}_mean"] = g[m].mean()
        out[f"{m}_std"] = g[m].std(ddof=1).fillna(0.0)
    return out.reset_index()


def topic_npmi_pairs(pairs: Sequence[tuple[int, int, float]], npmi_a: Sequence[float], npmi_b: Sequence[float],
                     name_a: str = "Baseline (λ=0)", name_b: str = "BAT",
                     close: Sequence[bool] | None = None) -> go.Figure:
    """Per-topic NPMI of two models over their aligned topic pairs (grouped bars, pairs in alignment order).

    ``close[n]`` False marks pair n as having no close counterpart: its label says so (``i↔j?``) and its bars fade."""
    close = [True] * len(pairs) if close is None else list(close)
    labels = [f"#{n + 1}: {i + 1}↔{j + 1}{'' if close[n] else '?'}" for n, (i, j, _) in enumerate(pairs)]
    opacity = [1.0 if c else 0.35 for c in close]
    ya = [float(npmi_a[i]) for i, _, _ in pairs]
    yb = [float(npmi_b[j]) for _, j, _ in pairs]
    jsd = [float(d) for _, _, d in pairs]
    hover = "%{x}<br>NPMI %{y:.3f}<br>JSD %{customdata:.2g}<extra>"
    fig = go.Figure()
    fig.add_bar(x=labels, y=ya, name=name_a, marker=dict(color=BASELINE_COLOR, opacity=opacity), customdata=jsd,
                hovertemplate=hover + name_a + "</extra>")
    fig.add_bar(x=labels, y=yb, name=name_b, marker=dict(color=BAT_COLOR, opacity=opacity), customdata=jsd,
                hovertemplate=hover + name_b + "</extra>")
    fig.update_layout(barmode="group", title="Per-topic NPMI of aligned topic pairs (baseline topic ↔ BAT topic; "
                                             "? and faded: no close counterpart)",
                      xaxis_title="aligned pair (most similar first)", yaxis_title="NPMI (test split)", **_LAYOUT)
    return fig


def seed_summary(df: pd.DataFrame, lam: float, baseline_lam: float = 0.0, npmi_on: str = "test split") -> go.Figure:
    """Overall NPMI and topic uniqueness, mean ± std over seeds, for the baseline and the model at ``lam``.

    ``df`` is a :func:`metrics_frame`; each seed is also drawn as a dot. ``npmi_on``: what its NPMI was counted
    against (the test split, or the whole corpus or a reference where the test split is too sparse).
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=(f"NPMI ({npmi_on})", "Topic uniqueness"))
    for lam_v, name, color in ((baseline_lam, f"Baseline (λ={_fmt_lam(baseline_lam)})", BASELINE_COLOR),
                               (lam, f"BAT (λ={_fmt_lam(lam)})", BAT_COLOR)):
        sub = df[np.isclose(df["lam"], lam_v)]
        for col, metric in ((1, "npmi"), (2, "tu")):
            vals = sub[metric].dropna().to_numpy(dtype=float)
            mean = float(vals.mean()) if len(vals) else np.nan
            std = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
            fig.add_bar(x=[name], y=[mean], error_y=dict(type="data", array=[std], visible=True), marker_color=color,
                        name=name, legendgroup=name, showlegend=(col == 1), row=1, col=col,
                        hovertemplate=f"{name}<br>mean %{{y:.3f}} ± {std:.3f} over {len(vals)} seed(s)<extra></extra>")
            fig.add_scatter(x=[name] * len(vals), y=vals, mode="markers", marker=dict(color="#111827", size=6),
                            name="seeds", legendgroup="seeds", showlegend=False, row=1, col=col,
                            customdata=sub["seed"].to_numpy(),
                            hovertemplate="seed %{customdata}: %{y:.3f}<extra></extra>")
    fig.update_layout(title="Overall coherence and uniqueness: mean ± std over seeds", **_LAYOUT)
    return _legend_below(fig)


UNIT_METRICS = frozenset({"tu", "accuracy", "macro_f1"})  # scores that lie in [0, 1]
DOWNSTREAM_PANELS = (("accuracy", "Accuracy (test split) vs λ"), ("macro_f1", "Macro-F1 (test split) vs λ"))


def lambda_sweep(df: pd.DataFrame, current: float | None = None,
                 panels: Sequence[tuple[str, str]] | None = None, title: str | None = None,
                 npmi_on: str = "test split") -> go.Figure:
    """Metrics against λ over the whole trained curve (by default NPMI, counted against ``npmi_on``, and topic
    uniqueness): the mean over seeds as a line, a ± std band, each seed as a dot, and the λ = 0 baseline's mean as
    a dashed reference line."""
    panels = panels or (("npmi", f"NPMI ({npmi_on}) vs λ"), ("tu", "Topic uniqueness vs λ"))
    s = summarise(df, [m for m, _ in panels])
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[t for _, t in panels])
    x = s["lam"].to_numpy(dtype=float)
    for col, (metric, _) in enumerate(panels, 1):
        mean = s[f"{metric}_mean"].to_numpy(dtype=float)
        std = s[f"{metric}_std"].to_numpy(dtype=float)
        fig.add_scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([mean + std, (mean - std)[::-1]]),
                        mode="lines", fill="toself", fillcolor="rgba(37,99,235,0.15)", line=dict(width=0),
                        hoverinfo="skip",  # lines only: plotly's default also marks the band's corners
                        name="± std over seeds", legendgroup="band", showlegend=(col == 1), row=1, col=col)
        fig.add_scatter(x=df["lam"].to_numpy(dtype=float), y=df[metric].to_numpy(dtype=float), mode="markers",
                        marker=dict(color="#111827", size=4, opacity=0.45), name="one seed", legendgroup="seeds",
                        showlegend=(col == 1), row=1, col=col, customdata=df["seed"].to_numpy(),
                        hovertemplate="λ=%{x}, seed %{customdata}: %{y:.3f}<extra></extra>")
        fig.add_scatter(x=x, y=mean, mode="lines+markers", line=dict(color=BAT_COLOR), name="mean over seeds",
                        legendgroup="mean", showlegend=(col == 1), row=1, col=col,
                        customdata=np.stack([std, s["n"].to_numpy()], axis=1),
                        hovertemplate="λ=%{x}<br>%{y:.3f} ± %{customdata[0]:.3f} "
                                      "(%{customdata[1]} seeds)<extra></extra>")
        base = mean[np.isclose(x, 0.0)]
        if len(base):
            fig.add_hline(y=float(base[0]), line=dict(color=BASELINE_COLOR, dash="dash", width=1), row=1, col=col)
        if current is not None:
            fig.add_vline(x=float(current), line=dict(color="#f59e0b", dash="dot"), row=1, col=col)
    fig.update_xaxes(title_text="λ (weight of the teacher)", range=[-0.05, 1.05])
    fig.update_layout(title=title or f"Coherence and uniqueness against λ: {len(x)} λ values, mean ± std over seeds "
                                     "(dashed: the λ = 0 baseline)", **_LAYOUT)
    for col, (metric, _) in enumerate(panels, 1):
        if metric in UNIT_METRICS:  # a score in [0, 1]: never an axis beyond it (all 1.0 drew an axis to 2)
            shown = np.concatenate([df[metric].to_numpy(dtype=float), s[f"{metric}_mean"] + s[f"{metric}_std"],
                                    s[f"{metric}_mean"] - s[f"{metric}_std"]])
            lo, hi = float(np.nanmin(shown)), float(np.nanmax(shown))
            pad = max(0.05 * (hi - lo), 0.01)
            fig.update_yaxes(range=[max(0.0, lo - pad), min(1.0, hi) + pad], row=1, col=col)
    return _legend_below(fig)


def _legend_below(fig: go.Figure) -> go.Figure:
    """The legend of a figure of side-by-side panels under their axes: at the top right (the other figures' place)
    it covered the second panel's title."""
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.2, xanchor="center", x=0.5),
                      margin=dict(_LAYOUT["margin"], b=90))
    return fig


def downstream_sweep(scores: Iterable[dict[str, Any]], current: float | None = None) -> go.Figure:
    """Accuracy and macro-F1 of a classifier on θ against λ (rows of ``evaluation.downstream.evaluate_runs``)."""
    df = pd.DataFrame(list(scores), columns=["lam", "seed", "accuracy", "macro_f1"])
    df = df.drop_duplicates(["lam", "seed"], keep="first").sort_values(["lam", "seed"], kind="stable")
    return lambda_sweep(df, current, DOWNSTREAM_PANELS,
                        "θ as features: logistic regression fitted on the train split, scored on the test split "
                        "(mean ± std over seeds; dashed: the λ = 0 baseline)")


def _is_baseline(name: str) -> bool:
    return "λ=0)" in name or name.lower().startswith("baseline")


def _blue(i: int, n: int) -> str:
    """The i-th of n blues, light to dark (for several BAT runs next to a grey baseline)."""
    t = 0.35 + 0.65 * (i + 1) / max(n, 1)
    r, g, b = (int(255 - (255 - c) * t) for c in (37, 99, 235))
    return f"rgb({r},{g},{b})"


HISTORY_METRICS = {"dev_npmi": "dev NPMI", "tu": "topic uniqueness"}  # what a run's history logs per epoch


def training_history(histories: dict[str, Sequence[dict]], metric: str = "dev_npmi") -> go.Figure:
    """One line per run: ``metric`` (dev NPMI by default) per epoch."""
    fig = go.Figure()
    others = [n for n in histories if not _is_baseline(n)]
    for name, hist in histories.items():
        ep = [h.get("epoch") for h in hist if h.get(metric) is not None]
        ys = [h.get(metric) for h in hist if h.get(metric) is not None]
        color = BASELINE_COLOR if _is_baseline(name) else _blue(others.index(name), len(others))
        fig.add_scatter(x=ep, y=ys, mode="lines", name=name, line=dict(color=color))
    name = HISTORY_METRICS.get(metric, metric.replace("_", " "))
    fig.update_layout(title=f"Training history: {name} per epoch", xaxis_title="epoch", yaxis_title=name, **_LAYOUT)
    return fig


def doc_length_histogram(lengths: Sequence[float] | np.ndarray, nbins: int = 40) -> go.Figure:
    """Histogram of document lengths (in-vocabulary tokens per document)."""
    fig = go.Figure(go.Histogram(x=np.asarray(lengths, dtype=float), nbinsx=nbins, marker_color=BAT_COLOR,
                                 hovertemplate="%{x} tokens: %{y} documents<extra></extra>"))
    fig.update_layout(title="Document length (words in the vocabulary)", xaxis_title="tokens per document",
                      yaxis_title="documents", bargap=0.05, showlegend=False, **_LAYOUT)
    return fig


def top_words_bar(words: Sequence[str], counts: Sequence[float]) -> go.Figure:
    """Horizontal bars of the most frequent words, the most frequent on top."""
    words, counts = list(words), [float(c) for c in counts]
    fig = go.Figure(go.Bar(x=counts[::-1], y=words[::-1], orientation="h", marker_color=BAT_COLOR,
                           hovertemplate="%{y}: %{x:,.0f}<extra></extra>"))
    fig.update_layout(title="Most frequent words", xaxis_title="occurrences", showlegend=False,
                      height=max(300, 22 * len(words) + 100), **_LAYOUT)
    return fig


def teacher_shift_bar(raised: Sequence[Any], lowered: Sequence[Any], title: str = "") -> go.Figure:
    """Horizontal bars of the words whose share of the training corpus the teacher's targets raise (blue, right)
    and lower (amber, left), in percentage points; ``raised`` / ``lowered`` are
    :class:`~bat_core.explore.teacher_effect.WordShift` (``word``, ``observed``, ``teacher``), biggest change first."""
    fig = go.Figure()
    for items, name, color in ((list(lowered), "lowered by the teacher", "#f59e0b"),
                               (list(raised), "raised by the teacher", BAT_COLOR)):
        fig.add_bar(x=[100 * (w.teacher - w.observed) for w in items], y=[w.word for w in items], orientation="h",
                    name=name, marker_color=color,
                    customdata=[[100 * w.observed, 100 * w.teacher] for w in items],
                    hovertemplate="%{y}: %{customdata[0]:.3f}% of the tokens → %{customdata[1]:.3f}% in the "
                                  "teacher's targets (%{x:+.3f} points)<extra></extra>")
    n = len(raised) + len(lowered)
    fig.update_layout(title=title or "Words whose share the teacher's targets raise or lower most (training split)",
                      xaxis_title="change in share (percentage points): teacher targets − observed counts",
                      height=max(320, 20 * n + 120), barmode="overlay", **_LAYOUT)
    # bottom to top: the biggest loss at the bottom, the biggest gain on top
    fig.update_yaxes(categoryorder="array", categoryarray=[w.word for w in [*lowered, *list(raised)[::-1]]])
    return fig
