"""TSP vs TAC on the synthetic dataset, from the same initial encoder: the paper's Table 1 in miniature.

For every seed:

1. the initial encoder (seeded random weights, or ``weights``) and its features of every video; the GVF
   is their max-pool per video (the paper's first step);
2. three trainings from that encoder with the same data, schedule and number of epochs:
   ``tsp`` (action + region heads, max GVF), ``tsp_no_gvf`` (both heads, no GVF) and ``tac`` (action head
   only, on every clip, background ignored by the loss);
3. features of every video with each trained encoder;
4. for each feature set (and the initial one, ``init``): the localization probe with the same probe seed,
   detection mAP per tIoU, proposal AUC, average mAP per instance-length bucket, and the temporal-sensitivity
   scores of the validation videos; a similarity figure of one validation video.

The synthetic dataset is generated once (``data_seed``) and shared by all seeds, so the spread over seeds is
that of initialisation, training order and probe training, not of the data. Every step skips work whose
output exists, so an interrupted run continues where it stopped; results are a deterministic function of
the configuration and the seeds (up to an interrupted training resumed mid-way).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tspvideo.runs.demo import train_config as demo_train_config
from tspvideo.core.errors import TspVideoError
from tspvideo.core.grid import DEFAULT_FPS
from tspvideo.runs.steps import initial_encoder, save_initial_encoder
from tspvideo.train import BEST_NAME, CHECKPOINT_NAME, train

VARIANTS = ("tsp", "tac", "tsp_no_gvf", "init")
FRAME_CACHE_DIR = "frame_cache"  # in the experiment's folder, shared by seeds and variants
TRAINED_VARIANTS = ("tsp", "tac", "tsp_no_gvf")
VARIANT_TITLES = {"tsp": "TSP (max GVF)", "tac": "TAC", "tsp_no_gvf": "TSP w/o GVF", "init": "initial encoder"}
# (metric key, column title, scale for printing): mAP / AUC in %, as the paper prints them.
TABLE_COLUMNS = (
    ("mAP@0.5", "mAP@0.5", 100.0),
    ("mAP@0.75", "mAP@0.75", 100.0),
    ("mAP@0.95", "mAP@0.95", 100.0),
    ("mAP_avg", "avg mAP", 100.0),
    ("AUC", "AUC", 100.0),
    ("mAP_avg_short", "avg mAP short", 100.0),
    ("mAP_avg_long", "avg mAP long", 100.0),
    ("contrast", "contrast", 1.0),
    ("fg_bg_probe_auc", "fg/bg AUC", 1.0),
)
# Configuration fields that may change between a run and its continuation (they change no number).
RUNTIME_FIELDS = ("workers", "device", "progress", "jobs", "frame_cache")


@dataclass(frozen=True)
class ExperimentConfig:
    """Sizes of the experiment; the defaults are the CPU run in ``docs/experiment.md`` (minutes a seed on 2 cores).

    The synthetic task (see ``docs/experiment.md``, "The synthetic task"): two objects, fast class patterns
    (1.5-3 Hz, so that one clip of about a second sees one to three periods), background drift at all times,
    and a per-video motion style that scales the video's background drift (calm or busy videos).
    """

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    # synthetic data, shared by all seeds
    data_seed: int = 0
    num_videos: int = 160
    num_classes: int = 4
    video_size: tuple[int, int] = (48, 48)  # width, height
    min_duration: float = 8.0
    max_duration: float = 12.0
    video_fps: float = 15.0
    keyframe_interval: int = 8  # frames: reading a clip decodes at most this many frames before it
    num_objects: int = 2
    frequency_range: tuple[float, float] = (1.5, 3.0)  # Hz of the class patterns
    amplitude_range: tuple[float, float] = (0.08, 0.15)  # of the frame's smaller side
    walk_speed: float = 0.35  # background drift, frame sides per second
    motion_style: float = 1.5  # per-video factor on the drift speed, in [1/1.5, 1.5]
    # encoder and clips
    backbone: str = "c3d_tiny"  # the 18-layer encoders do not learn from random weights in minutes on a CPU
    weights: str | None = None  # initial backbone weights; None: seeded random (nothing can be downloaded here)
    clip_len: int = 8
    fps: float = DEFAULT_FPS  # 8 frames span 0.53 s: about one to two periods of a class pattern, no aliasing
    clips_per_segment: int = 2
    resize: tuple[int, int] = (36, 36)
    crop: int = 32
    feature_stride: int | None = 8  # frames between features (at fps), 0.53 s here; None: half a clip
    # training, identical for the three variants
    epochs: int = 12
    batch_size: int = 16
    # AdamW, not the paper's SGD: from random weights SGD (lr 0.05-0.2) left the region head at chance
    # after as many steps as AdamW needed to learn (docs/experiment.md, "Making the encoders learn").
    optimizer: str = "adamw"
    backbone_lr: float = 1e-3
    fc_lr: float = 1e-3
    warmup_epochs: float = 0.5
    milestones: tuple[float, ...] = ()
    bn_momentum: float | None = None  # batch-norm running statistics; None: the architecture's own
    # evaluation
    probe_epochs: int = 30
    probe_temporal_size: int | None = 100
    length_edges: tuple[float, ...] = (3.0,)  # short (<= 3 s) vs long instances; synthetic ones are 1.5-8 s
    figure_format: str = "png"
    # runtime (no effect on the numbers)
    workers: int = 2
    device: str = "auto"
    progress: bool = True
    jobs: int = 1  # seeds run at once, one process each (they share the device and the cores)
    # Every video decoded once into OUT/frame_cache and mapped by all trainings (the same frames).
    frame_cache: bool = True

    @property
    def stride(self) -> int:
        """Frames (at ``fps``) between two features: ``feature_stride``, or half a clip."""
        return self.feature_stride or max(1, self.clip_len // 2)

    def generator_options(self) -> dict[str, Any]:
        """The ``generate_dataset`` options beyond the demo's sizes."""
        return {"fps": self.video_fps, "keyframe_interval": self.keyframe_interval,
                "num_objects": self.num_objects, "frequency_range": tuple(self.frequency_range),
                "amplitude_range": tuple(self.amplitude_range), "walk_speed": self.walk_speed,
                "motion_style": self.motion_style}


