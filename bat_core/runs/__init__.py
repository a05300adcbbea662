"""A run is one trained student (λ, seed, settings): its topics, θ, metrics, history and weights, saved as
safetensors + JSON under a key that hashes its settings, and what a user can download from it."""
