"""Training a grid of students: the stacked training loop (CPU stacks side by side, one thread each, or one stack on
a GPU), the settings chosen on dev data (the background correction γ and the teacher's fade), the cache layout, and
the plan → execute pipeline that the app, the CLI and the benchmarks share."""
