"""Arguments shared by commands that run an encoder (extract, gvf): which weights, how to run them."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from tspvideo.data.transforms import Preprocessing
from tspvideo.data.video import BACKENDS
from tspvideo.errors import TspVideoError
from tspvideo.extract import ClipSettings, failures_path
from tspvideo.models.backbones import available_backbones, check_input_size
from tspvideo.models.tsp import TSPModel, create_model
from tspvideo.models.weights import WEIGHTS, InputRecipe, default_recipe, load_model
from tspvideo.streaming import cpu_share

# Clips per forward pass by default. On a CPU, extracting with R(2+1)D-18 at batch 32 peaked at 4.3 GiB,
# at batch 8 at 1.7 GiB (benchmarks/RESULTS.md): 8 keeps a laptop safe; a GPU wants big batches.
GPU_BATCH_SIZE = 32
CPU_BATCH_SIZE = 8


def add_encoder_args(parser: argparse.ArgumentParser) -> None:
    """Add the weights, clip grid and runtime options."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="registered weights name (see `tspvideo models`) or a URL")
    source.add_argument("--checkpoint", help="local checkpoint file (released layout or a tspvideo run)")
    source.add_argument("--random-init", metavar="BACKBONE", choices=available_backbones(),
                        help="random weights (for trying the pipeline; features are meaningless)")
    parser.add_argument("--gvf-pool", choices=["max", "avg"], default=None,
                        help="GVF pooling of an unregistered TSP checkpoint (not stored in released files)")
    grid = parser.add_argument_group("clip grid")
    grid.add_argument("--clip-len", type=int, default=None,
                      help="frames per clip (L); default: the weights' recipe (see `tspvideo models`)")
    grid.add_argument("--fps", type=float, default=None,
                      help="frames per second clips are sampled at; default: the weights' recipe")
    grid.add_argument("--stride", type=int, default=16, help="frames between the starts of consecutive clips")
    run = parser.add_argument_group("runtime")
    run.add_argument("--batch-size", type=int, default=None,
                     help=f"clips per forward pass (default: {GPU_BATCH_SIZE} on a GPU, {CPU_BATCH_SIZE} on a CPU, "
                          "where a batch of 32 clips of R(2+1)D needs several GB of memory)")
    run.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    run.add_argument("--workers", type=int, default=None,
                     help="decoding worker processes (0: in the main process; default: CPU cores - 2 with a GPU, "
                          "whose model outruns decoding, else 1, as the model needs the cores)")
    run.add_argument("--decode-threads", type=int, default=0,
                     help="FFmpeg threads per decoder (0: CPU cores / workers)")
    run.add_argument("--backend", choices=BACKENDS, default="pyav", help="video decoding backend")
    run.add_argument("--amp", choices=["bf16", "fp16"], default=None, help="autocast dtype (default: float32)")
    run.add_argument("--channels-last", action="store_true", help="channels_last_3d memory format")
    run.add_argument("--decoder-resize", action="store_true",
                     help="resize in the decoder (faster; features differ slightly from the reference path)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_accept_short_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--accept-short`` (commands that extract features)."""
    parser.add_argument("--accept-short", action="store_true",
                        help="keep the features of a video whose frames end more than max(1 s, 2%%) before the "
                             "duration its file declares (truncated or partly downloaded?), and say so in its "
                             "sidecar; by default such a video fails")


def report_extraction(command: str, report, out_dir: Path, shard_id: int = 0, num_shards: int = 1) -> None:
    """Print what an extraction did: counts, rate, re-extracted and short videos, where failures are listed."""
    rate = report.clips / report.seconds if report.seconds > 0 else 0.0
    refreshed = f" ({len(report.refreshed)} as their source file changed)" if report.refreshed else ""
    print(f"{command}: {len(report.written)} written{refreshed}, {len(report.skipped)} already done, "
          f"{len(report.failed)} failed; {report.clips} clips in {report.seconds:.1f} s ({rate:.1f} clips/s)")
    if report.short:
        print(f"{command}: {len(report.short)} video(s) shorter than their files declare kept (--accept-short); "
              "their sidecars say so")
    if report.failed:
        print(f"{command}: failures listed in {failures_path(out_dir, shard_id, num_shards)}")


def build_encoder(args: argparse.Namespace) -> tuple[TSPModel, dict]:
    """The model chosen by the arguments and its description for sidecars."""
    if args.random_init:
        print(f"warning: {args.random_init} with random weights: features are for testing only", file=sys.stderr)
        with torch.random.fork_rng():  # fixed random weights: a resumed run must continue with the same model
            torch.manual_seed(0)
            model = create_model(args.random_init, heads=("region",), gvf=None)
        return model.eval(), {"weights": "random-init", "backbone": args.random_init,
                              "model_config": model.config.to_dict(),
                              "recipe": default_recipe(args.random_init).to_dict()}
    source = args.model or args.checkpoint
    if not source:
        raise TspVideoError("choose the weights: --model NAME, --checkpoint PATH or --random-init BACKBONE")
    return load_model(source, gvf=args.gvf_pool)


def decode_workers(args: argparse.Namespace) -> int:
    """``--workers``, or its default for the device: cores - 2 on a GPU (measured best), else 1.

    Cores are this process's share (see :func:`cpu_share`), so torchrun ranks split the machine.
    """
    if args.workers is not None:
        if args.workers < 0:
            raise TspVideoError(f"--workers must be 0 or more, got {args.workers}")
        return args.workers
    if torch.device(args.device).type == "cpu":
        return 1
    return max(1, cpu_share() - 2)


def batch_size(args: argparse.Namespace) -> int:
    """``--batch-size``, or its default for the device (smaller on a CPU, to keep a laptop's memory safe)."""
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise TspVideoError(f"--batch-size must be 1 or more, got {args.batch_size}")
        return args.batch_size
    return CPU_BATCH_SIZE if torch.device(args.device).type == "cpu" else GPU_BATCH_SIZE


def runtime_options(args: argparse.Namespace, description: dict) -> dict:
    """Keyword arguments of :func:`tspvideo.extract.extract_dataset` from the runtime flags.

    Under torchrun each rank takes the GPU of its ``LOCAL_RANK``.
    """
    device = args.device
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    return {"batch_size": batch_size(args), "device": device, "num_workers": decode_workers(args),
            "amp": args.amp, "channels_last": args.channels_last, "backend": args.backend,
            "decode_threads": args.decode_threads, "decoder_resize": args.decoder_resize,
            "prep": preprocessing(description), "progress": not args.no_progress}


def clip_settings(args: argparse.Namespace, recipe: InputRecipe | None) -> ClipSettings:
    """The clip grid from the arguments, unset values from ``recipe`` (the paper's when None), validated."""
    recipe = recipe or default_recipe("r2plus1d_34")
    clip_len = args.clip_len if args.clip_len is not None else recipe.clip_len
    fps = args.fps if args.fps is not None else recipe.fps
    return ClipSettings(clip_len=clip_len, fps=fps, stride=args.stride)


def planned_recipe(args: argparse.Namespace) -> InputRecipe | None:
    """The weights' recipe when it is known before loading them (random init, registered names), else None."""
    if args.random_init:
        return default_recipe(args.random_init)
    if args.model in WEIGHTS:
        return WEIGHTS[args.model].recipe
    return None


def early_clip_settings(args: argparse.Namespace) -> ClipSettings | None:
    """Validate the grid options before any weights are loaded; the grid itself when already known."""
    recipe = planned_recipe(args)
    settings = clip_settings(args, recipe)
    known = recipe is not None or (args.clip_len is not None and args.fps is not None)
    return settings if known else None


def encoder_clip_settings(args: argparse.Namespace, model: torch.nn.Module, description: dict) -> ClipSettings:
    """The grid for the loaded encoder (its recipe fills what the options leave unset), checked against its
    architecture: an input it cannot take fails here, not once per video."""
    settings = clip_settings(args, encoder_recipe(description))
    if isinstance(model, TSPModel):
        check_input_size(model.config.backbone, settings.clip_len, preprocessing(description).crop)
    return settings


def encoder_recipe(description: dict) -> InputRecipe | None:
    """The input recipe of the weights: recorded, else their backbone's default; None for a bare module."""
    if description.get("recipe"):
        return InputRecipe.from_dict(description["recipe"])
    backbone = description.get("backbone") or (description.get("model_config") or {}).get("backbone")
    return default_recipe(backbone) if backbone else None


def preprocessing(description: dict) -> Preprocessing:
    """Frame transforms of the weights' recipe (the paper's for a bare module)."""
    recipe = encoder_recipe(description)
    return recipe.preprocessing if recipe else Preprocessing()
