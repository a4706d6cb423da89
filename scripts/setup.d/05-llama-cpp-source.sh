#!/usr/bin/env bash
# The llama.cpp source the test hosts and `llmbox demo` build from: the llama.cpp tree
# vendored in the llama-cpp-python sdist on PyPI (the only offline source of llama.cpp
# here), pinned by sha256 and kept in the cache. The llama_cpp role ships it to hosts
# that have no internet (llama_cpp_source_local_path). Skips a verified archive.
#
# Output: $LLMBOX_CACHE/src/llama_cpp_python-$VERSION.tar.gz
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${LLMBOX_CACHE:=$PWD/.cache}"
python="${LLMBOX_PYTHON:-.venv/bin/python}"

# The same pin as roles/llama_cpp/defaults/main.yml (llama_cpp_version, _source_sha256).
LLAMA_CPP_PYTHON_VERSION=0.3.36
LLAMA_CPP_PYTHON_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e

archive="$LLMBOX_CACHE/src/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz"
if ! echo "$LLAMA_CPP_PYTHON_SHA256  $archive" | sha256sum --check --status 2>/dev/null; then
    tmp=$(mktemp -d)
    "$python" -m pip download --quiet --no-deps --no-binary :all: \
        "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$tmp"
    echo "$LLAMA_CPP_PYTHON_SHA256  $tmp/${archive##*/}" | sha256sum --check --quiet
    mkdir -p "${archive%/*}"
    mv "$tmp/${archive##*/}" "$archive"
    rm -rf "$tmp"
fi
echo "llama.cpp source: $archive"