# Every step at the smallest sizes that still work: a smoke test, its numbers mean nothing.
QUICK_CONFIG = ExperimentConfig(
    seeds=(0, 1), num_videos=6, num_classes=2, video_size=(32, 32), min_duration=6.0, max_duration=7.0,
    clip_len=4, clips_per_segment=1, resize=(16, 16), crop=16, feature_stride=None, epochs=1, batch_size=4,
    probe_epochs=2, workers=0,
)
# One H100/H200 (lent for minutes): R(2+1)D-18 on larger frames, more videos and epochs, 3 seeds side by side.
# On an H100 host the loader workers' random clip reads, not the GPU, set the pace (docs/experiment.md,
# "GPU configuration"); the frame cache (each video decoded once, then memory-mapped) targets that (measured on CPU).
GPU_CONFIG = ExperimentConfig(
    seeds=(0, 1, 2), num_videos=400, video_size=(64, 64), backbone="r2plus1d_18", resize=(64, 64), crop=56,
    epochs=14, batch_size=32, workers=5, jobs=3,
)
PRESETS = {"cpu": ExperimentConfig(), "gpu": GPU_CONFIG, "quick": QUICK_CONFIG}


def config_dict(config: ExperimentConfig) -> dict[str, Any]:
    """The configuration as JSON-ready values (tuples as lists)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()}


def _demo_config(config: ExperimentConfig, seed: int):
    """The demo's configuration with the experiment's sizes: its data and training helpers are reused."""
    from tspvideo.runs.demo import DemoConfig

    return DemoConfig(
        num_videos=config.num_videos, num_classes=config.num_classes, video_size=tuple(config.video_size),
        min_duration=config.min_duration, max_duration=config.max_duration, backbone=config.backbone,
        weights=config.weights, clip_len=config.clip_len, fps=config.fps,
        clips_per_segment=config.clips_per_segment, resize=tuple(config.resize), crop=config.crop,
        feature_stride=config.stride, epochs=config.epochs, batch_size=config.batch_size,
        backbone_lr=config.backbone_lr, fc_lr=config.fc_lr, warmup_epochs=config.warmup_epochs,
        milestones=tuple(config.milestones), workers=config.workers, device=config.device, seed=seed,
        progress=config.progress,
    )


def _check_config(out: Path, config: ExperimentConfig) -> None:
    """Refuse to continue a run made with other settings (its outputs would be mixed with new ones)."""
    from tspvideo.core.fileio import save_json_atomic

    path = out / "config.json"
    current = config_dict(config)
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        differ = [k for k in current if k not in RUNTIME_FIELDS and k != "seeds" and previous.get(k) != current[k]]
        if differ:
            raise TspVideoError(f"{out} holds an experiment with other settings ({', '.join(differ)}); "
                                "use another --out or delete it")
    save_json_atomic(path, current)


def _prepare_data(out: Path, config: ExperimentConfig) -> dict[str, Path]:
    from tspvideo.runs.demo import prepare_dataset
    from tspvideo.core.fileio import save_json_atomic

    marker = out / "data" / "paths.json"
    if marker.is_file():
        return {k: Path(v) for k, v in json.loads(marker.read_text(encoding="utf-8")).items()}
    paths = prepare_dataset(out / "data", _demo_config(config, config.data_seed), config.generator_options())
    save_json_atomic(marker, {k: str(v) for k, v in paths.items()})  # written last: the data step is complete
    return paths


def _extract(videos: list[Path], out_dir: Path, model, description: dict, config: ExperimentConfig,
             device: str) -> None:
    from tspvideo.extract.run import ClipSettings, extract_dataset

    settings = ClipSettings(clip_len=config.clip_len, fps=config.fps, stride=config.stride)
    prep = _demo_config(config, 0).preprocessing
    # extract_dataset skips videos whose features exist: an interrupted extraction resumes.
    report = extract_dataset(videos, out_dir, model, description, settings, batch_size=32, device=device,
                             num_workers=config.workers, prep=prep, progress=config.progress)
    if report.failed:
        raise TspVideoError(f"feature extraction failed for {len(report.failed)} video(s): "
                            f"{next(iter(report.failed.items()))}")


def _train(variant: str, paths: dict[str, Path], seed_dir: Path, config: ExperimentConfig, seed: int) -> dict:
    """Train one variant from the seed's initial encoder (or reuse a finished run); returns its best metrics."""
    from tspvideo.core.fileio import save_json_atomic

    run_dir = seed_dir / "runs" / variant
    marker = run_dir / "done.json"
    if marker.is_file():
        return json.loads(marker.read_text(encoding="utf-8"))
    train_config = dataclasses.replace(
        demo_train_config(paths, run_dir, seed_dir / "gvf.h5", _demo_config(config, seed),
                          seed_dir / "initial_encoder.pth"), optimizer=config.optimizer,
        bn_momentum=config.bn_momentum,
        frame_cache_dir=seed_dir.parent / FRAME_CACHE_DIR if config.frame_cache else None)
    # The variants differ only in these options (see tspvideo.train).
    if variant == "tac":
        train_config = dataclasses.replace(train_config, heads=["action"], gvf=None)
    elif variant == "tsp_no_gvf":
        train_config = dataclasses.replace(train_config, heads=["action", "region"], gvf=None, no_gvf=True)
    if (run_dir / CHECKPOINT_NAME).is_file():
        train_config.resume = "auto"
    result = train(train_config)
    best = {k: float(v) for k, v in result["best"].items() if k.startswith("valid_acc")}
    summary = {"best_epoch": int(result["best"]["epoch"]) + 1, **best,
               "train_clips": int(sum(float(r.get("train_clips") or 0) for r in result["metrics"]))}
    save_json_atomic(marker, summary)
    return summary


