# Ops-Core developer entry points. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
CLUSTER_DIR ?= .cluster

.DEFAULT_GOAL := help
.PHONY: help venv lint fmt typecheck test test-unit test-integration control-plane-bin test-tools jaeger-bin \
	cluster-up cluster-down demo crds check image kind-up kind-load deploy undeploy kind-down openapi \
	bench bench-check bench-profile bench-apiserver-profile bench-write-shapes bench-ab chaos chaos-short

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed ## Create .venv with Ops-Core and its dev tools

control-plane-bin: ## Build etcd, kube-apiserver, kube-controller-manager into the cache (once)
	@hack/build-control-plane.sh >/dev/null

lint: venv ## ruff (lint + format check), mypy (code and tests), the layers (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

fmt: venv ## Format and fix what ruff can
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

crds: venv ## Regenerate crds/*.yaml and docs/crd-reference.md from the pydantic models
	$(PY) -m opscore_testbed.crd_files crds

openapi: venv ## Regenerate docs/openapi.json from the sidecar app (a test fails when it drifts)
	$(PY) -m opscore_sidecar.openapi > docs/openapi.json.tmp && mv docs/openapi.json.tmp docs/openapi.json

test-tools: jaeger-bin ## Debian's chromium and haproxy for the integration tests (installed when root), and Jaeger
	@hack/ensure-test-tools.sh

jaeger-bin: ## Build Jaeger (v1.75.0, the trace tests' backend) into the cache (once; a few minutes)
	@hack/build-jaeger.sh >/dev/null

test: venv control-plane-bin test-tools ## All tests: unit, then integration on a local control plane
	$(BIN)/pytest -q

test-unit: venv ## Unit tests only (no control plane)
	$(BIN)/pytest -q -m "not integration"

test-integration: venv control-plane-bin test-tools ## Integration tests only
	$(BIN)/pytest -q -m integration

check: lint test ## Everything CI runs

cluster-up: venv control-plane-bin ## Start a local control plane in $(CLUSTER_DIR) (prints KUBECONFIG)
	$(PY) -m opscore_testbed.controlplane_cli up --dir $(CLUSTER_DIR)

cluster-down: venv ## Stop the local control plane started by cluster-up
	$(PY) -m opscore_testbed.controlplane_cli down --dir $(CLUSTER_DIR)

SIZE ?= full
SCENARIOS ?= S,B0,B1,B2,B3,B4,B5
BENCH_OUT ?= bench/results/latest.json
bench: venv control-plane-bin ## Benchmarks (SIZE=smoke|full, SCENARIOS=B0,..., TRACES=1: B1 traced too): table, JSON, PNG in bench/results
	$(PY) -m opscore_testbed.bench --size $(SIZE) --scenarios $(SCENARIOS) --out $(BENCH_OUT) $(if $(TRACES),--traces,)

# Compares BENCH_OUT (a run) with the committed results: exit 1 on a regression.
BENCH_BASELINE ?= git:HEAD:bench/results/latest.json
bench-check: venv ## Compare BENCH_OUT with the committed baseline (MAD rule, 5%/15%): fails on a regression
	$(PY) -m opscore_testbed.bench.check --baseline $(BENCH_BASELINE) --run $(BENCH_OUT)

bench-profile: venv control-plane-bin ## B1 with the operator under py-spy: BENCH_OUT and its -profile.md table
	$(PY) -m opscore_testbed.bench --size $(SIZE) --scenarios B1 --profile --repeats 1 --out $(BENCH_OUT)

bench-apiserver-profile: venv control-plane-bin ## B4's load at RATE (100) reports/s with kube-apiserver's pprof: bench/results/latest-apiserver-profile.md
	$(PY) -m opscore_testbed.bench.apiserver_profile --rate $(or $(RATE),100)

bench-write-shapes: venv control-plane-bin ## kube-apiserver's CPU per durable report by how reports are stored: bench/results/latest-write-shapes.md
	$(PY) -m opscore_testbed.bench.write_shapes $(if $(RATE),--rate $(RATE),)

