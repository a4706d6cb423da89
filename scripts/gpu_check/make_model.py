#!/usr/bin/env python3
"""Writes a Llama-shaped GGUF model with random weights (F16), for speed tests only.

Generation speed depends on the model's shape and the bytes read per token, not on the
weights' values, so a model with the shape of Llama 3.2 1B (or 3B) made on the spot
measures the GPU path as well as the real one, with nothing to download. Its output is
random text. The tokenizer is a made-up SentencePiece-style vocabulary of the same size
as the shape's (byte tokens so any text can be tokenized, then filler pieces), so the
output layer costs what the real one costs.

Needs numpy and the gguf package of the llama.cpp that will load the file (its gguf-py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gguf
import numpy as np


@dataclass(frozen=True)
class Shape:
    n_vocab: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    n_ff: int
    n_ctx_train: int
    rope_theta: float
    source: str

    def parameters(self) -> int:
        head_dim = self.n_embd // self.n_head
        attention = 2 * self.n_embd * self.n_embd + 2 * self.n_embd * self.n_head_kv * head_dim
        per_layer = attention + 3 * self.n_embd * self.n_ff + 2 * self.n_embd
        return self.n_vocab * self.n_embd + self.n_layer * per_layer + self.n_embd


# Shapes from each model's config.json on Hugging Face (meta-llama/Llama-3.2-1B and -3B);
# both tie the output layer to the token embeddings. "tiny" is for self-tests on a CPU:
# row sizes stay multiples of 256 so Q4_K_M's k-quants apply as on the real shapes.
SHAPES = {
    "tiny": Shape(1024, 256, 2, 4, 2, 512, 2048, 500000.0, "self-test shape"),
    "1b": Shape(128256, 2048, 16, 32, 8, 8192, 131072, 500000.0,
                "Llama 3.2 1B config.json (meta-llama/Llama-3.2-1B)"),
    "3b": Shape(128256, 3072, 28, 24, 8, 8192, 131072, 500000.0,
                "Llama 3.2 3B config.json (meta-llama/Llama-3.2-3B)"),
}  # fmt: skip

# The chat template of ChatML, so llama-server's chat endpoint has one to apply.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
_POOL_VALUES = 1 << 24  # random values drawn once, then reused cyclically per tensor


def vocabulary(size: int) -> tuple[list[str], list[float], list[int]]:
    """<unk> <s> </s>, the 256 byte tokens, printable characters, then filler pieces."""
    tokens = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256))]
    types = [
        gguf.TokenType.UNKNOWN,
        gguf.TokenType.CONTROL,
        gguf.TokenType.CONTROL,
        *[gguf.TokenType.BYTE] * 256,
    ]
    pieces = [
        "\u2581",
        *(chr(c) for c in range(33, 127)),
        *(f"\u2581{chr(c)}" for c in range(97, 123)),
    ]
    filler = 0
    while len(tokens) < size:
        if pieces:
            tokens.append(pieces.pop(0))
        else:
            tokens.append(f"\u2581w{filler}")
            filler += 1
        types.append(gguf.TokenType.NORMAL)
    scores = [0.0] * 3 + [0.0] * 256 + [-float(i) for i in range(size - 259)]
    return tokens[:size], scores[:size], [int(t) for t in types[:size]]


def tensor_shapes(shape: Shape) -> list[tuple[str, tuple[int, ...]]]:
    """(name, numpy shape) in llama.cpp's names for the llama architecture; 1-D = norms."""
    head_dim = shape.n_embd // shape.n_head
    kv = shape.n_head_kv * head_dim
    names: list[tuple[str, tuple[int, ...]]] = [
        ("token_embd.weight", (shape.n_vocab, shape.n_embd))
    ]
    for i in range(shape.n_layer):
        names += [
            (f"blk.{i}.attn_norm.weight", (shape.n_embd,)),
            (f"blk.{i}.attn_q.weight", (shape.n_embd, shape.n_embd)),
            (f"blk.{i}.attn_k.weight", (kv, shape.n_embd)),
            (f"blk.{i}.attn_v.weight", (kv, shape.n_embd)),
            (f"blk.{i}.attn_output.weight", (shape.n_embd, shape.n_embd)),
            (f"blk.{i}.ffn_norm.weight", (shape.n_embd,)),
            (f"blk.{i}.ffn_gate.weight", (shape.n_ff, shape.n_embd)),
            (f"blk.{i}.ffn_up.weight", (shape.n_ff, shape.n_embd)),
            (f"blk.{i}.ffn_down.weight", (shape.n_embd, shape.n_ff)),
        ]
    names.append(("output_norm.weight", (shape.n_embd,)))
    return names


def write_model(path: Path, size: str, seed: int = 0) -> dict[str, object]:
    shape = SHAPES[size]
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(f"llmbox gpu-check random Llama ({size})")
    writer.add_context_length(shape.n_ctx_train)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layer)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head_kv)
    writer.add_rope_dimension_count(shape.n_embd // shape.n_head)
    writer.add_rope_freq_base(shape.rope_theta)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(shape.n_vocab)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    tokens, scores, types = vocabulary(shape.n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_chat_template(CHAT_TEMPLATE)

    layout = tensor_shapes(shape)
    for name, dims in layout:
        dtype = np.float32 if len(dims) == 1 else np.float16
        writer.add_tensor_info(
            name, dims, np.dtype(dtype), int(np.prod(dims)) * np.dtype(dtype).itemsize
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    # Values like a trained model's (normal, std 0.02), drawn once and reused at a moving
    # offset: drawing 1-3 billion values would take longer than the rest of the check.
    pool = np.random.default_rng(seed).standard_normal(_POOL_VALUES, dtype=np.float32) * 0.02
    pool16 = pool.astype(np.float16)
    for index, (_, dims) in enumerate(layout):
        if len(dims) == 1:
            writer.write_tensor_data(np.ones(dims, dtype=np.float32))
        else:
            offset = (index * 7919) % (_POOL_VALUES // 2)
            writer.write_tensor_data(np.resize(pool16[offset:], dims))
    writer.close()
    return {
        "size": size,
        "parameters": shape.parameters(),
        "file_bytes": path.stat().st_size,
        "shape": asdict(shape),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="GGUF file to write (F16)")
    parser.add_argument("--size", default="1b", help=f"one of {', '.join(SHAPES)} (default 1b)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.size not in SHAPES:
        sys.exit(f"--size {args.size!r} is not a known shape; choose one of {', '.join(SHAPES)}")
    if not args.out.parent.is_dir():
        sys.exit(f"{args.out.parent} is not a directory")
    started = time.monotonic()
    info = write_model(args.out, args.size, args.seed)
    info["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
