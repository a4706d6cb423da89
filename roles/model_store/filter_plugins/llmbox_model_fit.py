"""Memory a served model needs, for the serving roles' preflights (tasks/model_limits.yml).

The estimate is llmbox's own (llmbox/cost/fit.py: the KV cache from the model's shape,
plus a fixed overhead), so `llmbox fit` and the preflights agree; the weights are the
model's size on disk (exact for GGUF and safetensors, where fit.py must estimate them
from parameters and quantization).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

try:
    from llmbox.cost.fit import GIB, OVERHEAD_GIB, ModelShape, kv_cache_bytes
except ImportError:  # ansible-playbook from a checkout whose Python lacks `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from llmbox.cost.fit import GIB, OVERHEAD_GIB, ModelShape, kv_cache_bytes


def memory_need(model: dict[str, Any], context_tokens: int, sequences: int = 1) -> dict[str, Any]:
    """Bytes needed to serve ``model`` (llmbox_model_metadata's result) with a KV cache of
    ``sequences`` x ``context_tokens`` tokens: weights + KV cache + overhead, and how the
    KV cache was estimated."""
    shape = ModelShape(
        name=str(model.get("name", "")),
        params_b=int(model.get("params") or 0) / 1e9,
        layers=int(model.get("layers") or 0) or None,
        kv_heads=int(model.get("kv_heads") or 0) or None,
        head_dim=int(model.get("head_dim") or 0) or None,
    )
    kv_bytes, method = kv_cache_bytes(shape, int(context_tokens), int(sequences))
    weights = int(model.get("size_bytes") or 0)
    overhead = OVERHEAD_GIB * GIB
    return {
        "weights_bytes": weights,
        "kv_cache_bytes": int(kv_bytes),
        "overhead_bytes": int(overhead),
        "total_bytes": int(weights + kv_bytes + overhead),
        "kv_cache_method": f"{method}, F16 (estimated, llmbox/cost/fit.py)",
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"llmbox_memory_need": memory_need}
