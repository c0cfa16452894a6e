# tabtune — every target that needs Python creates .venv and installs the project first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TABTUNE := $(BIN)/tabtune $(if $(CONFIG),--config $(CONFIG))

BRAND ?=
DATE  ?=
TASK  ?= bid

.PHONY: help install demo test lint format data load check pretrain finetune tune refresh report bench clean distclean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,plot,dask]"
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install tabtune with the dev, plot and dask extras

demo: $(STAMP)  ## simulate 60 brands, pretrain, adapt every brand, print the table
	$(TABTUNE) demo

test: $(STAMP)  ## run the test suite
	$(BIN)/python -m pytest -q

lint: $(STAMP)  ## ruff check + format check + mypy
	$(BIN)/ruff check tabtune tests benchmarks
	$(BIN)/ruff format --check tabtune tests benchmarks
	$(BIN)/mypy

format: $(STAMP)  ## apply ruff formatting and fixes
	$(BIN)/ruff format tabtune tests benchmarks
	$(BIN)/ruff check --fix tabtune tests benchmarks

data: $(STAMP)  ## write simulated history into the store
	$(TABTUNE) synth

load: $(STAMP)  ## load your export into the store: make load FILE=export.csv [CONFIG=...]
	@test -n "$(FILE)" || (echo "usage: make load FILE=<export.csv or folder> [CONFIG=config.yaml]"; exit 2)
	$(TABTUNE) load $(FILE)

check: $(STAMP)  ## which tasks and decisions the stored data supports, and what to fix
	$(TABTUNE) check

pretrain: $(STAMP)  ## fit the global model (TASK=bid)
	$(TABTUNE) pretrain --task $(TASK)

finetune: $(STAMP)  ## adapt to one brand: make finetune BRAND=b001
	@test -n "$(BRAND)" || (echo "usage: make finetune BRAND=<brand_id>  (or BRAND=all)"; exit 2)
	$(TABTUNE) finetune --task $(TASK) $(if $(filter all,$(BRAND)),--all,--brand $(BRAND))

tune: $(STAMP)  ## Optuna search on the sample (config tuning.*)
	$(TABTUNE) tune --task $(TASK) $(if $(TRIALS),--trials $(TRIALS)) $(if $(TIMEOUT),--timeout $(TIMEOUT))

refresh: $(STAMP)  ## nightly refresh: make refresh DATE=2025-12-31
	@test -n "$(DATE)" || (echo "usage: make refresh DATE=YYYY-MM-DD"; exit 2)
	$(TABTUNE) refresh --date $(DATE)

report: $(STAMP)  ## summarise the latest refresh run
	$(TABTUNE) report $(if $(DATE),--date $(DATE))

bench: $(STAMP)  ## transfer (and on fresh simulations), tuning, refresh, refit schedule, bid, budget, device, scale, Dask-transfer and run-state benchmarks, the Facebook export -> docs/benchmarks.md (run on an idle machine)
	$(BIN)/python -m benchmarks.transfer
	$(BIN)/python -m benchmarks.transfer --seeds 14 15 16 --g2-seeds 24 25 26 --no-ipinyou --no-overhead --no-extras --section transfer-fresh
	$(BIN)/python -m benchmarks.tuning
	$(BIN)/python -m benchmarks.refresh
	$(BIN)/python -m benchmarks.refit_schedule
	$(BIN)/python -m benchmarks.bids
	$(BIN)/python -m benchmarks.budget
	$(BIN)/python -m benchmarks.device
	$(BIN)/python -m benchmarks.facebook
	$(BIN)/python -m benchmarks.scale
	$(BIN)/python -m benchmarks.dask_transfer
	$(BIN)/python -m benchmarks.run_state

clean:  ## remove generated data, models, runs, outputs and the leaf cache
	rm -rf data/campaigns data/truth data/shop data/agency models runs outputs cache

distclean: clean  ## also remove the virtual environment
	rm -rf $(VENV) *.egg-info
