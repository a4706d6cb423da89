#!/usr/bin/env bash
# A CPU llama-quantize built from the GPU check's trimmed llama.cpp source, which proves
# the trimmed tree still builds; tests/test_gpu_check.py quantises its random-weight model
# with it (the role's builds have only llama-server and llama-bench). Skips a built one.
#
# Output: $LLMBOX_CACHE/gpu_check/cpu-bin/llama-quantize
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${LLMBOX_CACHE:=$PWD/.cache}"
export LLMBOX_CACHE
bash scripts/setup.d/05-llama-cpp-source.sh >/dev/null
bash scripts/gpu-check.sh cpu-tools "$LLMBOX_CACHE/gpu_check/cpu-bin"
