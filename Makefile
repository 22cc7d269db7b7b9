# One entry point for every routine task. CI runs `make test` (see .ci/run).
SHELL := /bin/bash
CARGO ?= cargo
STACK := tests/env/stack
# A CI run builds once from a clean clone: the incremental cache (about 2 GiB) would only
# cost disk and time.
ifdef CI
export CARGO_INCREMENTAL := 0
endif
# What a cold `make test` needs on the disk of the clone: clippy's check artifacts, the
# musl release build that serves the images and the tests (5.4 GiB with the test
# binaries), the stack's Go, Maven and state caches with the registry and the node's
# images (about 8 GiB).
DISK_NEEDED_GIB := 20

.PHONY: help demo demo-down test test-unit disk lint fmt generate stack-up stack-down stack-status toolchain bench-operator images

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

demo: toolchain ## The demo pipeline end to end: stack and node, images, helm install, demo site, rows in Cassandra.
	tests/env/demo up

demo-down: ## Stop the demo (delete its namespace, uninstall the chart, stop the site).
	tests/env/demo down

test: disk toolchain lint stack-up images ## The whole test suite on the local stack and its node (installs, builds and starts what is missing).
	images/cargo test --workspace --no-fail-fast  # the images' musl release build: one compile serves both

test-unit: toolchain ## The fast tests, with no stack: every crate's unit tests (builders, schema diffs, reconciles against a mock apiserver), the API's tests, the cleaning program's.
	tests/env/install-promtool.sh  # the dashboard test checks its queries with promtool: a tool, not a server
	$(CARGO) test --workspace --lib --bins
	$(CARGO) test -p homestream-crds --test integration
	$(CARGO) test -p homestream-runtime --test clean_listing

images: toolchain ## Build the container images without Docker (images/build) and push them to the registry on 127.0.0.1.
	images/build

lint: toolchain ## rustfmt and clippy, warnings are errors.
	$(CARGO) fmt --all -- --check
	images/cargo clippy --workspace --all-targets -- -D warnings  # shares the C builds and proc macros with the images' build

fmt: ## Format the code.
	$(CARGO) fmt --all

generate: ## Regenerate the CRD YAML in manifests/crds/ (and the Helm chart's copy) from the Rust types.
	$(CARGO) run -q -p homestream-crds --bin crdgen
	rm -f charts/homestream/crds/*.yaml && cp manifests/crds/*.yaml charts/homestream/crds/

bench-operator: stack-up ## 200 StreamTransforms through one operator: time to converge, reconciles/s, peak RSS.
	$(CARGO) test -q -p homestream-operator --test integration bench_reconcile -- --ignored --nocapture

stack-up: ## Start etcd, the Kubernetes control plane, the node, the registry, Kafka, Cassandra.
	$(STACK) up

stack-down: ## Stop the processes stack-up started.
	$(STACK) down

stack-status: ## One line per service of the local stack, with its resident memory.
	$(STACK) status

disk:
	@free=$$(df -P -BG . | awk 'NR==2 {print $$4+0}'); \
	  echo "disk: $$free GiB free where the build goes"; \
	  [ "$$free" -ge $(DISK_NEEDED_GIB) ] || echo "disk: warning: a cold build and the stack need about $(DISK_NEEDED_GIB) GiB; the build may fail with 'No space left on device'" >&2

toolchain:
	@command -v cargo >/dev/null || { echo "Rust is required: https://rustup.rs" >&2; exit 1; }
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@pkg-config --exists openssl 2>/dev/null || bash -c 'source tests/env/lib.sh && apt_install pkg-config libssl-dev'
