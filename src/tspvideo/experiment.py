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

from tspvideo.errors import TspVideoError

VARIANTS = ("tsp", "tac", "tsp_no_gvf", "init")
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
RUNTIME_FIELDS = ("workers", "device", "progress")


@dataclass(frozen=True)
class ExperimentConfig:
    """Sizes of the experiment; the defaults are the run in ``docs/experiment.md`` (under an hour on 2 CPU cores)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    # synthetic data, shared by all seeds
    data_seed: int = 0
    num_videos: int = 32
    num_classes: int = 4
    video_size: tuple[int, int] = (48, 48)  # width, height
    min_duration: float = 10.0
    max_duration: float = 14.0
    # encoder and clips
    backbone: str = "r3d_18"  # the fastest registered encoder on a CPU (paper Table 2 has it too)
    weights: str | None = None  # initial backbone weights; None: seeded random (nothing can be downloaded here)
    clip_len: int = 8
    fps: float = 15.0
    clips_per_segment: int = 2
    resize: tuple[int, int] = (36, 36)
    crop: int = 32
    feature_stride: int = 8  # frames between features (at fps): 0.53 s, the probe's time resolution
    # training, identical for the three variants
    epochs: int = 4
    batch_size: int = 8  # more steps for the same clips: from random weights the number of updates counts
    backbone_lr: float = 5e-4  # the demo's rate: from random weights the paper's 1e-4 barely moves the backbone
    fc_lr: float = 2e-3
    warmup_epochs: float = 1.0
    milestones: tuple[float, ...] = ()
    # evaluation
    probe_epochs: int = 30
    probe_temporal_size: int | None = 100
    length_edges: tuple[float, ...] = (3.0,)  # short (<= 3 s) vs long instances; synthetic ones are 1.5-8 s
    figure_format: str = "png"
    # runtime (no effect on the numbers)
    workers: int = 1
    device: str = "auto"
    progress: bool = True


# Every step at the smallest sizes that still work (16x16 crops: the backbone's last stage sees 1x1 cells).
QUICK_CONFIG = ExperimentConfig(
    seeds=(0, 1), num_videos=6, num_classes=2, video_size=(32, 32), min_duration=6.0, max_duration=7.0,
    clip_len=4, clips_per_segment=1, resize=(16, 16), crop=16, feature_stride=8, epochs=1, batch_size=4,
    probe_epochs=2, workers=0,
)


def config_dict(config: ExperimentConfig) -> dict[str, Any]:
    """The configuration as JSON-ready values (tuples as lists)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()}


def _demo_config(config: ExperimentConfig, seed: int):
    """The demo's configuration with the experiment's sizes: its data and training helpers are reused."""
    from tspvideo.demo import DemoConfig

    return DemoConfig(
        num_videos=config.num_videos, num_classes=config.num_classes, video_size=tuple(config.video_size),
        min_duration=config.min_duration, max_duration=config.max_duration, backbone=config.backbone,
        weights=config.weights, clip_len=config.clip_len, fps=config.fps,
        clips_per_segment=config.clips_per_segment, resize=tuple(config.resize), crop=config.crop,
        feature_stride=config.feature_stride, epochs=config.epochs, batch_size=config.batch_size,
        backbone_lr=config.backbone_lr, fc_lr=config.fc_lr, warmup_epochs=config.warmup_epochs,
        milestones=tuple(config.milestones), workers=config.workers, device=config.device, seed=seed,
        progress=config.progress,
    )


def _check_config(out: Path, config: ExperimentConfig) -> None:
    """Refuse to continue a run made with other settings (its outputs would be mixed with new ones)."""
    from tspvideo.fileio import save_json_atomic

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
    from tspvideo.demo import prepare_dataset
    from tspvideo.fileio import save_json_atomic

    marker = out / "data" / "paths.json"
    if marker.is_file():
        return {k: Path(v) for k, v in json.loads(marker.read_text(encoding="utf-8")).items()}
    paths = prepare_dataset(out / "data", _demo_config(config, config.data_seed))
    save_json_atomic(marker, {k: str(v) for k, v in paths.items()})  # written last: the data step is complete
    return paths


