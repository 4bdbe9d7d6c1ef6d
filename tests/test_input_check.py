"""`tspvideo train` says, once, when its input starves the device: the measurement, the decision, the line."""

from __future__ import annotations

import logging
import re

import pytest
import torch
from helpers import tiny_create_model

from tspvideo import train
from tspvideo.train.input_check import (
    BUSY_THRESHOLD,
    InputCheck,
    InputVerdict,
    input_bound_message,
    measured_epoch,
)


class FakeClock:
    """A clock the fake loader and the model's forward advance: deterministic loader wait and step times."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TimedLoader:
    """Batches that each take ``wait_s`` of the clock to arrive (after ``first_wait_s`` for the first)."""

    def __init__(self, batches: list[dict], clock: FakeClock, wait_s: float, first_wait_s: float,
                 num_workers: int = 2) -> None:
        self.batches, self.clock, self.wait_s, self.first_wait_s = batches, clock, wait_s, first_wait_s
        self.num_workers = num_workers

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for i, batch in enumerate(self.batches):
            self.clock.now += self.first_wait_s if i == 0 else self.wait_s
            yield batch


def _epoch(clock: FakeClock, loader: TimedLoader, step_s: float, check: InputCheck | None) -> dict:
    torch.manual_seed(0)
    model = tiny_create_model("r3d_18", num_classes=3, heads=("action", "region"), gvf="max")

    def advance(*_):  # the step's compute, as the clock sees it
        clock.now += step_s

    model.register_forward_pre_hook(advance)
    optimizer = torch.optim.SGD(train.parameter_groups(model, 0.01, 0.01, freeze_stem=False), momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return train.train_one_epoch(model, loader, optimizer, scheduler, torch.amp.GradScaler("cpu", enabled=False),
                                 torch.device("cpu"), epoch=0, epochs=1, batch_size=2, show_progress=False,
                                 input_check=check)


def _batches(n: int) -> list[dict]:
    return [{"clip": torch.randn(2, 3, 4, 16, 16), "gvf": torch.randn(2, 512), "action": torch.tensor([0, -1]),
             "region": torch.tensor([0, 1]), "replaced": torch.zeros(2)} for _ in range(n)]


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "input-bound" in r.getMessage()]


def test_a_slow_loader_gets_one_line_with_the_measured_numbers(caplog):
    clock = FakeClock()
    # 800 ms per batch from the loader against a 75 ms step (the H200 run's numbers); the first batch's 30 s
    # (worker start-up) falls in the skipped warm-up.
    loader = TimedLoader(_batches(12), clock, wait_s=0.8, first_wait_s=30.0)
    check = InputCheck(warmup=2, measure=6, clock=clock)
    with caplog.at_level(logging.WARNING, logger="tspvideo.train"):
        _epoch(clock, loader, step_s=0.075, check=check)
    lines = _warnings(caplog)
    assert len(lines) == 1, lines  # once, though 12 batches ran and the epoch ended
    line = lines[0]
    assert "busy 9 %" in line and "loader wait 800 ms" in line and "compute 75 ms" in line, line
    assert "over 6 batches" in line and "tspvideo transcode VIDEOS OUT" in line and "more --workers than 2" in line
    assert "\n" not in line


def test_a_fast_loader_gets_no_line(caplog):
    clock = FakeClock()
    loader = TimedLoader(_batches(12), clock, wait_s=0.002, first_wait_s=30.0)
    check = InputCheck(warmup=2, measure=6, clock=clock)
    with caplog.at_level(logging.WARNING, logger="tspvideo.train"):
        _epoch(clock, loader, step_s=0.075, check=check)
    assert _warnings(caplog) == []
    assert check.done  # it measured and decided: fast input


def test_a_short_epoch_decides_at_its_end_and_a_shorter_one_not_at_all(caplog):
    clock = FakeClock()
    with caplog.at_level(logging.WARNING, logger="tspvideo.train"):
        _epoch(clock, TimedLoader(_batches(5), clock, 0.5, 0.5), 0.1, InputCheck(warmup=2, measure=20, clock=clock))
        assert [re.search(r"over (\d+) batches", line)[1] for line in _warnings(caplog)] == ["3"]
        caplog.clear()
        _epoch(clock, TimedLoader(_batches(4), clock, 0.5, 0.5), 0.1, InputCheck(warmup=2, measure=20, clock=clock))
        assert _warnings(caplog) == []  # two timed batches are too few to say


def test_record_skips_the_warm_up_and_sums_what_follows():
    check = InputCheck(warmup=3, measure=4)
    for _ in range(3):
        assert check.record(50.0, 0.01) is None  # start-up waits are not counted
    verdicts = [check.record(wait, step) for wait, step in [(0.3, 0.1), (0.5, 0.1), (0.1, 0.1), (0.3, 0.1)]]
    assert verdicts[:3] == [None, None, None]
    verdict = verdicts[3]
    assert verdict == InputVerdict(pytest.approx(1.2), pytest.approx(0.4), 4)
    assert verdict.busy_share == pytest.approx(0.25) and verdict.input_bound
    assert check.record(9.0, 0.1) is None and check.finish() is None  # one verdict per check


@pytest.mark.parametrize(("wait", "step", "bound"), [(0.8, 0.075, True), (0.11, 0.1, True), (0.1, 0.1, False),
                                                     (0.05, 0.1, False), (0.0, 0.1, False)])
def test_the_input_is_the_bottleneck_when_its_wait_exceeds_the_step(wait, step, bound):
    verdict = InputVerdict(wait_s=10 * wait, step_s=10 * step, batches=10)
    assert verdict.input_bound is bound
    assert (verdict.busy_share < BUSY_THRESHOLD) is bound


def test_the_line_suggests_what_applies():
    verdict = InputVerdict(wait_s=4.0, step_s=1.0, batches=10)
    cached = input_bound_message(verdict, "GPU", workers=14, frame_cache=True)
    assert cached.startswith("input-bound: the GPU is busy 20 % of the step (loader wait 400 ms, compute 100 ms")
    assert "transcode" not in cached and "more --workers than 14" in cached
    assert "--workers N" in input_bound_message(verdict, "CPU", workers=0, frame_cache=False)


def test_for_workers_skips_their_first_round():
    check = InputCheck.for_workers(14)
    assert check.warmup == 14 and check.measure == 28
    assert (InputCheck.for_workers(0).warmup, InputCheck.for_workers(0).measure) == (5, 20)
    with pytest.raises(ValueError):
        InputCheck(measure=0)


class AlternatingClock:
    """Readings that advance 0.8 s, then 0.075 s, in turn after the first: to the loop (readings: start, batch ready,
    step done, batch ready, ...) every batch waited 800 ms for the loader and took 75 ms to step."""

    def __init__(self) -> None:
        self.now, self.calls = 0.0, 0

    def __call__(self) -> float:
        self.now += 0.8 if self.calls % 2 == 1 else 0.075
        self.calls += 1
        return self.now


@pytest.fixture
def timed_checks(monkeypatch) -> list[int]:
    """Training's input checks measure the :class:`AlternatingClock` after one warm-up batch; the list gets the
    loader workers of each check made (one per epoch checked)."""
    from tspvideo.train import run

    made: list[int] = []

    def for_workers(workers: int, **_) -> InputCheck:
        made.append(workers)
        return InputCheck(warmup=1, measure=2, clock=AlternatingClock())

    monkeypatch.setattr(run.InputCheck, "for_workers", staticmethod(for_workers))
    return made


def test_train_checks_its_first_epoch_once_and_prints_the_line(data, tmp_path, timed_checks):
    from helpers import tiny_train, train_config

    made = timed_checks
    tiny_train(train_config(data, tmp_path / "run", epochs=2))
    assert made == [0]  # the first epoch only, with the run's loader workers
    log = (tmp_path / "run" / "train.log").read_text()
    lines = [line for line in log.splitlines() if "input-bound" in line]
    assert len(lines) == 1, lines
    assert "busy 9 %" in lines[0] and "loader wait 800 ms, compute 75 ms per batch, over 2 batches" in lines[0]


@pytest.mark.parametrize(("start", "epochs", "cache", "expected"),
                         [(0, 5, False, 0), (0, 5, True, 1), (3, 5, True, 4), (4, 5, True, 4), (0, 1, True, 0)])
def test_a_frame_cache_is_checked_after_the_epoch_that_fills_it(start, epochs, cache, expected):
    assert measured_epoch(start, epochs, cache) == expected


def test_train_with_a_frame_cache_checks_its_second_epoch(data, tmp_path, timed_checks):
    from helpers import tiny_train, train_config

    made = timed_checks
    tiny_train(train_config(data, tmp_path / "run", epochs=2, frame_cache_dir=tmp_path / "cache"))
    assert made == [0]
    log = (tmp_path / "run" / "train.log").read_text().splitlines()
    warning = next(i for i, line in enumerate(log) if "input-bound" in line)
    first_epoch = next(i for i, line in enumerate(log) if "epoch 1/2" in line)
    assert warning > first_epoch and "--frame-cache-dir" not in log[warning]
