"""The experiment's evaluation step (probe, length breakdown, temporal-sensitivity scores) run by several
processes at once, with few or many CPU threads each: what `tspvideo experiment --jobs` must avoid.

Builds the experiment's synthetic videos and one feature set (the CPU preset's encoder with seeded random
weights), then starts ``--jobs`` processes that each evaluate that feature set, once per ``--threads``
setting (torch threads and the OMP / OpenBLAS / MKL variables of each process).

    python benchmarks/parallel_eval.py --videos 80 --jobs 3 --threads 1 16

Prints a markdown table: seconds per process (median over the processes) for each thread setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

import torch

from tspvideo.runs.experiment.config import PRESETS
from tspvideo.runs.experiment.evaluate import evaluate_features, read_ground_truth
from tspvideo.runs.experiment.jobs import thread_environment
from tspvideo.runs.experiment.run import prepare_data
from tspvideo.runs.experiment.seed import extract_features, input_recipe
from tspvideo.runs.steps import PreparedDataset, initial_encoder


def _evaluate_in_process(threads: int, folder: str, data: PreparedDataset, config, index: int, seconds) -> None:
    torch.set_num_threads(threads)
    work = Path(folder) / f"eval_{threads}_{index}"
    started = time.perf_counter()
    evaluate_features(Path(folder) / "features", work, data.annotations, read_ground_truth(data.annotations), config, 0)
    seconds[index] = time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=80)
    parser.add_argument("--jobs", type=int, default=3, help="processes evaluating at once")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 16], help="threads per process, each a row")
    args = parser.parse_args()
    preset = PRESETS["cpu"]
    config = dataclasses.replace(preset, data=dataclasses.replace(preset.data, num_videos=args.videos), progress=False,
                                 workers=0)
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = prepare_data(folder, config)
        encoder = initial_encoder(config.backbone, None, 0, input_recipe(config))
        extract_features(data.video_files(), folder / "features", encoder, config, "cpu")
        print(f"{args.videos} synthetic videos, {config.backbone} features; {args.jobs} processes at once on "
              f"{torch.get_num_threads()} thread(s) of this machine\n")
        print("| threads per process | seconds per process (median) |")
        print("|---|---|")
        for threads in args.threads:
            seconds = context.Array("d", args.jobs)
            processes = [context.Process(target=_evaluate_in_process,
                                         args=(threads, str(folder), data, config,
                                               index, seconds)) for index in range(args.jobs)]
            with thread_environment(threads):
                for process in processes:
                    process.start()
            for process in processes:
                process.join()
            print(f"| {threads} | {statistics.median(seconds[:]):.1f} |", flush=True)


if __name__ == "__main__":
    main()
