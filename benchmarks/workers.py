"""Decode workers on a CPU: clips/s and peak memory of `tspvideo extract` for each number of workers.

Each run is a fresh `tspvideo extract --device cpu --workers N` process (R(2+1)D-18 with random weights by
default: the real architecture, so the real model time and memory) on one synthetic 320x240 h264 video.
While it runs, /proc is sampled every 0.2 s for the process and its children (the decode workers): RSS,
PSS (proportional set size: a page a forked worker still shares with its parent counts half in each) and
private memory (pages only that process maps; what a worker costs beyond its parent). clips/s is the rate
the command reports (its extraction loop: worker start-up, decoding, model and writes; not the imports
or the model build). Runs are interleaved (0, 1, 2, 0, 1, 2, ...) so that the load of other jobs falls on
every worker count; each number is the median over the repeats.

    python benchmarks/workers.py                                  # 2-minute video, workers 0 1 2, 3 repeats
    python benchmarks/workers.py --minutes 10 --repeats 1 --workers 1
    python benchmarks/workers.py --video my.mp4 --backbone r2plus1d_34
    python benchmarks/workers.py --src before=/tmp/old/src --src after=src   # two source trees, interleaved
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# The console script's entry point, as a module call: works for whichever tspvideo is importable.
CLI = ["-c", "import sys; from tspvideo.cli import main; sys.exit(main())"]
RATE = re.compile(r"(\d+) clips in ([\d.]+) s")
MIB = 1024  # /proc reports kB


def descendants(pid: int) -> list[int]:
    """The children of ``pid``, their children and so on."""
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                children = [int(c) for c in f.read().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def memory_kb(pid: int) -> dict[str, int] | None:
    """RSS, PSS and private memory of one process (kB), or None when it is gone."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            values["rss"] = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Pss", "Private_Clean", "Private_Dirty"):
                    values[key] = int(rest.split()[0])
    except (OSError, StopIteration):
        return None
    return {"rss": values["rss"], "pss": values.get("Pss", 0),
            "private": values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)}


class Sampler(threading.Thread):
    """Peaks of a process tree's memory, sampled every ``period`` s until :meth:`stop`."""

    def __init__(self, pid: int, period: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.peak = {"rss": 0, "pss": 0, "main_rss": 0, "worker_rss": 0, "worker_private": 0}
        self.last_worker_rss = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            main = memory_kb(self.pid)
            if main is not None:
                workers = [m for m in map(memory_kb, descendants(self.pid)) if m is not None]
                self._update("rss", main["rss"] + sum(w["rss"] for w in workers))
                self._update("pss", main["pss"] + sum(w["pss"] for w in workers))
                self._update("main_rss", main["rss"])
                if workers:
                    self._update("worker_rss", max(w["rss"] for w in workers))
                    self._update("worker_private", max(w["private"] for w in workers))
                    self.last_worker_rss = max(w["rss"] for w in workers)
            self._done.wait(self.period)

    def _update(self, key: str, value: int) -> None:
        self.peak[key] = max(self.peak[key], value)

    def stop(self) -> None:
        self._done.set()
        self.join()


def run_extract(video: Path, workers: int, args: argparse.Namespace, src: str | None = None) -> dict:
    """One fresh `tspvideo extract` process (importing tspvideo from ``src`` when given): its reported clips/s
    and the peaks of its memory."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(src).resolve()), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, *CLI, "extract", str(video), "--out", out, "--random-init", args.backbone,
                   "--device", "cpu", "--workers", str(workers), "--batch-size", str(args.batch_size),
                   "--no-progress"]
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        sampler = Sampler(process.pid)
        sampler.start()
        output, _ = process.communicate()
        sampler.stop()
        wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"extract failed ({process.returncode}):\n{output}")
    match = RATE.search(output)
    if match is None:
        raise SystemExit(f"no 'N clips in S s' line in the output:\n{output}")
    clips, seconds = int(match.group(1)), float(match.group(2))
    return {"clips": clips, "rate": clips / seconds, "wall": wall, **sampler.peak,
            "worker_rss_end": sampler.last_worker_rss}


def make_video(path: Path, minutes: float, size: str) -> Path:
    """A synthetic h264 video (`tspvideo synth`: textured background, moving shapes, 30 fps)."""
    seconds = str(minutes * 60)
    subprocess.run([sys.executable, *CLI, "synth", "--out", str(path), "--num-videos", "1", "--size", size,
                    "--min-duration", seconds, "--max-duration", seconds, "--valid-fraction", "0",
                    "--no-progress"], check=True, stdout=subprocess.DEVNULL)
    return next((path / "videos").glob("*.mp4"))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, help="video to extract (default: a synthetic one)")
    parser.add_argument("--minutes", type=float, default=2.0, help="length of the synthetic video")
    parser.add_argument("--size", default="320x240", help="size of the synthetic video, WxH")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backbone", default="r2plus1d_18")
    parser.add_argument("--batch-size", type=int, default=8, help="the CPU default of `tspvideo extract`")
    parser.add_argument("--src", action="append", default=[], metavar="LABEL=PATH",
                        help="a source tree to import tspvideo from (repeat to compare trees; default: the installed)")
    args = parser.parse_args()
    trees = dict(spec.split("=", 1) for spec in args.src) or {"": None}

    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or make_video(Path(tmp) / "synth", args.minutes, args.size)
        runs: dict[tuple[str, int], list[dict]] = {(label, w): [] for label in trees for w in args.workers}
        load_before = os.getloadavg()[0]
        for repeat in range(args.repeats):
            for label, workers in runs:
                result = run_extract(video, workers, args, trees[label])
                runs[label, workers].append(result)
                print(f"repeat {repeat + 1}, {label or 'workers'} {workers}: {result['rate']:.2f} clips/s, peak RSS "
                      f"{result['rss'] / MIB:.0f} MiB (PSS {result['pss'] / MIB:.0f}), worker RSS "
                      f"{result['worker_rss'] / MIB:.0f} MiB, {result['wall']:.1f} s", file=sys.stderr)
        load_after = os.getloadavg()[0]

    cores = len(os.sched_getaffinity(0))
    print(f"\n{cpu_name()}, {cores} cores usable; {args.backbone}, batch {args.batch_size}, "
          f"{next(iter(runs.values()))[0]['clips']} clips of {video.name if args.video else args.size + ' synthetic, '}"
          f"{'' if args.video else f'{args.minutes:g} min'}; median of {args.repeats}; "
          f"load average {load_before:.1f} before, {load_after:.1f} after\n")
    tree = "tree | " if args.src else ""
    print(f"| {tree}decode workers | clips/s | peak RSS, main + workers MiB | peak PSS, main + workers MiB "
          "| peak RSS, main MiB | peak RSS, one worker MiB | peak private, one worker MiB |")
    print("|---" * (7 + bool(args.src)) + "|")
    for (label, workers), results in runs.items():
        def median(key: str, scale: float = MIB, results: list[dict] = results) -> float:
            return statistics.median(r[key] for r in results) / scale
        worker_cells = ("-", "-") if workers == 0 else (f"{median('worker_rss'):.0f}",
                                                        f"{median('worker_private'):.0f}")
        row = f"{label} | " if args.src else ""
        print(f"| {row}{workers} | {median('rate', 1):.2f} | {median('rss'):.0f} | {median('pss'):.0f} "
              f"| {median('main_rss'):.0f} | {worker_cells[0]} | {worker_cells[1]} |")


if __name__ == "__main__":
    main()
