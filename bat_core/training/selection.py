"""Settings chosen without test data: the background correction γ of the distillation target.

The rule (benchmarks/results/uniqueness.md): train the first seed at each γ of a small grid, keep the γ whose topic
uniqueness (computed from the run's own topics, no test data) is within ``TU_SLACK`` of the λ = 0 baseline's (the
limit of 0.05 less the spread of one seed's figure, see ``SEED_SPREAD``), and among those take the highest dev NPMI
(NPMI on the training split where the dev split is too sparse to score the topics, :func:`score_on`); when none
is, the second round below runs, then further seeds (below), and if still none is, the one with the
highest uniqueness is taken.
γ = 0 (no correction) is always a candidate, so the rule can say "none".

The rule was designed on demo, BBC News and mini20ng, then run once on NewsArticles, which it had not seen (γ = 0.4:
+10.0% test NPMI over the baseline, 5/5 seeds, topic uniqueness up).

A second round runs only when no γ keeps the uniqueness: the same γ again with the teacher *faded* (λ falls
linearly towards 0 over the training, ``DistillConfig.fade`` = 1), and the rule is applied to both rounds together.
Why: trained to convergence (500 epochs on NewsArticles) the baseline's topics keep growing more distinct after
the distilled runs' have levelled off (TU 0.86 vs 0.80 at epoch 500), and no γ closed that gap; fading the teacher
lets the student's topics separate late in training as the baseline's do (benchmarks/results/tuning.md, "fading the
teacher"). It buys the uniqueness with part of the NPMI gain (there: +4.8% → +2.8%); the limit comes first.

If neither round keeps the uniqueness on the first seed, a third round tries the same γ with the teacher's target
clipped (``CLIP``: short texts, where no γ kept the topics distinct otherwise). On short documents (median below
``SHORT_DOC_TOKENS`` words in the vocabulary, the length at which ``auto`` changes its teacher too) the faded round
is not planned and the clipped round comes second (:func:`has_faded_round`). If still none does, the rule reads
more seeds, one at a time and up to ``GAMMA_SEEDS``: every candidate of the rounds that ran is trained on the next
seed, and the same test is applied to
each candidate's TU loss averaged over the seeds read (paired with the baseline seed by seed), with the room for
noise shrinking as SEED_SPREAD/√seeds. Why: on a small corpus one seed's TU is noisy (mini20ng, 20 test
documents: every candidate failed on the first seed, and the fallback's pick lost 0.059 over five seeds, while
γ = 0.5 kept TU within 0.030 and still gained +31.8%; benchmarks/results/gamma-seeds-mini20ng.md). Corpora where
a candidate passes on the first seed (every default-length run we have) train nothing more. All of it stays within
``selection_budget`` runs, decided before training; where the rule would need more it stops and takes the best it
read (:func:`read_rule`).

The grid applies the rule whenever ``DistillConfig.background_correction`` is unset (the default); this module
only holds the rule, the grid trains the runs it reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..config import DEFAULT_BAT_LAMBDA
from ..runs.store import Run
from ..teachers.choice import SHORT_DOC_TOKENS

GAMMA_GRID = (0.0, 0.1, 0.25, 0.4, 0.5)
TU_LIMIT = 0.05  # the most topic uniqueness the default may lose against the baseline, over seeds (issue #9)
# One seed's TU loss strays from the mean over 5 seeds by 0.026 (root mean square over the 21 choices of the rule in
# benchmarks/results/quality-*.json), and picking the best dev NPMI among the candidates that pass makes the first
# seed's figure an optimistic one (mini20ng: 0.050 on the first seed, 0.059 over five). So the first-seed check
# leaves that spread as room: a candidate may lose at most the limit minus the spread.
SEED_SPREAD = 0.025
GAMMA_SEEDS = 3  # the most seeds the rule reads (more only when no candidate passes on the seeds read so far)


def tu_slack(n_seeds: int) -> float:
    """How much TU a candidate may lose, averaged over ``n_seeds`` seeds: the limit less the spread of such a mean."""
    return TU_LIMIT - SEED_SPREAD / math.sqrt(max(1, n_seeds))


TU_SLACK = tu_slack(1)
FADE = 1.0  # the second round's teacher: λ falls linearly towards 0 over the whole training
# The third round's target: the teacher's logits clipped to about 2 × each document's distinct words. On short texts
# no γ, faded or not, kept the topics distinct (NYT editorial sentences, 5 words in the vocabulary: TU 0.895 for the
# baseline, 0.44-0.64 for every candidate), while the clipped target kept it (γ 0.5: 0.855, γ 1.0: 0.885, one seed;
# docs/results.md, "Short texts"): a short document's neighbourhood spreads its few words over many frequent ones,
# and the clip keeps only the words the neighbours most agree on. On long texts (100+ distinct words) it barely clips.
CLIP = 2.0


def has_faded_round(median_tokens: float) -> bool:
    """Whether the rule plans its faded round for a corpus whose training documents have this median length.

    Not on short documents. Fading acts on how training ends (trained to convergence, long texts' baselines keep
    separating their topics after the distilled runs level off); on short texts the target's shape is what costs the
    uniqueness, which the clipped round mends. Measured under today's teacher, no faded candidate kept the uniqueness
    on a short corpus (NYT editorial sentences 0/5, TU 0.64-0.68 against the baseline's 0.875; TREC questions 0/5,
    0.17-0.25 against 0.64),
    and the round cost a quarter of a short-text job (5 of 20 runs), which must fit in 10 minutes for 4,000
    documents (issue #25; docs/results.md, section 3f)."""
    return median_tokens >= SHORT_DOC_TOKENS


RULE = (f"first seed at γ ∈ {{{', '.join(f'{g:g}' for g in GAMMA_GRID)}}}; keep the γ whose topic uniqueness is "
        f"at least the baseline's − {TU_SLACK:g} (the limit {TU_LIMIT:g} less one seed's spread); among those, the "
        f"best dev NPMI (NPMI on the training split where the dev split is too sparse to score the topics: short "
        f"texts); if none, the same γ again with the teacher faded towards 0 over the training, and the same "
        f"test over both rounds (no faded round for short documents, median under {SHORT_DOC_TOKENS} words); if "
        f"still none, the same γ with the teacher's target clipped to {CLIP:g} × each document's distinct words; "
        f"if still none, the same test on the mean over up to {GAMMA_SEEDS} seeds (the limit less "
        f"{SEED_SPREAD:g}/√seeds); if still none, the highest uniqueness")


def run_gamma(run: Run) -> float:
    """The background correction γ a run was trained with (runs stored before γ existed had none: 0)."""
    return float(run.config["distill"].get("background_correction") or 0.0)


def run_clip(run: Run) -> float:
    """The clip of a run's teacher target (0: none)."""
    return float(run.config["distill"].get("clip") or 0.0)


def run_fade(run: Run) -> float:
    """How much of the training the run's teacher faded over (0: constant λ; runs stored before fading existed)."""
    return float(run.config["distill"].get("fade") or 0.0)


def needs_fading(baselines: Run | Sequence[Run], candidates: Sequence[Run]) -> bool:
    """Whether the second round (the same γ with a faded teacher) should run: no candidate keeps the uniqueness and
    none of them was faded already."""
    return not any(r["kept"] or r["fade"] for r in _rows(baselines, candidates))


def needs_more_seeds(baselines: Run | Sequence[Run], candidates: Sequence[Run]) -> bool:
    """Whether the rule should read one more seed: no candidate keeps the uniqueness on the seeds read so far."""
    return not any(r["kept"] for r in _rows(baselines, candidates))


def rule_candidates(baseline: Run, runs: Sequence[Run], fade: float, clip: float = 0.0) -> list[Run]:
    """Of ``runs`` (one seed and λ, differing only in γ, fade and clip), those the grid's rule read for a run with this
    ``fade`` and ``clip``: the constant-λ grid; the faded grid added only when the first round kept nothing; the
    clipped grid added only when neither of those kept anything. A fade or clip the user set competes only with its
    own γ grid (the grid runs no later round then)."""
    first = [r for r in runs if run_fade(r) == 0 and not run_clip(r)]
    second = [r for r in runs if run_fade(r) == FADE and not run_clip(r)]
    third = [r for r in runs if run_fade(r) == 0 and run_clip(r) == CLIP]
    rule_round = (fade, clip) in ((0, 0), (FADE, 0), (0, CLIP))
    if rule_round and first and needs_fading(baseline, first):
        read = first + second  # no second round on short documents (has_faded_round): the clipped one follows
        clipped = bool(third) and needs_more_seeds(baseline, read)
        if clipped:
            read += third
        if clip == 0 or clipped:
            return read
    return [r for r in runs if run_fade(r) == fade and run_clip(r) == clip]


def selection_budget(n_first_seed: int, n_grid_runs: int) -> int:
    """The most runs the rule may train for one plan: the larger of its rounds on the first seed (the baseline, one
    run per γ, the same γ faded and clipped: 16 runs) and a third of the grid's runs. Further seeds run only while
    they fit; where the rule would need more, it stops and takes the best it has by its own criterion
    (:func:`gamma_choice`), and says so. Why bounded: the rule's work must be bounded on every corpus and visible
    before training (a short-text corpus ran its faded round and two more seeds: 60 runs for a 33-run grid, issue
    #24). Why every round of the first seed fits on any grid: without the faded round, the 2-run grid of ``bat fit``'s
    default chose γ = 0.1 for ProdLDA on NewsArticles, losing 0.185 topic uniqueness, where the faded round keeps it
    within 0.047 (benchmarks/budget.py); without the clipped round, short texts lose 0.2-0.3 (see CLIP). A round
    runs only when the rounds before it kept nothing, so a corpus whose first round keeps a γ trains 6 runs."""
    return max(n_first_seed, n_grid_runs // 3)


def selection_lambda(lambdas: Sequence[float]) -> float:
    """The λ at which γ is chosen for a plan: its λ > 0 nearest the default BAT λ (the smaller one on a tie)."""
    return min((lam for lam in lambdas if lam > 0), key=lambda lam: (abs(lam - DEFAULT_BAT_LAMBDA), lam))


def _as_list(baselines: Run | Sequence[Run]) -> list[Run]:
    return list(baselines) if isinstance(baselines, Sequence) else [baselines]


def score_on(baselines: Run | Sequence[Run]) -> str:
    """The split whose NPMI ranks the candidates: the one that chose the baselines' checkpoints. That is the dev split
    unless it is too sparse to score the topics (short texts: the training split, see ``trainer._Checkpoints``); the
    same split then ranks every candidate, so they are compared by one measure."""
    return "train" if any(b.metrics.get("checkpoint_on") == "train" for b in _as_list(baselines)) else "dev"


def _rows(baselines: Run | Sequence[Run], candidates: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per (γ, fade, clip), in the order first met: TU, dev NPMI and the NPMI that ranks the candidates
    (``npmi``: on the split :func:`score_on` names) averaged over the seeds it was trained on, its TU loss paired with
    the baseline of each of those seeds, and whether that loss is within the room for its number of seeds. ``key`` is
    the run of the first seed read."""
    bases = _as_list(baselines)
    on = score_on(bases)
    base_tu = {int(b.seed): float(b.metrics["tu"]) for b in bases}
    groups: dict[tuple[float, float, float], list[Run]] = {}
    for run in candidates:
        if int(run.seed) in base_tu:
            groups.setdefault((run_gamma(run), run_fade(run), run_clip(run)), []).append(run)
    if candidates and not groups:
        raise ValueError(f"no γ candidate was trained on a seed of the baselines ({sorted(base_tu)})")
    rows: list[dict[str, Any]] = []
    for (gamma, fade, clip), runs in groups.items():
        tu = float(np.mean([r.metrics["tu"] for r in runs]))
        loss = float(np.mean([base_tu[int(r.seed)] - float(r.metrics["tu"]) for r in runs]))
        dev = float(np.mean([r.metrics["dev_npmi"] for r in runs]))
        npmi = float(np.mean([r.metrics[f"{on}_npmi"] for r in runs]))
        rows.append({"gamma": gamma, "fade": fade, "clip": clip, "dev_npmi": dev, "npmi": npmi, "score_on": on,
                     "tu": tu, "tu_loss": loss,
                     "seeds": len(runs), "kept": loss <= tu_slack(len(runs)) + 1e-12, "key": runs[0].key})
    return rows


def _best(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The kept row with the best NPMI (dev, or the training split's where the dev split cannot score); when none is
    kept, the one that loses the least uniqueness (the limit comes first, as in uniqueness.md's rule; ties go to the
    better NPMI). Never test data."""
    dev = lambda r: r["npmi"] if math.isfinite(r["npmi"]) else -math.inf  # NaN never wins
    kept = [r for r in rows if r["kept"]]
    # among equals the first candidate (constant λ, then the grid's order) wins: max() keeps the first maximum
    return max(kept, key=dev) if kept else max(rows, key=lambda r: (r["tu"], dev(r)))


def gamma_choice(baselines: Run | Sequence[Run], candidates: Sequence[Run]) -> dict[str, Any]:
    """What the rule chose from these runs and why: γ, the fade, the λ and seeds it was chosen at, the baseline's TU
    (mean over those seeds) and one row per candidate: γ, fade, dev NPMI, TU, TU loss, seeds, kept, run key (the
    record the summary, the job log and the Compare page show). ``baselines`` are the λ = 0 runs of the seeds read
    (one run for one seed); ``candidates`` the same λ at different γ (and, after a second round, faded) on those
    seeds."""
    bases = _as_list(baselines)
    rows = _rows(bases, candidates)
    best = _best(rows)
    return {"gamma": float(best["gamma"]), "fade": float(best["fade"]), "clip": float(best.get("clip", 0.0)),
            "lam": float(candidates[0].lam),
            "seed": int(bases[0].seed), "seeds": [int(b.seed) for b in bases],
            "baseline_tu": float(np.mean([b.metrics["tu"] for b in bases])), "rows": rows}


Train = Callable[[Sequence[Any]], list[Run]]  # runs for these planned members: read from the cache or trained


def read_rule(first: Sequence[Run], faded: Sequence[Any], clipped: Sequence[Any],
              more: Sequence[tuple[Any, Sequence[Any], Sequence[Any], Sequence[Any]]], train: Train,
              budget: int) -> dict[str, Any]:
    """The rule, reading its rounds one after the other within ``budget`` runs, and what it chose.

    ``first`` are the first seed's runs (its baseline, then one per γ at constant λ); ``faded`` the second round's
    planned members (trained only when no γ keeps the uniqueness), ``clipped`` the third round's (only when neither
    round did), ``more`` the further seeds' (baseline, constant, faded, clipped) members, read one seed at a time
    while still none does, with the rounds that ran. ``train`` turns planned members into runs (the
    grid trains or reads them; a replay looks them up). Every run read counts against ``budget``, cached or not, so
    the choice does not depend on the cache. Returns :func:`gamma_choice`'s record with ``budget``: the limit, the
    runs read and whether the rule stopped for it."""
    spent, stopped = len(first), False
    bases, cands = [first[0]], list(first[1:])
    round2 = bool(faded) and needs_fading(bases[0], cands)
    if round2 and spent + len(faded) > budget:
        round2, stopped = False, True
    if round2:  # no γ kept the topics distinct with a constant λ: the same γ with the teacher faded
        cands += train(faded)
        spent += len(faded)
    round3 = not stopped and bool(clipped) and needs_more_seeds(bases, cands)
    if round3 and spent + len(clipped) > budget:
        round3, stopped = False, True
    if round3:  # neither kept them: the same γ with the teacher's target clipped
        cands += train(clipped)
        spent += len(clipped)
    for base, constant, later, clip_later in more:  # still none: the rounds that ran, on one more seed at a time
        if stopped or not needs_more_seeds(bases, cands):
            break
        todo = [base, *constant, *(later if round2 else ()), *(clip_later if round3 else ())]
        if spent + len(todo) > budget:
            stopped = True
            break
        got = train(todo)
        bases, cands, spent = [*bases, got[0]], [*cands, *got[1:]], spent + len(todo)
    return {**gamma_choice(bases, cands), "budget": {"limit": budget, "runs": spent, "stopped": stopped}}


def describe_gamma(choice: dict[str, Any]) -> str:
    """One plain sentence on the γ chosen and why, for the CLI, the job log and the Compare page."""
    seeds = choice.get("seeds") or [choice["seed"]]
    on = {"dev": "dev", "train": "training-split"}[choice["rows"][0].get("score_on", "dev")]
    rows = ", ".join(f"γ={r['gamma']:g}{' faded' if r.get('fade') else ''}{' clipped' if r.get('clip') else ''}"
                     f" {on} NPMI {r.get('npmi', r['dev_npmi']):.4f} "
                     f"TU {r['tu']:.3f}" + ("" if r["kept"] else " (loses topic uniqueness)") for r in choice["rows"])
    where = (f"seed {seeds[0]}" if len(seeds) == 1 else
             f"seeds {', '.join(map(str, seeds))}: no γ kept the topics distinct on fewer; NPMI and TU below are "
             f"means over them")
    what = "no correction" if choice["gamma"] == 0 else f"γ = {choice['gamma']:g}"
    budget = choice.get("budget") or {}
    if budget.get("stopped"):
        where += (f"; the rule would have read more (another round or seed) but stopped at its budget of "
                  f"{budget['limit']} runs, so this is the best of what it read")
    if choice.get("clip") and any(not r.get("clip") for r in choice["rows"]):
        what += (f", with the teacher's target clipped to {choice['clip']:g} × each document's distinct words (no γ "
                 "kept the topics distinct otherwise)")
    second_round = {r.get("fade", 0.0) for r in choice["rows"]} == {0.0, FADE}
    if choice.get("fade") and second_round:
        what += (", with the teacher faded (λ falls linearly towards 0 over the training: no γ kept the topics "
                 "distinct with a constant λ)")
    elif choice.get("fade"):
        what += f", with λ fading towards 0 over the last {choice['fade']:.0%} of the epochs (as set)"
    data = "dev data" if on == "dev" else "the training split (the dev split is too sparse to score these topics)"
    return (f"Background correction: {what}, chosen on {data} at λ = {choice['lam']:g}, {where} "
            f"(baseline TU {choice['baseline_tu']:.3f}; rule: {RULE}). Candidates: {rows}.")
