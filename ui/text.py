"""Showing user text safely inside ``st.markdown``."""

from __future__ import annotations

import html
import re


def md_escape(text: str) -> str:
    """Show user text literally inside st.markdown (no markdown, no HTML)."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|>~$])", r"\\\1", html.escape(text, quote=False))
