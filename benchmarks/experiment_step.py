"""Model-only training step and inference of the experiment's encoders (AdamW, bf16 on CUDA), on random tensors.

The step is the training loop's: autocast (bf16 on CUDA), channels_last, both heads with a GVF, equation
(1) loss, backward, AdamW, and the loss read back every step (the loop logs it). No data loading: compare
with the loop's clips/s to see whether the loader or the device sets the pace.

    python benchmarks/experiment_step.py --device cuda
    python benchmarks/experiment_step.py --device cpu --steps 2 --cases r2plus1d_18:8:56:32

Prints one line per case: ms per training step and clips/s, and inference clips/s at batch 64.
"""

from __future__ import annotations

import argparse
import time

import torch

from tspvideo.core.precision import autocast
from tspvideo.train import tsp_loss
from tspvideo.train.run import build_model, parameter_groups

# backbone:frames:crop:batch; the experiment's GPU preset and its S3D run.
DEFAULT_CASES = ("r2plus1d_18:8:56:32", "r2plus1d_18:8:56:64", "s3d:16:224:16")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_case(backbone: str, frames: int, crop: int, batch: int, device: torch.device, steps: int) -> str:
    """One case's line: training step and inference speed."""
    amp = "bf16" if device.type == "cuda" else None
    model = build_model(backbone, ("action", "region"), 4, "max", weights="none").to(device)
    model = model.to(memory_format=torch.channels_last_3d)
    optimizer = torch.optim.AdamW(parameter_groups(model, 1e-3, 1e-3, False), lr=1e-3)
    dim = model.feature_dim

    def inputs(size: int) -> tuple[torch.Tensor, torch.Tensor]:
        clips = torch.randn(size, 3, frames, crop, crop, device=device)
        return clips.contiguous(memory_format=torch.channels_last_3d), torch.randn(size, dim, device=device)

    clips, gvf = inputs(batch)
    action = torch.randint(-1, 4, (batch,), device=device)
    region = (action >= 0).long()

    def step() -> float:
        with autocast(device, amp):
            outputs = model(clips, gvf)
        loss, _ = tsp_loss(outputs, action, region)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    for _ in range(3):
        step()
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    train_ms = (time.perf_counter() - started) / steps * 1000

    model.eval()
    clips64, gvf64 = inputs(64)
    with torch.inference_mode(), autocast(device, amp):
        for _ in range(2):
            model(clips64, gvf64)
        _sync(device)
        started = time.perf_counter()
        repeats = max(1, steps // 2)
        for _ in range(repeats):
            model(clips64, gvf64)
        _sync(device)
    eval_ms = (time.perf_counter() - started) / repeats * 1000
    return (f"{backbone} {frames}x{crop}x{crop} batch {batch}: train {train_ms:.1f} ms/step "
            f"({batch / train_ms * 1000:.0f} clips/s); inference batch 64 {eval_ms:.1f} ms "
            f"({64 / eval_ms * 1000:.0f} clips/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=25, help="timed training steps per case")
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES), metavar="BACKBONE:FRAMES:CROP:BATCH")
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{name}, torch {torch.__version__}, {'bf16 autocast' if device.type == 'cuda' else 'float32'}, "
          "channels_last, AdamW")
    for case in args.cases:
        backbone, frames, crop, batch = case.split(":")
        print(time_case(backbone, int(frames), int(crop), int(batch), device, args.steps), flush=True)


if __name__ == "__main__":
    main()
