"""Training a grid of students: the stacked training loop (CPU stacks side by side, one thread each, or one stack on
a GPU), the settings chosen on dev data (the background correction γ and the teacher's fade) and the cache layout. The
λ × seeds grid that runs them is :mod:`bat_core.grid`, one level up."""
