"""`tspvideo experiment --quick` end to end: every step, results.json and the table."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tspvideo.runs.experiment
from tspvideo.cli import main as cli_main
from tspvideo.models.backbones import check_input_size
from tspvideo.runs.experiment.config import (
    MATCHED_VARIANTS,
    PRESETS,
    QUICK_CONFIG,
    QUICK_STAGE0,
    VARIANTS,
    Stage0Config,
)
from tspvideo.runs.experiment.context import context_ambiguity
from tspvideo.runs.experiment.match import match_epochs
from tspvideo.runs.experiment.report import TABLE_COLUMNS, format_table, mean_std
from tspvideo.video.synthetic import MOTION_PATTERNS


def test_experiment_quick_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "exp"
    assert cli_main(["experiment", "--quick", "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    seeds = len(QUICK_CONFIG.seeds)
    assert set(results) == {*QUICK_CONFIG.variants, "init", *MATCHED_VARIANTS}
    for variant, metrics in results.items():
        for key, _, _ in TABLE_COLUMNS:
            assert key in metrics, (variant, key)
        for key in ("mAP@0.5", "mAP_avg", "AUC", "fg_bg_probe_auc"):
            values = metrics[key]
            assert len(values) == seeds and all(0.0 <= v <= 1.0 for v in values), (variant, key, values)
    assert "valid_acc_action" in results["tac"] and "valid_acc_region" in results["tsp"]
    assert "valid_acc_region" not in results["tac"] and "valid_acc_action" not in results["init"]
    # Matched progress: both at the lower of the two best action accuracies, each at its first epoch reaching it.
    reuses = []
    for seed in range(seeds):
        match = json.loads((out / f"seed_{QUICK_CONFIG.seeds[seed]}" / "match.json").read_text())
        assert match["level"] == min(match["tsp"]["best_acc_action"], match["tac"]["best_acc_action"])
        for variant in ("tsp", "tac"):
            assert match[variant]["valid_acc_action"] >= match["level"]
            assert results[f"{variant}_matched"]["epoch"][seed] == match[variant]["epoch"]
            # a matched epoch that is the variant's best epoch reuses its features and probe (the same model)
            name, seed_value = f"{variant}_matched", QUICK_CONFIG.seeds[seed]
            reused = match[variant]["epoch"] == results[variant]["best_epoch"][seed]
            assert (out / f"seed_{seed_value}" / "features" / name).exists() != reused
            if reused:  # the shortcut's assumption: best.pth holds that epoch's weights
                run_dir = out / f"seed_{seed_value}" / "runs" / variant
                best, matched = _load(run_dir / "best.pth"), _load(run_dir / f"epoch_{match[variant]['epoch']}.pth")
                assert best.keys() == matched.keys() and all(torch.equal(best[k], matched[k]) for k in best)
                assert all(results[name][k][seed] == results[variant][k][seed] for k, _, _ in TABLE_COLUMNS)
                reuses.append(name)
    assert reuses, "the quick run should match at least one variant at its best epoch"

    printed = capsys.readouterr().out
    table = (out / "table.txt").read_text()
    assert table.strip() in printed
    for title in ("TSP (max GVF)", "TAC", "TSP w/o GVF", "initial encoder", "TSP - TAC", "mAP@0.75", " ± ",
                  "At matched validation action accuracy", "TAC, matched acc.", "correlation r ="):
        assert title in table
    figures = sorted(p.name for p in (out / "figures").iterdir())
    # per seed: one similarity figure per variant + all side by side + training curves; one comparison figure
    assert len(figures) == seeds * (len(QUICK_CONFIG.variants) + 3) + 1 and all(f.endswith(".png") for f in figures)
    assert "comparison.png" in figures and "seed0_training.png" in figures
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["seeds"] == list(QUICK_CONFIG.seeds)
    gap = comparison["tsp-tac"]["mAP_avg"]
    expected = [a - b for a, b in zip(results["tsp"]["mAP_avg"], results["tac"]["mAP_avg"], strict=True)]
    assert gap["differences"] == pytest.approx(expected) and 0.0 <= gap["sign_test_p"] <= 1.0
    relation = comparison["tsp-tac"]["accuracy_vs_localization"]
    assert relation["mAP_avg_gap"] == pytest.approx(expected)
    assert comparison["tsp-init"]["accuracy_vs_localization"] is None  # the initial encoder was not trained
    assert "smoke test" in printed
    for seed in QUICK_CONFIG.seeds:
        assert (out / f"seed_{seed}" / "runs" / "tac" / "best.pth").is_file()
        # every epoch's model is kept for the matched comparison, only where it is needed
        assert len(list((out / f"seed_{seed}" / "runs" / "tac").glob("epoch_*.pth"))) == QUICK_CONFIG.epochs
        assert not list((out / f"seed_{seed}" / "runs" / "tsp_no_gvf").glob("epoch_*.pth"))
    # Training clips came from the shared frame cache: each training video decoded once, for all runs.
    cached = list((out / "frame_cache").glob("*.npy"))
    assert 0 < len(cached) <= QUICK_CONFIG.data.num_videos

    # A second call finds every step done and gives the same numbers (resumable, deterministic probe).
    assert cli_main(["experiment", "--quick", "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    assert json.loads((out / "results.json").read_text()) == results
    # Continuing with other settings would mix runs: refused, nothing changed.
    capsys.readouterr()
    assert cli_main(["experiment", "--quick", "--epochs", "3", "--out", str(out), "--device", "cpu",
                     "--no-progress"]) == 2
    assert "other settings (epochs)" in capsys.readouterr().err
    assert json.loads((out / "results.json").read_text()) == results

    # A continuation may report fewer variants (nothing retrained) or add some: each training is seeded on its
    # own, so a variant trained without the others, in another folder, gives the numbers it gave beside them.
    assert cli_main(["experiment", "--quick", "--variants", "tsp", "tac", "--out", str(out), "--device", "cpu",
                     "--no-progress"]) == 0
    assert json.loads((out / "results.json").read_text()) == {k: v for k, v in results.items() if k != "tsp_no_gvf"}
    other = tmp_path / "other"
    for variants in (["tsp_no_gvf"], ["tsp_no_gvf", "tac"]):
        assert cli_main(["experiment", "--quick", "--seeds", "0", "--variants", *variants, "--out", str(other),
                         "--device", "cpu", "--no-progress"]) == 0
        alone = json.loads((other / "results.json").read_text())
        assert set(alone) == {*variants, "init"}
        for variant in alone:
            assert alone[variant] == {k: v[:1] for k, v in results[variant].items()}, variant


@pytest.fixture
def one_thread():
    """One CPU thread here and in the seeds' processes: float sums in the same order, bit-equal numbers."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_seeds_in_parallel_processes_match_one_by_one_and_a_failed_seed_keeps_the_rest(tmp_path, capsys, one_thread):
    quick = ["experiment", "--quick", "--device", "cpu", "--no-progress"]
    parallel = tmp_path / "parallel"
    assert cli_main([*quick, "--out", str(parallel), "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err and not parallel.exists()

    # Seed 1's initial encoder is a broken file: seed 1 fails, seed 0 finishes and keeps its outputs.
    broken = parallel / "seed_1" / "initial_encoder.pth"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a checkpoint")
    assert cli_main([*quick, "--out", str(parallel), "--jobs", "2"]) == 2
    err = capsys.readouterr().err
    assert "seed(s) 1 failed" in err and str(parallel / "seed_1" / "log.txt") in err, err
    assert "Traceback" in (parallel / "seed_1" / "log.txt").read_text()
    assert (parallel / "seed_0" / "metrics.json").is_file() and not (parallel / "results.json").exists()
    seed0_trained = (parallel / "seed_0" / "runs" / "tsp" / "done.json").stat().st_mtime_ns

    broken.unlink()
    assert cli_main([*quick, "--out", str(parallel), "--jobs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "seed 1: finished" in printed and "seed 0: finished" in printed
    # Each seed's process sized its thread pools to its share of this process's threads (one here).
    assert "torch threads 1, OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1" in (parallel / "seed_0" / "log.txt").read_text()
    # The same numbers as the seeds computed one after the other in this process.
    one_by_one = tmp_path / "one_by_one"
    assert cli_main([*quick, "--out", str(one_by_one)]) == 0
    results = json.loads((parallel / "results.json").read_text())
    assert results == json.loads((one_by_one / "results.json").read_text())
    # Seed 0's training was kept from the failed call, not redone.
    assert (parallel / "seed_0" / "runs" / "tsp" / "done.json").stat().st_mtime_ns == seed0_trained


def test_stage0_context_task_avg_gvf_and_early_stopping(tmp_path, capsys):
    out = tmp_path / "exp"
    argv = ["experiment", "--quick", "--seeds", "0", "--stage0", "--decoy-background", "--num-classes", "4",
            "--variants", "tsp", "tac", "tsp_avg_gvf", "--epochs", "4", "--early-stop-patience", "1", "--out", str(out),
            "--device", "cpu", "--no-progress"]
    assert cli_main([*argv, "--early-stop-patience", "0"]) == 2  # refused before any work
    assert "--early-stop-patience must be at least 1" in capsys.readouterr().err and not out.exists()
    assert cli_main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"tsp", "tac", "tsp_avg_gvf", "init", *MATCHED_VARIANTS}
    # Stage 0 trained on the other four classes, and every variant started from its encoder.
    stage0 = out / "stage0"
    assert json.loads((stage0 / "data" / "label_map.json").read_text()) == list(MOTION_PATTERNS[4:8])
    assert (stage0 / "runs" / "best.pth").is_file() and (stage0 / "runs" / "done.json").is_file()
    initial = _load(out / "seed_0" / "initial_encoder.pth")
    stage0_model = _load(stage0 / "runs" / "best.pth")
    backbone = [k for k in initial if k.startswith("features.")]  # the heads (fc) are new
    assert backbone and all(torch.equal(initial[k], stage0_model[k]) for k in backbone)
    # The average-pooled GVF is its own file, with its pool recorded.
    assert (out / "seed_0" / "gvf_avg.h5").is_file() and "avg GVF - no GVF" not in (out / "table.txt").read_text()
    # The context task's measurement on the plans: the clip alone is no better than the majority guess.
    context = json.loads((out / "context.json").read_text())
    assert set(context) == {"foreground_share", "clip", "clip+dominant", "clip+set", "linear:clip", "linear:clip+avg",
                            "linear:clip+max"}
    # Early stopping: each run stopped once an epoch did not improve on the best, or at --epochs.
    for variant in ("tsp", "tac", "tsp_avg_gvf"):
        done = json.loads((out / "seed_0" / "runs" / variant / "done.json").read_text())
        assert done["epochs_run"] == min(4, done["best_epoch"] + 1), (variant, done)
    done = json.loads((stage0 / "runs" / "done.json").read_text())
    assert done["epochs_run"] == min(QUICK_STAGE0.epochs, done["best_epoch"] + 1)


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def test_context_task_clip_alone_is_ambiguous_and_the_video_tells():
    base = dataclasses.replace(PRESETS["context"].data, num_videos=40)
    decoy = context_ambiguity(base)
    # Without the decoy the pattern seen says it all; with it the clip alone does no better than the majority
    # guess, and knowing which pattern the video shows most lifts it well above.
    assert context_ambiguity(dataclasses.replace(base, decoy_background=False))["clip"] == 1.0
    assert decoy["clip"] <= max(decoy["foreground_share"], 1 - decoy["foreground_share"])
    assert decoy["clip+dominant"] > decoy["clip"] + 0.2
    # A linear classifier (TSP's region head is one) cannot use it: foreground = "the clip's pattern is not the
    # video's dominant one" is an interaction of the two inputs, not a sum. Without decoys it needs no video.
    for key in ("linear:clip", "linear:clip+avg", "linear:clip+max"):
        assert decoy[key] < decoy["clip+dominant"] - 0.2, key
        assert context_ambiguity(dataclasses.replace(base, decoy_background=False))[key] == 1.0


def test_match_epochs_takes_the_first_epoch_reaching_the_lower_best(tmp_path):
    runs = {}
    for variant, accuracies in (("tsp", [0.3, 0.6, 0.7, 0.65]), ("tac", [0.2, 0.5, 0.62, 0.61, 0.64])):
        runs[variant] = tmp_path / variant
        runs[variant].mkdir()
        rows = "".join(f"{i + 1},{a}\n" for i, a in enumerate(accuracies))
        (runs[variant] / "metrics.csv").write_text("epoch,valid_acc_action\n" + rows)
    match = match_epochs(runs)
    assert match["level"] == 0.64
    assert (match["tsp"]["epoch"], match["tac"]["epoch"]) == (3, 5)


def test_table_statistics():
    assert mean_std([1.0, 3.0]) == (2.0, 2.0 ** 0.5, 2)
    assert mean_std([0.5]) == (0.5, 0.0, 1)
    results = {v: {key: [0.5, 0.7] for key, _, _ in TABLE_COLUMNS} for v in VARIANTS}
    results["tac"]["mAP@0.5"] = [0.4, 0.6]
    results["tsp"]["valid_acc_action"], results["tac"]["valid_acc_action"] = [0.8, 0.7], [0.7, 0.7]
    results["tsp"]["mAP_avg"] = [0.6, 0.8]
    results["tsp_matched"]["epoch"], results["tac_matched"]["epoch"] = [3, 4], [5, 6]
    table = format_table(results)
    assert "50.0 ± 14.1" in table and "+10.0 (2/2)" in table
    # the accuracy gap and the mAP gap per seed, and their correlation
    assert "action accuracy gap +0.100 +0.000; avg mAP gap +10.0 +10.0" in table
    assert "avg GVF - no GVF" in table and "At matched validation action accuracy" in table
    assert "epochs (TSP / TAC) per seed: 3/5 4/6" in table
    assert "[+10.0, +10.0]" in table and "95% CI" in table and "sign test p" in table
    assert "with 2 seed(s) p >= 0.5)" in table  # the sign test's floor for this number of seeds


def _config(*argv: str):
    from tspvideo.cli import build_parser
    from tspvideo.commands.experiment import build_config

    return build_config(build_parser().parse_args(["experiment", "--out", "unused", *argv]))


def test_presets_and_overrides():
    assert _config() == dataclasses.replace(PRESETS["cpu"], device="auto")
    assert len(PRESETS["cpu"].seeds) >= 5 and PRESETS["quick"].stride == PRESETS["quick"].clip_len // 2
    assert _config("--quick", "--no-progress") == dataclasses.replace(QUICK_CONFIG, progress=False)
    gpu = _config("--preset", "gpu", "--device", "cpu", "--num-videos", "6", "--epochs", "1", "--seeds", "3")
    assert gpu.backbone == "r2plus1d_18" and gpu.device == "cpu"
    assert (gpu.data.num_videos, gpu.epochs, gpu.seeds) == (6, 1, (3,))
    assert dataclasses.replace(gpu.data, num_videos=PRESETS["gpu"].data.num_videos) == PRESETS["gpu"].data
    assert _config("--num-classes", "3").data.num_classes == 3
    assert _config("--classes", "3").data.num_classes == 3  # the former spelling still works, with a warning
    assert _config("--stride", "5").feature_stride == 5
    s3d = _config("--backbone", "s3d", "--clip-len", "16", "--fps", "15", "--resize", "240", "240", "--crop", "224")
    assert (s3d.backbone, s3d.clip_len, s3d.fps, s3d.resize, s3d.crop, s3d.stride) == ("s3d", 16, 15.0, (240, 240),
                                                                                         224, 8)
    check_input_size(s3d.backbone, s3d.clip_len, (s3d.crop, s3d.crop))
    assert PRESETS["cpu"].bn_momentum is None and _config("--bn-momentum", "0.1").bn_momentum == 0.1
    assert _config("--no-early-stop").early_stop_patience is None and PRESETS["cpu"].early_stop_patience
    # The default starts from stage 0's encoder; scratch from random weights, as do given weights.
    assert _config().stage0 == Stage0Config() and _config("--preset", "context").stage0 == Stage0Config()
    assert _config("--preset", "scratch").stage0 is None and _config("--no-stage0") == dataclasses.replace(
        PRESETS["cpu"], stage0=None, device="auto")
    assert _config("--weights", "w.pth").stage0 is None and _config("--preset", "scratch", "--stage0").stage0
    assert PRESETS["scratch"] == dataclasses.replace(PRESETS["cpu"], stage0=None, epochs=16)
    assert _config("--preset", "context").data.decoy_background and _config("--decoy-background").data.decoy_background
    assert _config("--variants", "tsp", "tsp_no_gvf").variants == ("tsp", "tsp_no_gvf")
    assert not _config("--variants", "tsp", "tsp_no_gvf").matched and PRESETS["cpu"].matched


def test_contradictory_starts_are_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "exp"
    result = subprocess.run([sys.executable, "-m", "tspvideo.cli", "experiment", "--out", str(out), "--stage0",
                             "--no-stage0"], capture_output=True, text=True)
    assert result.returncode == 2 and "not allowed with argument --stage0" in result.stderr
    assert "Traceback" not in result.stderr
    assert cli_main(["experiment", "--out", str(out), "--stage0", "--weights", "w.pth", "--no-progress"]) == 2
    assert "--stage0 and --weights both set the initial encoder" in capsys.readouterr().err
    assert not out.exists()


def test_backbone_that_cannot_take_the_clips_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "exp"
    assert cli_main(["experiment", "--out", str(out), "--backbone", "mvit_v2_s", "--no-progress"]) == 2
    assert "mvit_v2_s cannot take clips of 8 frames" in capsys.readouterr().err
    assert not out.exists()


def test_slow_batch_norm_from_random_weights_is_announced(tmp_path, capsys, monkeypatch):
    from tspvideo.runs.experiment import run as experiment

    class Stop(Exception):
        pass

    def stop(*args):
        raise Stop

    monkeypatch.setattr(experiment, "prepare_data", stop)
    for extra, warned in (([], True), (["--bn-momentum", "0.1"], False)):
        with pytest.raises(Stop):
            cli_main(["experiment", "--quick", "--out", str(tmp_path / str(warned)), "--backbone", "s3d",
                      "--clip-len", "8", "--resize", "40", "40", "--crop", "32", "--no-progress", *extra])
        assert ("s3d's batch norm has momentum 0.001" in capsys.readouterr().out) is warned


def test_training_curves_keep_one_colour_per_run_across_panels(tmp_path, monkeypatch):
    from tspvideo.runs.experiment import plots as experiment_plots

    tac = tmp_path / "tac.csv"
    tac.write_text("epoch,train_loss,valid_acc_action\n1,1.4,0.3\n2,1.2,0.5\n")
    tsp = tmp_path / "tsp.csv"
    tsp.write_text("epoch,train_loss,valid_acc_action,valid_acc_region\n1,2.1,0.3,0.6\n2,1.9,0.4,0.7\n")
    saved = {}
    monkeypatch.setattr(experiment_plots, "_save", lambda fig, path: saved.setdefault("fig", fig))
    experiment_plots.plot_training_curves({"TAC": tac, "TSP w/o GVF": tsp}, tmp_path / "x.png", "t")
    loss, _, region = saved["fig"].axes
    colours = {line.get_label(): line.get_color() for line in loss.lines}
    assert [line.get_color() for line in region.lines] == [colours["TSP w/o GVF"]] != [colours["TAC"]]


def _imported_modules(path: Path) -> set[str]:
    """Every module a source file imports, at its top or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_experiment_does_not_import_the_demo():
    files = sorted(Path(tspvideo.runs.experiment.__file__).parent.glob("*.py"))
    assert {f.stem for f in files} >= {"config", "seed", "jobs", "report", "run"}
    for path in files:
        demo = {name for name in _imported_modules(path) if name.startswith("tspvideo.runs.demo")}
        assert not demo, (path.name, demo)
