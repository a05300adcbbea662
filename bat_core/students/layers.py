"""The stacked building blocks both students share: M independent members along a leading dimension.

- :class:`SparseRows`: a minibatch of bag-of-words rows for every member, as ``embedding_bag`` wants them (a
  document has ~60 distinct words of 2,000: the encoder's first product and the loss read only those).
- The encoder's first product x·Eᵀ with a hand-written gradient that accumulates into one buffer
  (:class:`BagOfWordsEmbedding`), and BatchNorm over each member's own batch with a fused backward
  (:class:`_BatchNormTrain`, :class:`StackedBatchNorm`; scale fixed at 1, as Scholar's BN has no scale).
- Initialisation (:func:`uniform`) and dropout (:func:`dropout`) from explicit per-seed draws, never the global RNG.

Members never mix: every operation here is per member, so member m of a stack computes what a 1-member stack computes.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class SparseRows:
    """A minibatch of bag-of-words rows for every member, as ``embedding_bag`` and the gathered loss want them.

    Member m's documents are ``rows[m]`` of one CSR matrix; ``flat`` indexes the nonzero counts inside an (M, B, V)
    tensor (used to read log x̂ only where x > 0), ``bag`` is the (member, document) each nonzero belongs to.
    """

    n_members: int
    batch: int
    vocab_size: int
    words: torch.Tensor  # (nnz_total,) word ids offset by m·V: rows of the (M·V)×E stacked embedding table
    offsets: torch.Tensor  # (M·B,) start of each (member, document) bag in ``words``
    counts: torch.Tensor  # (nnz_total,) the counts x_dv
    flat: torch.Tensor  # (nnz_total,) index into an (M, B, V) tensor viewed flat
    bag: torch.Tensor  # (nnz_total,) index into (M·B,)
    transposed: torch.Tensor | None  # xᵀ, sparse CSR (M·V)×(M·B): the embedding gradient is xᵀ·∂e

    @classmethod
    def build(cls, blocks: Sequence[sp.csr_matrix], member_block: Sequence[int], vocab_size: int,
              device: torch.device) -> SparseRows:
        """``blocks[g]`` is a B×V CSR minibatch; member m reads ``blocks[member_block[m]]``."""
        B = blocks[0].shape[0]
        M, V = len(member_block), vocab_size
        parts = []
        for blk in blocks:
            blk = sp.csr_matrix(blk)
            blk.sort_indices()
            row = np.repeat(np.arange(B, dtype=np.int64), np.diff(blk.indptr))
            parts.append((blk.indices.astype(np.int64), blk.data.astype(np.float32), row, blk.indptr[:-1]))
        words, counts, flat, bag, offsets = [], [], [], [], []
        start = 0
        for m, g in enumerate(member_block):
            w, c, r, ptr = parts[g]
            words.append(w + m * V)
            counts.append(c)
            flat.append((m * B + r) * V + w)
            bag.append(m * B + r)
            offsets.append(ptr.astype(np.int64) + start)
            start += len(w)
        w_all, c_all, b_all = np.concatenate(words), np.concatenate(counts), np.concatenate(bag)
        # xᵀ as CSR (M·V)×(M·B), for the embedding gradient; a COO → CSR conversion needs no sort in scipy
        xt = sp.csr_matrix((c_all, (w_all, b_all)), shape=(M * V, M * B))
        t = lambda a, dt=torch.int64: torch.from_numpy(np.ascontiguousarray(a)).to(device=device, dtype=dt)
        transposed: torch.Tensor | None
        try:
            with warnings.catch_warnings():  # "sparse CSR support is in beta": the one op used here is stable
                warnings.simplefilter("ignore", UserWarning)
                transposed = torch.sparse_csr_tensor(t(xt.indptr), t(xt.indices), t(xt.data, torch.float32),
                                                     size=(M * V, M * B))
        except (RuntimeError, NotImplementedError):  # a device without sparse CSR tensors: gathered fallback
            transposed = None
        return cls(M, B, V, t(w_all), t(np.concatenate(offsets)), t(c_all, torch.float32), t(np.concatenate(flat)),
                   t(b_all), transposed)

    @classmethod
    def from_dense(cls, rows: Sequence[torch.Tensor], member_block: Sequence[int]) -> SparseRows:
        """The nonzero entries of dense (B, V) rows (teacher targets): member m reads ``rows[member_block[m]]``.
        Only what :func:`~bat_core.students.loss.bow_nll` reads is filled (no embedding input, no transpose)."""
        B, V = rows[0].shape
        entries = []
        for r in rows:
            d, v = r.nonzero(as_tuple=True)
            entries.append((d, v, r[d, v]))
        return cls._of_entries(entries, member_block, B, V)

    @classmethod
    def from_csr(cls, rows: Sequence[sp.csr_matrix], member_block: Sequence[int], device: torch.device
                 ) -> SparseRows:
        """:meth:`from_dense` of CSR (B, V) rows holding only nonzero entries, in sorted order (the trainer's target
        tables): the same entries in the same order, without a dense row."""
        B, V = rows[0].shape
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
        entries = [(t(np.repeat(np.arange(B, dtype=np.int64), np.diff(r.indptr))), t(r.indices.astype(np.int64)),
                    t(np.asarray(r.data, dtype=np.float32))) for r in rows]
        return cls._of_entries(entries, member_block, B, V)

    @classmethod
    def _of_entries(cls, entries: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                    member_block: Sequence[int], B: int, V: int) -> SparseRows:
        """Member m reads ``entries[member_block[m]]``: the (document, word, value) of each nonzero entry of B rows."""
        flat, bag, counts = [], [], []
        for m, g in enumerate(member_block):
            d, v, c = entries[g]
            flat.append((m * B + d) * V + v)
            bag.append(m * B + d)
            counts.append(c)
        bag_all = torch.cat(bag)
        return cls(len(member_block), B, V, bag_all.new_empty(0), bag_all.new_empty(0), torch.cat(counts),
                   torch.cat(flat), bag_all, None)

    def doc_lengths(self) -> torch.Tensor:
        """N_d per (member, document), shape (M, B)."""
        out = torch.zeros(self.n_members * self.batch, device=self.counts.device)
        return out.index_add_(0, self.bag, self.counts).view(self.n_members, self.batch)

    def dense(self) -> torch.Tensor:
        """The counts as a dense (M, B, V) tensor (for the teacher target and tests; training avoids it otherwise)."""
        out = torch.zeros(self.n_members * self.batch * self.vocab_size, device=self.counts.device)
        return out.index_put_((self.flat,), self.counts, accumulate=True).view(self.n_members, self.batch, -1)


def embed(weight: torch.Tensor, x: SparseRows) -> torch.Tensor:
    """e = x·Eᵀ per member: (M, B, E)."""
    M, V, E = weight.shape
    return F.embedding_bag(x.words, weight.reshape(M * V, E), x.offsets, mode="sum",
                           per_sample_weights=x.counts).view(M, x.batch, E)


class BagOfWordsEmbedding(torch.autograd.Function):
    """e = x·Eᵀ for every member's documents (an ``embedding_bag`` sum weighted by counts).

    The backward writes ∂E = xᵀ·∂e straight into a persistent buffer that becomes ``E.grad`` (overwriting it: the
    training loop never accumulates gradients over several backward passes). E is 93% of the weights (V×300 per
    member, 80 MB for a 33-member grid); a freshly allocated gradient of that size each step costs more in page faults
    than the product itself, and torch's own dense embedding backward is slower still.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, weight: torch.Tensor, grad_buffer: torch.Tensor,
                x: SparseRows) -> torch.Tensor:
        ctx.x, ctx.weight, ctx.grad_buffer = x, weight, grad_buffer  # type: ignore[attr-defined]
        return embed(weight, x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_e: torch.Tensor) -> tuple[None, None, None]:
        x, weight, buf = ctx.x, ctx.weight, ctx.grad_buffer  # type: ignore[attr-defined]
        M, V, E = weight.shape
        flat, g = buf.view(M * V, E), grad_e.reshape(M * x.batch, E).contiguous()
        try:
            if x.transposed is None:
                raise NotImplementedError
            torch.addmm(flat, x.transposed, g, beta=0, out=flat)
        except (RuntimeError, NotImplementedError):  # no sparse × dense product here (e.g. Apple MPS)
            flat.zero_().index_add_(0, x.words, x.counts.unsqueeze(1) * g.index_select(0, x.bag))
        weight.grad = buf
        return None, None, None


