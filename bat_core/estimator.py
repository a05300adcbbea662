"""``BAT``: one topic model on raw texts, with scikit-learn's conventions and BERTopic's one-line use.

    model = BAT(n_topics=20).fit(texts)        # teacher built (or read from the cache), student trained
    theta = model.transform(new_texts)         # (n_docs, n_topics), rows sum to 1
    model.get_topics(n_words=10)               # the top words of each topic
    model.save("my-model")                     # safetensors + JSON; BAT.load("my-model") gives the same θ

``lam=0`` is the baseline of the same class (no teacher is built). ``fit`` goes through the grid entry point
(:func:`bat_core.grid.plan` and :func:`bat_core.grid.execute`) with one λ and one seed, so a model fitted here is the
run the app and ``bat fit`` train for the same settings, and is read from the same cache. When γ (the background
correction of the teacher's target) is left unset, the grid first trains the few runs of its dev-data rule for γ,
exactly as in the app.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .base.errors import BatError
from .base.io import atomic_dir, check_writable_dir, dumps_json
from .base.progress import Progress
from .config import (
    DEFAULT_BAT_LAMBDA,
    PAPER_SEEDS,
    CorpusConfig,
    DistillConfig,
    FitConfig,
    StudentConfig,
    TeacherConfig,
)
from .data.corpus import build_corpus, vectorize
from .evaluation.metrics import top_words
from .grid import execute, plan
from .runs.store import Run
from .students.inference import student_from_run, transform
from .teachers.choice import teacher_name
from .training.cache import Cache

MODEL_FILE = "model.json"  # next to the run's own files (runs.store.Run.save: arrays.safetensors, run.json)
FORMAT = "bat-explorer model"
FORMAT_VERSION = 1


class BAT(TransformerMixin, BaseEstimator):
    """A neural topic model (Scholar or ProdLDA) trained with knowledge distillation from a teacher (BAT).

    Parameters
    ----------
    n_topics : int, default 20
        Number of topics K.
    lam : float, default 0.5
        λ in [0, 1], the weight of the teacher's target in the reconstruction loss; 0 is the baseline (no teacher).
    teacher : str, default "auto"
        What predicts each document's words for the student to distil: ``"lexical"`` (nearest neighbours by shared
        words, TF-IDF), ``"transformer"`` (neighbours by MiniLM embeddings, or ``teacher_model``'s), ``"hybrid"``
        (both), ``"random"`` (a null control), or ``"auto"``: whichever of the first three predicts held-out dev
        documents best.
    student : str, default "scholar"
        ``"scholar"`` or ``"prodlda"``.
    epochs : int, default 200
        Student training epochs; the epoch with the best dev NPMI is kept.
    temperature : float, default 1.0
        Softmax temperature T of the teacher's target (the loss scales its term by T²).
    clip : float or None, default None
        Keep about ``clip`` × (distinct words of a document) teacher logits; None keeps all.
    gamma : float or None, default None
        Background correction γ of the target (z − γ·log p(word)); None chooses it on dev data.
    vocab_size : int, default 2000
        The most frequent words kept (after stop words, and words in more than 70 % of the documents).
    teacher_model : str, default "minilm"
        The encoder of the transformer teachers: the bundled MiniLM, a Hugging Face id or a local folder.
    seed : int, default 121958
        The student's seed (the first of the paper's seeds, as in the app and the CLI).
    device : str, default "auto"
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"`` or ``"mps"``.
    cache_dir : str or Path or None, default None
        Where teachers and runs are cached ($BAT_CACHE_DIR or ./.bat_cache when None).
    verbose : bool, default False
        Progress bars (tqdm) while fitting.

    Attributes
    ----------
    vocabulary_ : list of str
        The words of the model, in column order.
    components_ : ndarray of shape (n_topics, n_words)
        Each topic's word distribution softmax(b + B_k) (rows sum to 1).
    teacher_ : str
        What produced the distillation target, in words ("" at λ = 0).
    gamma_ : float
        The background correction γ the run trained with (chosen on dev data when ``gamma`` was None).
    clip_ : float or None
        The clip of the teacher's target the run trained with (the γ rule clips it when nothing else keeps the
        topics distinct).
    metrics_ : dict
        The run's scores: ``test_npmi``, ``dev_npmi``, ``tu`` (topic uniqueness), ``test_perplexity``, ….
    run_ : bat_core.runs.store.Run
        The trained run itself (weights, θ of the training documents, history).
    fit_params_ : dict
        The parameters the weights were fitted with (what ``save`` writes, whatever ``set_params`` did since).
    """

    def __init__(self, n_topics: int = 20, lam: float = DEFAULT_BAT_LAMBDA, teacher: str = "auto",
                 student: str = "scholar", epochs: int = 200, temperature: float = 1.0, clip: float | None = None,
                 gamma: float | None = None, vocab_size: int = 2000, teacher_model: str = "minilm",
                 seed: int = PAPER_SEEDS[0], device: str = "auto", cache_dir: str | Path | None = None,
                 verbose: bool = False) -> None:
        self.n_topics = n_topics
        self.lam = lam
        self.teacher = teacher
        self.student = student
        self.epochs = epochs
        self.temperature = temperature
        self.clip = clip
        self.gamma = gamma
        self.vocab_size = vocab_size
        self.teacher_model = teacher_model
        self.seed = seed
        self.device = device
        self.cache_dir = cache_dir
        self.verbose = verbose

    # ------------------------------------------------------------------------------------------------ fitting
    def settings(self) -> FitConfig:
        """The engine's settings for these parameters, validated (a bad value is a :class:`BatError`)."""
        try:
            return FitConfig(
                corpus=CorpusConfig(vocab_size=self.vocab_size),
                teacher=TeacherConfig(kind=self.teacher, device=self.device, model=(  # a local folder as a Path too
                    str(self.teacher_model) if isinstance(self.teacher_model, Path) else self.teacher_model)),
                student=StudentConfig(n_topics=self.n_topics, epochs=self.epochs, seed=self.seed,
                                      device=self.device, student=self.student),
                distill=DistillConfig(lam=self.lam, temperature=self.temperature, clip=self.clip or None,
                                      background_correction=self.gamma))
        except BatError as e:  # the engine's setting named as this class's parameter
            msg = str(e)
            for setting, param in _PARAM_OF_SETTING.items():
                if msg.startswith(setting + " "):
                    msg = param + msg[len(setting):]
            raise BatError(msg) from None

    def fit(self, texts: Iterable[str], y: Any = None, *, progress: Progress | None = None) -> BAT:
        """Build the corpus from ``texts``, the teacher (when λ > 0) and train the student; returns ``self``.

        Parameters
        ----------
        texts : iterable of str
            One document per string (a list, a pandas Series, a numpy array of strings …).
        y : ignored
            Accepted for scikit-learn pipelines.
        progress : callable, optional
            Hears every progress event (the app's and the CLI's hook); with ``verbose`` a tqdm bar is used instead.
        """
        cfg = self.settings()
        docs = _texts(texts)
        cache = None if self.cache_dir is None else Path(self.cache_dir).expanduser()
        check_writable_dir(Cache(cache).root, "cache_dir")  # before training: the default folder when None
        bar = None
        if progress is None and self.verbose:
            from .base.progress import TqdmProgress

            progress = bar = TqdmProgress()
        try:
            corpus = build_corpus(docs, cfg.corpus, name="texts", progress=progress)
            result = execute(plan(corpus, cfg.teacher, cfg.student, cfg.distill, [cfg.distill.lam], [cfg.student.seed]),
                             cache, progress)
        finally:
            if bar is not None:
                bar.close()
        return self._fitted(result.runs[0], corpus.vocab, cfg.corpus)

    @classmethod
    def from_run(cls, run: Run, vocabulary: list[str], settings: FitConfig, **params: Any) -> BAT:
        """A fitted model from a run trained elsewhere (``bat fit --save-model``), with the settings it used."""
        d, s, t = run.config["distill"], settings.student, settings.teacher
        model = cls(n_topics=run.n_topics, lam=run.lam, teacher=t.kind, student=s.student, epochs=s.epochs,
                    temperature=d.get("temperature", 1.0), clip=d.get("clip"),
                    gamma=d.get("background_correction"), vocab_size=settings.corpus.vocab_size,
                    teacher_model=t.model, seed=run.seed, device=s.device, **params)
        return model._fitted(run, vocabulary, settings.corpus)

    def _fitted(self, run: Run, vocabulary: list[str], corpus_config: CorpusConfig) -> BAT:
        if len(vocabulary) != run.beta.shape[1]:
            raise BatError(f"the vocabulary has {len(vocabulary)} words but the run's topics {run.beta.shape[1]}")
        self.run_ = run
        self.vocabulary_ = list(vocabulary)
        self.corpus_config_ = corpus_config
        self.components_ = run.topic_word().astype(np.float32)
        self.teacher_ = teacher_name(run.config.get("teacher"))
        self.gamma_ = float(run.config["distill"].get("background_correction") or 0.0)
        self.clip_ = run.config["distill"].get("clip")  # the γ rule's clipped round may have set it
        self.metrics_ = dict(run.metrics)
        self.fit_params_ = self.get_params()  # what `save` writes: set_params after fit changes no fitted weight
        return self

    # ------------------------------------------------------------------------------------------------ using
    def transform(self, texts: Iterable[str]) -> np.ndarray:
        """θ: each document's topic proportions, shape (n_docs, n_topics), rows summing to 1.

        Texts are tokenised as the training corpus was (same vocabulary, stop words and token rule); a text with no
        word of the vocabulary gets the proportions of an empty document.
        """
        counts = self.vectorize(texts)  # first: it says when the model is not fitted
        return transform(self.run_, counts)

    def vectorize(self, texts: Iterable[str]) -> Any:
        """The texts' bags of words over the model's vocabulary, tokenised as the training corpus was (a sparse
        n_docs × n_words count matrix): what :meth:`transform` reads. A row of zeros is a text with no word of the
        vocabulary, whose θ is the model's prior (`bat transform` counts them)."""
        self._check_fitted()
        return vectorize(_texts(texts), self.corpus_config_, self.vocabulary_)

    def get_topics(self, n_words: int = 10) -> list[list[str]]:
        """The ``n_words`` top words of every topic, ranked as the app and the metrics rank them."""
        self._check_fitted()
        if isinstance(n_words, bool) or not isinstance(n_words, int | np.integer) or n_words < 1:
            raise BatError(f"n_words must be a whole number of at least 1, not {n_words!r}")
        idx = top_words(self.run_.beta, min(int(n_words), len(self.vocabulary_)))
        return [[self.vocabulary_[i] for i in row] for row in idx]

    def _check_fitted(self) -> None:
        if not hasattr(self, "run_"):
            raise BatError("this BAT model is not fitted yet: call fit(texts) first, or BAT.load(path)")

    # ------------------------------------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the model to the folder ``path``: ``model.json`` (parameters, vocabulary, tokenising settings)
        beside the run's files (the student's weights in ``arrays.safetensors``, its settings and scores in
        ``run.json``). No pickle.

        An existing folder is replaced only when it holds a saved model and nothing else."""
        self._check_fitted()
        # the parameters the weights were fitted with: set_params(n_topics=7) after a K = 4 fit saved "7 topics"
        # beside 4 topics' weights
        params = {k: (str(v) if isinstance(v, Path) else v) for k, v in self.fit_params_.items()}
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "params": params, "vocabulary": self.vocabulary_,
                "corpus": self.corpus_config_.to_dict(), "teacher": self.teacher_}
        path = Path(path)
        with atomic_dir(path) as tmp:
            self.run_.save(tmp)  # first: it writes its files into a fresh folder of its own at tmp
            (tmp / MODEL_FILE).write_text(dumps_json(meta), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> BAT:
        """A model written by :meth:`save` (or ``bat fit --save-model``), ready to ``transform``. Whatever a damaged
        or tampered folder gets wrong is a :class:`BatError` here, not at the first ``transform``."""
        path, meta, run = _read_model(path)
        try:
            params, vocabulary = meta["params"], meta["vocabulary"]
            if not isinstance(params, dict) or not isinstance(vocabulary, list):
                raise TypeError("params must be an object and vocabulary a list")
            if not all(isinstance(w, str) for w in vocabulary) or len(set(vocabulary)) != len(vocabulary):
                raise ValueError("the vocabulary must be distinct words")
            names = cls._get_param_names()
            model = cls(**{k: v for k, v in params.items() if k in names})
            if model.n_topics != run.n_topics or not np.isclose(float(model.lam), run.lam):
                raise ValueError(f"{MODEL_FILE} says {model.n_topics} topics at λ = {model.lam}, the weights are "
                                 f"{run.n_topics} topics at λ = {run.lam:g}")
            model._fitted(run, vocabulary, CorpusConfig.from_dict(meta["corpus"]))
            if run.state:  # the weights fit the settings the run says it was trained with (none: topics only)
                student_from_run(run)
        except BatError as e:
            raise BatError(f"{path}: the saved model cannot be used ({e}); save it again") from None
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
            raise BatError(f"{path}: the saved model cannot be read ({type(e).__name__}: {e}); save it "
                           "again") from None
        return model


# the settings whose names differ from the parameters of BAT that set them
_PARAM_OF_SETTING = {"background_correction": "gamma", "kind": "teacher", "model": "teacher_model"}


def _read_model(path: str | Path) -> tuple[Path, dict[str, Any], Run]:
    """(the folder, its model file, its run) of a saved model, or a :class:`BatError` saying what is wrong."""
    if not isinstance(path, str | Path):
        raise BatError(f"give the folder of a saved model (a path), not {type(path).__name__}")
    path = Path(path).expanduser()
    if not path.is_dir():
        raise BatError(f"{path} is not a saved BAT model: give the folder that BAT.save or `bat fit --save-model` "
                       "wrote")
    model_file = path / MODEL_FILE
    try:
        if model_file.exists() and not model_file.is_file():  # a FIFO would block the read forever
            raise ValueError(f"{MODEL_FILE} is not a regular file")
        meta = json.loads(model_file.read_text(encoding="utf-8"))
        run = Run.load(path)
    except FileNotFoundError:
        raise BatError(f"{path} is not a saved BAT model (it needs {MODEL_FILE}, run.json and "
                       "arrays.safetensors)") from None
    except (ValueError, OSError) as e:
        raise BatError(f"{path}: the saved model cannot be read ({e}); save it again") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BatError(f"{path}: {MODEL_FILE} is not a BAT Explorer model file; save the model again")
    version = meta.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BatError(f"{path} holds a model file of version {version!r}, not one this version of BAT Explorer "
                       "can read")
    return path, meta, run


def _texts(texts: Iterable[str]) -> list[str]:
    """The documents as a list of strings; a single string or non-text items are a :class:`BatError`."""
    if isinstance(texts, str | bytes):
        raise BatError("give a list of documents (one string per document), not a single string")
    if isinstance(texts, Mapping) or hasattr(texts, "columns"):  # iterating them gives keys or column names
        raise BatError(f"give a list of documents, not a {type(texts).__name__}: for a table, pass its text column "
                       "(e.g. df['text'])")
    try:
        docs = list(texts)
    except TypeError:
        raise BatError(f"give a list of documents (strings), not {type(texts).__name__}") from None
    bad = next((i for i, d in enumerate(docs) if not isinstance(d, str)), None)
    if bad is not None:
        raise BatError(f"document {bad} is a {type(docs[bad]).__name__}, not a string; give one string per document")
    return docs
