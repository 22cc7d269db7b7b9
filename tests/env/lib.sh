# shellcheck shell=bash
#! Shared settings and helpers for the local stack scripts in tests/env/.
#
# Every download and build lives under $HOMESTREAM_CACHE (outside the repository);
# logs, pids, data directories, the kubeconfig and the env file live under
# $HOMESTREAM_STATE. Both can be overridden from the environment.

set -euo pipefail

ENV_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$ENV_DIR/../.." && pwd)"
HOMESTREAM_CACHE="${HOMESTREAM_CACHE:-$HOME/.cache/homestream}"
HOMESTREAM_STATE="${HOMESTREAM_STATE:-$HOME/.local/state/homestream}"
BIN_DIR="$HOMESTREAM_CACHE/bin"
LOG_DIR="$HOMESTREAM_STATE/logs"
PID_DIR="$HOMESTREAM_STATE/pids"
DATA_DIR="$HOMESTREAM_STATE/data"
PKI_DIR="$HOMESTREAM_STATE/pki"

# Pinned versions: one current release of each server (Kafka's and Cassandra's are in
# their pom.xml, beside their configuration).
K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"
TRINO_VERSION="${TRINO_VERSION:-476}"
# Trino 476 needs Java 22+; Debian bookworm has none, this machine kind ships Temurin 25.
TRINO_JAVA_HOME="${TRINO_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"

# Loopback ports of the stack. HOMESTREAM_PORT_OFFSET shifts them all, so a second
# stack (with its own HOMESTREAM_STATE) can run beside the first.
PORT_OFFSET="${HOMESTREAM_PORT_OFFSET:-0}"
ETCD_PORT=$((12379 + PORT_OFFSET))
ETCD_PEER_PORT=$((12380 + PORT_OFFSET))
APISERVER_PORT=$((16443 + PORT_OFFSET))
CONTROLLER_MANAGER_PORT=$((10257 + PORT_OFFSET))
SCHEDULER_PORT=$((10259 + PORT_OFFSET))
KAFKA_PORT=$((9092 + PORT_OFFSET))
KAFKA_CONTROLLER_PORT=$((9093 + PORT_OFFSET))
KAFKA_SECURE_PORT=$((9094 + PORT_OFFSET))
KAFKA_MTLS_PORT=$((9095 + PORT_OFFSET))
KAFKA_SCRAM_USER=homestream
CASSANDRA_PORT=$((9042 + PORT_OFFSET))
CASSANDRA_STORAGE_PORT=$((17000 + PORT_OFFSET))
CASSANDRA_JMX_PORT=$((17199 + PORT_OFFSET))
REGISTRY_PORT=$((15000 + PORT_OFFSET))
KUBELET_PORT=$((10250 + PORT_OFFSET))
KUBELET_HEALTHZ_PORT=$((10248 + PORT_OFFSET))
KUBE_PROXY_HEALTHZ_PORT=$((10256 + PORT_OFFSET))
KUBE_PROXY_METRICS_PORT=$((10249 + PORT_OFFSET))
S3_PORT=$((17080 + PORT_OFFSET))
S3_REGION=us-east-1
S3_BUCKET=homestream
TRINO_PORT=$((17081 + PORT_OFFSET))

# The node's network: a bridge and a /24 that only these scripts create and remove.
# Its first address is the host's on the bridge: pods reach the stack there (they
# cannot reach the host's loopback), so the servers pods use listen on it, and host
# processes use it too. One address plan per 100 of port offset.
NODE_NET_INDEX=$((87 + (PORT_OFFSET / 100) % 100))
NODE_NAME=homestream-node
NODE_BRIDGE="hs$NODE_NET_INDEX"
POD_SUBNET="10.$NODE_NET_INDEX.0.0/24"
NODE_IP="10.$NODE_NET_INDEX.0.1"
SERVICE_SUBNET=10.0.0.0/24
NODE_DIR="$HOMESTREAM_STATE/node"
CONTAINERD_SOCKET="$NODE_DIR/containerd.sock"

