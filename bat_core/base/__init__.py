"""What every layer uses and nothing of the method: the one user-facing error type, progress events, atomic files and
JSON, the device (CUDA, MPS or CPU) and the process group for data-parallel teacher training. Imports nothing else of
``bat_core``."""
