"""Train page: teacher and student settings, one button, live progress; results and exports when done."""

import streamlit as st

from bat_core.base.errors import BatError
from bat_core.config import DEFAULT_BAT_LAMBDA, DistillConfig, StudentConfig, TeacherConfig
from bat_core.explore import plots
from bat_core.explore.families import families, ordered, run_label
from bat_core.grid import seed_list
from bat_core.teachers.choice import median_length, short_documents_hint
from bat_core.training.selection import GAMMA_GRID, GAMMA_SEEDS
from ui import progress, runs, state, training
from ui.defaults import GAMMA_OPTIONS, LAMBDA_CHOICES, defaults
from ui.exports import export_buttons
from ui.jobs import manager
from ui.sidebar import device_name
from ui.text import md_escape

PERSIST = "session"

st.title("Train")
corpus = state.require_corpus()

d = defaults()
st.caption(f"Corpus **{md_escape(corpus.name)}**: {corpus.n_docs:,} documents, {corpus.vocab_size:,} words · "
           f"device **{device_name()}**. λ = 0 is the plain Scholar baseline; λ > 0 adds the BERT teacher's "
           "knowledge-distillation loss. Baseline and BAT use the same seeds.")

job = progress.session_job()
busy = job is not None and job.running

tcol, scol = st.columns(2, gap="large")
with tcol:
    st.subheader("Teacher (BERT autoencoder)")
    model = st.text_input("Encoder", d["teacher_model"], key="t_model", persist_state=PERSIST,
                          help="'minilm' = the MiniLM-L6 BERT that ships with the app (offline); or a local folder "
                               "with a Hugging Face encoder")
    modes = ["frozen", "top-n", "full"]
    mode = st.selectbox("Training mode", modes, modes.index(d["teacher_mode"]) if d["teacher_mode"] in modes else 0,
                        key="t_mode", persist_state=PERSIST,
                        format_func={"frozen": "frozen encoder, train the head (fast on CPU)",
                                     "top-n": "fine-tune the top layers", "full": "fine-tune everything (GPU)"}.get)
    heads = ["knn", "linear", "mlp"] if mode == "frozen" else ["linear", "mlp"]
    head = st.selectbox("Head", heads, heads.index(d["teacher_head"]) if d["teacher_head"] in heads else 0,
                        key="t_head", persist_state=PERSIST,
                        format_func={"linear": "linear layer over the vocabulary (the paper)",
                                     "mlp": "MLP (one hidden layer)",
                                     "knn": "nearest neighbours' words (k, smoothing chosen on dev)"}.get,
                        help="How the teacher turns a document embedding into a predicted bag of words")
    kinds = ["auto", "lexical", "transformer", "hybrid", "random"]
    kind = "transformer"
    if head == "knn":
        kind = st.selectbox(
            "Neighbours by", kinds, kinds.index(d["teacher_kind"]) if d["teacher_kind"] in kinds else 0,
            key="t_kind", persist_state=PERSIST,
            format_func={"auto": "auto: whichever predicts held-out documents best (recommended)",
                         "lexical": "shared words (TF-IDF; no transformer, the control)",
                         "transformer": "the encoder's embeddings",
                         "hybrid": "a mix of shared words and embeddings",
                         "random": "random vectors (null control: a teacher that knows nothing)"}.get,
            help="What makes two documents neighbours. auto compares the candidates on the dev split by "
                 "perplexity and says which it chose and what the others scored")
        hint = short_documents_hint(median_length(corpus.counts, corpus.splits["train"]))
        if hint and kind in ("auto", "lexical"):
            st.caption(hint)
    lengths = [64, 128, 256, 512]
    max_len = st.select_slider("Max length (tokens)", lengths, d["teacher_max_length"]
                               if d["teacher_max_length"] in lengths else 256, key="t_maxlen", persist_state=PERSIST,
                               help="Longer documents are split into windows of this length and averaged")
    t_epochs = d["teacher_epochs"]
    if mode != "frozen":
        t_epochs = st.number_input("Fine-tuning epochs", 1, 50, max(1, d["teacher_epochs"]), key="t_epochs",
                                   persist_state=PERSIST)
    st.caption("The teacher is trained once per corpus and settings, then read from its cache.")

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
                           help="Keep ≈ c × (word types in the document) teacher logits; 0 = no clipping")
    c5, c6 = st.columns(2)
    n_seeds = c5.number_input("Seeds", 1, 10, d["n_seeds"], key="s_seeds", persist_state=PERSIST,
                              help="Each λ is trained with the same n seeds as `bat fit --seeds n`; 3–5 give a "
                                   "meaningful mean ± std")
    start = [x for x in d["lambdas"] if 0 < x <= 1] or [DEFAULT_BAT_LAMBDA]
    lams = c6.multiselect("λ values (besides the λ=0 baseline)", sorted(set(LAMBDA_CHOICES) | set(start)), start,
                          key="s_lams",
                          persist_state=PERSIST, accept_new_options=True,
                          help="Weight of the teacher in the loss. Type another value in (0, 1] to add it")
    gamma = st.selectbox("Background correction γ", GAMMA_OPTIONS, 0, key="s_gamma", persist_state=PERSIST,
                         format_func=lambda g: "auto: chosen on dev data" if g is None else f"{g:g}" + (
                             " (off)" if g == 0 else ""),
                         help="The target comes from z − γ·log p(word): it lowers the words every neighbourhood "
                              "shares, which otherwise crowd into many topics. auto trains the first seed at a few γ "
                              "and keeps the best dev NPMI among those that keep topic uniqueness (within 0.025 of "
                              "the baseline on that seed, room for the other seeds' spread); if none does, it tries "
                              "the same γ with the teacher's weight fading towards 0 over the training, then on up "
                              "to 3 seeds, averaged")

