"""The BAT loss the students train with, and teacher-logit clipping (bat-method.md section 4), as pure functions.

    loss_d = NL_d + KL_d
    NL_d   = λ·T² · CE(x̃_d, q^T_d) + (1 − λ) · CE(x_d, x̂_d),   x̃_d = N_d·softmax(z̃_d / T), entries ≤ m zeroed

z̃ are the teacher logits clipped to ≈ c × (unique types of d) entries, less γ·log p_unigram (the background
correction), x̂ the student's reconstruction and q^T the same reconstruction at temperature T (both mix the BN and
the plain decoder by p_bn). At λ = 0 the teacher term is not even computed, so the baseline is the same code path.
:func:`bat_loss` is the one function the trainer calls; ``tests/test_trained_loss.py`` recomputes a real training
step by hand against it.

Every function works on the last dimension, so the same code serves one document batch (B, V) and a stack of members
(M, B, V); a temperature may be a float or a tensor broadcasting against the batch (one T per member).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .layers import SparseRows
from .scholar import reconstruction

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
    # The entries of rank < n_keep in a stable descending sort, without sorting all V: the n_keep-th largest value t
    # (torch.topk of the largest n_keep, a few dozen on short texts); every entry above t is kept, and of the entries
    # equal to t the first ones by word index, as many as are left. A full sort took 14% of a short-text run.
    n_keep = n_keep.clamp(max=V)
    top = torch.topk(z, int(n_keep.max()), dim=-1, sorted=True).values
    t = top.gather(-1, (n_keep - 1).unsqueeze(-1))
    drop = z < t
    room = n_keep.unsqueeze(-1) - (z > t).sum(dim=-1, keepdim=True)
    tied = z == t
    if bool((tied.sum(dim=-1, keepdim=True) > room).any()):  # more ties at t than room: the first ones by index
        drop |= tied & (tied.cumsum(dim=-1) > room)
    clipped = z.masked_fill(drop, float("-inf"))
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


def bow_nll(x: SparseRows, recon: torch.Tensor) -> torch.Tensor:
    """CE(x, x̂) = −Σ_v x_v log(x̂_v + 1e-10) per (member, document), with x̂ = ``recon`` (M, B, V).

    The same number as ``cross_entropy(x.dense(), recon)``, but x̂ is read only where x_v > 0: the dense product
    over the ~97% zero counts is skipped.
    """
    ll = x.counts * (recon.reshape(-1)[x.flat] + EPS).log()
    out = torch.zeros(x.n_members * x.batch, device=recon.device, dtype=recon.dtype)
    return -out.index_add_(0, x.bag, ll).view(x.n_members, x.batch)


class _MixtureNll(torch.autograd.Function):
    """−Σ_v w_v·log(x̂_v + 1e-10) per row of (M, B) for sparse weights w, x̂ = (1 − p)·softmax(η) + p·softmax(η_bn).

    The number :func:`cross_entropy` gives for dense w and :func:`reconstruction`'s x̂, with the gradient written out
    so that no dense x̂ is formed: with ρ = ∂L/∂x̂ (nonzero only where w is), softmax's Jacobian gives
    ∂L/∂η_v = (1 − p)·s_v·(ρ_v − Σ_u ρ_u s_u), a multiple of s plus a sparse correction, and the same for η_bn with
    p. That is one pass over each (M, B, V) softmax backward, where autograd's chain (gather, mix, two softmax
    backwards) took about ten. With the decoder's BatchNorm from θ (``StackedBatchNorm.of_product``), a step of 10
    members on short documents (V = 2,000, 200 per batch, one thread) went from 76 to 54 ms at p_bn = 0 and from 181
    to 87 ms while p_bn > 0, side by side (docs/results.md, section 11).
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, eta: torch.Tensor, eta_bn: torch.Tensor | None,
                p_bn: float, flat: torch.Tensor, weights: torch.Tensor, bag: torch.Tensor) -> torch.Tensor:
        parts = [(F.softmax(eta, dim=-1), 1.0 - p_bn)]
        if p_bn > 0:
            assert eta_bn is not None
            parts.append((F.softmax(eta_bn, dim=-1), p_bn))
        at = [s.reshape(-1)[flat] for s, _ in parts]  # each softmax where w is nonzero
        recon = at[0] if p_bn == 0 else at[0] * (1.0 - p_bn) + at[1] * p_bn
        out = torch.zeros(eta.shape[:-1], device=eta.device, dtype=eta.dtype)
        out.view(-1).index_add_(0, bag, weights * (recon + EPS).log())
        ctx.save_for_backward(flat, weights, bag, recon, *(s for s, _ in parts), *at)
        ctx.coefs = [c for _, c in parts]  # type: ignore[attr-defined]  (each softmax's share of x̂)
        return -out

    @staticmethod
    @once_differentiable  # one backward per graph: it overwrites the saved softmaxes with the gradients
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
                 ) -> tuple[torch.Tensor | None, ...]:
        flat, weights, bag, recon, *rest = ctx.saved_tensors  # type: ignore[attr-defined]
        n = len(ctx.coefs)  # type: ignore[attr-defined]
        r = grad.reshape(-1)[bag] * weights / (recon + EPS)  # −ρ at the entries
        grads = []
        for s, s_at, c in zip(rest[:n], rest[n:], ctx.coefs, strict=True):  # type: ignore[attr-defined]
            rs = r * s_at
            a = torch.zeros(grad.numel(), device=s.device, dtype=s.dtype).index_add_(0, bag, rs)  # −Σ_u ρ_u s_u
            g = s.mul_((c * a).view(*s.shape[:-1], 1))  # in place: the softmax is not needed again
            g.view(-1).index_add_(0, flat, rs, alpha=-c)
            grads.append(g)
        return grads[0], grads[1] if n > 1 else None, None, None, None, None


