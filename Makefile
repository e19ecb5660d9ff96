# Two commands for users (README, docs/getting-started.md): `make run` and `make test`. Both install first.
PYTHON ?= python3
VENV ?= .venv
# CPU wheel by default (no multi-GB CUDA download). GPU machines: make run TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
# DVC stages run `kedro run --pipelines <stage>`: kedro must be on PATH wherever dvc runs them.
DVC = PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc
KEDRO_ARGS ?=

export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export NO_MKDOCS_2_WARNING := 1

.PHONY: setup browser run test docs bench repro exp clean-venv lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip

# Every package but torch is installed at the version in constraints.txt, so a clone next month gets
# the environment the docs' figures were measured in; `make lock` refreshes the file.
CONSTRAINTS ?= constraints.txt

# The stamp makes a second `make` free; it is redone when the dependencies or their pins change.
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e ".[dev]"
	touch $@

# Re-resolve the newest versions pyproject.toml allows in a scratch venv and pin them all (torch stays
# with TORCH_SPEC, which picks the CPU or CUDA build; CUDA runtime wheels are left out with it).
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet $(TORCH_SPEC)
	.venv-lock/bin/pip install --quiet -e ".[dev,bench]"
	{ echo "# pip constraints: every dependency of .[dev,bench] pinned (make lock); torch: see TORCH_SPEC"; \
	  .venv-lock/bin/pip freeze --exclude-editable | grep -viE '^(torch|triton|nvidia-[a-z0-9-]+|pip|setuptools|wheel)=='; \
	} > $(CONSTRAINTS)
	rm -rf .venv-lock

setup: $(VENV)/.installed

# The stages `kedro run` ran are recorded in dvc.lock (and their outputs in DVC's cache), so `dvc repro`
# and `make exp` start from this run instead of redoing it. Not with KEDRO_ARGS: a run with other
# settings must not be recorded as the dvc.yaml stages' result.
DEFAULT_STAGES := ingest caption sft grpo_vlm grpo_vdm evaluate

run: setup
	$(BIN)/kedro run $(KEDRO_ARGS)
	@if [ -z "$(KEDRO_ARGS)" ] && [ -d .git ]; then \
	  $(DVC) commit --force --quiet $(DEFAULT_STAGES); fi

# A DVC experiment from the recorded run: `make exp EXP_ARGS="-S conf/base/parameters_grpo_vdm.yml:grpo_vdm.optim.lr=5e-4"`
# re-runs only the stages the change reaches (tune is not a target); `dvc exp show` compares them.
EXP_ARGS ?=
exp: setup
	$(DVC) exp run $(EXP_ARGS) evaluate

# Headless Chromium for the kedro-viz test (Debian's package). Installed when missing and we may (root).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	    else echo "install Debian's chromium package for the kedro-viz test (needs root)"; fi; }

test: setup browser
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/pytest
	$(BIN)/mkdocs build --strict --quiet

# The docs' results pages from the finished run's reports (data/08_reporting) and the benchmarks' saved
# results (benchmarks/results), stamped with the commit, date and CPU; then the site, in build/site/.
docs: setup
	$(BIN)/python docs/gen_results.py
	$(BIN)/mkdocs build --strict

# The quick benchmarks, each side by side in one run; their figures land in benchmarks/results/ (make docs).
BENCHMARKS ?= ingest wan_vae grpo_sde grpo_stage1_vs_trl vlm_attention
bench: setup
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e ".[dev,bench]"
	@for name in $(BENCHMARKS); do \
	  $(BIN)/python -m benchmarks.$$name --json benchmarks/results/$$name.json || exit 1; done

repro: setup
	$(DVC) repro

clean-venv:
	rm -rf $(VENV)
