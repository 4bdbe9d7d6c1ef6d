"""The command line loads heavy libraries only where a command uses them.

Each check runs in a fresh interpreter (this test process has long imported everything) and reads
``sys.modules``: what counts is what was imported, not how long it took.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "torchvision", "av", "h5py", "matplotlib", "scipy")
DATA = Path(__file__).parent / "data"


def imported_after(code: str) -> list[str]:
    """The heavy modules imported once ``code`` has run in a new interpreter."""
    script = f"import sys\n{code}\nimport json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_cli(*argv: str) -> str:
    """Code running ``tspvideo ARGV`` (output swallowed, exit code asserted 0) in that interpreter."""
    return (f"import contextlib, io\nfrom tspvideo.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
            f"    code = main({list(argv)!r})\n"
            f"assert code == 0, code\n")


def test_building_the_parser_imports_no_heavy_library():
    assert imported_after("from tspvideo.cli import build_parser\nbuild_parser()") == []


def test_help_of_every_command_and_subcommand_imports_no_heavy_library():
    # Every path of the parser tree, found by walking its subparsers, asks for --help once.
    code = """
import argparse, contextlib, io
from tspvideo.cli import build_parser, main

def paths(parser, prefix=()):
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from paths(sub, (*prefix, name))

seen = 0
for path in paths(build_parser()):
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main([*path, "--help"])
        except SystemExit as exit:
            assert exit.code == 0, (path, exit.code)
    seen += 1
assert seen > 20, seen  # every command and the subcommands of eval, annotations and features
"""
    assert imported_after(code) == []


def test_listing_and_json_evaluation_run_without_torch(tmp_path):
    ground_truth = {"database": {"a": {"subset": "validation", "duration": 100.0, "annotations": [
        {"segment": [10.0, 20.0], "label": "jump"}, {"segment": [50.0, 70.0], "label": "run"}]}}}
    predictions = {"results": {"a": [{"segment": [11.0, 20.0], "label": "jump", "score": 0.9},
                                     {"segment": [48.0, 70.0], "label": "run", "score": 0.8}]}}
    gt, pred = tmp_path / "gt.json", tmp_path / "pred.json"
    gt.write_text(json.dumps(ground_truth), encoding="utf-8")
    pred.write_text(json.dumps(predictions), encoding="utf-8")
    commands = [("features", "list"), ("eval", "detection", "--gt", str(gt), "--pred", str(pred)),
                ("annotations", "check", str(DATA / "thumos14_valid_tsp_groundtruth.head40.csv"))]
    for argv in commands:
        assert "torch" not in imported_after(run_cli(*argv)), argv