class _BatchNormTrain(torch.autograd.Function):
    """Training-mode batch norm over dimension 1 of (M, B, F) with a shift and no scale: y = (h − mean)/σ + shift.

    Written out (with the textbook backward ∂h = (∂y − mean(∂y) − x̂·mean(∂y·x̂))/σ) because torch's var_mean over
    a middle dimension and its autograd chain cost ~4× more on the (M, B, V) decoder activations.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, h: torch.Tensor, shift: torch.Tensor, eps: float
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean = h.mean(dim=1, keepdim=True)
        xhat = h - mean
        var = (xhat * xhat).mean(dim=1, keepdim=True)
        inv = torch.rsqrt(var + eps)
        xhat.mul_(inv)
        ctx.save_for_backward(xhat, inv)
        mean, var = mean.squeeze(1), var.squeeze(1)
        ctx.mark_non_differentiable(mean, var)
        return xhat + shift.unsqueeze(1), mean, var

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, dy: torch.Tensor, *_: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, None]:
        xhat, inv = ctx.saved_tensors  # type: ignore[attr-defined]
        m1 = dy.mean(dim=1, keepdim=True)
        m2 = (dy * xhat).mean(dim=1, keepdim=True)
        dh = torch.addcmul(dy - m1, xhat, m2, value=-1).mul_(inv)
        return dh, dy.sum(dim=1), None


class StackedBatchNorm(nn.Module):
    """BatchNorm1d over the batch dimension of an (M, B, F) input, separately per member, with the scale γ fixed at
    1 and only the shift trained (eps 1e-3, momentum 1e-3, as Scholar). Running variance is the unbiased batch
    variance, as torch's BatchNorm keeps it."""

    def __init__(self, n_members: int, n_features: int, eps: float = 1e-3, momentum: float = 1e-3) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.shift = nn.Parameter(torch.zeros(n_members, n_features))
        self.register_buffer("running_mean", torch.zeros(n_members, n_features))
        self.register_buffer("running_var", torch.ones(n_members, n_features))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not self.training:
            inv = torch.rsqrt(self.running_var + self.eps)
            return torch.addcmul((self.shift - self.running_mean * inv).unsqueeze(1), h, inv.unsqueeze(1))
        y, mean, var = _BatchNormTrain.apply(h, self.shift, self.eps)
        self._track(mean, var, h.shape[1])
        return y

    def of_product(self, theta: torch.Tensor, beta: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """BN(θ·β + b) for θ (M, B, K), β (M, K, V) and b (V,), (M, V) or None: the same as
        ``self(torch.baddbmm(b, θ, β))``, without normalising the (M, B, V) product itself.

        Why: the decoder's logits are linear in θ, so their batch statistics follow from θ's: per member and word,
        mean = θ̄·β + b and variance = β_vᵀ Σ_θ β_v (Σ_θ the K×K batch covariance of θ), and
        BN(θβ + b) = (θ − θ̄)·(β / σ) + shift in training. That is one product (M, B, K)×(M, K, V) plus work of size
        K×V, instead of a dozen passes over the B×V activations forward and back (the BatchNorm on a Scholar's
        decoder was the dearest part of its first quarter of training: 143 against 63 ms per step, 10 members on
        short texts). The numbers are the same up to float rounding (tested)."""
        if not self.training:
            inv = torch.rsqrt(self.running_var + self.eps)  # (M, V)
            offset = self.shift - self.running_mean * inv if bias is None else \
                self.shift + (bias - self.running_mean) * inv
            return torch.baddbmm(offset.unsqueeze(1), theta, beta * inv.unsqueeze(1))
        n = theta.shape[1]
        theta_mean = theta.mean(dim=1, keepdim=True)  # (M, 1, K)
        centred = theta - theta_mean
        cov = torch.bmm(centred.transpose(1, 2), centred) / n  # (M, K, K), the biased estimate BatchNorm uses
        var = (torch.bmm(cov, beta) * beta).sum(dim=1).clamp(min=0)  # (M, V)
        inv = torch.rsqrt(var + self.eps)
        with torch.no_grad():
            mean = torch.bmm(theta_mean, beta).squeeze(1)
            self._track(mean if bias is None else mean + bias, var, n)
        return torch.baddbmm(self.shift.unsqueeze(1), centred, beta * inv.unsqueeze(1))

    @torch.no_grad()
    def _track(self, mean: torch.Tensor, var: torch.Tensor, n: int) -> None:
        """The running statistics, with the unbiased batch variance as torch's BatchNorm keeps it."""
        self.running_mean.lerp_(mean, self.momentum)
        self.running_var.lerp_(var * (n / max(n - 1, 1)), self.momentum)


def uniform(gen: torch.Generator, shape: tuple[int, ...], bound: float) -> torch.Tensor:
    return (torch.rand(shape, generator=gen) * 2 - 1) * bound


def dropout(h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Inverted dropout with a mask drawn by ``Scholar.draw`` (0, or 1 / (1 − p) for the kept units)."""
    return h if mask is None else h * mask
