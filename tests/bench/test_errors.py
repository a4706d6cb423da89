"""One clear error for each way a server can be wrong, from real sockets on 127.0.0.1.

A small stdlib HTTP server plays an OpenAI-compatible server that answers its model
list but then does not stream, streams garbage, or closes the connection mid-answer:
llama-server never does any of these on purpose, so these cases need a server that does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmbox.cli import main


class _Handler(BaseHTTPRequestHandler):
    mode = "non-stream"
    posts = 0  # completions asked for so far (the first is the warm-up)

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        models = {"object": "list", "data": [{"id": "m", "owned_by": "fake"}]}
        self._send(200, "application/json", json.dumps(models).encode())

    def _sse_then_close(self, chunks: Sequence[object], tail: str) -> None:
        """Stream without a Content-Length: HTTP/1.0, the body ends when the socket closes."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(tail.encode())

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/v1/chat/completions":
            self._send(404, "application/json", b'{"error": "no such endpoint"}')
            return
        type(self).posts += 1
        if self.mode == "plain-sse":  # valid OpenAI SSE, but no usage and no timings
            chunks = [{"choices": [{"delta": {"content": f"w{i} "}}]} for i in range(5)]
            body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            self._send(200, "text/event-stream", body.encode())
        elif self.mode == "cut-off":  # the warm-up completes, then 1 of 4 tokens and close
            words = [{"choices": [{"delta": {"content": f"w{i} "}}]} for i in range(4)]
            if type(self).posts == 1:
                done = {"choices": [{"delta": {}, "finish_reason": "length"}]}
                self._sse_then_close([*words, done], "data: [DONE]\n\n")
            else:
                self._sse_then_close(words[:1], "")
        elif self.mode == "non-stream":
            answer = {"choices": [{"message": {"content": "hello"}}]}
            self._send(200, "application/json", json.dumps(answer).encode())
        else:
            self._send(200, "text/event-stream", b"data: {this is not json\n\n")


@pytest.fixture
def fake_server(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("Handler", (_Handler,), {"mode": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _bench(url: str, out: Path, *extra: str) -> tuple[int, str]:
    args = ["bench", url, "--model", "m", "--concurrency", "1", "--requests", "2", *extra]
    result = CliRunner().invoke(main, [*args, "--prompt-tokens", "8", "--out", str(out)])
    return result.exit_code, result.output


@pytest.mark.parametrize("fake_server", ["cut-off"], indirect=True)
def test_cut_off_stream_counts_failed_and_exits_non_zero(fake_server: str, tmp_path: Path) -> None:
    code, output = _bench(fake_server, tmp_path, "--warmup", "1")
    assert code == 1, output
    reason = "the stream ended without a finish reason or [DONE] after 1 content chunks"
    assert "2 of 2 requests failed at concurrency 1" in output
    assert reason in output
    (path,) = tmp_path.glob("*.json")
    data = json.loads(path.read_text())
    assert (data["metrics"]["completed"], data["metrics"]["failed"]) == (0, 2)
    assert reason in data["metadata"]["run_error"]


@pytest.mark.parametrize("fake_server", ["plain-sse"], indirect=True)
def test_piped_table_keeps_every_header_and_figure_whole(
    fake_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CliRunner's output is no terminal, as in a pipe or a CI log: rich renders at 80
    # columns there. Fifteen columns in one table collapsed to "c…", "4…" before.
    monkeypatch.delenv("COLUMNS", raising=False)
    code, output = _bench(fake_server, tmp_path)
    assert code == 0, output
    assert "…" not in output
    assert max(map(len, output.splitlines())) <= 80
    for header in ("conc", "failed", "req/s", "TTFT ms", "ITL ms", "e2e ms", "GPU W", "CPU %"):
        assert header in output, header


@pytest.mark.parametrize("fake_server", ["plain-sse"], indirect=True)
def test_server_without_tokenizer_or_usage_is_labelled(fake_server: str, tmp_path: Path) -> None:
    code, output = _bench(fake_server, tmp_path)
    assert code == 0, output
    (path,) = tmp_path.glob("*.json")
    data = json.loads(path.read_text())
    settings = data["metadata"]["settings"]
    assert settings["prompt_tokens_method"] == "approximate"  # no /tokenize there
    assert settings["output_tokens_method"] == "counted"  # no usage, no timings
    assert data["metrics"]["output_tokens_mean"] == 5  # five content chunks counted
    # "fake" names no engine llmbox knows: the owner is kept, the engine is unknown
    assert data["metadata"]["engine"] == {"name": "unknown", "version": None, "owned_by": "fake"}


@pytest.mark.parametrize("fake_server", ["non-stream"], indirect=True)
def test_non_streaming_server_is_one_clear_error(fake_server: str, tmp_path: Path) -> None:
    code, output = _bench(fake_server, tmp_path)
    assert code != 0
    assert f"{fake_server}/v1/chat/completions did not stream" in output
    assert "application/json" in output
    assert list(tmp_path.iterdir()) == []  # nothing measured, nothing written


@pytest.mark.parametrize("fake_server", ["malformed"], indirect=True)
def test_malformed_stream_is_one_clear_error(fake_server: str, tmp_path: Path) -> None:
    code, output = _bench(fake_server, tmp_path)
    assert code != 0
    assert "sent a malformed stream chunk" in output
    assert output.count("Error:") == 1


def test_unreachable_url_names_it(tmp_path: Path, unused_port: int) -> None:
    url = f"http://127.0.0.1:{unused_port}"  # nothing listens there
    code, output = _bench(url, tmp_path)
    assert code != 0
    assert f"cannot reach {url}/v1/models" in output
    assert "ConnectError" in output


def test_repeated_concurrency_level_is_refused() -> None:
    result = CliRunner().invoke(
        main, ["bench", "http://127.0.0.1:1", "--model", "m", "--concurrency", "1,1,4"]
    )
    assert result.exit_code == 2
    assert "'1,1,4' repeats level 1: give each level once" in result.output


def test_bad_concurrency_lists_what_is_valid(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["bench", "http://127.0.0.1:1", "--model", "m", "--concurrency", "1,zero"]
    )
    assert result.exit_code == 2
    assert "'1,zero' is not a comma-separated list of positive integers" in result.output


def test_missing_key_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMBOX_TEST_NO_SUCH_KEY", raising=False)
    result = CliRunner().invoke(
        main,
        ["bench", "http://127.0.0.1:1", "--model", "m", "--api-key-env", "LLMBOX_TEST_NO_SUCH_KEY"],
    )
    assert result.exit_code == 2
    assert "environment variable LLMBOX_TEST_NO_SUCH_KEY is not set" in result.output


def test_requests_and_duration_exclude_each_other() -> None:
    result = CliRunner().invoke(
        main, ["bench", "http://127.0.0.1:1", "--model", "m", "--requests", "2", "--duration", "1"]
    )
    assert result.exit_code == 2
    assert "give --requests or --duration, not both" in result.output
