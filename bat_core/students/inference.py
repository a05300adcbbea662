"""Document-topic proportions θ from a trained student: after training, and for new documents (``transform``).

θ_d = softmax(μ_d): the encoder in eval mode (no dropout, no sampling, var_scale 0), as Scholar reports it. Eval-mode
BatchNorm uses running statistics, and with momentum 1e-3 those are far from converged after a few hundred steps
(a 300-document corpus gets ~800 updates in 200 epochs, so ~45% of the initial (0, 1) values remain). So after
training, :func:`refresh_bn_statistics` replaces them by the exact statistics of the training set under the same
eval-mode encoder: then eval-mode θ of the training documents is what BatchNorm with the batch statistics of the
whole training set gives. Only the encoder's BatchNorms (μ, log σ²) are refreshed: η's BatchNorm only matters while
p_bn > 0, and θ, the reconstruction and perplexity all use p_bn = 0.

Teacher logits fed to the encoder (encode_logits ≠ off) are clipped at inference exactly as in training
(``clip_logits`` with the run's c), for every document: the encoder must see inputs from the distribution it was
trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from ..base.errors import BatError
from ..runs.store import Run
from .layers import SparseRows
from .loss import clip_logits
from .prodlda import student_class
from .scholar import Scholar

# rows (corpus or input row ids of one chunk) → raw teacher logits, float32 (len(rows)×V)
LogitsFn = Callable[[np.ndarray], np.ndarray]


def member_logits(z: np.ndarray, counts: sp.csr_matrix, clips: Sequence[float | None],
                  device: torch.device) -> torch.Tensor:
    """The encoder's teacher-logit input for every member: raw logits z (B×V) clipped with each member's c."""
    zt = torch.from_numpy(np.asarray(z, dtype=np.float32)).to(device)
    x = torch.from_numpy(counts.toarray().astype(np.float32, copy=False)).to(device) if any(clips) else None
    per_clip = {c: clip_logits(zt, x, c) if c else zt for c in dict.fromkeys(clips)}
    return torch.stack([per_clip[c] for c in clips])


def _chunks(n: int, size: int) -> list[np.ndarray]:
    return [np.arange(s, min(s + size, n)) for s in range(0, n, size)]


def _inputs(model: Scholar, counts: sp.csr_matrix, rows: np.ndarray, logits: LogitsFn | None,
            clips: Sequence[float | None], device: torch.device) -> tuple[SparseRows, torch.Tensor | None]:
    block = counts[rows]
    x = SparseRows.build([block], [0] * model.n_members, model.vocab_size, device)
    if model.encode_logits == "off":
        return x, None
    if logits is None:
        raise BatError("this student reads teacher logits (encode_logits ≠ off): give the teacher's logits too")
    return x, member_logits(logits(rows), block, clips, device)


@torch.no_grad()
def refresh_bn_statistics(model: Scholar, counts: sp.csr_matrix, logits: LogitsFn | None = None,
                          clips: Sequence[float | None] | None = None, batch: int = 1000) -> None:
    """Set the encoder BatchNorms' running mean and (population) variance to their exact values over ``counts``."""
    device = model.beta.device
    clips = clips or [None] * model.n_members
    model.eval()
    sums: dict[str, list[torch.Tensor]] = {}
    for rows in _chunks(counts.shape[0], batch):
        x, z = _inputs(model, counts, rows, logits, clips, device)
        h_mu, h_lv = model.encode_pre_bn(model.encoder_input(x, z))
        for name, h in (("mean_bn", h_mu), ("logvar_bn", h_lv)):
            h = h.double()
            s = sums.setdefault(name, [torch.zeros_like(h[:, 0]), torch.zeros_like(h[:, 0])])
            s[0] += h.sum(dim=1)
            s[1] += (h * h).sum(dim=1)
    n = counts.shape[0]
    for name, (s1, s2) in sums.items():
        bn = getattr(model, name)
        mean = s1 / n
        bn.running_mean.copy_(mean.float())
        bn.running_var.copy_((s2 / n - mean * mean).clamp(min=0).float())


@torch.no_grad()
def encode_theta(model: Scholar, counts: sp.csr_matrix, logits: LogitsFn | None = None,
                 clips: Sequence[float | None] | None = None, batch: int = 1000) -> np.ndarray:
    """θ = softmax(μ) for every row of ``counts`` and every member: float32 (M, N, K)."""
    device = model.beta.device
    clips = clips or [None] * model.n_members
    model.eval()
    out = []
    for rows in _chunks(counts.shape[0], batch):
        x, z = _inputs(model, counts, rows, logits, clips, device)
        theta, *_ = model(x, z, decode_bn=False)
        out.append(theta.float().cpu().numpy())
    if not out:
        return np.zeros((model.n_members, 0, model.n_topics), dtype=np.float32)
    return np.concatenate(out, axis=1)


def student_from_run(run: Run) -> Scholar:
    """The trained student of a saved run (weights from ``run.state``), on the CPU, in eval mode."""
    if not run.state:
        raise BatError("this run was saved without the student's weights (an older version); train it again "
                       "to transform new documents")
    s, d = run.config["student"], run.config["distill"]
    cls = student_class(s.get("student", "scholar"))  # Scholar runs store no "student" (config.StudentConfig.to_dict)
    model = cls.from_member_states([run.state], run.background, int(s["emb_dim"]), float(s["alpha"]),
                                   float(s["dropout"]), d.get("encode_logits", "off"))
    return model.eval()


def transform(run: Run, counts: sp.spmatrix | np.ndarray, teacher_logits: np.ndarray | None = None) -> np.ndarray:
    """θ (N×K, rows sum to 1) for new bag-of-words rows over the run's vocabulary (same columns as the corpus).

    ``teacher_logits`` (N×V raw logits for the same rows) are needed only by students that encode them.
    """
    x = sp.csr_matrix(counts, dtype=np.float32)
    model = student_from_run(run)
    if x.shape[1] != model.vocab_size:
        raise BatError(f"the documents have {x.shape[1]} columns but the run's vocabulary has {model.vocab_size} "
                       "words; vectorise them with the corpus vocabulary")
    logits = None
    if teacher_logits is not None:
        z = np.asarray(teacher_logits, dtype=np.float32)
        logits = lambda rows: z[rows]
    clip = run.config["distill"].get("clip")
    return encode_theta(model, x, logits, [clip])[0]
