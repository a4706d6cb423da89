"""Streaming client for OpenAI-compatible servers (llama.cpp, vLLM, …) over httpx.

One streamed request becomes one :class:`RequestRecord`. Problems that make the whole
run meaningless (unreachable URL, wrong key, a server that does not stream or streams
something that is not OpenAI SSE) raise :class:`BenchError` with one clear message;
a request that fails during the measured run is recorded as a failure instead.
"""

from __future__ import annotations

import json
import os
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from llmbox.bench.metrics import RequestRecord
from llmbox.bench.schema import Endpoint, OutputTokensMethod


class BenchError(Exception):
    """A problem that stops the benchmark; the message names the URL and what to fix."""


def base_url(url: str) -> str:
    """``http://h:8080``, ``http://h:8080/`` and ``http://h:8080/v1`` all mean the same."""
    trimmed = url.rstrip("/")
    if not trimmed.startswith(("http://", "https://")):
        raise BenchError(f"URL {url!r} is not an http:// or https:// URL")
    return trimmed.removesuffix("/v1")


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def tls_verify(ca_file: Path | None) -> ssl.SSLContext | bool:
    """What https endpoints are verified against: ``ca_file``, else the standard
    ``SSL_CERT_FILE`` variable, else the system's store (httpx's default)."""
    chosen = ca_file or (
        Path(os.environ["SSL_CERT_FILE"]) if os.environ.get("SSL_CERT_FILE") else None
    )
    if chosen is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(chosen))
    except (OSError, ssl.SSLError) as exc:
        raise BenchError(
            f"CA file {str(chosen)!r} cannot be used ({exc.__class__.__name__}: {exc}); "
            "give a PEM file of CA certificates"
        ) from exc


def _refused(url: str, exc: Exception) -> BenchError:
    if "CERTIFICATE_VERIFY_FAILED" in str(exc):
        reason = str(exc).split("certificate verify failed:")[-1].split("(_ssl")[0].strip()
        return BenchError(
            f"cannot reach {url}: its TLS certificate is not trusted ({reason}); give the CA "
            "that signed it with --ca-file PATH (or the SSL_CERT_FILE variable)"
        )
    return BenchError(f"cannot reach {url}: {exc.__class__.__name__}: {exc or 'no detail'}")


