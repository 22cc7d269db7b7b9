#!/usr/bin/env bash
#! Makes (once) the venv of the benchmark's Python baselines under $HOMESTREAM_CACHE and
#! prints its python's path. Versions pinned in requirements.txt, beside this script.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${HOMESTREAM_CACHE:-$HOME/.cache/homestream}/bench-venv"
stamp="$venv/.stamp-$(sha256sum "$here/requirements.txt" | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
  echo "bench: installing the Python baselines' packages into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$here/requirements.txt" >&2
  rm -f "$venv"/.stamp-*
  touch "$stamp"
fi
echo "$venv/bin/python"
