"""The shape of the code: no import circles in the engine, no Streamlit in it, small files, no sys.path tricks."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "bat_core"
MAX_LINES = 400
# teacher.py keeps its training code until a change in flight to _fit_frozen / build_teacher has landed; then it
# is split like the encoder was (bat_core/encoder.py) and leaves this list.
TOO_LONG_FOR_NOW: set[str] = set()


def _engine_imports() -> dict[str, set[str]]:
    """Module → the engine modules it imports (at the top or inside functions)."""
    mods = {p.stem for p in ENGINE.glob("*.py")}
    graph = {}
    for p in ENGINE.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    deps |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
                elif node.module and node.module.startswith("bat_core."):
                    deps.add(node.module.split(".")[1])
        graph[p.stem] = deps & mods
    return graph


def test_no_import_circles_in_the_engine():
    graph = _engine_imports()
    done: set[str] = set()

    def visit(mod: str, path: list[str]) -> None:
        for dep in sorted(graph[mod]):
            assert dep not in path, f"import circle: {' → '.join([*path[path.index(dep):], dep])}"
            if dep not in done:
                visit(dep, [*path, dep])
        done.add(mod)

    for mod in sorted(graph):
        visit(mod, [mod])


def test_leaf_modules_import_nothing_of_ours():
    graph = _engine_imports()
    # io may raise the engine's one error type (errors.py imports nothing either)
    assert graph["distributed"] == set() and graph["io"] <= {"errors"} and graph["errors"] == set()


def test_no_streamlit_in_the_engine_and_no_sys_path_tricks():
    for p in sorted([*ENGINE.glob("*.py"), *(ROOT / "ui").glob("*.py"), *(ROOT / "views").glob("*.py"),
                     ROOT / "app.py", *(ROOT / "tests").glob("*.py")]):
        text = p.read_text(encoding="utf-8")
        assert "sys.path.insert" not in text or p.name == "test_structure.py", p
        if p.parent == ENGINE:
            tree = ast.parse(text)
            names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
            assert not any(n == "streamlit" or n.startswith("streamlit.") for n in names), p


def test_files_stay_small():
    for folder in ("bat_core", "ui", "views"):
        for p in sorted((ROOT / folder).glob("*.py")):
            rel = p.relative_to(ROOT).as_posix()
            n = len(p.read_text(encoding="utf-8").splitlines())
            assert n <= MAX_LINES or rel in TOO_LONG_FOR_NOW, f"{rel} has {n} lines (at most {MAX_LINES})"


def test_pages_are_only_the_declared_pages():
    """No pages/ folder (Streamlit would run its scripts without app.py on a fresh server's first request), and
    every page script in views/ is declared in app.py."""
    assert not (ROOT / "pages").exists()
    app = (ROOT / "app.py").read_text(encoding="utf-8")
    for p in (ROOT / "views").glob("*.py"):
        assert f'st.Page("views/{p.name}"' in app, p.name
