# dltrain — every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DATA := data/hapt
DEMO_RUN := models/demo-har-gru
RETINA_DATA := data/retina-demo
RETINA_RAW := data/raw/retina-demo
RETINA_RUN := models/demo-retina-cnn
SWEEP_OUT := models/sweep-optimizers
LAB_OUT := models/lab
# The lecture's comparison of SGD techniques: same model, same rate, same budget, no annealing.
SWEEP_BUDGET := --set train.epochs=8 --set optimizer.learning_rate=0.01 --set schedule.name=constant \
	--set early_stopping.patience=0 --set early_stopping.start_from_epoch=0

.DEFAULT_GOAL := help
.PHONY: help install demo demo-har demo-retina lint test test-slow sweep lab reproduce reproduce-full bench bench-har bench-peer bench-retina clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed ## Create .venv and install dltrain with its test tools

demo: demo-har demo-retina ## Both journeys on the embedded data: activity (real HAPT), then retina (simulated); about 10 minutes on a 2-core CPU

demo-har: install ## Real HAPT data: prepare -> train (har-gru) -> evaluate -> predict -> explain
	$(BIN)/dltrain prepare har hapt --out $(DEMO_DATA) --force
	$(BIN)/dltrain train $(DEMO_DATA) --out $(DEMO_RUN) --config har-gru --force
	$(BIN)/dltrain evaluate $(DEMO_RUN) --split test
	$(BIN)/dltrain predict $(DEMO_RUN) hapt --out $(DEMO_RUN)/predictions.csv
	$(BIN)/dltrain explain $(DEMO_RUN) $(DEMO_DATA) --split test --limit 8 --out $(DEMO_RUN)/explained
	@echo
	@echo "run:         $(DEMO_RUN) (model.keras, config.yaml, provenance.json, history.csv, metrics-*.json)"
	@echo "figures:     $$(cd $(DEMO_RUN) && ls *.png | sed 's|^|$(DEMO_RUN)/|' | tr '\n' ' ')"
	@echo "explained:   $(DEMO_RUN)/explained (saliency of 8 test windows; explain.json says what each shows)"
	@echo "predictions: $(DEMO_RUN)/predictions.csv"

demo-retina: install ## Simulated fundus set: simulate + prepare (128 px) -> train (retina-cnn) -> evaluate -> predict -> explain
	$(BIN)/dltrain prepare retina demo --out $(RETINA_DATA) --demo-dir $(RETINA_RAW) --size 128 --mix balanced --force
	$(BIN)/dltrain train $(RETINA_DATA) --out $(RETINA_RUN) --config retina-cnn --force
	$(BIN)/dltrain evaluate $(RETINA_RUN) --split test
	$(BIN)/dltrain predict $(RETINA_RUN) $(RETINA_RAW)/test --out $(RETINA_RUN)/submission.csv
	$(BIN)/dltrain explain $(RETINA_RUN) $(RETINA_RAW)/test --limit 8 --out $(RETINA_RUN)/explained
	@echo
	@echo "run:         $(RETINA_RUN) (model.keras, config.yaml, provenance.json with the tuned thresholds)"
	@echo "figures:     $$(cd $(RETINA_RUN) && ls *.png | sed 's|^|$(RETINA_RUN)/|' | tr '\n' ' ')"
	@echo "explained:   $(RETINA_RUN)/explained (Grad-CAM of 8 test photographs; explain.json says what each shows)"
	@echo "submission:  $(RETINA_RUN)/submission.csv (Kaggle format image,level)"

lint: install ## Check the code with ruff (lint rules and formatting, pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# One pytest-xdist worker more than the cores (at most 5): a worker often waits (on the processes it
# starts, on files, on the kill tests' signals) while its core could work. On 2 cores, 3 workers ran
# the suite in 1,135 s against 2 workers' 1,406 s, the same commit on the same machine that day.
TEST_WORKERS ?= $(shell $(PYTHON) -c "import os; cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1; print(min(cores + 1, 5))")

test: lint ## Lint, then run the test suite (about 19 minutes on a 2-core CPU)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=15 -m "not slow"  # a group's tests on one worker; the slowest listed

test-slow: install ## The tests too slow for every run: every backbone traced and XLA-compiled as a GPU runs it, on both backends (about 40 minutes)
	$(BIN)/python -m pytest -q -n 2 --durations=15 -m slow

sweep: install ## The lecture's optimizer comparison on HAPT (6 runs x 8 epochs, about 8 minutes): $(SWEEP_OUT)/comparison.{csv,png}
	test -f $(DEMO_DATA)/meta.json || $(BIN)/dltrain prepare har hapt --out $(DEMO_DATA)
	$(BIN)/dltrain sweep $(DEMO_DATA) --config har-gru --out $(SWEEP_OUT) $(SWEEP_BUDGET) \
		--grid optimizer.name=sgd,momentum,nesterov,adagrad,rmsprop,adam

lab: install ## The lecture's claims on HAPT, quick budget (about 13 minutes on a 2-core CPU): $(LAB_OUT)/REPORT.md + one figure per experiment
	test -f $(DEMO_DATA)/meta.json || $(BIN)/dltrain prepare har hapt --out $(DEMO_DATA)
	$(BIN)/dltrain lab --data $(DEMO_DATA) --out $(LAB_OUT) --budget quick

reproduce: install ## Re-run both baselines from scratch at the CI budget (about 2 minutes); exit 3 on a regression
	$(BIN)/dltrain reproduce --all --budget ci

reproduce-full: install ## The same at the presets' full budgets (about 13 minutes)
	$(BIN)/dltrain reproduce --all --budget full

bench: install ## The speed bench suite, side by side in one run; writes bench/RESULTS.md (about 15 minutes)
	$(BIN)/python bench/suite.py

bench-har: install ## Accuracy and wall time of the har-gru preset on HAPT (3-5 minutes)
	$(BIN)/python bench/har_baseline.py

bench-peer: install ## The activity preset against aeon's MiniRocket on HAPT and BasicMotions; writes bench/RESULTS-peer.md (about 35 minutes)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/peer.py --seeds 1,2,3,4,5 --refit --markdown bench/RESULTS-peer.md

bench-retina: install ## Kappa and wall time of retina-cnn on the simulated demo set (about 10 minutes)
	$(BIN)/python bench/retina_baseline.py

clean: ## Remove the virtual environment and caches (keeps data/ and models/)
	rm -rf $(VENV) .pytest_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
