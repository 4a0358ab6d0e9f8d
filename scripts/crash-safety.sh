#!/usr/bin/env bash
# Kills a small training run with SIGKILL at random moments N times and checks after each kill that the run folder
# still resumes (the checkpoint is whole: atomic writes) and that no temp file is left once it has run again.
# Usage: scripts/crash-safety.sh [N] [GANIME]   (default 20 kills, target/release/ganime); needs ../shared/data.
set -u
cd "$(dirname "$0")/.."
N=${1:-20}
G=${2:-target/release/ganime}
DATA=${GANIME_SHARED_DIR:-../shared}/data/anime-faces
RUN=$(mktemp -d)/run
"$G" train dcgan --data "$DATA" --out "$RUN" --image-size 32 --ngf 8 --ndf 8 --batch-size 16 --steps 3 \
    --checkpoint-every 3 --sample-every 5 --log-every 1 --quiet || { echo "the first run failed"; exit 1; }
fails=0
for i in $(seq 1 "$N"); do
  "$G" train dcgan --resume "$RUN" --steps 100000 --quiet >/dev/null 2>&1 &
  pid=$!
  sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 0.3 + rand() * 2.5 }')"
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  state=$("$G" models inspect "$RUN/checkpoint.safetensors" >/dev/null 2>&1 && echo readable || echo unreadable)
  # The next resume must work from whatever the kill left.
  if ! "$G" train dcgan --resume "$RUN" --steps "$(( $(grep -c . "$RUN/log.csv") + 1 ))" --quiet >/dev/null 2>&1; then
    echo "kill $i: the run no longer resumes (checkpoint $state)"; fails=$((fails + 1))
  fi
done
left=$(find "$(dirname "$RUN")" -name '*.tmp' | wc -l)
echo "$N kills: $fails runs that did not resume; $left temp files left"
[ "$fails" = 0 ] && [ "$left" = 0 ]
