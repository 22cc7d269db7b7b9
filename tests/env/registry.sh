# shellcheck shell=bash
#! The stack's image registry: crane's own registry (go-containerregistry) on
#! 127.0.0.1:$REGISTRY_PORT, plain HTTP on loopback, blobs under $DATA_DIR/registry.
#! Its manifests and tags live in memory only: after a restart `images/build` pushes
#! them again (seconds: the blobs are still on disk), as `make test` and `make demo` do.
#!
#! Source it after lib.sh and call `up_registry`: it installs crane when missing,
#! starts the registry when it is not running and waits until it answers.
#! images/build (make images) uses it; `tests/env/stack up` can call it too.

# shellcheck source=tests/env/lib.sh
[[ -n "${ENV_DIR:-}" ]] || source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CRANE_VERSION="${CRANE_VERSION:-v0.22.1}"
CRANE="$BIN_DIR/crane"
REGISTRY_DATA_DIR="$DATA_DIR/registry"

# install_crane: crane from the Go module proxy into $BIN_DIR; the stamp makes it a no-op.
install_crane() {
  local stamp="$BIN_DIR/.crane-$CRANE_VERSION"
  [[ -f "$stamp" && -x "$CRANE" ]] && return 0
  command -v go >/dev/null || die "Go is required to install crane (https://go.dev/doc/install)"
  log "crane: installing $CRANE_VERSION"
  GOBIN="$BIN_DIR" go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION" ||
    die "go install of crane $CRANE_VERSION failed"
  rm -f "$BIN_DIR"/.crane-*
  touch "$stamp"
}

# probe_registry: does the registry answer the catalog request?
probe_registry() { "$CRANE" catalog "127.0.0.1:$REGISTRY_PORT" >/dev/null; }

# up_registry: install crane, start the registry unless it runs, wait until it answers.
up_registry() {
  install_crane
  if is_running registry; then
    wait_ready registry 30 probe_registry
    return 0
  fi
  if tcp_open "$REGISTRY_PORT"; then
    die "registry: 127.0.0.1:$REGISTRY_PORT is taken by a process the stack did not start (set HOMESTREAM_PORT_OFFSET)"
  fi
  mkdir -p "$REGISTRY_DATA_DIR"
  start_service registry "$CRANE" registry serve --address "127.0.0.1:$REGISTRY_PORT" --disk "$REGISTRY_DATA_DIR"
  wait_ready registry 30 probe_registry
}
