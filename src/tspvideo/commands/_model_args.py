"""Arguments shared by commands that run an encoder (extract, gvf): which weights, how to run them."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch

from tspvideo.commands import add_decode_threads, add_device, add_workers
from tspvideo.core.errors import TspVideoError
from tspvideo.core.precision import PRECISIONS, Precision, exact_float32, resolve_precision
from tspvideo.datasets.transforms import Preprocessing
from tspvideo.extract.run import PREPROCESS_ON_CHOICES, ClipSettings, failures_path
from tspvideo.extract.streaming import cpu_share
from tspvideo.models.backbones import available_backbones, check_input_size
from tspvideo.models.tsp import TSPModel, create_model
from tspvideo.models.weights import WEIGHTS, InputRecipe, default_recipe, load_model, read_checkpoint, resolve_weights
from tspvideo.video.colour import COLOUR_CONVERSIONS
from tspvideo.video.decode import BACKENDS, DEFAULT_SAMPLING, SAMPLING_RULES

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
    grid = parser.add_argument_group("clip grid (a tspvideo checkpoint's own by default: the clip length, fps, "
                                     "sampling rule and frame sizes it was trained with; else the weights' recipe, "
                                     "see `tspvideo models`)")
    grid.add_argument("--clip-len", type=int, default=None,
                      help="frames per clip (L) (default: the checkpoint's, else the weights' recipe)")
    grid.add_argument("--fps", type=float, default=None,
                      help="frames per second clips are sampled at (default: the checkpoint's, else the weights' "
                           "recipe)")
    grid.add_argument("--stride", type=int, default=None,
                      help="frames between the starts of consecutive clips (default: the clip length)")
    grid.add_argument("--sampling", choices=SAMPLING_RULES, default=None,
                      help="which source frames: ffmpeg-fps (the original's: as re-encoding to constant 30 fps with "
                           "FFmpeg's fps filter, then every second frame) or timestamp (last frame at or before j/fps) "
                           f"(default: the checkpoint's, else {DEFAULT_SAMPLING})")
    grid.add_argument("--force", action="store_true",
                      help="accept --clip-len / --fps / --sampling that contradict the checkpoint's training input "
                           "(recorded in the sidecar as input_overrides)")
    run = parser.add_argument_group("runtime")
    run.add_argument("--batch-size", type=int, default=None,
                     help=f"clips per forward pass (default: {GPU_BATCH_SIZE} on a GPU, {CPU_BATCH_SIZE} on a CPU, "
                          "where a batch of 32 clips of R(2+1)D needs several GB of memory)")
    add_device(run)
    add_workers(run, None, "decoding worker processes (default: CPU cores - 2 with a GPU, whose model outruns "
                           "decoding, else 1, as the model needs the cores; none beside --backend nvdec)")
    add_decode_threads(run, 0, "per decoder (0: CPU cores / workers)")
    run.add_argument("--backend", choices=[*BACKENDS, "nvdec"], default="pyav",
                     help="video decoding backend: pyav (default), torchcodec, or nvdec (the GPU's hardware decoder, "
                          'needs `pip install "tspvideo[nvdec]"`; a video NVDEC cannot decode, or of variable frame '
                          "rate, is decoded with PyAV, with a warning; --workers N adds N PyAV workers beside it, "
                          "none unless asked)")
    run.add_argument("--nvdec-sessions", type=int, default=4,
                     help="NVDEC decoders running at once with --backend nvdec (default: 4)")
    run.add_argument("--amp", choices=PRECISIONS, default="auto",
                     help="precision: auto (default: bf16 autocast where the device computes bf16 natively, i.e. "
                          "CUDA GPUs from compute capability 8.0 and CPUs with AVX-512 BF16/AMX, else float32), "
                          "or fp32, bf16, fp16")
    run.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                     help="channels_last_3d memory format (default: on with bf16, off with float32)")
    run.add_argument("--exact", action="store_true",
                     help="the reference path: float32, contiguous layout, frames resized after RGB conversion "
                          "(what the original ran; slower where bf16 is native); TF32 off on GPUs")
    run.add_argument("--decoder-resize", action="store_true",
                     help="resize in the decoder (faster; features differ slightly from the reference path)")
    add_preprocess_on_arg(run)
    run.add_argument("--colour", choices=["auto", *COLOUR_CONVERSIONS], default="auto",
                     help="where YUV frames become RGB: decoder (FFmpeg's swscale in the workers, the reference) "
                          "or device (the workers ship the decoder's 4:2:0 planes, half the bytes, and the model's "
                          "device converts them: decode workers run ~2x faster; RGB within 1 of 255 on average) "
                          "(auto: device when frames are preprocessed on the device, i.e. on CUDA; --exact: decoder)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_preprocess_on_arg(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add ``--preprocess-on`` (extract, gvf, train, evaluate: one name, one meaning)."""
    parser.add_argument("--preprocess-on", choices=PREPROCESS_ON_CHOICES, default="auto",
                        help="where frames are converted to float, resized, normalised and cropped: in the decode "
                             "workers, or on the model's device from raw uint8 frames (auto: device on CUDA, "
                             "workers on CPU; same operations either way)")


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


