"""Clip accuracy of a checkpoint on a segment table (``tspvideo eval clips``): the paper's model-selection score.

Each head's accuracy on evenly spaced clips of every segment (action head: foreground clips only) and their
mean. The clip grid and frame sizes default to those the checkpoint was trained with, then to its weights'
input recipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from tspvideo.core.cores import default_loader_workers
from tspvideo.core.devices import resolve_preprocess_on
from tspvideo.core.distributed import cleanup, init_distributed
from tspvideo.core.errors import TspVideoError
from tspvideo.datasets.clips import SegmentClipDataset, ShardSampler
from tspvideo.datasets.segments import read_label_map, read_segment_table
from tspvideo.models.encoder import load_encoder
from tspvideo.models.inputs import InputOverrides
from tspvideo.models.weights import InputRecipe
from tspvideo.train.loop import evaluate
from tspvideo.train.run import clip_spec_from, log, make_loader, setup_logging, teardown_logging

CLIPS_PER_SEGMENT = 5  # the original's evaluation clips per segment


@dataclass(kw_only=True)
class ClipAccuracyConfig:
    """What ``tspvideo eval clips`` evaluates; grid options left ``None`` come from the checkpoint."""

    checkpoint: str  # a tspvideo run's best.pth / checkpoint.pth, a released file, or a registered name
    valid_csv: str | Path
    video_dir: str | Path
    label_map: str | Path | None = None
    gvf: str | Path | None = None
    gvf_pool: str | None = None  # GVF pooling of a released checkpoint (its file does not say)
    clip_len: int | None = None
    fps: float | None = None
    sampling: str | None = None
    clips_per_segment: int | None = None
    resize: list[int] | None = None
    crop: int | None = None
    batch_size: int = 32
    workers: int | None = None  # loader processes; None: tspvideo.core.cores.default_loader_workers()
    decode_threads: int = 1
    preprocess_on: str = "auto"  # where clips are resized, cropped and normalised: workers, device (auto: CUDA)
    device: str = "auto"
    amp: str | None = None
    channels_last: bool = False
    seed: int = 0  # only picks replacements for undecodable clips
    no_progress: bool = False


def evaluate_checkpoint(config: ClipAccuracyConfig) -> dict:
    """Clip accuracies of a checkpoint on a segment table (one process or under torchrun)."""
    info = init_distributed(config.device)
    handlers = setup_logging(None, info.is_main)
    try:
        encoder = load_encoder(config.checkpoint, gvf_pool=config.gvf_pool)
        model = encoder.model
        resolved = encoder.resolve_input(InputOverrides(clip_len=config.clip_len, fps=config.fps,
                                                        sampling=config.sampling, resize=config.resize,
                                                        crop=config.crop, force=True))  # flags are asked for
        recipe = InputRecipe(encoder.recipe.backbone, resolved.grid.clip_len, resolved.grid.fps,
                             resolved.prep.resize, resolved.prep.crop, resolved.prep.mean, resolved.prep.std,
                             resolved.prep.hf_processor)
        clips = config.clips_per_segment or (encoder.trained_input or {}).get("clips_per_segment") or CLIPS_PER_SEGMENT
        spec, prep = clip_spec_from(recipe, clips, resolved.grid.sampling)
        model_config = model.config
        label_map = None
        if "action" in model_config.heads:
            source = config.label_map or encoder.label_map
            if source is None:
                raise TspVideoError(f"{config.checkpoint} does not name its classes: give --label-map")
            label_map = list(source) if isinstance(source, list) else read_label_map(source)
            if len(label_map) != model_config.num_classes:
                raise TspVideoError(f"the label map has {len(label_map)} classes, the action head "
                                    f"{model_config.num_classes}")
        if model_config.uses_gvf and not config.gvf:
            raise TspVideoError("this model's region head uses a GVF: give --gvf GVF.h5")
        dataset = SegmentClipDataset(read_segment_table(config.valid_csv), config.video_dir, train=False,
                                     label_map=label_map, spec=spec, prep=prep,
                                     gvf_path=config.gvf if model_config.uses_gvf else None,
                                     foreground_only=model_config.heads == ("action",), seed=config.seed,
                                     decode_threads=config.decode_threads, source=config.valid_csv,
                                     preprocess_on=resolve_preprocess_on(config.preprocess_on, info.device))
        log.info("clips preprocessed %s", "on the device" if dataset.preprocess_on == "device" else "in the workers")
        counts = dataset.num_clips()
        log.info("%s: %d foreground + %d background clips (%d segment(s) shorter than one clip dropped)",
                 config.valid_csv, counts["foreground"], counts["background"], dataset.dropped["too_short"])
        workers = default_loader_workers() if config.workers is None else config.workers
        loader = make_loader(dataset, ShardSampler(dataset, info.world_size, info.rank), config.batch_size,
                             workers, info.device, train=False)
        model.to(info.device)
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last_3d)
        stats = evaluate(model, loader, info.device, config.amp, config.channels_last,
                         show_progress=info.is_main and not config.no_progress)
        stats["dropped_segments"] = dataset.dropped["too_short"]
        stats["preprocess_on"] = dataset.preprocess_on
        return stats
    finally:
        teardown_logging(handlers)
        cleanup(info)
