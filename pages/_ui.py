"""Shared state and helpers for the pages: the current corpus, cached engine objects, runs, exports, sidebar.

Pages stay thin: they call these helpers and ``bat_core``; expensive objects live behind ``st.cache_resource`` /
``st.cache_data``. State that crosses pages lives in ``st.session_state`` under a few keys:

- ``corpus``: the current :class:`~bat_core.corpus.Corpus`
- ``corpus_source``: ``{"kind": "builtin"|"upload", "name": …, "id": …}``; ``corpus_docs``: its raw documents
- ``job_id``: the last background job this session started
- ``sel_lam`` / ``sel_seed``: the λ and seed picked on the Compare page (the pyLDAvis page starts from them)
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from bat_core import datasets
from bat_core.config import DEFAULT_BAT_LAMBDA, CorpusConfig, DistillConfig, StudentConfig, TeacherConfig
from bat_core.corpus import Corpus, build_corpus, hash_texts
from bat_core.errors import BatError
from pages._jobs import Job, manager

ROOT = Path(__file__).resolve().parents[1]
DEMO_LABEL = "Lee news corpus (300 Australian news articles, ships with gensim)"


# --------------------------------------------------------------------------------------------------- defaults
def env_default(name: str, default: Any, cast=str) -> Any:
    """Defaults can be lowered for tests and demos through environment variables (BAT_STUDENT_EPOCHS=5 …)."""
    v = os.environ.get(name)
    if v is None or v == "":
        return default
    try:
        return cast(v)
    except ValueError:
        return default


def defaults() -> dict[str, Any]:
    t, s = TeacherConfig(), StudentConfig()
    return {
        "teacher_model": env_default("BAT_TEACHER_MODEL", t.model),
        "teacher_mode": env_default("BAT_TEACHER_MODE", t.mode),
        "teacher_head": env_default("BAT_TEACHER_HEAD", t.head),
        "teacher_max_length": env_default("BAT_TEACHER_MAX_LENGTH", t.max_length, int),
        "teacher_epochs": env_default("BAT_TEACHER_EPOCHS", t.epochs, int),
        "teacher_head_epochs": env_default("BAT_TEACHER_HEAD_EPOCHS", t.head_epochs, int),
        "n_topics": env_default("BAT_N_TOPICS", s.n_topics, int),
        "epochs": env_default("BAT_STUDENT_EPOCHS", s.epochs, int),
        "temperature": DistillConfig().temperature,
        "clip": float(DistillConfig().clip or 0.0),
        "n_seeds": env_default("BAT_SEEDS", 1, int),
        "lambdas": [float(x) for x in env_default("BAT_LAMBDAS", f"{DEFAULT_BAT_LAMBDA:g}").split(",") if x.strip()],
    }


def cache_dir() -> Path:
    from bat_core.pipeline import default_cache_dir

    return Path(default_cache_dir())


# ------------------------------------------------------------------------------------------------- the corpus
@st.cache_data(show_spinner=False)
def demo_docs() -> list[str]:
    return datasets.load("demo")


def docs_id(docs: list[str]) -> str:
    h = hashlib.sha256()
    hash_texts(h, docs)
    return h.hexdigest()[:16]


@st.cache_resource(max_entries=8, show_spinner="Building the corpus…")
def _build(source_id: str, cfg_json: str, name: str, _docs: list[str]) -> Corpus:
    return build_corpus(_docs, CorpusConfig.from_dict(json.loads(cfg_json)), name=name)


def build(docs: list[str], cfg: CorpusConfig, name: str, source_id: str | None = None) -> Corpus:
    return _build(source_id or docs_id(docs), json.dumps(cfg.to_dict(), sort_keys=True), name, docs)


def set_corpus(corpus: Corpus, docs: list[str], source: dict) -> None:
    st.session_state["corpus"] = corpus
    st.session_state["corpus_docs"] = docs
    st.session_state["corpus_source"] = source


def use_demo(cfg: CorpusConfig | None = None) -> Corpus:
    docs = demo_docs()
    corpus = build(docs, cfg or CorpusConfig(), "demo", "demo")
    set_corpus(corpus, docs, {"kind": "builtin", "name": "demo", "id": "demo", "label": DEMO_LABEL})
    return corpus


def ensure_corpus() -> Corpus | None:
    """The current corpus; on a session's first run the demo corpus, so a new user can go straight to training."""
    if st.session_state.get("corpus") is None:
        try:
            use_demo()
        except BatError as e:  # gensim missing: the user can still upload
            st.session_state["corpus"] = None
            st.session_state["demo_error"] = str(e)
    return st.session_state.get("corpus")


