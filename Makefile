# dltrain — every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DATA := data/hapt
DEMO_RUN := models/demo-har-gru

.DEFAULT_GOAL := help
.PHONY: help install demo test bench-har clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed ## Create .venv and install dltrain with its test tools

demo: install ## Real HAPT data: prepare -> train (har-gru) -> evaluate -> predict
	$(BIN)/dltrain prepare har hapt --out $(DEMO_DATA) --force
	$(BIN)/dltrain train $(DEMO_DATA) --out $(DEMO_RUN) --config har-gru --force
	$(BIN)/dltrain evaluate $(DEMO_RUN) --split test
	$(BIN)/dltrain predict $(DEMO_RUN) hapt --out $(DEMO_RUN)/predictions.csv
	@echo
	@echo "run:         $(DEMO_RUN) (model.keras, config.yaml, provenance.json, history.csv, metrics-*.json)"
	@echo "figures:     $(DEMO_RUN)/learning-curves.png $(DEMO_RUN)/confusion-matrix-test.png"
	@echo "predictions: $(DEMO_RUN)/predictions.csv"

test: install ## Run the test suite
	$(BIN)/python -m pytest -q

bench-har: install ## Accuracy and wall time of the har-gru preset on HAPT (about 10 minutes)
	$(BIN)/python bench/har_baseline.py

clean: ## Remove the virtual environment and caches (keeps data/ and models/)
	rm -rf $(VENV) .pytest_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
