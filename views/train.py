"""Train page: teacher and student settings, one button, live progress; results and exports when done."""

import streamlit as st

from bat_core.base.errors import BatError
from bat_core.config import DistillConfig, StudentConfig
from bat_core.explore import plots
from bat_core.explore.families import families, run_label
from bat_core.explore.wording import neighbour_options, plan_details, plan_sentence
from bat_core.grid import seed_list
from bat_core.teachers.choice import median_length, short_documents_hint
from bat_core.training.trainer import check_trainable
from ui import keys, picks, prebuild, progress, runs, state, training
from ui.defaults import (
    GAMMA_AUTO,
    GAMMA_OPTIONS,
    LAMBDA_CHOICES,
    MAX_LENGTHS,
    TEACHER_KINDS,
    TEACHER_MODES,
    defaults,
    start_lambdas,
    teacher_config,
    teacher_heads,
    teacher_start,
)
from ui.exports import export_buttons
from ui.live import GridWatch
from ui.sidebar import device_name
from ui.text import md_escape

PERSIST = "session"

st.title("Train")
corpus = state.require_corpus()

d = defaults()
st.caption(f"Corpus **{md_escape(corpus.name)}**: {corpus.n_docs:,} documents, {corpus.vocab_size:,} words · "
           f"device **{device_name()}**. λ = 0 is the baseline, the student alone; λ > 0 adds the teacher's "
           "predicted bag of words as a second reconstruction target, weighted by λ. Baseline and BAT use the same "
           "seeds.")

job = progress.session_job()
busy = job is not None and job.running

tcol, scol = st.columns(2, gap="large")
t0 = teacher_start(d)
with tcol:
    st.subheader("Teacher")
    model = st.text_input("Encoder", t0["model"], key="t_model", persist_state=PERSIST,
                          help="The transformer that embeds documents: 'minilm' = the MiniLM-L6 sentence encoder that "
                               "ships with the app (offline); or a local folder with a Hugging Face encoder. "
                               "Neighbours by shared words never run it")
    mode = st.selectbox("Training mode", TEACHER_MODES, TEACHER_MODES.index(t0["mode"]), key="t_mode",
                        persist_state=PERSIST,
                        format_func={"frozen": "frozen encoder, train the head (fast on CPU)",
                                     "top-n": "fine-tune the top layers", "full": "fine-tune everything (GPU)"}.get)
    heads = teacher_heads(mode)
    head = st.selectbox("Head", heads, heads.index(t0["head"]) if t0["head"] in heads else 0,
                        key="t_head", persist_state=PERSIST,
                        format_func={"linear": "linear layer over the vocabulary (the paper)",
                                     "mlp": "MLP (one hidden layer)",
                                     "knn": "nearest neighbours' words (k, smoothing chosen on dev)"}.get,
                        help="How the teacher turns a document embedding into a predicted bag of words")
    kind = "transformer"
    if head == "knn":
        kind = st.selectbox(
            "Neighbours by", TEACHER_KINDS, TEACHER_KINDS.index(t0["kind"]), key="t_kind", persist_state=PERSIST,
            format_func=neighbour_options(model.strip() or "minilm").get,
            help="What makes two documents neighbours. auto compares the candidates on the dev split by "
                 "perplexity and says which it chose and what the others scored")
        hint = short_documents_hint(median_length(corpus.counts, corpus.splits["train"]))
        if hint and kind in ("auto", "lexical"):
            st.caption(hint)
    max_len = st.select_slider("Max length (tokens)", MAX_LENGTHS, t0["max_length"], key="t_maxlen",
                               persist_state=PERSIST,
                               help="Longer documents are split into windows of this length and averaged")
    t_epochs = d["teacher_epochs"]
    if mode != "frozen":
        t_epochs = st.number_input("Fine-tuning epochs", 1, 50, max(1, d["teacher_epochs"]), key="t_epochs",
                                   persist_state=PERSIST)

