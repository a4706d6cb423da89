#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine (run as root: it
# installs apt packages and boots systemd-nspawn test hosts), then runs the checks
# and the whole test suite. Expensive artefacts (llama.cpp build, model file,
# test-host root filesystems) are cached under .cache/ and reused on the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
export LLMBOX_CACHE="${LLMBOX_CACHE:-$PWD/.cache}"
mkdir -p "$LLMBOX_CACHE"

step() { printf '\n==> %s\n' "$*"; }

step "Python environment (.venv)"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[all]' --group dev
export PATH="$PWD/.venv/bin:$PATH"

# Each setup step owns one expensive prerequisite and is a no-op when its cached
# result is already there (see the header of each script). The test hosts' root
# filesystems (debootstrap: mostly network and disk) build in the background while the
# others run (the llama.cpp build: CPU); apt-get calls wait for each other's lock
# (DPkg::Lock::Timeout), and debootstrap's dpkg works in its own target.
background=(30-testhosts.sh)
mkdir -p "$LLMBOX_CACHE/setup-logs"
pids=()
for name in "${background[@]}"; do
    step "setup (in the background, log: $LLMBOX_CACHE/setup-logs/$name.log): $name"
    bash "scripts/setup.d/$name" >"$LLMBOX_CACHE/setup-logs/$name.log" 2>&1 &
    pids+=("$!")
done
for setup in scripts/setup.d/*.sh; do
    [ -e "$setup" ] || continue
    [[ " ${background[*]} " == *" ${setup##*/} "* ]] && continue
    step "setup: ${setup##*/}"
    bash "$setup"
done
for i in "${!background[@]}"; do
    name="${background[$i]}"
    status=0
    wait "${pids[$i]}" || status=$?
    step "setup: $name (ran in the background, exit $status)"
    cat "$LLMBOX_CACHE/setup-logs/$name.log"
    [ "$status" -eq 0 ] || exit "$status"
done

step "lint: ruff, mypy"
ruff check .
ruff format --check .
mypy

if [ -d roles ]; then
    step "lint: ansible-lint (production profile)"
    ansible-lint
fi

step "tests"
# CI must not pass on skipped real-server / real-host / real-browser tests (tests/conftest.py).
export LLMBOX_REQUIRE_REAL="${LLMBOX_REQUIRE_REAL-real_server,real_host,real_browser}"
# --durations: the slowest tests in the CI log, to keep the run under its time budget
exec pytest --durations=25 "$@"