def _read_ground_truth(path: Path) -> dict:
    """The annotation JSON, checked like every command checks one."""
    from tspvideo.datasets.activitynet_json import load_json, read_annotation_database

    ground_truth = load_json(path, "annotations")
    read_annotation_database(ground_truth, what=f"annotations {path}")
    return ground_truth


def _pick_figure_video(ground_truth: dict, subset: str = "validation") -> str:
    """The validation video with the most instances (ties: the first by name): the most to look at."""
    videos = [(vid, len(info.get("annotations", []))) for vid, info in ground_truth["database"].items()
              if info.get("subset") == subset]
    if not videos:
        raise TspVideoError(f"no {subset} video in the synthetic annotations")
    return sorted(videos, key=lambda item: (-item[1], item[0]))[0][0]


def _evaluate(variant: str, feature_dir: Path, paths: dict[str, Path], seed_dir: Path, config: ExperimentConfig,
              seed: int) -> dict[str, float]:
    """Probe + length breakdown + temporal-sensitivity scores of one feature set."""
    from tspvideo.evaluation.lengths import length_breakdown
    from tspvideo.evaluation.similarity import dataset_temporal_sensitivity
    from tspvideo.localization import run_probe
    from tspvideo.localization.probe import ProbeConfig

    probe_dir = seed_dir / "probe" / variant
    metrics_path = probe_dir / "metrics.json"
    if metrics_path.is_file() and (probe_dir / "predictions.json").is_file():
        probe = json.loads(metrics_path.read_text(encoding="utf-8"))
    else:
        probe_config = ProbeConfig(temporal_size=config.probe_temporal_size, epochs=config.probe_epochs, seed=seed)
        probe = run_probe(feature_dir, paths["annotations"], probe_dir, seed=seed, epochs=config.probe_epochs,
                          config=probe_config)
    detection = probe["detection"]
    by_tiou = {round(float(t), 2): float(m) for t, m in zip(detection["tiou"], detection["mAP"], strict=True)}
    result = {"mAP@0.5": by_tiou[0.5], "mAP@0.75": by_tiou[0.75], "mAP@0.95": by_tiou[0.95],
              "mAP_avg": float(detection["average_mAP"]), "AUC": float(probe["proposals"]["AUC"]),
              "AR@100": float(probe["proposals"]["AR@100"] or 0.0)}

    predictions = json.loads((probe_dir / "predictions.json").read_text(encoding="utf-8"))
    ground_truth = _read_ground_truth(paths["annotations"])
    # Plain AP (not DETAD's mAP_N) keeps these short/long averages comparable with the mAP columns.
    breakdown = length_breakdown(ground_truth, predictions, buckets=tuple(config.length_edges),
                                 subset="validation", precision="plain")
    for bucket, name in zip(breakdown["buckets"], _bucket_keys(config), strict=True):
        result[f"mAP_avg_{name}"] = bucket["average_mAP"]

    scores = dataset_temporal_sensitivity(feature_dir, ground_truth, subset="validation",
                                          clip_len=config.clip_len, fps=config.fps, stride=config.stride,
                                          per_video_probe=True, seed=seed)["summary"]
    result.update({"fg_fg_within": scores["fg_fg_within"], "fg_bg": scores["fg_bg"],
                   "contrast": scores["contrast"], "fg_bg_probe_auc": scores["pooled_probe_auc"],
                   "fg_bg_probe_auc_per_video": scores["probe_auc"]})
    return result