def current_corpus() -> Corpus | None:
    return st.session_state.get("corpus")


def require_corpus() -> Corpus:
    """The current corpus; without one, a pointer to the Corpus page and the page stops here."""
    corpus = current_corpus()
    if not isinstance(corpus, Corpus):
        st.info("No corpus yet.")
        st.page_link("pages/corpus.py", label="Load a corpus first →")
        st.stop()
    return corpus


def tabular_columns(name: str, data: bytes) -> list[str] | None:
    """Column names of a csv/tsv/jsonl/json upload (for the text-column picker); None for other files.

    Best effort: an unreadable file gives ``[]`` and the real error comes from the parser when it is loaded.
    """
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".tsv", ".jsonl", ".ndjson", ".json"):
        return None
    try:
        text = data[:2_000_000].decode("utf-8-sig", errors="replace")
        if suffix in (".csv", ".tsv"):
            if suffix == ".tsv":
                delim = "\t"
            else:
                try:
                    delim = csv.Sniffer().sniff(text[:20000], delimiters=",;\t|").delimiter
                except csv.Error:
                    delim = ","
            header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delim), [])
            return [h for h in header if h]
        records: list = []
        if suffix in (".jsonl", ".ndjson") or (suffix == ".json" and text.lstrip().startswith("{") and "\n{" in text):
            for ln in text.splitlines()[:200]:
                if ln.strip():
                    try:
                        records.append(json.loads(ln))
                    except json.JSONDecodeError:
                        break
        if not records:
            obj = json.loads(data.decode("utf-8-sig"))
            if isinstance(obj, dict):
                lists = [v for v in obj.values() if isinstance(v, list)]
                obj = lists[0] if len(lists) == 1 else []
            records = obj if isinstance(obj, list) else []
        return list(dict.fromkeys(k for r in records[:1000] if isinstance(r, dict) for k in r))
    except (ValueError, UnicodeDecodeError, csv.Error):
        return []


# ---------------------------------------------------------------------------------------------------- runs
def _runs_signature(root: Path) -> tuple:
    if not root.exists():
        return ()
    return tuple(sorted((d.name, (d / "run.json").stat().st_mtime) for d in root.iterdir()
                        if (d / "run.json").exists()))


@st.cache_resource(max_entries=4, show_spinner=False)
def _load_runs(root: str, signature: tuple) -> list:
    from bat_core.runs import RunStore

    return RunStore(Path(root)).runs()


def runs_root() -> Path:
    return cache_dir() / "runs"


def all_runs(corpus: Corpus | None = None) -> list:
    """Every saved run (for ``corpus`` if given), newest first; re-read from disk only when a run was added."""
    root = runs_root()
    runs = _load_runs(str(root), _runs_signature(root))
    if corpus is not None:
        runs = [r for r in runs if r.config.get("corpus_hash") == corpus.hash]
    return runs


def _is_baseline(run) -> bool:
    """λ = 0 without teacher logits in the encoder: the plain Scholar baseline (T, c and the teacher do nothing)."""
    return run.lam == 0 and run.config["distill"].get("encode_logits", "off") == "off"


def _student_key(run) -> str:
    s = {k: v for k, v in run.config["student"].items() if k not in ("seed", "device")}
    return json.dumps({"student": s, "encode": run.config["distill"].get("encode_logits", "off")}, sort_keys=True)


def family_key(run) -> str:
    """Runs that differ only in λ and seed (same student, distillation and teacher settings) form one family."""
    if _is_baseline(run):
        return _student_key(run)
    d = {k: v for k, v in run.config["distill"].items() if k != "lam"}
    return json.dumps({"base": _student_key(run), "distill": d, "teacher": run.config.get("teacher_key")},
                      sort_keys=True)


def families(runs: list) -> dict[str, list]:
    """Family key → its runs, newest first. Baselines join every family with their student settings (one baseline
    serves all T, c and teachers); baselines no BAT run matches form a family of their own."""
    order = {id(r): i for i, r in enumerate(runs)}
    out: dict[str, list] = {}
    for r in runs:
        if not _is_baseline(r):
            out.setdefault(family_key(r), []).append(r)
    used = set()
    for rs in out.values():
        sk = _student_key(rs[0])
        for b in runs:
            if _is_baseline(b) and _student_key(b) == sk:
                rs.append(b)
                used.add(id(b))
        rs.sort(key=lambda r: order[id(r)])
    for b in runs:
        if _is_baseline(b) and id(b) not in used:
            out.setdefault(family_key(b), []).append(b)
    return out


