#!/usr/bin/env bash
# Creates .venv (if missing) and installs the core (with its test and plot
# extras) and every plugin, editable. A second run with no pyproject.toml
# changed returns at once: the hash of every pyproject.toml (and of this
# script) is kept in .venv/setup-stamp, and pip runs only when it differs.
# pip's own output goes to .venv/setup.log; it is printed only on failure.
set -euo pipefail
SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$SELF")/.."
PYTHON="${PYTHON:-python3}"
STAMP=.venv/setup-stamp
LOG=.venv/setup.log

projects=(. plugins/*/ examples/third_party_plugin/ examples/pooling_plugin/)
tomls=()
for dir in "${projects[@]}"; do
  [ -f "$dir/pyproject.toml" ] && tomls+=("${dir%/}/pyproject.toml")
done

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv .venv
  rm -f "$STAMP"
fi

stamp="$(.venv/bin/python --version 2>&1) $(cat "$SELF" "${tomls[@]}" | sha256sum)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$stamp" ]; then
  echo "setup: .venv is up to date (no pyproject.toml changed)"
  exit 0
fi

run_pip() {
  if ! .venv/bin/python -m pip "$@" >>"$LOG" 2>&1; then
    echo "setup: pip $1 failed; the end of $LOG:" >&2
    tail -n 30 "$LOG" >&2
    exit 1
  fi
}

: >"$LOG"
run_pip install --upgrade pip
# The core was once distributed as `ntcore`, a name that belongs to an
# unrelated project on PyPI; an old editable install of it would shadow
# ntcore-jax's files.
if .venv/bin/python -m pip show ntcore >/dev/null 2>&1; then
  echo "setup: removing the old distribution 'ntcore' (now 'ntcore-jax')"
  run_pip uninstall --yes ntcore
fi
packages=(-e ".[test,plot]")
for toml in "${tomls[@]:1}"; do
  packages+=(-e "$(dirname "$toml")")
done
echo "setup: installing ntcore-jax[test,plot] and $((${#tomls[@]} - 1)) plugins, editable (log: $LOG)"
run_pip install "${packages[@]}"
echo "$stamp" >"$STAMP"
echo "setup: done; .venv/bin/ntcore list-layers shows the installed layers"