def _bucket_keys(config: ExperimentConfig) -> list[str]:
    """Names of the length buckets in results: ``short`` / ``long`` for one edge, else ``le<edge>`` / ``gt<edge>``."""
    edges = list(config.length_edges)
    if len(edges) == 1:
        return ["short", "long"]
    return [f"le{e:g}" for e in edges] + [f"gt{edges[-1]:g}"]


def _figure(seed: int, seed_dir: Path, paths: dict[str, Path], out: Path, config: ExperimentConfig) -> list[str]:
    """Similarity figures of one validation video: one per variant and all four side by side."""
    from tspvideo.evaluation.similarity import load_features, plot_similarity

    ground_truth = _read_ground_truth(paths["annotations"])
    video = _pick_figure_video(ground_truth)
    segments = [tuple(a["segment"]) for a in ground_truth["database"][video]["annotations"]]
    figure_dir = out / "figures"
    written = []
    panels = []
    for variant in VARIANTS:
        features, times = load_features(seed_dir / "features" / variant / f"{video}.npy", config.clip_len,
                                        config.fps, config.stride)
        panels.append((VARIANT_TITLES[variant], features, times))
        path = figure_dir / f"seed{seed}_{variant}_{video}.{config.figure_format}"
        plot_similarity([panels[-1]], segments, path, title=f"{VARIANT_TITLES[variant]}, seed {seed}: {video}")
        written.append(str(path))
    path = figure_dir / f"seed{seed}_all_{video}.{config.figure_format}"
    plot_similarity(panels, segments, path, title=f"seed {seed}: {video}")
    written.append(str(path))
    return written


