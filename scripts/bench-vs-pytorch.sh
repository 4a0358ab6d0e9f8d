#!/usr/bin/env bash
# ganime ÷ PyTorch for the shared benchmark workloads, in one sitting: for each workload the two run
# alternately ROUNDS times (A B A B …), 2 threads each, and the table gives each side's median of its medians.
#
#   scripts/bench-vs-pytorch.sh [SECONDS=10] [ROUNDS=2] [WORKLOAD...]
#
# Needs python3 with torch (`pip install torch`) and `cargo build --release`. Prints the CPU model first:
# ratios from different CPUs are not comparable (see BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}
ROUNDS=${2:-2}
shift $(( $# > 2 ? 2 : $# ))
WORKLOADS=${*:-dcgan64-train dcgan64-generate style-320x240 style-640x480 animegan-256 cyclegan128-train gatys-256-iter}
SHARED=${GANIME_DATA:-../shared}
GANIME=${GANIME:-target/release/ganime}
[ -x "$GANIME" ] || { echo "no ganime binary at $GANIME: run cargo build --release first" >&2; exit 2; }
python3 -c "import torch, safetensors" 2>/dev/null || { echo "python3 cannot import torch and safetensors: pip install torch safetensors" >&2; exit 2; }
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'); flags: $(grep -o -w 'avx512f\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); load: $(cut -d' ' -f1-3 /proc/loadavg); seconds $SECONDS_EACH, rounds $ROUNDS"
printf '| workload | ganime median ms | PyTorch median ms | ganime ÷ PyTorch |\n|---|---|---|---|\n'
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for w in $WORKLOADS; do
    g=(); p=()
    for _ in $(seq "$ROUNDS"); do
        g+=("$(RAYON_NUM_THREADS=2 "$GANIME" bench "$w" --seconds "$SECONDS_EACH" | sed -n 's/.*"median_ms": \([0-9.]*\).*/\1/p')")
        p+=("$(python3 "$SHARED/bench/pytorch_reference.py" "$w" --threads 2 --seconds "$SECONDS_EACH" 2>/dev/null | sed -n 's/.*"median_ms": \([0-9.]*\).*/\1/p')")
    done
    gm=$(printf '%s\n' "${g[@]}" | median); pm=$(printf '%s\n' "${p[@]}" | median)
    printf '| %s | %.0f (%s) | %.0f (%s) | **%.2f** |\n' "$w" "$gm" "${g[*]}" "$pm" "${p[*]}" "$(awk -v p="$pm" -v g="$gm" 'BEGIN {print p / g}')"
done
