"""The HTML of the Compare page: the aligned-topic table (rows from :func:`bat_core.explore.families.pair_rows`), its
legend, and the word lists of the document view.

A pair that shares fewer than 2 of its top 10 words is no match: it is shown as "no close counterpart" (greyed, no
word highlighting, no NPMI winner) instead of as a pair.
"""

from __future__ import annotations

import html

import numpy as np

STYLE = """<style>
table.bat-align {border-collapse: collapse; width: 100%; font-size: 0.9rem;}
table.bat-align th {text-align: left; border-bottom: 2px solid #d1d5db; padding: 4px 6px; font-weight: 600;}
table.bat-align td {border-bottom: 1px solid #eef0f3; padding: 4px 6px; vertical-align: top;}
table.bat-align td.num {text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums;}
table.bat-align td.win {font-weight: 700; color: #15803d;}
table.bat-align tr.far td {color: #6b7280;}
table.bat-align td.nomatch {white-space: nowrap; font-style: italic; color: #b45309;}
.w {display: inline-block; margin: 1px 2px; padding: 0 4px; border-radius: 4px;}
.w.only-base {background: #fde68a;} .w.only-bat {background: #bfdbfe;}
</style>"""


def words_html(words: list[str], other: list[str] | None, cls: str) -> str:
    """The words as chips; those not in ``other`` get class ``cls`` (``other`` None: no highlighting)."""
    other_set = set(words if other is None else other)
    return " ".join(f"<span class='w{'' if w in other_set else ' ' + cls}'>{html.escape(w)}</span>" for w in words)


def fmt_jsd(d: float) -> str:
    return f"{d:.3f}" if d >= 0.001 or d == 0 else f"{d:.1e}"


def _row(r: dict) -> str:
    if not r["close"]:
        return (f"<tr class='far'><td class='num'>{r['n']}</td><td class='num'>{r['a']}</td>"
                f"<td>{words_html(r['words_a'], None, '')}</td><td class='num'>{r['npmi_a']:.3f}</td>"
                f"<td class='nomatch' title='JSD {fmt_jsd(r['jsd'])}; {r['shared']} of the top 10 words shared'>"
                f"no close counterpart</td><td class='num'>{r['npmi_b']:.3f}</td>"
                f"<td>{words_html(r['words_b'], None, '')}</td><td class='num'>{r['b']}</td></tr>")
    a_win, b_win = r["npmi_a"] > r["npmi_b"], r["npmi_b"] > r["npmi_a"]
    return (f"<tr><td class='num'>{r['n']}</td><td class='num'>{r['a']}</td>"
            f"<td>{words_html(r['words_a'], r['words_b'], 'only-base')}</td>"
            f"<td class='num{' win' if a_win else ''}'>{r['npmi_a']:.3f}</td><td class='num'>{fmt_jsd(r['jsd'])}</td>"
            f"<td class='num{' win' if b_win else ''}'>{r['npmi_b']:.3f}</td>"
            f"<td>{words_html(r['words_b'], r['words_a'], 'only-bat')}</td><td class='num'>{r['b']}</td></tr>")


def aligned_table(rows: list[dict], name_a: str, name_b: str) -> str:
    """The whole table (style included), one row per aligned pair in alignment order."""
    return (STYLE + "<table class='bat-align'><thead><tr><th>#</th><th>topic</th>"
            f"<th>{html.escape(name_a)}</th><th>NPMI</th><th>JSD</th><th>NPMI</th><th>{html.escape(name_b)}</th>"
            f"<th>topic</th></tr></thead><tbody>{''.join(_row(r) for r in rows)}</tbody></table>")


def wins(rows: list[dict]) -> tuple[int, int]:
    """(pairs the second model wins on per-topic NPMI, close pairs): only close counterparts are compared."""
    close = [r for r in rows if r["close"]]
    return sum(r["npmi_b"] > r["npmi_a"] for r in close), len(close)


# the aligned table's legend (a caption with the table's own word colours)
LEGEND = ("Baseline and BAT topics matched one-to-one by Jensen–Shannon divergence (optimal matching), most similar "
          "first. <span class='w only-base' style='background:#fde68a'>yellow</span>: only in the baseline topic; "
          "<span class='w only-bat' style='background:#bfdbfe'>blue</span>: only in the BAT topic. The higher "
          "per-topic NPMI (test split) of each pair is in green. Topic numbers are those of the pyLDAvis page.")


def word_column(title: str, values: np.ndarray | None, vocab: list[str], in_doc: np.ndarray, n: int = 12,
                counts: bool = False, missing: str = "") -> str:
    """A bold ``title`` over the ``n`` words with the largest ``values`` (probabilities, or counts with ``counts``),
    one a line with its value; words not in the document (``in_doc`` False) in blue. ``values`` None: ``missing``."""
    head = f"**{html.escape(title)}**<br>"
    if values is None:
        return head + f"<small>{html.escape(missing)}</small>"
    items = []
    for i in np.argsort(-values)[:n]:
        val = f"{int(values[i])}×" if counts else f"{values[i]:.3f}"
        style = "" if in_doc[i] else " style='background:#bfdbfe'"
        items.append(f"<span class='w'{style}>{html.escape(vocab[i])}</span> <small>{val}</small>")
    return head + "<br>".join(items)