def run_seed(seed: int, out: Path, paths: dict[str, Path], config: ExperimentConfig) -> dict[str, dict[str, Any]]:
    """Every step of one seed; returns ``{variant: {metric: value}}`` (also written to ``seed_N/metrics.json``)."""
    from tspvideo.core.distributed import resolve_device
    from tspvideo.runs.experiment.plots import plot_training_curves
    from tspvideo.core.fileio import save_json_atomic
    from tspvideo.features.gvf import write_gvf
    from tspvideo.models.weights import load_model

    seed_dir = out / f"seed_{seed}"
    seed_dir.mkdir(parents=True, exist_ok=True)
    device = str(resolve_device(config.device))
    videos = sorted(Path(paths["videos"]).glob("*.mp4"))
    demo_config = _demo_config(config, seed)

    _say(f"seed {seed}: initial encoder ({config.weights or 'seeded random weights'}) and its features")
    encoder, description = initial_encoder(demo_config.backbone, demo_config.weights, demo_config.seed)
    initial_path = seed_dir / "initial_encoder.pth"
    if not initial_path.is_file():
        save_initial_encoder(initial_path, encoder)
    _extract(videos, seed_dir / "features" / "init", encoder, description, config, device)
    if not (seed_dir / "gvf.h5").is_file():
        # GVF = max-pool of the initial encoder's clip features, frozen during training (the paper's setup)
        write_gvf(seed_dir / "features" / "init", seed_dir / "gvf.h5", "max", [v.stem for v in videos])

    training: dict[str, dict] = {}
    for variant in TRAINED_VARIANTS:
        _say(f"seed {seed}: train {VARIANT_TITLES[variant]} ({config.epochs} epochs)")
        training[variant] = _train(variant, paths, seed_dir, config, seed)
        _say(f"seed {seed}: features with the {VARIANT_TITLES[variant]} encoder")
        model, model_description = load_model(str(seed_dir / "runs" / variant / BEST_NAME))
        _extract(videos, seed_dir / "features" / variant, model, model_description, config, device)

    results: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        _say(f"seed {seed}: probe and scores of the {VARIANT_TITLES[variant]} features")
        results[variant] = _evaluate(variant, seed_dir / "features" / variant, paths, seed_dir, config, seed)
        for key, value in training.get(variant, {}).items():
            if key.startswith("valid_acc") or key == "train_clips":
                results[variant][key] = value
    _figure(seed, seed_dir, paths, out, config)
    plot_training_curves({VARIANT_TITLES[v]: seed_dir / "runs" / v / "metrics.csv" for v in TRAINED_VARIANTS},
                         out / "figures" / f"seed{seed}_training.{config.figure_format}",
                         f"seed {seed}: training curves ({config.backbone}, {config.optimizer})")
    save_json_atomic(seed_dir / "metrics.json", results)
    return results


def _say(message: str) -> None:
    print(f"\n== experiment {time.strftime('%H:%M:%S')}: {message}", flush=True)


