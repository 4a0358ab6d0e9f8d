#!/usr/bin/env bash
# scripts/fuzz.sh SECONDS [TARGET...]: runs the stable-toolchain fuzzer (fuzz/, `ganime-fuzz`) for SECONDS in
# all, shared between all targets (or the ones named), under an 8 GB address-space limit so that a huge
# allocation fails at once instead of eating the machine. Panics and slow cases are saved by the fuzzer as
# fuzz/findings/TARGET/finding-*; a crash that kills the process (abort, stack overflow, allocation failure)
# leaves its input as in-flight.*, kept here as crash-*, and the target goes on with the next seed.
# Each run starts from a new seed (the time) unless FUZZ_SEED is set; the seed is printed, so a run can be
# repeated exactly. Exit status: 0 nothing found, 1 findings or crashes.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
nice -n 5 cargo build --release -p ganime-fuzz || exit 2
fuzzer=./target/release/ganime-fuzz
findings=fuzz/findings
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    read -r -a targets <<<"$($fuzzer --help | sed -n 's/^targets: //p' | tr -d ',')"
fi
per=$((secs / ${#targets[@]}))
first_seed=${FUZZ_SEED:-$(date +%s)}
echo "fuzzing ${targets[*]} for $secs s from seed $first_seed"
status=0
for t in "${targets[@]}"; do
    end=$(($(date +%s) + per))
    seed=$first_seed
    while [ "$(date +%s)" -lt "$end" ]; do
        left=$((end - $(date +%s)))
        (ulimit -v 8000000 && exec nice -n 5 "$fuzzer" --seconds "$left" --seed "$seed" --findings "$findings" "$t")
        rc=$?
        case $rc in
        0) break ;;
        1) status=1 && break ;;
        2) exit 2 ;;
        esac
        status=1
        for f in "$findings/$t"/in-flight.*; do
            [ -e "$f" ] || continue
            kept="$findings/$t/crash-$(sha256sum "$f" | cut -c1-12).${f##*.}"
            mv "$f" "$kept"
            echo "$t: the process died (exit $rc) on the input kept as $kept"
        done
        seed=$((seed + 1))
    done
done
exit $status
