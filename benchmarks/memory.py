"""Peak memory of extraction on a CPU: with the real R(2+1)D encoders, and against video length.

For each length, a synthetic h264 video is written, then extracted in a fresh process, as
`tspvideo extract --device cpu` runs it (one decode worker by default). The encoder is the real
architecture with random weights (the same memory as released weights: same layers and shapes) or,
with ``--models mean``, a cheap stand-in that isolates decoding and buffering. Two peaks: the
extracting process's own peak resident memory (``getrusage``), and the largest sum of the proportional
set size (PSS: pages a decode worker shares with its parent after fork() count once) of that process
and its decode workers, sampled every 0.2 s from /proc.

    python benchmarks/memory.py                                   # R(2+1)D-18 and -34, 1 minute, batch 8
    python benchmarks/memory.py --models r2plus1d_34 --minutes 1 10 60 --batch-sizes 8 32
    python benchmarks/memory.py --models mean --minutes 1 10 60 --workers 0   # decoding and buffering alone
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, os, resource, sys, threading, time
import torch
from pathlib import Path
from tspvideo.extract.options import ExtractOptions
from tspvideo.core.grid import ClipGrid
from tspvideo.extract.run import extract_dataset
from tspvideo.models.encoder import Encoder
from tspvideo.models.tsp import create_model

class MeanEncoder(torch.nn.Module):  # cheap: the measurement is about decoding and buffering
    def forward(self, clips):
        return clips.mean(dim=(2, 3, 4)).repeat(1, 171)[:, :512]

video, out, model_name = sys.argv[1], sys.argv[2], sys.argv[3]
stride, batch, workers = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])

def tree(pid):  # this process and all its descendants
    pids = [pid]
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for child in f.read().split():
                    pids += tree(int(child))
        except OSError:
            pass
    return pids

def pss_mib(pids):  # proportional set size: pages shared after fork() are counted once in the sum
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            pass
    return total / 1024

samples = []
def sample():
    while True:
        samples.append(pss_mib(tree(os.getpid())))
        time.sleep(0.2)

if model_name == "mean":
    model = MeanEncoder()
else:
    torch.manual_seed(0)
    model = create_model(model_name, heads=("region",), gvf=None).eval()
before = pss_mib([os.getpid()])
threading.Thread(target=sample, daemon=True).start()
started = time.perf_counter()
report = extract_dataset([Path(video)], out, Encoder.of_module(model, weights="random"),
                         ExtractOptions.for_grid(ClipGrid(16, 15.0, stride), batch_size=batch, workers=workers,
                                                 amp="fp32", progress=False))
seconds = time.perf_counter() - started
assert not report.failed, report.failed
peak_main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"clips": report.clips, "seconds": seconds, "rss_before_mib": before,
                  "peak_tree_mib": max(samples), "peak_main_mib": peak_main, "torch_threads": torch.get_num_threads()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["r2plus1d_18", "r2plus1d_34"],
                        help="backbones (random weights) or `mean` (cheap stand-in encoder)")
    parser.add_argument("--minutes", type=float, nargs="+", default=[1])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8])
    parser.add_argument("--size", default="320x180", help="WxH of the synthetic videos")
    parser.add_argument("--stride", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="decode workers (1: the CLI's CPU default)")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from extract import write_test_video  # the same synthetic video writer as the speed benchmark

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            video = Path(tmp) / f"long_{minutes:g}min.mp4"
            write_test_video(video, minutes * 60, size=(width, height))
            for model in args.models:
                for batch in args.batch_sizes:
                    out = Path(tmp) / f"out_{minutes:g}_{model}_{batch}"
                    result = subprocess.run([sys.executable, "-c", CHILD, str(video), str(out), model,
                                             str(args.stride), str(batch), str(args.workers)],
                                            check=True, capture_output=True, text=True)
                    stats = json.loads(result.stdout.strip().splitlines()[-1])
                    rows.append((model, batch, minutes, stats))
                    print(model, batch, minutes, stats, flush=True)
            video.unlink()

    print(f"\nCPU extraction peak memory, synthetic {args.size} h264 30 fps, stride {args.stride}, "
          f"{args.workers} decode worker(s), random weights")
    print("| encoder | batch | video length | clips | extraction s | clips/s | PSS before MiB "
          "| peak RSS, extracting process MiB | peak PSS, with decode workers MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model, batch, minutes, stats in rows:
        print(f"| {model} | {batch} | {minutes:g} min | {stats['clips']} | {stats['seconds']:.1f} "
              f"| {stats['clips'] / stats['seconds']:.1f} | {stats['rss_before_mib']:.0f} "
              f"| {stats['peak_main_mib']:.0f} | {stats['peak_tree_mib']:.0f} |")


if __name__ == "__main__":
    main()
