#!/usr/bin/env bash
# Trains the built-in anime models on a lent GPU (no Rust, no ../shared there), with the CUDA build of ganime
# and the training data carried in .devcarry/ (scripts/prepare-device.sh) and .devdata/ (face2anime, BSDS500
# resized to 160 px high, the shared VGG16). Three runs share the GPU for MINUTES each:
#  - anime-a: AnimeGANv2 width 8 (the real-time CPU filter) with the fixed recipe (ganime's defaults: caffe-scale
#    VGG features, spectral norm in D, random 96 px crops of 128 px pictures, DiffAugment translation+cutout);
#  - anime-b: the same recipe at width 32 (a teacher to distil to width 8 with `ganime distill`);
#  - cyclegan: selfie->anime CycleGAN (ngf 32, 6 blocks, 128 px crops).
# Results (generators, logs, last sample grids) go to $OUT/train.tar.gz (the device tool returns at most 8 files).
# Usage: bash scripts/device-train.sh [MINUTES]
set -u
cd "$(dirname "$0")/.."
FINAL=${OUT:-$PWD/device-out}
OUT=/tmp/train-out
MIN=${1:-5}
DEV=${GANIME_DEVICE:-cuda}
G=.devcarry/ganime
D=.devdata
mkdir -p "$OUT"
source scripts/device-env.sh "$G"
common=(--device $DEV --photos $D/face2anime/trainA --anime $D/face2anime/trainB --vgg $D/vgg16-f16.safetensors
        --image-size 128 --batch-size 12 --sample-every 250 --checkpoint-every 500 --log-every 25 --quiet)
long=(--steps 100000 --init-steps 300 --max-minutes "$MIN")
echo "== smoke: 3 steps of each run"
$G train animegan "${common[@]}" --width 8 --out /tmp/smoke-anime --steps 3 --init-steps 1 2>&1 | tail -3
$G train cyclegan --device $DEV --a $D/face2anime/trainA --b $D/face2anime/trainB --out /tmp/smoke-cyc --crop 128 --load-size 143 --ngf 32 --n-blocks 6 --steps 3 --quiet 2>&1 | tail -3
echo "== training for $MIN minutes each, in parallel ($(date -u +%T))"
$G train animegan "${common[@]}" "${long[@]}" --width 8 --out /tmp/anime-a > "$OUT/anime-a.log" 2>&1 &
$G train animegan "${common[@]}" "${long[@]}" --width 32 --out /tmp/anime-b > "$OUT/anime-b.log" 2>&1 &
$G train cyclegan --device $DEV --a $D/face2anime/trainA --b $D/face2anime/trainB --out /tmp/cyc --crop 128 --load-size 143 \
    --ngf 32 --n-blocks 6 --steps 100000 --constant-steps 100000 --max-minutes "$MIN" --sample-every 500 --checkpoint-every 1000 \
    --log-every 50 --quiet > "$OUT/cyclegan.log" 2>&1 &
wait
echo "== done ($(date -u +%T))"
for r in anime-a anime-b; do
  cp /tmp/$r/generator.safetensors "$OUT/$r.safetensors" 2>/dev/null
  tail -n 2 /tmp/$r/log.csv
  last=$(ls /tmp/$r/samples/*.png 2>/dev/null | tail -1); [ -n "$last" ] && cp "$last" "$OUT/$r-samples.png"
  cp /tmp/$r/log.csv "$OUT/$r-log.csv" 2>/dev/null
done
$G export --checkpoint /tmp/cyc --out "$OUT/cyclegan-a2b.safetensors" --dtype f16 && tail -n 2 /tmp/cyc/log.csv
last=$(ls /tmp/cyc/samples/*.png 2>/dev/null | tail -1); [ -n "$last" ] && cp "$last" "$OUT/cyclegan-samples.png"
ls -la "$OUT"
mkdir -p "$FINAL" && tar -czf "$FINAL/train.tar.gz" -C "$OUT" . && ls -la "$FINAL/train.tar.gz"
