"""``run_experiment``: the synthetic dataset once, every seed (one after the other or side by side), the report."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tspvideo.core.fileio import save_json_atomic
from tspvideo.models.backbones import batchnorm_momentum
from tspvideo.runs.experiment.config import CPU_CONFIG, ExperimentConfig, record_config
from tspvideo.runs.experiment.jobs import run_seeds_in_processes
from tspvideo.runs.experiment.report import write_report
from tspvideo.runs.experiment.seed import run_seed, say
from tspvideo.runs.experiment.stage0 import run_stage0, stage0_dir
from tspvideo.runs.steps import PreparedDataset, check_weights, prepare_dataset
from tspvideo.video.synthetic import SyntheticConfig

DATA_DIR = "data"
DATA_MARKER = "paths.json"  # in the data folder, written last: the data step is complete


def prepare_data(out: Path, config: ExperimentConfig, synthetic: SyntheticConfig | None = None) -> PreparedDataset:
    """The synthetic dataset ``synthetic`` (default: the experiment's) in ``out/data``: generated once, then
    reused by every call."""
    marker = out / DATA_DIR / DATA_MARKER
    if marker.is_file():
        return PreparedDataset.from_dict(json.loads(marker.read_text(encoding="utf-8")))
    data = prepare_dataset(out / DATA_DIR, synthetic or config.data, progress=config.progress)
    save_json_atomic(marker, data.to_dict())
    return data


def _warn_slow_batch_norm(config: ExperimentConfig) -> None:
    slowest = batchnorm_momentum(config.backbone)
    if not config.weights and config.bn_momentum is None and slowest is not None and slowest < 0.01:
        say(f"warning: {config.backbone}'s batch norm has momentum {slowest:g}: from random weights its running "
            "statistics stay near their initial values and validation and features use them; --bn-momentum 0.1 "
            "lets them follow the training")


def run_experiment(out_dir: str | Path, config: ExperimentConfig = CPU_CONFIG) -> dict[str, Any]:
    """Run (or continue) the experiment in ``out_dir``; writes ``results.json`` and ``table.txt``, prints the table.

    Returns ``{"results": {variant: {metric: [one value per seed]}}, "table": str, "seconds": float}``.
    """
    config.validate()  # before anything is written
    _warn_slow_batch_norm(config)
    check_weights(config.weights)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record_config(out, config)
    started = time.perf_counter()
    say(f"synthetic dataset: {config.data.num_videos} videos, {config.data.num_classes} classes -> {out / DATA_DIR}")
    data = prepare_data(out, config)
    if config.data.decoy_background:
        # How ambiguous the clip alone is on this data, and what the video adds (context.py).
        from tspvideo.runs.experiment.context import context_ambiguity

        ambiguity = context_ambiguity(config.data)
        save_json_atomic(out / "context.json", ambiguity)
        say("context task, best frame-level foreground rule on the plans (validation frames): "
            + ", ".join(f"{k} {v:.3f}" for k, v in ambiguity.items()))
    if config.stage0 is not None:
        run_stage0(out, prepare_data(stage0_dir(out), config, config.stage0.data), config)
    elif not config.weights:
        print("   no pretrained weights can be downloaded here: each seed starts from a seeded random encoder "
              "(--weights takes Kinetics ones)", flush=True)
    if config.jobs > 1 and len(config.seeds) > 1:
        per_seed = run_seeds_in_processes(config.seeds, out, data, config, min(config.jobs, len(config.seeds)))
    else:
        per_seed = {seed: run_seed(seed, out, data, config) for seed in config.seeds}
    results, table = write_report(out, per_seed, config)
    seconds = time.perf_counter() - started
    print("\n" + table, flush=True)
    print(f"\nresults: {out / 'results.json'}; figures: {out / 'figures'}; this call took {seconds:.0f} s",
          flush=True)
    return {"results": results, "table": table, "seconds": seconds}
