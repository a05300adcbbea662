"""Scholar (Card et al., 2018) as a torch module, as bat-method.md section 3 specifies, for M members at once.

Encoder: e = x·Eᵀ → softplus → dropout → μ = BN(W_μ π), log σ² = BN(W_σ π)   (BN scale fixed at 1)
Sample:  z = μ + σ·ε·var_scale → dropout → θ = softmax(z)
Decoder: η = Bθ + b (b = frozen background log-frequencies), η_bn = BN(η),
         x̂ = p_bn·softmax(η_bn) + (1 − p_bn)·softmax(η)
Prior:   Laplace approximation of a symmetric Dirichlet(α) (logistic normal), KL in closed form.

Why "members": a λ grid (11 λ × 3 seeds) is 33 small, independent Scholars on the same corpus. Each one alone leaves
the CPU idle between tiny kernels; stacked along a leading member dimension (every weight is M×…, products are
``torch.bmm``) they run as one model whose kernels are big enough to pay off. Members never mix: every operation is
per member (BatchNorm statistics too), so member m of a stack computes what a 1-member stack with its settings computes.

Randomness is explicit: every random draw (initialisation, dropout masks, the reparameterisation noise) comes from a
``torch.Generator`` seeded by the member's seed, never from the global RNG, so a member's result depends on its seed
and not on which other members it was trained with. Members that share a seed draw the same numbers, so one draw per
seed is shared by them (``stream`` maps each member to its seed's generator).

The encoder input is sparse: a document has ~60 distinct words out of 2,000, so e = x·Eᵀ is an ``embedding_bag`` sum
of the rows of E of the document's words weighted by their counts, instead of a dense product over zeros.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .layers import BagOfWordsEmbedding, SparseRows, StackedBatchNorm, dropout, embed, uniform


def background_log_frequencies(train_counts_colsum: np.ndarray) -> np.ndarray:
    """b_v = log(1 + Σ_d x_dv) − log Σ_v (1 + Σ_d x_dv), computed on the train split and frozen."""
    c = np.asarray(train_counts_colsum, dtype=np.float64) + 1.0
    return (np.log(c) - np.log(c.sum())).astype(np.float32)


class Scholar(nn.Module):
    """``n_members`` independent Scholars with the same V, K and layer sizes, stacked along dimension 0.

    ``generators[m]`` initialises member m (members that share a generator object are initialised once, identically).
    """

    anneals_bn = True  # x̂ mixes the BN'd and plain decoders with p_bn annealed 1 → 0 (ProdLDA: always BN'd)

    def __init__(self, vocab_size: int, n_topics: int, background: np.ndarray, emb_dim: int = 300,
                 alpha: float = 0.5, dropout: float = 0.2, encode_logits: str = "off", n_members: int = 1,
                 generators: Sequence[torch.Generator] | None = None) -> None:
        super().__init__()
        V, K, E, M = vocab_size, n_topics, emb_dim, n_members
        self.vocab_size, self.n_topics, self.emb_dim, self.n_members = V, K, E, M
        self.encode_logits, self.dropout = encode_logits, dropout
        self.enc_dim = E + (V if encode_logits == "raw" else E if encode_logits == "doc_layer" else 0)
        if generators is None:
            generators = [torch.Generator().manual_seed(0)] * M
        assert len(generators) == M
        D = self.enc_dim
        inits: dict[str, list[torch.Tensor]] = {}
        done: dict[int, dict[str, torch.Tensor]] = {}
        for gen in generators:
            if id(gen) not in done:  # a shared generator initialises its members once, identically
                w: dict[str, torch.Tensor] = {}
                w["embeddings"] = uniform(gen, (V, E), math.sqrt(6 / (V + E)))  # xavier, as nn.init does for E×V
                if encode_logits == "doc_layer":  # nn.Linear(V, E) default init
                    w["doc_w"] = uniform(gen, (V, E), 1 / math.sqrt(V))
                    w["doc_b"] = uniform(gen, (E,), 1 / math.sqrt(V))
                for head in ("mean", "logvar"):  # nn.Linear(D, K) default init
                    w[f"{head}_w"] = uniform(gen, (D, K), 1 / math.sqrt(D))
                    w[f"{head}_b"] = uniform(gen, (K,), 1 / math.sqrt(D))
                w["beta"] = uniform(gen, (K, V), math.sqrt(6 / (K + V)))  # B as K×V: the rows are the topics
                done[id(gen)] = w
            for name, t in done[id(gen)].items():
                inits.setdefault(name, []).append(t)
        stack = lambda name: nn.Parameter(torch.stack(inits[name]))
        self.embeddings = stack("embeddings")  # M×V×E: x·Eᵀ, the "background embeddings", trainable
        self._emb_grad: torch.Tensor | None = None  # its gradient, kept allocated between steps
        if encode_logits == "doc_layer":
            self.doc_w, self.doc_b = stack("doc_w"), stack("doc_b")
        self.mean_w, self.mean_b = stack("mean_w"), stack("mean_b")
        self.logvar_w, self.logvar_b = stack("logvar_w"), stack("logvar_b")
        self.mean_bn = StackedBatchNorm(M, K)
        self.logvar_bn = StackedBatchNorm(M, K)
        self.beta = stack("beta")  # M×K×V: topic-word deviations from the background
        self.eta_bn = StackedBatchNorm(M, V)
        self.register_buffer("background", torch.as_tensor(background, dtype=torch.float32))
        self.register_laplace_prior(K, alpha)

    # ------------------------------------------------------------------------------------------------ the model
    def register_laplace_prior(self, K: int, alpha: float) -> None:
        """The Laplace approximation to a symmetric Dirichlet(α) prior in the softmax basis (Srivastava & Sutton)."""
        a = np.full(K, alpha, dtype=np.float64)
        prior_mean = np.log(a) - np.log(a).mean()
        prior_var = (1.0 / a) * (1 - 2.0 / K) + (1.0 / K**2) * (1.0 / a).sum()
        self.register_buffer("prior_mean", torch.as_tensor(prior_mean, dtype=torch.float32))
        self.register_buffer("prior_var", torch.as_tensor(prior_var, dtype=torch.float32))

    def embed(self, x: SparseRows) -> torch.Tensor:
        """x·Eᵀ per member (M, B, D): the sparse bag-of-words product, its gradient kept in a reused buffer."""
        if torch.is_grad_enabled() and self.embeddings.requires_grad:
            if self._emb_grad is None or self._emb_grad.device != self.embeddings.device:
                self._emb_grad = torch.zeros_like(self.embeddings)
            return BagOfWordsEmbedding.apply(self.embeddings, self._emb_grad, x)
        return embed(self.embeddings, x)

    def encoder_input(self, x: SparseRows, teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
        """softplus([x·Eᵀ, extras]) as (M, B, D), before dropout."""
        e = self.embed(x)
        if self.encode_logits == "off":
            return F.softplus(e)
        assert teacher_logits is not None, "this student encodes teacher logits: pass them"
        z = teacher_logits.clamp(min=-40)  # (M, B, V)
        if self.encode_logits == "raw":
            return F.softplus(torch.cat([e, z], dim=2))
        doc = F.softplus(torch.baddbmm(self.doc_b.unsqueeze(1), z, self.doc_w))
        return F.softplus(torch.cat([e, doc], dim=2))

    def encode_pre_bn(self, pi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """W_μ π + b_μ and W_σ π + b_σ, each (M, B, K)."""
        return (torch.baddbmm(self.mean_b.unsqueeze(1), pi, self.mean_w),
                torch.baddbmm(self.logvar_b.unsqueeze(1), pi, self.logvar_w))

    def forward(self, x: SparseRows, teacher_logits: torch.Tensor | None = None,
                noise: dict[str, torch.Tensor] | None = None, decode_bn: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Returns θ, η, η_bn, μ, log σ², each (M, B, ·).

        ``noise`` holds the member's random draws (see :meth:`draw`); None means eval: no dropout and var_scale 0,
        so θ = softmax(μ). ``decode_bn=False`` skips η_bn (returned as None) once p_bn has annealed to 0.
        """
        noise = noise or {}
        pi = dropout(self.encoder_input(x, teacher_logits), noise.get("pi"))
        h_mu, h_lv = self.encode_pre_bn(pi)
        mu, logvar = self.mean_bn(h_mu), self.logvar_bn(h_lv)
        z = mu + (0.5 * logvar).exp() * noise["eps"] if "eps" in noise else mu
        theta = F.softmax(dropout(z, noise.get("z")), dim=-1)
        eta = torch.baddbmm(self.background.expand(theta.shape[0], 1, -1), theta, self.beta)
        eta_bn = self.eta_bn.of_product(theta, self.beta, self.background) if decode_bn else None
        return theta, eta, eta_bn, mu, logvar

    def draw(self, generators: Sequence[torch.Generator], batch: int, device: torch.device,
             stream: torch.Tensor) -> dict[str, torch.Tensor]:
        """One training step's random numbers: per generator (seed) one draw, shared by the members of ``stream``.

        Dropout masks are uniform draws compared with p; ε ~ N(0, I) is the reparameterisation noise.
        """
        K, D = self.n_topics, self.enc_dim
        pi, eps, zn = [], [], []
        for gen in generators:
            pi.append(torch.rand((batch, D), generator=gen))
            eps.append(torch.randn((batch, K), generator=gen))
            zn.append(torch.rand((batch, K), generator=gen))
        keep = lambda u: (u >= self.dropout).float() / (1 - self.dropout)  # inverted dropout mask
        out = {"pi": keep(torch.stack(pi)), "eps": torch.stack(eps), "z": keep(torch.stack(zn))}
        return {k: v.to(device)[stream] for k, v in out.items()}

    def kl(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) ‖ prior) per document, for diagonal Gaussians: (M, B)."""
        var = logvar.exp()
        pv, pm = self.prior_var, self.prior_mean
        return 0.5 * ((var / pv) + (mu - pm) ** 2 / pv + pv.log() - logvar).sum(dim=-1) - 0.5 * mu.shape[-1]

    def topic_word(self) -> torch.Tensor:
        """B as M×K×V: the rows are the topics (deviations from the background)."""
        return self.beta

    def refresh_decoder(self, theta_train: torch.Tensor) -> None:
        """Nothing to do: at p_bn = 0 (eval, perplexity, the Run) Scholar's decoder does not use η's BatchNorm."""

    def decoder(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The eval-mode decoder (p_bn = 0) as η = θ·B + b: (B (M, K, V), b (M, V)), for the test perplexity."""
        return self.beta, self.background.expand(self.n_members, -1)

    def run_arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """What a Run stores as (beta, background): for Scholar, the decoder itself."""
        return self.decoder()

    # ------------------------------------------------------------------------------------------------ members
    def member_state(self, m: int) -> dict[str, np.ndarray]:
        """Member m's weights and BN statistics as plain arrays (the member dimension dropped), for the Run."""
        return {k: v[m].detach().cpu().numpy().copy() for k, v in self.state_dict().items() if _is_stacked(k)}

    @classmethod
    def from_member_states(cls, states: Sequence[dict[str, np.ndarray]], background: np.ndarray, emb_dim: int,
                           alpha: float, dropout: float, encode_logits: str) -> Scholar:
        """Rebuild a stack from :meth:`member_state` dicts (e.g. one saved Run, to transform new documents)."""
        n_topics, vocab_size = states[0]["beta"].shape
        model = cls(vocab_size, n_topics, background, emb_dim, alpha, dropout, encode_logits, len(states))
        own = model.state_dict()
        for k in own:
            if _is_stacked(k):
                own[k] = torch.from_numpy(np.stack([np.asarray(s[k], dtype=np.float32) for s in states]))
        model.load_state_dict(own)
        return model


def _is_stacked(name: str) -> bool:
    return name not in ("background", "prior_mean", "prior_var")


def reconstruction(eta: torch.Tensor, eta_bn: torch.Tensor | None, p_bn: float, temperature: float | torch.Tensor
                   = 1.0) -> torch.Tensor:
    """x̂ = p_bn·softmax(η_bn / T) + (1 − p_bn)·softmax(η / T)."""
    tempered = (lambda t: t) if isinstance(temperature, float | int) and temperature == 1 else \
        (lambda t: t / temperature)
    out = F.softmax(tempered(eta), dim=-1)
    if p_bn > 0:
        assert eta_bn is not None
        out = torch.lerp(out, F.softmax(tempered(eta_bn), dim=-1), p_bn)
    return out
