# Every target installs what it needs first, so each works alone on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install install-ui install-observability gen check-gen check-deploy lint breaking test fuzz up clean

install: $(STAMP)

# Reinstall when the pins change.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Regenerate gen/ (messages, .pyi, gRPC stubs, Envoy descriptor set) from proto/.
gen: install
	VENV=$(VENV) scripts/gen.sh

# Fail when the committed gen/ differs from what proto/ generates.
check-gen: gen
	@git add -N gen >/dev/null 2>&1 || true
	@git diff --quiet --exit-code -- gen || { \
	  echo "gen/ is out of date with proto/: run 'make gen' and commit gen/"; \
	  git --no-pager diff --stat -- gen; exit 1; }

lint: install
	$(BIN)/buf lint
	$(BIN)/buf format --diff --exit-code --path proto/ampmesh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# deploy/ and the image, offline: every overlay rendered and schema-validated, the
# Dockerfile linted, the image's requirements in step with pyproject's pins.
check-deploy: install
	VENV=$(VENV) scripts/check_deploy.sh

# Contracts must not break against the previous commit of main (skipped when there is none).
breaking: install
	scripts/breaking.sh

# The browser test's needs (tests/ui): npm packages from the committed lockfile, Debian's
# Chromium; each only when missing.
install-ui:
	scripts/install_ui.sh

# Prometheus and promtool (Debian's prometheus package) for `up --observability` and
# tests/observability; apt-get only when missing, and no system-wide Prometheus left running.
install-observability:
	scripts/install_observability.sh

# The fault matrix (tests/faults) kills PostgreSQL, Temporal and the rest of its own mesh,
# and tests/deploy runs the rendered Kubernetes workloads on infrastructure of its own:
# each a pytest run of its own, after the previous run's mesh has stopped (session
# fixtures live as long as their run: the two cores are not shared with an idle mesh).
test: install install-ui install-observability
	$(BIN)/pytest -q --ignore=tests/faults --ignore=tests/deploy
	$(BIN)/pytest -q tests/faults
	$(BIN)/pytest -q tests/deploy

# The fuzz suite alone, long: FUZZ_CASES requests generated from the reference's OpenAPI
# documents against a whole mesh (`make test` runs it bounded to about three minutes).
FUZZ_CASES ?= 50000
fuzz: install
	AMPMESH_FUZZ_CASES=$(FUZZ_CASES) AMPMESH_FUZZ_SECONDS=0 $(BIN)/pytest -q tests/fuzz

# Brings up every service of the mesh on local defaults (Ctrl-C stops them all).
up: install
	$(BIN)/python -m services.launcher up

clean:
	rm -rf $(VENV) .ampmesh
