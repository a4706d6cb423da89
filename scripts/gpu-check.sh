#!/usr/bin/env bash
# llmbox GPU check: proves the GPU serving path on a borrowed NVIDIA machine in about
# 15 minutes, build included, with no network there.
#
#   scripts/gpu-check.sh bundle OUT.tar [--python 3.11,3.12,3.13] [--arch x86_64]
#       On a networked machine, in the llmbox checkout: writes the offline bundle (tens of
#       MB): the llama.cpp source trimmed for the build, wheels, this script.
#   gpu-check/gpu-check.sh run [--out DIR] [--size 1b|3b] [--jobs N]
#       On the GPU machine (one NVIDIA GPU, nvcc, CMake, python3), in the unpacked bundle:
#       builds llama.cpp with CUDA for this GPU's compute capability with the llama_cpp
#       role's flags, makes a random-weight Llama model and quantises it (Q4_K_M), runs
#       llama-bench, llama-server (loopback, API key from the environment) and
#       `llmbox bench` with NVML telemetry; writes DIR/bench/*.json and DIR/summary.md.
#   gpu-check/gpu-check.sh measure --bin DIR [--out DIR] [--size tiny|1b|3b]
#       run's steps after the build, with the llama-server, llama-bench and llama-quantize
#       in --bin (the CPU self-test uses CPU builds of them).
#   gpu-check/gpu-check.sh model OUT.gguf [--size tiny|1b|3b]
#       only the random-weight model (F16).
#   scripts/gpu-check.sh cpu-tools DIR
#       builds a CPU llama-quantize from the trimmed source into DIR (self-test).
#
# Options of run/measure: --concurrency 1,4,8 --requests 32 --tokens 128 (prompt and
# output tokens per request). LLAMA_API_KEY is used if set, else a random key is made;
# either way it only travels in the environment, never on a command line.
# GPU_CHECK_PYTHON picks the Python 3.11+ to use (default: python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${GPU_CHECK_PYTHON:-python3}"

die() { echo "gpu-check: $*" >&2; exit 2; }
in_bundle() { [ -f "$here/MANIFEST.json" ]; }
need_bundle() {
    in_bundle || die "'$1' runs from an unpacked bundle: make one with" \
        "'scripts/gpu-check.sh bundle OUT.tar', copy it over, 'tar -xf OUT.tar'," \
        "then 'gpu-check/gpu-check.sh $1'"
}
now() { date +%s; }

