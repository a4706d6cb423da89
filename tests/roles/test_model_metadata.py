"""The model metadata reader (roles/model_store/library/llmbox_model_metadata.py) and the
memory estimate the preflights use (roles/model_store/filter_plugins/llmbox_model_fit.py),
on the real SmolLM2 file and on small files written here. No test host needed."""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path
from types import ModuleType

import pytest

from llmbox.cost.fit import GIB, OVERHEAD_GIB, ModelShape, kv_cache_bytes

ROLE = Path(__file__).resolve().parents[2] / "roles" / "model_store"


def _load(relative: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROLE / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reader = _load("library/llmbox_model_metadata.py", "llmbox_model_metadata")
fit = _load("filter_plugins/llmbox_model_fit.py", "llmbox_model_fit")


def test_smollm2_metadata(smollm2_gguf: Path) -> None:
    model = reader.read_model(smollm2_gguf)
    assert model == {
        "format": "gguf",
        "architecture": "llama",
        "name": "Smollm2 135M 8k Lc100K Mix1 Ep2",
        "context_length": 8192,  # the "8k" of its name
        "layers": 30,
        "kv_heads": 3,
        "head_dim": 64,  # 576 embedding / 9 heads
        "params": 134_515_008,  # "135M"
        "size_bytes": 98_362_432,
    }


def test_memory_need_is_fit_py_estimate_plus_the_file(smollm2_gguf: Path) -> None:
    model = reader.read_model(smollm2_gguf)
    need = fit.memory_need(model, 4096)
    kv, _ = kv_cache_bytes(ModelShape("x", 0.135, layers=30, kv_heads=3, head_dim=64), 4096, 1)
    assert need["kv_cache_bytes"] == kv == 2 * 30 * 3 * 64 * 2 * 4096
    assert need["weights_bytes"] == 98_362_432
    assert need["overhead_bytes"] == int(OVERHEAD_GIB * GIB)
    assert need["total_bytes"] == need["weights_bytes"] + kv + need["overhead_bytes"]
    assert "estimated" in need["kv_cache_method"]


def test_not_a_gguf_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"not a model")
    with pytest.raises(reader.ModelMetadataError, match="is not a GGUF file"):
        reader.read_model(path)


def test_truncated_header_is_refused(smollm2_gguf: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.gguf"
    path.write_bytes(smollm2_gguf.read_bytes()[:5000])
    with pytest.raises(reader.ModelMetadataError, match="ends early"):
        reader.read_model(path)


def test_per_layer_kv_heads_take_the_largest(tmp_path: Path) -> None:
    """Some architectures store one head count per layer (an array)."""
    pairs = [
        (b"general.architecture", struct.pack("<IQ", 8, 7) + b"openelm"),
        (b"openelm.context_length", struct.pack("<II", 4, 2048)),
        (
            b"openelm.attention.head_count_kv",
            struct.pack("<IIQ", 9, 4, 3) + struct.pack("<3I", 3, 5, 4),
        ),
    ]
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, len(pairs))
    for key, value in pairs:
        data += struct.pack("<Q", len(key)) + key + value
    path = tmp_path / "layers.gguf"
    path.write_bytes(data)
    model = reader.read_model(path)
    assert model["kv_heads"] == 5 and model["context_length"] == 2048


def test_hugging_face_folder(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "max_position_embeddings": 8192,
        "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
        "hidden_size": 576,
    }))  # fmt: skip
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 1000)
    model = reader.read_model(tmp_path)
    assert (model["format"], model["context_length"], model["head_dim"]) == ("hf", 8192, 64)
    assert model["size_bytes"] == 1000
