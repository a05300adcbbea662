"""What the pages say in words, true to what runs: the teacher a setting will use, the training plan, the γ choice.

Pure text from settings and stored facts, no Streamlit. A trained teacher is named by
:func:`~bat_core.teachers.choice.teacher_name` (what produced the distillation target); before training, by what the
setting will do (:func:`planned_teacher`), so that no page names a transformer that never ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config import TeacherConfig
from ..teachers.choice import encoder_name, teacher_name
from ..training.selection import CLIP, GAMMA_GRID, GAMMA_SEEDS, selection_budget, selection_lambda


def neighbour_options(model: str) -> dict[str, str]:
    """The choices of what makes two documents neighbours (the knn teacher's kind), in words, for ``model``."""
    enc = encoder_name(model)
    return {"auto": f"auto: chosen on dev data among neighbours by shared words, by {enc} embeddings, or both "
                    "(recommended)",
            "lexical": "shared words (TF-IDF; no transformer, the control)",
            "transformer": f"the encoder's embeddings ({enc})",
            "hybrid": f"both: shared words and {enc} embeddings together",
            "random": "random vectors (null control: a teacher that knows nothing)",
            "wordvec": f"shared words, each document's words spread to related words by {enc} word vectors",
            "cooc": "shared words, each document's words spread to co-occurring words (the control for wordvec)",
            "wordvec-shuffled": f"shared words, spread by shuffled {enc} word vectors (the placebo for wordvec)"}


def planned_teacher(tcfg: TeacherConfig) -> str:
    """What will produce the distillation target with these settings, before anything is trained: the kNN teacher's
    ``auto`` names its candidates, any other setting what :func:`teacher_name` will call the trained teacher."""
    if tcfg.head_kind == "knn" and tcfg.kind == "auto":
        enc = encoder_name(tcfg.model)
        return f"chosen on dev data among neighbours by shared words, by {enc} embeddings, or both"
    return teacher_name({"teacher_kind": tcfg.kind_resolved, "head": tcfg.head_kind, "mode": tcfg.mode,
                         "model": tcfg.model})


def _and(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def gamma_runs(lambdas: Sequence[float], gamma_auto: bool) -> bool:
    """Whether a plan trains extra runs that choose the background correction γ on dev data."""
    return gamma_auto and any(lam > 0 for lam in lambdas)


def plan_sentence(lambdas: Sequence[float], seeds: Sequence[int], gamma_auto: bool) -> str:
    """The Train page's plan in one sentence: how many runs, which λ, which seeds, and how many runs at most
    choose γ first (the whole rule is :func:`plan_details`)."""
    lams = sorted(lambdas)
    n = len(lams) * len(seeds)
    words = [f"{x:g}" + (" (the baseline)" if x == 0 else "") for x in lams]
    on = f"on seed {seeds[0]}" if len(seeds) == 1 else f"each on seeds {_and([str(s) for s in seeds])}"
    line = f"{n} run{'s' if n != 1 else ''}: λ = {_and(words)}, {on}"
    if gamma_runs(lams, gamma_auto):
        line += f", after at most {_budget(n)} runs that choose the background correction γ on dev data"
    return line + "."


def _budget(n_grid_runs: int) -> int:
    return selection_budget(1 + 3 * len(GAMMA_GRID), n_grid_runs)  # every round on the first seed (fade, clip unset)


def plan_details(lambdas: Sequence[float], seeds: Sequence[int], gamma_auto: bool, teacher: str = "",
                 teacher_cached: bool = False) -> list[str]:
    """The rest of the plan, one line each: the teacher (``teacher``: what it is or will be) and whether it is
    trained first, how γ is chosen (how many more runs, when), and what the caches save."""
    out = []
    if teacher and any(lam > 0 for lam in lambdas):
        out.append(f"No teacher to train: the teacher for these settings is in the cache ({teacher})."
                   if teacher_cached else f"The teacher is trained first: {teacher}.")
    if gamma_runs(lambdas, gamma_auto):
        lam = selection_lambda(lambdas)
        n = len(GAMMA_GRID)
        out.append(f"Choosing γ: {n - 1} more runs at the first seed ({seeds[0]}) train λ = {lam:g} at every "
                   f"γ ∈ {{{', '.join(f'{g:g}' for g in GAMMA_GRID)}}} (one of them is a run of the plan) and keep the "
                   "best dev NPMI among those whose topics stay about as distinct as the baseline's. If none does, "
                   f"{n} more runs try the same γ with the teacher fading towards 0 over the training, then, if "
                   f"still none does, {n} more with the teacher's target clipped to {CLIP:g} × each document's "
                   "distinct words; if still none "
                   f"does, up to {3 * n + 1} runs per further seed, at most {GAMMA_SEEDS - 1} more seeds, judge the "
                   f"mean over seeds. All of this within {_budget(len(lambdas) * len(seeds))} runs (the larger of the "
                   "rounds on the first seed and a third of the plan's runs): where the rule would need more, it "
                   "stops and takes the best it has, and says so.")
    elif any(lam > 0 for lam in lambdas):
        out.append("γ is set, so no extra runs choose it.")
    out.append("Runs already trained with these settings are read from the cache, not trained again.")
    return out


def gamma_sentence(choice: dict[str, Any]) -> str:
    """The γ the dev rule chose (``selection.gamma_choice``), in one sentence; ``selection.describe_gamma`` has the
    rule and every candidate's scores."""
    what = "no correction (γ = 0)" if choice["gamma"] == 0 else f"γ = {choice['gamma']:g}"
    if choice.get("fade"):
        what += ", with the teacher fading towards 0"
    if choice.get("clip"):
        what += ", with the teacher's target clipped"
    rows = choice.get("rows") or []
    split = rows[0].get("score_on", "dev") if rows else "dev"  # the training split where the dev split cannot score
    data, npmi = ("dev data", "dev NPMI") if split == "dev" else ("the training split", "training-split NPMI")
    mine = next((r for r in rows if r["gamma"] == choice["gamma"] and r.get("fade", 0.0) == choice.get("fade", 0.0)),
                None)
    seeds = choice.get("seeds") or [choice.get("seed")]
    on = "the first seed" if len(seeds) == 1 else f"{len(seeds)} seeds"
    if mine is None or mine["kept"]:
        why = f"the best {npmi} among the candidates whose topics stay about as distinct as the baseline's"
    else:
        why = "no candidate kept the topics as distinct as the baseline's, so the one that lost the least"
    n = f"{len(rows)} candidate{'s' if len(rows) != 1 else ''}"
    if (choice.get("budget") or {}).get("stopped"):
        why += f" (the rule stopped at its budget of {choice['budget']['limit']} runs)"
    return f"Background correction: {what}, chosen on {data} at λ = {choice['lam']:g} ({n} on {on}): {why}."


def coherence_reading(read: str, test_pairs_seen: float | None, reference_pairs_seen: float | None,
                      min_pairs_seen: float) -> str:
    """Which NPMI to read on the Compare page, in plain words: ``read`` is
    ``bat_core.evaluation.coherence.which_to_read``'s answer ("test", "corpus" or "reference");
    ``reference_pairs_seen`` the share of top-word pairs an outside reference saw together (None: no reference).
    Where the test split is sparse and there is no reference, the sentence points to the Corpus page's upload."""
    seen = f"{test_pairs_seen or 0:.0%}"
    if read == "test":
        beside = "the whole-corpus NPMI is" if reference_pairs_seen is None else \
            "the NPMI against the whole corpus and against the reference are"
        return (f"The test split saw {seen} of the top-word pairs together (at least {min_pairs_seen:.0%}): its NPMI "
                f"can be read; {beside} shown beside it.")
    sparse = (f"The test split is too sparse to judge coherence on this corpus: it saw only {seen} of the top-word "
              f"pairs together (fewer than {min_pairs_seen:.0%}), so its NPMI is mostly zeros and the difference "
              "between baseline and BAT is noise.")
    if reference_pairs_seen is None:
        return (sparse + " Read the NPMI against the whole corpus instead (the per-topic and won/lost comparisons "
                "below use the test split too). Or add a reference of longer in-domain texts on the Corpus page.")
    if read != "reference":
        return (sparse + f" The reference saw only {reference_pairs_seen:.0%} of the pairs together, fewer than the "
                "whole corpus: it is too small or from another domain. Read the NPMI against the whole corpus "
                "instead (the per-topic and won/lost comparisons below use the test split too).")
    text = (sparse + f" Read the NPMI against the reference instead: it saw {reference_pairs_seen:.0%} of the pairs "
            "together (the per-topic and won/lost comparisons below use the test split too).")
    if reference_pairs_seen < min_pairs_seen:
        text += (f" The reference too saw fewer than {min_pairs_seen:.0%} of the pairs together: read its NPMI with "
                 "care; more or longer reference texts help.")
    return text
