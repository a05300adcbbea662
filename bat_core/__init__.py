"""BAT Explorer engine: topic models trained with knowledge distillation from a teacher (BAT, Hoyle et al. 2020).

    from bat_core import BAT
    model = BAT(n_topics=20).fit(texts)     # one model on raw texts (scikit-learn conventions)
    from bat_core import grid               # the λ × seeds grid the app, the CLI and the benchmarks share

The subpackages follow the method: ``data`` (texts → corpus), ``teachers`` (what predicts a document's words),
``students`` (Scholar, ProdLDA and the one BAT loss), ``training`` (the stacked loop, settings chosen on dev data),
``evaluation`` (NPMI, topic uniqueness, alignment), ``runs`` (trained runs on disk), ``explore`` (what the app reads).
No Streamlit in here: the app's pages are thin views over this package, and so is the CLI (``python -m bat_core``).
"""

from typing import Any

from .base.errors import BatError

__all__ = ["BAT", "BatError"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``BAT`` on first use: importing any part of the package (the app's views) must not import torch."""
    if name == "BAT":
        from .estimator import BAT

        return BAT
    raise AttributeError(f"module 'bat_core' has no attribute {name!r}")
