"""`llmbox bench --ssh`: a real sshd on 127.0.0.1, started by the test with a throw-away
host key and authorized key, runs `llmbox bench` "remotely" against the real
llama-server, and the result files come back into the local --out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from llmbox.bench.cli import bench
from llmbox.bench.remote import SshTarget, remote_bench_args
from llmbox.cli import main

if TYPE_CHECKING:
    from tests.bench.conftest import LlamaServer

SSHD = Path("/usr/sbin/sshd")


def test_ssh_target_parsing() -> None:
    assert SshTarget.parse("ops@gpu-1:2222") == SshTarget("ops", "gpu-1", 2222)
    assert SshTarget.parse("gpu-1") == SshTarget(None, "gpu-1", None)


def test_bad_ssh_target_is_named() -> None:
    result = CliRunner().invoke(
        main, ["bench", "http://127.0.0.1:1", "--model", "m", "--ssh", "a@b@c"]
    )
    assert result.exit_code == 1
    assert "--ssh 'a@b@c' is not of the form user@host" in result.output


def test_unreachable_ssh_host_is_one_clear_error(unused_port: int, tmp_path: Path) -> None:
    target = f"root@127.0.0.1:{unused_port}"  # nothing listens there
    args = ["bench", "http://127.0.0.1:1", "--model", "m", "--ssh", target]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert f"SSH to root@127.0.0.1:{unused_port} failed" in result.output
    assert not (tmp_path / "out").exists()


@pytest.fixture
def loopback_sshd(tmp_path: Path, unused_port: int) -> Iterator[tuple[str, Path]]:
    if not SSHD.is_file():
        pytest.fail(f"{SSHD} missing: run `bash scripts/setup.d/15-bench-sshd.sh`")
    keys = tmp_path / "ssh"
    keys.mkdir(mode=0o700)
    for name in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True
        )
    shutil.copy(keys / "client_key.pub", keys / "authorized_keys")
    config = keys / "sshd_config"
    config.write_text(
        f"Port {unused_port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host_key'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPidFile {keys / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\n"
        "StrictModes no\nSubsystem sftp /usr/lib/openssh/sftp-server\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    log = keys / "sshd.log"
    sshd = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config), "-E", str(log)])
    deadline = time.monotonic() + 10
    while "Server listening" not in (log.read_text() if log.exists() else ""):
        assert sshd.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "sshd did not start in 10 s"
        time.sleep(0.1)
    user = os.environ.get("USER") or "root"
    yield f"{user}@127.0.0.1:{unused_port}", keys / "client_key"
    sshd.terminate()
    sshd.wait(timeout=10)


@pytest.mark.real_server
def test_bench_over_ssh_brings_results_back(
    llama_server: LlamaServer,
    loopback_sshd: tuple[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target, key = loopback_sshd
    monkeypatch.setenv("BENCH_KEY", llama_server.api_key)
    remote_llmbox = Path(sys.executable).parent / "llmbox"
    out = tmp_path / "fetched"
    args = [
        "bench", llama_server.url, "--model", "smollm2", "--api-key-env", "BENCH_KEY",
        "--concurrency", "1,2", "--requests", "2", "--prompt-tokens", "16",
        "--output-tokens", "8", "--warmup", "1", "--out", str(out), "--host-label", "gpu-box",
        "--ssh", target, "--ssh-key", str(key), "--remote-llmbox", str(remote_llmbox),
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "gpu-box__llama.cpp__smollm2-135m-instruct-q4_1__c1.json",
        "gpu-box__llama.cpp__smollm2-135m-instruct-q4_1__c2.json",
    ]
    data = json.loads((out / names[0]).read_text())
    assert data["metrics"]["completed"] == 2
    assert data["metadata"]["host"] == "gpu-box"
    # The key travelled on stdin, never on a command line the remote host could log.
    assert llama_server.api_key not in result.output


def test_remote_args_mean_the_same_measurement() -> None:
    args = remote_bench_args(
        url="http://127.0.0.1:8080", model="smollm2", concurrency=(1, 4), requests=None,
        duration=30.0, prompt_tokens=64, output_tokens=32, endpoint="completions", warmup=3,
        request_timeout=60.0, host_label=None, model_file=Path("/m/x.Q4_1.gguf"),
        llama_bench=None, engine_ceiling=True, per_request=True, seed=42,
    )  # fmt: skip
    params = bench.make_context("bench", [*args, "--out", "/tmp/o"]).params
    assert params["url"] == "http://127.0.0.1:8080"
    assert params["concurrency"] == (1, 4)
    assert (params["requests"], params["duration"]) == (None, 30.0)
    assert (params["prompt_tokens"], params["output_tokens"]) == (64, 32)
    assert (params["endpoint"], params["warmup"], params["request_timeout"]) == (
        "completions",
        3,
        60.0,
    )
    assert params["host_label"] is None  # the remote host names itself
    assert params["model_file"] == Path("/m/x.Q4_1.gguf")
    assert params["engine_ceiling"] is True
    assert params["per_request"] is True
    assert params["seed"] == 42  # the same prompts there
    assert params["ssh_target"] is None  # never recursive
