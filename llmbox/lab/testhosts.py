"""Disposable systemd test hosts booted with systemd-nspawn (no Docker here).

Each host is an overlay on a cached debootstrapped Debian root filesystem (built by
``scripts/setup.d/30-testhosts.sh``), booted with real systemd as PID 1, with its own
static address on a bridge this module creates, sshd with a throw-away key, and apt
through an apt-cacher-ng instance on the bridge (the guests' only package source).
See "Test hosts" in DESIGN.md for why each boot option is there.

Usable from the command line too, to poke at a host by hand::

    python -m llmbox.lab.testhosts boot debian13   # prints the ssh command; Ctrl-C stops it
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("LLMBOX_CACHE", REPO_ROOT / ".cache"))
TESTHOSTS = CACHE / "testhosts"
SETUP_SCRIPT = "scripts/setup.d/30-testhosts.sh"

# Each test session takes its own bridge "llmbox<N>" and private /24 10.213.<N>.0/24 that
# exist only on this machine (several sessions may run side by side), N from this range.
SUBNET_BASE = "10.213"
NETWORK_NUMBERS = range(47, 250)
APT_PROXY_PORT = 3143  # not apt-cacher-ng's default 3142, which its package may hold
FIRST_HOST_OCTET = 10

RELEASES = {"debian12": "bookworm", "debian13": "trixie"}


class TestHostError(RuntimeError):
    """A test host could not be prepared, booted or stopped."""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def missing_prerequisites(distros: tuple[str, ...] = tuple(RELEASES)) -> list[str]:
    """What this machine lacks to boot test hosts of ``distros``; empty when ready."""
    missing = [
        tool
        for tool in ("systemd-nspawn", "apt-cacher-ng", "ip", "ssh", "ssh-keygen")
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists()
    ]
    missing += [
        f"root filesystem {TESTHOSTS / 'rootfs' / release}"
        for release in (RELEASES[distro] for distro in distros)
        if not (TESTHOSTS / "rootfs" / release / ".complete").exists()
    ]
    if os.geteuid() != 0:
        missing.append("root privileges (mount, ip link, systemd-nspawn)")
    return missing


@dataclass(frozen=True)
class TestHost:
    """One booted test host, reachable over ssh as root with ``ssh_key``."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    name: str
    address: str
    distro: str
    ssh_user: str
    ssh_key: Path

    def testinfra(self) -> Any:
        """A testinfra host over ssh (paramiko backend)."""
        import testinfra  # noqa: PLC0415  (only the role tests need it)

        return testinfra.get_host(
            f"paramiko://{self.ssh_user}@{self.address}",
            ssh_identity_file=str(self.ssh_key),
            ssh_config=str(self.ssh_key.parent / "ssh_config"),
        )

    def ssh(
        self, command: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Runs ``command`` on the host through the ssh client."""
        return subprocess.run(
            [
                "ssh",
                "-F",
                str(self.ssh_key.parent / "ssh_config"),
                "-i",
                str(self.ssh_key),
                f"{self.ssh_user}@{self.address}",
                command,
            ],
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@dataclass(frozen=True)
class SshKeypair:
    private_key: Path
    public_key: str


def make_ssh_keypair(directory: Path) -> SshKeypair:
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "id_ed25519"
    if not key.exists():
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "llmbox-test", "-f", str(key))
    # Test hosts share host keys and reuse addresses: never remember them.
    (directory / "ssh_config").write_text(
        "Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
        "  LogLevel ERROR\n  ConnectTimeout 10\n"
    )
    return SshKeypair(key, Path(f"{key}.pub").read_text().strip())


@dataclass
class TestNetwork:
    """This session's bridge, subnet and apt proxy, shared by all its test hosts."""

    __test__ = False

    number: int = 0  # N of llmbox<N> / 10.213.<N>.0/24, taken by up()
    _acng: subprocess.Popen[bytes] | None = None
    _cache_lock: Any = None

    @property
    def bridge(self) -> str:
        return f"llmbox{self.number}"

    @property
    def subnet_prefix(self) -> str:
        return f"{SUBNET_BASE}.{self.number}"

    @property
    def subnet(self) -> str:
        return f"{self.subnet_prefix}.0/24"

    @property
    def bridge_address(self) -> str:
        return f"{self.subnet_prefix}.1"

    @property
    def state_dir(self) -> Path:
        return TESTHOSTS / "run" / f"net{self.number}"

    def up(self) -> None:
        # "ip link add" fails when the name exists, so taking a number is atomic.
        for number in NETWORK_NUMBERS:
            if _run(
                "ip", "link", "add", f"llmbox{number}", "type", "bridge", check=False
            ).returncode:
                continue
            self.number = number
            break
        else:
            raise TestHostError("no free llmbox<N> bridge name left")
        atexit.register(self.down)
        self._remove_leftovers()
        _run("ip", "addr", "add", f"{self.bridge_address}/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        self._start_apt_proxy()

    def _remove_leftovers(self) -> None:
        """Overlays an interrupted earlier session with this number left behind."""
        if self.state_dir.exists():
            for leftover in sorted(self.state_dir.glob("*/root")):
                _unmount(leftover)
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def _start_apt_proxy(self) -> None:
        # Own config with no Remap lines: the stock remap points at a mirror-list host
        # that does not resolve here. Guests address the mirror as proxy/host/path.
        conf = self.state_dir / "acng"
        cache = TESTHOSTS / "apt-cacher-ng"
        # One apt-cacher-ng at a time may own the shared cache; a second session that
        # runs meanwhile gets a cache of its own (slower, never corrupted).
        self._cache_lock = (TESTHOSTS / "apt-cacher-ng.lock").open("w")
        try:
            fcntl.flock(self._cache_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            cache = self.state_dir / "apt-cacher-ng"
        for d in (conf, cache / "cache", cache / "log"):
            d.mkdir(parents=True, exist_ok=True)
        (conf / "acng.conf").write_text(
            f"CacheDir: {cache / 'cache'}\nLogDir: {cache / 'log'}\n"
            "SupportDir: /usr/lib/apt-cacher-ng\n"
            f"Port: {APT_PROXY_PORT}\nBindAddress: {self.bridge_address}\n"
            "ExThreshold: 30\nVerboseLog: 0\n"
        )
        binary = shutil.which("apt-cacher-ng") or "/usr/sbin/apt-cacher-ng"
        log = (cache / "log" / "stdout.log").open("ab")
        self._acng = subprocess.Popen(
            [binary, "-c", str(conf), "ForeGround=1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not _wait_for_port(self.bridge_address, APT_PROXY_PORT, 20):
            raise TestHostError(f"apt-cacher-ng did not listen on {self.apt_proxy_url}")

    @property
    def apt_proxy_url(self) -> str:
        return f"http://{self.bridge_address}:{APT_PROXY_PORT}"

    def down(self) -> None:
        if self._acng is not None:
            self._acng.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._acng.wait(10)
            if self._acng.poll() is None:
                self._acng.kill()
            self._acng = None
        if self.number:
            self._remove_leftovers()
            _run("ip", "link", "del", self.bridge, check=False)
            self.number = 0
        if self._cache_lock is not None:
            self._cache_lock.close()  # releases the flock
            self._cache_lock = None


def _wait_for_port(address: str, port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((address, port), 1):
            return True
        time.sleep(0.2)
    return False


def _unmount(path: Path) -> None:
    mounted = _run("mountpoint", "-q", str(path), check=False).returncode == 0
    if mounted and _run("umount", str(path), check=False).returncode != 0:
        _run("umount", "-l", str(path), check=False)  # busy: detach now, freed when idle


@dataclass
class _Booted:
    host: TestHost
    process: subprocess.Popen[bytes]
    directory: Path


class TestHostPool:
    """Boots hosts on ``network`` and stops them again (``stop_all`` never raises)."""

    __test__ = False

    def __init__(self, network: TestNetwork, keypair: SshKeypair) -> None:
        self.network = network
        self.keypair = keypair
        self._booted: dict[str, _Booted] = {}
        atexit.register(self.stop_all)

    _next_octet = FIRST_HOST_OCTET  # shared by every pool of the process: unique addresses

    def boot(self, distro: str, name: str | None = None) -> TestHost:
        if distro not in RELEASES:
            raise ValueError(f"unknown distro {distro!r}; valid: {', '.join(RELEASES)}")
        octet = TestHostPool._next_octet
        TestHostPool._next_octet += 1
        if octet > 250:
            raise TestHostError("no addresses left on the test bridge")
        name = name or f"t{octet}-{distro.replace('debian', 'd')}"
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,40}", name) or name in self._booted:
            raise ValueError(f"test host name {name!r}: use [a-z0-9-], letter first, unique")
        # nspawn names the veth "vb-<machine>" (15 chars at most, unique on this machine).
        machine = f"n{self.network.number}-{octet}"
        address = f"{self.network.subnet_prefix}.{octet}"
        host = TestHost(name, address, distro, "root", self.keypair.private_key)
        directory = self.network.state_dir / machine
        if directory.exists():
            _unmount(directory / "root")
            shutil.rmtree(directory)
        root = directory / "root"
        for d in ("upper", "work", "root"):
            (directory / d).mkdir(parents=True)
        lower = TESTHOSTS / "rootfs" / RELEASES[distro]
        _run("mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={lower},upperdir={directory / 'upper'},workdir={directory / 'work'}",
             str(root))  # fmt: skip
        self._configure_guest(root, host)
        log = (directory / "console.log").open("wb")
        process = subprocess.Popen(
            ["systemd-nspawn", "-b", "-D", str(root), "-M", machine, "--register=no",
             "--keep-unit", "--console=read-only", f"--network-bridge={self.network.bridge}",
             "--resolv-conf=off", "--link-journal=no"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        self._booted[name] = _Booted(host, process, directory)
        self._wait_for_ssh(host, process, directory)
        return host

    def _configure_guest(self, root: Path, host: TestHost) -> None:
        release = RELEASES[host.distro]
        (root / "etc/systemd/network/10-host0.network").write_text(
            f"[Match]\nName=host0\n\n[Network]\nAddress={host.address}/24\n"
            "LinkLocalAddressing=no\nIPv6AcceptRA=no\n"
        )
        (root / "etc/hostname").write_text(f"{host.name}\n")
        (root / "etc/hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {host.name}\n")
        # Nothing listens on :53 there: lookups fail at once instead of timing out.
        (root / "etc/resolv.conf").unlink(missing_ok=True)
        (root / "etc/resolv.conf").write_text(
            f"nameserver {self.network.bridge_address}\noptions timeout:1\n"
        )
        mirror = f"{self.network.apt_proxy_url}/deb.debian.org/debian"
        (root / "etc/apt/sources.list").write_text(
            f"deb {mirror} {release} main\ndeb {mirror} {release}-updates main\n"
        )
        for stale in (root / "etc/apt/sources.list.d").glob("*"):
            stale.unlink()
        # The package lists debootstrap fetched belong to the old source: drop them and
        # date the directory back so apt's cache_valid_time sees no fresh cache.
        lists = root / "var/lib/apt/lists"
        for stale in lists.glob("*_dists_*"):
            stale.unlink()
        os.utime(lists, (0, 0))
        keys = root / "root/.ssh/authorized_keys"
        keys.parent.mkdir(mode=0o700, exist_ok=True)
        keys.write_text(self.keypair.public_key + "\n")
        keys.chmod(0o600)

    def _wait_for_ssh(self, host: TestHost, process: subprocess.Popen[bytes], d: Path) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if (
                _wait_for_port(host.address, 22, 1)
                and host.ssh("true", check=False).returncode == 0
            ):
                return
            time.sleep(0.5)
        console = (d / "console.log").read_text(errors="replace")[-3000:]
        self.stop(host.name)
        raise TestHostError(f"test host {host.name} ({host.address}) never got ssh:\n{console}")

    def stop(self, name: str) -> None:
        booted = self._booted.pop(name, None)
        if booted is None:
            return
        if booted.process.poll() is None:
            # A throw-away host needs no orderly shutdown (user@0.service alone can take
            # 90 s to stop): power off at once. SIGTERM (orderly), then SIGKILL, as backups.
            with contextlib.suppress(subprocess.TimeoutExpired):
                booted.host.ssh("systemctl poweroff --force --force", check=False, timeout=10)
            with contextlib.suppress(subprocess.TimeoutExpired):
                booted.process.wait(10)
        if booted.process.poll() is None:
            booted.process.send_signal(signal.SIGTERM)
            try:
                booted.process.wait(30)
            except subprocess.TimeoutExpired:
                booted.process.kill()
                booted.process.wait(10)
        _unmount(booted.directory / "root")
        shutil.rmtree(booted.directory, ignore_errors=True)

    def stop_all(self) -> None:
        for name in list(self._booted):
            with contextlib.suppress(Exception):
                self.stop(name)


def _main(argv: list[str]) -> int:
    """``boot DISTRO [NAME]`` keeps a host up until Ctrl-C (or SIGTERM), then cleans up."""
    if len(argv) < 2 or argv[0] != "boot":
        print(__doc__)
        return 2
    if missing := missing_prerequisites():
        print(f"missing: {', '.join(missing)}; run {SETUP_SCRIPT}", file=sys.stderr)
        return 1
    stop_on_sigterm()
    network = TestNetwork()
    network.up()
    pool = TestHostPool(network, make_ssh_keypair(TESTHOSTS / "cli-ssh"))
    try:
        host = pool.boot(argv[1], argv[2] if len(argv) > 2 else None)
        print(f"ssh -F {host.ssh_key.parent / 'ssh_config'} -i {host.ssh_key} root@{host.address}")
        print("Ctrl-C stops it.")
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        pool.stop_all()
        network.down()
    return 0


def stop_on_sigterm() -> None:
    """Turns SIGTERM (CI time-outs, kill) into KeyboardInterrupt, so hosts are cleaned up."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
