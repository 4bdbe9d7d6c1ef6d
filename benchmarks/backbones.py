"""Every backbone: parameters, GFLOPs per clip and model-only clips/s (forward pass, no decoding).

GFLOPs are counted by ``torch.utils.flop_counter`` (a multiply-add = 2 FLOPs) on shapes only, at the
benchmark's clip size and at the backbone's own recipe. Speed is the forward pass of the bare backbone
(float32, ``torch.inference_mode``) on random clips of the given size, seeded random weights.

    python benchmarks/backbones.py                        # CPU, 16-frame clips at each recipe's crop, batch 1
    python benchmarks/backbones.py --frames recipe        # each backbone at its own recipe's clip length
    python benchmarks/backbones.py --batch-sizes 1 2 4 --repeats 5 --backbones swin3d_t mvit_v2_s

16-frame clips (the TSP grid's length, and what torchvision's FLOP tables quote) keep the CPU run short
and the backbones comparable; S3D's and Swin's recipes use 128 and 32 frames, which cost about 8x and
2x as much per clip. Each row: one warm-up batch, then the median of ``--repeats`` timed batches, which
stops early once ``--max-seconds`` are spent on the row (the row says how many batches were timed).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from tspvideo.core.devices import resolve_device
from tspvideo.models.backbones import available_backbones, backbone_spec, check_input_size, create_backbone
from tspvideo.models.flops import clip_gflops
from tspvideo.models.weights import default_recipe


def clip_shape(backbone: str, frames: str) -> tuple[int, int, int]:
    """(T, H, W) of one benchmark clip: the recipe's crop, and its length or ``frames``."""
    recipe = default_recipe(backbone)
    length = recipe.clip_len if frames == "recipe" else int(frames)
    return length, recipe.crop[0], recipe.crop[1]


def time_forward(model: torch.nn.Module, clips: torch.Tensor, device: torch.device, repeats: int,
                 max_seconds: float) -> list[float]:
    """Seconds of each timed forward pass (after one warm-up pass)."""
    def once() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        model(clips)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    with torch.inference_mode():
        once()
        times: list[float] = []
        while len(times) < repeats and (not times or sum(times) < max_seconds):
            times.append(once())
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=available_backbones(), choices=available_backbones())
    parser.add_argument("--frames", default="16", help="frames per clip, or 'recipe' for each backbone's own")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1])
    parser.add_argument("--repeats", type=int, default=3, help="timed batches per row (median)")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="stop timing a row after this long")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(resolve_device(args.device))
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}, float32, "
          f"clips of {args.frames} frames")
    print("| backbone | dim | params (M) | clip (TxHxW) | GFLOPs/clip | GFLOPs/clip at recipe (TxHxW) | batch "
          "| clips/s (median) | timed batches |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.backbones:
        length, height, width = clip_shape(name, args.frames)
        check_input_size(name, length, (height, width))
        recipe = default_recipe(name)
        gflops = clip_gflops(name, length, (height, width))
        recipe_gflops = clip_gflops(name, recipe.clip_len, recipe.crop)
        torch.manual_seed(0)
        model = create_backbone(name).eval().to(device)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        for batch in args.batch_sizes:
            clips = torch.randn(batch, 3, length, height, width, device=device)
            times = time_forward(model, clips, device, args.repeats, args.max_seconds)
            rate = batch / statistics.median(times)
            print(f"| {name} | {backbone_spec(name).feature_dim} | {params:.1f} | {length}x{height}x{width} "
                  f"| {gflops:.1f} | {recipe_gflops:.1f} ({recipe.clip_len}x{recipe.crop[0]}x{recipe.crop[1]}) "
                  f"| {batch} | {rate:.2f} | {len(times)} |", flush=True)
        del model


if __name__ == "__main__":
    main()
