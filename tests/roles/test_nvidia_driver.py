"""nvidia_driver on GPU-less systemd-nspawn test hosts.

The test hosts have no NVIDIA GPU (and cannot load kernel modules), so what runs here
is the role's preflight: GPU detection from /sys/bus/pci, the clean skip, the
``nvidia_driver_required`` failure, the argument spec and the "driver already present"
comparison. "GPU-shaped" hosts get a made-up PCI tree (the role's test seam
``__nvidia_driver_sysfs_pci``, as NVIDIA's nvidia-driver-assistant --sys-path) and
test-only stand-ins for ``nvidia-smi`` and ``mokutil``: they prove the role's decisions
(cloud image driver kept, runfile driver never overwritten, Secure Boot stop), not any
real driver. The install/reboot path needs a GPU machine and is not exercised here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from gpu_shape import GPU_SHAPED, make_gpu_shaped
from playbook_runner import run_playbook

from llmbox.lab.testhosts import TestHost

ROLE = Path(__file__).resolve().parents[2] / "roles" / "nvidia_driver"


# Assertions quote role messages as written: keep each task result on one line.
pytestmark = pytest.mark.usefixtures("one_line_results")


# What the role writes for hardened CUDA services on every GPU host it leaves with a
# driver (kept or installed): the nvidia-uvm loader, enabled at boot.
UVM_FILES = (
    "/usr/local/sbin/llmbox-nvidia-uvm",
    "/etc/systemd/system/llmbox-nvidia-uvm.service",
    "/etc/systemd/system/multi-user.target.wants/llmbox-nvidia-uvm.service",
)

# Files and packages the role would create on a GPU host; none may appear on a skipped one.
ROLE_FILES = (
    *UVM_FILES,
    "/etc/modprobe.d/blacklist-nouveau.conf",
    "/etc/systemd/system/nvidia-persistenced.service.d/llmbox-persistence-mode.conf",
    "/etc/apt/sources.list.d/llmbox-nvidia-components.sources",
)


def _playbook(tmp_path: Path) -> Path:
    """Converges the role, then prints the facts it exposes to later roles."""
    play = [
        {
            "name": "Converge nvidia_driver",
            "hosts": "llm_servers",
            "gather_facts": True,
            "roles": ["nvidia_driver"],
            "post_tasks": [
                {
                    "name": "Show the facts for the test",
                    "ansible.builtin.debug": {
                        "msg": "FACTS present={{ nvidia_driver_gpu_present }} "
                        "count={{ nvidia_driver_gpu_count }} "
                        "version={{ nvidia_driver_installed_version }}"
                    },
                }
            ],
        }
    ]
    path = tmp_path / "nvidia_driver.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return path


def _mark(host: TestHost) -> None:
    host.ssh("touch /run/llmbox-before-play")


def _changed_since_mark(host: TestHost) -> list[str]:
    """Files under /etc, /opt, /usr and dpkg's database written after ``_mark``."""
    found = host.ssh(
        "find /etc /opt /usr /var/lib/dpkg -xdev -newer /run/llmbox-before-play -print",
        check=False,
    )
    return found.stdout.split()


def _assert_only_the_uvm_loader_added(host: TestHost) -> None:
    """A kept driver gets the nvidia-uvm loader and nothing else (no package, no apt)."""
    changed = set(_changed_since_mark(host))
    allowed = set(UVM_FILES) | {
        "/usr/local/sbin",
        "/etc/systemd/system",
        "/etc/systemd/system/multi-user.target.wants",
    }
    assert changed <= allowed, sorted(changed - allowed)
    infra = host.testinfra()
    for path in UVM_FILES:
        assert infra.file(path).exists, path
    assert infra.service("llmbox-nvidia-uvm").is_enabled
    assert not infra.file("/etc/modprobe.d/blacklist-nouveau.conf").exists
    assert not infra.package("cuda-keyring").is_installed


def _assert_untouched(host: TestHost) -> None:
    assert _changed_since_mark(host) == []
    infra = host.testinfra()
    for path in ROLE_FILES:
        assert not infra.file(path).exists, path
    assert not infra.package("cuda-keyring").is_installed


