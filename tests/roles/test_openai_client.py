"""The official `openai` Python SDK against a served office host: what users point at
the endpoint. Chat and streaming with the host's key; a wrong key is refused."""

from __future__ import annotations

import openai
import pytest
from playbook_runner import TEST_API_KEY, OfficeConverge

pytestmark = pytest.mark.real_host

MODEL = "smollm2-135m-instruct"  # llama_cpp_model_alias


def _client(converged: OfficeConverge, key: str) -> openai.OpenAI:
    host = converged.hosts[0]
    return openai.OpenAI(base_url=f"http://{host.address}:8080/v1", api_key=key, timeout=60)


def test_chat_completion(converged_office: OfficeConverge) -> None:
    answer = _client(converged_office, TEST_API_KEY).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hello."}], max_tokens=8
    )
    assert answer.choices[0].message.content
    assert answer.usage is not None and 0 < answer.usage.completion_tokens <= 8


def assert_streams_an_answer(client: openai.OpenAI, model: str) -> None:
    """A streamed chat answer arrives in several chunks and is not empty (the text is not
    asserted: it changes with the engine and the model's precision)."""
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Count to five."}],
        max_tokens=12,
        stream=True,
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert len([p for p in pieces if p]) >= 2  # arrived in several chunks
    assert "".join(pieces).strip()


def test_streamed_chat_completion(converged_office: OfficeConverge) -> None:
    assert_streams_an_answer(_client(converged_office, TEST_API_KEY), MODEL)


def test_a_wrong_key_is_refused(converged_office: OfficeConverge) -> None:
    with pytest.raises(openai.AuthenticationError):
        _client(converged_office, "not-the-key-not-the-key").models.list()
