# The lab's two commands. Both set up everything they need on a fresh machine:
# a virtualenv with the project installed; Keycloak and HAPI FHIR are downloaded/built on first use.
#   make lab    the main job: stand up the stack, check it, write results/
#   make test   lint + unit tests + integration tests against the real stack

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: lab test unit lint up down status clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "fhirlab needs Python >= 3.11; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

lab: $(BIN)/.installed
	$(BIN)/fhirlab lab

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/pytest

unit: $(BIN)/.installed
	$(BIN)/pytest -m 'not integration'

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

up down status: $(BIN)/.installed
	$(BIN)/fhirlab $@

clean:
	-$(BIN)/fhirlab down
	rm -rf .lab results