def _device_type(name: str) -> str:
    """``cpu`` or ``cuda`` (...) of a ``--device`` value; ``auto`` is the GPU when there is one."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name).type


def decode_workers(args: argparse.Namespace) -> int:
    """``--workers``, or its default for the device: cores - 2 on a GPU (measured best), else 1; none beside
    NVDEC (``--backend nvdec``), which ran faster alone than with 14 PyAV workers on an H200 (the model's
    process, which receives both, was the bottleneck; benchmarks/RESULTS.md).

    Cores are this process's share (see :func:`cpu_share`), so torchrun ranks split the machine.
    """
    if args.workers is not None:
        if args.workers < 0:
            raise TspVideoError(f"--workers must be 0 or more, got {args.workers}")
        return args.workers
    if getattr(args, "backend", None) == "nvdec":
        return 0
    if _device_type(args.device) == "cpu":
        return 1
    return max(1, cpu_share() - 2)


def batch_size(args: argparse.Namespace) -> int:
    """``--batch-size``, or its default for the device (smaller on a CPU, to keep a laptop's memory safe)."""
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise TspVideoError(f"--batch-size must be 1 or more, got {args.batch_size}")
        return args.batch_size
    return CPU_BATCH_SIZE if _device_type(args.device) == "cpu" else GPU_BATCH_SIZE


def runtime_options(args: argparse.Namespace, description: dict) -> dict:
    """Keyword arguments of :func:`tspvideo.extract.run.extract_dataset` from the runtime flags.

    Under torchrun each rank takes the GPU of its ``LOCAL_RANK``.
    """
    device = args.device
    if device == "auto":  # this process's GPU when there is one: the default of every command
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    precision = precision_of(args, device)
    # stdout, with the command's other reports: stderr carries only warnings and the one-line error.
    print(f"{getattr(args, 'command', None) or 'tspvideo'}: model runs in {precision.describe()}")
    return {"batch_size": batch_size(args), "device": device, "num_workers": decode_workers(args),
            "amp": precision.amp, "channels_last": precision.channels_last, "backend": args.backend,
            "decode_threads": args.decode_threads, "decoder_resize": args.decoder_resize,
            "raw_frames": {"auto": None, "workers": False, "device": True}[args.preprocess_on],
            "colour": colour_of(args), "nvdec_sessions": args.nvdec_sessions,
            "prep": preprocessing(description), "progress": not args.no_progress}


def colour_of(args: argparse.Namespace) -> str | None:
    """``--colour``: None for auto (the pipeline's default), ``decoder`` under ``--exact``."""
    if args.exact:
        if args.colour == "device":
            raise TspVideoError("--exact runs the reference path, with RGB from the decoder; drop --colour device")
        return "decoder"
    return None if args.colour == "auto" else args.colour


def precision_of(args: argparse.Namespace, device: str) -> Precision:
    """The precision and layout the flags ask for on ``device``; ``--exact`` excludes the other choices."""
    if args.exact:
        clashes = [flag for flag, given in (("--amp", args.amp != "auto"), ("--channels-last", args.channels_last),
                                            ("--decoder-resize", args.decoder_resize)) if given]
        if clashes:
            raise TspVideoError(f"--exact runs the float32 reference path; drop {' and '.join(clashes)}")
        exact_float32()
        return Precision(None, False, "--exact: the reference path, TF32 off")
    return resolve_precision(device, args.amp, args.channels_last)


def _same(given: object, stored: object) -> bool:
    return given == stored if isinstance(given, str) else float(given) == float(stored)


def planned_recipe(args: argparse.Namespace) -> InputRecipe | None:
    """The weights' recipe when it is known before loading them (random init, registered names), else None."""
    if args.random_init:
        return default_recipe(args.random_init)
    if args.model in WEIGHTS:
        return WEIGHTS[args.model].recipe
    return None


def checkpoint_input(args: argparse.Namespace) -> dict:
    """``{"trained_input": ..., "file": ...}`` of a ``--checkpoint`` written by ``tspvideo train`` (else empty).

    Read before the model is built, so that a bad grid fails fast; it extends the weights' description.
    """
    if not getattr(args, "checkpoint", None):
        return {}
    path, _ = resolve_weights(args.checkpoint)
    trained = read_checkpoint(path).get("input")
    return {"trained_input": dict(trained), "file": path.name} if isinstance(trained, dict) else {}


def early_clip_settings(args: argparse.Namespace, grid: dict) -> ClipSettings | None:
    """Validate the grid options before any weights are loaded (``grid``: :func:`checkpoint_input`); the grid
    itself when already known (else the weights' recipe decides it once they are loaded)."""
    recipe = planned_recipe(args)
    description = {**grid, "recipe": recipe.to_dict()} if recipe else dict(grid)
    settings = clip_settings(args, description)
    trained = grid.get("trained_input") or {}
    known = (recipe is not None or (args.clip_len is not None or "clip_len" in trained)
             and (args.fps is not None or "fps" in trained))
    return settings if known else None


def encoder_clip_settings(args: argparse.Namespace, model: torch.nn.Module, description: dict) -> ClipSettings:
    """The grid for the loaded encoder (see :func:`clip_settings`), checked against its architecture:
    an input it cannot take fails here, not once per video."""
    settings = clip_settings(args, description)
    if isinstance(model, TSPModel):
        check_input_size(model.config.backbone, settings.clip_len, preprocessing(description).crop)
    return settings


def encoder_recipe(description: dict) -> InputRecipe | None:
    """The input recipe of the weights: recorded, else their backbone's default; None for a bare module."""
    if description.get("recipe"):
        return InputRecipe.from_dict(description["recipe"])
    backbone = description.get("backbone") or (description.get("model_config") or {}).get("backbone")
    return default_recipe(backbone) if backbone else None


def clip_settings(args: argparse.Namespace, description: dict | None = None) -> ClipSettings:
    """The clip grid: explicit flags, else the checkpoint's training input, else the weights' recipe
    (the paper's 16 frames at 15 fps for a bare module), validated.

    A flag that contradicts the checkpoint's input needs ``--force``; the contradiction is then recorded
    in ``description`` (``input_overrides``), which goes into every sidecar. ``description["input"]``
    records the grid and frame sizes used and where they came from.
    """
    description = description if description is not None else {}
    trained = description.get("trained_input") or {}
    recipe = encoder_recipe(description)
    source = "checkpoint" if trained else f"{recipe.backbone} input recipe" if recipe else "paper defaults"
    recipe = recipe or default_recipe("r2plus1d_34")
    defaults = {"clip_len": recipe.clip_len, "fps": recipe.fps, "sampling": DEFAULT_SAMPLING}
    chosen, overrides = {}, {}
    for key, default in defaults.items():
        given, stored = getattr(args, key), trained.get(key)
        if given is not None and stored is not None and not _same(given, stored):
            overrides[key] = {"checkpoint": stored, "used": given}
        chosen[key] = given if given is not None else stored if stored is not None else default
    if overrides and not getattr(args, "force", False):
        flags = ", ".join(f"--{k.replace('_', '-')} {v['used']:g} (trained with {v['checkpoint']:g})"
                          if k != "sampling" else f"--sampling {v['used']} (trained with {v['checkpoint']})"
                          for k, v in overrides.items())
        raise TspVideoError(f"{description.get('file', 'the checkpoint')}: {flags} contradicts the input the model "
                            "was trained on; drop the flag to use the checkpoint's, or add --force")
    stride = args.stride if args.stride is not None else int(chosen["clip_len"])
    settings = ClipSettings(clip_len=int(chosen["clip_len"]), fps=float(chosen["fps"]), stride=stride,
                            sampling=chosen["sampling"])
    prep = preprocessing(description)
    description["input"] = {"clip_len": settings.clip_len, "fps": settings.fps, "sampling": settings.sampling,
                            "resize": list(prep.resize),
                            "crop": list(prep.crop), "from": source}
    if overrides:
        description["input_overrides"] = overrides
    return settings


def preprocessing(description: dict) -> Preprocessing:
    """Frame transforms of the weights' recipe (the paper's for a bare module), at the frame sizes a tspvideo
    checkpoint was trained on."""
    recipe = encoder_recipe(description)
    prep = recipe.preprocessing if recipe else Preprocessing()
    trained = description.get("trained_input") or {}
    if trained.get("resize") and trained.get("crop"):
        crop = trained["crop"]
        crop = (crop, crop) if isinstance(crop, int) else tuple(crop)
        prep = replace(prep, resize=tuple(trained["resize"]), crop=crop)
    return prep
