#!/usr/bin/env bash
# Creates .venv (if missing) and installs the core (with its test extra) and
# every plugin, editable. Safe to run again: it only updates what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
packages=(-e ".[test]")
for dir in plugins/*/ examples/third_party_plugin/; do
  [ -f "$dir/pyproject.toml" ] && packages+=(-e "$dir")
done
.venv/bin/python -m pip install --quiet "${packages[@]}"