def family_label(runs: list) -> str:
    s = runs[0].config["student"]
    lams = sorted({r.lam for r in runs})
    seeds = sorted({r.seed for r in runs})
    label = f"K={s['n_topics']}, {s['epochs']} epochs"
    bat = next((r for r in runs if not _is_baseline(r)), None)
    if bat is not None:
        d, t = bat.config["distill"], bat.config.get("teacher") or {}
        label += f", T={d['temperature']:g}, c={d['clip'] or 'off'}"
        if t:
            label += f", teacher {Path(str(t.get('model', '?'))).name} ({t.get('mode', '?')})"
    return f"{label} · λ ∈ {{{', '.join(f'{x:g}' for x in lams)}}} · {len(seeds)} seed(s)"


def pick(runs: list, lam: float, seed: int):
    """The newest run at (λ, seed) from ``runs`` (runs are newest first)."""
    for r in runs:
        if np.isclose(r.lam, lam) and r.seed == seed:
            return r
    return None


def settings_line(run) -> str:
    """One line saying how a run was trained, including which teacher (model, mode) produced its targets."""
    st_, d = run.config["student"], run.config["distill"]
    parts = [f"K = {st_['n_topics']}", f"{st_['epochs']} epochs (best: {run.metrics.get('best_epoch', '?')})"]
    if run.lam > 0:
        parts.append(f"T = {d['temperature']:g}, c = {d['clip'] if d['clip'] else 'off'}")
    t = run.config.get("teacher") or {}
    if t:
        model = Path(str(t.get("model", "?"))).name or t.get("model")
        line = (f"teacher {model} ({t.get('mode', '?')} mode, {t.get('head', 'linear')} head, "
                f"max length {t.get('max_length', '?')})")
        ppl, uni = t.get("dev_perplexity"), t.get("unigram_dev_perplexity")
        if isinstance(ppl, (int, float)) and isinstance(uni, (int, float)):
            line += f": dev perplexity {ppl:,.0f} vs {uni:,.0f} for word frequencies alone"
        parts.append(line)
    return " · ".join(parts)


def run_label(run) -> str:
    return "Baseline (λ=0)" if run.lam == 0 else f"BAT (λ={run.lam:g})"


# ------------------------------------------------------------------------------------------------- exports
def topics_csv(run) -> bytes:
    npmi = run.metrics.get("test_npmi_per_topic") or [np.nan] * run.n_topics
    df = pd.DataFrame({"topic": np.arange(1, run.n_topics + 1), "test_npmi": npmi,
                       "top_words": [" ".join(t) for t in run.topics]})
    return df.to_csv(index=False).encode()


def doc_topic_csv(run, corpus: Corpus) -> bytes:
    split = np.empty(corpus.n_docs, dtype=object)
    for name, idx in corpus.splits.items():
        split[idx] = name
    df = pd.DataFrame(np.round(run.theta.astype(np.float64), 6),
                      columns=[f"topic_{k + 1}" for k in range(run.n_topics)])
    df.insert(0, "split", split)
    df.insert(0, "doc", np.arange(corpus.n_docs))
    return df.to_csv(index=False).encode()


def run_json(run) -> bytes:
    d = run.summary()
    d["history"] = run.history
    return json.dumps(d, indent=2, default=str).encode()


DEFER_CELLS = 500_000


def export_buttons(run, corpus: Corpus, where: str) -> None:
    """Topics CSV, document–topic CSV and settings+metrics JSON for one run."""
    tag = f"{corpus.name}-lam{run.lam:g}-seed{run.seed}-{run.key[:8]}"
    c1, c2, c3 = st.columns(3)
    c1.download_button("Topics (CSV)", topics_csv(run), f"topics-{tag}.csv", "text/csv", key=f"{where}_dl_topics")
    # a big θ is written only when asked for (deferred download), so moving the λ slider stays instant
    big = corpus.n_docs * run.n_topics > DEFER_CELLS
    theta = (lambda: doc_topic_csv(run, corpus)) if big else doc_topic_csv(run, corpus)
    c2.download_button("Document–topic proportions (CSV)", theta, f"doc-topics-{tag}.csv", "text/csv",
                       key=f"{where}_dl_theta")
    c3.download_button("Settings and metrics (JSON)", run_json(run), f"run-{tag}.json", "application/json",
                       key=f"{where}_dl_json")


