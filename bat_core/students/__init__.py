"""The students that learn topics: Scholar and ProdLDA as torch modules stacked over many members (λ, seed) at once,
the one BAT loss they train with (λ·T²·CE on the teacher's softened target + (1 − λ)·CE on the counts + KL) with the
teacher-logit clipping, and inference of θ for documents."""
