"""`llmbox bench --ca-file` (and SSL_CERT_FILE): an https endpoint is verified against the
CA given, over a real TLS handshake on loopback; any other CA is one clear error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from llmbox.bench.schema import read_result
from llmbox.cli import main
from tests.bench.conftest import free_port
from tests.bench.tls import Ca, TlsProxy, make_ca, server_context

if TYPE_CHECKING:
    from tests.bench.conftest import LlamaServer


@pytest.fixture
def cas(tmp_path: Path) -> tuple[Ca, Ca]:
    """The CA that signed the proxy's certificate, and another one."""
    return make_ca(tmp_path, "gateway-ca"), make_ca(tmp_path, "other-ca")


@pytest.fixture
def unreachable_proxy(cas: tuple[Ca, Ca], tmp_path: Path) -> Iterator[TlsProxy]:
    """TLS on loopback in front of a port nobody listens on: a failed handshake is all
    a wrong CA ever gets to, so no server is needed behind it."""
    proxy = TlsProxy(server_context(cas[0]), ("127.0.0.1", free_port()))
    yield proxy
    proxy.close()


def _bench(url: str, out: Path, *extra: str) -> list[str]:
    return ["bench", url, "--model", "smollm2", "--out", str(out), "--warmup", "1", *extra]


def test_another_ca_is_one_clear_error(
    cas: tuple[Ca, Ca], unreachable_proxy: TlsProxy, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    args = _bench(unreachable_proxy.url, out, "--ca-file", str(cas[1].pem))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert f"cannot reach {unreachable_proxy.url}/v1/models: its TLS certificate is not " in (
        result.output
    )
    assert "give the CA that signed it with --ca-file PATH" in result.output
    assert result.output.count("Error") == 1
    assert not out.exists()


def test_ssl_cert_file_is_used_without_ca_file(
    cas: tuple[Ca, Ca], unreachable_proxy: TlsProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(cas[1].pem))
    result = CliRunner().invoke(main, _bench(unreachable_proxy.url, tmp_path))
    assert result.exit_code == 1
    assert "its TLS certificate is not trusted" in result.output


def test_the_system_store_does_not_trust_a_private_ca(
    unreachable_proxy: TlsProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    result = CliRunner().invoke(main, _bench(unreachable_proxy.url, tmp_path))
    assert result.exit_code == 1
    assert "its TLS certificate is not trusted" in result.output


def test_a_file_that_is_no_ca_is_named(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    result = CliRunner().invoke(
        main, _bench("https://127.0.0.1:1", tmp_path, "--ca-file", str(bogus))
    )
    assert result.exit_code == 1
    assert f"CA file {str(bogus)!r} cannot be used" in result.output
    missing = CliRunner().invoke(
        main, _bench("https://127.0.0.1:1", tmp_path, "--ca-file", str(tmp_path / "nope.pem"))
    )
    assert missing.exit_code == 2
    assert "nope.pem' is not a file" in missing.output


@pytest.mark.real_server
@pytest.mark.parametrize("how", ["--ca-file", "SSL_CERT_FILE"])
def test_the_gateway_ca_verifies_and_the_run_completes(
    how: str,
    llama_server: LlamaServer,
    cas: tuple[Ca, Ca],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host, port = llama_server.url.removeprefix("http://").split(":")
    proxy = TlsProxy(server_context(cas[0]), (host, int(port)))
    monkeypatch.setenv("BENCH_KEY", llama_server.api_key)
    extra = ["--api-key-env", "BENCH_KEY", "--concurrency", "1", "--requests", "2",
             "--prompt-tokens", "8", "--output-tokens", "4", "--host-label", "gw"]  # fmt: skip
    if how == "--ca-file":
        extra += ["--ca-file", str(cas[0].pem)]
    else:
        monkeypatch.setenv("SSL_CERT_FILE", str(cas[0].pem))
    try:
        result = CliRunner().invoke(main, _bench(proxy.url, tmp_path / "out", *extra))
    finally:
        proxy.close()
    assert result.exit_code == 0, result.output
    (written,) = (tmp_path / "out").glob("*.json")
    measured = read_result(written)
    assert measured.metadata.settings.url == proxy.url
    assert measured.metrics.completed == 2
    assert proxy.handshake_errors == []
