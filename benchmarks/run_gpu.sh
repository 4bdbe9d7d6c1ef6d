#!/usr/bin/env bash
# Every GPU measurement of benchmarks/RESULTS.md in one run, each step under its own time limit, its log in OUT.
#
#   bash benchmarks/run_gpu.sh OUT [extra experiment arguments...]
#
# Steps: the GPU tests (NVDEC sampling, colour), extraction (benchmarks/gpu.py), training input and the device's
# busy share (benchmarks/train_busy.py), every backbone's model-only speed (benchmarks/backbones.py) and, when
# EXPERIMENT_GPU=1, the experiment's GPU configuration. A step that fails or runs out of time does not stop the
# others. Time limits (seconds) can be changed with the variables below. A dry run on a CPU:
#   DEVICE=cpu QUICK=1 bash benchmarks/run_gpu.sh /tmp/gpu-dry
set -u
out=${1:?usage: run_gpu.sh OUT}
shift
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
device=${DEVICE:-cuda}
quick=()
[ "${QUICK:-0}" = 1 ] && quick=(--quick)

step() {  # step NAME LIMIT COMMAND...: run COMMAND for at most LIMIT seconds, output to the terminal and OUT/NAME.log
    local name=$1 limit=$2
    shift 2
    echo "=== $name (limit ${limit} s)"
    local started=$SECONDS
    timeout --kill-after=10 "$limit" "$@" > "$out/$name.log" 2>&1
    local status=$?
    tail -n 60 "$out/$name.log"
    echo "=== $name: exit $status after $((SECONDS - started)) s"
}

step gpu_tests "${TESTS_S:-60}" "$python" -m pytest -q -s -p no:cacheprovider tests/test_nvdec_gpu.py tests/test_colour.py
step extraction "${EXTRACTION_S:-300}" "$python" benchmarks/gpu.py --device "$device" \
    --budget-s "$(( ${EXTRACTION_S:-300} - 40 ))" --num-videos 32 --seconds 30 --hd-videos 16 --hd-seconds 15 \
    --baseline-clips 160 "${quick[@]}"
step training "${TRAINING_S:-75}" "$python" benchmarks/train_busy.py --device "$device" --workers 14 --batch-size 32 \
    --amp bf16 --channels-last --steps 20 --num-videos 16 "${quick[@]}"
step backbones "${BACKBONES_S:-45}" "$python" benchmarks/backbones.py --device "$device" --batch-sizes 16 --repeats 5 \
    --max-seconds 4
if [ "${EXPERIMENT_GPU:-0}" = 1 ]; then
    step experiment "${EXPERIMENT_S:-150}" "$python" -m tspvideo.cli experiment --out "$out/experiment" "$@"
fi
