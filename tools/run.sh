#!/usr/bin/env bash
# Set up everything the project needs, then run the demo or the test suite.
#   bash tools/run.sh demo   # builds demo/catalog.duckdb from sample_data/ if missing, then opens the dashboard
#   bash tools/run.sh test   # runs the whole test suite (browser tests included)
# Extra arguments after "test" go to pytest; after "demo", to streamlit.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${CATALOG_VENV:-.venv}
PY="$VENV/bin/python"

say() { printf '[setup] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root for: $*"; return 1; fi
}

python_env() {
  if [ ! -x "$PY" ]; then
    say "creating $VENV"
    python3 -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    say "installing PyTorch (CPU) and the project"
    "$PY" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
    # torch first, pinned: any other request would pull CUDA builds
    "$PY" -m pip install --quiet "torch==2.13.0" "torchvision==0.28.0"
    "$PY" -m pip install --quiet -e ".[test]"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
  fi
}

browser() {
  if [ ! -x /usr/bin/chromium ]; then
    say "installing Debian's chromium for the browser tests"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
  fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  demo)
    python_env
    "$PY" tools/build_demo.py
    export CATALOG_DB="${CATALOG_DB:-$PWD/demo/catalog.duckdb}"
    exec "$PY" -m streamlit run app.py "$@"
    ;;
  test)
    python_env
    browser
    set +e
    "$PY" -m pytest "$@"
    rc=$?
    set -e
    if [ "$rc" = 5 ]; then
      echo "error: pytest collected no tests" >&2
      exit 1
    fi
    exit "$rc"
    ;;
  *)
    echo "usage: bash tools/run.sh demo|test [args...]" >&2
    exit 2
    ;;
esac
