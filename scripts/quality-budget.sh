#!/usr/bin/env bash
# Equal-budget quality benchmark: ganime's small-data recipe and the plain PyTorch DCGAN
# (../shared/bench/pytorch_dcgan_budget.py, pytorch/examples recipe) each train for the same wall-clock on the
# same machine and the same anime faces, then both are scored by `ganime eval` (VGG16 relu3_3 KID/FID,
# precision/recall, diversity) on the same number of samples.
#
#   scripts/quality-budget.sh OUT [MINUTES=45] [THREADS=2] [--parallel]
#
# --parallel runs the two trainings side by side with THREADS each (use THREADS=1 on a 2-core machine): the
# same budget for both in half the wall-clock. Needs python3 with torch, numpy and pillow
# (`pip install torch numpy pillow`), and a release build (`cargo build --release`).
# Writes OUT/{pytorch,ganime}/ (runs), OUT/*.json (eval reports) and prints a table.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: scripts/quality-budget.sh OUT [MINUTES] [THREADS] [--parallel]}
MINUTES=${2:-45}
THREADS=${3:-2}
PARALLEL=${4:-}
SHARED=${GANIME_DATA:-../shared}
DATA="$SHARED/data/anime-faces"
COUNT=${COUNT:-2000}
GANIME=${GANIME:-target/release/ganime}
[ -d "$DATA" ] || { echo "no anime faces at $DATA (set GANIME_DATA to the shared folder)" >&2; exit 2; }
[ -x "$GANIME" ] || { echo "no ganime binary at $GANIME: run cargo build --release first" >&2; exit 2; }
mkdir -p "$OUT"

run_pytorch() {
    python3 "$SHARED/bench/pytorch_dcgan_budget.py" --data "$DATA" --minutes "$MINUTES" --ngf 32 --threads "$THREADS" \
        --out "$OUT/pytorch" > "$OUT/pytorch.log" 2>&1
    # pytorch/examples keys (`main.N.…`), so ganime reads it as a DCGAN generator.
    python3 -c "import torch,sys; sd=torch.load(sys.argv[1]); torch.save({'main.'+k: v for k, v in sd.items()}, sys.argv[2])" \
        "$OUT/pytorch/netG.pt" "$OUT/pytorch/netG_main.pth"
}

run_ganime() {
    RAYON_NUM_THREADS=$THREADS "$GANIME" train dcgan --data "$DATA" --out "$OUT/ganime" --recipe small-data \
        --ngf 32 --ndf 32 --batch-size 64 --flip --steps 100000000 --max-minutes "$MINUTES" \
        --sample-every 500 --checkpoint-every 250 --quiet > "$OUT/ganime.log" 2>&1
}

if [ "$PARALLEL" = "--parallel" ]; then
    run_pytorch & P=$!
    run_ganime & G=$!
    wait $P; wait $G
else
    run_pytorch
    run_ganime
fi

score() { # NAME CHECKPOINT
    "$GANIME" eval --real "$DATA" --checkpoint "$2" --count "$COUNT" --features vgg16 --json "$OUT/$1.json" > "$OUT/$1.eval.txt" 2>&1
    echo "== $1 ($2)"; cat "$OUT/$1.eval.txt"
}
score pytorch "$OUT/pytorch/netG_main.pth"
score ganime "$OUT/ganime"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), budget $MINUTES min, $THREADS thread(s) each${PARALLEL:+, side by side}"
tail -1 "$OUT/pytorch.log"
grep -o 'done: .*' "$OUT/ganime.log" || tail -1 "$OUT/ganime.log"
