"""cuda_toolkit on GPU-less systemd-nspawn test hosts.

What runs here: the CUDA/driver compatibility check (a rule on the variables, so it
runs on every host), the clean skip on CPU-only hosts, the ``cuda_toolkit_required``
failure and the argument spec; on a "GPU-shaped" host (a made-up PCI tree through
nvidia_driver's test seam, no driver installed yet) the per-distribution table of CUDA
versions and the vLLM skip. Installing the toolkit needs a GPU host and NVIDIA's
repository and is not exercised here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from gpu_shape import GPU_SHAPED, make_gpu_shaped
from playbook_runner import PlaybookResult, converge_role, run_playbook

from llmbox.lab.testhosts import TestHost

ROLE = Path(__file__).resolve().parents[2] / "roles" / "cuda_toolkit"


# Assertions quote role messages as written: keep each task result on one line.
pytestmark = pytest.mark.usefixtures("one_line_results")


def _converge(
    host: TestHost, tmp_path: Path, extra_vars: dict[str, Any] | None = None, *, check: bool = False
) -> PlaybookResult:
    return converge_role("cuda_toolkit", [host], tmp_path, extra_vars, check=check)


def _assert_untouched(host: TestHost) -> None:
    infra = host.testinfra()
    assert not infra.file("/etc/profile.d/cuda-toolkit.sh").exists
    assert not infra.file("/etc/ld.so.conf.d/cuda-toolkit.conf").exists
    assert not infra.package("cuda-keyring").is_installed


@pytest.mark.real_host
def test_cpu_only_host_is_skipped_without_changes(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    host = boot_host("debian12")

    first = _converge(host, tmp_path)
    assert first.rc == 0, first.stdout
    assert first.changed() == 0
    assert f"No NVIDIA GPU on {host.name}: skipping CUDA toolkit 13.0 (CPU-only host)" in (
        first.stdout
    )

    second = _converge(host, tmp_path)
    assert second.rc == 0 and second.changed() == 0, second.stdout
    check = _converge(host, tmp_path, check=True)
    assert check.rc == 0 and check.changed() == 0, check.stdout
    _assert_untouched(host)


@pytest.mark.real_host
def test_cuda_version_too_new_for_the_driver_branch_is_refused(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    host = boot_host("debian12")

    result = _converge(
        host, tmp_path, {"cuda_toolkit_version": "12.8", "nvidia_driver_branch": "535"}
    )

    assert result.rc != 0
    text = " ".join(result.stdout.split())
    # CUDA 12.8 GA needs >= 570.26; branch 535 runs CUDA up to 12.2 (>= 535.54.03).
    assert "cuda_toolkit_version 12.8 needs NVIDIA driver branch 570 or newer (>= 570.26" in text
    assert "but nvidia_driver_branch is 535" in text
    assert "choose a CUDA version that branch 535 runs: 11.8, 12.0, 12.1, 12.2." in text
    assert result.stats[host.name]["changed"] == 0
    _assert_untouched(host)


@pytest.mark.real_host
def test_declared_driver_branch_takes_precedence_and_lists_what_it_runs(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    host = boot_host("debian12")

    result = _converge(
        host,
        tmp_path,
        {"cuda_toolkit_version": "13.0", "cuda_toolkit_driver_branch": "560",
         "nvidia_driver_branch": "580"},
    )  # fmt: skip

    assert result.rc != 0
    text = " ".join(result.stdout.split())
    assert "cuda_toolkit_version 13.0 needs NVIDIA driver branch 580 or newer" in text
    assert "but cuda_toolkit_driver_branch is 560" in text
    # Minimum branches <= 560: 520, 525, 530, 535, 545, 550, 555, 560.
    assert "runs: 11.8, 12.0, 12.1, 12.2, 12.3, 12.4, 12.5, 12.6." in text


@pytest.mark.real_host
def test_compatible_pair_passes_preflight_and_skips_on_cpu_host(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    host = boot_host("debian12")

    result = _converge(
        host, tmp_path, {"cuda_toolkit_version": "12.8", "nvidia_driver_branch": "570"}
    )

    assert result.rc == 0, result.stdout
    assert result.changed() == 0
    assert "skipping CUDA toolkit 12.8" in " ".join(result.stdout.split())


@pytest.mark.real_host
def test_required_and_bad_values_stop_in_preflight(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    host = boot_host("debian12")

    required = _converge(host, tmp_path, {"cuda_toolkit_required": True})
    assert required.rc != 0
    assert f"cuda_toolkit_required is true but {host.name} has no NVIDIA GPU" in " ".join(
        required.stdout.split()
    )

    unknown = _converge(host, tmp_path, {"cuda_toolkit_version": "12.7"})
    assert unknown.rc != 0
    assert unknown.stats[host.name]["ok"] == 1  # facts only: the argument spec is first
    assert "value of cuda_toolkit_version must be one of: 11.8, 12.0" in " ".join(
        unknown.stdout.split()
    )
    assert "got: 12.7" in unknown.stdout

    malformed = _converge(host, tmp_path, {"cuda_toolkit_driver_branch": "5x0"})
    assert malformed.rc != 0
    assert "cuda_toolkit_driver_branch is '5x0'; it must be a driver branch" in " ".join(
        malformed.stdout.split()
    )
    _assert_untouched(host)


def test_version_choices_are_exactly_the_driver_table() -> None:
    table = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["__cuda_toolkit_min_driver"]
    options = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"][
        "main"
    ]["options"]
    assert options["cuda_toolkit_version"]["choices"] == list(table)
    # Each minimum version belongs to its branch, and branches never go down.
    assert all(row["version"].split(".")[0] == str(row["branch"]) for row in table.values())
    branches = [row["branch"] for row in table.values()]
    assert branches == sorted(branches)
    assert table["12.4"]["branch"] == 550 and table["12.8"]["branch"] == 570


@pytest.mark.real_host
def test_loaded_driver_too_old_for_the_cuda_version_is_refused(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    """Without a declared branch the role checks the driver nvidia-smi reports.

    The test host has no GPU, so a small stand-in ``nvidia-smi`` script reporting
    driver 550.127.05 is put on it ONLY to exercise this comparison.
    """
    host = boot_host("debian12")
    host.ssh(
        "printf '#!/bin/sh\\necho \"550.127.05, NVIDIA GeForce Test GPU\"\\n' "
        "> /usr/local/bin/nvidia-smi && chmod 755 /usr/local/bin/nvidia-smi"
    )

    result = _converge(host, tmp_path, {"cuda_toolkit_version": "12.8"})

    assert result.rc != 0
    assert (
        "cuda_toolkit_version 12.8 needs NVIDIA driver >= 570.26 (branch 570) but nvidia-smi "
        f"on {host.name} reports 550.127.05."
    ) in result.stdout
    assert result.stats[host.name]["changed"] == 0
    _assert_untouched(host)


@pytest.mark.real_host
def test_roles_in_site_order_share_one_gpu_detection(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    """nvidia_driver's facts are what cuda_toolkit (and vllm) read: detection runs once."""
    host = boot_host("debian12")
    play = [
        {
            "name": "GPU roles in site.yml order",
            "hosts": "llm_servers",
            "roles": ["nvidia_driver", "cuda_toolkit"],
        }
    ]
    playbook = tmp_path / "gpu_roles.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))

    result = run_playbook(playbook, [host])

    assert result.rc == 0, result.stdout
    assert result.changed() == 0
    assert result.stdout.count("TASK [nvidia_driver : List the PCI devices") == 1
    assert "skipping the NVIDIA driver" in result.stdout
    assert "skipping CUDA toolkit 13.0 (CPU-only host)" in result.stdout


