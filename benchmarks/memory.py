"""Peak memory of extraction against video length: it should stay flat (bounded by batch and queue sizes).

For each length, a synthetic h264 video is written, then extracted in a fresh process (decoding in the
main process, ``--workers 0``, so one process holds everything) with a cheap encoder: memory, not model
speed, is measured. Peak resident memory comes from ``getrusage`` of that process.

    python benchmarks/memory.py                       # 1, 10 and 60 minute videos at 320x180
    python benchmarks/memory.py --minutes 1 10 --size 640x360
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import torch
from tspvideo.extract import ClipSettings, extract_dataset
from pathlib import Path

class MeanEncoder(torch.nn.Module):  # cheap: the measurement is about decoding and buffering
    def forward(self, clips):
        return clips.mean(dim=(2, 3, 4)).repeat(1, 171)[:, :512]

video, out, stride, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
samples = []

def sample():  # resident memory once a second, to see whether it grows during the run
    import os
    while True:
        with open(f"/proc/{os.getpid()}/statm") as f:
            samples.append(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20)
        time.sleep(1)

import threading
threading.Thread(target=sample, daemon=True).start()
started = time.perf_counter()
report = extract_dataset([Path(video)], out, MeanEncoder(), {"weights": "mean"}, ClipSettings(16, 15.0, stride),
                         batch_size=batch, num_workers=0, progress=False)
assert not report.failed, report.failed
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
half = len(samples) // 2
print(json.dumps({"clips": report.clips, "seconds": time.perf_counter() - started,
                  "rss_before_mib": before / 1024, "peak_rss_mib": peak / 1024,
                  "max_rss_first_half_mib": max(samples[:half] or samples),
                  "max_rss_second_half_mib": max(samples[half:])}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--size", default="320x180", help="WxH of the synthetic videos")
    parser.add_argument("--stride", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from extract import write_test_video  # the same synthetic video writer as the speed benchmark

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            video = Path(tmp) / f"long_{minutes:g}min.mp4"
            started = time.perf_counter()
            write_test_video(video, minutes * 60, size=(width, height))
            written = time.perf_counter() - started
            result = subprocess.run([sys.executable, "-c", CHILD, str(video), str(Path(tmp) / f"out{minutes:g}"),
                                     str(args.stride), str(args.batch_size)],
                                    check=True, capture_output=True, text=True)
            stats = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append((minutes, video.stat().st_size / 2**20, stats, written))
            video.unlink()

    print(f"\nextraction peak memory, {args.size} h264 30 fps, stride {args.stride}, batch {args.batch_size}, "
          f"workers 0, cheap encoder")
    print("| video length | file MiB | clips | extraction s | RSS after imports MiB | max RSS 1st half MiB "
          "| max RSS 2nd half MiB | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for minutes, size_mib, stats, _ in rows:
        print(f"| {minutes:g} min | {size_mib:.1f} | {stats['clips']} | {stats['seconds']:.1f} "
              f"| {stats['rss_before_mib']:.0f} | {stats['max_rss_first_half_mib']:.0f} "
              f"| {stats['max_rss_second_half_mib']:.0f} | {stats['peak_rss_mib']:.0f} |")


if __name__ == "__main__":
    main()
