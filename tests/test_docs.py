"""The docs name only what exists, and the README stays a newcomer's first screen.

* docs/architecture.md: every module path (``bat_core/x/y.py``, a package folder ``bat_core/x/``, or dotted
  ``bat_core.x.y``), every dotted name (``bat_core.x.y.name``), every name in a module table's row (the first cell
  names the module, the other cells its functions, classes and constants in backticks) and every ``def`` / ``class``
  in a code block under a ``# bat_core/x/y.py`` comment exists in the code. Other names inside code blocks are
  skipped (they are signatures and field lists, not claims about modules).
* README.md and docs/results.md: every engine name, file and link they give exists.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
README = ROOT / "README.md"
RESULTS = ROOT / "docs" / "results.md"

TICKED = re.compile(r"`([^`\n]+)`")
MODULE_PATH = re.compile(r"^bat_core/(?:[A-Za-z_]\w*/)*(?:[A-Za-z_]\w*\.py)?$")  # a module file or a package folder
DOTTED = re.compile(r"^bat_core(?:\.[A-Za-z_]\w*)+$")
NAME = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?$")  # a module attribute, or Class.attribute
IN_CODE_PATH = re.compile(r"bat_core/(?:[A-Za-z_]\w*/)*[A-Za-z_]\w*\.py|bat_core(?:\.[A-Za-z_]\w*)+")
FILE_ENDINGS = {"py", "json", "jsonl", "md", "csv", "tsv", "txt", "zip", "png", "html", "safetensors"}
UNRUNNABLE = {"bat_core.__main__"}  # importing it runs the CLI; its file is checked instead


def _module_file(dotted: str) -> Path | None:
    """The file of an engine module (``bat_core.x.y``), or None when there is none."""
    base = ROOT.joinpath(*dotted.split("."))
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def _has(obj: object, attr: str) -> bool:
    """``obj.attr`` exists: an attribute, or a dataclass field without a default (not a class attribute)."""
    return hasattr(obj, attr) or attr in getattr(obj, "__dataclass_fields__", {})


def resolve(dotted: str) -> bool:
    """Whether ``bat_core.x.y[.name[.attr]]`` exists: the longest prefix that is a module, then attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        mod_name = ".".join(parts[:i])
        if _module_file(mod_name) is None:
            continue
        if mod_name in UNRUNNABLE:
            return i == len(parts)
        obj: object = importlib.import_module(mod_name)
        for attr in parts[i:]:
            if not _has(obj, attr):
                return False
            obj = getattr(obj, attr, None)
        return True
    return False


def _path_exists(path: str) -> bool:
    """A module file or package folder named as ``bat_core/x/y.py`` or ``bat_core/x/``, and importable."""
    target = ROOT / path
    if path.endswith("/"):
        return (target / "__init__.py").is_file()
    return target.is_file() and resolve(path.removesuffix(".py").replace("/", "."))


def _is_name(token: str) -> bool:
    return bool(NAME.match(token)) and token.rsplit(".", 1)[-1] not in FILE_ENDINGS


def _attr_exists(module: str, name: str) -> bool:
    return resolve(f"{module}.{name}")


def _at_home(module: str, name: str) -> bool:
    """A function or class named in a module's row is defined there, not only imported (a package's
    ``__init__.py`` row lists what the package exports, wherever it is defined)."""
    if module == "bat_core" or module.endswith("__init__") or module in UNRUNNABLE:
        return True
    obj = getattr(importlib.import_module(module), name.split(".")[0], None)
    return not (inspect.isfunction(obj) or inspect.isclass(obj)) or obj.__module__ == module


def _code_line(line: str, module: str, cls: str | None) -> tuple[str | None, str | None]:
    """A line of a code block under ``# bat_core/x/y.py``: (the class it opens or stays in, a missing name or None)."""
    if m := re.match(r"^class (\w+)", line):
        return m.group(1), (None if _attr_exists(module, m.group(1)) else f"{module}.{m.group(1)}")
    if m := re.match(r"^def (\w+)\(", line):
        return None, (None if _attr_exists(module, m.group(1)) else f"{module}.{m.group(1)}")
    if (m := re.match(r"^\s+def (\w+)\(", line)) and cls:
        name = f"{cls}.{m.group(1)}"
        return cls, (None if _attr_exists(module, name) else f"{module}.{name}")
    return cls, None


def _code_paths(line: str) -> list[str]:
    """The engine paths and dotted names in a line of a code block that do not exist."""
    return [t for t in IN_CODE_PATH.findall(line)
            if not (_path_exists(t) if t.endswith(".py") else resolve(t))]


