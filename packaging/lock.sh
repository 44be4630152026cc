#!/usr/bin/env bash
# Refresh packaging/requirements.lock: every package dsnode and its tests install, pinned with
# the hashes of every file PyPI has for that version. Run after changing a pin in pyproject.toml:
#   bash packaging/lock.sh
# then commit both files; `bash packaging/quickstart.sh setup` installs from the lock.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet --disable-pip-version-check pip-tools==7.4.1
cd "$root"
CUSTOM_COMPILE_COMMAND="bash packaging/lock.sh" "$tools/venv/bin/pip-compile" --quiet --generate-hashes \
  --all-extras --strip-extras --no-emit-index-url --no-emit-find-links \
  --output-file packaging/requirements.lock pyproject.toml
echo "wrote packaging/requirements.lock"
