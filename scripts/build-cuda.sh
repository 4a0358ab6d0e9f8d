#!/usr/bin/env bash
# Builds ganime with `--features cuda` on a machine WITHOUT a CUDA toolkit or GPU, from NVIDIA's PyPI wheels.
#
#   bash scripts/build-cuda.sh            # -> $CARGO_TARGET_DIR/release/ganime (default /work/cuda-target)
#
# With a system CUDA toolkit none of this is needed:
#   CUDA_COMPUTE_CAP=90 cargo build --release -p ganime --features cuda
#
# What it does, and why:
# - nvcc, cicc (nvvm), headers (runtime, crt, cccl) and the CUDA 13.0 libraries come from the wheels
#   nvidia-cuda-nvcc, nvidia-nvvm, nvidia-cuda-runtime, nvidia-cuda-crt, nvidia-cuda-cccl, nvidia-cublas,
#   nvidia-curand, nvidia-cuda-nvrtc (all unpack into nvidia/cu13/{bin,include,lib,nvvm}).
#   The version is pinned to CUDA 13.0: PTX from a newer nvcc is rejected by a 13.0 driver (R580).
# - candle links the CUDA libraries dynamically (cudarc `dynamic-linking`), so the linker wants libcuda.so,
#   the driver, which no wheel ships: we compile a stub with every cu* symbol cudarc declares and soname
#   libcuda.so.1; at run time the real driver's libcuda.so.1 is loaded instead.
# - The linker wants unversioned names (libcublas.so), the wheels have only libcublas.so.13: symlinks.
# - cudarc reads the CUDA version from `nvcc --version` and its link paths from CUDA_ROOT/CUDA_PATH/CUDA_HOME;
#   cudaforge (candle-kernels) finds nvcc through CUDA_HOME and the GPU architecture from CUDA_COMPUTE_CAP.
#
# Environment: CUDA_SDK_DIR (default /work/cuda-sdk), CUDA_COMPUTE_CAP (default 90 = H100/H200),
# CARGO_TARGET_DIR (default /work/cuda-target), CUDA_WHEEL_VERSION (default 13.0.88).
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/.." && pwd)
sdk=${CUDA_SDK_DIR:-/work/cuda-sdk}
cuda_ver=${CUDA_WHEEL_VERSION:-13.0.88}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/cuda-target}

wheels=(
  "nvidia-cuda-nvcc==$cuda_ver" "nvidia-nvvm==$cuda_ver" "nvidia-cuda-crt==$cuda_ver"
  "nvidia-cuda-nvrtc==$cuda_ver" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*"
  "nvidia-cublas==13.0.*" "nvidia-curand==10.4.0.*"
)

mkdir -p "$sdk/wheels" "$sdk/unpacked"
if [ "$(ls "$sdk"/wheels/*.whl 2>/dev/null | wc -l)" -lt ${#wheels[@]} ]; then
  echo "== downloading CUDA $cuda_ver wheels into $sdk/wheels"
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 \
    -d "$sdk/wheels" "${wheels[@]}"
fi

cuda_root="$sdk/unpacked/nvidia/cu13"
if [ ! -x "$cuda_root/bin/nvcc" ] || [ ! -x "$cuda_root/nvvm/bin/cicc" ]; then
  echo "== unpacking wheels"
  for w in "$sdk"/wheels/*.whl; do
    python3 -m zipfile -e "$w" "$sdk/unpacked"
  done
  chmod +x "$cuda_root"/bin/* "$cuda_root"/nvvm/bin/* 2>/dev/null || true
fi

# Unversioned names for the linker.
for lib in cublas cublasLt curand nvrtc cudart; do
  so=$(ls "$cuda_root"/lib/lib$lib.so.* 2>/dev/null | grep -E "lib$lib\.so\.[0-9]+$" | head -1)
  [ -n "$so" ] || { echo "missing lib$lib.so.N in $cuda_root/lib" >&2; exit 1; }
  ln -sf "$(basename "$so")" "$cuda_root/lib/lib$lib.so"
done

# The driver stub: every cu* entry point cudarc declares, as an empty function (never called: the real
# driver is loaded at run time under the same soname).
stub_dir="$cuda_root/lib/stubs"
if [ ! -f "$stub_dir/libcuda.so" ]; then
  echo "== building the libcuda.so link stub"
  mkdir -p "$stub_dir"
  cudarc_src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* | sort | tail -1)
  grep -ohE 'load::<_F>\("cu[A-Za-z0-9_]+"\)' "$cudarc_src/src/driver/sys/mod.rs" \
    | sed -E 's/.*"(cu[A-Za-z0-9_]+)".*/void \1(void) {}/' | sort -u > "$stub_dir/libcuda_stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub_dir/libcuda.so" "$stub_dir/libcuda_stub.c"
fi

# candle-kernels also compiles a static library of quantized-model kernels (gguf matmul, MoE) into object files;
# ganime never calls them, and compiling them with full device optimisation and ptxas takes 5-6 minutes per file
# (15 files) on a loaded 2-core machine. A wrapper in front of nvcc compiles object files (`-c`) with
# `-Xcicc -O0` and PTX-only code (`code=compute_XX`, JIT-compiled by the driver if ever used): seconds each.
# The `--ptx` compiles of the kernels ganime runs pass through unchanged.
if [ ! -x "$cuda_root/bin/nvcc.real" ]; then
  mv "$cuda_root/bin/nvcc" "$cuda_root/bin/nvcc.real"
  cat > "$cuda_root/bin/nvcc" <<'WRAP'
#!/usr/bin/env bash
args=()
object=0
for a in "$@"; do
  [ "$a" = "-c" ] && object=1
  args+=("$a")
done
if [ $object = 1 ]; then
  args=("${args[@]//code=sm_/code=compute_}")
  args+=(-Xcicc -O0)
fi
exec "$(dirname "$0")/nvcc.real" "${args[@]}"
WRAP
  chmod +x "$cuda_root/bin/nvcc"
fi

# ptxas -O0 as well, for any object compile the wrapper does not catch; it does not touch the PTX of the kernels
# ganime runs (--ptx stops before ptxas; the driver JIT-compiles that PTX with full optimisation). Changing this
# value makes candle-kernels rebuild. Override with NVCC_APPEND_FLAGS= (empty) for a plain build.
export NVCC_APPEND_FLAGS=${NVCC_APPEND_FLAGS--Xptxas -O0}
export PATH="$cuda_root/bin:$PATH"
export CUDA_ROOT="$cuda_root" CUDA_PATH="$cuda_root" CUDA_HOME="$cuda_root"
nvcc --version | tail -2

cd "$repo_root"
echo "== cargo build (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP, target dir $CARGO_TARGET_DIR)"
nice -n 10 cargo build --release -p ganime --features cuda "$@"
echo "built $CARGO_TARGET_DIR/release/ganime"
