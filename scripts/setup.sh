#!/usr/bin/env bash
# Set up GifLab on this machine: compression engines, gifski, Python packages, and .env.
# Installs into the active Python (a virtualenv if one is active; PYTHON=... to choose).
# Safe to run again: every step skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null || PY=python

say() { printf '\n== %s\n' "$*"; }

say "engines: gifsicle, ImageMagick, ffmpeg (and node/npm for gifski); chromium for browser tests"
need=()
for b in gifsicle ffmpeg npm; do command -v "$b" >/dev/null || need+=("$b"); done
[ -x /usr/bin/convert ] || [ -x /usr/local/opt/imagemagick/bin/magick ] || command -v magick >/dev/null || need+=(imagemagick)
# tests/test_browser.py drives the system Chromium through chromedriver (never downloads one).
if ! command -v chromedriver >/dev/null; then
  if [ "$(uname)" = Darwin ]; then
    echo "Browser tests skip without chromium + chromedriver (brew install --cask chromium chromedriver)." >&2
  else
    need+=(chromium chromium-driver)
  fi
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(uname)" = Darwin ]; then
    brew install "${need[@]/npm/node}"
  elif command -v apt-get >/dev/null; then
    # Only what is missing: a NodeSource nodejs already ships npm and conflicts with Debian's.
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "Install gifsicle, ImageMagick, ffmpeg, npm (and chromium, chromedriver) with your package manager (WSL: apt)." >&2
  fi
fi

say "gifski 1.7.1 (official binaries from the npm package) into tools/"
if [ ! -d tools/node_modules/gifski/bin ]; then
  mkdir -p tools
  npm install --prefix tools --no-audit --no-fund --loglevel=error gifski@1.7.1
fi

say "Python packages"
if ! "$PY" -c "import torch, torchvision" 2>/dev/null; then
  # torch/torchvision pinned to the builds that install together on Linux (see README).
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) "$PY" -m pip install -q "torch==2.14.1" "torchvision==0.29.1" ;;
    Linux-aarch64) "$PY" -m pip install -q "torch==2.9.1" "torchvision==0.24.1" ;;
    *) "$PY" -m pip install -q torch torchvision ;;
  esac
fi
"$PY" -m pip install -q -e ".[dev]"

say "data directory and .env (DAGSTER_HOME for dagster dev / dagster CLI)"
data_dir="${GIFLAB_DATA_DIR:-$PWD/data}"
mkdir -p "$data_dir/dagster_home" "$data_dir/raw"
if [ ! -f .env ]; then
  printf 'GIFLAB_DATA_DIR=%s\nDAGSTER_HOME=%s\n' "$data_dir" "$data_dir/dagster_home" > .env
fi
# Runs launched by dagster dev / the sensor store a range run's asset events in batches, as the
# CLI's do (giflab_assets/instance_storage.py).
grep -q '^DAGSTER_EVENT_BATCH_SIZE=' .env || printf 'DAGSTER_EVENT_BATCH_SIZE=500\n' >> .env
# The Dagster instance exists before dagster dev, the sensor and the CLI first open it together.
"$PY" -W ignore -m giflab_assets.runner "$data_dir/dagster_home"
"$PY" -m giflab doctor || true
