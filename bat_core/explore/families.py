"""Grouping saved runs for the views: a *family* is runs that differ only in λ and seed; labels say how they trained.

One λ = 0 baseline serves every temperature, clipping and teacher (none of them touches it), so baselines join every
family with their student settings. Pure functions over :class:`~bat_core.runs.store.Run` objects (or anything with
``lam``, ``seed``, ``key``, ``config``, ``metrics``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..config import PAPER_SEEDS, WORD_KINDS
from ..runs.store import Run
from ..teachers.choice import teacher_name
from ..training.selection import GAMMA_SEEDS, gamma_choice, needs_more_seeds, rule_candidates
from ..training.selection import run_clip as clip
from ..training.selection import run_fade as fade
from ..training.selection import run_gamma as gamma


def is_baseline(run: Run) -> bool:
    """λ = 0 without teacher logits in the encoder: the plain Scholar baseline (T, c and the teacher do nothing)."""
    return run.lam == 0 and run.config["distill"].get("encode_logits", "off") == "off"


def _student_key(run: Run) -> str:
    s = {k: v for k, v in run.config["student"].items() if k not in ("seed", "device")}
    return json.dumps({"student": s, "encode": run.config["distill"].get("encode_logits", "off")}, sort_keys=True)


def _seed_order(seed: int) -> tuple[int, int]:
    """The shared seed scheme's order (the paper's seeds first), in which the grid reads further seeds."""
    return (PAPER_SEEDS.index(seed) if seed in PAPER_SEEDS else len(PAPER_SEEDS), seed)


def gamma_candidates(run: Run, runs: list[Run]) -> tuple[list[Run], list[Run]] | None:
    """The runs the dev rule for γ reads for ``run``'s settings: the baselines and every run at the same λ that
    differs only in γ, the fade or the clip (constant λ first, then faded, then clipped; γ ascending), on ``run``'s
    seed and, while no candidate keeps the uniqueness, on further seeds that have the same candidates (in the shared
    seed order, as the grid reads them); None when fewer than two were trained (nothing was chosen here). Which
    fades and clips count follows the grid's rounds (:func:`selection.rule_candidates`)."""
    if is_baseline(run):
        return None

    def without_gamma(r: Run) -> str:
        d = {k: v for k, v in r.config["distill"].items() if k not in ("background_correction", "fade", "clip")}
        return json.dumps({"d": d, "s": {k: v for k, v in r.config["student"].items() if k != "seed"},
                           "t": r.config.get("teacher_key")}, sort_keys=True)

    me = without_gamma(run)
    same = [r for r in runs if not is_baseline(r) and without_gamma(r) == me]

    def at(seed: int) -> tuple[Run | None, dict[tuple[float, float], Run]]:
        by_gamma = {(clip(r), fade(r), gamma(r)): r for r in reversed(same) if r.seed == seed}  # the rule's order
        base = next((b for b in runs if is_baseline(b) and b.seed == seed and _student_key(b) == _student_key(run)),
                    None)
        return base, by_gamma

    base, by_gamma = at(run.seed)
    if base is None:
        return None
    cands = rule_candidates(base, [by_gamma[g] for g in sorted(by_gamma)], fade(run), clip(run))
    if len(cands) < 2:
        return None
    bases, read = [base], [(clip(c), fade(c), gamma(c)) for c in cands]
    for seed in sorted({r.seed for r in same} - {run.seed}, key=_seed_order):
        if len(bases) >= GAMMA_SEEDS or not needs_more_seeds(bases, cands):
            break
        other_base, other = at(seed)
        if other_base is None or not all(g in other for g in read):
            break  # the grid trains every candidate on each seed it reads: a gap means it read no further
        bases, cands = [*bases, other_base], [*cands, *(other[g] for g in read)]
    return bases, cands


def rule_reading(fam: list[Run], runs: list[Run]) -> tuple[list[Run], list[Run]] | None:
    """What the dev rule for γ read for the settings of ``fam`` (runs of one family, any λ and seed): the
    :func:`gamma_candidates` of its λ > 0 run on the earliest seed that has candidates. The shared seed order
    (:data:`~bat_core.config.PAPER_SEEDS` first) is the grid's whenever the plan's seeds were a ``seed_list``, as
    in the app and the CLI; a plan with seeds in another order is rebuilt in this one."""
    for r in sorted((r for r in fam if not is_baseline(r)), key=lambda r: _seed_order(r.seed)):
        if (found := gamma_candidates(r, runs)) is not None:
            return found
    return None