async def check_server(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """Ask ``/v1/models``; fail clearly on no answer, a wrong key or a non-API answer."""
    models_url = f"{base_url(url)}/v1/models"
    try:
        response = await client.get(models_url)
    except httpx.TransportError as exc:
        raise _refused(models_url, exc) from exc
    if response.status_code in (401, 403):
        raise BenchError(
            f"{models_url} answered {response.status_code} {response.reason_phrase}: the API "
            "key is wrong or missing (pass the name of the variable holding it with --api-key-env)"
        )
    if response.status_code != 200:
        raise BenchError(f"{models_url} answered HTTP {response.status_code}, expected 200")
    try:
        body: dict[str, Any] = response.json()
    except ValueError as exc:
        raise BenchError(f"{models_url} did not answer JSON: {response.text[:120]!r}") from exc
    return body


async def server_props(client: httpx.AsyncClient, url: str) -> dict[str, Any] | None:
    """llama.cpp's ``/props`` (build and model path), or None from other engines."""
    try:
        response = await client.get(f"{base_url(url)}/props")
        body = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    return body if isinstance(body, dict) else None


async def server_version(client: httpx.AsyncClient, url: str) -> str | None:
    """vLLM's ``GET /version`` (``{"version": "0.32.0"}``), or None when there is none.

    vLLM 0.32 defines it in vllm/entrypoints/serve/instrumentator/basic.py
    (``show_version``; vllm/entrypoints/openai/api_server.py in releases up to 0.11). Its
    API-key middleware (vllm/entrypoints/serve/middleware/authenticate.py) guards only
    paths under /v1, /v2, /inference and /cohere, so /version answers without the key;
    the key is sent anyway (the client's headers carry it), as a gateway may want it.
    """
    try:
        response = await client.get(f"{base_url(url)}/version")
        body = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    version = body.get("version") if isinstance(body, dict) else None
    return version if isinstance(version, str) and version else None


@dataclass(frozen=True)
class RequestSpec:
    """What each measured request asks for."""

    url: str
    model: str
    endpoint: Endpoint
    output_tokens: int
    # llama.cpp's `cache_prompt: false`: process every prompt in full instead of reusing
    # a slot's KV cache for the prefix it shares with an earlier request.
    no_prompt_cache: bool = False

    @property
    def target(self) -> str:
        path = "chat/completions" if self.endpoint is Endpoint.CHAT else "completions"
        return f"{base_url(self.url)}/v1/{path}"

    def body(self, prompt: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": self.output_tokens,
            # Force the length so runs compare: llama.cpp and vLLM honour ignore_eos,
            # vLLM also min_tokens; engines that know neither ignore them.
            "ignore_eos": True,
            "min_tokens": self.output_tokens,
            "temperature": 0.0,
        }
        if self.no_prompt_cache:
            body["cache_prompt"] = False
        if self.endpoint is Endpoint.CHAT:
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        return body


def _chunk_text(chunk: dict[str, Any], endpoint: Endpoint) -> str:
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices:
        return ""
    choice = choices[0]
    if endpoint is Endpoint.CHAT:
        delta = choice.get("delta") or {}
        return str(delta.get("content") or delta.get("reasoning_content") or "")
    return str(choice.get("text") or "")


class _Stream:
    """Accumulates one SSE stream's chunks into a RequestRecord."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.token_times: list[float] = []
        self.usage: dict[str, Any] | None = None
        self.timings: dict[str, Any] | None = None
        # A complete stream says so: a finish reason in a choice, or the closing [DONE].
        self.finish_reason: str | None = None
        self.done = False

    def add(self, chunk: dict[str, Any], endpoint: Endpoint, now: float) -> None:
        if "choices" not in chunk and "usage" not in chunk:
            raise ValueError(f"not an OpenAI completion chunk: {json.dumps(chunk)[:120]}")
        if _chunk_text(chunk, endpoint):
            self.token_times.append(now - self.start)
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            self.finish_reason = choices[0].get("finish_reason") or self.finish_reason
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        if isinstance(chunk.get("timings"), dict):
            self.timings = chunk["timings"]

    def record(self, end: float) -> RequestRecord:
        prompt_tokens: int | None = None
        output = len(self.token_times)
        method = OutputTokensMethod.COUNTED
        if self.timings is not None:
            prompt_tokens = self.timings.get("prompt_n")
            output, method = (
                int(self.timings.get("predicted_n", output)),
                OutputTokensMethod.TIMINGS,
            )
        if self.usage is not None and "completion_tokens" in self.usage:
            prompt_tokens = self.usage.get("prompt_tokens", prompt_tokens)
            output, method = int(self.usage["completion_tokens"]), OutputTokensMethod.USAGE
        tg = self.timings.get("predicted_per_second") if self.timings else None
        return RequestRecord(
            ok=True,
            error=None,
            e2e_s=end - self.start,
            ttft_s=self.token_times[0] if self.token_times else None,
            token_times_s=tuple(self.token_times),
            prompt_tokens=prompt_tokens,
            output_tokens=output,
            output_tokens_method=method,
            server_tg_tok_s=float(tg) if tg is not None else None,
        )


class _Failed(Exception):
    """One request went wrong; the message says how."""


async def _read_stream(
    client: httpx.AsyncClient, spec: RequestSpec, prompt: str, stream: _Stream
) -> None:
    async with client.stream("POST", spec.target, json=spec.body(prompt)) as response:
        if response.status_code != 200:
            detail = (await response.aread()).decode(errors="replace")[:200]
            raise _Failed(f"{spec.target} answered HTTP {response.status_code}: {detail}")
        kind = response.headers.get("content-type", "")
        if "text/event-stream" not in kind:
            raise _Failed(
                f"{spec.target} did not stream: content-type {kind!r}, expected "
                "text/event-stream (does the server support stream=true?)"
            )
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, SSE comments (":ping"), event names
            data = line[5:].strip()
            if data == "[DONE]":
                stream.done = True
                return
            try:
                chunk = json.loads(data)
                if not isinstance(chunk, dict):
                    raise ValueError(f"chunk is a {type(chunk).__name__}, not an object")
                if "error" in chunk:
                    raise _Failed(f"{spec.target} streamed an error: {chunk['error']}")
                stream.add(chunk, spec.endpoint, time.perf_counter())
            except ValueError as exc:
                raise _Failed(f"{spec.target} sent a malformed stream chunk: {exc}") from exc
    if stream.finish_reason is None:
        # The connection closed cleanly, but the answer is cut off: not a success.
        raise _Failed(
            f"{spec.target}: the stream ended without a finish reason or [DONE] after "
            f"{len(stream.token_times)} content chunks (cut off mid-answer)"
        )


async def stream_request(
    client: httpx.AsyncClient, spec: RequestSpec, prompt: str, *, strict: bool = False
) -> RequestRecord:
    """Send one streamed request. With ``strict`` a bad answer raises BenchError."""
    stream = _Stream(time.perf_counter())
    try:
        await _read_stream(client, spec, prompt, stream)
        if not stream.token_times:
            raise _Failed(f"{spec.target} streamed no generated text")
    except (_Failed, httpx.HTTPError) as exc:
        message = str(exc)
        if isinstance(exc, httpx.HTTPError):
            message = f"{spec.target}: {exc.__class__.__name__}: {exc or 'connection lost'}"
        if strict:
            raise BenchError(message) from exc
        return RequestRecord(ok=False, error=message, e2e_s=time.perf_counter() - stream.start)
    return stream.record(time.perf_counter())
