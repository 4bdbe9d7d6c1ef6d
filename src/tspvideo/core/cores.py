"""CPU cores: how many this process may use, and the data-loading workers that follow from them.

Light (no torch): the command line states the defaults in its help.
"""

from __future__ import annotations

import os


def cpu_share() -> int:
    """CPU cores this process may use: those it is allowed to run on, shared among the local ranks
    when launched by torchrun (``LOCAL_WORLD_SIZE``), so that ranks do not oversubscribe the machine."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        ranks = 1
    return max(1, cores // ranks)


# The most loader workers by default: the original's training data loading, enough for a GPU on short clips.
MAX_LOADER_WORKERS = 4


def default_loader_workers(cores: int | None = None) -> int:
    """Clip-loading worker processes of ``train`` and ``eval clips`` by default: ``min(4, cores - 1)``.

    One core stays with the process that runs the model (and PyTorch warns when the workers outnumber the
    cores); on one core clips load in the main process (0). ``cores``: :func:`cpu_share` when ``None``.
    """
    cores = cpu_share() if cores is None else cores
    return max(0, min(MAX_LOADER_WORKERS, cores - 1))
