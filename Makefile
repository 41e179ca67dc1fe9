# Everything a fresh machine needs: `make demo` (set up, then run the main job) and `make test`.
# Both are idempotent: the virtual environment is built once, weights are fetched once.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.texnet-installed

.PHONY: setup browser demo test benchmark clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: any other way pip may pick a newer build with GBs of CUDA packages.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)
	@$(BIN)/texnet weights >/dev/null  # fetch and verify VGG-19 once; instant when cached

demo: setup
	$(BIN)/texnet sample brick -o brick.png --tile-preview

# Debian's Chromium and its driver for the web app's browser tests; where they cannot be installed
# (no root, no apt) the tests say so and are skipped.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1)) || \
	  echo "texnet: chromium could not be installed here; the browser tests will be skipped"

test: setup browser
	$(BIN)/python -m pytest

benchmark: setup
	$(BIN)/python benchmarks/gatys_baseline.py
	$(BIN)/python benchmarks/texture_networks.py
	$(BIN)/python benchmarks/stylization.py

clean:
	rm -rf $(VENV)