def _prose_line(line: str) -> list[str]:
    """The module paths and dotted names of a line outside code, and the names of a module table's row, that do not
    exist (or, for a row's functions and classes, are not defined in that module)."""
    missing = [t for t in TICKED.findall(line)
               if (MODULE_PATH.match(t) and not _path_exists(t)) or (DOTTED.match(t) and not resolve(t))]
    cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
    first = TICKED.findall(cells[0]) if cells else []
    if first and MODULE_PATH.match(first[0]) and first[0].endswith(".py"):
        module = first[0].removesuffix(".py").replace("/", ".")
        for token in (t for cell in cells[1:] for t in TICKED.findall(cell) if _is_name(t)):
            if not _attr_exists(module, token):
                missing.append(f"{module}.{token}")
            elif not _at_home(module, token):
                missing.append(f"{module}.{token} (defined elsewhere: name its own module)")
    return missing


def missing_names(text: str) -> list[str]:
    """Every name ``text`` (architecture.md's conventions, see the module docstring) gives that the code lacks."""
    missing: list[str] = []
    in_code, module, cls = False, None, None  # module: of the current code block, from a ``# bat_core/…py`` line
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_code, module, cls = not in_code, None, None
            continue
        if not in_code:
            missing += [f"line {n}: {m}" for m in _prose_line(line)]
            continue
        missing += [f"line {n}: {m}" for m in _code_paths(line)]
        comment = line.strip().startswith("#") and IN_CODE_PATH.search(line)
        if comment and comment.group().endswith(".py"):
            module, cls = comment.group().removesuffix(".py").replace("/", "."), None
        elif module is not None:
            cls, absent = _code_line(line, module, cls)
            if absent:
                missing.append(f"line {n}: {absent}")
    return missing


def test_architecture_names_only_what_exists():
    missing = missing_names(ARCHITECTURE.read_text(encoding="utf-8"))
    assert not missing, "docs/architecture.md names what the code lacks:\n" + "\n".join(missing)


def test_architecture_covers_every_engine_module():
    """Every module of the engine has a row (a new module is described where a reader looks for it)."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    named = set(re.findall(r"^\| `(bat_core/[\w/]+\.py)` \|", text, flags=re.M))
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "bat_core").rglob("*.py")
               if p.name != "__init__.py" or p.parent.name == "bat_core"}
    assert not modules - named, f"modules without a row in docs/architecture.md: {sorted(modules - named)}"


def test_the_check_finds_a_missing_name():
    """The checker itself: a name that does not exist is reported in prose, in a module table and in a code block,
    and so is a table's name that its module only imports."""
    text = "\n".join([
        "See `bat_core.grid.plan` and `bat_core.grid.no_such_function`, `bat_core/no_such_module.py`.",
        "| module | holds |",
        "|---|---|",
        "| `bat_core/grid.py` | `plan`, `execute`, `NoSuchClass`, `summary.json` |",
        "| `bat_core/data/corpus.py` | `Corpus`, `remove_boilerplate` |",
        "```python",
        "# bat_core/runs/store.py",
        "class Run:",
        "    def topic_word(self) -> np.ndarray",
        "    def no_such_method(self) -> None",
        "def run_key(corpus_hash, teacher_key, student, distill) -> str",
        "def no_such_helper() -> None",
        "```",
    ])
    found = "\n".join(missing_names(text))
    for name in ("bat_core.grid.no_such_function", "bat_core/no_such_module.py", "bat_core.grid.NoSuchClass",
                 "bat_core.runs.store.Run.no_such_method", "bat_core.runs.store.no_such_helper",
                 "bat_core.data.corpus.remove_boilerplate (defined elsewhere"):
        assert name in found, name
    for name in ("grid.plan", "grid.execute", "summary", "store.Run\n", "topic_word", "run_key", "corpus.Corpus"):
        assert name not in found + "\n", name


def test_readme_is_a_first_screen():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; keep it to 150 (details go to docs/)"
    head = "\n".join(lines[:30])
    assert "make app" in head and "make test" in head, "the two commands belong in the README's first 30 lines"


@pytest.mark.parametrize("doc", [README, RESULTS], ids=lambda p: p.name)
def test_links_files_and_engine_names_exist(doc: Path):
    """Links, repository paths (bat_core/, benchmarks/, docs/, tests/), result files named bare in results.md, and
    dotted engine names: all exist."""
    text = doc.read_text(encoding="utf-8")
    missing = []
    for link in re.findall(r"\]\(([^)#\s]+)\)", text):
        if "://" not in link and not (doc.parent / link).exists():
            missing.append(link)
    for token in TICKED.findall(text):
        for word in token.split():
            word = word.rstrip(",;:)")
            if any(c in word for c in "*<>{}…"):
                continue
            if word.startswith(("bat_core/", "benchmarks/", "docs/", "tests/")):
                if not (ROOT / word).exists():
                    missing.append(word)
            elif DOTTED.match(word):
                if not resolve(word):
                    missing.append(word)
            elif doc == RESULTS and "/" not in word and word.rsplit(".", 1)[-1] in {"md", "json", "jsonl"}:
                if not (ROOT / "benchmarks" / "results" / word).exists() and word != "summary.json":
                    missing.append(word)
    assert not missing, f"{doc.name} names what does not exist: {missing}"
