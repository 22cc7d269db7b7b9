# shellcheck shell=bash
#! The local stack's node: a real kubelet with containerd, runc and a CNI bridge, and
#! kube-proxy for Services. Sourced by tests/env/stack (after lib.sh).
#!
#! Everything it makes is its own and `down_node` removes it: the bridge $NODE_BRIDGE
#! and the pod range $POD_SUBNET, the pods' network namespaces and mounts (under
#! $NODE_DIR), the cgroups under /$CGROUP_ROOT, the nftables tables `ip kube-proxy`,
#! `ip6 kube-proxy` and `inet $NODE_FIREWALL`. Nothing else on the host is touched.

CGROUP_ROOT="homestream$PORT_OFFSET"
NODE_FIREWALL="homestream-node$PORT_OFFSET"
KUBELET_ROOT="$NODE_DIR/kubelet"
CRICTL_VERSION=v1.37.0
# The workspace version (the first `version = ` of Cargo.toml), the images' tag.
HOMESTREAM_VERSION="$(sed -n '/^version = /{s/^version = "\(.*\)"$/\1/p;q}' "$REPO_DIR/Cargo.toml")"
REGISTRY_HOST="127.0.0.1:$REGISTRY_PORT"
PAUSE_IMAGE="$REGISTRY_HOST/homestream-pause:$HOMESTREAM_VERSION"

install_node() {
  apt_install containerd runc containernetworking-plugins nftables iproute2 util-linux
  [[ -x "$BIN_DIR/kubelet" && -x "$BIN_DIR/kube-proxy" ]] || die "kubelet missing: bash $ENV_DIR/build-kubernetes.sh"
  if [[ ! -x "$BIN_DIR/crictl" ]]; then
    log "node: building crictl $CRICTL_VERSION"
    GOBIN="$BIN_DIR" CGO_ENABLED=0 go install "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" >&2
  fi
}

# render TEMPLATE: the node's config file with its @NAME@ placeholders filled in.
render() {
  sed -e "s|@DIR@|$NODE_DIR|g" -e "s|@SOCKET@|$CONTAINERD_SOCKET|g" -e "s|@PKI@|$PKI_DIR|g" \
    -e "s|@BRIDGE@|$NODE_BRIDGE|g" -e "s|@POD_SUBNET@|$POD_SUBNET|g" -e "s|@NODE_IP@|$NODE_IP|g" \
    -e "s|@SERVICE_SUBNET@|$SERVICE_SUBNET|g" -e "s|@NODE_NAME@|$NODE_NAME|g" \
    -e "s|@CGROUP_ROOT@|$CGROUP_ROOT|g" -e "s|@PAUSE_IMAGE@|$PAUSE_IMAGE|g" \
    -e "s|@KUBELET_PORT@|$KUBELET_PORT|g" -e "s|@KUBELET_HEALTHZ_PORT@|$KUBELET_HEALTHZ_PORT|g" \
    -e "s|@KUBE_PROXY_HEALTHZ_PORT@|$KUBE_PROXY_HEALTHZ_PORT|g" \
    -e "s|@KUBE_PROXY_METRICS_PORT@|$KUBE_PROXY_METRICS_PORT|g" \
    "$ENV_DIR/node/$1"
}

# The bridge the pods live on, with the host's address on it. The apiserver, Kafka,
# Cassandra and the demo site listen on that address, so it comes up first.
up_node_network() {
  if ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    log "node: creating bridge $NODE_BRIDGE ($NODE_IP on $POD_SUBNET)"
    ip link add "$NODE_BRIDGE" type bridge
  fi
  # Not `ip | grep -q`: grep quits at the match, ip dies of SIGPIPE and pipefail calls
  # the address missing.
  [[ "$(ip -o addr show dev "$NODE_BRIDGE")" == *" $NODE_IP/"* ]] ||
    ip addr add "$NODE_IP/${POD_SUBNET#*/}" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  # Pods need nothing beyond this machine: drop whatever they would send past the
  # bridge, should the host forward at all.
  nft -f - <<NFT
table inet $NODE_FIREWALL
delete table inet $NODE_FIREWALL
table inet $NODE_FIREWALL {
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname "$NODE_BRIDGE" oifname != "$NODE_BRIDGE" drop
  }
}
NFT
}

