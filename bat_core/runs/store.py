"""A :class:`Run` is one trained student (λ, seed, K, …): what the views read. Saved as safetensors + JSON.

Runs are cached by a key derived from the corpus hash, the teacher key and the student/distillation settings, so
moving the λ slider back to a value already trained is a file read, not a training.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from ..base.io import atomic_dir
from ..evaluation.align import softmax_rows

STATE_PREFIX = "state."  # student weights sit next to beta/theta in arrays.safetensors under this prefix


# Bumped whenever the trainer gives other results for the same settings, so that a cache never serves a run
# trained by older code under a new run's name. 2: per-seed generators, sparse encoder input, BN statistics refreshed.
# 3: the checkpoint is chosen on the training split where the dev split is too sparse to score it (short texts).
TRAINER_VERSION = 3


def run_key(corpus_hash: str, teacher_key: str | None, student: dict, distill: dict) -> str:
    blob = json.dumps({"corpus": corpus_hash, "teacher": teacher_key, "student": student, "distill": distill,
                       "trainer": TRAINER_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Run:
    key: str
    config: dict[str, Any]
    beta: np.ndarray
    background: np.ndarray
    theta: np.ndarray
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    topics: list[list[str]] = field(default_factory=list)
    # the student's weights and BN statistics (Scholar.member_state): what `transform` rebuilds the encoder from.
    # Empty for runs saved before they were kept.
    state: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def lam(self) -> float:
        return float(self.config["distill"]["lam"])

    @property
    def seed(self) -> int:
        return int(self.config["student"]["seed"])

    @property
    def n_topics(self) -> int:
        return int(self.beta.shape[0])

    def topic_word(self) -> np.ndarray:
        """Each topic's full word distribution softmax(b + B_k): what pyLDAvis shows."""
        return softmax_rows(self.background[None, :].astype(np.float64) + self.beta.astype(np.float64))

    def reconstruction(self, rows: np.ndarray) -> np.ndarray:
        """The student's predicted word distribution softmax(θ_d·Bᵀ + b) for documents ``rows`` (p_bn = 0)."""
        return softmax_rows(self.theta[rows].astype(np.float64) @ self.beta.astype(np.float64) + self.background)

    def summary(self) -> dict[str, Any]:
        """Settings, metrics and topics: what `summary.json` and the JSON export hold."""
        return {"key": self.key, "lam": self.lam, "seed": self.seed, "config": self.config, "metrics": self.metrics,
                "topics": self.topics}

    # ------------------------------------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        """Write atomically (temp folder, then rename) so a cancelled or crashed job never leaves half a run."""
        with atomic_dir(directory, guard=False) as tmp:  # a run cache's key folder
            arrays = {"beta": np.ascontiguousarray(self.beta, dtype=np.float32),
                      "background": np.ascontiguousarray(self.background, dtype=np.float32),
                      "theta": np.ascontiguousarray(self.theta, dtype=np.float32)}
            arrays.update({STATE_PREFIX + k: np.ascontiguousarray(v, dtype=np.float32) for k, v in self.state.items()})
            save_file(arrays, str(tmp / "arrays.safetensors"))
            meta = {"key": self.key, "config": self.config, "metrics": self.metrics, "history": self.history,
                    "topics": self.topics}
            (tmp / "run.json").write_text(json.dumps(meta, indent=1, default=_json_default))

    @classmethod
    def load(cls, directory: Path) -> Run:
        """The run saved in ``directory``. A damaged or foreign folder raises :class:`DamagedRun` (a ValueError),
        whatever is wrong in it: a truncated arrays file, JSON of another shape, arrays that do not fit together,
        a file that is not a regular file (a FIFO would block the read forever)."""
        directory = Path(directory)
        for name in ("run.json", "arrays.safetensors"):
            if (directory / name).exists() and not (directory / name).is_file():
                raise DamagedRun(f"{directory / name} is not a regular file")
        meta = json.loads((directory / "run.json").read_text())
        try:
            arrays = load_file(str(directory / "arrays.safetensors"))
        except SafetensorError as e:  # not an OSError: a truncated or foreign file
            raise DamagedRun(f"arrays.safetensors: {e}") from None
        if not (isinstance(meta, dict) and isinstance(meta.get("key"), str) and isinstance(meta.get("config"), dict)
                and isinstance(meta["config"].get("distill"), dict) and isinstance(meta["config"].get("student"), dict)
                and isinstance(meta.get("metrics"), dict)):
            raise DamagedRun("run.json does not hold a run's key, settings and scores")
        beta, background, theta = (arrays.get(k) for k in ("beta", "background", "theta"))
        if (beta is None or background is None or theta is None or beta.ndim != 2 or background.shape != beta.shape[1:]
                or theta.ndim != 2 or theta.shape[1] != beta.shape[0]):
            raise DamagedRun("the topics, background and θ arrays are missing or do not fit together")
        if meta["config"]["student"].get("n_topics", beta.shape[0]) != beta.shape[0]:  # a run.json of another run
            raise DamagedRun(f"run.json describes {meta['config']['student']['n_topics']} topics, the arrays "
                             f"{beta.shape[0]}")
        state = {k[len(STATE_PREFIX):]: v for k, v in arrays.items() if k.startswith(STATE_PREFIX)}
        history, topics = meta.get("history", []), meta.get("topics", [])
        return cls(key=meta["key"], config=meta["config"], beta=beta, background=background, theta=theta,
                   metrics=meta["metrics"], history=history if isinstance(history, list) else [],
                   topics=topics if isinstance(topics, list) else [], state=state)


