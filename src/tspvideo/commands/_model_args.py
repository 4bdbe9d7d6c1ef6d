"""Arguments shared by commands that run an encoder (extract, gvf): which weights, how to run them.

The parser's choices come from :mod:`tspvideo.core.choices`; the library is imported in the functions that
run a command, so that building the parser (every ``tspvideo`` call, ``--help``) loads no torch or PyAV.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tspvideo.commands import add_decode_threads, add_device, add_workers
from tspvideo.core.choices import (
    BACKBONES,
    COLOUR_CONVERSIONS,
    CPU_BATCH_SIZE,
    DECODE_BACKENDS,
    GPU_BATCH_SIZE,
    PRECISIONS,
    PREPROCESS_ON_CHOICES,
)
from tspvideo.core.grid import DEFAULT_SAMPLING, SAMPLING_RULES

if TYPE_CHECKING:
    from tspvideo.extract.options import ExtractOptions
    from tspvideo.models.encoder import Encoder, WeightsChoice


def add_encoder_args(parser: argparse.ArgumentParser) -> None:
    """Add the weights, clip grid and runtime options."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="registered weights name (see `tspvideo models`) or a URL")
    source.add_argument("--checkpoint", help="local checkpoint file (released layout or a tspvideo run)")
    source.add_argument("--random-init", metavar="BACKBONE", choices=BACKBONES,
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
                           "decoding; on a CPU none up to 2 cores, where decoding in the model's process was "
                           "fastest, else 1; none beside --backend nvdec)")
    add_decode_threads(run, 0, "per decoder (0: CPU cores / workers)")
    run.add_argument("--backend", choices=[*DECODE_BACKENDS, "nvdec"], default="pyav",
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
    run.add_argument("--video-timeout", type=float, default=300.0, metavar="SECONDS",
                     help="a video whose decoder (PyAV or torchcodec) makes no progress, no frame decoded, for this "
                          "long fails with a line in the failures file and the run goes on (default: 300; 0: no "
                          "limit; time spent waiting for the model does not count, see docs/reliability.md)")
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
    refreshed = sum(1 for video in report.written if video in report.refreshed)
    refreshed = f" ({refreshed} as their source file changed)" if refreshed else ""
    # A failed video whose earlier features were deleted (its file changed since) has lost them: say so.
    removed = f" ({len(report.removed)} of them had earlier features, now removed)" if report.removed else ""
    print(f"{command}: {len(report.written)} written{refreshed}, {len(report.skipped)} already done, "
          f"{len(report.failed)} failed{removed}; {report.clips} clips in {report.seconds:.1f} s ({rate:.1f} clips/s)")
    if report.short:
        print(f"{command}: {len(report.short)} video(s) shorter than their files declare kept (--accept-short); "
              "their sidecars say so")
    if report.failed:
        from tspvideo.extract.run import failures_path

        print(f"{command}: failures listed in {failures_path(out_dir, shard_id, num_shards)}")


def weights_choice(args: argparse.Namespace) -> WeightsChoice:
    """The weights the flags name (a checkpoint file is read here, once)."""
    from tspvideo.models.encoder import choose_weights

    return choose_weights(model=args.model, checkpoint=args.checkpoint, random_init=args.random_init)


def load_chosen(args: argparse.Namespace, choice: WeightsChoice) -> Encoder:
    """Build the chosen encoder (saying when its weights are random)."""
    if choice.random_backbone:
        print(f"warning: {choice.random_backbone} with random weights: features are for testing only", file=sys.stderr)
    return choice.load(gvf_pool=args.gvf_pool)


def extract_options(args: argparse.Namespace, **run: object) -> ExtractOptions:
    """:class:`ExtractOptions` from the encoder and runtime flags (``run``: the command's own, e.g. shards)."""
    from tspvideo.extract.options import ExtractOptions

    return ExtractOptions(
        clip_len=args.clip_len, fps=args.fps, stride=args.stride, sampling=args.sampling, force=args.force,
        device=args.device, batch_size=args.batch_size, workers=args.workers, decode_threads=args.decode_threads,
        backend=args.backend, nvdec_sessions=args.nvdec_sessions, amp=args.amp, channels_last=args.channels_last,
        exact=args.exact, decoder_resize=args.decoder_resize, preprocess_on=args.preprocess_on, colour=args.colour,
        video_timeout=args.video_timeout, progress=not args.no_progress, **run)


def resolve_options(command: str, options: ExtractOptions) -> ExtractOptions:
    """The options resolved for the device, saying what the model runs in (stdout, with the command's other
    reports: stderr carries only warnings and the one-line error)."""
    resolved = options.resolve()
    print(f"{command}: model runs in {options.precision.describe()}")
    return resolved
