"""BAT Explorer engine: corpora, the BERT autoencoder teacher, the Scholar student, distillation, metrics and runs.

No Streamlit in here: the app's pages are thin views over this package, and so is the CLI (``python -m bat_core``).
"""

from .base.errors import BatError

__all__ = ["BatError"]
__version__ = "0.1.0"
