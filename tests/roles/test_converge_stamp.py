"""The converge stamp: a re-run of site.yml on a host that is already converged ends in
seconds (playbooks/tasks/converge_stamp_check.yml), and anything that drifted or changed
in the inputs takes the full run. Uses the shared office pair (tests/roles/test_site.py
proves, with llmbox_full_converge, that every task of the full re-run is idempotent)."""

from __future__ import annotations

import hashlib
import json
import shlex

import pytest
from playbook_runner import OfficeConverge, run_playbook

from llmbox.lab.testhosts import RELEASES, TESTHOSTS, TestHost

pytestmark = pytest.mark.real_host

FAST = "unchanged since the last complete converge"
ENV_FILE = "/etc/llama-server/llama-server.env"
STAMP_HELPER = "/usr/local/libexec/llmbox/converge-stamp"

# Where site.yml's stamp looks (playbooks/tasks/converge_stamp_write.yml: hash and stat).
WATCHED = (
    "/etc/systemd/system/", "/etc/llmbox/", "/etc/llama-server/", "/etc/vllm/",
    "/etc/modprobe.d/", "/etc/modules-load.d/", "/etc/apt/sources.list.d/",
    "/etc/apt/preferences.d/", "/etc/ld.so.conf.d/", "/etc/profile.d/", "/usr/local/libexec/",
    "/opt/llama.cpp/",
)  # fmt: skip
# Written when the test host boots (llmbox.lab.testhosts), or by systemd and apt on their
# own: not the play's.
NOT_THE_PLAYS = (
    "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/apt/sources.list",
    "/etc/systemd/network/10-host0.network", "/etc/machine-id", "/etc/ld.so.cache",
    "/etc/.pwd.lock", "/etc/networks",
    "/etc/passwd-", "/etc/group-", "/etc/shadow-", "/etc/gshadow-",
)  # fmt: skip
# The play's users: checked live by the stamp (users), not by hashing the account files.
ACCOUNT_FILES = (
    "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/subuid", "/etc/subgid",
)  # fmt: skip


def _d12(converged: OfficeConverge) -> TestHost:
    return next(h for h in converged.hosts if h.distro == "debian12")


def test_rerun_of_a_converged_host_takes_the_fast_path(converged_office: OfficeConverge) -> None:
    fast = converged_office.fast
    assert fast.rc == 0, fast.stdout[-4000:]
    assert {n: s["changed"] for n, s in fast.stats.items()} == {"office-d12": 0, "office-d13": 0}
    assert fast.stdout.count(FAST) == 2, fast.stdout[-4000:]
    assert "TASK [llama_cpp" not in fast.stdout and "TASK [model_store" not in fast.stdout


def test_forced_full_rerun_writes_no_new_stamp(converged_office: OfficeConverge) -> None:
    """The fixture's second run applies every task (llmbox_full_converge): it finds the
    stamp valid, and the stamp it would write is the one there, so it changes nothing."""
    second = converged_office.second
    said = " ".join(second.stdout.split())  # the yaml callback folds long messages
    assert said.count("full converge: asked for with llmbox_full_converge") == 2
    assert said.count("the stamp: unchanged since the last complete converge") == 2, said[-4000:]
    assert "Write the stamp of this converge" in second.stdout
    assert second.changed() == 0, second.stdout[-4000:]


@pytest.mark.usefixtures("one_line_results")
def test_changed_input_takes_the_full_run(
    converged_office: OfficeConverge, office_vars: dict[str, object]
) -> None:
    """A changed variable is a changed fingerprint: --check shows what the full run would do."""
    host = _d12(converged_office)
    result = run_playbook(
        "playbooks/site.yml",
        [host],
        office_vars | {"llama_cpp_parallel": 3},
        check=True,
    )
    assert result.rc == 0, result.stdout[-4000:]
    assert "full converge: the play's inputs changed" in result.stdout
    assert result.changed() > 0  # the unit with the new setting, not applied (check mode)
    assert FAST not in result.stdout


@pytest.mark.usefixtures("one_line_results")
def test_drift_is_found_named_and_repaired(
    converged_office: OfficeConverge, office_vars: dict[str, object]
) -> None:
    host = _d12(converged_office)
    host.ssh(f"echo '# edited by hand' >> {ENV_FILE}")
    repaired = run_playbook("playbooks/site.yml", [host], office_vars)
    assert repaired.rc == 0, repaired.stdout[-4000:]
    assert f"full converge: {ENV_FILE} changed since the last complete converge" in repaired.stdout
    assert "edited by hand" not in host.ssh(f"cat {ENV_FILE}").stdout
    assert host.ssh("systemctl is-active llama-server", check=False).stdout.strip() == "active"

    again = run_playbook("playbooks/site.yml", [host], office_vars)
    assert again.rc == 0 and FAST in again.stdout and again.changed() == 0, again.stdout[-4000:]


@pytest.mark.usefixtures("one_line_results")
def test_a_stopped_service_is_drift(
    converged_office: OfficeConverge, office_vars: dict[str, object]
) -> None:
    host = _d12(converged_office)
    assert host.ssh(f"{STAMP_HELPER} check anything", check=False).returncode == 1
    host.ssh("systemctl stop llama-server")
    result = run_playbook("playbooks/site.yml", [host], office_vars)
    assert result.rc == 0, result.stdout[-4000:]
    assert "full converge: the play's inputs changed" not in result.stdout
    assert "llama-server fails systemctl is-active" in result.stdout
    assert host.ssh("systemctl is-active llama-server", check=False).stdout.strip() == "active"


def _image_hashes(distro: str, paths: list[str]) -> dict[str, str]:
    lower = TESTHOSTS / "rootfs" / RELEASES[distro]
    found = {}
    for path in paths:
        image_file = lower / path.lstrip("/")
        if image_file.is_file() and not image_file.is_symlink():
            found[path] = hashlib.sha256(image_file.read_bytes()).hexdigest()
    return found


def test_every_file_the_play_writes_is_watched(converged_office: OfficeConverge) -> None:
    """Each file under /etc, /opt or /usr/local that differs from the test host's image and
    belongs to no package was written by the play: it must be where the stamp looks, or
    the fast path would miss a hand edit of it."""
    host = _d12(converged_office)
    listing = host.ssh(
        "find /etc /opt /usr/local -xdev -type f -print0 | xargs -0 sha256sum", timeout=120
    ).stdout
    now: dict[str, str] = {}
    for line in listing.splitlines():
        digest, path = line.split(maxsplit=1)
        now[path] = digest
    image = _image_hashes(host.distro, list(now))
    differs = sorted(p for p, digest in now.items() if image.get(p) != digest)
    owned = host.ssh(
        "dpkg -S " + " ".join(shlex.quote(p) for p in differs) + " 2>/dev/null", check=False
    ).stdout
    package_files = {line.split(": ", 1)[1] for line in owned.splitlines() if ": " in line}
    unwatched = [
        p
        for p in differs
        if p not in package_files
        and p not in NOT_THE_PLAYS
        and p not in ACCOUNT_FILES
        and not p.startswith(WATCHED)
        and not p.startswith("/etc/ssh/ssh_host_")
    ]
    assert unwatched == [], json.dumps(unwatched, indent=1)
