"""Memory and speed of one TSP training step of the ViT encoders (VideoMAE ViT-B/L, V-JEPA 2 ViT-L).

The real-size models are built from their configurations with seeded random weights (no download). One step is
what ``tspvideo train`` does per batch: forward through the backbone and both TSP heads (region head with a GVF),
the loss, backward, AdamW over the layer-decayed parameter groups (drop path 0.1). Clips are random, of the
backbone's recipe size. Each row runs in a fresh process, so its peak memory is its own: on the CPU the peak
resident set (``ru_maxrss``), on a GPU ``torch.cuda.max_memory_allocated``.

    python benchmarks/vit_train.py                                   # CPU: ViT-B and ViT-L, batch 1
    python benchmarks/vit_train.py --backbones videomae_b_ft --batch-sizes 1 2 --checkpointing both
    python benchmarks/vit_train.py --device cuda --batch-sizes 8 16 32 --precision bf16 --checkpointing both
    python benchmarks/vit_train.py --device cuda --max-batch --precision bf16   # largest batch that fits

Each row: one warm-up step, then the median of ``--repeats`` timed steps.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch


def run_row(backbone: str, batch: int, checkpointing: bool, precision: str, device_name: str,
            repeats: int) -> dict:
    """One configuration, in this process: seconds per step (median), peak memory (GiB)."""
    from tspvideo.core.devices import resolve_device
    from tspvideo.models.weights import default_recipe
    from tspvideo.train.loop import tsp_loss
    from tspvideo.train.run import build_model, parameter_groups

    device = torch.device(resolve_device(device_name))
    torch.manual_seed(0)
    recipe = default_recipe(backbone)
    model = build_model(backbone, ("action", "region"), 200, "max", weights="none", grad_checkpointing=checkpointing,
                        drop_path=0.1).to(device).train()
    groups = parameter_groups(model, 1e-4, 1e-3, True, layer_decay=0.75)
    optimizer = torch.optim.AdamW(groups, lr=1e-3, weight_decay=0.05)
    dim = model.feature_dim
    clips = torch.randn(batch, 3, recipe.clip_len, *recipe.crop, device=device)
    gvf = torch.randn(batch, dim, device=device)
    action = torch.randint(0, 200, (batch,), device=device)
    region = torch.randint(0, 2, (batch,), device=device)
    dtype = torch.bfloat16 if precision == "bf16" else None

    def step() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss, _ = tsp_loss(model(clips, gvf), action, region)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step()
    times = [step() for _ in range(repeats)]
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return {"backbone": backbone, "batch": batch, "checkpointing": checkpointing, "precision": precision,
            "clip": f"{recipe.clip_len}x{recipe.crop[0]}x{recipe.crop[1]}", "params_m": round(params, 1),
            "step_s": statistics.median(times), "clips_per_s": batch / statistics.median(times), "peak_gib": peak,
            "timed": len(times)}


def in_subprocess(args: argparse.Namespace, backbone: str, batch: int, checkpointing: bool) -> dict | None:
    """:func:`run_row` in a fresh process (its own peak memory); None when it ran out of memory."""
    command = [sys.executable, __file__, "--row", backbone, str(batch), str(int(checkpointing)), "--precision",
               args.precision, "--device", args.device, "--repeats", str(args.repeats), "--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        if "out of memory" in done.stderr.lower():
            return None
        raise SystemExit(f"{backbone} batch {batch}: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def largest_batch(args: argparse.Namespace, backbone: str, checkpointing: bool) -> tuple[int, dict | None]:
    """The largest batch (powers of two, then the steps between) whose training step fits on the device."""
    fits, row, batch = 0, None, 1
    while (result := in_subprocess(args, backbone, batch, checkpointing)) is not None and batch <= 4096:
        fits, row, batch = batch, result, batch * 2
    step = max(fits // 4, 1)
    candidate = fits + step
    while fits and candidate < batch and (result := in_subprocess(args, backbone, candidate, checkpointing)):
        fits, row, candidate = candidate, result, candidate + step
    return fits, row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["videomae_b_ft", "videomae_l_ft"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1])
    parser.add_argument("--checkpointing", choices=["off", "on", "both"], default="both")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--max-batch", action="store_true", help="find the largest batch that fits (GPU)")
    parser.add_argument("--row", nargs=3, metavar=("BACKBONE", "BATCH", "CHECKPOINTING"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.row:
        print(json.dumps(run_row(args.row[0], int(args.row[1]), bool(int(args.row[2])), args.precision, args.device,
                                 args.repeats)))
        return
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.checkpointing]
    memory = "peak GPU memory (GiB)" if args.device.startswith("cuda") else "peak RSS (GiB)"
    print(f"| backbone | params (M) | clip (TxHxW) | precision | checkpointing | batch | s/step (median) | clips/s | "
          f"{memory} |")
    print("|---|---|---|---|---|---|---|---|---|")
    for backbone in args.backbones:
        for checkpointing in modes:
            if args.max_batch:
                fits, row = largest_batch(args, backbone, checkpointing)
                rows = [row] if row else []
                print(f"<!-- {backbone} checkpointing {'on' if checkpointing else 'off'}: largest batch {fits} -->")
            else:
                rows = [in_subprocess(args, backbone, batch, checkpointing) for batch in args.batch_sizes]
            for row in rows:
                if row is None:
                    continue
                print(f"| {row['backbone']} | {row['params_m']} | {row['clip']} | {row['precision']} | "
                      f"{'on' if row['checkpointing'] else 'off'} | {row['batch']} | {row['step_s']:.2f} | "
                      f"{row['clips_per_s']:.3f} | {row['peak_gib']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