def unchosen_gamma(fam: list[Run], runs: list[Run]) -> bool:
    """Whether a family is only one of the γ candidates the dev rule trained and did not choose (one λ, on the seeds
    the rule read): the views list such families last, so that the default runs come first."""
    bats = [r for r in fam if not is_baseline(r)]
    if not bats or len({r.lam for r in bats}) != 1:
        return False
    found = rule_reading(bats, runs)
    if found is None:
        return False
    choice = gamma_choice(*found)
    if not {r.seed for r in bats} <= set(choice["seeds"]):
        return False  # trained on seeds the rule did not read: the user's own runs, not a candidate
    return (choice["gamma"], choice["fade"]) != (gamma(bats[0]), fade(bats[0]))


UNCHOSEN_NOTE = " · a γ candidate the dev rule did not choose"


def ordered(fams: dict[str, list[Run]], runs: list[Run]) -> tuple[list[str], dict[str, str]]:
    """The family keys as the views list them (newest first, the γ candidates the rule did not choose last) and each
    family's label."""
    unchosen = {k for k, v in fams.items() if unchosen_gamma(v, runs)}
    keys = [k for k in fams if k not in unchosen] + [k for k in fams if k in unchosen]
    return keys, {k: family_label(fams[k]) + (UNCHOSEN_NOTE if k in unchosen else "") for k in keys}


def family_key(run: Run) -> str:
    """Runs that differ only in λ and seed (same student, distillation and teacher settings) form one family."""
    if is_baseline(run):
        return _student_key(run)
    d = {k: v for k, v in run.config["distill"].items() if k != "lam"}
    return json.dumps({"base": _student_key(run), "distill": d, "teacher": run.config.get("teacher_key")},
                      sort_keys=True)


def families(runs: list[Run]) -> dict[str, list[Run]]:
    """Family key → its runs, newest first (``runs`` come newest first). Baselines join every family with their
    student settings; baselines no BAT run matches form a family of their own."""
    order = {id(r): i for i, r in enumerate(runs)}
    out: dict[str, list[Run]] = {}
    for r in runs:
        if not is_baseline(r):
            out.setdefault(family_key(r), []).append(r)
    used = set()
    for rs in out.values():
        sk = _student_key(rs[0])
        for b in runs:
            if is_baseline(b) and _student_key(b) == sk:
                rs.append(b)
                used.add(id(b))
        rs.sort(key=lambda r: order[id(r)])
    for b in runs:
        if is_baseline(b) and id(b) not in used:
            out.setdefault(family_key(b), []).append(b)
    return out


def comparable(fams: dict[str, list[Run]]) -> dict[str, list[Run]]:
    """The families that have both a baseline and at least one λ > 0: what the Compare page can show."""
    return {k: v for k, v in fams.items() if any(r.lam == 0 for r in v) and any(r.lam > 0 for r in v)}


def family_label(runs: list[Run]) -> str:
    s = runs[0].config["student"]
    lams = sorted({r.lam for r in runs})
    seeds = sorted({r.seed for r in runs})
    label = ("ProdLDA, " if s.get("student") == "prodlda" else "") + f"K={s['n_topics']}, {s['epochs']} epochs"
    bat = next((r for r in runs if not is_baseline(r)), None)
    if bat is not None:
        d, t = bat.config["distill"], bat.config.get("teacher") or {}
        label += f", T={d['temperature']:g}, c={d['clip'] or 'off'}"
        if gamma(bat):
            label += f", γ={gamma(bat):g}"
        if fade(bat):
            label += f", λ fading over the last {fade(bat):.0%} of the epochs"
        if t:
            label += f", teacher: {teacher_name(t)}"
    return f"{label} · λ ∈ {{{', '.join(f'{x:g}' for x in lams)}}} · {len(seeds)} seed(s)"


