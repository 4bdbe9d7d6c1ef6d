#!/usr/bin/env bash
# The GPU measurements in one run of about 12 minutes (13 at most), each step under its own time limit: training input on
# realistic videos, stride-16 extraction against the machine's decode ceiling, and the experiment's GPU preset.
#
#   bash benchmarks/run_gpu.sh OUT                  # on a GPU machine (16 vCPUs assumed for the worker counts)
#   bash benchmarks/run_gpu.sh OUT --device cpu     # every step at toy sizes on a CPU (a check of the script)
#
# Steps (limits in seconds, each changeable through the variable named):
#   versions     the card, driver, Python, torch, CUDA, cuDNN, torchvision, PyAV, PyNvVideoCodec, DALI
#   videos       MAKE_S=180      benchmarks/make_videos.py: 640x360 (4 at 30 fps, 4 at 29.97) and 1280x720 (2 + 2)
#                                h264, keyframe every 250 frames, 60-75 s each (1-5 minutes is the realistic range;
#                                the time budget shortens them: a random clip read costs the same in a longer file)
#   transcode    TRANSCODE_S=60  `tspvideo transcode` of that folder: defaults, and --fps 15
#   train34      TRAIN34_S=150   benchmarks/train_busy.py: R(2+1)D-34 with the tsp-activitynet recipe's clips
#                                (16x112x112, batch 32, SGD, frozen stem), bf16 + channels_last, 14 workers,
#                                preprocessing on the GPU; originals, transcoded, transcoded at 15 fps, transcoded
#                                through the frame cache; model-only step rate in the same run
#   train18      TRAIN18_S=90    the same for R(2+1)D-18 on the originals and the transcoded folder
#   workers      WORKERS_S=75    R(2+1)D-34 on the originals with 7 and 28 loader workers (fewer / more than cores)
#   ceiling      CEILING_S=110   benchmarks/decode_ceiling.py: decode-only ceiling (14 PyAV processes, 8 NVDEC
#                                sessions, both) and stride-16 extraction on the same videos, 640x360 and 1280x720
#   experiment   EXPERIMENT_S=120 `tspvideo experiment --preset gpu` into WORK/experiment, started here: it needs
#                                about 10 minutes more, and rerunning with the same WORK continues it where it
#                                stopped (on a fresh machine: STEPS=experiment EXPERIMENT_S=540 in a call of its own)
# A step that fails or runs out of time does not stop the others. STEPS picks steps (default: all, in this order),
# e.g. STEPS=experiment EXPERIMENT_S=540 for the experiment alone.
#
# Writes OUT/RESULTS.md (the versions and every step's table; on a GPU also appended to benchmarks/RESULTS.md
# of this tree, APPEND=0 to skip), OUT/run.log
# (the whole output) and OUT/experiment.tar.gz (the experiment's tables and figures). Videos and other large
# files go to WORK (default /tmp/tspvideo-gpu-run). No network is needed: on a machine without it, set WHEELS=DIR to a
# folder of wheels (PyAV, and PyNvVideoCodec for NVDEC) that are installed into a temporary folder first.
set -u
out=${1:?usage: run_gpu.sh OUT [--device cpu]}
device=${DEVICE:-cuda}
[ "${2:-}" = "--device" ] && device=${3:?--device needs a value}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=${WORK:-${TMPDIR:-/tmp}/tspvideo-gpu-run}
mkdir -p "$work"
work=$(cd "$work" && pwd)
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
if [ -n "${WHEELS:-}" ]; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --target /tmp/tspvideo-site "$WHEELS"/*.whl \
        || echo "wheels from $WHEELS: install failed"
    export PYTHONPATH=/tmp/tspvideo-site:${PYTHONPATH:-}
fi
"$python" -c "import tspvideo" 2>/dev/null || export PYTHONPATH=$PWD/src:${PYTHONPATH:-}
exec > >(tee "$out/run.log") 2>&1

toy=0
[ "$device" = cpu ] && toy=1
if [ "$toy" = 1 ]; then  # every step at toy sizes: a check of the script, not a measurement
    kinds=(96x64@30 128x72@29.97); seconds=(8 10); make_workers=2; pyav=1; nvdec=0
    busy=(--device cpu --quick --steps 2 --modes device); workers=1; more_workers=(0 2); backbone34=c3d_tiny; backbone18=c3d_tiny
    ceiling=(--device cpu --seconds 2 --backbone c3d_tiny --batch-size 4)
    experiment=(--device cpu --seeds 0 1 --num-videos 6 --epochs 1 --batch-size 4 --probe-epochs 1 --workers 0
                --backbone c3d_tiny --variants tsp tac)
    scale=${SCALE:-6}  # a shared 2-core CPU needs minutes where the GPU machine needs seconds
else
    kinds=(640x360@30:4 640x360@29.97:4 1280x720@30:2 1280x720@29.97:2); seconds=(60 75)
    make_workers=$(nproc); pyav=$(( $(nproc) - 2 )); nvdec=8
    # 20 clips per segment: a 12-video folder's epoch lasts longer than the timed steps (the same random reads)
    busy=(--device cuda --batch-size 32 --amp bf16 --channels-last --steps 16 --modes device --clips-per-segment 20)
    workers=$pyav; more_workers=($(( pyav / 2 )) $(( 2 * pyav ))); backbone34=r2plus1d_34; backbone18=r2plus1d_18
    ceiling=(--device cuda --seconds 8 --nvdec "$nvdec" --batch-size 32)
    experiment=(--device cuda)
    scale=${SCALE:-1}
fi

step() {  # step NAME LIMIT COMMAND...: run COMMAND for at most LIMIT seconds; output to the terminal and a log
    local name=$1 limit=$(( $2 * scale ))
    shift 2
    [[ " ${STEPS:-videos transcode train34 train18 workers ceiling experiment} " == *" $name "* ]] || return 0
    echo "=== $name (limit ${limit} s)"
    local started=$SECONDS
    timeout --kill-after=10 "$limit" "$@" > "$work/$name.log" 2>&1
    local status=$?
    grep -v "^segment table: dropped" "$work/$name.log" | tail -n 40
    echo "=== $name: exit $status after $((SECONDS - started)) s"
    printf '%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - started))" >> "$work/steps.tsv"
}

: > "$work/steps.tsv"
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
    echo "CPU cores: $(nproc)"
    "$python" - <<'EOF'
import importlib, platform, torch
parts = [f"Python {platform.python_version()}", f"torch {torch.__version__}",
         f"CUDA {torch.version.cuda}", f"cuDNN {torch.backends.cudnn.version()}"]
for name, module in [("torchvision", "torchvision"), ("PyAV", "av"), ("NumPy", "numpy"),
                     ("PyNvVideoCodec", "PyNvVideoCodec"), ("DALI", "nvidia.dali")]:
    try:
        parts.append(f"{name} {getattr(importlib.import_module(module), '__version__', '?')}")
    except Exception:
        parts.append(f"{name} not installed")
print(", ".join(parts))
if torch.cuda.is_available():
    print("card:", torch.cuda.get_device_name(0))
EOF
} > "$work/versions.log" 2>&1
cat "$work/versions.log"

data=$work/data
step videos "${MAKE_S:-180}" "$python" benchmarks/make_videos.py "$data" --kinds "${kinds[@]}" --videos 2 \
    --min-seconds "${seconds[0]}" --max-seconds "${seconds[1]}" --workers "$make_workers"
step transcode "${TRANSCODE_S:-60}" bash -c "
    start=\$SECONDS; $python -m tspvideo.cli transcode '$data/videos' '$data/transcoded' --workers $make_workers \
        --no-progress && echo \"transcoded (defaults) in \$(( SECONDS - start )) s\"
    start=\$SECONDS; $python -m tspvideo.cli transcode '$data/videos' '$data/transcoded_fps15' --fps 15 \
        --workers $make_workers --no-progress && echo \"transcoded (--fps 15) in \$(( SECONDS - start )) s\""
step train34 "${TRAIN34_S:-150}" "$python" benchmarks/train_busy.py "${busy[@]}" --data "$data" \
    --backbones "$backbone34" --workers "$workers" --inputs videos transcoded transcoded_fps15 --frame-cache transcoded
step train18 "${TRAIN18_S:-90}" "$python" benchmarks/train_busy.py "${busy[@]}" --data "$data" \
    --backbones "$backbone18" --workers "$workers" --inputs videos transcoded
step workers "${WORKERS_S:-75}" "$python" benchmarks/train_busy.py "${busy[@]}" --data "$data" \
    --backbones "$backbone34" --workers "${more_workers[@]}" --inputs videos
step ceiling "${CEILING_S:-110}" "$python" benchmarks/decode_ceiling.py "$data/videos" --pyav "$pyav" "${ceiling[@]}"
step experiment "${EXPERIMENT_S:-120}" "$python" -m tspvideo.cli experiment --preset gpu --out "$work/experiment" \
    --no-progress "${experiment[@]}"

# One file with everything measured: the versions, then each step's tables and its exit status.
{
    echo "## GPU run of benchmarks/run_gpu.sh ($(date -u +%Y-%m-%d))"
    echo
    sed 's/^/    /' "$work/versions.log"
    while IFS=$'\t' read -r name status seconds; do
        echo
        echo "### $name (exit $status, $seconds s)"
        echo
        grep -v "^segment table: dropped" "$work/$name.log" | tail -n 60
    done < "$work/steps.tsv"
} > "$out/RESULTS.md"
if [ -d "$work/experiment" ]; then
    (cd "$work" && find experiment -maxdepth 3 \( -name '*.json' -o -name '*.txt' -o -name '*.csv' -o -name '*.png' \
        -o -name '*.md' \) -size -4M -print0 | tar -czf "$out/experiment.tar.gz" --null -T -)
fi
# On a GPU the section is also appended to benchmarks/RESULTS.md (APPEND=0 to skip; never for a CPU check).
if [ "${APPEND:-$(( 1 - toy ))}" = 1 ]; then
    { echo; cat "$out/RESULTS.md"; } >> benchmarks/RESULTS.md
fi
echo "=== tables in $out/RESULTS.md"
