#!/usr/bin/env bash
# fresh-clone-check.sh - proves the repository stands alone: clones the committed HEAD into
# an empty directory (with no ../shared beside it), then runs the README's two set-up
# commands there, `cargo run -- demo` and `cargo test`, and prints how long each took.
#
#   scripts/fresh-clone-check.sh [REF]        (default: HEAD)
#
# Environment:
#   FRESH_CLONE_TARGET_DIR  reuse this CARGO_TARGET_DIR (saves the dependency build); default:
#                           a new one inside the scratch directory
#   FRESH_CLONE_KEEP=1      keep the scratch directory afterwards
#   LLM_HARNESS_DIR         the model harness's cache (venv, model) may be reused as it is;
#                           the check never passes LLM_HARNESS_WHEELS or GAFFER_TEST_OLLAMA_URL
#                           on, so the tests start the harness from the clone's own script.
set -euo pipefail

# Guard against recursion: a test (or this script) calling this script again.
if [ -n "${GAFFER_FRESH_CLONE_CHECK:-}" ]; then
  echo "fresh-clone-check: already inside a fresh-clone check; refusing to recurse" >&2
  exit 2
fi
export GAFFER_FRESH_CLONE_CHECK=1

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ref="${1:-HEAD}"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/gaffer-fresh-clone.XXXXXX")"
[ "${FRESH_CLONE_KEEP:-}" = 1 ] || trap 'rm -rf "$scratch"' EXIT
clone="$scratch/gaffer"

say() { echo "[fresh-clone-check] $*" >&2; }

say "cloning $repo ($ref) into $clone"
git clone --quiet --no-local "$repo" "$clone"
git -C "$clone" checkout --quiet --detach "$(git -C "$repo" rev-parse "$ref")"
if [ -e "$scratch/shared" ] || [ -e "$clone/../shared" ]; then
  say "ERROR: $scratch/shared exists; the check must not see a shared directory"
  exit 1
fi

export CARGO_TARGET_DIR="${FRESH_CLONE_TARGET_DIR:-$scratch/target}"
# Nothing from outside the clone: no harness URL, no prebuilt-wheel cache, no config.
unset GAFFER_TEST_OLLAMA_URL LLM_HARNESS_WHEELS GAFFER_CONFIG GAFFER_DATA_DIR
cd "$clone"

run() {
  local t0 t1
  say "running: $*"
  t0=$(date +%s)
  "$@"
  t1=$(date +%s)
  say "passed: $* ($(( t1 - t0 )) s)"
  timings+=("$* : $(( t1 - t0 )) s")
}
timings=()
total0=$(date +%s)
# The demo makes its directory under the temp dir: keep it inside the scratch directory.
export TMPDIR="$scratch"
run cargo run -- demo
run cargo test
say "all passed in $(( $(date +%s) - total0 )) s, commit $(git rev-parse --short HEAD):"
for line in "${timings[@]}"; do say "  $line"; done
