#!/usr/bin/env bash
#! Makes (once) what bench-stream's Spark baseline runs on, under
#! $HOMESTREAM_CACHE/bench-spark: a venv with PySpark from PyPI (requirements.txt) and the
#! Kafka and Cassandra connectors' jars from Maven Central (pom.xml), each behind a stamp
#! keyed on its file's hash. Prints the venv's python, then the jars' directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${HOMESTREAM_CACHE:-$HOME/.cache/homestream}"
venv="$cache/bench-spark/venv"
jars="$cache/bench-spark/jars"

stamp() { echo ".stamp-$(sha256sum "$1" | cut -c1-16)"; }

if [[ ! -f "$venv/$(stamp "$here/requirements.txt")" ]]; then
  echo "bench: installing PySpark into $venv (first run only: about 320 MB from PyPI)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" >&2
  touch "$venv/$(stamp "$here/requirements.txt")"
fi

if [[ ! -f "$jars/$(stamp "$here/pom.xml")" ]]; then
  echo "bench: resolving the Spark connectors' jars from Maven Central into $jars" >&2
  rm -rf "$jars"
  mkdir -p "$jars"
  mvn -B -q -Dstyle.color=never -f "$here/pom.xml" -Dmaven.repo.local="$cache/m2" \
    dependency:copy-dependencies -DoutputDirectory="$jars" -DexcludeTransitive=true >&2
  touch "$jars/$(stamp "$here/pom.xml")"
fi

echo "$venv/bin/python"
echo "$jars"
