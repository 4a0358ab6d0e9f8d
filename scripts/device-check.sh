#!/usr/bin/env bash
# The GPU run, once, on a machine with an NVIDIA GPU, its driver and PyTorch but no Rust and no ../shared:
# from the repo root, with .devcarry/ carried (filled here by scripts/prepare-device.sh):
#
#   bash scripts/device-check.sh            # results in $OUT (default ./device-out)
#
# Steps (each with its own timeout; a failing step is recorded and the next one runs; the whole run stays
# under ~4 minutes, later steps are skipped past $BUDGET_S):
#  1. nvidia-smi; LD_LIBRARY_PATH from wherever the CUDA libraries ganime links are (found with `find`, e.g.
#     PyTorch's nvidia/cu13/lib wheels); ldd of the binary.
#  2. `ganime bench` of dcgan64-train, dcgan64-generate, style-320x240, style-640x480, animegan-256 and
#     cyclegan128-train with --device cuda, then the inference ones in f16 and bf16.
#  3. bench/pytorch_gpu_reference.py: the same workloads in PyTorch on the same GPU (f32, then f16/bf16).
#  4. f16/bf16 parity against f32: `ganime stylize --check-f32` for a style net, the 26-style net, AnimeGANv2.
#  5. A smoke run of `ganime generate --device cuda`.
# Every JSON line goes to $OUT/gpu-bench.jsonl (failures as {"step": ..., "error": ...}); the log to
# $OUT/device-check.log.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/device-out}
CARRY=${DEVCARRY:-.devcarry}
SECS=${BENCH_SECONDS:-3}
DEVICE=${GANIME_DEVICE:-cuda}   # cpu: a dry run of this script on a machine without a GPU
BUDGET_S=${BUDGET_S:-215}
mkdir -p "$OUT"
JSONL="$OUT/gpu-bench.jsonl"
LOG="$OUT/device-check.log"
: > "$JSONL"
exec > >(tee -a "$LOG") 2>&1
GANIME="$CARRY/ganime"
PY=/opt/torch/.venv/bin/python3
[ -x "$PY" ] || PY=python3
failures=()
start=$(date +%s)

json_str() { "$PY" -c 'import json,sys; print(json.dumps(sys.stdin.read()[-1500:]))' 2>/dev/null || echo '""'; }

# step NAME TIMEOUT_S COMMAND... : runs it, copies its JSON stdout lines to $JSONL, records a failure.
step() {
  local name=$1 limit=$2; shift 2
  local elapsed=$(( $(date +%s) - start ))
  if [ "$elapsed" -ge "$BUDGET_S" ]; then
    echo "== $name: SKIPPED (${elapsed} s used of the ${BUDGET_S} s budget)"
    echo "{\"step\": \"$name\", \"error\": \"skipped: time budget\"}" >> "$JSONL"
    failures+=("$name (skipped)")
    return
  fi
  echo "== $name"
  local t0=$(date +%s) rc=0
  timeout "$limit" "$@" > "$OUT/step.out" 2> "$OUT/step.err" || rc=$?
  cat "$OUT/step.out"; tail -n 15 "$OUT/step.err"
  grep '^{' "$OUT/step.out" >> "$JSONL" || true
  if [ "$rc" -ne 0 ]; then
    echo "   FAILED: exit $rc after $(( $(date +%s) - t0 )) s"
    echo "{\"step\": \"$name\", \"error\": \"exit $rc\", \"stderr_tail\": $(cat "$OUT/step.err" | json_str)}" >> "$JSONL"
    failures+=("$name")
  else
    echo "   ok ($(( $(date +%s) - t0 )) s)"
  fi
}

echo "== device check, $(date -u), repo $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
nvidia-smi || echo "nvidia-smi failed"

if [ ! -x "$GANIME" ]; then
  echo "no $GANIME: run scripts/prepare-device.sh before carrying .devcarry" >&2
fi
# LD_LIBRARY_PATH: the directories of the exact CUDA sonames the binary links, found on this machine.
source scripts/device-env.sh "$GANIME"
ldd "$GANIME" | grep -E 'cuda|cublas|curand|nvrtc|not found' || true
echo "{\"step\": \"environment\", \"ld_library_path\": \"$LD_LIBRARY_PATH\", \"gpu\": \"$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)\"}" >> "$JSONL"

# 2. ganime on the GPU.
for w in dcgan64-generate dcgan64-train style-320x240 style-640x480 animegan-256 cyclegan128-train; do
  step "ganime $w $DEVICE f32" 40 "$GANIME" bench "$w" --device "$DEVICE" --seconds "$SECS" --min-runs 2
done
for dt in f16 bf16; do
  for w in style-320x240 style-640x480 animegan-256; do
    step "ganime $w $DEVICE $dt" 30 "$GANIME" bench "$w" --device "$DEVICE" --dtype "$dt" --seconds "$SECS" --min-runs 2
  done
done

# 3. PyTorch on the same GPU (one process per dtype: the import and CUDA start-up are paid once).
REF="$CARRY/bench/pytorch_reference.py"
step "pytorch $DEVICE f32" 100 "$PY" bench/pytorch_gpu_reference.py --reference "$REF" --device "$DEVICE" --seconds "$SECS" --min-runs 2 \
  dcgan64-generate dcgan64-train style-320x240 style-640x480 animegan-256 cyclegan128-train
step "pytorch $DEVICE f16+bf16" 60 "$PY" bench/pytorch_gpu_reference.py --reference "$REF" --device "$DEVICE" --seconds "$SECS" --min-runs 2 \
  --dtype f16,bf16 style-320x240 style-640x480 animegan-256

# 4. Half precision against f32 on the GPU (the bound the CPU test uses: f16 < 0.01, bf16 < 0.08).
IMG="$CARRY/images/tubingen.jpg"
# The device tool returns at most 8 files: the f16 images come back, the bf16 ones stay in /tmp.
for dt in f16 bf16; do
  pngdir=$OUT; [ "$dt" = f16 ] || pngdir=/tmp
  for spec in "style:$CARRY/weights/fast-neural-style-net.pth" \
              "multistyle:$CARRY/weights/multistyle26.safetensors#3" \
              "animegan:$CARRY/weights/animeganv2-net.pt"; do
    kind=${spec%%:*}
    step "parity $kind $dt" 40 "$GANIME" stylize --filter "$spec" --in "$IMG" --out "$pngdir/$kind-$dt.png" \
      --device "$DEVICE" --dtype "$dt" --check-f32
  done
done

# 5. Smoke: the built-in generator on the GPU.
step "generate $DEVICE" 30 "$GANIME" generate --device "$DEVICE" --count 16 --seed 7 --out "$OUT/generate-cuda.png"

rm -f "$OUT/step.out" "$OUT/step.err"
echo "== done in $(( $(date +%s) - start )) s; $(grep -c '"value"' "$JSONL") timings, ${#failures[@]} failed step(s)"
for f in "${failures[@]}"; do echo "   failed: $f"; done
exit 0
