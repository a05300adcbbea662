"""How every benchmark script ends: a problem a user can fix (a corpus whose package is missing, a bad value) is one
line on stderr and exit status 2, as with ``bat``; anything else is a traceback, because it is a bug."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from bat_core.base.errors import BatError


def run(main: Callable[[], int], script: str) -> None:
    """``sys.exit(main())``, with a :class:`BatError` printed as ``<script>: <message>`` and status 2."""
    try:
        sys.exit(main())
    except BatError as e:
        print(f"{Path(script).name}: {e}", file=sys.stderr)
        sys.exit(2)
