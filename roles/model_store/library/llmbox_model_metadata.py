#!/usr/bin/python
"""Ansible module: what a model file says about itself, read where the file is.

A GGUF file (llama.cpp's format) carries its trained context length and its shape in
the metadata at its start; a Hugging Face model folder (what vLLM serves) carries them in
config.json. Only the header is read (a few MB, even for a 40 GB model): no tensor data,
no sha256. Standard library only, so it runs on any host Ansible can manage. The
serving roles' preflights use it (through model_store's tasks/model_limits.yml) to
refuse a context longer than the model was trained for or larger than the memory.

GGUF layout (ggml-org/ggml docs/gguf.md): magic "GGUF", uint32 version (2 or 3: 64-bit
counts; 1: 32-bit), tensor count, key/value count, the key/value pairs, then one info
record per tensor (name, dimensions, type, offset). Little-endian unless the version
reads byte-swapped.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any, BinaryIO

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: llmbox_model_metadata
short_description: Read a model's trained context length and shape (GGUF or Hugging Face folder)
description:
  - Reads the metadata at the start of a GGUF file, or config.json of a Hugging Face
    model folder, without loading the weights. Never changes anything.
options:
  path:
    description: Model file (GGUF) or Hugging Face model folder.
    type: path
    required: true
author: llmbox
"""

RETURN = r"""
model:
  description: >-
    format (gguf | hf), architecture, name, context_length (trained, tokens), layers,
    kv_heads, head_dim, params (count; 0 when unknown), size_bytes (weights on disk);
    a shape field is 0 when the file does not say.
  type: dict
  returned: success
"""

# GGUF value types: id -> struct format of one scalar (8 = string, 9 = array).
_SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_STRING, _ARRAY = 8, 9


class ModelMetadataError(ValueError):
    """The path is not a model this reader understands; the message says why."""


class _Reader:
    def __init__(self, stream: BinaryIO, order: str, wide: bool) -> None:
        self.stream, self.order, self.wide = stream, order, wide

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        data = self.stream.read(size)
        if len(data) != size:
            raise ModelMetadataError("the GGUF header ends early (truncated file?)")
        return struct.unpack(self.order + fmt, data)[0]

    def count(self) -> int:
        return int(self.unpack("Q" if self.wide else "I"))

    def string(self) -> str:
        length = self.count()
        if length > 1 << 24:
            raise ModelMetadataError(f"a GGUF string of {length} bytes: not a GGUF header")
        return self.stream.read(length).decode("utf-8", errors="replace")

    def value(self, kind: int) -> Any:
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item_kind, length = self.unpack("I"), self.count()
            if item_kind in _SCALARS and item_kind != 7:
                # Numbers are kept (per-layer head counts); long ones skipped unread.
                size = struct.calcsize(_SCALARS[item_kind])
                if length <= 4096:
                    data = self.stream.read(size * length)
                    return list(struct.unpack(f"{self.order}{length}{_SCALARS[item_kind]}", data))
                self.stream.seek(size * length, os.SEEK_CUR)
                return None
            for _ in range(length):  # strings (the tokenizer's vocabulary): read past them
                self.value(item_kind)
            return None
        raise ModelMetadataError(f"unknown GGUF value type {kind}")


def read_gguf(path: Path) -> dict[str, Any]:
    """The metadata of a GGUF file, as this module returns it."""
    with path.open("rb") as raw:
        stream: BinaryIO = raw  # buffered: the vocabulary is many small reads
        if stream.read(4) != b"GGUF":
            raise ModelMetadataError(f"{path} is not a GGUF file (it does not start with 'GGUF')")
        version_bytes = stream.read(4)
        order = "<" if struct.unpack("<I", version_bytes)[0] < 1 << 16 else ">"
        version = struct.unpack(order + "I", version_bytes)[0]
        if version not in (1, 2, 3):
            raise ModelMetadataError(f"{path}: GGUF version {version}, this reader knows 1-3")
        reader = _Reader(stream, order, wide=version >= 2)
        tensors, pairs = reader.count(), reader.count()
        meta: dict[str, Any] = {}
        for _ in range(pairs):
            key = reader.string()
            meta[key] = reader.value(reader.unpack("I"))
        params = 0
        for _ in range(tensors):
            reader.string()
            dims = [reader.count() for _ in range(reader.unpack("I"))]
            reader.unpack("I")  # type
            reader.unpack("Q")  # offset
            params += math.prod(dims)
    arch = str(meta.get("general.architecture", ""))

    def number(key: str) -> int:
        value = meta.get(f"{arch}.{key}")
        if isinstance(value, list):  # per-layer values: the largest decides the memory
            value = max(value, default=0)
        return int(value or 0)

    heads = number("attention.head_count")
    head_dim = number("attention.key_length") or (
        number("embedding_length") // heads if heads else 0
    )
    return {
        "format": "gguf",
        "architecture": arch,
        "name": str(meta.get("general.name", path.name)),
        "context_length": number("context_length"),
        "layers": number("block_count"),
        "kv_heads": number("attention.head_count_kv") or heads,
        "head_dim": head_dim,
        "params": params,
        "size_bytes": path.stat().st_size,
    }


def read_hf_folder(path: Path) -> dict[str, Any]:
    """The same fields from a Hugging Face model folder's config.json."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelMetadataError(f"{path} is a folder without config.json: not a model folder")
    config = json.loads(config_file.read_text())
    text = config.get("text_config") or config  # multimodal models nest the language model
    heads = int(text.get("num_attention_heads") or 0)
    head_dim = int(
        text.get("head_dim") or (int(text.get("hidden_size") or 0) // heads if heads else 0)
    )
    weights = [f for f in path.iterdir() if f.suffix in (".safetensors", ".bin", ".pt")]
    return {
        "format": "hf",
        "architecture": str((config.get("architectures") or [""])[0]),
        "name": path.name,
        "context_length": int(text.get("max_position_embeddings") or 0),
        "layers": int(text.get("num_hidden_layers") or 0),
        "kv_heads": int(text.get("num_key_value_heads") or heads),
        "head_dim": head_dim,
        "params": 0,
        "size_bytes": sum(f.stat().st_size for f in weights),
    }


def read_model(path: str | Path) -> dict[str, Any]:
    """Metadata of a GGUF file or a Hugging Face folder; ModelMetadataError otherwise."""
    model = Path(path)
    if model.is_dir():
        return read_hf_folder(model)
    if not model.is_file():
        raise ModelMetadataError(f"{model} does not exist")
    return read_gguf(model)


def main() -> None:  # pragma: no cover - run by Ansible
    module = AnsibleModule(
        argument_spec={"path": {"type": "path", "required": True}}, supports_check_mode=True
    )
    try:
        module.exit_json(changed=False, model=read_model(module.params["path"]))
    except (OSError, ModelMetadataError, json.JSONDecodeError, UnicodeDecodeError) as error:
        module.fail_json(msg=str(error))


if __name__ == "__main__":
    main()
