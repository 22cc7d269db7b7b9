#!/usr/bin/env bash
#! Resolves Kafka and Cassandra jars from Maven Central into $HOMESTREAM_CACHE/{kafka,cassandra}/lib.
#! The version lives in each pom.xml; a stamp keyed on the pom's hash makes a second run a no-op.
source "$(dirname "$0")/lib.sh"

install_jars() {
  local name="$1" pom="$ENV_DIR/$1/pom.xml"
  local dest="$HOMESTREAM_CACHE/$name" hash
  hash="$(sha256sum "$pom" | cut -c1-16)"
  [[ -f "$dest/.stamp-$hash" ]] && return 0
  log "$name: resolving jars with Maven (first run only)"
  rm -rf "$dest/lib"
  mkdir -p "$dest/lib"
  with_progress "$name: Maven" mvn -B -q -f "$pom" -Dmaven.repo.local="$HOMESTREAM_CACHE/m2" \
    dependency:copy-dependencies -DoutputDirectory="$dest/lib" -DincludeScope=runtime >&2 ||
    die "$name: maven could not resolve the jars"
  rm -f "$dest"/.stamp-*
  touch "$dest/.stamp-$hash"
}

install_jars kafka
install_jars cassandra