# --- options ------------------------------------------------------------------------
out="$PWD/gpu-check-out"
size=1b
jobs="$(nproc)"
levels=1,4,8
requests=32
tokens=128
bin=""
parse_options() {
    while [ $# -gt 0 ]; do
        [ $# -ge 2 ] || die "option '$1' needs a value"
        case "$1" in
            --out) out="$(realpath -m "$2")"; shift 2 ;;
            --size) size="$2"; shift 2 ;;
            --jobs) jobs="$2"; shift 2 ;;
            --concurrency) levels="$2"; shift 2 ;;
            --requests) requests="$2"; shift 2 ;;
            --tokens) tokens="$2"; shift 2 ;;
            --bin) bin="$(realpath -m "$2")"; shift 2 ;;
            *) die "unknown option '$1' (valid: --out --size --jobs --concurrency --requests" \
                   "--tokens, and --bin for measure)" ;;
        esac
    done
    case "$size" in tiny|1b|3b) ;; *) die "--size '$size' is not one of tiny, 1b, 3b" ;; esac
    [[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs '$jobs' is not a positive whole number"
    [[ "$requests" =~ ^[1-9][0-9]*$ ]] || die "--requests '$requests' is not a positive whole number"
    [[ "$tokens" =~ ^[1-9][0-9]*$ ]] || die "--tokens '$tokens' is not a positive whole number"
    [[ "$levels" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] ||
        die "--concurrency '$levels' is not a comma-separated list of levels like 1,4,8"
    # Source, build, unpacked wheels and the model stay in the bundle's folder; --out gets
    # only what is worth keeping (logs, bench JSON, summary).
    work="$here/work"
}

# --- the bundle's own Python packages and llama.cpp source -------------------------------
record() {  # record KEY VALUE: one figure or fact for summary.md, kept in run-info.json
    "$py" - "$out/run-info.json" "$1" "$2" <<'EOF'
import json, sys
from pathlib import Path
path, key, value = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
data = json.loads(path.read_text()) if path.exists() else {}
try:
    data[key] = json.loads(value)
except ValueError:
    data[key] = value
path.write_text(json.dumps(data, indent=2) + "\n")
EOF
}

unpack_source() {
    src="$work/src/llama.cpp"
    if [ ! -f "$work/src/.complete" ]; then
        rm -rf "$work/src" && mkdir -p "$work/src"
        tar -xzf "$here/llama.cpp-src.tar.gz" -C "$work/src"
        touch "$work/src/.complete"
    fi
}

setup_python() {
    local version wheels site
    version="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    wheels="$here/wheels/py$version"
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "this machine's $py is Python $version; llmbox needs 3.11 or later: point" \
            "GPU_CHECK_PYTHON at a python3.11+ (the bundle has wheels for" \
            "$(cd "$here/wheels" && echo py*))"
    [ -d "$wheels" ] || die "this machine's $py is Python $version; the bundle has wheels for" \
        "$(cd "$here/wheels" && echo py*) only: make it again with" \
        "'scripts/gpu-check.sh bundle OUT.tar --python $version'"
    site="$work/site-py$version"
    if [ ! -f "$site/.complete" ]; then
        # Unpacked, not pip-installed: the machine may have no pip or venv module, and a
        # wheel is a zip that Python imports from as it is (its .dist-info included).
        rm -rf "$site" && mkdir -p "$site"
        "$py" - "$wheels" "$site" <<'EOF'
import sys, zipfile
from pathlib import Path
for wheel in sorted(Path(sys.argv[1]).glob("*.whl")):
    zipfile.ZipFile(wheel).extractall(sys.argv[2])
EOF
        touch "$site/.complete"
    fi
    export PYTHONPATH="$site:$src/gguf-py" PYTHONNOUSERSITE=1
}

# --- run: what the GPU machine must have, checked before anything is written ----------
find_nvcc() {
    # The real nvcc of a whole toolkit (a wrapper script elsewhere on PATH does not tell
    # where the toolkit is): $CUDA_HOME, then /usr/local/cuda, then PATH, symlinks resolved.
    local candidate resolved
    for candidate in "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" /usr/local/cuda/bin/nvcc \
        "$(command -v nvcc || true)"; do
        [ -n "$candidate" ] && [ -x "$candidate" ] || continue
        resolved="$(realpath "$candidate")"
        if [ -f "$(dirname "$(dirname "$resolved")")/include/cuda_runtime.h" ]; then
            echo "$resolved"
            return
        fi
    done
}

preflight() {
    local problems=()
    gpu_line=""
    if ! command -v nvidia-smi >/dev/null; then
        problems+=("no NVIDIA GPU: nvidia-smi is not on PATH")
    else
        gpu_line="$(nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total \
            --format=csv,noheader 2>/dev/null | head -n 1 || true)"
        [ -n "$gpu_line" ] || problems+=("no NVIDIA GPU: nvidia-smi lists none")
    fi
    nvcc="$(find_nvcc)"
    [ -n "$nvcc" ] || problems+=("no CUDA toolkit: no nvcc with the toolkit's include/cuda_runtime.h beside it in \$CUDA_HOME, /usr/local/cuda or on PATH")
    if [ -n "$nvcc" ]; then
        # ggml's CUDA backend links cuBLAS, which a toolkit made of a few pip wheels (nvcc
        # and the runtime only) lacks: CMake would stop at generation with CUDA::cublas.
        local toolkit
        toolkit="$(dirname "$(dirname "$nvcc")")"
        compgen -G "$toolkit/include/cublas_v2.h" >/dev/null ||
            compgen -G "$toolkit/targets/*/include/cublas_v2.h" >/dev/null ||
            problems+=("the CUDA toolkit at $toolkit has no cuBLAS (include/cublas_v2.h), which llama.cpp's CUDA backend links")
    fi
    command -v cmake >/dev/null || problems+=("no cmake on PATH")
    command -v c++ >/dev/null || problems+=("no C++ compiler (c++) on PATH")
    in_bundle || problems+=("not an unpacked bundle (make one with 'scripts/gpu-check.sh bundle OUT.tar')")
    if [ ${#problems[@]} -gt 0 ]; then
        local joined
        joined="$(printf '; %s' "${problems[@]}")"
        die "run needs an NVIDIA GPU machine with CUDA's compiler and CMake; here: ${joined:2}." \
            "Nothing was changed."
    fi
}

build_cuda() {
    local cuda_home compute_cap arch started args=()
    cuda_home="$(dirname "$(dirname "$nvcc")")"
    compute_cap="$(echo "$gpu_line" | cut -d, -f2 | tr -d ' ')"
    arch="${compute_cap/./}"
    [[ "$arch" =~ ^[0-9]+$ ]] || die "nvidia-smi reports compute capability '$compute_cap'; expected e.g. 8.9"
    # The role's cmake arguments as bundle.py took them (build-flags.json says from where),
    # placeholders filled as the role's build task fills them.
    mapfile -t args < <("$py" - "$here/build-flags.json" "$cuda_home" "$arch" <<'EOF'
import json, platform, sys
flags = json.load(open(sys.argv[1]))
x86 = flags.get("x86_64", []) if platform.machine() == "x86_64" else []
for arg in flags["common"] + x86 + flags["cuda"]:
    print(arg.replace("{cuda_home}", sys.argv[2]).replace("{cuda_architectures}", sys.argv[3]))
EOF
    )
    record gpu "$gpu_line"
    record compute_cap "\"$compute_cap\""
    record cuda_home "$cuda_home"
    record nvcc "$("$nvcc" --version | tail -n 2 | head -n 1)"
    record cmake "$(cmake --version | head -n 1)"
    record cmake_cuda_args "$(printf '%s ' "${args[@]}" | grep -o -- '-DGGML_CUDA.*' || true)"
    echo "building llama.cpp with CUDA for compute capability $compute_cap ($jobs jobs; log: $out/build.log)"
    started=$(now)
    if ! { cmake -S "$src" -B "$work/build" "${args[@]}" &&
           cmake --build "$work/build" --target llama-server llama-bench llama-quantize \
               -j "$jobs"; } >"$out/build.log" 2>&1; then
        tail -n 60 "$out/build.log" >&2
        echo "gpu-check: the llama.cpp CUDA build failed; the whole log is $out/build.log" >&2
        exit 1
    fi
    record build_s "$(( $(now) - started ))"
    # The rpath at work: the CUDA libraries the server loads, and from where.
    record cuda_libraries "$(ldd "$work/build/bin/llama-server" | grep -E 'libcud|libcublas' |
        awk '{print $1 " => " $3}' | paste -sd ';' - || true)"
    bin="$work/build/bin"
}

# --- measure: model, llama-bench, llama-server, llmbox bench, summary -------------------
server_pid=""
stop_server() { [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true; }

start_server() {
    local model="$1" slots port_and_ctx
    slots="$(echo "$levels" | tr ',' '\n' | sort -n | tail -n 1)"
    port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    # Each slot holds one request: prompt + output + the chat template's tokens.
    port_and_ctx=$(( slots * (2 * tokens + 256) ))
    trap stop_server EXIT
    "$bin/llama-server" -m "$model" --host 127.0.0.1 --port "$port" -ngl 999 \
        -c "$port_and_ctx" -np "$slots" --alias gpu-check --no-webui \
        >"$out/llama-server.log" 2>&1 &
    server_pid=$!
    "$py" - "$port" "$server_pid" <<'EOF' || { tail -n 40 "$out/llama-server.log" >&2; exit 1; }
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("gpu-check: llama-server exited before it was ready; its log follows")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
            if answer.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.5)
sys.exit("gpu-check: llama-server was not ready within 300 s; its log follows")
EOF
}

measure() {
    local started f16 model
    for tool in llama-server llama-bench llama-quantize; do
        [ -x "$bin/$tool" ] || die "$bin/$tool is missing or not executable"
    done
    record llama_cpp_source "$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["llama_cpp_archive"])' "$here/MANIFEST.json")"
    started=$(now)
    f16="$work/model-$size-f16.gguf"
    model="$work/model-$size-q4_k_m.gguf"
    echo "making a random-weight Llama model ($size) and quantising it to Q4_K_M"
    "$py" "$here/gpu_check/make_model.py" "$f16" --size "$size" >"$out/model.json"
    record model_size "\"$size\""
    record parameters "$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["parameters"])' "$out/model.json")"
    record model_s "$(( $(now) - started ))"
    started=$(now)
    "$bin/llama-quantize" "$f16" "$model" Q4_K_M "$jobs" >"$out/quantize.log" 2>&1 ||
        { tail -n 40 "$out/quantize.log" >&2; die "llama-quantize failed (log: $out/quantize.log)"; }
    rm -f "$f16"
    record quantize_s "$(( $(now) - started ))"

    if [ -z "${LLAMA_API_KEY:-}" ]; then
        LLAMA_API_KEY="$("$py" -c 'import secrets; print(secrets.token_urlsafe(24))')"
    fi
    export LLAMA_API_KEY  # llama-server reads it from here (--api-key would show in ps)
    # llama-bench's usual pp512/tg128 on its own, comparable with published tables; its
    # JSON also says which backend and GPU it ran on (all layers offloaded by default).
    echo "llama-bench pp512/tg128 (log: $out/llama-bench.log)"
    started=$(now)
    "$bin/llama-bench" -m "$model" -p 512 -n 128 -r 3 -o json >"$out/llama-bench.json" \
        2>"$out/llama-bench.log" ||
        { tail -n 40 "$out/llama-bench.log" >&2; die "llama-bench failed (log: $out/llama-bench.log)"; }
    record llama_bench_s "$(( $(now) - started ))"
    echo "starting llama-server on 127.0.0.1 (log: $out/llama-server.log)"
    start_server "$model"
    echo "llmbox bench at concurrency $levels, $requests requests each, llama-bench first"
    rm -rf "$out/bench"
    started=$(now)
    "$py" -m llmbox bench "http://127.0.0.1:$port" --model gpu-check \
        --api-key-env LLAMA_API_KEY --concurrency "$levels" --requests "$requests" \
        --prompt-tokens "$tokens" --output-tokens "$tokens" --out "$out/bench" \
        --model-file "$model" --engine-ceiling --llama-bench "$bin/llama-bench" \
        --host-label gpu-check
    record bench_s "$(( $(now) - started ))"
    stop_server
    server_pid=""
    record total_s "$(( $(now) - run_started ))"
    "$py" "$here/gpu_check/summary.py" --bench-dir "$out/bench" --model-file "$model" \
        --run-info "$out/run-info.json" --llama-bench-json "$out/llama-bench.json" --out "$out"
    echo "written: $out/summary.md, $out/summary.json, $out/bench/*.json"
}

# --- repo-side helpers ------------------------------------------------------------------
repo_python() {
    local repo
    repo="$(cd "$here/.." && pwd)"
    echo "${LLMBOX_PYTHON:-$repo/.venv/bin/python}"
}

cpu_tools() {
    local dest="${1:?usage: gpu-check.sh cpu-tools DIR}" tmp archive args=()
    tmp="$(mktemp -d)"
    "$(repo_python)" "$here/gpu_check/bundle.py" --source-only "$tmp/src.tar.gz" >"$tmp/flags.json"
    archive="$("$(repo_python)" -c 'import json, sys; print(json.load(open(sys.argv[1]))["archive"])' "$tmp/flags.json")"
    # Built once per source archive: SOURCE names the archive the binary came from.
    if [ -x "$dest/llama-quantize" ] && [ "$(cat "$dest/SOURCE" 2>/dev/null)" = "$archive" ]; then
        rm -rf "$tmp"
        echo "llama-quantize (CPU, $archive): $dest/llama-quantize"
        return
    fi
    tar -xzf "$tmp/src.tar.gz" -C "$tmp"
    mapfile -t args < <("$(repo_python)" -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["common"]))' "$tmp/flags.json")
    echo "building a CPU llama-quantize from the trimmed source (a few minutes; log: $tmp/build.log)"
    if ! { cmake -S "$tmp/llama.cpp" -B "$tmp/build" "${args[@]}" &&
           cmake --build "$tmp/build" --target llama-quantize -j "$(nproc)"; } >"$tmp/build.log" 2>&1; then
        tail -n 60 "$tmp/build.log" >&2
        echo "gpu-check: the CPU build failed; the whole log is $tmp/build.log" >&2
        exit 1
    fi
    mkdir -p "$dest"
    cp "$tmp/build/bin/llama-quantize" "$dest/"
    echo "$archive" >"$dest/SOURCE"
    rm -rf "$tmp"
    echo "llama-quantize (CPU, $archive): $dest/llama-quantize"
}

command="${1:-}"
[ $# -eq 0 ] || shift
case "$command" in
    bundle)
        in_bundle && die "'bundle' runs in the llmbox checkout (scripts/gpu-check.sh), not in a bundle"
        exec "$(repo_python)" "$here/gpu_check/bundle.py" "$@" ;;
    cpu-tools)
        cpu_tools "$@" ;;
    model)
        need_bundle model
        [ $# -ge 1 ] || die "usage: gpu-check.sh model OUT.gguf [--size tiny|1b|3b]"
        target="$(realpath -m "$1")"; shift
        parse_options "$@"
        unpack_source
        setup_python
        "$py" "$here/gpu_check/make_model.py" "$target" --size "$size" ;;
    run)
        parse_options "$@"
        preflight
        mkdir -p "$out" "$work"
        rm -f "$out/run-info.json"
        run_started=$(now)
        unpack_source
        setup_python
        build_cuda
        measure ;;
    measure)
        need_bundle measure
        parse_options "$@"
        [ -n "$bin" ] || die "measure needs --bin DIR with llama-server, llama-bench, llama-quantize"
        mkdir -p "$out" "$work"
        rm -f "$out/run-info.json"
        run_started=$(now)
        unpack_source
        setup_python
        measure ;;
    ""|-h|--help|help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
    *)
        die "unknown command '$command' (valid: bundle, run, measure, model, cpu-tools; --help)" ;;
esac