# BASE: the git ref to beat; the candidate is this checkout as it is (CANDIDATE=ref for another).
BASE ?= HEAD
PAIRS ?= 3
# AB_SCENARIOS: B1 (default), B3, or B1,B3.
AB_SCENARIOS ?= B1
bench-ab: venv control-plane-bin ## B1 (AB_SCENARIOS=B1,B3) on BASE and on this checkout, interleaved (ABBA, PAIRS pairs): fails on a worse tracked figure
	$(PY) -m opscore_testbed.bench.ab --base $(BASE) --pairs $(PAIRS) --scenarios $(AB_SCENARIOS) $(if $(CANDIDATE),--candidate $(CANDIDATE),)

# CHAOS_SCENARIOS=F1,F3 runs a selection; SOAK_MINUTES sets F8's length (20 in the report).
CHAOS_SCENARIOS ?=
SOAK_MINUTES ?= 20
chaos: venv control-plane-bin ## Fault suite F1-F10 (fails on any broken guarantee): table in chaos/results/latest.json
	$(PY) -m opscore_testbed.chaos --soak-minutes $(SOAK_MINUTES) $(if $(CHAOS_SCENARIOS),--scenarios $(CHAOS_SCENARIOS),)

chaos-short: venv control-plane-bin ## Fault suite, short: ~20 workflows per scenario, F1-F7, F9, F10, no soak
	$(PY) -m opscore_testbed.chaos --short $(if $(CHAOS_SCENARIOS),--scenarios $(CHAOS_SCENARIOS),)

demo: venv control-plane-bin ## Run the demo: control plane, operator, sidecar, 3 agents, example workflows (JAEGER=1: and traces)
	$(PY) -m opscore_testbed.demo $(if $(DEMO_ONCE),--once,) $(if $(JAEGER),--jaeger,)

# -- Kubernetes with kind (needs Docker and kind; see README "Install on Kubernetes") --------
IMAGE ?= opscore:dev
KIND_CLUSTER ?= opscore
KUBE_CONTEXT ?= kind-$(KIND_CLUSTER)
# AgentKit as the operator's pod reaches it. Docker Desktop resolves host.docker.internal
# to the host; on Linux pass the kind network's gateway, e.g. AGENTKIT_URL=http://172.18.0.1:8001
# (`docker network inspect kind`).
AGENTKIT_URL ?= http://host.docker.internal:8001
DOCKER ?= docker
KIND ?= kind
KUBECTL ?= kubectl
KIND_OVERLAY := deploy/overlays/kind

image: ## Build the container image $(IMAGE) (needs Docker)
	$(DOCKER) build -t $(IMAGE) .

kind-up: ## Create the kind cluster from kind-config.yaml (sidecar on localhost:8080)
	$(KIND) create cluster --name $(KIND_CLUSTER) --config kind-config.yaml --wait 120s

kind-load: ## Copy $(IMAGE) into the kind cluster's node (after make image)
	$(KIND) load docker-image $(IMAGE) --name $(KIND_CLUSTER)

deploy: ## Install or update Ops-Core on the kind cluster and wait until it is ready
	$(KUBECTL) kustomize $(KIND_OVERLAY) \
		| sed 's#http://host.docker.internal:8001#$(AGENTKIT_URL)#' \
		| $(KUBECTL) --context $(KUBE_CONTEXT) apply --server-side -f -
	@# The tag stays `dev` across builds: restart so a freshly loaded image is used.
	$(KUBECTL) --context $(KUBE_CONTEXT) -n opscore-system rollout restart \
		deployment/opscore-operator deployment/opscore-sidecar
	$(KUBECTL) --context $(KUBE_CONTEXT) -n opscore-system rollout status \
		deployment/opscore-operator --timeout=180s
	$(KUBECTL) --context $(KUBE_CONTEXT) -n opscore-system rollout status \
		deployment/opscore-sidecar --timeout=180s

undeploy: ## Remove Ops-Core from the kind cluster (CRDs too: every Workflow and Agent goes)
	$(KUBECTL) --context $(KUBE_CONTEXT) delete -k $(KIND_OVERLAY) --ignore-not-found

kind-down: ## Delete the kind cluster
	$(KIND) delete cluster --name $(KIND_CLUSTER)
