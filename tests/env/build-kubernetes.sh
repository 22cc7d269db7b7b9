#!/usr/bin/env bash
#! Builds etcd 3.6 and kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
#! and the node's kubelet and kube-proxy of one Kubernetes release from the Go module
#! proxy, into $HOMESTREAM_CACHE/bin.
#!
#! k8s.io/kubernetes cannot be `go install`ed (its go.mod replaces its staging modules
#! with local paths), so a throwaway module requires it and replaces each staging
#! module k8s.io/<m> v0.0.0 with the published k8s.io/<m> v0.<minor>.<patch>.
source "$(dirname "$0")/lib.sh"

build_kubernetes() {
  local stamp="$BIN_DIR/.kubernetes-$K8S_VERSION-node"
  [[ -f "$stamp" ]] && return 0
  local staging="v0.${K8S_VERSION#v1.}" minor
  minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  local mod="$HOMESTREAM_CACHE/src/kubernetes-$K8S_VERSION"
  log "building Kubernetes $K8S_VERSION (10-25 minutes cold on 2 cores)"
  rm -rf "$mod"
  mkdir -p "$mod"
  local gomod
  gomod="$(cd "$mod" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
    sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [[ -f "$gomod" ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION"
  {
    echo "module homestream.local/kubernetes-build"
    grep -E '^(go|godebug) ' "$gomod" || true
    echo "require k8s.io/kubernetes $K8S_VERSION"
  } >"$mod/go.mod"
  # kubernetes' go.mod replaces each staging module with ./staging/src/k8s.io/<m>.
  local staged
  staged="$(grep -E '=> \./staging/' "$gomod" | awk '{print $1}' | sort -u)"
  for m in $staged; do
    (cd "$mod" && go mod edit "-replace=$m=$m@$staging")
  done
  cat >"$mod/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
GO
  (cd "$mod" && go mod tidy -e >&2)
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  with_progress "building Kubernetes $K8S_VERSION (about 11 minutes on 2 cores)" \
    in_dir "$mod" env CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
  touch "$stamp"
}

build_etcd() {
  local stamp="$BIN_DIR/.etcd-$ETCD_VERSION"
  [[ -f "$stamp" ]] && return 0
  local mod="$HOMESTREAM_CACHE/src/etcd-$ETCD_VERSION"
  log "building etcd $ETCD_VERSION"
  mkdir -p "$mod"
  cat >"$mod/main.go" <<'GO'
// Command etcd is etcd's own server entry point, built from the module proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  printf 'module homestream.local/etcd-build\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$mod/go.mod"
  (cd "$mod" && go mod tidy >&2)
  with_progress "building etcd $ETCD_VERSION" \
    in_dir "$mod" env CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd" .
  touch "$stamp"
}

build_etcd
build_kubernetes
