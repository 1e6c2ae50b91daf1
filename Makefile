# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Bytecode is compiled at install time: with PYTHONDONTWRITEBYTECODE set (as on these
# machines) every process would otherwise recompile mlflow from source (~10 s each).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install demo test lint typecheck bench clean browser prometheus

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e ".[all]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python example_dags/run_airflow_demo.py

lint: $(STAMP)
	$(BIN)/ruff check .

# mypy: strict on the engine, annotated definitions on the skins (pyproject [tool.mypy]).
# Incremental: .mypy_cache makes a re-run take a few seconds.
typecheck: $(STAMP)
	$(BIN)/mypy

# Headless Chromium for the UI checks of the Airflow and Prefect forms (Debian packages).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }

# Prometheus for the rollout-analysis tests, which start it on loopback (Debian package).
prometheus:
	@command -v prometheus >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq prometheus >/dev/null; }

test: $(STAMP) lint typecheck browser prometheus
	$(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

bench: $(STAMP) prometheus
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