def run_experiment(out_dir: str | Path, config: ExperimentConfig = ExperimentConfig()) -> dict[str, Any]:
    """Run (or continue) the experiment in ``out_dir``; writes ``results.json`` and ``table.txt``, prints the table.

    Returns ``{"results": {variant: {metric: [one value per seed]}}, "table": str, "seconds": float}``.
    """
    from tspvideo.runs.experiment.plots import plot_metric_bars
    from tspvideo.core.fileio import save_json_atomic, save_text_atomic

    if not config.seeds:
        raise TspVideoError("the experiment needs at least one seed")
    if len(set(config.seeds)) != len(config.seeds):
        raise TspVideoError(f"seeds repeat: {list(config.seeds)}")
    if config.jobs < 1:
        raise TspVideoError(f"--jobs must be at least 1, got {config.jobs}")
    from tspvideo.models.backbones import batchnorm_momentum, check_input_size

    # Before anything is written: a backbone that cannot take these clips (e.g. mvit_v2_s only takes 16x224x224).
    check_input_size(config.backbone, config.clip_len, (config.crop, config.crop))
    slowest = batchnorm_momentum(config.backbone)
    if not config.weights and config.bn_momentum is None and slowest is not None and slowest < 0.01:
        _say(f"warning: {config.backbone}'s batch norm has momentum {slowest:g}: from random weights its running "
             "statistics stay near their initial values and validation and features use them; --bn-momentum 0.1 "
             "lets them follow the training")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_config(out, config)
    started = time.perf_counter()
    _say(f"synthetic dataset: {config.num_videos} videos, {config.num_classes} classes -> {out / 'data'}")
    paths = _prepare_data(out, config)
    if not config.weights:
        print("   no pretrained weights can be downloaded here: each seed starts from a seeded random encoder "
              "(--weights takes Kinetics ones)", flush=True)
    if config.jobs > 1 and len(config.seeds) > 1:
        from tspvideo.runs.experiment.jobs import run_seeds_in_processes

        per_seed = run_seeds_in_processes(config.seeds, out, paths, config, min(config.jobs, len(config.seeds)))
    else:
        per_seed = {seed: run_seed(seed, out, paths, config) for seed in config.seeds}
    results = collect(per_seed)
    save_json_atomic(out / "results.json", results)
    save_json_atomic(out / "comparison.json", {"seeds": list(config.seeds), **comparisons(results)})
    table = format_table(results, config)
    save_text_atomic(out / "table.txt", table + "\n")
    plot_metric_bars(results, list(TABLE_COLUMNS), VARIANT_TITLES,
                     out / "figures" / f"comparison.{config.figure_format}",
                     f"{len(config.seeds)} seed(s): bars = mean, points = seeds (lines join one seed)")
    seconds = time.perf_counter() - started
    print("\n" + table, flush=True)
    print(f"\nresults: {out / 'results.json'}; figures: {out / 'figures'}; this call took {seconds:.0f} s",
          flush=True)
    return {"results": results, "table": table, "seconds": seconds}


def collect(per_seed: dict[int, dict[str, dict[str, Any]]]) -> dict[str, dict[str, list]]:
    """``{seed: {variant: {metric: value}}}`` -> ``{variant: {metric: [one value per seed, in seed order]}}``."""
    seeds = list(per_seed)
    results: dict[str, dict[str, list]] = {}
    for variant in VARIANTS:
        metrics = list(per_seed[seeds[0]][variant])
        results[variant] = {m: [per_seed[s][variant].get(m) for s in seeds] for m in metrics}
    return results