mkdir -p "$HOMESTREAM_CACHE" "$BIN_DIR" "$LOG_DIR" "$PID_DIR" "$DATA_DIR"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

# Runs "$@" (a command or a function) and, while it runs, says every 30 s that `what` is
# still under way: a cold build takes minutes, and a silent one looks hung.
with_progress() {
  local what=$1 started=$SECONDS next=30 pid
  shift
  "$@" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS - started >= next)); then
      log "$what: still running ($((SECONDS - started)) s)"
      next=$((next + 30))
    fi
  done
  wait "$pid"
}

# Runs "$@" in `dir`.
in_dir() { local dir=$1; shift; (cd "$dir" && "$@"); }

# Is the process recorded in pids/$1.pid alive? A stale pid file is removed.
# A pid is only that service's while the process started at the time recorded beside
# it: after the machine's processes were killed, the pid may belong to anything.
is_running() {
  local pidfile="$PID_DIR/$1.pid" pid started
  [[ -f "$pidfile" ]] || return 1
  read -r pid started <"$pidfile" || true
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && [[ "$(start_time "$pid")" == "${started:-}" ]]; then
    return 0
  fi
  log "$1: stale pid file (pid $pid is gone); removing it"
  rm -f "$pidfile"
  return 1
}

# start_time PID: when the process started, in clock ticks since boot (/proc/PID/stat).
start_time() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }

# start_service NAME CMD...: run CMD in the background with its output in logs/NAME.log.
start_service() {
  local name="$1"; shift
  log "$name: starting"
  # setsid: the service gets its own process group, so `down` can stop it and its children.
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo "$! $(start_time $!)" >"$PID_DIR/$name.pid"
}

# wait_ready NAME TIMEOUT_SECONDS PROBE...: poll PROBE until it succeeds; on timeout or
# when the process died, print the tail of the log and fail.
wait_ready() {
  local name="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! is_running "$name"; then
      tail -n 40 "$LOG_DIR/$name.log" >&2 || true
      die "$name exited before it became ready (log: $LOG_DIR/$name.log)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$LOG_DIR/$name.log" >&2 || true
      die "$name not ready after ${timeout}s (log: $LOG_DIR/$name.log)"
    fi
    sleep 0.5
  done
  log "$name: ready"
}

# stop_service NAME: SIGTERM the process group we started, then SIGKILL after a grace period.
stop_service() {
  local name="$1" pid
  is_running "$name" || return 0
  read -r pid _ <"$PID_DIR/$name.pid"
  log "$name: stopping (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: did not stop in 30s; killing"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_DIR/$name.pid"
}

# tcp_open PORT: is something listening on 127.0.0.1:PORT?
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Debian's headless shell (Chromium's old headless mode, lighter and faster per page),
# the browser of the scraper image; the full Chromium where it is not packaged.
HEADLESS_SHELL=/usr/lib/chromium/chromium-headless-shell

# install_chromium: the full Chromium, and the headless shell if the archive has it.
install_chromium() {
  apt_install chromium
  if [[ ! -x "$HEADLESS_SHELL" ]] && apt-cache show chromium-headless-shell >/dev/null 2>&1; then
    apt_install chromium-headless-shell
  fi
}

# chromium_executable: the headless shell if installed, else the full Chromium.
chromium_executable() {
  if [[ -x "$HEADLESS_SHELL" ]]; then echo "$HEADLESS_SHELL"; else command -v chromium; fi
}

# apt_install PKG...: install Debian packages that are missing.
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  local apt_log="$LOG_DIR/apt.log"
  if ! { $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >>"$apt_log" 2>&1; then
    tail -n 20 "$apt_log" >&2
    die "apt-get could not install ${missing[*]} (log: $apt_log)"
  fi
}