def _extract(videos: list[Path], out_dir: Path, model, description: dict, config: ExperimentConfig,
             device: str) -> None:
    from tspvideo.extract import ClipSettings, extract_dataset

    settings = ClipSettings(clip_len=config.clip_len, fps=config.fps, stride=config.feature_stride)
    prep = _demo_config(config, 0).preprocessing
    # extract_dataset skips videos whose features exist: an interrupted extraction resumes.
    report = extract_dataset(videos, out_dir, model, description, settings, batch_size=32, device=device,
                             num_workers=config.workers, prep=prep, progress=config.progress)
    if report.failed:
        raise TspVideoError(f"feature extraction failed for {len(report.failed)} video(s): "
                            f"{next(iter(report.failed.items()))}")


def _train(variant: str, paths: dict[str, Path], seed_dir: Path, config: ExperimentConfig, seed: int) -> dict:
    """Train one variant from the seed's initial encoder (or reuse a finished run); returns its best metrics."""
    from tspvideo import train
    from tspvideo.demo import train_arguments
    from tspvideo.fileio import save_json_atomic

    run_dir = seed_dir / "runs" / variant
    marker = run_dir / "done.json"
    if marker.is_file():
        return json.loads(marker.read_text(encoding="utf-8"))
    args = train_arguments(paths, run_dir, seed_dir / "gvf.h5", _demo_config(config, seed),
                           seed_dir / "initial_encoder.pth")
    # The variants differ only in these flags (see tspvideo.train).
    if variant == "tac":
        args.heads, args.gvf = ["action"], None
    elif variant == "tsp_no_gvf":
        args.heads, args.gvf, args.no_gvf = ["action", "region"], None, True
    if (run_dir / train.CHECKPOINT_NAME).is_file():
        args.resume = "auto"
    result = train.main(args)
    best = {k: float(v) for k, v in result["best"].items() if k.startswith("valid_acc")}
    summary = {"best_epoch": int(result["best"]["epoch"]) + 1, **best,
               "train_clips": int(sum(float(r.get("train_clips") or 0) for r in result["metrics"]))}
    save_json_atomic(marker, summary)
    return summary


def _read_ground_truth(path: Path) -> dict:
    """The annotation JSON, checked like every command checks one."""
    from tspvideo.data.activitynet_json import load_json, read_annotation_database

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
                                          clip_len=config.clip_len, fps=config.fps, stride=config.feature_stride,
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
                                        config.fps, config.feature_stride)
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
    from tspvideo import train
    from tspvideo.demo import _initial_encoder
    from tspvideo.distributed import resolve_device
    from tspvideo.fileio import save_json_atomic
    from tspvideo.gvf import write_gvf
    from tspvideo.models.weights import load_model

    seed_dir = out / f"seed_{seed}"
    seed_dir.mkdir(parents=True, exist_ok=True)
    device = str(resolve_device(config.device))
    videos = sorted(Path(paths["videos"]).glob("*.mp4"))
    demo_config = _demo_config(config, seed)

    _say(f"seed {seed}: initial encoder ({config.weights or 'seeded random weights'}) and its features")
    encoder, description = _initial_encoder(demo_config)
    initial_path = seed_dir / "initial_encoder.pth"
    if not initial_path.is_file():
        train.save_checkpoint(initial_path, {"model": encoder.state_dict(), "model_config": encoder.config.to_dict(),
                                             "preprocessing": "tsp"})
    _extract(videos, seed_dir / "features" / "init", encoder, description, config, device)
    if not (seed_dir / "gvf.h5").is_file():
        # GVF = max-pool of the initial encoder's clip features, frozen during training (the paper's setup)
        write_gvf(seed_dir / "features" / "init", seed_dir / "gvf.h5", "max", [v.stem for v in videos])

    training: dict[str, dict] = {}
    for variant in TRAINED_VARIANTS:
        _say(f"seed {seed}: train {VARIANT_TITLES[variant]} ({config.epochs} epochs)")
        training[variant] = _train(variant, paths, seed_dir, config, seed)
        _say(f"seed {seed}: features with the {VARIANT_TITLES[variant]} encoder")
        model, model_description = load_model(str(seed_dir / "runs" / variant / train.BEST_NAME))
        _extract(videos, seed_dir / "features" / variant, model, model_description, config, device)

    results: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        _say(f"seed {seed}: probe and scores of the {VARIANT_TITLES[variant]} features")
        results[variant] = _evaluate(variant, seed_dir / "features" / variant, paths, seed_dir, config, seed)
        for key, value in training.get(variant, {}).items():
            if key.startswith("valid_acc") or key == "train_clips":
                results[variant][key] = value
    _figure(seed, seed_dir, paths, out, config)
    save_json_atomic(seed_dir / "metrics.json", results)
    return results