# ---------------------------------------------------------------------------------------------- the device
@st.cache_resource(show_spinner=False)
def device_name() -> str:
    """The device training will use, e.g. 'cpu' or 'cuda (NVIDIA H100 80GB HBM3)' (imports torch once)."""
    from bat_core.device import describe, pick_device

    return describe(pick_device("auto"))


# ----------------------------------------------------------------------------------------------------- jobs
def session_job() -> Job | None:
    """The job this session started last, or whichever job is running on the server."""
    return manager().get(st.session_state.get("job_id")) or manager().active()


def job_panel(job: Job, key: str) -> None:
    """Live progress of a background job (refreshed every second) with a cancel button.

    When the job ends the whole page reruns so the new runs show up.
    """

    @st.fragment(run_every=1.0)
    def _panel() -> None:
        if not job.running:
            if st.session_state.get(f"{key}_seen") != job.id:
                st.session_state[f"{key}_seen"] = job.id
                st.rerun(scope="app")
            return
        state = "running"
        with st.status(f"{job.label} · {job.elapsed:,.0f} s", expanded=True, state=state):
            step = job.steps[min(job.step, len(job.steps) - 1)] if job.steps else ""
            st.progress(job.fraction, text=f"Step {min(job.step + 1, len(job.steps))} of {len(job.steps)}: {step}")
            ev = job.event
            if ev is not None:
                parts = [f"**{ev.stage}**", f"{ev.done}/{ev.total}"]
                if ev.message:
                    parts.append(ev.message)
                m = ev.metrics
                if "loss" in m:
                    parts.append(f"loss {m['loss']:.4g}")
                if "dev_npmi" in m and m["dev_npmi"] is not None:
                    parts.append(f"dev NPMI {m['dev_npmi']:.3f}")
                best = job.best.get(ev.stage)
                if best is not None:
                    parts.append(f"best {best:.3f}")
                for k, v in m.items():
                    if k not in ("loss", "dev_npmi", "best_dev_npmi") and isinstance(v, (int, float)):
                        parts.append(f"{k.replace('_', ' ')} {v:.4g}")
                st.markdown(" · ".join(parts))
            for note in job.notes[-6:]:
                st.caption("✓ " + note)
        if job.cancelling:
            st.button("Cancelling…", disabled=True, key=f"{key}_cancel_wait")
        elif st.button("Cancel", key=f"{key}_cancel"):
            job.cancel()

    _panel()


def job_outcome(job: Job | None) -> None:
    """What happened to the last job: nothing while it runs; success, cancel or error (with the engine's words)."""
    if job is None or job.running:
        return
    if job.state == "done":
        notes = "\n".join(f"- {n}" for n in job.notes[-8:])
        st.success(f"**{job.label}: finished in {job.elapsed:,.1f} s.**\n\n{notes}")
    elif job.state == "cancelled":
        st.warning(f"{job.label}: cancelled after {job.elapsed:,.1f} s; finished runs were kept.")
    else:
        st.error(job.error or "training failed")
        if job.detail:
            with st.expander("Technical details"):
                st.code(job.detail)


# ---------------------------------------------------------------------------------------------------- sidebar
def sidebar() -> None:
    corpus = current_corpus()
    with st.sidebar:
        st.markdown("### Current corpus")
        if corpus is None:
            st.caption("No corpus yet: load one on the Corpus page.")
        else:
            src = st.session_state.get("corpus_source", {})
            st.markdown(f"**{corpus.name}**" + (" (demo)" if src.get("kind") == "builtin" else ""))
            st.caption(f"{corpus.n_docs:,} documents · {corpus.vocab_size:,} words · "
                       f"{int(corpus.counts.sum()):,} tokens · id {corpus.hash[:8]}")
            n_runs = len(all_runs(corpus))
            st.caption(f"{n_runs} trained run(s) for this corpus")
        st.markdown("### Device")
        st.caption(device_name())
        job = manager().active()
        if job is not None:
            _sidebar_job(job)


def _sidebar_job(job: Job) -> None:
    """Progress of the running job on every page; when it ends, the page reruns to show the new runs."""

    @st.fragment(run_every=2.0)
    def _progress() -> None:
        if not job.running:
            if st.session_state.get("sidebar_seen") != job.id:
                st.session_state["sidebar_seen"] = job.id
                st.rerun(scope="app")
            return
        st.markdown("### Training")
        st.progress(job.fraction, text=f"{job.label}: {job.fraction:.0%}")

    _progress()