# issue_certificate NAME SUBJECT EXTENSIONS: a key and certificate signed by the
# stack's CA, once.
issue_certificate() {
  local name="$1" subject="$2" extensions="$3"
  [[ -f "$PKI_DIR/$name.crt" ]] && return 0
  (
    cd "$PKI_DIR"
    openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$name.key" -out "$name.csr" 2>/dev/null
    printf '%s\n' "$extensions" >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  )
}

# The node's identities: the kubelet as system:node:<name> (the Node authorizer and
# NodeRestriction admit it), its serving certificate for the bridge address, kube-proxy
# as system:kube-proxy (bound to system:node-proxier by default), and the apiserver's
# client certificate for the kubelet API (logs, exec).
ensure_node_pki() {
  local client='basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth'
  issue_certificate kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" "$client"
  issue_certificate kube-proxy "/CN=system:kube-proxy" "$client"
  issue_certificate apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
  issue_certificate kubelet "/CN=$NODE_NAME" "subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth"
}

# node_kubeconfig NAME: a kubeconfig for the node component NAME with its certificate.
node_kubeconfig() {
  cat <<YAML
apiVersion: v1
kind: Config
clusters:
- name: homestream-local
  cluster:
    server: https://$NODE_IP:$APISERVER_PORT
    certificate-authority: $PKI_DIR/ca.crt
users:
- name: $1
  user:
    client-certificate: $PKI_DIR/$1.crt
    client-key: $PKI_DIR/$1.key
contexts:
- name: node
  context: { cluster: homestream-local, user: $1 }
current-context: node
YAML
}

