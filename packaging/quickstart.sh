#!/usr/bin/env bash
# Set up everything dsnode needs on Debian 12, then run one job.
#
#   bash packaging/quickstart.sh           # set up, then run the demo (the main job)
#   bash packaging/quickstart.sh test      # set up, then run the whole test suite
#   bash packaging/quickstart.sh setup     # set up only
#
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

DEBIAN_PACKAGES=(
  python3 python3-venv python3-dev build-essential   # the interpreter and a compiler for wheels
  mosquitto mosquitto-clients                        # the space broker (tests start their own)
  libgl1 libegl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3   # Qt runtime
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-randr0 libxcb-render-util0
  libxcb-image0 libxcb-xinerama0 libxcb-xkb1
  fonts-wqy-microhei                                 # Chinese text in the desktop app
  xvfb xauth                                         # a virtual screen for headless boxes and tests
  strace                                             # tests count the store's disk flushes
)

# bold only on a terminal, and not for NO_COLOR users (https://no-color.org): no escape codes in logs
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ] && [ "${TERM:-}" != dumb ]; then
  say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
else
  say() { printf '==> %s\n' "$*"; }
fi

missing_packages() {
  local pkg missing=()
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  echo "${missing[@]:-}"
}

install_system_packages() {
  command -v dpkg-query >/dev/null || { say "not a Debian system: install ${DEBIAN_PACKAGES[*]} yourself"; return; }
  local missing
  missing=$(missing_packages)
  [ -z "$missing" ] && return
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "Run as root or install: $missing" >&2; exit 1; }
    sudo="sudo"
  fi
  say "installing Debian packages: $missing"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

install_python_env() {
  local py=python3 stamp=.venv/.dsnode-installed want
  want=$(cat pyproject.toml packaging/requirements.lock | sha256sum | cut -c1-64)
  if [ ! -x .venv/bin/python ]; then
    say "creating the virtual environment in .venv/"
    "$py" -m venv .venv
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing dsnode and its pinned dependencies into .venv/"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    # every dependency at the version and hash the lock file names (bash packaging/lock.sh refreshes it)
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r packaging/requirements.lock
    # setuptools says "Editable installation" in a box of stars on every editable install: that one
    # warning (by its text) is hidden; other warnings and errors still show
    PYTHONWARNINGS="ignore:Editable installation" \
      .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
    echo "$want" > "$stamp"
  fi
}

job=${1:-demo}
[ $# -gt 0 ] && shift
install_system_packages
install_python_env
export PATH="$root/.venv/bin:$PATH"

case "$job" in
  setup) say "ready: run .venv/bin/dsnode --help" ;;
  demo)  exec .venv/bin/dsnode demo "$@" ;;
  test)  exec .venv/bin/python -m pytest "$@" ;;
  *)     echo "usage: bash packaging/quickstart.sh [demo|test|setup] [args…]" >&2; exit 2 ;;
esac
