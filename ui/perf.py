"""Keeping the app fast: warming the engine up, and keeping reruns cheap.

Streamlit used to run a full ``gc.collect(2)`` after every script run (``runner.postScriptGC``, now off in
``.streamlit/config.toml``). With torch, transformers, plotly and pandas imported that full collection walks over a
million long-lived objects, which took most of a Compare rerun (about 1 s of the 1.5 s from a slider key press to an
idle page on a loaded 2-core machine). :func:`freeze_once` moves the objects alive at that point (modules, classes,
caches: things that are never garbage) into the permanent generation, so any later full collection only looks at
what was allocated since. Objects created later are collected as before.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_frozen = False
_warming: threading.Thread | None = None


def freeze_once() -> bool:
    """``gc.freeze()`` the heap once per process (after a page has imported everything); True when it froze now."""
    global _frozen
    with _lock:
        if _frozen:
            return False
        gc.collect()
        gc.freeze()
        _frozen = True
        return True


def warm_engine() -> None:
    """Import the default teacher's code (transformers and the encoder's module) in a background thread, once per
    process: the first training then starts without those seconds of imports, which run while the user reads the
    first page. Every later call (each rerun of app.py) returns at once.

    Not when the app prepares the defaults in the background (``ui.prebuild``, on unless ``BAT_PREBUILD_TEACHER=0``):
    that build starts with the first look, which needs none of these imports, and imports them itself for the teacher
    right after; waiting for a warm-up first cost the first look 4.6 s on the demo (two threads must not import
    transformers at once). When the default teacher is already cached, a Train that needs the encoder imports it
    then (≈ 3 s)."""
    global _warming
    with _lock:
        if _warming is not None:
            return
        from bat_core.teachers.warmup import warm_up
        from ui.defaults import defaults, prebuild_teacher

        if prebuild_teacher():
            return

        _warming = threading.Thread(target=warm_up, args=(defaults()["teacher_model"],), name="bat-warm-up",
                                    daemon=True)
        _warming.start()


def wait_warm(timeout: float = 60.0) -> None:
    """Let a running warm-up finish before a training imports the same modules from another thread (two threads
    importing one package at once is where Python's import locks can trip)."""
    thread = _warming
    if thread is not None:
        thread.join(timeout)
