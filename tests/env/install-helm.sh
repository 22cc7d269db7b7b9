#!/usr/bin/env bash
#! Installs a pinned Helm into $HOMESTREAM_CACHE/bin, built from source through the Go
#! module proxy (no release tarball to trust; the module checksums come from sum.golang.org).
#! Used by the chart test (operator/tests/integration/chart.rs); `tests/env/stack up` runs it.
source "$(dirname "$0")/lib.sh"

HELM_VERSION="${HELM_VERSION:-v3.21.4}"

if [[ -x "$BIN_DIR/helm" ]] && "$BIN_DIR/helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; then
  exit 0
fi
command -v go >/dev/null || die "Go is required to build Helm (https://go.dev/doc/install)"
log "helm: building $HELM_VERSION from the Go module proxy"
# As Helm's Makefile does: the version, and the Kubernetes version `helm template` and
# `helm lint` assume (that of the client-go Helm is built with) instead of 1.20.
k8s_minor=36
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for package in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X $package.k8sVersionMajor=1 -X $package.k8sVersionMinor=$k8s_minor"
done
with_progress "building helm $HELM_VERSION" \
  env GOBIN="$BIN_DIR" GOFLAGS=-mod=mod GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" CGO_ENABLED=0 \
  go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
"$BIN_DIR/helm" version --template '{{.Version}}' | grep -qx "$HELM_VERSION" ||
  die "helm: the built binary does not report $HELM_VERSION"
log "helm: $HELM_VERSION in $BIN_DIR"