probe_containerd() { "$BIN_DIR/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCKET" info >/dev/null; }
probe_kubelet() {
  curl -fsS "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" | grep -q ok &&
    [[ "$("$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_FILE" get node "$NODE_NAME" \
      -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}
probe_kube_proxy() { curl -fsS "http://127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT/healthz" >/dev/null; }

up_containerd() {
  is_running containerd && return 0
  mkdir -p "$NODE_DIR/cni/net.d"
  render containerd.toml >"$NODE_DIR/containerd.toml"
  render cni.conflist >"$NODE_DIR/cni/net.d/10-homestream.conflist"
  # The stack's registry, and in Docker Hub's place: an image named as the chart and
  # the operator name them (homestream-operator:<version>, that is
  # docker.io/library/...) is pulled from the stack's registry, and no pull ever
  # leaves this machine.
  local registry
  for registry in "$REGISTRY_HOST" docker.io; do
    mkdir -p "$NODE_DIR/certs.d/$registry"
    printf 'server = "http://%s"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' \
      "$REGISTRY_HOST" "$REGISTRY_HOST" >"$NODE_DIR/certs.d/$registry/hosts.toml"
  done
  start_service containerd containerd --config "$NODE_DIR/containerd.toml"
  wait_ready containerd 60 probe_containerd
}

# cgroup v1: the pods' root in every hierarchy; cpuset needs its cpus and memory nodes
# before anything can join it.
ensure_cgroup_root() {
  local hierarchy
  for hierarchy in /sys/fs/cgroup/*/; do
    [[ "$hierarchy" == */unified/ ]] && continue
    mkdir -p "$hierarchy$CGROUP_ROOT"
  done
  local cpuset=/sys/fs/cgroup/cpuset
  if [[ -d "$cpuset/$CGROUP_ROOT" && -z "$(cat "$cpuset/$CGROUP_ROOT/cpuset.cpus")" ]]; then
    cat "$cpuset/cpuset.cpus" >"$cpuset/$CGROUP_ROOT/cpuset.cpus"
    cat "$cpuset/cpuset.mems" >"$cpuset/$CGROUP_ROOT/cpuset.mems"
  fi
}

up_kubelet() {
  is_running kubelet && return 0
  mkdir -p "$KUBELET_ROOT" "$NODE_DIR/pod-logs"
  # Volumes the kubelet mounts in its namespace (tokens, Secrets) must reach
  # containerd's: a shared mount propagates them.
  if ! findmnt -n "$KUBELET_ROOT" >/dev/null; then
    mount --bind "$KUBELET_ROOT" "$KUBELET_ROOT"
    mount --make-rshared "$KUBELET_ROOT"
  fi
  ensure_cgroup_root
  render kubelet.yaml >"$NODE_DIR/kubelet.yaml"
  node_kubeconfig kubelet-client >"$NODE_DIR/kubelet.kubeconfig"
  start_service kubelet unshare --mount --propagation unchanged \
    "$ENV_DIR/node/kubelet-sandboxed" "$NODE_DIR/sysctl" \
    "$BIN_DIR/kubelet" --config "$NODE_DIR/kubelet.yaml" --kubeconfig "$NODE_DIR/kubelet.kubeconfig" \
    --root-dir "$KUBELET_ROOT" --cert-dir "$KUBELET_ROOT/pki" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v=1
  wait_ready kubelet 120 probe_kubelet
}

up_kube_proxy() {
  is_running kube-proxy && return 0
  node_kubeconfig kube-proxy >"$NODE_DIR/kube-proxy.kubeconfig"
  render kube-proxy.yaml >"$NODE_DIR/kube-proxy.yaml"
  start_service kube-proxy "$BIN_DIR/kube-proxy" --config "$NODE_DIR/kube-proxy.yaml" --v=1
  wait_ready kube-proxy 60 probe_kube_proxy
}

# Every pod sandbox through the CRI (which tears down its network), while containerd
# still runs; the kubelet is stopped first so it does not start them again.
remove_pods() {
  is_running containerd 2>/dev/null || return 0
  "$BIN_DIR/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCKET" --timeout 60s rmp --all --force \
    >>"$LOG_DIR/containerd.log" 2>&1 || log "node: crictl rmp failed (see $LOG_DIR/containerd.log)"
}

# down_node: stop the node and remove everything it made on the host but the bridge
# (down_node_network). Images and the kubelet's root stay.
down_node() {
  stop_service kube-proxy
  stop_service kubelet
  remove_pods
  stop_service containerd
  # Shims of containers that outlived containerd (a crash): their process groups.
  pkill -KILL -f "containerd-shim-runc-v2 -namespace k8s.io -address $CONTAINERD_SOCKET" 2>/dev/null || true
  nft delete table ip kube-proxy 2>/dev/null || true
  nft delete table ip6 kube-proxy 2>/dev/null || true
  nft delete table inet "$NODE_FIREWALL" 2>/dev/null || true
  # Mounts under the node's directory: tmpfs volumes, network namespaces, rootfs.
  findmnt -rn -o TARGET | grep -F "$NODE_DIR/" | sort -r | while read -r target; do
    umount -l "$target" 2>/dev/null || true
  done
  local dir
  for dir in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
    [[ -d "$dir" ]] || continue
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  rm -rf "$NODE_DIR/cni/ipam" "$NODE_DIR/containerd/state"
}

# down_node_network: the bridge, once nothing listens on its address any more (the
# apiserver's last requests on shutdown go to that address: without it they time out).
down_node_network() {
  if ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    log "node: removing bridge $NODE_BRIDGE"
    ip link delete "$NODE_BRIDGE"
  fi
}

# The sandbox image every pod starts with: containerd pulls it from the stack's
# registry, so it is built (in seconds) before the node starts.
ensure_pause_image() {
  "$BIN_DIR/crane" digest --insecure "$PAUSE_IMAGE" >/dev/null 2>&1 || "$REPO_DIR/images/build" pause
}
