"""Warming the engine up: the teacher's imports ahead of a first training (the app calls it at start)."""

from __future__ import annotations


def warm_up(model: str = "minilm") -> None:
    """Import the teacher's code and its encoder class ahead of a first training (≈ 3 s of imports on a 2-core CPU:
    transformers and the model's module), so that an app can do it while the user still looks at the corpus.

    Loads no weights and never raises: a model that cannot be resolved fails later, with its own message, when a
    teacher is actually built."""
    try:
        import transformers

        from .build import build_teacher  # noqa: F401 - the import is the point
        from .encoder import resolve_model

        source, local = resolve_model(model)
        if local:
            config = transformers.AutoConfig.from_pretrained(source, local_files_only=True)
            for name in getattr(config, "architectures", None) or []:
                getattr(transformers, name, None)  # transformers imports a model's module on first access
    except Exception:  # noqa: BLE001 - a warm-up; the real load reports any problem
        return
