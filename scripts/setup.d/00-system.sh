#!/usr/bin/env bash
# System packages every later step needs. Later steps install their own extras.
set -euo pipefail
if ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then
    apt-get update -qq -o DPkg::Lock::Timeout=600
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 build-essential cmake >/dev/null
fi