with scol:
    st.subheader("Student")
    student = st.selectbox("Topic model", ["scholar", "prodlda"], key="s_kind", persist_state=PERSIST,
                           format_func={"scholar": "Scholar (the paper's student; background term)",
                                        "prodlda": "ProdLDA (Srivastava & Sutton 2017)"}.get,
                           help="Both train with the same distillation loss, model selection and views")
    c1, c2 = st.columns(2)
    k = c1.number_input("Topics (K)", 2, 500, d["n_topics"], key="s_k", persist_state=PERSIST)
    epochs = c2.number_input("Epochs", 1, 2000, d["epochs"], key="s_epochs", persist_state=PERSIST,
                             help="The epoch with the best dev NPMI is kept")
    c3, c4 = st.columns(2)
    temp = c3.number_input("Temperature T", 0.1, 20.0, d["temperature"], 0.5, key="s_temp", persist_state=PERSIST,
                           help="Softens the teacher's and the student's word distributions in the KD loss")
    clip = c4.number_input("Logit clipping c", 0.0, 1000.0, d["clip"], 1.0, key="s_clip", persist_state=PERSIST,
                           help="Keep ≈ c × (word types in the document) teacher logits; 0 = no clipping. With "
                                "γ on auto, the rule may still choose a clipped target (c = 2) when no unclipped "
                                "candidate keeps the topics distinct; the Compare page says when it did")
    c5, c6 = st.columns(2)
    n_seeds = c5.number_input("Seeds", 1, 10, d["n_seeds"], key="s_seeds", persist_state=PERSIST,
                              help="Each λ is trained with the same n seeds as `bat fit --seeds n`; 3–5 give a "
                                   "meaningful mean ± std")
    start = start_lambdas(d)
    lams = c6.multiselect("λ values (besides the λ=0 baseline)", sorted(set(LAMBDA_CHOICES) | set(start)), start,
                          key="s_lams",
                          persist_state=PERSIST, accept_new_options=True,
                          help="Weight of the teacher in the loss. Type another value in (0, 1] to add it")
    gamma = st.selectbox("Background correction γ", GAMMA_OPTIONS, 0, key="s_gamma", persist_state=PERSIST,
                         format_func=lambda g: "auto: chosen on dev data" if g == GAMMA_AUTO else f"{g:g}" + (
                             " (off)" if g == 0 else ""),
                         help="The target comes from z − γ·log p(word): it lowers the words every neighbourhood "
                              "shares, which otherwise crowd into many topics. auto trains the first seed at a few γ "
                              "and keeps the best dev NPMI among those that keep topic uniqueness (within 0.025 of "
                              "the baseline on that seed, room for the other seeds' spread); if none does, it tries "
                              "the same γ with the teacher's weight fading towards 0 over the training (long "
                              "documents only), then with the teacher's target clipped to c = 2 (whatever c says "
                              "above), then on up to 3 seeds, averaged")
    gamma = None if gamma in (GAMMA_AUTO, None) else float(gamma)  # None: the γ rule chooses

# ---------------------------------------------------------------------------------------------- validate
lambdas, errors = training.lambda_grid(lams)
teacher, cached = "", False
try:
    tcfg = teacher_config(model, mode, head, kind, max_len, t_epochs, d["teacher_head_epochs"])
    scfg = StudentConfig(n_topics=int(k), epochs=int(epochs), student=student)
    dcfg = DistillConfig(temperature=float(temp), clip=float(clip) or None, background_correction=gamma)
    check_trainable(corpus, scfg)  # K against this corpus: said now, not after Train is pressed
except BatError as e:
    errors.append(str(e))
else:
    teacher, cached = training.teacher_line(corpus, tcfg)
    tcol.caption(f"Target from: **{teacher}**" + (" (trained for these settings: read from the cache)." if cached
                                                   else ". Trained once per corpus and settings, then cached."))
    ahead = prebuild.status(corpus, tcfg)  # the default teacher, built in the background since the corpus loaded
    if ahead is not None and not busy:
        with tcol:
            progress.prebuild_line(ahead)
for e in errors:
    st.error(e)

seeds = seed_list(int(n_seeds))
if busy and job is not None and job.corpus_hash == corpus.hash and isinstance(job.watch, GridWatch):
    # the form may not show the running job's settings (a reloaded page starts from the defaults): say what runs
    jp = job.watch.plan
    first = jp.members[0].student
    job_lams, job_seeds = sorted({m.lam for m in jp.members}), list(dict.fromkeys(m.seed for m in jp.members))
    asked = {"λ": lambdas, "seeds": seeds, "K": int(k), "epochs": int(epochs), "T": float(temp),
             "c": float(clip) or None, "teacher": tcfg if not errors else None}
    ran = {"λ": job_lams, "seeds": job_seeds, "K": first.n_topics, "epochs": first.epochs,
           "T": next((m.distill.temperature for m in jp.members if m.lam > 0), float(temp)),
           "c": next((m.distill.clip for m in jp.members if m.lam > 0), float(clip) or None), "teacher": jp.teacher}
    if asked != ran:
        now = plan_sentence(job_lams, job_seeds, jp.gamma is not None)
        st.markdown(f"**Training now:** {now} K = {first.n_topics}, {first.epochs} epochs. The settings above are "
                    "for the next training, once this one ends.")
