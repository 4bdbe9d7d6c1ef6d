"""`tspvideo experiment --quick` end to end: every step, results.json and the table."""

from __future__ import annotations

import json

from tspvideo.cli import main as cli_main
from tspvideo.experiment import QUICK_CONFIG, TABLE_COLUMNS, VARIANTS, format_table, mean_std


def test_experiment_quick_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "exp"
    assert cli_main(["experiment", "--quick", "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    seeds = len(QUICK_CONFIG.seeds)
    assert set(results) == set(VARIANTS)
    for variant, metrics in results.items():
        for key, _, _ in TABLE_COLUMNS:
            assert key in metrics, (variant, key)
        for key in ("mAP@0.5", "mAP_avg", "AUC", "fg_bg_probe_auc"):
            values = metrics[key]
            assert len(values) == seeds and all(0.0 <= v <= 1.0 for v in values), (variant, key, values)
    assert "valid_acc_action" in results["tac"] and "valid_acc_region" in results["tsp"]
    assert "valid_acc_region" not in results["tac"] and "valid_acc_action" not in results["init"]

    printed = capsys.readouterr().out
    table = (out / "table.txt").read_text()
    assert table.strip() in printed
    for title in ("TSP (max GVF)", "TAC", "TSP w/o GVF", "initial encoder", "TSP - TAC", "mAP@0.75", " ± "):
        assert title in table
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert len(figures) == seeds * (len(VARIANTS) + 1) and all(f.endswith(".png") for f in figures)
    for seed in QUICK_CONFIG.seeds:
        assert (out / f"seed_{seed}" / "runs" / "tac" / "best.pth").is_file()

    # A second call finds every step done and gives the same numbers (resumable, deterministic probe).
    assert cli_main(["experiment", "--quick", "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    assert json.loads((out / "results.json").read_text()) == results


def test_table_statistics():
    assert mean_std([1.0, 3.0]) == (2.0, 2.0 ** 0.5, 2)
    assert mean_std([0.5]) == (0.5, 0.0, 1)
    results = {v: {key: [0.5, 0.7] for key, _, _ in TABLE_COLUMNS} for v in VARIANTS}
    results["tac"]["mAP@0.5"] = [0.4, 0.6]
    table = format_table(results)
    assert "50.0 ± 14.1" in table and "+10.0 (2/2)" in table