def md_escape(text: str) -> str:
    """Show user text literally inside st.markdown (no markdown, no HTML)."""
    import html
    import re

    return re.sub(r"([\\`*_{}\[\]()#+\-.!|>~$])", r"\\\1", html.escape(text, quote=False))


# ------------------------------------------------------------------------------------------------ training
def plan_steps(lambdas: list[float], seeds: list[int], dbase: DistillConfig) -> list[tuple[float, int]]:
    """(λ, seed) pairs in training order: baselines first (they need no teacher), then each λ."""
    lams = sorted({float(x) for x in lambdas})
    return [(lam, int(s)) for lam in lams for s in seeds]


def start_training(corpus: Corpus, tcfg: TeacherConfig, scfg: StudentConfig, dbase: DistillConfig,
                   lambdas: list[float], seeds: list[int], label: str) -> Job:
    """Train (or read from the caches) the teacher if needed, then every (λ, seed) run, in a background thread."""
    from dataclasses import replace

    from bat_core import pipeline

    plan = plan_steps(lambdas, seeds, dbase)
    dcfgs = [(lam, seed, replace(dbase, lam=lam)) for lam, seed in plan]
    need_teacher = any(d.active for _, _, d in dcfgs)
    steps = []
    for lam, seed, d in dcfgs:
        if d.active and "teacher" not in steps:
            steps.append("teacher")
        steps.append(f"λ={lam:g} seed={seed}")
    cdir = cache_dir()

    def work(job: Job) -> dict:
        teacher = None
        out: dict[str, Any] = {"teacher_from_cache": None}
        for lam, seed, d in dcfgs:
            if d.active and teacher is None:
                n0, t0 = job.n_events, job.elapsed
                teacher = pipeline.get_teacher(corpus, tcfg, cdir, job.progress, job.should_stop)
                cached = job.n_events == n0
                out["teacher_from_cache"] = cached
                out["teacher_key"] = teacher.key
                meta = teacher.meta
                ppl = meta.get("dev_perplexity")
                uni = meta.get("unigram_dev_perplexity")
                note = (f"teacher {'read from cache' if cached else 'trained'} in {job.elapsed - t0:.1f} s "
                        f"(mode {meta.get('mode', tcfg.mode)}")
                if isinstance(ppl, (int, float)):
                    note += f", dev perplexity {ppl:,.0f}"
                    if isinstance(uni, (int, float)):
                        note += f" vs {uni:,.0f} for word frequencies alone"
                job.next_step(note + ")")
            n0 = job.n_events
            run = pipeline.get_run(corpus, replace(scfg, seed=seed), d, teacher if d.active else None, cdir,
                                   job.progress, job.should_stop)
            job.run_keys.append(run.key)
            job.next_step(f"λ={lam:g} seed={seed}: test NPMI {run.metrics.get('test_npmi', float('nan')):.3f}"
                          + (" (cached)" if job.n_events == n0 else ""))
        return out

    job = Job(label=label, corpus_hash=corpus.hash, steps=steps)
    job = manager().start(job, work)
    st.session_state["job_id"] = job.id
    st.session_state["job_teacher_cfg"] = tcfg.to_dict() if need_teacher else st.session_state.get("job_teacher_cfg")
    return job


# ------------------------------------------------------------------------------------------------ teacher
@st.cache_resource(max_entries=4, show_spinner=False)
def load_teacher_logits(root: str, key: str):
    """The cached teacher logits store with this key (memory-mapped), or None when it is not on disk."""
    from bat_core.logits import TeacherLogits

    folder = Path(root) / "teachers" / key  # teacher.teacher_dir: cache_dir/teachers/<corpus hash>-<settings key>
    try:
        return TeacherLogits.load(folder)
    except BatError:
        return None


def teacher_cached(corpus: Corpus, tcfg: TeacherConfig) -> bool:
    """Whether the teacher for this corpus and these settings is already on disk (no encoder is loaded)."""
    from bat_core.teacher import teacher_dir

    return (teacher_dir(cache_dir(), corpus, tcfg) / "meta.json").is_file()


def teacher_config_for(run) -> TeacherConfig | None:
    """The teacher settings a BAT run was trained with (from its teacher metadata), to train more λ alike."""
    meta = run.config.get("teacher") or {}
    for cand in (meta.get("config"), meta.get("teacher"), meta.get("settings"), meta):
        if isinstance(cand, dict) and "mode" in cand and "model" in cand:
            try:
                return TeacherConfig.from_dict(cand)
            except (BatError, TypeError):
                continue
    saved = st.session_state.get("job_teacher_cfg")
    return TeacherConfig.from_dict(saved) if saved else None
