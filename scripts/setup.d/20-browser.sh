#!/usr/bin/env bash
# A real browser for the report page test (tests/cost/test_report_page.py): Debian's
# `chromium`, driven from Python by Playwright (the `playwright` package in the dev
# group). Playwright's own browser download does not work on these machines, so the
# test launches /usr/bin/chromium. Idempotent: nothing is installed when it is there.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
    apt-get update -qq -o DPkg::Lock::Timeout=600
    # fonts-dejavu-core: the same sans-serif face matplotlib embeds, so text measured
    # in the browser matches the charts' layout.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
        --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
/usr/bin/chromium --version
