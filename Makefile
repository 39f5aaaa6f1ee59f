# w2vlens: `make run` runs the main job on the embedded demo, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
export HF_HUB_OFFLINE ?= 1

.PHONY: help setup run test test-slow test-slurm ui atlas lint demo

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv: torch 2.13.0 first (the CPU wheel here), then w2vlens editable with dev tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: setup ## Run the main job (demo data, fine-tuned model, K-means); extra overrides in ARGS="..."
	$(PY) -m run $(ARGS)

test: setup ## Run the fast test suite (offline, tiny random checkpoints; two pytest workers)
	$(PY) -m pytest -q -n 2

test-slow: setup ## The slow acceptance tests: the demo's numbers end to end (about 22 min on 2 cores)
	$(PY) -m pytest -q -m slow

test-slurm: setup ## Sharded extraction and a sweep on a local one-node SLURM (root; installs it; else skips)
	$(PY) -m pytest -q -rs -m slurm tests/test_slurm.py

ui: setup ## MLflow UI over this project's store; prints the URL that opens the w2vlens runs
	$(PY) -m w2vlens.ui --store mlruns --host 127.0.0.1 --port 5000

atlas: setup ## Open a projection run's frames in Embedding Atlas: make atlas RUN=<run id> (needs .[atlas])
	@test -n "$(RUN)" || { echo "usage: make atlas RUN=<run id of a run with reduce=...>"; exit 2; }
	@$(PY) -c "import embedding_atlas" 2>/dev/null || $(PY) -m pip install --quiet -e '.[atlas]'
	$(PY) -m w2vlens.atlas $(RUN) --store mlruns

lint: setup ## Ruff over the code
	$(VENV)/bin/ruff check src tests scripts run.py

demo: setup ## Rebuild the demo corpus and the demo model pair (deterministic, about 17 min on 2 cores)
	$(PY) scripts/build_demo.py
