#!/usr/bin/env bash
# Benchmark of the scraper on the project's fixture site (550 pages), side by side
# with Scrapy (HTTP) and Playwright for Python driving the same Debian Chromium
# (browser). The Python tools come from PyPI into a venv used for this only.
#
#   bench/scrape/run.sh            (from the repository root)
#
# Both browser tools drive the same Chromium: Debian's headless shell, the scraper
# image's browser, installed when missing (the full /usr/bin/chromium where Debian does
# not package it).
#
# Env: HOMESTREAM_CHROMIUM (default the headless shell), BENCH_VENV (default
# ~/.cache/homestream/bench-venv), CARGO_TARGET_DIR (default target/ of the repository).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${BENCH_VENV:-$HOME/.cache/homestream/bench-venv}"
# shellcheck source=../../tests/env/lib.sh
source "$root/tests/env/lib.sh"
if [[ -z "${HOMESTREAM_CHROMIUM:-}" ]]; then
  install_chromium
fi
chromium="${HOMESTREAM_CHROMIUM:-$(chromium_executable)}"
export HOMESTREAM_CHROMIUM="$chromium"

if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
# Playwright's wheel brings its driver; no browser download: it drives Debian's Chromium.
"$venv/bin/pip" install --quiet --disable-pip-version-check "scrapy>=2.11,<3" "playwright>=1.45,<2"

# Built as the images are (static musl, release), reusing the images' and tests' units.
"$root/images/cargo" build --quiet --workspace --example bench_scrape
bench="${CARGO_TARGET_DIR:-$root/target}/x86_64-unknown-linux-musl/release/examples/bench_scrape"

serve_out="$(mktemp)"
"$bench" serve > "$serve_out" &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$serve_out"' EXIT
for _ in $(seq 100); do [[ -s "$serve_out" ]] && break; sleep 0.1; done
addr="$(head -n1 "$serve_out")"
base="http://$addr"
echo "Fixture site at $base" >&2

measure() { "$venv/bin/python" "$here/measure.py" -- "$@"; }
{
  measure "$bench" http "$addr"
  measure "$venv/bin/scrapy" runspider "$here/scrapy_spider.py" -a "base=$base"
  measure "$bench" browser "$addr"
  measure "$venv/bin/python" "$here/playwright_bench.py" "$base" "$chromium"
} | "$venv/bin/python" "$here/table.py"
