#!/usr/bin/env bash
# The OpenSSH server binary for `llmbox bench --ssh`'s loopback test: the test starts
# its own sshd on 127.0.0.1 with a temporary host key and authorized key (no system
# service is started or configured here; Debian's policy-rc.d in this image keeps
# the package from starting one). Skips when sshd is already installed.
set -euo pipefail
if [ ! -x /usr/sbin/sshd ] || [ ! -x /usr/lib/openssh/sftp-server ]; then
    apt-get update -qq -o DPkg::Lock::Timeout=600
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
        openssh-server openssh-sftp-server >/dev/null
fi
/usr/sbin/sshd -V 2>&1 | head -n 1
