# Two entry points: `make bench` and `make test`. Both create the virtual environment when it is
# missing and install the project into it (editable). Each checkout gets its own venv, keyed by its
# path, outside the clone, so that installing one clone never re-points another's `clbench`
# command at different code. With VENV set to a shared path, re-installing it for another
# checkout says so.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
CHECKOUT_KEY := $(shell printf '%s' "$(CURDIR)" | sha256sum | cut -c1-12)
VENV ?= $(HOME)/.cache/clbench/venv-$(CHECKOUT_KEY)
# torch/torchvision releases that pip installs from local disk on these machines (no download).
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
SUITE ?= default
# The default suite's result files and report are the reference output committed under results/
# (results/runs and results/index.md); other suites write to runs/SUITE.
RESULTS ?= $(if $(filter default,$(SUITE)),results/runs,runs/$(SUITE))
REPORT ?= $(if $(filter default,$(SUITE)),results,$(RESULTS)/report)
# Runs at a time, one torch thread each.
JOBS ?= $(shell nproc)

# Re-install when pyproject.toml or this Makefile changes, or the venv serves another checkout.
STAMP := $(VENV)/.installed-$(shell printf '%s' "$(CURDIR)" | cat - pyproject.toml Makefile | sha256sum | cut -c1-16)
BIN := $(VENV)/bin

.PHONY: venv test test-fast lint ruff-check format-check typecheck bench tune clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if [ -f $(VENV)/.checkout ] && [ "$$(cat $(VENV)/.checkout)" != "$(CURDIR)" ]; then \
		echo "note: $(VENV) served $$(cat $(VENV)/.checkout); re-installing it for $(CURDIR)," \
			"so its clbench command now runs this checkout's code"; fi
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PINS)
	$(BIN)/python -m pip install -q -e '.[dev,ray,slurm,wandb]'
	@rm -f $(VENV)/.installed-*
	@printf '%s\n' "$(CURDIR)" > $(VENV)/.checkout
	@touch $@

# Tests run under a fresh, empty HOME (importing avalanche writes a config there), on every core
# (pytest-xdist; tests/conftest.py gives each worker thread pools of one thread and puts the slow
# tests first; an idle worker takes queued tests from a busy one); test-fast leaves out those
# marked slow.
TEST_WORKERS ?= $(shell nproc)
PYTEST := HOME=$$(mktemp -d) $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal
test: venv
	$(PYTEST)

test-fast: venv
	$(PYTEST) -m "not slow"

lint: ruff-check format-check

ruff-check: venv
	$(BIN)/ruff check clbench baselines tests

format-check: venv
	$(BIN)/ruff format --check clbench baselines tests

# mypy reads its settings and the packages it checks from pyproject.toml ([tool.mypy]).
typecheck: venv
	$(BIN)/mypy

bench: venv
	$(BIN)/clbench bench --suite $(SUITE) --results $(RESULTS) --report $(REPORT) --jobs $(JOBS)

# `make tune`: every strategy of the default suite gets the same budget of trials on each of its
# two offline benchmarks, scored on the validation split at the suite's protocol; then the tuned
# suite runs on the test split, the report (of `make bench`'s runs) compares it with the presets'
# results (README, "Tuned comparison"), and the tuned suite becomes the shipped `tuned` suite.
# Joint training is left out: its validation data mixes the tasks.
TUNE_TRIALS ?= 8
TUNING ?= results/tuning
TUNED_STRATEGIES ?= naive,ewc,si,mas,lwf,replay,agem,gem,frozen,from-scratch,hybrid-magnitude,$\
	hybrid-drift,gpm,sgp,trgp,dfgp,gpcns,ness,adam-nscl
tune: venv
	for benchmark in split-mnist5k pmnist5k; do \
		$(BIN)/clbench tune --suite default --benchmark $$benchmark --trials $(TUNE_TRIALS) \
			--strategies $(TUNED_STRATEGIES) --results $(TUNING) --jobs $(JOBS) || exit 1; \
	done
	$(BIN)/clbench sweep $(TUNING)/tuned.toml --results $(TUNING)/runs --jobs $(JOBS)
	$(BIN)/clbench report $(RESULTS) --out $(REPORT) --tuning $(TUNING)
	$(if $(filter results/tuning,$(TUNING)),cp $(TUNING)/tuned.toml clbench/suites/tuned.toml)

clean-venv:
	rm -rf $(VENV)
