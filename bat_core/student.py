"""Scholar (Card et al., 2018) as a torch module, as bat-method.md section 3 specifies.

Encoder: e = x·Eᵀ → softplus → dropout → μ = BN(W_μ π), log σ² = BN(W_σ π)   (BN scale fixed at 1)
Sample:  z = μ + σ·ε·var_scale → dropout → θ = softmax(z)
Decoder: η = Bθ + b (b = frozen background log-frequencies), η_bn = BN(η),
         x̂ = p_bn·softmax(η_bn) + (1 − p_bn)·softmax(η)
Prior:   Laplace approximation of a symmetric Dirichlet(α) (logistic normal), KL in closed form.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def background_log_frequencies(train_counts_colsum: np.ndarray) -> np.ndarray:
    """b_v = log(1 + Σ_d x_dv) − log Σ_v (1 + Σ_d x_dv), computed on the train split and frozen."""
    c = np.asarray(train_counts_colsum, dtype=np.float64) + 1.0
    return (np.log(c) - np.log(c.sum())).astype(np.float32)


def _fixed_scale_bn(n: int) -> nn.BatchNorm1d:
    """BatchNorm with eps 1e-3, momentum 1e-3 and scale γ frozen at 1 (only the shift β trains), as Scholar does."""
    bn = nn.BatchNorm1d(n, eps=1e-3, momentum=1e-3)
    bn.weight.data.fill_(1.0)
    bn.weight.requires_grad_(False)
    return bn


class Scholar(nn.Module):
    def __init__(self, vocab_size: int, n_topics: int, background: np.ndarray, emb_dim: int = 300,
                 alpha: float = 0.5, dropout: float = 0.2, encode_logits: str = "off") -> None:
        super().__init__()
        V, K, E = vocab_size, n_topics, emb_dim
        self.encode_logits = encode_logits
        self.embeddings = nn.Linear(V, E, bias=False)  # x·Eᵀ: the "background embeddings", random init, trainable
        nn.init.xavier_uniform_(self.embeddings.weight)
        enc_dim = E
        if encode_logits == "raw":
            enc_dim += V
        elif encode_logits == "doc_layer":
            self.doc_layer = nn.Linear(V, E)
            enc_dim += E
        self.encoder_dropout = nn.Dropout(dropout)
        self.mean = nn.Linear(enc_dim, K)
        self.logvar = nn.Linear(enc_dim, K)
        self.mean_bn = _fixed_scale_bn(K)
        self.logvar_bn = _fixed_scale_bn(K)
        self.z_dropout = nn.Dropout(dropout)
        self.beta = nn.Linear(K, V, bias=False)  # B: topic-word deviations from the background
        nn.init.xavier_uniform_(self.beta.weight)
        self.register_buffer("background", torch.as_tensor(background, dtype=torch.float32))
        self.eta_bn = _fixed_scale_bn(V)
        # Laplace approximation to a symmetric Dirichlet(α) prior
        a = np.full(K, alpha, dtype=np.float64)
        prior_mean = np.log(a) - np.log(a).mean()
        prior_var = (1.0 / a) * (1 - 2.0 / K) + (1.0 / K**2) * (1.0 / a).sum()
        self.register_buffer("prior_mean", torch.as_tensor(prior_mean, dtype=torch.float32))
        self.register_buffer("prior_var", torch.as_tensor(prior_var, dtype=torch.float32))

    def encode(self, x: torch.Tensor, teacher_logits: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [self.embeddings(x)]
        if self.encode_logits == "raw":
            assert teacher_logits is not None
            parts.append(teacher_logits.clamp(min=-40))
        elif self.encode_logits == "doc_layer":
            assert teacher_logits is not None
            parts.append(F.softplus(self.doc_layer(teacher_logits.clamp(min=-40))))
        pi = self.encoder_dropout(F.softplus(torch.cat(parts, dim=1)))
        return self.mean_bn(self.mean(pi)), self.logvar_bn(self.logvar(pi))

    def forward(self, x: torch.Tensor, teacher_logits: torch.Tensor | None = None, var_scale: float = 1.0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns θ, η, η_bn, μ, log σ²."""
        mu, logvar = self.encode(x, teacher_logits)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu) * var_scale
        theta = F.softmax(self.z_dropout(z), dim=1)
        eta = self.beta(theta) + self.background
        return theta, eta, self.eta_bn(eta), mu, logvar

    def kl(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) ‖ prior) per document, for diagonal Gaussians."""
        var = logvar.exp()
        pv, pm = self.prior_var, self.prior_mean
        return 0.5 * ((var / pv) + (mu - pm) ** 2 / pv + pv.log() - logvar).sum(dim=1) - 0.5 * mu.shape[1]

    def topic_word(self) -> torch.Tensor:
        """B as K×V: the rows are the topics (deviations from the background)."""
        return self.beta.weight.t()


def reconstruction(eta: torch.Tensor, eta_bn: torch.Tensor, p_bn: float, temperature: float = 1.0) -> torch.Tensor:
    """x̂ = p_bn·softmax(η_bn / T) + (1 − p_bn)·softmax(η / T)."""
    out = F.softmax(eta / temperature, dim=1)
    if p_bn > 0:
        out = p_bn * F.softmax(eta_bn / temperature, dim=1) + (1 - p_bn) * out
    return out
