"""ProdLDA (Srivastava & Sutton, 2017) as a second student, stacked over M members exactly as Scholar is.

Encoder: h₁ = softplus(x·W₁ + b₁), h₂ = softplus(h₁·W₂ + b₂) → dropout → μ = BN(W_μ h₂), log σ² = BN(W_σ h₂)
Sample:  z = μ + σ·ε,  θ = softmax(z) → dropout
Decoder: x̂ = softmax(BN(θ·β))   (product of experts: the BN'd logits, no background term, no p_bn mixture)
Prior:   the same Laplace approximation of a symmetric Dirichlet(α) as Scholar (μ₀ = 0, σ₀²_k = (1/α)(1 − 2/K) +
         (1/K²)·Σ_j 1/α), KL in closed form (inherited from :class:`Scholar`).

Why a subclass of Scholar: the training loop (train.py), the distillation loss, BN refreshing and θ inference
(transform.py) only talk to a student through a handful of methods (``encoder_input``, ``encode_pre_bn``,
``mean_bn``/``logvar_bn``, ``forward``, ``draw``, ``kl``, ``topic_word``, ``decoder``, ``member_state``). ProdLDA
overrides the ones that differ and keeps the others, so there is one training loop for both students, and a member
of a stack computes what it computes alone for the same reasons as in student.py (per-member bmm, per-member BN,
per-seed generators).

The first encoder layer reads the sparse bag of words like Scholar's embedding (x·W₁ as an ``embedding_bag``);
its width, and W₂'s, is ``emb_dim`` (the paper used 100 units; StudentConfig's default 300 is shared with Scholar).

What a Run holds: ``Run.beta`` is β with each word's column centred over the topics, and ``Run.background`` is
zero (ProdLDA has no background term). Centring because adding c_v to every topic's β_v changes nothing (θ sums to
1, and the decoder BN subtracts the batch mean) yet reorders every topic's top words; centred, a topic's top words
are those it raises most above the other topics. These are the paper's topics (top words of β) and what the
per-epoch dev NPMI ranks. The decoder's BN also divides word v's logit by its standard deviation s_v⁻¹; folding
that in (B = β·diag(s)) gives the exact eval decoder, used for the test perplexity (:meth:`decoder`, after
:meth:`refresh_decoder` set the BN statistics to their exact values over the training documents), but ranking by
it favours rare words and roughly halved test NPMI on the demo corpus (0.19 → 0.10 for seed 0), so the Run's
topics do not use it. Hence ``Run.reconstruction`` of a ProdLDA run is softmax(θ·β), the decoder without its BN:
an approximation (exact perplexity is in ``metrics``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..base.errors import BatError
from ..config import STUDENT_KINDS
from .layers import SparseRows, StackedBatchNorm, dropout, uniform
from .scholar import Scholar


class ProdLDA(Scholar):
    """``n_members`` independent ProdLDAs stacked along dimension 0 (same constructor as :class:`Scholar`).

    ``background`` is accepted for the common signature and ignored: ProdLDA has no background term.
    """

    anneals_bn = False  # the decoder is always BN'd: no p_bn mixture to anneal

    def __init__(self, vocab_size: int, n_topics: int, background: np.ndarray | None = None, emb_dim: int = 100,
                 alpha: float = 0.5, dropout: float = 0.2, encode_logits: str = "off", n_members: int = 1,
                 generators: Sequence[torch.Generator] | None = None) -> None:
        nn.Module.__init__(self)
        if encode_logits != "off":
            raise BatError("ProdLDA does not read teacher logits in its encoder (encode_logits must be off); "
                           "use the Scholar student for that")
        V, K, H, M = vocab_size, n_topics, emb_dim, n_members
        self.vocab_size, self.n_topics, self.emb_dim, self.n_members = V, K, H, M
        self.encode_logits, self.dropout, self.enc_dim = encode_logits, dropout, H
        if generators is None:
            generators = [torch.Generator().manual_seed(0)] * M
        assert len(generators) == M
        inits: dict[str, list[torch.Tensor]] = {}
        done: dict[int, dict[str, torch.Tensor]] = {}
        for gen in generators:
            if id(gen) not in done:  # nn.Linear's default init for the MLP and heads, xavier for β (as Scholar)
                w = {"embeddings": uniform(gen, (V, H), 1 / math.sqrt(V)),
                     "hidden_b1": uniform(gen, (H,), 1 / math.sqrt(V)),
                     "hidden_w": uniform(gen, (H, H), 1 / math.sqrt(H)),
                     "hidden_b": uniform(gen, (H,), 1 / math.sqrt(H))}
                for head in ("mean", "logvar"):
                    w[f"{head}_w"] = uniform(gen, (H, K), 1 / math.sqrt(H))
                    w[f"{head}_b"] = uniform(gen, (K,), 1 / math.sqrt(H))
                w["beta"] = uniform(gen, (K, V), math.sqrt(6 / (K + V)))
                done[id(gen)] = w
            for name, t in done[id(gen)].items():
                inits.setdefault(name, []).append(t)
        stack = lambda name: nn.Parameter(torch.stack(inits[name]))
        self.embeddings = stack("embeddings")  # M×V×H: W₁, read sparsely
        self._emb_grad: torch.Tensor | None = None
        self.hidden_b1 = stack("hidden_b1")
        self.hidden_w, self.hidden_b = stack("hidden_w"), stack("hidden_b")
        self.mean_w, self.mean_b = stack("mean_w"), stack("mean_b")
        self.logvar_w, self.logvar_b = stack("logvar_w"), stack("logvar_b")
        self.mean_bn, self.logvar_bn = StackedBatchNorm(M, K), StackedBatchNorm(M, K)
        self.beta = stack("beta")  # M×K×V
        self.eta_bn = StackedBatchNorm(M, V)
        self.register_laplace_prior(K, alpha)

    def encoder_input(self, x: SparseRows, teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
        """h₂ = softplus(softplus(x·W₁ + b₁)·W₂ + b₂) as (M, B, H), before dropout."""
        h1 = F.softplus(self.embed(x) + self.hidden_b1.unsqueeze(1))
        return F.softplus(torch.baddbmm(self.hidden_b.unsqueeze(1), h1, self.hidden_w))

    def forward(self, x: SparseRows, teacher_logits: torch.Tensor | None = None,
                noise: dict[str, torch.Tensor] | None = None, decode_bn: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor, None, torch.Tensor, torch.Tensor]:
        """θ, η = BN(θ·β) (the decoder logits: x̂ = softmax(η)), None, μ, log σ².

        The third slot (Scholar's η_bn) is None: η is already batch-normalised, so the loop's ``reconstruction(η,
        None, p_bn = 0)`` is ProdLDA's decoder. ``noise`` None is eval (no dropout, θ = softmax(μ)).
        """
        noise = noise or {}
        pi = dropout(self.encoder_input(x), noise.get("pi"))
        h_mu, h_lv = self.encode_pre_bn(pi)
        mu, logvar = self.mean_bn(h_mu), self.logvar_bn(h_lv)
        z = mu + (0.5 * logvar).exp() * noise["eps"] if "eps" in noise else mu
        theta = F.softmax(z, dim=-1)
        eta = self.eta_bn.of_product(dropout(theta, noise.get("theta")), self.beta)
        return theta, eta, None, mu, logvar

    def draw(self, generators: Sequence[torch.Generator], batch: int, device: torch.device,
             stream: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per seed: the h₂ dropout mask, ε ~ N(0, I) and the θ dropout mask, shared by that seed's members."""
        K, H = self.n_topics, self.enc_dim
        pi, eps, th = [], [], []
        for gen in generators:
            pi.append(torch.rand((batch, H), generator=gen))
            eps.append(torch.randn((batch, K), generator=gen))
            th.append(torch.rand((batch, K), generator=gen))
        keep = lambda u: (u >= self.dropout).float() / (1 - self.dropout)
        out = {"pi": keep(torch.stack(pi)), "eps": torch.stack(eps), "theta": keep(torch.stack(th))}
        return {k: v.to(device)[stream] for k, v in out.items()}

    @torch.no_grad()
    def refresh_decoder(self, theta_train: torch.Tensor) -> None:
        """Decoder BN statistics = the exact mean and population variance of θ·β over the training documents."""
        h = torch.bmm(theta_train.to(self.beta.device, torch.float64), self.beta.double())  # (M, N, V)
        mean = h.mean(dim=1)
        self.eta_bn.running_mean.copy_(mean.float())
        self.eta_bn.running_var.copy_(((h * h).mean(dim=1) - mean * mean).clamp(min=0).float())

    def decoder(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact eval-mode decoder as η = θ·B + b: B = β·diag(s) (M, K, V), b = shift − running mean·s (M, V)."""
        bn = self.eta_bn
        s = torch.rsqrt(bn.running_var + bn.eps)
        return self.beta * s.unsqueeze(1), bn.shift - bn.running_mean * s

    def topic_word(self) -> torch.Tensor:
        """β with each word's column centred over the topics (M, K, V): the topics (see the module docstring)."""
        return self.beta - self.beta.mean(dim=1, keepdim=True)

    def run_arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """What a Run stores as (beta, background): the centred β and zeros (no background term)."""
        return self.topic_word(), torch.zeros(self.n_members, self.vocab_size, device=self.beta.device)


def student_class(kind: str) -> type[Scholar]:
    """The student module for ``StudentConfig.student``."""
    if kind not in STUDENT_KINDS:
        raise BatError(f"student must be one of {', '.join(STUDENT_KINDS)}, not {kind!r}")
    return ProdLDA if kind == "prodlda" else Scholar
