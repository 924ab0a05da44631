# Orchestration with Apache Airflow 3 — course commands. `make` alone lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_FOR_UV ?= python3
UV_VERSION := 0.13.8
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.cache/uv/bin/uv)
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
# Prefect and Dagster (lesson 15) need a newer FastAPI than Airflow: their own locked environment.
ORCH_VENV := $(CURDIR)/.venv-orchestrators
# Its Jupyter kernel lives in .venv's Jupyter data dir, where the lab's JupyterLab looks.
ORCH_KERNEL := $(VENV)/share/jupyter/kernels/orchestrators/kernel.json
export UV_COMPILE_BYTECODE := 1
export UV_LINK_MODE := copy

.PHONY: help setup lab test test-notebooks test-browser test-fast lint grade release airflow-start airflow-stop airflow-status mail reset lock benchmark

help: ## List the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(CURDIR)/.cache/uv/bin/uv:
	@echo "Installing uv $(UV_VERSION) into .cache/uv (no system changes) ..."
	@$(PYTHON_FOR_UV) -m venv $(CURDIR)/.cache/uv
	@$(CURDIR)/.cache/uv/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	@echo "Creating .venv from uv.lock (first time: a few minutes) ..."
	@$(UV) sync --frozen --quiet
	@echo ".venv is ready: Apache Airflow $$($(PY) -c 'from importlib.metadata import version; print(version("apache-airflow"))')."
	@touch $@

$(ORCH_VENV)/.synced: orchestrators/uv.lock orchestrators/pyproject.toml | $(UV)
	@echo "Creating .venv-orchestrators from orchestrators/uv.lock (Prefect and Dagster, lesson 15) ..."
	@UV_PROJECT_ENVIRONMENT=$(ORCH_VENV) $(UV) sync --frozen --quiet --project orchestrators
	@touch $@

$(ORCH_KERNEL): $(ORCH_VENV)/.synced $(VENV)/.synced
	@$(ORCH_VENV)/bin/python -m ipykernel install --prefix $(VENV) --name orchestrators \
	    --display-name "Python 3 (Prefect + Dagster)" --env DO_NOT_TRACK 1 \
	    --env PREFECT_SERVER_ANALYTICS_ENABLED false > $(ORCH_VENV)/kernel-install.log 2>&1 \
	    || { cat $(ORCH_VENV)/kernel-install.log; exit 1; }
	@echo ".venv-orchestrators is ready: $$($(ORCH_VENV)/bin/python -c 'from importlib.metadata import version as v; print("Prefect", v("prefect") + ", Dagster", v("dagster"))'), Jupyter kernel \"Python 3 (Prefect + Dagster)\"."

setup: $(VENV)/.synced $(ORCH_KERNEL) ## Create .venv and .venv-orchestrators from their lock files (safe to run again)

lab: setup ## Start Airflow and JupyterLab (Ctrl-C stops both)
	@$(PY) -m course lab

test: setup ## Run the whole test suite, slow tests included
	@if [ -d tests ]; then $(PY) -m pytest; \
	else echo "This learner release has no test suite: check your work with 'make grade'."; fi

test-notebooks: setup ## Run every lesson notebook top to bottom against a fresh lab
	@$(PY) -m pytest tests/test_notebooks.py -v --durations=0

test-browser: setup ## Check JupyterLab and the Airflow UI in headless Chromium (screenshots in test-artifacts/browser/)
	@$(PY) -m pytest -m browser

test-fast: setup ## Run the tests that need no running services
	@$(PY) -m pytest -m "not slow"

grade: setup ## Grade your exercises: `make grade`, one with `make grade EX=ex02`, on every save with WATCH=1
	@$(PY) -m autograder grade $(or $(EX),$(shell ls exercises | grep -E '^ex[0-9]')) $(if $(WATCH),--watch)

release: setup ## Build the learner release (nbgrader student notebooks, no solutions) in dist/
	@$(PY) -m course.release

lint: setup ## Check the code with ruff
	@$(VENV)/bin/ruff check .

airflow-start: setup ## Start the embedded Airflow in the background
	@$(PY) -m course airflow start

airflow-stop: setup ## Stop the embedded Airflow
	@$(PY) -m course airflow stop

airflow-status: setup ## Is Airflow running, where, and the admin password file
	@$(PY) -m course airflow status

mail: setup ## Show the mail the lab's SMTP sink received
	@$(PY) -m course mail

reset: airflow-stop ## Stop the lab and delete its state (.airflow/): DAG runs, logs, mail
	@$(PY) -m course orchestrators stop
	rm -rf .airflow

lock: | $(UV) ## Re-resolve the dependencies and regenerate environment.yml
	$(UV) lock
	UV=$(UV) $(UV) run --frozen python -m course.envfile > environment.yml
	$(UV) lock --project orchestrators
	UV=$(UV) $(UV) run --frozen python -m course.envfile --project orchestrators > environment-orchestrators.yml

benchmark: setup ## Measure lab start-up and grading speed against their baselines
	@$(PY) benchmarks/lab_startup.py
	@$(PY) benchmarks/grade_speed.py