def _distros() -> dict[str, Any]:
    table: dict[str, Any] = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())[
        "__cuda_toolkit_distros"
    ]
    return table


def _preflight_task(name: str) -> dict[str, Any]:
    tasks = yaml.safe_load((ROLE / "tasks" / "preflight.yml").read_text())
    for task in tasks:
        for inner in [task, *task.get("block", [])]:
            if inner.get("name") == name:
                return dict(inner)
    raise AssertionError(f"no task {name!r} in preflight.yml")


def test_every_cuda_version_the_preflight_accepts_is_in_the_distribution_table() -> None:
    """The refusal's own condition, evaluated for every (distribution, version) pair the
    argument spec allows: accepted exactly when the table lists the version."""

    options = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"][
        "main"
    ]["options"]
    min_driver = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())[
        "__cuda_toolkit_min_driver"
    ]
    task = _preflight_task("Refuse a CUDA version this distribution's repository does not have")
    refuses = jinja2.Environment().compile_expression(task["when"])
    distros = _distros()
    assert set(distros) == {"Debian-12", "Debian-13", "Ubuntu-22", "Ubuntu-24"}
    for distro, row in distros.items():
        assert row["keyring"] == "1.1-1"
        assert set(row["versions"]) <= set(min_driver), distro
        accepted = [
            version
            for version in options["cuda_toolkit_version"]["choices"]
            if not refuses(
                cuda_toolkit_version=version,
                __cuda_toolkit_distros=distros,
                __cuda_toolkit_distro=distro,
            )
        ]
        assert accepted == row["versions"], distro
    # NVIDIA's ubuntu2404 repository starts at CUDA 12.5, debian12's at 12.3.
    assert "12.4" not in distros["Ubuntu-24"]["versions"]
    assert distros["Ubuntu-24"]["versions"][0] == "12.5"
    assert distros["Debian-12"]["versions"][0] == "12.3"
    # The default is installable everywhere, on the driver role's default branch.
    default = options["cuda_toolkit_version"]["default"]
    assert all(default in row["versions"] for row in distros.values())
    driver_defaults = yaml.safe_load(
        (ROLE.parent / "nvidia_driver" / "defaults" / "main.yml").read_text()
    )
    assert min_driver[default]["branch"] <= int(driver_defaults["nvidia_driver_branch"])


