"""Small file helpers shared by every store: atomic writes, JSON with one sanitiser, arrays in safetensors.

Why atomic: the app trains in a background thread that a user can cancel, and a CLI job can be killed; a reader
must then find either the old file (or folder) or the new one, never half of one. Everything is written to a
temporary name in the same folder and renamed into place (``os.replace`` is atomic on one file system).

No pickle: arrays go through plain ``safetensors`` calls, metadata through JSON.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BatError


def jsonable(x: Any) -> Any:
    """``x`` made JSON-safe: numpy scalars and arrays become Python values, paths strings, NaN/inf ``None``."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, str | int | float | bool) or x is None:
        return x
    return str(x)


def dumps_json(obj: Any, indent: int | None = 1, sort_keys: bool = False) -> str:
    return json.dumps(jsonable(obj), indent=indent, sort_keys=sort_keys, allow_nan=False)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; a cache is readable like any other file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any, indent: int | None = 1, sort_keys: bool = False) -> Path:
    """JSON through :func:`jsonable` (so numpy values and NaN never break a write), atomically."""
    return atomic_write_text(path, dumps_json(obj, indent, sort_keys))


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def check_writable_dir(folder: Path, what: str, create: bool = True) -> None:
    """Fail before any training, not after it, when results or caches could not be written to ``folder``; ``what``
    names it for the user (a flag, a parameter). ``create``: make the folder now (a cache); else only check that it
    could be made (an output folder, which a command that fails on its input must not leave behind empty)."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise BatError(f"{what} {folder} is a file; give a folder")
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BatError(f"cannot create the folder {folder} ({what}): {e.strerror or e}") from None
    there = folder.absolute()
    while not there.exists():  # the folder that would hold it
        there = there.parent
    if not there.is_dir():
        raise BatError(f"cannot create the folder {folder} ({what}): {there} is a file")
    if not os.access(there, os.W_OK):
        raise BatError(f"cannot write to the folder {there} ({what}): permission denied or a read-only file system")


@contextmanager
def atomic_dir(directory: str | Path, guard: bool = True) -> Iterator[Path]:
    """Yield an empty temporary folder; when the block ends without error it replaces ``directory``.

    For stores made of several files (arrays + metadata) that must appear together or not at all. With ``guard``, a
    folder that exists is replaced only if it holds nothing but files of the store being written (an older copy of
    it): a user who points ``--out`` at a folder of their own must not lose it (a BatError instead; the CLI checks
    the same before it starts). The caches pass ``guard=False``: their key folders are theirs, and a stray file in
    one must not throw a trained result away.
    """
    directory = Path(directory).expanduser().resolve()  # "." and "" name the working folder, whose .name is empty
    if directory.exists() and not directory.is_dir():
        raise BatError(f"{directory} is a file, not a folder; give a new or empty folder")
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    except OSError as e:  # a read-only file system, a folder of someone else's, a path under /proc
        raise BatError(f"cannot write {directory}: {e.strerror or e}") from None
    try:
        yield tmp
        # mkdtemp makes a private (0700) folder; give the store the usual modes of a cache (fixed modes rather
        # than the umask: reading the umask means setting it, which is not thread-safe in the app)
        os.chmod(tmp, 0o755)
        for f in tmp.iterdir():
            os.chmod(f, 0o644)
        if directory.exists():
            if guard:
                check_replaceable(directory, {f.name for f in tmp.iterdir()})
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def check_replaceable(directory: Path, own: set[str]) -> None:
    """A BatError if ``directory`` holds anything but the files named ``own`` (a store about to replace it)."""
    if not directory.is_dir():
        return
    others = sorted(p.name for p in directory.iterdir() if p.name not in own or not p.is_file())
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise BatError(f"{directory} already holds other files ({shown}); nothing was overwritten: give a new or "
                       f"empty folder")


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> Path:
    """numpy arrays into one safetensors file, atomically."""
    from safetensors.numpy import save

    data = save({k: np.ascontiguousarray(v) for k, v in arrays.items()}, metadata=metadata)
    return atomic_write_bytes(path, data)


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of a safetensors file (read into memory)."""
    from safetensors.numpy import load_file

    return load_file(str(path))
