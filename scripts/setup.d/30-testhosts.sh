#!/usr/bin/env bash
# Prerequisites of the Ansible role tests (tests/roles/): systemd-nspawn test hosts.
# Installs debootstrap, systemd-container (systemd-nspawn), apt-cacher-ng (the guests'
# only package source), iproute2 (the test bridge) and openssh-client, then builds
# one minimal Debian root filesystem per release the tests boot and caches it:
#   $LLMBOX_CACHE/testhosts/rootfs/{bookworm,trixie}/   (with a .complete stamp)
# The tests boot throw-away overlays on these; they never change them. Idempotent:
# a rootfs with its stamp is kept as it is.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${LLMBOX_CACHE:=$PWD/.cache}"

need=()
for cmd in debootstrap:debootstrap systemd-nspawn:systemd-container \
    apt-cacher-ng:apt-cacher-ng ip:iproute2 ssh:openssh-client ssh-keygen:openssh-client; do
    command -v "${cmd%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${cmd%%:*}" ] || need+=("${cmd##*:}")
done
if [ "${#need[@]}" -gt 0 ]; then
    # (the lock timeout: scripts/test.sh runs this beside other setup steps' apt-get)
    apt-get update -qq -o DPkg::Lock::Timeout=600
    # apt-cacher-ng's package may start its own daemon on :3142; the tests run their
    # own instances (own config, no Remap lines) on :3143 of their bridges, so the two
    # never collide and this script never has to stop anything.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
        --no-install-recommends "${need[@]}" debian-archive-keyring >/dev/null
fi
mirror="${LLMBOX_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
include=openssh-server,python3,python3-apt,sudo,dbus,systemd-sysv,iproute2,libpam-systemd,ca-certificates
# LLMBOX_TESTHOST_RELEASES narrows the releases (llmbox demo needs bookworm only).
for release in ${LLMBOX_TESTHOST_RELEASES:-bookworm trixie}; do
    root="$LLMBOX_CACHE/testhosts/rootfs/$release"
    [ -e "$root/.complete" ] && continue
    rm -rf "$root" "$root.tmp"
    mkdir -p "$root.tmp"
    echo "debootstrap $release (about 1-2 minutes)"
    nice debootstrap --variant=minbase --include="$include" "$release" "$root.tmp" "$mirror" \
        >"$LLMBOX_CACHE/testhosts/debootstrap-$release.log" 2>&1 || {
        tail -n 20 "$LLMBOX_CACHE/testhosts/debootstrap-$release.log" >&2
        exit 1
    }
    # Facts from DESIGN.md "Test hosts": empty machine-id (systemd fills it at boot),
    # D-Bus reads the same id, networkd gives the guest its address, root logs in
    # with a key only.
    : >"$root.tmp/etc/machine-id"
    ln -sf /etc/machine-id "$root.tmp/var/lib/dbus/machine-id"
    chroot "$root.tmp" systemctl enable systemd-networkd ssh >/dev/null 2>&1
    mkdir -p "$root.tmp/root/.ssh" && chmod 700 "$root.tmp/root/.ssh"
    printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n' \
        >"$root.tmp/etc/ssh/sshd_config.d/llmbox-test.conf"
    rm -f "$root.tmp"/var/cache/apt/archives/*.deb
    touch "$root.tmp/.complete"
    mv "$root.tmp" "$root"
done
echo "test-host root filesystems: $(ls "$LLMBOX_CACHE/testhosts/rootfs" | tr '\n' ' ')"
