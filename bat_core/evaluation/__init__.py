"""How topics are judged, as pure functions: NPMI and topic uniqueness, perplexity, Jensen–Shannon alignment of two
models' topics, statistics over seeds (mean ± std, paired differences) and the downstream check (θ as features for a
classifier on labelled corpora)."""