def _say(message: str) -> None:
    print(f"\n== experiment: {message}", flush=True)


def run_experiment(out_dir: str | Path, config: ExperimentConfig = ExperimentConfig()) -> dict[str, Any]:
    """Run (or continue) the experiment in ``out_dir``; writes ``results.json`` and ``table.txt``, prints the table.

    Returns ``{"results": {variant: {metric: [one value per seed]}}, "table": str, "seconds": float}``.
    """
    from tspvideo.fileio import save_json_atomic, save_text_atomic

    if not config.seeds:
        raise TspVideoError("the experiment needs at least one seed")
    if len(set(config.seeds)) != len(config.seeds):
        raise TspVideoError(f"seeds repeat: {list(config.seeds)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_config(out, config)
    started = time.perf_counter()
    _say(f"synthetic dataset: {config.num_videos} videos, {config.num_classes} classes -> {out / 'data'}")
    paths = _prepare_data(out, config)
    if not config.weights:
        print("   no pretrained weights can be downloaded here: each seed starts from a seeded random encoder "
              "(--weights takes Kinetics ones)", flush=True)
    per_seed = {seed: run_seed(seed, out, paths, config) for seed in config.seeds}
    results = collect(per_seed)
    save_json_atomic(out / "results.json", results)
    table = format_table(results, config)
    save_text_atomic(out / "table.txt", table + "\n")
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


def format_table(results: dict[str, dict[str, list]], config: ExperimentConfig | None = None) -> str:
    """The Table-1-like table: one row per variant, mean ± std over seeds, plus the paired TSP - TAC gap."""
    seeds = len(next(iter(results["tsp"].values())))
    width = 15
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
    cells = []
    for key, _, scale in TABLE_COLUMNS:
        pairs = [(a - b) for a, b in zip(results["tsp"].get(key, []), results["tac"].get(key, []), strict=True)
                 if a is not None and b is not None]
        mean, std, n = mean_std(pairs)
        wins = sum(p > 0 for p in pairs)
        cells.append("n/a" if n == 0 else (f"{mean * scale:+.1f} ({wins}/{n})" if scale != 1.0
                                           else f"{mean:+.3f} ({wins}/{n})"))
    lines.append(f"{'TSP - TAC (wins)':<18}" + "".join(f"{c:>{width}}" for c in cells))
    edge = f"{(config or ExperimentConfig()).length_edges[0]:g}"
    lines.append("")
    lines.append(f"mean ± sample std over {seeds} seed(s); mAP and AUC in %: detection mAP of the localization "
                 "probe at tIoU 0.5 / 0.75 / 0.95 and averaged over 0.5:0.05:0.95; AUC of AR-AN (proposals);")
    lines.append(f"avg mAP short / long: ground-truth instances <= {edge} s / > {edge} s (validation videos); "
                 "contrast = within-instance minus fg-bg cosine similarity;")
    lines.append("fg/bg AUC: a linear foreground/background probe over the validation videos' features, "
                 "folds by video. Last row: TSP minus TAC per seed, mean (seeds where TSP is ahead / seeds).")
    return "\n".join(lines)