def test_each_table_entry_names_its_source() -> None:
    """Every distribution's row is preceded by a comment naming what it was read from
    (a repository index or NVIDIA guide) and a date."""
    lines = (ROLE / "vars" / "main.yml").read_text().splitlines()
    for distro in _distros():
        row = lines.index(f"  {distro}:")
        comment = []
        for line in reversed(lines[:row]):
            if not line.startswith("  #"):
                break
            comment.append(line)
        text = " ".join(comment)
        assert re.search(r"20\d\d-\d\d-\d\d", text), distro
        assert "index" in text or "Guide" in text, distro


@pytest.mark.real_host
def test_gpu_shaped_host_gets_the_distribution_table_and_vllm_no_toolkit(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    """A GPU-shaped Debian 12 host with no driver and no nvcc yet: the default version
    passes the read-only preflight (judged on the branch the driver role will install);
    a version NVIDIA's debian12 repository lacks is refused with the ones it has; a vLLM
    host is not given a toolkit at all."""
    host = boot_host("debian12")
    make_gpu_shaped(host)
    preflight = [
        {
            "name": "cuda_toolkit's up-front checks",
            "hosts": "llm_servers",
            "tasks": [
                {
                    "name": "Run the preflight",
                    "ansible.builtin.include_role": {
                        "name": "cuda_toolkit",
                        "tasks_from": "preflight.yml",
                    },
                },
                {
                    "name": "Show the decision",
                    "ansible.builtin.debug": {
                        "msg": "MANAGE={{ __cuda_toolkit_manage }} HOME={{ cuda_toolkit_home }}"
                    },
                },
            ],
        }
    ]
    play = tmp_path / "preflight.yml"
    play.write_text(yaml.safe_dump(preflight, sort_keys=False))

    passed = run_playbook(play, [host], GPU_SHAPED, check=True)
    assert passed.rc == 0, passed.stdout
    assert passed.changed() == 0
    assert "MANAGE=True HOME=/usr/local/cuda-13.0" in passed.stdout

    refused = run_playbook(play, [host], GPU_SHAPED | {"cuda_toolkit_version": "12.2"})
    assert refused.rc != 0
    assert (
        "NVIDIA's CUDA repository for Debian-12 (debian12) has no cuda-toolkit for "
        "cuda_toolkit_version 12.2; it has 12.3, 12.4, 12.5, 12.6, 12.8, 12.9, 13.0"
    ) in " ".join(refused.stdout.split())

    vllm = run_playbook(
        play, [host], GPU_SHAPED | {"llmbox_engine": "vllm", "cuda_toolkit_version": "12.2"}
    )
    assert vllm.rc == 0, vllm.stdout
    assert "vLLM's wheels bring their own CUDA runtime, so no CUDA toolkit is installed" in (
        " ".join(vllm.stdout.split())
    )
    assert "MANAGE=False" in vllm.stdout
    _assert_untouched(host)