def _sparse_nl(x: SparseRows, eta: torch.Tensor, eta_bn: torch.Tensor | None, p_bn: float, lam: torch.Tensor,
               target: SparseRows | None) -> torch.Tensor:
    """NL_d at T = 1 with a sparse target (or none) as one weighted sum over the sparse entries:
    (1 − λ)·CE(x, x̂) + λ·CE(x̃, x̂) = −Σ_v ((1 − λ)·x_v + λ·x̃_v)·log(x̂_v + ε), since q^T is x̂ at T = 1."""
    size = x.batch * x.vocab_size
    if target is None:
        return _MixtureNll.apply(eta, eta_bn, p_bn, x.flat, x.counts, x.bag)
    k0 = x.n_members - target.n_members  # the λ > 0 members come last
    keep = torch.ones_like(lam)
    keep[k0:] = 1 - lam[k0:]
    flat = torch.cat([x.flat, target.flat + k0 * size])
    weights = torch.cat([x.counts * keep[x.flat // size], target.counts * lam[k0:][target.flat // size]])
    bag = torch.cat([x.bag, target.bag + k0 * x.batch])
    return _MixtureNll.apply(eta, eta_bn, p_bn, flat, weights, bag)


def bat_loss(x: SparseRows, eta: torch.Tensor, eta_bn: torch.Tensor | None, p_bn: float, kl: torch.Tensor,
             lam: torch.Tensor, temperature: float | torch.Tensor = 1.0,
             target: torch.Tensor | SparseRows | None = None) -> torch.Tensor:
    """The training loss of every member of a stack: the batch mean of NL_d + KL_d, shape (M,).

    Args:
        x: the batch's counts for the M members (sparse rows).
        eta, eta_bn: the decoder's logits (M, B, V) without and with its BatchNorm (``eta_bn`` None when p_bn = 0).
        p_bn: the weight of the BN branch in x̂ and q^T (annealed from 1 to 0 over training).
        kl: KL(q(z|x) ‖ prior) per member and document (M, B), added with weight 1.
        lam: λ per member (M,), this epoch's value (after the fade).
        temperature: T for the λ > 0 members: one float, or a tensor (M_kd, 1, 1).
        target: x̃ of the λ > 0 members (M_kd, B, V), or None when no member distils. The λ > 0 members are the
            last M_kd of the stack (the trainer orders them so); the first M − M_kd train on the counts alone.
            A clipped target is mostly zeros (short texts keep ≈ c × a few words of V): given as
            :class:`SparseRows`, CE(x̃, q^T) reads q^T only where x̃ > 0 (as CE(x, x̂) does), which gives the same
            gradients as the dense product (the skipped terms are 0 · log q) and the same loss up to the order of
            the sum.

    At T = 1 with a sparse target or none (the default on short texts, and every baseline stack), the whole NL_d is
    one weighted sum over sparse entries whose gradient is written out (:class:`_MixtureNll`); otherwise autograd
    runs through the lines below. Both give the formula above (tests/test_student.py checks them against each other).

    Members never mix: each one's loss depends on its own slices only, so the sum over members can be backpropagated
    as one number.
    """
    untempered = isinstance(temperature, float | int) and temperature == 1
    if target is None or (untempered and isinstance(target, SparseRows)):  # the usual case, without a dense x̂
        return (_sparse_nl(x, eta, eta_bn, p_bn, lam, target) + kl).mean(dim=1)
    recon = reconstruction(eta, eta_bn, p_bn)  # x̂ (M, B, V)
    nl = bow_nll(x, recon)  # CE(x, x̂): (M, B)
    if target is not None:
        k0 = nl.shape[0] - (target.n_members if isinstance(target, SparseRows) else target.shape[0])
        q_t = recon[k0:] if untempered else reconstruction(
            eta[k0:], None if eta_bn is None else eta_bn[k0:], p_bn, temperature)
        t_sq = torch.as_tensor(temperature, device=nl.device, dtype=nl.dtype).reshape(-1, 1) ** 2
        lam_kd = lam[k0:, None]
        ce = bow_nll(target, q_t) if isinstance(target, SparseRows) else cross_entropy(target, q_t)
        kd_nl = (1 - lam_kd) * nl[k0:] + lam_kd * t_sq * ce
        nl = torch.cat([nl[:k0], kd_nl]) if k0 else kd_nl
    return (nl + kl).mean(dim=1)
