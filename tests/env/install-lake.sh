#!/usr/bin/env bash
#! Installs the lake's servers and readers into $HOMESTREAM_CACHE: versitygw (the S3
#! server) into bin/, built through the Go module proxy; Trino's server tarball from
#! Maven Central, unpacked into trino/; a Python venv with DuckDB and its httpfs and
#! delta extensions (lake/requirements.txt) in lake-venv/. Each step is skipped when
#! its result is already there at the pinned version. `tests/env/stack up` runs it.
source "$(dirname "$0")/lib.sh"

install_versitygw() {
  local binary="$BIN_DIR/versitygw"
  # `go version -m` reads the module version the binary was built from.
  [[ -x "$binary" ]] && go version -m "$binary" | grep -qE "^\s+mod\s+github.com/versity/versitygw\s+$VERSITYGW_VERSION\s" &&
    return 0
  command -v go >/dev/null || die "Go is required to build versitygw (https://go.dev/doc/install)"
  log "versitygw: building $VERSITYGW_VERSION from the Go module proxy"
  with_progress "building versitygw $VERSITYGW_VERSION" \
    env GOBIN="$BIN_DIR" GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" CGO_ENABLED=0 \
    go install -trimpath -ldflags "-s -w -X main.Version=$VERSITYGW_VERSION" \
    "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" ||
    die "go install of versitygw $VERSITYGW_VERSION failed"
}

install_trino() {
  local dest="$HOMESTREAM_CACHE/trino" artifact="io.trino:trino-server:$TRINO_VERSION:tar.gz"
  [[ -f "$dest/.stamp-$TRINO_VERSION" ]] && return 0
  log "trino: downloading trino-server $TRINO_VERSION (821 MB) from Maven Central"
  with_progress "trino: Maven" mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$HOMESTREAM_CACHE/m2" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:get -Dartifact="$artifact" -Dtransitive=false >&2 ||
    die "trino: maven could not download $artifact"
  local tarball="$HOMESTREAM_CACHE/m2/io/trino/trino-server/$TRINO_VERSION/trino-server-$TRINO_VERSION.tar.gz"
  rm -rf "$dest"
  mkdir -p "$dest"
  # The tarball hard-links the jars its plugins share: only a whole unpack keeps them.
  tar -xzf "$tarball" -C "$dest" || die "trino: could not unpack $tarball"
  # Unpacked, the tarball is not needed again: 821 MB less in the cache.
  rm -f "$tarball"
  touch "$dest/.stamp-$TRINO_VERSION"
}

install_lake_venv() {
  local venv="$HOMESTREAM_CACHE/lake-venv" requirements="$ENV_DIR/lake/requirements.txt" hash
  hash="$(sha256sum "$requirements" | cut -c1-16)"
  [[ -f "$venv/.stamp-$hash" ]] && return 0
  log "lake-venv: installing DuckDB and its extensions from PyPI"
  rm -rf "$venv"
  python3 -m venv "$venv" || die "lake-venv: python3 -m venv failed (Debian: apt-get install python3-venv)"
  with_progress "lake-venv: pip" "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" >&2 ||
    die "lake-venv: pip could not install $requirements"
  touch "$venv/.stamp-$hash"
}

install_versitygw
install_trino
install_lake_venv
