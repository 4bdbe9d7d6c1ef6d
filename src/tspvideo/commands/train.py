"""`tspvideo train`: TSP / TAC pretraining of a video encoder (one process or under torchrun).

Every flag sets the :class:`~tspvideo.train.TrainConfig` field of the same name (``--clip-len`` ->
``clip_len``); defaults not left to a recipe are read from the config, where they are written once.
"""

from __future__ import annotations

import argparse

from tspvideo.commands import add_command, add_decode_threads, add_device, add_workers
from tspvideo.commands._model_args import add_preprocess_on_arg
from tspvideo.core.choices import BACKBONES, HEAD_CHOICES, OPTIMIZERS
from tspvideo.core.cores import MAX_LOADER_WORKERS, default_loader_workers
from tspvideo.core.grid import DEFAULT_CLIP_LEN, DEFAULT_FPS, SAMPLING_RULES
from tspvideo.train.config import TrainConfig, config_fields, field_default
from tspvideo.train.recipes import recipe_names


def register(subparsers) -> None:
    """Add the ``train`` subcommand."""
    parser = add_command(
        subparsers, "train", "pretrain a video encoder with TSP (or TAC) on segment tables",
        "Train on clips of the segments of --train-csv, validate on --valid-csv after every epoch, and keep "
        "OUT/checkpoint.pth (resume with --resume), OUT/best.pth (for `tspvideo extract --checkpoint`), "
        "OUT/metrics.csv and OUT/train.log. Several GPUs or machines: torchrun --nproc-per-node N -m "
        "tspvideo.cli train ... (learning rates are per process and scaled by their number).")
    add_train_arguments(parser)
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The parsed flags as a :class:`TrainConfig` (every field has its flag)."""
    return TrainConfig(**{name: getattr(args, name) for name in config_fields()})


def train(config: TrainConfig) -> dict:
    """:func:`tspvideo.train.run.train`, loaded when a training starts (building the parser loads no torch)."""
    from tspvideo.train.run import train as train_run

    return train_run(config)


def run(args: argparse.Namespace) -> int:
    """Train; exit code 0."""
    result = train(config_from_args(args))
    best = result["best"]
    # Under torchrun every process gets here: only rank 0 speaks, the whole line at once (not glued to another's).
    if result.get("rank", 0) == 0 and best["epoch"] >= 0 and "valid_acc_mean" in best:
        print(f"train: best epoch {best['epoch'] + 1}, valid mean clip accuracy {best['valid_acc_mean']:.4f} "
              f"-> {result['out']}/best.pth", flush=True)
    return 0


def add_data_arguments(parser: argparse.ArgumentParser, train: bool = True) -> None:
    """Segment tables, videos, clip grid and input size (shared by ``train`` and ``evaluate``)."""
    data = parser.add_argument_group("data")
    if train:
        data.add_argument("--train-csv", required=True, help="training segment table (CSV)")
    data.add_argument("--valid-csv", required=not train, default=None,
                      help="validation segment table (CSV)" + ("; none: no validation, best = last epoch"
                                                              if train else ""))
    data.add_argument("--video-dir", required=True, help="folder the tables' filename column is relative to")
    data.add_argument("--label-map", default=None,
                      help="action classes, JSON list (or activitynet / thumos14); needed with an action head")
    data.add_argument("--gvf", default=None, help="HDF5 of global video features (from `tspvideo gvf`)")
    # No defaults here: `train` fills unset options from --recipe (tspvideo.train.recipes), then the grid and frame
    # sizes from the backbone's input recipe (`tspvideo models`); `evaluate` from the checkpoint.
    fallback = "default without --recipe: the backbone's recipe, for r2plus1d_*" if train else \
        "default: the checkpoint's, else"
    data.add_argument("--clip-len", type=int, default=None, help=f"frames per clip (L) ({fallback} {DEFAULT_CLIP_LEN})")
    data.add_argument("--fps", type=float, default=None,
                      help=f"frame rate clips are sampled at ({fallback} {DEFAULT_FPS:g})")
    data.add_argument("--sampling", choices=SAMPLING_RULES, default=None if not train else field_default("sampling"),
                      help="which source frames: ffmpeg-fps (the original's: re-encode to 30 fps, every second frame) "
                           "or timestamp (last frame at or before j/fps)"
                           + ("" if train else "; default: the checkpoint's"))
    data.add_argument("--clips-per-segment", type=int, default=None,
                      help=f"clips per segment and epoch ({'default without --recipe:' if train else fallback} 5)")
    data.add_argument("--resize", type=int, nargs="+", default=None, metavar="SIZE",
                      help=f"frames are resized to H W (or the short side to S) before cropping ({fallback} 128 171)")
    data.add_argument("--crop", type=int, default=None,
                      help=f"square crop size (random + flip in training, centre in validation) ({fallback} 112)")
    add_workers(data, field_default("workers"), "clip loading processes per " + ("training" if train else "model")
                + f" process (default: min({MAX_LOADER_WORKERS}, CPU cores - 1), {default_loader_workers()} here)")
    add_decode_threads(data, field_default("decode_threads"), "per clip")
    if train:
        data.add_argument("--frame-cache-mb", type=int, default=field_default("frame_cache_mb"), metavar="MB",
                          help="keep every decoded frame of up to MB megabytes of videos in memory, per loader "
                               "worker, so that later clips of a video are not decoded again (the same frames; "
                               "for small frames, e.g. 64x64: 2 MB a 10 s video); 0: decode every clip (default)")
        data.add_argument("--frame-cache-dir", default=field_default("frame_cache_dir"), metavar="DIR",
                          help="write each video's decoded frames once to DIR (.npy, named after the video's path, "
                               "size, modification time and sampling) and map them in every worker and later run: "
                               "one decode per video and one copy in memory for all (the same frames)")
    add_preprocess_on_arg(data)  # the crop and flip are drawn in the workers either way, from the same seeds


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option of ``tspvideo train``, defaults visible in ``--help``."""
    parser.add_argument("--recipe", choices=recipe_names(), default=None,
                        help="fill every option below as the original's training script for this dataset and "
                             "variant did (docs/training.md); explicit flags win; printed at the start")
    parser.add_argument("--downscale-factor", type=int, default=None,
                        help="divide the batch size and both learning rates by N, as the original's scripts' "
                             "DOWNSCALE_FACTOR for GPUs with less memory (default: 1)")
    add_data_arguments(parser, train=True)
    parser.add_argument("--no-balance", action="store_true",
                        help="use every clip instead of as many background as foreground clips per epoch "
                             "(the original code does not balance)")
    # Defaults are None so that a recipe can fill them; each help says the value without --recipe.
    model = parser.add_argument_group("model")
    model.add_argument("--backbone", default=None, choices=BACKBONES,
                       help="encoder architecture (default without --recipe: r2plus1d_34)")
    model.add_argument("--weights", default=None,
                       help="initial backbone weights: auto (the Kinetics weights the paper starts from), a "
                            "registered name, URL or local file, or none (random initialisation) (default "
                            "without --recipe: auto)")
    model.add_argument("--heads", nargs="+", default=None, choices=HEAD_CHOICES,
                       help="action region: TSP; action: TAC; region: region head only (default without "
                            "--recipe: action region)")
    model.add_argument("--no-gvf", action="store_true", default=None,
                       help="the region head sees the clip feature only")
    model.add_argument("--gvf-pool", choices=["max", "avg"], default=None,
                       help="how --gvf was pooled; checked against the file's 'pool' attribute (default: the "
                            "file's, else max)")
    model.add_argument("--region-only-gvf", action="store_true", default=None,
                       help="with --heads region: feed the GVF to the region head (1024 -> 2); the original's "
                            "one-head model ignores it (512 -> 2)")
    model.add_argument("--tac-clips", choices=["all", "foreground"], default=None,
                       help="TAC (--heads action): all: every clip of the table, background clips with action "
                            "label -1 ignored by the loss but seen by BatchNorm (the original); foreground: "
                            "foreground clips only (default without --recipe: all)")
    model.add_argument("--alpha-action", type=float, default=None,
                       help="weight of the action loss (default without --recipe: 1)")
    model.add_argument("--alpha-region", type=float, default=None,
                       help="weight of the region loss (default without --recipe: 1)")
    model.add_argument("--action-loss-norm", choices=["clips", "foreground"], default=None,
                       help="foreground: the action term is the mean over the batch's foreground clips "
                            "(CrossEntropyLoss(ignore_index=-1), the original); clips: divided by all clips of "
                            "the batch, as equation (1) read literally (default without --recipe: foreground)")
    model.add_argument("--freeze-stem", action=argparse.BooleanOptionalAction, default=None,
                       help="keep the backbone's stem fixed, as the original (its lr is 0) (default without "
                            "--recipe: on)")
    model.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across processes (GPU only)")
    model.add_argument("--bn-momentum", type=float, default=None, metavar="M",
                       help="momentum of the batch-norm running statistics (default: the architecture's own, 0.1 "
                            "for the ResNets, 0.001 for s3d: from random weights, 0.1 lets s3d's statistics follow "
                            "the training within an epoch)")
    model.add_argument("--grad-checkpointing", action="store_true",
                       help="recompute the backbone blocks' activations in the backward pass: less memory, about "
                            "a third slower (transformer backbones: mvit_v2_s, swin3d_*, videomae_*, vjepa2_*)")
    model.add_argument("--layer-decay", type=float, default=None, metavar="D",
                       help="ViT backbones (videomae_*, vjepa2_*): block i of L learns at backbone-lr x D^(L-i) "
                            "(default for them: 0.75)")
    model.add_argument("--drop-path", type=float, default=None, metavar="P",
                       help="ViT backbones: stochastic depth rising linearly to P at the last block (default for "
                            "them: 0.1)")
    model.add_argument("--train-blocks", type=int, default=None, metavar="N",
                       help="ViT backbones: train only the last N blocks and the final norms, the rest frozen "
                            "(default: every block)")
    optim = parser.add_argument_group("optimisation (learning rates are per process: x number of processes)")
    optim.add_argument("--epochs", type=int, default=None, help="training epochs (default without --recipe: 8)")
    optim.add_argument("--batch-size", type=int, default=None,
                       help="clips per process and step (default without --recipe: 32)")
    optim.add_argument("--backbone-lr", type=float, default=None,
                       help="learning rate of the backbone (default without --recipe: 1e-4)")
    optim.add_argument("--fc-lr", type=float, default=None,
                       help="learning rate of the heads (default without --recipe: 2e-3)")
    optim.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                       help="sgd (the original's; default) or adamw (Adam with decoupled weight decay: trains small "
                            "encoders from random weights in far fewer steps; --momentum is then unused)")
    optim.add_argument("--momentum", type=float, default=None, help="SGD momentum (default without --recipe: 0.9)")
    optim.add_argument("--weight-decay", type=float, default=None,
                       help="SGD weight decay (default without --recipe: 0.005)")
    optim.add_argument("--lr-warmup-epochs", type=float, default=None,
                       help="linear warm-up length (default without --recipe: 2)")
    optim.add_argument("--lr-milestones", type=float, nargs="*", default=None,
                       help="epochs at which the learning rate is multiplied by --lr-gamma (default without "
                            "--recipe: 4 6)")
    optim.add_argument("--lr-gamma", type=float, default=None,
                       help="learning-rate factor at each milestone (default without --recipe: 0.01)")
    optim.add_argument("--early-stop-patience", type=int, default=None, metavar="N",
                       help="stop when the validation mean clip accuracy has not improved for N epochs (--epochs is "
                            "then the most); needs --valid-csv (default: train every epoch, as the original)")
    run = parser.add_argument_group("run")
    run.add_argument("--out", required=True, help="run folder: checkpoints, metrics.csv, train.log")
    run.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                     help="continue a run (no value: OUT/checkpoint.pth); new --backbone-lr, --fc-lr, --momentum, "
                          "--weight-decay and schedule flags apply from where the run stands")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the run in OUT (its checkpoints, metrics and logs are removed first; other files "
                          "stay); without it, an OUT that holds a run needs --resume")
    run.add_argument("--seed", type=int, default=field_default("seed"),
                     help="seeds initialisation, clip sampling and shuffling")
    add_device(run)  # cuda: cuda:LOCAL_RANK under torchrun
    run.add_argument("--amp", choices=["bf16", "fp16"], default=None, help="autocast dtype (default float32)")
    run.add_argument("--channels-last", action="store_true", help="channels_last_3d memory format")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--keep-epochs", action="store_true",
                     help="also save every epoch's model as OUT/epoch_<N>.pth (model only, like best.pth)")
