#!/usr/bin/env bash
# The experiment's GPU configuration (`tspvideo experiment --preset gpu`: R(2+1)D-18, 400 videos of 64x64,
# 14 epochs, 3 seeds side by side) on one H100/H200, then, time allowing, a 3-seed S3D run.
#
#   bash benchmarks/experiment_gpu.sh OUT            # the GPU run: OUT/r2plus1d_18, then OUT/s3d
#   bash benchmarks/experiment_gpu.sh OUT --smoke    # the R(2+1)D-18 command at toy sizes on the CPU (a dry
#                                                    # run; S3D at 224x224 is too slow for a CPU: its sizes
#                                                    # are checked by tests/test_experiment.py)
#
# DEADLINE_S (seconds, default 3600) bounds the whole script: the S3D run gets what the first one left and is
# stopped at the deadline (rerunning the script continues both where they stopped). RUNS picks the runs
# (default "r2plus1d_18 s3d"; e.g. RUNS=s3d for the S3D run alone in a second call). Prints the card, each
# run's wall time and table; results in OUT/<backbone>/results.json, comparison.json, table.txt, figures/.
set -euo pipefail
out=${1:?usage: experiment_gpu.sh OUT [--smoke]}
mode=${2:-gpu}
python=${PYTHON:-python}
deadline=$(( $(date +%s) + ${DEADLINE_S:-3600} ))
if [[ "$mode" == "--smoke" ]]; then
    # Every step of both commands on the CPU, with the GPU preset's architecture but tiny sizes.
    toy=(--device cpu --seeds 0 1 --num-videos 6 --epochs 1 --batch-size 4 --probe-epochs 1 --workers 0 --no-progress)
else
    toy=(--device cuda --no-progress)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    echo "CPU cores: $(nproc)"
fi
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"

runs=${RUNS:-r2plus1d_18 s3d}
if [[ " $runs " == *" r2plus1d_18 "* ]]; then
    start=$(date +%s)
    timeout $(( deadline - start )) "$python" -m tspvideo.cli experiment --preset gpu --out "$out/r2plus1d_18" \
        "${toy[@]}"
    echo "r2plus1d_18: $(( $(date +%s) - start )) s"
fi
[[ "$mode" == "--smoke" || " $runs " != *" s3d "* ]] && exit 0

# S3D at the input size of its Kinetics weights: 16 frames of 224x224 (1.07 s at 15 fps); from random weights
# its batch-norm momentum (0.001) is too slow: 0.1.
start=$(date +%s)
left=$(( deadline - start ))
if (( left < 60 )); then echo "s3d: skipped, ${left} s left before the deadline"; exit 0; fi
status=0
timeout "$left" "$python" -m tspvideo.cli experiment --preset gpu --out "$out/s3d" --backbone s3d --clip-len 16 \
    --fps 15 --resize 240 240 --crop 224 --bn-momentum 0.1 --num-videos 160 --epochs 8 --batch-size 16 "${toy[@]}" || status=$?
echo "s3d: $(( $(date +%s) - start )) s, exit code $status"
