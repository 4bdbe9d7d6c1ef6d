"""Training step speed: clips/s of ``tspvideo.train.train_one_epoch`` on in-memory batches (no decoding).

Runs the real training loop (forward, equation (1) loss, backward, SGD step, scheduler) for a TSP model
with both heads and a GVF, on random clips, with and without bf16 autocast and channels_last_3d.

    python benchmarks/train_step.py                                  # r2plus1d_18, 16x112x112, CPU
    python benchmarks/train_step.py --frames 8 --crop 56 --batch-size 8
    python benchmarks/train_step.py --device cuda --batch-size 32 --steps 20

Prints one row per configuration; clips/s counts the timed steps only (one warm-up step before).
"""

from __future__ import annotations

import argparse
import time

import torch

from tspvideo.core.devices import resolve_device
from tspvideo.core.errors import TspVideoError
from tspvideo.models.tsp import create_model
from tspvideo.train import WarmupMultiStep, parameter_groups, train_one_epoch


def fake_batches(count: int, batch_size: int, frames: int, crop: int, classes: int) -> list[dict]:
    """Random batches shaped like the training DataLoader's (half foreground, half background)."""
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(count):
        region = torch.arange(batch_size) % 2  # 0 = Action, 1 = No action
        action = torch.where(region == 0, torch.randint(0, classes, (batch_size,), generator=generator), -1)
        batches.append({"clip": torch.randn(batch_size, 3, frames, crop, crop, generator=generator),
                        "gvf": torch.randn(batch_size, 512, generator=generator), "action": action, "region": region,
                        "replaced": torch.zeros(batch_size, dtype=torch.long)})
    return batches


def run(args: argparse.Namespace, amp: str | None, channels_last: bool) -> float:
    """Clips/s of the timed steps of one configuration."""
    device = torch.device(resolve_device(args.device))
    torch.manual_seed(0)
    model = create_model(args.backbone, num_classes=200, heads=("action", "region"), gvf="max").to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    optimizer = torch.optim.SGD(parameter_groups(model, 1e-4, 2e-3, freeze_stem=True), momentum=0.9,
                                weight_decay=0.005)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupMultiStep(args.steps + 1, 0, [], 0.01))
    scaler = torch.amp.GradScaler(device.type, enabled=False)
    loop = {"epoch": 0, "epochs": 1, "batch_size": args.batch_size, "amp": amp, "channels_last": channels_last,
            "show_progress": False}
    warmup = fake_batches(1, args.batch_size, args.frames, args.crop, 200)
    train_one_epoch(model, warmup, optimizer, scheduler, scaler, device, **loop)
    batches = fake_batches(args.steps, args.batch_size, args.frames, args.crop, 200)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    stats = train_one_epoch(model, batches, optimizer, scheduler, scaler, device, **loop)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return stats["clips"] / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="r2plus1d_18")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--crop", type=int, default=112)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.backbone}, clips 3x{args.frames}x{args.crop}x{args.crop}, batch {args.batch_size}, "
          f"{args.steps} timed steps, device {args.device}, {torch.get_num_threads()} threads")
    print(f"{'amp':>6}  {'channels_last':>13}  {'clips/s':>8}")
    for amp, channels_last in ((None, False), ("bf16", False), (None, True), ("bf16", True)):
        try:
            rate = f"{run(args, amp, channels_last):>8.2f}"
        except TspVideoError as error:  # a non-finite loss: report it rather than stop the table
            rate = f"failed: {error}"
        print(f"{amp or 'fp32':>6}  {str(channels_last):>13}  {rate:>8}", flush=True)


if __name__ == "__main__":
    main()
