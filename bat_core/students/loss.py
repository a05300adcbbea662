"""The BAT distillation loss and teacher-logit clipping (bat-method.md section 4), as pure functions.

NL_d = λ·T² · CE(x̃_d, q^T_d) + (1 − λ) · CE(x_d, x̂_d),  x̃_d = N_d·softmax(z̃_d / T) with entries ≤ m zeroed,
where z̃ are the teacher logits clipped to ≈ c × (unique types of d) entries and q^T is the student's tempered
reconstruction. At λ = 0 the teacher term is not even computed, so the baseline is the same code path.

Every function works on the last dimension, so the same code serves one document batch (B, V) and a stack of members
(M, B, V); a temperature may be a float or a tensor broadcasting against the batch (one T per member).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .scholar import SparseRows, reconstruction

EPS = 1e-10


def clip_logits(z: torch.Tensor, x: torch.Tensor, c: float | None) -> torch.Tensor:
    """Keep ≈ c·u_d of each document's logits (u_d = its number of unique types); the rest become −inf.

    How many are kept per row follows the released code: the entries at or above the (1 − k/V) quantile with linear
    interpolation (np.quantile's default) when the logits are distinct; rows where k ≥ V are left alone. The kept
    entries are chosen by rank, not by comparing with the quantile's value: the logits store keeps the top 512 words
    of a document and gives every other word one shared tail logit, and with a threshold on those ties
    (``z < thr`` is false for all of them) nothing was clipped whenever c·u_d > 512. Ties are broken by word index.
    """
    if not c:
        return z
    V = z.shape[-1]
    k = c * (x > 0).sum(dim=-1).to(z.dtype)  # per document
    pos = (1.0 - k / V).clamp(min=0.0) * (V - 1)
    n_keep = V - pos.ceil().long().clamp(0, V - 1)  # sorted positions ≥ the quantile: the same count as the original
    order = torch.sort(z, dim=-1, descending=True, stable=True).indices
    rank = torch.empty_like(order).scatter_(-1, order, torch.arange(V, device=z.device).expand_as(order))
    clipped = z.masked_fill(rank >= n_keep.unsqueeze(-1), float("-inf"))
    return torch.where((k < V).unsqueeze(-1), clipped, z)


def teacher_target(z: torch.Tensor, x: torch.Tensor, temperature: float | torch.Tensor, clip: float | None = None,
                   min_count: float = 0.0, doc_lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The pseudo-document x̃ = N_d·softmax(z̃ / T), entries ≤ min_count set to zero.

    ``doc_lengths`` (N_d, shape of x without its last dimension) may replace a dense ``x`` when clip is off."""
    z = clip_logits(z, x, clip)
    n_d = x.sum(dim=-1, keepdim=True) if doc_lengths is None else doc_lengths.unsqueeze(-1)
    tempered = z if isinstance(temperature, float | int) and temperature == 1 else z / temperature
    target = n_d * F.softmax(tempered, dim=-1)
    return target * (target > min_count) if min_count > 0 else target


def cross_entropy(counts: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """−Σ_v counts_v · log(probs_v + 1e-10), per document."""
    return -(counts * (probs + EPS).log()).sum(dim=-1)


def reconstruction_loss(x: torch.Tensor, eta: torch.Tensor, eta_bn: torch.Tensor, p_bn: float, lam: float = 0.0,
                        temperature: float = 1.0, target: torch.Tensor | None = None) -> torch.Tensor:
    """Per-document NL_d: the plain multinomial NLL at λ = 0, the λ-mixture with the teacher term otherwise."""
    nl = cross_entropy(x, reconstruction(eta, eta_bn, p_bn))
    if lam <= 0:
        return nl
    assert target is not None, "λ > 0 needs a teacher target"
    kd = cross_entropy(target, reconstruction(eta, eta_bn, p_bn, temperature))
    return lam * temperature**2 * kd + (1 - lam) * nl


def bow_nll(x: SparseRows, recon: torch.Tensor) -> torch.Tensor:
    """CE(x, x̂) = −Σ_v x_v log(x̂_v + 1e-10) per (member, document), with x̂ = ``recon`` (M, B, V).

    The same number as ``cross_entropy(x.dense(), recon)``, but x̂ is read only where x_v > 0: the dense product
    over the ~97% zero counts is skipped.
    """
    ll = x.counts * (recon.reshape(-1)[x.flat] + EPS).log()
    out = torch.zeros(x.n_members * x.batch, device=recon.device, dtype=recon.dtype)
    return -out.index_add_(0, x.bag, ll).view(x.n_members, x.batch)