st.markdown(f"**Plan:** {plan_sentence(lambdas, seeds, gamma is None)}")
with st.expander("The whole plan"):
    details = plan_details(lambdas, seeds, gamma is None, teacher, cached)
    st.markdown("\n".join(f"- {line}" for line in details))
if not errors and not busy:  # how long it will take here (computed aside: never blocks the page)
    progress.estimate_line(corpus, (tcfg, scfg, dcfg, lambdas, seeds), runs.cache().root)

b1, b2 = st.columns([1, 4])
clicked = b1.button("Train", key="train", type="primary", disabled=busy or bool(errors))
if busy and job is not None and job.corpus_hash != corpus.hash:
    b2.caption("Another training is running; it finishes first.")
if clicked and not errors:
    try:
        job = training.start_training(corpus, tcfg, scfg, dcfg, lambdas, seeds, label=f"Training on {corpus.name}")
    except BatError as e:
        st.error(str(e))
    else:  # draw the page again as it is while a job runs: Train disabled, no estimate of settings not training
        st.rerun()

watch = progress.live_watch(job, corpus)
if job is not None and job.running:
    progress.job_panel(job, "train_panel", follow=watch is not None)  # the runs below fill in as they land
else:
    progress.job_outcome(job, corpus)
    if job is not None and job.state == "done" and job.corpus_hash == corpus.hash:
        st.page_link("views/compare.py", label="Open the comparison: baseline vs BAT →")

# ---------------------------------------------------------------------------------------------------- results
saved = runs.all_runs(corpus)
if not saved:
    st.info("No runs for this corpus yet: they show here as the job trains them (this page updates itself)."
            if watch is not None else "No runs for this corpus yet: press **Train**.")
    st.stop()

st.divider()
st.subheader("Trained runs for this corpus")
last = progress.last_job()
fruns = picks.family_picker(families(saved), saved, keys.TRAIN_FAMILY,
                            prefer=lambda fam: last is not None and any(r.key in last.run_keys for r in fam),
                            watch=progress.job_watch(job, corpus), job_id=job.id if job is not None else "")
if watch is not None and watch.early is not None and any(r.key == watch.early.key for r in fruns):
    st.caption(f"Provisional: the default teacher is still being chosen; this first look (γ = "
               f"{watch.first_look_gamma:g}) was trained on the teacher it builds when the encoder does not help, "
               "which needs no encoding. The default teacher's runs replace it as they land.")
elif watch is not None and any(watch.provisional(r.key) for r in fruns if r.lam > 0):
    st.caption(f"Provisional: γ is not chosen yet; these are the first look's runs (γ = {watch.first_look_gamma:g}). "
               "The chosen γ's runs replace them as they land.")
df = plots.metrics_frame(fruns)
show = df.drop(columns=["key"]).rename(columns={"lam": "λ", "npmi": "test NPMI", "dev_npmi": "dev NPMI",
                                                "tu": "topic uniqueness", "best_epoch": "best epoch",
                                                "wall_time_s": "time (s)"})
fmt = {"test NPMI": "%.3f", "dev NPMI": "%.3f", "topic uniqueness": "%.3f", "perplexity": "%.0f", "time (s)": "%.1f",
       "λ": "%g"}
st.dataframe(show, hide_index=True, key="runs_table",
             column_config={c: st.column_config.NumberColumn(c, format=f) for c, f in fmt.items()})
hist = {f"{run_label(r)} seed {r.seed}": r.history for r in sorted(fruns, key=lambda r: (r.lam, r.seed))}
metric = "dev_npmi"
if any("tu" in h for runs_h in hist.values() for h in runs_h):  # runs trained before TU was logged per epoch have none
    metric = st.radio("Per epoch", list(plots.HISTORY_METRICS), horizontal=True, key="train_history_metric",
                      format_func=plots.HISTORY_METRICS.get)
st.plotly_chart(plots.training_history(hist, metric), key="train_history")

st.markdown("**Export a run**")
by_label = {}
for r in sorted(fruns, key=lambda r: (r.lam, r.seed)):
    by_label.setdefault(f"{run_label(r)} · seed {r.seed}", r)
sel = st.selectbox("Run", list(by_label), key="train_export_run", label_visibility="collapsed")
export_buttons(by_label[sel], corpus, "train")
if any(r.lam > 0 for r in fruns) and not (job is not None and job.state == "done"):
    st.page_link("views/compare.py", label="Compare baseline and BAT →")
