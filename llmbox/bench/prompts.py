"""Prompts of a controlled length, different for each request.

With the server's own ``/tokenize`` and ``/detokenize`` (llama.cpp, vLLM) a prompt is
cut to exactly the asked number of tokens; without them the length is approximated
(about 4 characters a token) and the result file says so.

Every prompt's words come from the run's seed (random per run unless ``--seed`` repeats
one), the level and the request's index: prompts differ from request to request, from
level to level and from run to run, so a server's prefix cache cannot skip the prompt
processing of a second run either.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass

import httpx

from llmbox.bench.client import base_url
from llmbox.bench.schema import PromptTokensMethod

_WORDS = (
    "river", "mountain", "copper", "lantern", "orchard", "signal", "harbor", "meadow",
    "quartz", "violet", "engine", "window", "paper", "garden", "silver", "thunder", "canvas",
    "pepper", "marble", "falcon", "winter", "basket", "candle", "meteor", "saddle", "tunnel",
    "ribbon", "walnut", "glacier", "compass", "velvet", "anchor", "pebble", "harvest",
    "island", "jacket", "kettle", "ladder", "mirror", "needle", "ocean", "pillow", "rocket",
    "shadow",
)  # fmt: skip
_CHARS_PER_TOKEN = 4  # rough figure for English text with BPE tokenizers
SEED_MAX = 2**32 - 1


def new_seed() -> int:
    """A fresh run seed, recorded in the result so the run can be repeated on purpose."""
    return secrets.randbelow(SEED_MAX + 1)


@dataclass(frozen=True)
class PromptSet:
    prompts: tuple[str, ...]
    method: PromptTokensMethod

    def for_request(self, index: int) -> str:
        return self.prompts[index % len(self.prompts)]


def _words(seed: str, count: int) -> str:
    rng = random.Random(seed)  # str seeds hash with SHA-512: the same in every process
    return " ".join(rng.choice(_WORDS) for _ in range(count))


def approximate_prompt(seed: str, tokens: int) -> str:
    text = _words(seed, tokens)  # ≥ 1 token a word: plenty of characters to cut from
    return text[: tokens * _CHARS_PER_TOKEN].rsplit(" ", 1)[0]


async def _exact_prompt(client: httpx.AsyncClient, url: str, seed: str, tokens: int) -> str:
    root = base_url(url)
    text = _words(seed, tokens)
    # llama.cpp reads "content", vLLM "prompt"; each ignores the other's key.
    response = await client.post(f"{root}/tokenize", json={"content": text, "prompt": text})
    response.raise_for_status()
    ids = response.json()["tokens"][:tokens]
    if len(ids) < tokens:
        raise ValueError(f"/tokenize gave {len(ids)} tokens for {tokens} words")
    response = await client.post(f"{root}/detokenize", json={"tokens": ids})
    response.raise_for_status()
    body = response.json()
    return str(body["content"] if "content" in body else body["prompt"])


async def build_prompts(
    client: httpx.AsyncClient, url: str, tokens: int, count: int, *, run_seed: int, part: str
) -> PromptSet:
    """``count`` distinct prompts of ``tokens`` tokens each (exact where the server can).

    Give each part of a run (warm-up, each concurrency level) its own ``part`` name and
    each run its own ``run_seed``: prompts reused from an earlier level or run would be
    found in the server's prompt cache and give a TTFT without prompt processing.
    """
    seeds = [f"{run_seed}:{part}:{index}" for index in range(count)]
    try:
        exact = [await _exact_prompt(client, url, seed, tokens) for seed in seeds]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        approx = tuple(approximate_prompt(seed, tokens) for seed in seeds)
        return PromptSet(approx, PromptTokensMethod.APPROXIMATE)
    return PromptSet(tuple(exact), PromptTokensMethod.TOKENIZE)
