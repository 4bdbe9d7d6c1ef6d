"""Start-up of the command line: from process start to an answer, to the first decoded clip, to the first step.

Every number comes from fresh processes, timed from just before the process is started:

- ``tspvideo --help``, ``tspvideo features list``, and for reference ``python -c pass``,
  ``python -c "import torch"`` and ``python -c "import torch, torchvision"``: wall time of the whole process;
- ``tspvideo extract --random-init r2plus1d_18 --device cpu`` on a 20 s 320x240 synthetic video: a timeline
  of events, recorded by hooks installed before the command runs (``import torch`` is done first by the
  hook script, so it is timed on its own): the first ``nn.Module`` built (imports and argument handling
  before it), the frame stream made (the model built), decode workers started, the first clip complete
  in the model's process (``ClipAssembler``), the first batch of features;
- ``tspvideo train`` (R(2+1)D-18, random weights, batch 4 of 4-frame 16x16 clips, CPU, as the tests' tiny
  run: the step itself is short, so the start-up shows) on a tiny synthetic dataset: the first
  ``nn.Module``, data loader started, the first batch, the first optimizer step.

The process is ended once its last event is recorded. One more run of each command under
``python -X importtime`` splits the imports by package (each imported module's time goes to the first
known package above it in the import tree: torchvision's import of ``torch._dynamo`` counts as
torchvision's); these times are inflated by ``-X importtime`` itself. Each number is the median over
``--repeats`` runs, the commands interleaved.

    python benchmarks/startup.py                 # 5 repeats
    python benchmarks/startup.py --repeats 3 --only help
    python benchmarks/startup.py --src before=/tmp/old/src --src after=src    # two source trees, interleaved
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = ["-c", "import sys; from tspvideo.cli import main; sys.exit(main())"]

# Run in the measured process: hooks that record when things first happen, then the command itself.
HOOKS = r"""
import json, os, sys, time
marks = {"python": time.time()}
final = os.environ["STARTUP_FINAL"]
def mark(name):
    if name in marks:
        return
    marks[name] = time.time()
    if name == final:
        with open(os.environ["STARTUP_MARKS"], "w") as f:
            json.dump(marks, f)
        sys.stdout.flush()
        os._exit(0)
import torch
mark("torch")
_module_init = torch.nn.Module.__init__
def _init(self, *args, **kwargs):
    mark("first_module")
    return _module_init(self, *args, **kwargs)
torch.nn.Module.__init__ = _init
from torch.utils.data import DataLoader
from torch.utils.data.dataloader import _BaseDataLoaderIter
_iter = DataLoader.__iter__
def _loader_iter(self):
    mark("loader_start")
    iterator = _iter(self)
    mark("loader_started")
    return iterator
DataLoader.__iter__ = _loader_iter
_next = _BaseDataLoaderIter.__next__
def _loader_next(self):
    item = _next(self)
    mark("first_item")
    return item
_BaseDataLoaderIter.__next__ = _loader_next
from torch.optim.optimizer import register_optimizer_step_post_hook
register_optimizer_step_post_hook(lambda *args: mark("first_step"))
try:
    from tspvideo.extract import streaming
except ImportError:
    streaming = None
if streaming is not None:
    _stream_init = streaming.FrameStream.__init__
    def _stream(self, *args, **kwargs):
        mark("stream")
        return _stream_init(self, *args, **kwargs)
    streaming.FrameStream.__init__ = _stream
    _add = streaming.ClipAssembler.add
    def _assembler_add(self, *args, **kwargs):
        _add(self, *args, **kwargs)
        if self._ready_count:
            mark("first_clip")
    streaming.ClipAssembler.add = _assembler_add
    _features = streaming.VideoProgress.add_features
    def _add_features(self, *args, **kwargs):
        _features(self, *args, **kwargs)
        mark("first_features")
    streaming.VideoProgress.add_features = _add_features