def pick(runs: list[Run], lam: float, seed: int) -> Run | None:
    """The newest run at (λ, seed) from ``runs`` (runs are newest first)."""
    for r in runs:
        if np.isclose(r.lam, lam) and r.seed == seed:
            return r
    return None


def uses_encoder(meta: dict[str, Any]) -> bool:
    """Whether a trained teacher's target came from the transformer (its neighbours or its head), as opposed to
    neighbours by shared words or random ones."""
    kind = str(meta.get("teacher_kind") or "transformer")
    return kind not in ("lexical", "random", *WORD_KINDS)  # the word-level kinds read word vectors, never run it


def _teacher_line(t: dict[str, Any]) -> str:
    line = f"teacher: {teacher_name(t)}"
    if uses_encoder(t) and t.get("max_length"):
        line += f" (max length {t['max_length']} tokens)"
    ppl, uni = t.get("dev_perplexity"), t.get("unigram_dev_perplexity")
    if isinstance(ppl, int | float) and isinstance(uni, int | float):
        line += f": dev perplexity {ppl:,.0f} vs {uni:,.0f} for word frequencies alone"
    return line


def settings_line(run: Run) -> str:
    """One line saying how a run was trained, including what produced its targets (``teacher_name``)."""
    st_, d = run.config["student"], run.config["distill"]
    parts = [f"K = {st_['n_topics']}", f"{st_['epochs']} epochs (best: {run.metrics.get('best_epoch', '?')})"]
    if run.lam > 0:
        parts.append(f"T = {d['temperature']:g}, c = {d['clip'] if d['clip'] else 'off'}, "
                     f"background correction γ = {gamma(run):g}"
                     + (f", λ fading towards 0 over the last {fade(run):.0%} of the epochs" if fade(run) else ""))
    t = run.config.get("teacher") or {}
    if t:
        parts.append(_teacher_line(t))
    return " · ".join(parts)


def run_label(run: Run) -> str:
    return "Baseline (λ=0)" if run.lam == 0 else f"BAT (λ={run.lam:g})"


def teacher_is_weak(meta: dict[str, Any] | None) -> bool:
    """True when the teacher predicts held-out documents no better than word frequencies alone."""
    meta = meta or {}
    ppl, uni = meta.get("dev_perplexity"), meta.get("unigram_dev_perplexity")
    return isinstance(ppl, int | float) and isinstance(uni, int | float) and ppl >= uni


CLOSE_MIN_SHARED = 2  # aligned topics sharing fewer of their top words than this have no close counterpart
CLOSE_TOP_N = 10


def shared_top_words(words_a: list[str], words_b: list[str], top_n: int = CLOSE_TOP_N) -> int:
    """How many of the first ``top_n`` words two topics have in common."""
    return len(set(words_a[:top_n]) & set(words_b[:top_n]))


def close_counterpart(words_a: list[str], words_b: list[str], min_shared: int = CLOSE_MIN_SHARED,
                      top_n: int = CLOSE_TOP_N) -> bool:
    """Whether an aligned pair is a real match: at least ``min_shared`` of their top ``top_n`` words in common.

    The optimal matching pairs every topic with some topic; a pair below this is shown as "no close counterpart"."""
    return shared_top_words(words_a, words_b, top_n) >= min_shared


def pair_rows(pairs: list[tuple[int, int, float]], topics_a: list[list[str]], topics_b: list[list[str]],
              npmi_a: np.ndarray, npmi_b: np.ndarray) -> list[dict[str, Any]]:
    """One dict per aligned pair, in alignment order: topic numbers (1-based, as the pages and pyLDAvis show them),
    words, per-topic NPMI, JSD, shared top words and whether the pair is a close counterpart."""
    out = []
    for n, (i, j, d) in enumerate(pairs, 1):
        wa, wb = topics_a[i], topics_b[j]
        out.append({"n": n, "a": i + 1, "b": j + 1, "words_a": wa, "words_b": wb, "npmi_a": float(npmi_a[i]),
                    "npmi_b": float(npmi_b[j]), "jsd": float(d), "shared": shared_top_words(wa, wb),
                    "close": close_counterpart(wa, wb)})
    return out
