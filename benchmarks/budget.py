"""What the budget on the γ rule's work costs in quality: the rule replayed on recorded runs, bounded and not.

The γ rule (bat_core/training/selection.py, ``read_rule``) may train at most the larger of a floor and a third of the
grid's runs. The issue asked for the first round as the floor (the baseline and one run per γ: 6 runs); the engine
uses both rounds on the first seed (the same γ faded too: 11 runs), and this table shows why. Where it would read
more (its faded round, more seeds), it stops and takes the best it has. This script replays the rule through
``read_rule`` itself on the runs that benchmarks/gamma_seeds.py recorded (every γ, constant and faded, on 3 or 5
seeds: benchmarks/results/gamma-seeds-*.json), for the grids users train: the CLI's default (λ ∈ {0, 0.5}, 1 seed: 2
runs), 3 and 5 seeds (6 and 10 runs), the app's default (11 λ × 3 seeds: 33 runs), and without a budget (the rule
before the budget). Nothing is trained. Each choice is scored on all the recorded seeds: test NPMI gain over the
baseline (paired by seed) and topic uniqueness (TU) loss.

    python benchmarks/budget.py            # every gamma-seeds-*.json in benchmarks/results
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bat_core.base.errors import BatError
from bat_core.runs.store import Run
from bat_core.training.selection import GAMMA_GRID, read_rule, selection_budget

ROOT = Path(__file__).resolve().parents[1]
FLOORS = (("first round (6)", 1 + len(GAMMA_GRID)), ("two rounds (11)", 1 + 2 * len(GAMMA_GRID)),
          ("three rounds (16, built; no clipped round recorded)", 1 + 3 * len(GAMMA_GRID)))
GRIDS = (("CLI default: λ 0, 0.5 × 1 seed", 2), ("λ 0, 0.5 × 3 seeds", 6), ("λ 0, 0.5 × 5 seeds", 10),
         ("app default: 11 λ × 3 seeds", 33), ("no budget (the rule before)", None))


def _run(tu: float, dev: float, seed: int, gamma: float | None, fade: float) -> Run:
    """A stand-in run holding only what the rule reads: TU, dev NPMI, seed, λ, γ and fade."""
    distill = {"lam": 0.0 if gamma is None else 0.5, "background_correction": gamma or 0.0, "fade": fade}
    key = f"s{seed}-g{gamma}-f{fade}"
    return Run(key=key, config={"distill": distill, "student": {"seed": seed}}, beta=np.zeros((1, 1)),
               background=np.zeros(1), theta=np.zeros((1, 1)), metrics={"tu": tu, "dev_npmi": dev})


def replay(record: dict, limit: int | None, first_seed_runs: int) -> tuple[dict, dict]:
    """The rule on one recorded corpus for a grid of ``limit`` runs (None: no budget), the budget's floor being
    ``first_seed_runs``; (choice, scores on all seeds)."""
    base, cands = record["baseline"], record["candidates"]
    n_seeds = len(base["tu"])
    grid = [(float(k.split("/")[0]), float(k.split("/")[1])) for k in cands]

    def at(seed: int) -> tuple[Run, list[Run], list[Run]]:
        c = [_run(cands[f"{g:g}/{f:g}"]["tu"][seed], cands[f"{g:g}/{f:g}"]["dev"][seed], seed, g, f) for g, f in grid]
        return (_run(base["tu"][seed], np.nan, seed, None, 0.0), [r for r in c if not r.config["distill"]["fade"]],
                [r for r in c if r.config["distill"]["fade"]], [])  # no clipped round was recorded

    b0, constant, faded, clipped = at(0)
    budget = 10**6 if limit is None else selection_budget(first_seed_runs, limit)
    choice = read_rule([b0, *constant], faded, clipped, [at(s) for s in range(1, 3)], lambda runs: list(runs), budget)
    chosen = cands[f"{choice['gamma']:g}/{choice['fade']:g}"]
    gain = np.array(chosen["test"]) - np.array(base["test"])
    return choice, {"gain": float(gain.mean()), "gain_pct": float(gain.mean() / np.mean(base["test"])),
                    "won": int((gain > 0).sum()), "seeds": n_seeds,
                    "tu_loss": float(np.mean(base["tu"]) - np.mean(chosen["tu"]))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--out", type=Path, default=None, help="also write the table here (markdown)")
    args = p.parse_args(argv)
    files = sorted(args.results.glob("gamma-seeds-*.json"))
    if not files:
        raise BatError(f"no gamma-seeds-*.json in {args.results}: run benchmarks/gamma_seeds.py first")
    lines = ["| corpus (record) | grid | budget's floor | budget | runs the rule read | chosen | kept | "
             "test NPMI gain, all seeds | won | TU loss |", "|---|---|---|---|---|---|---|---|---|---|"]
    rows = [(label, n, floor_label, floor) for label, n in GRIDS for floor_label, floor in FLOORS
            if n is not None or floor == FLOORS[0][1]]
    for f in files:
        record = json.loads(f.read_text())
        for label, n, floor_label, floor in rows:
            choice, s = replay(record, n, floor)
            b = choice["budget"]
            chosen = f"γ={choice['gamma']:g}" + (" faded" if choice["fade"] else "")
            kept = next(r["kept"] for r in choice["rows"] if (r["gamma"], r["fade"]) == (choice["gamma"],
                                                                                        choice["fade"]))
            lines.append(f"| {f.stem.removeprefix('gamma-seeds-')} | {label} | {'-' if n is None else floor_label} | "
                         f"{'-' if n is None else b['limit']} | {b['runs']}{' (stopped)' if b['stopped'] else ''} | "
                         f"{chosen} | {'yes' if kept else 'no'} | {s['gain']:+.4f} ({s['gain_pct']:+.1%}) | "
                         f"{s['won']}/{s['seeds']} | {s['tu_loss']:+.3f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    from entry import run  # here, not at the top: tests load scripts as modules from elsewhere

    run(main, __file__)
