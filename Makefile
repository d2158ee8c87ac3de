# The lab's two commands. Both set up everything they need on a fresh machine:
# a virtualenv with the project installed; Keycloak and HAPI FHIR are downloaded/built on first use.
#   make lab    the main job: stand up the stack, check it, write results/
#   make test   lint (style, format, import layers) + unit tests + integration tests against the real stack

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

# the integration tests' own lab (ports and directory), kept running between test runs if wanted
TEST_LAB := FHIRLAB_HOME=.lab/test FHIRLAB_GATEWAY_PORT=18080 FHIRLAB_KEYCLOAK_PORT=18180 \
            FHIRLAB_KEYCLOAK_MANAGEMENT_PORT=19180 FHIRLAB_HAPI_PORT=18280

# the gateway's compiled fast lane (gateway/fastlane/, Rust: `python -m gateway --fast-lane`)
FAST_LANE := gateway/fastlane/target/release/fhirlab-fastlane

.PHONY: lab test unit lint up down status clean test-stack test-stack-down fast-lane

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "fhirlab needs Python >= 3.11; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

lab: $(BIN)/.installed
	$(BIN)/fhirlab lab

fast-lane: $(FAST_LANE)

$(FAST_LANE): gateway/fastlane/Cargo.toml gateway/fastlane/Cargo.lock $(wildcard gateway/fastlane/src/*.rs)
	cargo build --release --locked --quiet --manifest-path gateway/fastlane/Cargo.toml
	@touch $@

test: $(BIN)/.installed $(FAST_LANE)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	cargo test --release --locked --quiet --manifest-path gateway/fastlane/Cargo.toml
	$(BIN)/pytest

unit: $(BIN)/.installed
	$(BIN)/pytest -m 'not integration'

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

up down status: $(BIN)/.installed
	$(BIN)/fhirlab $@

test-stack: $(BIN)/.installed
	$(TEST_LAB) $(BIN)/fhirlab up

test-stack-down: $(BIN)/.installed
	$(TEST_LAB) $(BIN)/fhirlab down

clean:
	-$(BIN)/fhirlab down
	rm -rf .lab results
