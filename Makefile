# Phoenix: `make demo` runs the local cluster, `make test` runs every check and test.
# Both install what they need (venv, pinned Python packages, the wheel) by themselves.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The Salt release `make test` runs against; `make test-compat SALT=...` tries another.
SALT_REFERENCE := 3008.3
SALT ?= $(SALT_REFERENCE)
export CARGO_TARGET_DIR := $(CURDIR)/target
# One Rust release build of the dependencies per `make test`: the wheel, `cargo test` and the
# benchmarks share it (Cargo.toml's release profile and dev-dependencies say what keeps their
# hashes equal); only this crate and PyO3 are compiled again for the wheel.
CARGO_PROFILE := --release

WHEEL_INPUTS := Cargo.toml Cargo.lock pyproject.toml $(shell find src python _engines _runners _beacons reactor cfn -type f -not -path '*/__pycache__/*' 2>/dev/null)

.PHONY: help test demo soak lint rust-lint rust-test python-lint stubtest unit integration \
        test-compat wheel lab venv clean

help:
	@echo "make demo         run a Phoenix cluster on loopback (AWS emulator + real Salt daemons)"
	@echo "make test         every check and test (Rust and Python, unit and integration)"
	@echo "make test-compat SALT=3007.15   integration tests against another Salt release"
	@echo "make soak         30 minutes of random failures and AWS faults, invariants watched"
	@echo "                  (SOAK_ARGS='--minutes 5 --seed 7 --json soak.json')"

venv: $(VENV)/.installed

$(VENV)/.installed: requirements/test.txt requirements/constraints.txt
	@echo "==> creating $(VENV) with pinned packages"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		"salt==$(SALT_REFERENCE)" -r requirements/test.txt -c requirements/constraints.txt
	touch $@

# checkov's dependencies conflict with Salt's: the template linters get their own venv.
$(VENV)-cfn/.installed: requirements/cfn.txt requirements/cfn-constraints.txt
	@echo "==> creating $(VENV)-cfn with the CloudFormation linters"
	$(PYTHON) -m venv $(VENV)-cfn
	$(VENV)-cfn/bin/python -m pip install --quiet --disable-pip-version-check \
		-r requirements/cfn.txt -c requirements/cfn-constraints.txt
	touch $@

wheel: dist/.built

# The lab (lab/: emulator driver, stand-ins, fleet simulator, demo) is a package of its own,
# installed editable so that its edits need no reinstall; the wheel does not carry it.
lab: $(VENV)/.lab-installed

$(VENV)/.lab-installed: $(VENV)/.installed lab/pyproject.toml
	@echo "==> installing the lab (phoenix-lab, editable)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e lab
	touch $@

dist/.built: $(VENV)/.installed $(WHEEL_INPUTS)
	@echo "==> building the phoenix-salt wheel (release; the first build takes several minutes)"
	rm -rf dist/*.whl
	$(BIN)/maturin build $(CARGO_PROFILE) --out dist --interpreter $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps dist/phoenix_salt-*.whl
	touch $@

rust-lint:
	@echo "==> cargo fmt, clippy"
	cargo fmt --check
	cargo clippy $(CARGO_PROFILE) --all-targets --features python -- -D warnings

rust-test:
	@echo "==> cargo test"
	cargo test $(CARGO_PROFILE)

python-lint: $(VENV)/.installed
	@echo "==> ruff"
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

stubtest: wheel
	@echo "==> mypy.stubtest: _core.pyi against the built module"
	cd /tmp && $(CURDIR)/$(BIN)/python -m mypy.stubtest phoenix_salt._core

lint: rust-lint python-lint

unit: wheel lab
	@echo "==> unit tests (no daemons)"
	$(BIN)/pytest tests/unit -q

integration: wheel lab
	@echo "==> integration tests (real Salt daemons + AWS emulator)"
	$(BIN)/pytest tests/integration -q

test: lint rust-test wheel lab stubtest $(VENV)-cfn/.installed
	@echo "==> pytest: every tier"
	PHOENIX_CFN_TOOLS=$(CURDIR)/$(VENV)-cfn/bin $(BIN)/pytest tests -q --durations=30

test-compat: wheel
	@echo "==> integration tests against Salt $(SALT)"
	$(PYTHON) -m venv $(VENV)-salt-$(SALT)
	# No constraints file here: it pins the reference Salt's dependencies.
	$(VENV)-salt-$(SALT)/bin/python -m pip install --quiet --disable-pip-version-check \
		"salt==$(SALT)" -r requirements/test.txt \
		$(if $(filter 3006.%,$(SALT)),-r requirements/salt-3006.txt)
	$(VENV)-salt-$(SALT)/bin/python -m pip install --quiet --disable-pip-version-check \
		--force-reinstall --no-deps dist/phoenix_salt-*.whl
	$(VENV)-salt-$(SALT)/bin/python -m pip install --quiet --disable-pip-version-check \
		--no-deps -e lab
	$(VENV)-salt-$(SALT)/bin/pytest tests/integration -q

demo: wheel lab
	$(BIN)/python -m phoenix_lab.demo $(DEMO_ARGS)

soak: wheel lab
	$(BIN)/python -m phoenix_lab.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) $(VENV)-salt-* dist target