# ---------------------------------------------------------------------------------------------- validate
errors = []
lambdas = [0.0]
for x in lams:
    try:
        v = float(x)
    except (TypeError, ValueError):
        errors.append(f"λ value {x!r} is not a number")
        continue
    if not 0 < v <= 1:
        errors.append(f"λ = {v:g} is outside (0, 1]")
    elif v not in lambdas:
        lambdas.append(v)
try:
    tcfg = TeacherConfig(model=model.strip() or "minilm", mode=mode, head=head, kind=kind, max_length=int(max_len),
                         epochs=int(t_epochs), head_epochs=d["teacher_head_epochs"])
    scfg = StudentConfig(n_topics=int(k), epochs=int(epochs), student=student)
    dcfg = DistillConfig(temperature=float(temp), clip=float(clip) or None, background_correction=gamma)
except BatError as e:
    errors.append(str(e))
for e in errors:
    st.error(e)

seeds = seed_list(int(n_seeds))
n_runs = len(lambdas) * len(seeds)
plan = f"{n_runs} run(s): λ ∈ {{{', '.join(f'{x:g}' for x in lambdas)}}} × seed(s) {', '.join(map(str, seeds))}"
if len(lambdas) > 1 and gamma is None:
    plan += (f", after {len(GAMMA_GRID) - 1} more runs at the first seed that choose γ on dev data ({len(GAMMA_GRID)} "
             f"more if no γ keeps the topics distinct, then up to {2 * len(GAMMA_GRID) + 1} per further seed, at most "
             f"{GAMMA_SEEDS - 1} seeds, if still none does)")
if len(lambdas) > 1 and not errors:
    if runs.teacher_cached(corpus, tcfg):
        plan += "; the teacher for these settings is in the cache"
    else:
        plan += f"; the teacher is trained first ({mode} mode)"
st.markdown(f"**Plan:** {plan}. Runs already trained with these settings are read from the cache.")

b1, b2 = st.columns([1, 4])
clicked = b1.button("Train", key="train", type="primary", disabled=busy or bool(errors))
if busy and job is not None and job.corpus_hash != corpus.hash:
    b2.caption("Another training is running; it finishes first.")
if clicked and not errors:
    try:
        job = training.start_training(corpus, tcfg, scfg, dcfg, lambdas, seeds, label=f"Training on {corpus.name}")
        st.session_state["train_family"] = {"k": int(k), "epochs": int(epochs)}
        busy = True
    except BatError as e:
        st.error(str(e))

if job is not None and job.running:
    progress.job_panel(job, "train_panel")
else:
    progress.job_outcome(job)
    if job is not None and job.state == "done" and job.corpus_hash == corpus.hash:
        st.page_link("views/compare.py", label="Open the comparison: baseline vs BAT →")

# ---------------------------------------------------------------------------------------------------- results
saved = runs.all_runs(corpus)
if not saved:
    st.info("No runs for this corpus yet. Press **Train** (the defaults take about a minute on a laptop CPU).")
    st.stop()

st.divider()
st.subheader("Trained runs for this corpus")
fams = families(saved)
fam_keys, fam_labels = ordered(fams, saved)
last = manager().get(st.session_state.get("job_id"))
default = 0
if last is not None and last.run_keys:
    for i, fk in enumerate(fam_keys):
        if any(r.key in last.run_keys for r in fams[fk]):
            default = i
            break
fk = fam_keys[0] if len(fam_keys) == 1 else st.selectbox(
    "Settings", fam_keys, default, format_func=fam_labels.get, key="train_family_pick")
fruns = fams[fk]
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