from tspvideo.cli import main
sys.exit(main())
"""

# Events of each model command, in the order they happen, with what the time before each one holds.
PHASES = {
    "extract": [("torch", "import torch"), ("first_module", "other imports, arguments, set-up"),
                ("stream", "model build (+ video headers)"), ("loader_started", "decode worker start"),
                ("first_clip", "first clip decoded"), ("first_features", "first batch through the model")],
    "train": [("torch", "import torch"), ("first_module", "other imports, arguments, data tables"),
              ("loader_start", "model and optimizer build"), ("loader_started", "loader worker start"),
              ("first_item", "first batch decoded"), ("first_step", "first step (forward, backward, update)")],
}
# Packages whose import subtrees are reported on their own; everything else is "other".
PACKAGES = ("torch", "torchvision", "av", "numpy", "h5py", "scipy", "matplotlib", "tqdm", "PIL", "sympy")


def timed(command: list[str], env: dict | None = None) -> float:
    """Wall time of one process, from just before it starts to its exit."""
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def timeline(argv: list[str], final: str, tmp: Path, env: dict, importtime: bool = False) -> tuple[dict, str]:
    """Event times (s from the process start) of one run of the command ``argv``; its stderr."""
    marks_file = tmp / "marks.json"
    marks_file.unlink(missing_ok=True)
    env = {**env, "STARTUP_MARKS": str(marks_file), "STARTUP_FINAL": final}
    argv = list(argv)
    if argv[0] == "train":  # a fresh run folder each time: train refuses to overwrite an earlier run
        out = argv.index("--out") + 1
        shutil.rmtree(argv[out], ignore_errors=True)
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", HOOKS, *argv]
    started = time.time()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    _, stderr = process.communicate()
    try:  # decode workers left behind by os._exit
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if not marks_file.exists():
        raise SystemExit(f"{argv[0]} ended ({process.returncode}) before '{final}':\n{stderr[-3000:]}")
    marks = json.loads(marks_file.read_text())
    return {name: when - started for name, when in marks.items()}, stderr


def import_breakdown(stderr: str) -> dict[str, float]:
    """Seconds of import per package from ``-X importtime`` output (subtrees go to their first known package)."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        head, _, name = line.split("|")
        self_us = int(head.split(":")[1])
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append((depth, self_us, name.strip()))
    totals: dict[str, float] = {}
    # importtime prints a module after its children: walk backwards to see each parent before its children.
    owners: list[tuple[int, str]] = []  # (depth, owner) of the ancestors of the current line
    for depth, self_us, name in reversed(rows):
        while owners and owners[-1][0] >= depth:
            owners.pop()
        root = name.split(".")[0]
        inherited = next((owner for _, owner in reversed(owners) if owner in PACKAGES), None)
        owner = inherited or (root if root in PACKAGES else "tspvideo" if root == "tspvideo" else "other")
        owners.append((depth, owner))
        totals[owner] = totals.get(owner, 0.0) + self_us / 1e6
    return totals


def prepare(tmp: Path) -> tuple[list[str], list[str]]:
    """A 20 s video for extract and a tiny training set; the two commands' arguments."""
    synth = tmp / "synth"
    subprocess.run([sys.executable, *CLI, "synth", "--out", str(synth), "--num-videos", "1", "--size", "320x240",
                    "--min-duration", "20", "--max-duration", "20", "--valid-fraction", "0", "--no-progress"],
                   check=True, stdout=subprocess.DEVNULL)
    video = next((synth / "videos").glob("*.mp4"))
    extract = ["extract", str(video), "--out", str(tmp / "features"), "--random-init", "r2plus1d_18",
               "--device", "cpu", "--overwrite", "--no-progress"]
    import numpy as np

    from tspvideo.runs.steps import prepare_synthetic_dataset

    data = prepare_synthetic_dataset(tmp / "train-data", num_videos=4, num_classes=2, min_duration=6.0,
                                     max_duration=8.0, progress=False)
    import h5py

    with h5py.File(tmp / "gvf.h5", "w") as h5:
        for path in sorted(Path(data["videos"]).glob("*.mp4")):
            h5.create_dataset(path.stem, data=np.random.default_rng(0).standard_normal(512).astype(np.float32))
    train = ["train", "--train-csv", str(data["train"]), "--video-dir", str(data["videos"]),
             "--label-map", str(data["label_map"]), "--gvf", str(tmp / "gvf.h5"), "--out", str(tmp / "run"),
             "--backbone", "r2plus1d_18", "--weights", "none", "--batch-size", "4", "--epochs", "1",
             "--clip-len", "4", "--clips-per-segment", "2", "--resize", "24", "32", "--crop", "16",
             "--device", "cpu", "--no-progress"]
    return extract, train


