"""Does the training input starve the device? One measured verdict per run, and one line saying what to do.

Each training step is two phases: waiting for the loader's next batch, and the step itself (copy to the device,
forward, loss, backward, update; the loop reads the loss back every step, so on a GPU the step's wall time is
the device's time). :class:`InputCheck` skips the first batches (worker start-up, first seeks, kernel
selection), then sums both phases over the next batches and decides once:

- the device's busy share is ``step / (wait + step)``, the fraction of the time the device works;
- the input is the bottleneck when the loader wait exceeds the step (busy share below 0.5,
  :data:`BUSY_THRESHOLD`): a faster input would then more than double the training speed, which pays for a
  one-off transcode of the folder. Above it the gain is under 2x, and a few slow seeks or an epoch start
  already give some wait, so a warning there would fire on inputs that are fine.

The numbers in the line are the measured ones; the remedy's factor is the one measured on this project's
files (docs/training.md, "Training at full speed").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("tspvideo.train")

# Below this busy share the loader wait is larger than the step: the input more than halves the speed.
BUSY_THRESHOLD = 0.5
# Clips per loader worker, `tspvideo transcode`'s defaults over the originals: 640x360 h264 with a keyframe every
# 250 frames, 11.8 -> 69.3 clips per CPU-second (benchmarks/RESULTS.md, "Input paths on realistic files").
TRANSCODE_SPEEDUP = 6


@dataclass(frozen=True)
class InputVerdict:
    """What :class:`InputCheck` measured: loader wait and step time summed over ``batches`` batches."""

    wait_s: float
    step_s: float
    batches: int

    @property
    def busy_share(self) -> float:
        """Fraction of the time the device computes (1.0 when nothing was measured)."""
        total = self.wait_s + self.step_s
        return self.step_s / total if total > 0 else 1.0

    @property
    def input_bound(self) -> bool:
        """Whether the loader wait dominates the step (busy share below :data:`BUSY_THRESHOLD`)."""
        return self.batches > 0 and self.busy_share < BUSY_THRESHOLD


def input_bound_message(verdict: InputVerdict, device: str, workers: int, frame_cache: bool) -> str:
    """The one line ``tspvideo train`` prints for an input-bound run: measured numbers, then what to do."""
    wait_ms = 1000 * verdict.wait_s / verdict.batches
    step_ms = 1000 * verdict.step_s / verdict.batches
    remedies = []
    if not frame_cache:
        remedies.append(f"`tspvideo transcode VIDEOS OUT` read clips ~{TRANSCODE_SPEEDUP}x faster per worker on "
                        "640x360 files with a keyframe every 250 frames")
        remedies.append("--frame-cache-dir DIR decodes each video once")
    remedies.append(f"more --workers than {workers}" if workers else "--workers N")
    return (f"input-bound: the {device} is busy {100 * verdict.busy_share:.0f} % of the step (loader wait "
            f"{wait_ms:.0f} ms, compute {step_ms:.0f} ms per batch, over {verdict.batches} batches); "
            f"{'; '.join(remedies)}; see docs/training.md, \"Training at full speed\"")


class InputCheck:
    """Collects loader-wait and step times batch by batch and gives its verdict once.

    The training loop calls ``start`` before its first ``next(loader)``, ``batch_ready`` when a batch arrives
    and ``step_done`` after the step; the times come from ``clock`` (``time.perf_counter``; tests pass their
    own). ``record`` takes the two times directly. The verdict comes when ``warmup`` batches were skipped and
    ``measure`` batches timed; ``finish`` (at the epoch's end) gives it from what was timed if at least
    ``min_measured`` batches were, so a short first epoch still gets one. After a verdict nothing is recorded.
    """

    def __init__(self, warmup: int = 5, measure: int = 20, min_measured: int = 3,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if warmup < 0 or measure < 1 or min_measured < 1:
            raise ValueError(f"warmup >= 0, measure >= 1 and min_measured >= 1, got {warmup}, {measure}, "
                             f"{min_measured}")
        self.warmup, self.measure, self.min_measured = warmup, measure, min_measured
        self.clock = clock
        self.seen = 0
        self.wait_s = self.step_s = 0.0
        self.done = False
        self._mark = self._wait = 0.0

    def start(self) -> None:
        """The loader is asked for its first batch now."""
        self._mark = self.clock()

    def batch_ready(self) -> None:
        """A batch arrived: the time since ``start`` or the last ``step_done`` was loader wait."""
        now = self.clock()
        self._wait, self._mark = now - self._mark, now

    def step_done(self) -> InputVerdict | None:
        """The step on that batch ended; the verdict when the measurement is complete."""
        now = self.clock()
        step, self._mark = now - self._mark, now
        return self.record(self._wait, step)

    @classmethod
    def for_workers(cls, workers: int, **kwargs) -> InputCheck:
        """A check sized for ``workers`` loader processes: they start together, so their first batches arrive
        at once and do not show the steady state; skip that many, then time two rounds of them."""
        return cls(warmup=max(5, workers), measure=max(20, 2 * workers), **kwargs)

    def record(self, wait_s: float, step_s: float) -> InputVerdict | None:
        """One batch's loader wait and step, in seconds; the verdict when the measurement is complete."""
        if self.done:
            return None
        self.seen += 1
        if self.seen <= self.warmup:
            return None
        self.wait_s += wait_s
        self.step_s += step_s
        if self.seen - self.warmup >= self.measure:
            return self._verdict()
        return None

    def finish(self) -> InputVerdict | None:
        """The verdict from the batches timed so far (None when fewer than ``min_measured`` or already given)."""
        if self.done or self.seen - self.warmup < self.min_measured:
            return None
        return self._verdict()

    def _verdict(self) -> InputVerdict:
        self.done = True
        return InputVerdict(self.wait_s, self.step_s, self.seen - self.warmup)


def measured_epoch(start_epoch: int, epochs: int, frame_cache: bool) -> int:
    """The epoch whose input is checked: the run's first, or with a frame cache its second when there is one.

    A frame cache's first epoch decodes every video into the cache (about 3x slower than the epochs after it in the
    experiment's runs), so it would call a cached run input-bound for a cost paid once.
    """
    return start_epoch + 1 if frame_cache and start_epoch + 1 < epochs else start_epoch


def warn_if_input_bound(verdict: InputVerdict | None, device_type: str, loader) -> str | None:
    """Log :func:`input_bound_message` as a warning when ``verdict`` says input-bound; returns the line."""
    if verdict is None or not verdict.input_bound:
        return None
    dataset = getattr(loader, "dataset", None)
    cached = bool(getattr(dataset, "frame_cache_mb", 0)) or getattr(dataset, "frame_cache_dir", None) is not None
    device = {"cuda": "GPU", "cpu": "CPU", "mps": "GPU", "xpu": "XPU"}.get(device_type, device_type)
    message = input_bound_message(verdict, device, int(getattr(loader, "num_workers", 0)), cached)
    log.warning(message)
    return message
