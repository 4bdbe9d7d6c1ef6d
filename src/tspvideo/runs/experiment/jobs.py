"""Seeds of the experiment run side by side, one process each (``tspvideo experiment --jobs N``).

A seed's steps are small (tiny clips, small batches): one process keeps a GPU busy only a fraction of the
time, launching kernels and waiting for its own probe. Several seeds in separate processes share the
device and the cores; each seed computes exactly what it computes alone (same seeds, same data), so the
numbers do not depend on ``jobs``. Each process writes its output to ``seed_N/log.txt``; the parent prints
one line per seed started or finished. A seed that fails stops nothing else: the others finish and keep
their outputs, then the experiment stops with an error naming the failed seed(s) and their logs.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import torch

from tspvideo.core.errors import TspVideoError
from tspvideo.runs.experiment.config import ExperimentConfig
from tspvideo.runs.experiment.seed import METRICS_NAME, read_seed_metrics, run_seed, seed_dir
from tspvideo.runs.steps import PreparedDataset

LOG_NAME = "log.txt"
# Lines of a failed seed's log printed with the error.
FAILURE_TAIL_LINES = 15


# Thread pools of the libraries under torch and numpy (OpenMP, OpenBLAS, MKL): sized when they load, so
# they are set in the environment a seed's process starts with.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def threads_per_job(jobs: int) -> int:
    """CPU threads each seed's process may use: this process's share, at least one."""
    return max(1, torch.get_num_threads() // max(1, jobs))


@contextmanager
def thread_environment(threads: int) -> Iterator[None]:
    """The thread-count variables set to ``threads`` while processes are started, then restored.

    Without them every seed's process would size its numpy and OpenMP pools for the whole machine:
    several such processes at once oversubscribe the cores.
    """
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _seed_process(seed: int, out: Path, data: PreparedDataset, config: ExperimentConfig, threads: int) -> None:
    """Entry point of one seed's process: its output to ``seed_N/log.txt``, exit code 1 on any error."""
    folder = seed_dir(out, seed)
    folder.mkdir(parents=True, exist_ok=True)
    log = open(folder / LOG_NAME, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 (open for the process)
    # File descriptors too, so that what native code prints lands in the log as well.
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    torch.set_num_threads(threads)
    print(f"seed {seed}: process {os.getpid()}, torch threads {torch.get_num_threads()}, "
          + ", ".join(f"{name}={os.environ.get(name)}" for name in THREAD_VARIABLES), flush=True)
    try:
        run_seed(seed, out, data, config)
    except BaseException:  # noqa: BLE001 - any failure is written to the log and becomes the exit code
        traceback.print_exc()
        log.flush()
        os._exit(1)
    log.flush()


def _tail(path: Path, lines: int = FAILURE_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def run_seeds_in_processes(seeds: tuple[int, ...], out: Path, data: PreparedDataset, config: ExperimentConfig,
                           jobs: int) -> dict[int, dict[str, dict[str, Any]]]:
    """Run every seed's steps, at most ``jobs`` processes at a time; returns ``{seed: seed_N/metrics.json}``.

    Raises :class:`TspVideoError` after every seed has stopped when one or more failed.
    """
    context = multiprocessing.get_context("spawn")  # CUDA cannot be used in a forked child
    threads = threads_per_job(jobs)
    pending = list(seeds)
    running: dict[int, tuple[Any, float]] = {}
    failed: list[int] = []
    print(f"   {len(seeds)} seed(s), {jobs} at a time, {threads} CPU thread(s) each; each seed's output goes to "
          f"{out}/seed_N/{LOG_NAME}", flush=True)
    while pending or running:
        while pending and len(running) < jobs:
            seed = pending.pop(0)
            process = context.Process(target=_seed_process, name=f"tspvideo-seed-{seed}",
                                      args=(seed, out, data, config, threads))
            with thread_environment(threads):
                process.start()
            running[seed] = (process, time.perf_counter())
            print(f"   seed {seed}: started", flush=True)
        wait([process.sentinel for process, _ in running.values()])
        for seed, (process, started) in list(running.items()):
            if process.exitcode is None:
                continue
            process.join()
            del running[seed]
            seconds = time.perf_counter() - started
            if process.exitcode == 0 and (seed_dir(out, seed) / METRICS_NAME).is_file():
                print(f"   seed {seed}: finished in {seconds:.0f} s", flush=True)
            else:
                failed.append(seed)
                log_path = seed_dir(out, seed) / LOG_NAME
                print(f"   seed {seed}: FAILED after {seconds:.0f} s (exit code {process.exitcode}); "
                      f"end of {log_path}:\n{_tail(log_path)}", file=sys.stderr, flush=True)
    if failed:
        logs = ", ".join(str(seed_dir(out, seed) / LOG_NAME) for seed in failed)
        raise TspVideoError(f"seed(s) {', '.join(map(str, failed))} failed (see {logs}); the other seeds' outputs "
                            "are kept: rerun the same command to continue")
    return {seed: read_seed_metrics(out, seed) for seed in seeds}