def median_table(title: str, rows: dict[str, list[float]]) -> None:
    print(f"\n{title}\n\n| | median s | runs |\n|---|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |")


def tree_env(src: str | None) -> dict:
    """The environment of a process that imports tspvideo from ``src`` (None: the installed one)."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(src).resolve()), env.get("PYTHONPATH")]))
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=("help", "model"), help="only the quick commands, or only extract and train")
    parser.add_argument("--src", action="append", default=[], metavar="LABEL=PATH",
                        help="a source tree to import tspvideo from (repeat to compare trees; default: the installed)")
    args = parser.parse_args()
    trees = dict(spec.split("=", 1) for spec in args.src) or {"": None}
    script = Path(sys.executable).with_name("tspvideo")
    cli = [str(script)] if script.exists() else [sys.executable, *CLI]
    quick = {"python -c pass": [sys.executable, "-c", "pass"],
             "python -c 'import torch'": [sys.executable, "-c", "import torch"],
             "python -c 'import torch, torchvision'": [sys.executable, "-c", "import torch, torchvision"],
             "tspvideo --help": [*cli, "--help"],
             "tspvideo features list": [*cli, "features", "list"]}
    finals = {"extract": "first_features", "train": "first_step"}
    walls: dict[str, list[float]] = {}
    events: dict[tuple[str, str], dict[str, list[float]]] = {(label, n): {} for label in trees for n in finals}
    imports: dict[tuple[str, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        commands = prepare(tmp) if args.only != "help" else ()
        load_before = os.getloadavg()[0]
        for repeat in range(args.repeats):
            for label, src in trees.items():
                env = tree_env(src)
                for name, command in quick.items() if args.only != "model" else ():
                    if name.startswith("tspvideo") or label == next(iter(trees)):  # python alone: once
                        key = f"{name} ({label})" if label and name.startswith("tspvideo") else name
                        walls.setdefault(key, []).append(timed(command, env))
                for name, argv in zip(finals, commands, strict=False):
                    marks, _ = timeline(argv, finals[name], tmp, env)
                    for event, seconds in marks.items():
                        events[label, name].setdefault(event, []).append(seconds)
            print(f"repeat {repeat + 1} done", file=sys.stderr)
        for label, src in trees.items():
            for name, argv in zip(finals, commands, strict=False):
                imports[label, name] = import_breakdown(timeline(argv, finals[name], tmp, tree_env(src), True)[1])
        load_after = os.getloadavg()[0]

    print(f"median of {args.repeats}; load average {load_before:.1f} before, {load_after:.1f} after")
    if args.only != "model":
        median_table("Whole process, wall time", walls)
    for (label, name), marks in events.items() if args.only != "help" else ():
        print(f"\n`tspvideo {name}`{f' ({label})' if label else ''}: seconds from process start (median)\n")
        print("| event | at s | phase before it | phase s |\n|---|---|---|---|")
        previous = 0.0
        for event, phase in PHASES[name]:
            if event not in marks:
                print(f"| {event} | - | {phase} | - |")
                continue
            at = statistics.median(marks[event])
            print(f"| {event} | {at:.2f} | {phase} | {at - previous:.2f} |")
            previous = at
        breakdown = sorted(imports[label, name].items(), key=lambda kv: -kv[1])
        print("\nimports by package (one run under -X importtime): "
              + ", ".join(f"{package} {seconds:.2f} s" for package, seconds in breakdown if seconds >= 0.01))


if __name__ == "__main__":
    main()
