#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py has the details): tests marked cuda, the demo grid on CUDA, the full
# fine-tuning teacher on BBC News, the students distilled from it, CUDA timing rows; one markdown table at the end,
# also written to $OUT/gpu_check.md (+ gpu_check.json, gpu_check.log) when OUT is set. Under 5 minutes on one GPU.
#
#   .venv/bin/python benchmarks/gpu_check_prepare.py   # first, HERE: writes gpu_check_files/ (MiniLM bf16, corpora)
#   bash benchmarks/gpu_check.sh                       # on the GPU machine, from anywhere; carry gpu_check_files
#   bash benchmarks/gpu_check.sh --dry-run             # here, on the CPU, tiny sizes (about 1-2 minutes)
#
# It installs nothing: it runs the engine from this checkout (PYTHONPATH) with the machine's python3 (PYTHON=...
# overrides; the dry run uses .venv/bin/python when it exists) and says in one line what is missing, if anything.
# Other options go to gpu_check.py (--budget SECONDS, --parts tests,grid,teacher,students,timing, --work DIR).
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
root=$(pwd)

dry=0
for a in "$@"; do [ "$a" = "--dry-run" ] && dry=1; done
if [ -n "${PYTHON:-}" ]; then
  py=$PYTHON
elif [ "$dry" = 1 ] && [ -x .venv/bin/python ]; then
  py=.venv/bin/python
else
  py=python3
fi
if ! command -v "$py" >/dev/null 2>&1; then
  echo "gpu_check: no Python interpreter '$py' on this machine (set PYTHON=...)" >&2
  exit 2
fi
if [ ! -d gpu_check_files ]; then
  echo "gpu_check: gpu_check_files/ is missing: run '.venv/bin/python benchmarks/gpu_check_prepare.py' on the" \
       "development machine first, and name gpu_check_files in the device call's carry" >&2
  exit 2
fi

export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false

if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  set -o pipefail
  "$py" benchmarks/gpu_check.py "$@" 2>&1 | tee "$OUT/gpu_check.log"
  exit "${PIPESTATUS[0]}"
fi
exec "$py" benchmarks/gpu_check.py "$@"
