# The README's two commands: `make serve` and `make test`. Each installs what it needs into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: serve test lint wheel-check bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# The test client is the full mlflow 3.18: the registry lacks mlflow-skinny 3.18, so the 3.17
# dependencies come first and the 3.18 wheel (the whole mlflow package) is laid over them.
$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[s3,azure,gcs,postgres,test]'
	$(BIN)/pip install -q --no-deps 'mlflow==3.18.0'
	touch $@ $(VENV)/.core

serve: $(VENV)/.core
	$(BIN)/artgw serve

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The MLflow 2 client of the 2.x compatibility test, in a venv of its own (made here, not inside
# the test's time limit).
MLFLOW2_VENV := .emu/mlflow2-venv
$(MLFLOW2_VENV)/.installed:
	$(PYTHON) -m venv $(MLFLOW2_VENV)
	$(MLFLOW2_VENV)/bin/python -m pip install -q 'mlflow-skinny==2.22.*' numpy pandas 'sqlalchemy>=1.4,<2.1' 'alembic>=1.8,<2,!=1.10.0'
	echo 'mlflow-skinny==2.22.*' > $@

# Two workers for the tests that only check behaviour (one test file per worker at a time, so a
# module's servers start once), then the `serial` ones alone: they measure memory, load or time.
test: lint $(MLFLOW2_VENV)/.installed
	bash tests/setup-system.sh
	$(BIN)/pytest -n 2 --dist loadfile -m "not serial"
	$(BIN)/pytest -m serial

wheel-check: $(VENV)/.test
	rm -rf build/wheel-check && $(BIN)/pip wheel -q --no-deps -w build/wheel-check .
	$(PYTHON) -m venv build/wheel-check/venv
	build/wheel-check/venv/bin/pip install -q build/wheel-check/artgw-*.whl
	cd build && wheel-check/venv/bin/artgw --version && wheel-check/venv/bin/artgw serve --help >/dev/null
	cd build && wheel-check/venv/bin/python -c "from tracking import migrate; print('schema head', migrate.head())"

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
