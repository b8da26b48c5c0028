# dlbase - every target documents itself: `make help`.
# Two commands set up a fresh Debian/Ubuntu machine (as root):
#   make all    build and verify the default image
#   make all-lines   ... and the runtime of every other line (torch 2.14 on Debian 13)
#   make test   run every test, as CI does (.ci/run); `make test-fast` for the edit loop (no daemon)

SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV ?= .venv
DLBASE := $(VENV)/bin/dlbase
PYTEST := $(VENV)/bin/python -m pytest
VARIANT ?=
REQUIRE_GPU ?=
VERIFY_FLAGS := $(if $(REQUIRE_GPU),--require-gpu,)
STAMP := $(VENV)/.installed
# The runtime of every line that builds with no registry (its base is bootstrapped here):
# read from the rendered variant folders, so a line added to images/matrix.yaml and
# rendered joins `make all-lines` with no edit here. Override: LINES="VARIANT ...".
LINES ?= $(patsubst images/%/Dockerfile,%,$(wildcard images/torch*-runtime-debian*/Dockerfile))

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}'

.PHONY: all
all: setup base build verify ## set up the host, bootstrap the Debian bases, build and verify the default image (the main job)

.PHONY: all-lines
all-lines: setup base ## `make all` for every line: build and verify each line's runtime on its bootstrapped Debian base (LINES)
	@set -e; for v in $(LINES); do echo "== $$v"; $(DLBASE) build $$v; $(DLBASE) verify $(VERIFY_FLAGS) $$v; done

.PHONY: setup
setup: host venv ## install everything: host packages (Docker engine, debootstrap, registry) and the Python venv

.PHONY: host
host: ## install and start the host's tools (Docker engine, debootstrap, docker-registry, cosign 2.5 and 3); idempotent
	bash tools/host/setup.sh
	bash tools/host/cosign3.sh

.PHONY: venv
venv: $(STAMP) ## create .venv with dlbase and its test tools (hadolint, uv, pytest, testinfra)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	touch $@

.PHONY: check
check: venv ## check every variant against images/compat.yaml
	$(DLBASE) check

.PHONY: render
render: venv ## re-render Dockerfiles, image facts, bake file and README tag table
	$(DLBASE) render

.PHONY: render-check
render-check: venv ## fail when a committed generated file differs from the templates
	$(DLBASE) render --check

.PHONY: lint
lint: venv ## hadolint every rendered Dockerfile
	$(DLBASE) lint

.PHONY: lock
lock: venv ## resolve the hash-pinned lock of VARIANT (default: every lockable variant)
	$(DLBASE) lock $(VARIANT)

.PHONY: lock-check
lock-check: venv ## fail when a lock is stale against the matrix/compat data
	$(DLBASE) lock --check

.PHONY: base
base: venv ## bootstrap every local Debian base the matrix names (12 and 13: debootstrap + docker import); idempotent
	$(DLBASE) base bootstrap --all

.PHONY: build
build: venv ## build VARIANT (default: the matrix's default variant) on the local daemon
	$(DLBASE) build $(VARIANT)

.PHONY: verify
verify: venv ## verify VARIANT's image (REQUIRE_GPU=1 on GPU hosts: GPU checks must run)
	$(DLBASE) verify $(VERIFY_FLAGS) $(VARIANT)

.PHONY: doctor
doctor: venv ## pre-flight of a GPU host: Docker, NVIDIA runtime, driver and GPU vs each CUDA line, /dev/shm
	$(DLBASE) doctor $(VERIFY_FLAGS)

.PHONY: static
static: render-check lint check lock-check ci-check ## the checks that need no daemon: drift, lint, compatibility, lock integrity, CI hand-offs

.PHONY: ci-check
ci-check: venv ## what users' CI gets: the workflow against GitHub's schema (offline), the bake file's targets, Dockerfiles and tags
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows ci/github-actions.yml
	$(PYTEST) -q tests/unit/test_ci_handoff.py

# The unit tests need no daemon and share nothing between tests (tmp paths, free ports), so
# they run on every core (pytest-xdist); the integration tests share one daemon and the
# session's images (one full default image per session), so they run one at a time.
# `make test` runs the integration tests even when a unit test failed, so one CI log shows
# every failure (as the single pytest run it replaces did), and exits non-zero if either did.
UNIT_TESTS := $(PYTEST) -q -n auto -p no:cacheprovider tests/unit

.PHONY: unit
unit: venv ## fast tests, no daemon, on every core
	$(UNIT_TESTS)

.PHONY: test-fast
test-fast: static ## the edit loop, no daemon: static checks, then the unit tests on every core
	$(UNIT_TESTS)

.PHONY: test
test: setup ## everything CI runs: static checks, unit tests (every core), then integration tests on a real daemon
	$(MAKE) static
	@status=0; $(UNIT_TESTS) --durations=10 || status=$$?; \
	$(PYTEST) --durations=25 tests/integration || status=$$?; exit $$status

.PHONY: bench-trust
bench-trust: venv ## what push --sign adds per image: seconds and registry bytes (.dlbase/bench/trust-sign.json)
	$(VENV)/bin/python -m tests.support.bench_trust $(IMAGE)

.PHONY: bench
bench: bench-build ## every benchmark (JSON + markdown table under .dlbase/bench/)

.PHONY: bench-build
bench-build: venv ## image size vs payload and a naive Dockerfile; cold vs warm build time (minutes)
	$(DLBASE) bench build $(VARIANT)

.PHONY: clean
clean: ## remove the venv and dlbase's local state (.dlbase/: logs, records); the shared wheelhouse cache stays (docs/cache.md)
	rm -rf $(VENV) .dlbase
