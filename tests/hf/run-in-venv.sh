#!/bin/sh
# Usage: run-in-venv.sh PYTHON SCRIPT [ARGS...]
# Runs SCRIPT with PYTHON (BUILD/venv/bin/python) when that venv exists, and
# otherwise skips with exit code 77 (CTest's SKIP_RETURN_CODE) and the reason.
py="$1"
shift
if [ ! -x "$py" ]; then
  echo "SKIP: $py does not exist: scripts/setup-venv.sh (run by make test) did not" \
       "make the venv; its output says why (e.g. PyPI unreachable)"
  exit 77
fi
exec "$py" "$@"