def mean_std(values: list[float | None]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof 1; 0 for one value) and count of the values that are numbers."""
    kept = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    if kept.size == 0:
        return math.nan, math.nan, 0
    std = float(kept.std(ddof=1)) if kept.size > 1 else 0.0
    return float(kept.mean()), std, int(kept.size)


# Paired comparisons written to comparison.json: (a, b) means a - b per seed.
COMPARISONS = (("tsp", "tac"), ("tsp", "tsp_no_gvf"), ("tsp", "init"), ("tac", "init"))


def compare(results: dict[str, dict[str, list]], a: str, b: str) -> dict[str, Any]:
    """``{metric: PairedComparison of a - b}`` for every table column (the same seeds, in the same order)."""
    from tspvideo.evaluation.paired import paired_comparison

    return {key: paired_comparison(results[a].get(key, []), results[b].get(key, [])) for key, _, _ in TABLE_COLUMNS}


def comparisons(results: dict[str, dict[str, list]]) -> dict[str, dict[str, dict]]:
    """``{"tsp-tac": {metric: {differences, mean, std, ci_low, ci_high, wins, losses, sign_test_p}}}``."""
    return {f"{a}-{b}": {k: v.to_dict() for k, v in compare(results, a, b).items()} for a, b in COMPARISONS}


def format_table(results: dict[str, dict[str, list]], config: ExperimentConfig | None = None) -> str:
    """The Table-1-like table: one row per variant, mean ± std over seeds, plus the paired TSP - TAC gap."""
    seeds = len(next(iter(results["tsp"].values())))
    width = 17
    header = f"{'features':<18}" + "".join(f"{title:>{width}}" for _, title, _ in TABLE_COLUMNS)
    lines = [header, "-" * len(header)]
    for variant in VARIANTS:
        cells = []
        for key, _, scale in TABLE_COLUMNS:
            mean, std, n = mean_std(results[variant].get(key, []))
            cells.append("n/a" if n == 0 else f"{mean * scale:.1f} ± {std * scale:.1f}" if scale != 1.0
                         else f"{mean:.3f} ± {std:.3f}")
        lines.append(f"{VARIANT_TITLES[variant]:<18}" + "".join(f"{c:>{width}}" for c in cells))
    # Paired over seeds (same initial encoder and probe seed): the spread of the gap, not of each number.
    gaps = compare(results, "tsp", "tac")
    rows = {"TSP - TAC (wins)": [], "  95% CI (boot.)": [], "  sign test p": []}
    for key, _, scale in TABLE_COLUMNS:
        gap = gaps[key]
        n = gap.wins + gap.losses + sum(d == 0 for d in gap.differences)
        if not gap.differences:
            cells = ["n/a"] * 3
        elif scale != 1.0:
            cells = [f"{gap.mean * scale:+.1f} ({gap.wins}/{n})",
                     f"[{gap.ci_low * scale:+.1f}, {gap.ci_high * scale:+.1f}]", f"{gap.sign_test_p:.3f}"]
        else:
            cells = [f"{gap.mean:+.3f} ({gap.wins}/{n})", f"[{gap.ci_low:+.3f}, {gap.ci_high:+.3f}]",
                     f"{gap.sign_test_p:.3f}"]
        for row, cell in zip(rows.values(), cells, strict=True):
            row.append(cell)
    for title, cells in rows.items():
        lines.append(f"{title:<18}" + "".join(f"{c:>{width}}" for c in cells))
    edge = f"{(config or ExperimentConfig()).length_edges[0]:g}"
    lines.append("")
    lines.append(f"mean ± sample std over {seeds} seed(s); mAP and AUC in %: detection mAP of the localization "
                 "probe at tIoU 0.5 / 0.75 / 0.95 and averaged over 0.5:0.05:0.95; AUC of AR-AN (proposals);")
    lines.append(f"avg mAP short / long: ground-truth instances <= {edge} s / > {edge} s (validation videos); "
                 "contrast = within-instance minus fg-bg cosine similarity;")
    lines.append("fg/bg AUC: a linear foreground/background probe over the validation videos' features, "
                 "folds by video. TSP - TAC: the per-seed difference, mean (seeds where TSP is ahead / seeds),")
    lines.append("a 95 % percentile-bootstrap interval of its mean over seeds and the exact two-sided sign test's p "
                 f"(ties dropped; with {seeds} seed(s) p >= {min(1.0, 2 / 2 ** seeds):.4g}).")
    return "\n".join(lines)