@pytest.mark.real_host
@pytest.mark.parametrize("distro", ["debian12", "debian13"])
def test_gpu_less_host_is_skipped_without_changes(
    boot_host: Callable[..., TestHost], tmp_path: Path, distro: str
) -> None:
    host = boot_host(distro)
    playbook = _playbook(tmp_path)
    _mark(host)

    first = run_playbook(playbook, [host])
    assert first.rc == 0, first.stdout
    assert first.changed() == 0
    assert f"No NVIDIA GPU on {host.name}" in first.stdout
    assert "skipping the NVIDIA driver" in first.stdout
    assert "FACTS present=False count=0 version=" in first.stdout

    second = run_playbook(playbook, [host])
    assert second.rc == 0, second.stdout
    assert second.changed() == 0

    check = run_playbook(playbook, [host], check=True)
    assert check.rc == 0, check.stdout
    assert check.changed() == 0
    _assert_untouched(host)


@pytest.mark.real_host
def test_required_gpu_missing_fails_clearly_and_changes_nothing(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    host = boot_host("debian12")
    _mark(host)
    pci_count = int(host.ssh("ls /sys/bus/pci/devices | wc -l").stdout)

    result = run_playbook(_playbook(tmp_path), [host], {"nvidia_driver_required": True})

    assert result.rc != 0
    assert result.stats[host.name]["failed"] == 1
    assert result.stats[host.name]["changed"] == 0
    assert f"nvidia_driver_required is true but {host.name} has no NVIDIA GPU" in result.stdout
    assert f"none of its {pci_count} PCI devices has vendor 0x10de" in result.stdout
    _assert_untouched(host)


@pytest.mark.real_host
def test_bad_variable_type_is_rejected_by_the_first_task(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    host = boot_host("debian12")
    _mark(host)

    result = run_playbook(_playbook(tmp_path), [host], {"nvidia_driver_required": "maybe"})

    assert result.rc != 0
    # Only fact gathering ran before the argument-spec validation failed.
    assert result.stats[host.name]["ok"] == 1
    assert "Validating arguments against arg spec 'main'" in result.stdout
    assert "argument 'nvidia_driver_required' is of type str" in result.stdout
    _assert_untouched(host)


@pytest.mark.real_host
def test_malformed_branch_is_refused_before_detection(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    host = boot_host("debian12")

    result = run_playbook(_playbook(tmp_path), [host], {"nvidia_driver_branch": "55"})

    assert result.rc != 0
    assert "nvidia_driver_branch is '55'; it must be a driver branch" in result.stdout
    assert "List the PCI devices" not in result.stdout


STAND_IN = """#!/bin/sh
# Test stand-in for nvidia-smi (no GPU here): answers the role's driver query only.
echo "{answer}"
"""
# What nvidia-smi says on the stack's default AMI (a deep-learning image with a newer
# driver than the pinned 580; version as in AWS's DLAMI release notes of 2026).
DLAMI_ANSWER = "595.58.03, NVIDIA A10G"


def _install_stand_in(host: TestHost, answer: str = "550.127.05, NVIDIA GeForce RTX 4090") -> None:
    script = STAND_IN.format(answer=answer)
    host.ssh(
        f"cat > /usr/local/bin/nvidia-smi <<'EOF'\n{script}EOF\nchmod 755 /usr/local/bin/nvidia-smi"
    )


@pytest.mark.real_host
def test_matching_driver_already_present_changes_nothing(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    """A host whose nvidia-smi already reports the pinned branch is left as it is.

    The test host has no GPU, so a small stand-in ``nvidia-smi`` script is put on it
    ONLY to exercise the role's version comparison (the role counts GPUs that
    nvidia-smi lists, as on hosts whose /sys hides the PCI bus). It proves the
    comparison and the "nothing changes" path, not any real driver.
    """
    host = boot_host("debian12")
    _install_stand_in(host)
    _mark(host)

    result = run_playbook(_playbook(tmp_path), [host], {"nvidia_driver_branch": "550"})

    assert result.rc == 0, result.stdout
    assert "NVIDIA driver 550.127.05 is already loaded" in result.stdout
    assert "matching nvidia_driver_branch 550: nothing to change" in result.stdout
    assert "FACTS present=True count=1 version=550.127.05" in result.stdout
    _assert_only_the_uvm_loader_added(host)
    again = run_playbook(_playbook(tmp_path), [host], {"nvidia_driver_branch": "550"})
    assert again.rc == 0 and again.changed() == 0, again.stdout


@pytest.mark.real_host
def test_different_driver_already_present_is_not_replaced_silently(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    """Same stand-in ``nvidia-smi`` as above (test-only, no GPU here): branch 550 is
    reported while 570 is pinned, so the role stops and names both."""
    host = boot_host("debian12")
    _install_stand_in(host)
    _mark(host)

    result = run_playbook(_playbook(tmp_path), [host], {"nvidia_driver_branch": "570"})

    assert result.rc != 0
    assert f"{host.name} already runs NVIDIA driver 550.127.05" in result.stdout
    assert "but nvidia_driver_branch is 570" in result.stdout
    assert "nvidia_driver_replace_existing" in result.stdout
    _assert_untouched(host)


@pytest.mark.real_host
def test_cloud_image_driver_of_another_branch_is_kept_when_accepted(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    """The cloud inventory's nvidia_driver_accept_installed on a "GPU-shaped" host.

    A test-only stand-in ``nvidia-smi`` (no GPU here) answers like the deep-learning
    AMI's 595 driver while 580 stays pinned. Without the variable the role stops on the
    branch mismatch; with it the role records 595 and installs and reboots nothing (it
    adds only the nvidia-uvm loader). This proves the role's decision, not a real driver.
    """
    host = boot_host("debian12")
    _install_stand_in(host, DLAMI_ANSWER)
    _mark(host)
    playbook = _playbook(tmp_path)

    refused = run_playbook(playbook, [host])
    assert refused.rc != 0
    assert f"{host.name} already runs NVIDIA driver 595.58.03" in refused.stdout
    assert "but nvidia_driver_branch is 580" in refused.stdout
    _assert_untouched(host)

    kept = run_playbook(playbook, [host], {"nvidia_driver_accept_installed": True})
    assert kept.rc == 0, kept.stdout
    assert "NVIDIA driver 595.58.03 (branch 595) is already loaded" in kept.stdout
    assert "installed from packages) and nvidia_driver_accept_installed is true" in kept.stdout
    assert "keeping it instead of branch 580; no driver packages are installed" in kept.stdout
    assert "FACTS present=True count=1 version=595.58.03" in kept.stdout
    # Install, configure and run were skipped: no apt, no nouveau blacklist, no reboot.
    for phase in ("Install the headers", "Blacklist nouveau", "Reboot so the installed"):
        assert phase not in kept.stdout, phase
    _assert_only_the_uvm_loader_added(host)


@pytest.mark.real_host
def test_accepting_and_replacing_the_installed_driver_together_is_refused(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    host = boot_host("debian12")
    _mark(host)

    result = run_playbook(
        _playbook(tmp_path),
        [host],
        {"nvidia_driver_accept_installed": True, "nvidia_driver_replace_existing": True},
    )

    assert result.rc != 0
    assert "nvidia_driver_accept_installed and nvidia_driver_replace_existing are both true" in (
        result.stdout
    )
    assert "List the PCI devices" not in result.stdout
    _assert_untouched(host)


@pytest.mark.parametrize("distro", ["Debian-12", "Debian-13", "Ubuntu-22", "Ubuntu-24"])
def test_every_supported_distribution_has_its_package_names(distro: str) -> None:
    per_distro = yaml.safe_load((ROLE / "vars" / f"{distro}.yml").read_text())
    assert per_distro["__nvidia_driver_cuda_keyring_version"] == "1.1-1"
    assert set(per_distro["__nvidia_driver_distro_packages"]) == {"proprietary", "open"}
    assert set(per_distro["__nvidia_driver_distro_kernel_packages"]) == {"proprietary", "open"}
    # Ubuntu's modules are Canonical-signed prebuilt packages; Debian's are built by DKMS.
    assert per_distro["__nvidia_driver_signed_modules"] is distro.startswith("Ubuntu")
    if distro.startswith("Ubuntu"):
        # No DKMS package on the Secure-Boot-safe path, and no retired (transitional) branch.
        assert not any("dkms" in p and "no-dkms" not in p for p in str(per_distro).split("'"))
        assert not {"550", "565", "570"} & set(per_distro["__nvidia_driver_distro_branches"])
    expected_repo = {
        "Debian-12": "debian12",
        "Debian-13": "debian13",
        "Ubuntu-22": "ubuntu2204",
        "Ubuntu-24": "ubuntu2404",
    }[distro]
    assert per_distro["__nvidia_driver_cuda_repo_distro"] == expected_repo


MOKUTIL_STAND_IN = """#!/bin/sh
# Test stand-in for mokutil: Secure Boot on, no key enrolled.
case "$1" in
  --sb-state) echo "SecureBoot enabled" ;;
  --test-key) echo "$2 is not enrolled" ;;
esac
"""


@pytest.mark.real_host
def test_secure_boot_without_an_enrolled_key_stops_before_installing(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    """A GPU-shaped Debian 12 host without a driver, Secure Boot reported on by a
    test-only ``mokutil`` stand-in, no DKMS key: the role stops before apt runs,
    naming what to do. Then the same host's read-only preflight (what site.yml's
    pre_tasks run) passes in check mode once Secure Boot is reported off."""
    host = boot_host("debian12")
    make_gpu_shaped(host)
    host.ssh(
        f"cat > /usr/local/bin/mokutil <<'EOF'\n{MOKUTIL_STAND_IN}EOF\n"
        "chmod 755 /usr/local/bin/mokutil"
    )
    _mark(host)

    stopped = run_playbook(_playbook(tmp_path), [host], GPU_SHAPED)

    assert stopped.rc != 0
    assert stopped.stats[host.name]["changed"] == 0
    assert f"Secure Boot is on at {host.name} and the NVIDIA module would be built by DKMS" in (
        stopped.stdout
    )
    assert "(cuda_repo packages on Debian 12)" in stopped.stdout
    assert "/var/lib/dkms/mok.pub does not exist" in stopped.stdout
    assert "mokutil --import /var/lib/dkms/mok.pub" in stopped.stdout
    assert "or turn Secure Boot off in the firmware" in stopped.stdout
    assert "Install the headers" not in stopped.stdout
    _assert_untouched(host)

    host.ssh("rm /usr/local/bin/mokutil")
    _mark(host)
    preflight = [
        {
            "name": "site.yml's up-front checks of the GPU roles",
            "hosts": "llm_servers",
            "tasks": [
                {
                    "name": "Run a role's preflight",
                    "ansible.builtin.include_role": {"name": item, "tasks_from": "preflight.yml"},
                }
                for item in ("nvidia_driver", "cuda_toolkit")
            ],
        }
    ]
    play = tmp_path / "preflight.yml"
    play.write_text(yaml.safe_dump(preflight, sort_keys=False))
    checked = run_playbook(play, [host], GPU_SHAPED, check=True)
    assert checked.rc == 0, checked.stdout
    assert checked.changed() == 0
    _assert_untouched(host)


@pytest.mark.real_host
def test_runfile_driver_is_kept_by_the_cloud_policy_and_never_overwritten(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    """A GPU-shaped host like the deep-learning AMI: a newer branch (595) answered by a
    test-only ``nvidia-smi`` stand-in and the runfile installer's uninstaller present.
    The cloud inventory's accept_installed keeps and records it; asking to replace it
    with packages is refused with the reason, changing nothing."""
    host = boot_host("debian12")
    make_gpu_shaped(host)
    _install_stand_in(host, DLAMI_ANSWER)
    uninstaller = "/usr/bin/nvidia-uninstall"
    host.ssh(f"printf '#!/bin/sh\\nexit 0\\n' > {uninstaller} && chmod 755 {uninstaller}")
    _mark(host)
    playbook = _playbook(tmp_path)

    replaced = run_playbook(playbook, [host], GPU_SHAPED | {"nvidia_driver_replace_existing": True})
    assert replaced.rc != 0
    assert (
        f"{host.name} has a driver installed by NVIDIA's runfile installer "
        "(/usr/bin/nvidia-uninstall exists), which nvidia-smi reports as 595.58.03"
    ) in replaced.stdout
    assert 'remove it first with "sudo /usr/bin/nvidia-uninstall"' in replaced.stdout
    _assert_untouched(host)

    kept = run_playbook(playbook, [host], GPU_SHAPED | {"nvidia_driver_accept_installed": True})
    assert kept.rc == 0, kept.stdout
    assert (
        "(nvidia-smi, installed from runfile (/usr/bin/nvidia-uninstall)) and "
        "nvidia_driver_accept_installed is true: keeping it instead of branch 580"
    ) in kept.stdout
    assert "FACTS present=True count=1 version=595.58.03" in kept.stdout
    _assert_only_the_uvm_loader_added(host)


@pytest.mark.parametrize(
    "table", ["main.yml", "Debian-12.yml", "Debian-13.yml", "Ubuntu-22.yml", "Ubuntu-24.yml"]
)
def test_every_driver_table_names_its_source_and_date(table: str) -> None:
    """Package names, branches, repository and keyring: each file says where they come
    from and when that was read."""
    text = (ROLE / "vars" / table).read_text()
    comments = " ".join(line for line in text.splitlines() if line.lstrip().startswith("#"))
    assert "2026-11-30" in comments or "2026-02-05" in comments, table
    assert any(
        source in comments
        for source in ("NVIDIA Driver Installation Guide", "wiki.debian.org", "Ubuntu Server")
    ), table
