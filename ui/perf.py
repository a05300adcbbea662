"""Keeping reruns cheap: Streamlit runs a full ``gc.collect(2)`` after every script run (``runner.postScriptGC``).

With torch, transformers, plotly and pandas imported that full collection walks over a million long-lived objects,
which took most of a Compare rerun (about 1 s of the 1.5 s from a slider key press to an idle page on a loaded
2-core machine). :func:`freeze_once` moves the objects alive at that point (modules, classes, caches: things that
are never garbage) into the permanent generation, so the collection after each run only looks at what was allocated
since. Objects created later are collected as before.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_frozen = False


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
