"""Following a training job while it runs: what is still training, how many runs are done, and which runs the pages
can show already (the first look while γ is being chosen, then the chosen γ's family).

A :class:`GridWatch` is made from the job's :class:`bat_core.grid.Plan` before it executes, told the γ choice when the
grid makes it (the job's γ step), and asked about the run keys in the cache now (runs are saved as each stack
finishes). No Streamlit: tests build one from a plan and a set of keys.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from bat_core.grid import Member, Plan

EARLY_LOOK = "early-look"  # the pages show the first look trained before the auto teacher existed (grid.Plan.early)
FIRST_LOOK = "first-look"  # the pages show the first-look candidate (γ not chosen yet)
CHOSEN = "chosen"  # the pages show the job's own runs (γ chosen, or set)


def _values(xs: Sequence[float], most: int = 4) -> str:
    xs = sorted(xs)
    if len(xs) > most:
        return f"{len(xs)} values ({xs[0]:g} … {xs[-1]:g})"
    return ", ".join(f"{x:g}" for x in xs)


def _seeds(seeds: Sequence[int]) -> str:
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds))


class GridWatch:
    """What a job's plan will put in the run cache, and what of it is there (``present``: the run keys on disk)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.teacher_key = plan.teacher_key  # computed once: the pages ask often
        self.resolved: Plan | None = plan if plan.gamma is None else None
        self.choice: dict[str, Any] | None = None

    # ---------------------------------------------------------------------------------------- told by the job
    def choose(self, choice: dict[str, Any]) -> None:
        """The grid chose γ (its γ step's record): the λ > 0 members get their final run keys."""
        self.resolved = self.plan.with_gamma(choice["gamma"], choice["fade"], choice.get("clip"))
        self.choice = choice

    # ------------------------------------------------------------------------------------------ read by pages
    @property
    def gamma_pending(self) -> bool:
        return self.resolved is None

    @property
    def first_look(self) -> tuple[Member, Member] | None:
        """(the first seed's baseline, the candidate trained next to it first) of the γ step; None without one."""
        g = self.plan.gamma
        return (g.baseline, g.first_look) if g is not None else None

    @property
    def early(self) -> Member | None:
        """The first look trained before the ``auto`` teacher exists (on the teacher it builds when the encoder
        loses; ``grid.Plan.early``), or None."""
        return self.plan.early if self.plan.gamma is not None else None

    @property
    def first_look_gamma(self) -> float:
        look = self.first_look
        return float(look[1].distill.background_correction or 0.0) if look is not None else 0.0

    def candidate_keys(self) -> set[str]:
        """Every run the γ step may train or read (every round, every seed), baselines included."""
        g = self.plan.gamma
        if g is None:
            return set()
        keys = {m.key for m in (*g.members, *g.faded, *g.clipped)} | ({self.early.key} if self.early else set())
        for base, constant, faded, clipped in g.more:
            keys |= {m.key for m in (base, *constant, *faded, *clipped)}
        return keys

    def provisional(self, run_key: str) -> bool:
        """Whether a run is a γ candidate of this job while γ is still being chosen (shown, but not the result)."""
        return self.gamma_pending and run_key in self.candidate_keys()

    def _known(self) -> set[str]:
        """The run keys known now: the γ step's first round and every member whose settings are final."""
        p = self.resolved or self.plan
        keys = {m.key for m in p.members if not m.distill.gamma_pending}
        if self.plan.gamma is not None:
            keys |= {m.key for m in self.plan.gamma.members}
        return keys

    def counts(self, present: Collection[str]) -> tuple[int, int]:
        """(runs done, runs this job will have): the grid's runs and the γ step's (the later rounds once they exist).

        While γ is pending, each λ > 0 member counts once, and the one at the γ step's λ and first seed is expected
        to be the chosen candidate (true unless the rule needs its later rounds: those then count as they land)."""
        known = self._known() | (self.candidate_keys() & set(present))
        total = len(known)
        if self.resolved is None:
            g = self.plan.gamma
            assert g is not None
            total += sum(1 for m in self.plan.members if m.distill.gamma_pending
                         and not (np.isclose(m.lam, g.lam) and m.seed == g.seed))
        return len(known & set(present)), total

    def now(self, present: Collection[str], teacher_ready: bool) -> str:
        """What is training now, in a few words."""
        present = set(present)
        g = self.plan.gamma
        look = ""
        if g is not None:
            look = (f"a first look: the baseline and λ = {g.lam:g} at γ = {self.first_look_gamma:g} on seed "
                    f"{g.seed}")
        if not teacher_ready and self.plan.needs_teacher:
            if self.early is None:
                return "the teacher" + (f", then {look}" if look else "")
            if self.plan.early_look_keys <= present:
                return "the teacher (a first look, on neighbours by shared words, is ready to compare)"
            return f"{look}, on neighbours by shared words (no encoding); then the teacher is chosen"
        if self.resolved is None:
            assert g is not None
            base, cand = (m.key for m in self.first_look or ())
            if not {base, cand} <= present:
                return f"{look}, next to the other γ candidates"
            rest = [m for m in g.candidates if m.key not in present]
            if rest:
                return (f"the γ step on seed {g.seed}: {len(rest)} more candidate{'s' if len(rest) > 1 else ''} "
                        f"(γ = {_values([float(m.distill.background_correction or 0) for m in rest])}), then γ is "
                        "chosen on dev data")
            return ("the γ step: γ is chosen on dev data from the first round, or more candidates train if no γ "
                    "kept the topics distinct")
        missing = [m for m in self.resolved.members if m.key not in present]
        if not missing:
            return "finishing"
        first = self.resolved.members[0].seed if self.resolved.members else None
        now = [m for m in missing if m.seed == first]
        later = sorted({m.seed for m in missing if m.seed != first})
        if now:
            return f"seed {first}, λ = {_values([m.lam for m in now])}" + (f"; then {_seeds(later)}" if later else "")
        return f"{_seeds(later)}, λ = {_values(sorted({m.lam for m in missing}))}"

    def line(self, present: Collection[str], teacher_ready: bool) -> str:
        """One line for the pages: "Training (γ = 0.25 chosen): <what> · 12 of 37 runs done"."""
        done, total = self.counts(present)
        chosen = f" (γ = {self.choice['gamma']:g} chosen)" if self.choice is not None else ""
        return f"Training{chosen}: {self.now(present, teacher_ready)} · {done} of {total} runs done"

    def showing(self, present: Collection[str]) -> tuple[str, str] | None:
        """(why, run key): the run whose family the pages should switch to now, or None while there is none.

        While γ is pending: the first-look candidate, once it and its baseline are in the cache (``FIRST_LOOK``);
        before that, the early look's candidate on the teacher auto builds when the encoder loses (``EARLY_LOOK``).
        After: a λ > 0 member of the plan with its final settings, the first seed's first (``CHOSEN``)."""
        present = set(present)
        if self.resolved is None:
            look = self.first_look
            if look is not None and {look[0].key, look[1].key} <= present:
                return FIRST_LOOK, look[1].key
            if self.early is not None and self.plan.early_look_keys <= present:
                return EARLY_LOOK, self.early.key
            return None
        first = self.resolved.members[0].seed
        lam = self.plan.gamma.lam if self.plan.gamma is not None else None
        bats = sorted((m for m in self.resolved.members if m.lam > 0 and m.key in present),
                      key=lambda m: (m.seed != first, lam is None or not np.isclose(m.lam, lam), m.lam))
        return (CHOSEN, bats[0].key) if bats else None
