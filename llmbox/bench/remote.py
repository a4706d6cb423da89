"""``llmbox bench --ssh user@host``: run the same measurement on that host (so GPU
telemetry is read next to the GPU) and bring its result files back.

The remote host needs llmbox installed (``--remote-llmbox`` names the executable). The
API key never appears on a command line: it is written to the remote command's stdin
and read into an environment variable there.
"""

from __future__ import annotations

import io
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llmbox.bench.client import BenchError

_TARGET = re.compile(
    r"^(?:(?P<user>[^@\s]+)@)?(?P<host>[^@:\s]+|\[[0-9a-fA-F:]+\])(?::(?P<port>\d+))?$"
)
_REMOTE_KEY_VAR = "LLMBOX_BENCH_API_KEY"


@dataclass(frozen=True)
class SshTarget:
    user: str | None
    host: str
    port: int | None

    @classmethod
    def parse(cls, text: str) -> SshTarget:
        match = _TARGET.match(text)
        if match is None:
            raise BenchError(f"--ssh {text!r} is not of the form user@host or user@host:port")
        port = int(match["port"]) if match["port"] else None
        return cls(match["user"], match["host"].strip("[]"), port)


@dataclass(frozen=True)
class RemoteRun:
    files: list[Path]
    exit_code: int
    output: str


def remote_bench_args(
    *,
    url: str,
    model: str,
    concurrency: Sequence[int],
    requests: int | None,
    duration: float | None,
    prompt_tokens: int,
    output_tokens: int,
    endpoint: str,
    warmup: int,
    request_timeout: float,
    host_label: str | None,
    model_file: Path | None,
    llama_bench: Path | None,
    engine_ceiling: bool,
    per_request: bool,
    seed: int | None = None,
    rates: Sequence[float] = (),
    arrivals: str = "poisson",
    slo_ttft_ms: float | None = None,
    slo_itl_ms: float | None = None,
    ca_file: Path | None = None,
) -> list[str]:
    """The same measurement's options for the remote `llmbox bench` (no --ssh, --out or
    key: those are the remote run's own)."""
    args = [url, "--model", model]
    if rates:  # open loop: the rates replace the concurrency sweep
        args += ["--rate", ",".join(map(str, rates)), "--arrivals", arrivals]
    else:
        args += ["--concurrency", ",".join(map(str, concurrency))]
    args += ["--slo-ttft-ms", str(slo_ttft_ms)] if slo_ttft_ms is not None else []
    args += ["--slo-itl-ms", str(slo_itl_ms)] if slo_itl_ms is not None else []
    args += ["--ca-file", str(ca_file)] if ca_file is not None else []  # a path there
    args += ["--requests", str(requests)] if requests is not None else []
    args += ["--duration", str(duration)] if duration is not None else []
    args += ["--prompt-tokens", str(prompt_tokens), "--output-tokens", str(output_tokens)]
    args += ["--endpoint", endpoint, "--warmup", str(warmup)]
    args += ["--request-timeout", str(request_timeout)]
    # Unless told otherwise, the remote host names itself.
    args += ["--host-label", host_label] if host_label is not None else []
    args += ["--model-file", str(model_file)] if model_file is not None else []
    args += ["--llama-bench", str(llama_bench)] if llama_bench is not None else []
    args += ["--engine-ceiling"] if engine_ceiling else []
    args += ["--per-request"] if per_request else []
    # Unless told otherwise, the remote run draws (and records) its own prompt seed.
    args += ["--seed", str(seed)] if seed is not None else []
    return args


def remote_command(llmbox: str, bench_args: Sequence[str], remote_out: str, with_key: bool) -> str:
    args = [llmbox, "bench", *bench_args, "--out", remote_out]
    if with_key:
        args += ["--api-key-env", _REMOTE_KEY_VAR]
        prefix = f"IFS= read -r {_REMOTE_KEY_VAR} && export {_REMOTE_KEY_VAR} && "
    else:
        prefix = ""
    return prefix + shlex.join(args)


def run_remote(
    target: SshTarget,
    bench_args: Sequence[str],
    api_key: str | None,
    out_dir: Path,
    *,
    llmbox: str = "llmbox",
    key_file: Path | None = None,
) -> RemoteRun:
    """Run ``llmbox bench`` on ``target`` into a temporary directory there, copy every
    result file it wrote into ``out_dir`` (also after a failed run), clean up."""
    # Heavy, and needed only with --ssh.
    from fabric import Connection  # noqa: PLC0415
    from invoke.exceptions import UnexpectedExit  # noqa: PLC0415
    from paramiko import SSHException  # type: ignore[import-untyped]  # noqa: PLC0415

    connect_kwargs: dict[str, object] = {"look_for_keys": key_file is None}
    if key_file is not None:
        connect_kwargs["key_filename"] = str(key_file)
    where = f"{target.user + '@' if target.user else ''}{target.host}:{target.port or 22}"
    try:
        with Connection(
            target.host, user=target.user, port=target.port, connect_kwargs=connect_kwargs
        ) as conn:
            remote_out = conn.run("mktemp -d", hide=True).stdout.strip()
            command = remote_command(llmbox, bench_args, remote_out, api_key is not None)
            stdin = io.StringIO(f"{api_key}\n" if api_key is not None else "")
            # pty=False keeps the key off any terminal echo; output is shown as it comes.
            result = conn.run(command, warn=True, in_stream=stdin, hide=False)
            out_dir.mkdir(parents=True, exist_ok=True)
            fetched = []
            sftp = conn.sftp()
            for name in sorted(sftp.listdir(remote_out)):
                if name.endswith(".json") and not name.startswith("."):
                    local = out_dir / name
                    tmp = out_dir / f".{name}.part"
                    conn.get(f"{remote_out}/{name}", local=str(tmp))
                    tmp.replace(local)  # atomic: a reader never sees half a file
                    fetched.append(local)
            conn.run(f"rm -rf {shlex.quote(remote_out)}", hide=True, warn=True)
    except (OSError, SSHException, UnexpectedExit) as exc:
        raise BenchError(f"SSH to {where} failed: {exc.__class__.__name__}: {exc}") from exc
    return RemoteRun(fetched, result.exited, result.stdout + result.stderr)
