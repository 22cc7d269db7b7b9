#!/usr/bin/env bash
#! Installs promtool into $HOMESTREAM_CACHE/bin, taken out of Debian's prometheus package
#! without installing the package (which would also set up and start a Prometheus
#! server). Used by the test that parses the Grafana dashboard's queries
#! (tests/src/dashboard.rs); `tests/env/stack up` runs it.
source "$(dirname "$0")/lib.sh"

[[ -x "$BIN_DIR/promtool" ]] && exit 0
log "promtool: extracting it from Debian's prometheus package"
sudo=""
[[ "$(id -u)" == 0 ]] || sudo="sudo"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
download() { (cd "$work" && apt-get download prometheus) >>"$LOG_DIR/apt.log" 2>&1; }
# The package lists may be missing or stale (nothing else needed installing).
download || { $sudo apt-get update -qq >>"$LOG_DIR/apt.log" 2>&1 && download; } ||
  { tail -n 20 "$LOG_DIR/apt.log" >&2; die "apt-get could not download prometheus (log: $LOG_DIR/apt.log)"; }
dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
install -m 0755 "$work/root/usr/bin/promtool" "$BIN_DIR/promtool"
"$BIN_DIR/promtool" --version >/dev/null || die "promtool: the extracted binary does not run"
log "promtool: in $BIN_DIR"
