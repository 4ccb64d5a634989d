# rollwright: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)

.PHONY: venv test test-unit test-lab lint playbooks docs demo bench clean-lab

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## Everything: fast unit tests and the lab suite on real systemd hosts (needs root), on two workers: each boots
## a session lab of its own; tests/conftest.py keeps a lab module whole on one worker.
PYTEST_WORKERS ?= 2
test: venv
	$(BIN)/python -m pytest tests -n $(PYTEST_WORKERS) --durations=25

test-unit: venv
	$(BIN)/python -m pytest tests -m "not lab"

test-lab: venv
	$(BIN)/python -m pytest tests -m lab -n $(PYTEST_WORKERS) --durations=25

lint: venv
	$(BIN)/ruff check generator tests bench
	cd roles && $(BIN)/ansible-lint --offline --profile production .

## Rewrite the README's spec reference from the schema (a test fails when it is stale).
docs: venv
	$(BIN)/python -m rollwright.spec.reference README.md

## Regenerate the committed example output under playbooks/ (a test fails when it is stale).
playbooks: venv
	$(BIN)/python examples/hello/build.py 1.0.0  # the artifact the spec pins (reproducible); the project carries it
	$(BIN)/rollwright generate -f examples/hello/rollwright.yml -t staging -o playbooks/hello
	$(BIN)/rollwright generate -f examples/deployconfig/deployconfig.json -o playbooks/deployconfig

## Boot the local lab, then validate, plan and generate the example deploy for it.
demo: venv
	$(BIN)/rollwright validate -f examples/hello/rollwright.yml
	$(BIN)/python examples/hello/demo.py
	$(BIN)/rollwright plan -f examples/hello/rollwright.yml -t lab

bench: venv
	$(BIN)/python bench/bench.py

clean-lab: venv
	$(BIN)/rollwright lab down
