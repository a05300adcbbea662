"""Statistics over seeds: how every result is reported (mean ± sample std) and every claim paired (by seed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # only for hints: runs sit above evaluation
    from ..runs.store import Run


def mean_std(values: list[float]) -> dict[str, float]:
    """Mean, sample std (0 for one value) and count: how every result over seeds is reported."""
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "n": int(len(a))}


def paired_differences(runs: Sequence[Run], reference: Sequence[Run], metric: str = "test_npmi",
                       of: Callable[[Run], float] | None = None) -> list[float]:
    """``run − reference`` for every run whose seed the reference has: how every paired claim is computed. The
    value is ``run.metrics[metric]``, or ``of(run)`` for a score kept outside the run (coherence against another
    reference)."""
    value = of or (lambda r: r.metrics[metric])
    ref = {r.seed: r for r in reference}
    return [value(r) - value(ref[r.seed]) for r in runs if r.seed in ref]


def by_lambda(runs: Sequence[Run]) -> dict[float, list[Run]]:
    """Runs grouped by λ, smallest first (λ = 0, the baseline, leads)."""
    out: dict[float, list[Run]] = {}
    for r in runs:
        out.setdefault(r.lam, []).append(r)
    return dict(sorted(out.items()))


def _paired(rs: list[Run], base: dict[int, Run]) -> dict[str, Any]:
    paired = paired_differences(rs, list(base.values()))
    if not paired:
        return {}
    b = np.mean([base[r.seed].metrics["test_npmi"] for r in rs if r.seed in base])
    return {"paired_test_npmi_diff_vs_baseline": mean_std(paired),
            "seeds_won_vs_baseline": int(sum(d > 0 for d in paired)),
            "relative_gain_vs_baseline": float(np.mean(paired) / b) if b else None}


def summarize(runs: list[Run]) -> dict[str, Any]:
    """Per λ: mean ± std over seeds of test NPMI and TU; and BAT against λ = 0 paired by seed."""
    by_lam = by_lambda(runs)
    out: dict[str, Any] = {}
    base = {r.seed: r for r in by_lam.get(0.0, [])}
    for lam, rs in by_lam.items():
        entry: dict[str, Any] = {
            "test_npmi": mean_std([r.metrics["test_npmi"] for r in rs]),
            "dev_npmi": mean_std([r.metrics["dev_npmi"] for r in rs]),
            "tu": mean_std([r.metrics["tu"] for r in rs]),
            "seeds": sorted(r.seed for r in rs),
        }
        if lam > 0:
            entry.update(_paired(rs, base))
        out[f"{lam:g}"] = entry
    return out