class DamagedRun(ValueError):
    """A run folder that cannot be read as a run (the run cache retrains it; a saved model says to save it again)."""


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


class RunStore:
    """Runs on disk under ``root/<key>/``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def save(self, run: Run) -> Path:
        p = self.path(run.key)
        run.save(p)
        return p

    def remove(self, key: str) -> None:
        """Delete the run saved under ``key`` (nothing when there is none): its run.json first, so that a reader
        never finds a half-deleted run."""
        p = self.path(key)
        (p / "run.json").unlink(missing_ok=True)
        shutil.rmtree(p, ignore_errors=True)

    def has(self, key: str) -> bool:
        """Whether a run is saved under ``key`` (without reading it)."""
        return (self.path(key) / "run.json").exists()

    def load(self, key: str) -> Run | None:
        p = self.path(key)
        if not (p / "run.json").exists():
            return None
        try:
            return Run.load(p)
        except (OSError, ValueError):  # DamagedRun is a ValueError, and so is bad JSON
            return None  # a damaged cache entry is retrained, not fatal

    def listing(self) -> list[tuple[str, float]]:
        """(key, time saved) of every saved run, newest first, without reading one. A run being written meanwhile is
        left out: its temporary folder (a dot name, ``atomic_dir``) is skipped, and a folder renamed or removed
        between the listing and its stat is not an error (a page listing runs while a job saved one raised
        FileNotFoundError)."""
        try:
            entries = list(self.root.iterdir())
        except OSError:  # no cache folder yet
            return []
        found = []
        for d in entries:
            if d.name.startswith("."):
                continue
            try:
                found.append((d.name, (d / "run.json").stat().st_mtime))
            except OSError:  # no run.json (yet), or the folder went away since the listing
                continue
        return sorted(found, key=lambda x: x[1], reverse=True)

    def runs(self, corpus_hash: str | None = None) -> list[Run]:
        """Every saved run (of ``corpus_hash`` if given), newest first (:meth:`listing`)."""
        out = []
        for key, _ in self.listing():
            run = self.load(key)
            if run is not None and (corpus_hash is None or run.config.get("corpus_hash") == corpus_hash):
                out.append(run)
        return out
