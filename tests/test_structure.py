"""The shape of the code: engine layers that import only downwards, no Streamlit in the engine, no sys.path tricks."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "bat_core"
# Lowest first. A module may import its own layer's package and any layer below, never one above; the two packages
# of one layer (students, teachers) never import each other. Modules at the top of the package are layers of their own.
LAYERS: list[set[str]] = [
    {"base"},
    {"config"},
    {"data"},
    {"evaluation"},
    {"runs"},
    {"students", "teachers"},
    {"training"},
    {"grid"},
    {"estimator"},
    {"explore"},
    {"cli"},
    {"__main__", "__init__"},
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def _unit(path: Path) -> str:
    """The layer unit of an engine file: its subpackage, or its own name for a module at the top of the package."""
    rel = path.relative_to(ENGINE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (imports for type hints only are not dependencies)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _engine_imports(path: Path) -> set[str]:
    """The engine modules (dotted, under bat_core) a file imports at run time, at the top or inside functions."""
    package = list(path.relative_to(ENGINE).parts[:-1])
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = [*base, *(node.module.split(".") if node.module else [])]
                names = [mod] if node.module else [[*mod, a.name] for a in node.names]
                found |= {".".join(n) for n in names}
            elif node.module and node.module.startswith("bat_core"):
                found.add(node.module.removeprefix("bat_core").lstrip("."))
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("bat_core.") for a in node.names if a.name.startswith("bat_core.")}
    return {f for f in found if f}


def test_engine_layers_import_only_downwards():
    bad = []
    for p in sorted(ENGINE.rglob("*.py")):
        unit = _unit(p)
        assert unit in RANK, f"{p.relative_to(ROOT)}: not in a layer of tests/test_structure.py"
        for dep in _engine_imports(p):
            dep_unit = dep.split(".")[0]
            if dep_unit == unit:
                continue
            if dep_unit in RANK and RANK[dep_unit] >= RANK[unit]:
                bad.append(f"{p.relative_to(ROOT)} imports bat_core.{dep}")
    assert not bad, "imports that point upwards or sideways:\n" + "\n".join(bad)


def test_base_imports_nothing_above_it():
    for p in (ENGINE / "base").glob("*.py"):
        assert all(d.startswith("base") for d in _engine_imports(p)), p


def test_no_streamlit_in_the_engine_and_no_sys_path_tricks():
    for p in sorted([*ENGINE.rglob("*.py"), *(ROOT / "ui").glob("*.py"), *(ROOT / "views").glob("*.py"),
                     ROOT / "app.py", *(ROOT / "tests").glob("*.py")]):
        text = p.read_text(encoding="utf-8")
        assert "sys.path.insert" not in text or p.name == "test_structure.py", p
        if ENGINE in p.parents:
            tree = ast.parse(text)
            names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
            assert not any(n == "streamlit" or n.startswith("streamlit.") for n in names), p


def test_every_subpackage_says_what_it_holds():
    for init in ENGINE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc.split()) >= 20, f"{init.relative_to(ROOT)} needs a paragraph on what the package holds"


def test_pages_are_only_the_declared_pages():
    """No pages/ folder (Streamlit would run its scripts without app.py on a fresh server's first request), and
    every page script in views/ is declared in app.py."""
    assert not (ROOT / "pages").exists()
    app = (ROOT / "app.py").read_text(encoding="utf-8")
    for p in (ROOT / "views").glob("*.py"):
        assert f'st.Page("views/{p.name}"' in app, p.name
