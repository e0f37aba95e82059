#!/usr/bin/env bash
# The benchmarks at accelerator sizes in one short run (about 5 minutes on one GPU), so that
# whoever first has a GPU can record its row without preparation:
#
#   pip install -e ".[gpu]" && bash benchmarks/gpu.sh            # -> benchmarks/results/gpu-<UTC time>/
#   bash benchmarks/gpu.sh DIR                                   # -> DIR (must not exist)
#   SMOKE=1 bash benchmarks/gpu.sh /tmp/smoke                    # tiny sizes: checks the script on a CPU
#
# What runs (each step has its own time limit; a step that runs out is reported, the rest
# still run): FADM throughput at the paper preset (DSM, classifier and MLDG train steps;
# guided EM-1000 and ODE-50 sampling of 65,536 rows; the fraction of the device's matmul rate
# reached, `bench_fadm.py`) and MMD at n = 4,096 .. 32,768 (`bench_mmd.py`). Every file is
# JSON with the device, jax version and device count; `device.txt` holds `nvidia-smi` when
# it is there. The encoder benchmark is numpy on the host and is not repeated here.
set -uo pipefail
cd "$(dirname "$0")/.."
backend=$(python -c "import jax; print(jax.default_backend())") || exit 2
out=${1:-benchmarks/results/${backend}-$(date -u +%Y%m%dT%H%M%SZ)}
if [ -e "$out" ]; then
    echo "gpu.sh: $out already exists; pass a new folder" >&2
    exit 2
fi
mkdir -p "$out"
if [ "${SMOKE:-0}" = 1 ]; then
    preset=quick rows=256 sizes="256 512" fadm_limit=300 mmd_limit=120
else
    preset=paper rows=65536 sizes="4096 16384 32768" fadm_limit=210 mmd_limit=90
fi
python -c "import jax; print(jax.__version__, jax.devices())" | tee "$out/device.txt"
command -v nvidia-smi > /dev/null && nvidia-smi >> "$out/device.txt"
status=0
run() {  # run NAME LIMIT_S COMMAND...: a step with a time limit, its output in NAME.log
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" "$@" > "$out/$name.log" 2>&1
    local rc=$?
    echo "$name: exit $rc after $((SECONDS - start)) s (limit $limit s); log $out/$name.log"
    [ "$rc" = 0 ] || status=1
}
run fadm "$fadm_limit" python benchmarks/bench_fadm.py --preset "$preset" \
    --sample-rows "$rows" --out "$out/fadm.json"
# shellcheck disable=SC2086  # the sizes are separate arguments
run mmd "$mmd_limit" python benchmarks/bench_mmd.py --sizes $sizes --out "$out/mmd.json"
cat "$out"/fadm.log 2> /dev/null | tail -12
ls -l "$out"
exit $status
