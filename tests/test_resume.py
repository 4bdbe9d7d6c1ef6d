"""Resume checks what it skips, and every input and output is checked before any work.

A rerun into a folder skips a video only when its sidecar records the same settings and the same
source file; other settings stop the run up front (exit 2) unless --overwrite; a changed source file
is extracted again.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import ChannelMeanEncoder

from tspvideo.cli import main
from tspvideo.core.errors import TspVideoError
from tspvideo.core.grid import ClipGrid
from tspvideo.datasets.transforms import Preprocessing
from tspvideo.extract.options import ExtractOptions
from tspvideo.extract.run import extract_dataset
from tspvideo.models.encoder import Encoder
from tspvideo.models.inputs import PAPER_BACKBONE
from tspvideo.models.tsp import create_model
from tspvideo.models.weights import InputRecipe
from tspvideo.video.files import find_videos
from tspvideo.video.synthetic import write_index_video

SETTINGS = ClipGrid(clip_len=4, fps=15, stride=4)



@pytest.fixture
def videos(tmp_path):
    folder = tmp_path / "videos"
    write_index_video(folder / "a.mp4", num_frames=40, fps=30, size=(64, 48))
    write_index_video(folder / "b.mp4", num_frames=30, fps=30, size=(64, 48))
    return folder


def extract(videos, out, description=None, settings=SETTINGS, prep=None, amp="fp32", **options):
    description = description or {"weights": "tiny"}
    recipe = None if prep is None else InputRecipe(PAPER_BACKBONE, settings.clip_len, settings.fps, prep.resize,
                                                   prep.crop, prep.mean, prep.std)
    encoder = replace(Encoder.of_module(ChannelMeanEncoder(), recipe, description["weights"]),
                      sha256=description.get("sha256"))
    return extract_dataset(find_videos([videos]), out, encoder,
                           ExtractOptions.for_grid(settings, batch_size=3, progress=False, workers=0, amp=amp,
                                                   **options))


def stamps(out):
    return {p.name: p.stat().st_mtime_ns for p in sorted(out.iterdir())}


def test_same_settings_and_files_are_skipped(videos, tmp_path):
    out = tmp_path / "out"
    first = extract(videos, out)
    assert len(first.written) == 2
    sidecar = json.loads((out / "a.json").read_text(encoding="utf-8"))
    recorded = sidecar["provenance"]
    assert recorded["settings"]["stride"] == 4 and recorded["settings"]["precision"] == "fp32"
    assert recorded["source"]["size"] == (videos / "a.mp4").stat().st_size
    before = stamps(out)
    second = extract(videos, out)
    assert len(second.skipped) == 2 and not second.written and second.clips == 0
    assert stamps(out) == before


@pytest.mark.parametrize("change, difference", [
    ({"settings": ClipGrid(clip_len=4, fps=15, stride=2)}, "--stride 4 there, 2 now"),
    ({"settings": ClipGrid(clip_len=5, fps=15, stride=4)}, "--clip-len 4 there, 5 now"),
    ({"settings": ClipGrid(clip_len=4, fps=10, stride=4)}, "--fps 15 there, 10 now"),
    ({"settings": ClipGrid(clip_len=4, fps=15, stride=4, sampling="timestamp")},
     "--sampling ffmpeg-fps there, timestamp now"),
    ({"description": {"weights": "tiny", "sha256": "ab" * 32}}, "weights tiny there"),
    ({"amp": "bf16"}, "--amp fp32 there, bf16 now"),
    ({"decoder_resize": True}, "--decoder-resize False there, True now"),
    ({"prep": Preprocessing(resize=(64, 86), crop=(56, 56))}, "preprocessing"),
])
def test_other_settings_into_the_same_folder_stop_before_any_work(videos, tmp_path, change, difference):
    out = tmp_path / "out"
    extract(videos, out)
    before = stamps(out)
    with pytest.raises(TspVideoError, match="holds features of other settings") as info:
        extract(videos, out, **change)
    assert difference in str(info.value) and "--overwrite" in str(info.value) and "\n" not in str(info.value)
    assert stamps(out) == before  # nothing touched
    redone = extract(videos, out, overwrite=True, **change)
    assert len(redone.written) == 2


def test_overwrite_of_some_videos_says_the_folder_mixes_settings(videos, tmp_path, capsys):
    out = tmp_path / "out"
    extract(videos, out)
    capsys.readouterr()
    only_a = extract_dataset([videos / "a.mp4"], out, Encoder.of_module(ChannelMeanEncoder(), weights="tiny"),
                             ExtractOptions.for_grid(ClipGrid(clip_len=4, fps=15, stride=2), progress=False,
                                                     overwrite=True, workers=0, batch_size=32, amp="fp32"))
    assert only_a.written == [str(videos / "a.mp4")]
    assert "1 feature file(s)" in capsys.readouterr().out  # b.json still has stride 4
    with pytest.raises(TspVideoError, match="b.json: --stride 4 there, 2 now"):
        extract_dataset([videos / "a.mp4"], out, Encoder.of_module(ChannelMeanEncoder(), weights="tiny"),
                        ExtractOptions.for_grid(ClipGrid(clip_len=4, fps=15, stride=2), progress=False, workers=0,
                                                batch_size=32, amp="fp32"))


def test_weights_are_identified_by_file_hash_not_name(videos, tmp_path):
    """The same checkpoint path holding other weights is other settings; the same file under another name is not."""
    ckpt = tmp_path / "model.pth"
    args = ["--clip-len", "4", "--stride", "40", "--workers", "0", "--batch-size", "2", "--no-progress"]
    out = tmp_path / "out"
    for seed in (0, 1):
        torch.manual_seed(seed)
        torch.save({"model": create_model("r3d_18", 3, heads=("action",), gvf=None).state_dict()}, ckpt)
        code = main(["extract", str(videos / "a.mp4"), "--out", str(out), "--checkpoint", str(ckpt), *args])
        if seed == 0:
            assert code == 0
            first = (out / "a.npy").read_bytes()
            shutil.copy(ckpt, tmp_path / "renamed.pth")
    assert code == 2 and (out / "a.npy").read_bytes() == first  # refused, old features kept
    assert main(["extract", str(videos / "a.mp4"), "--out", str(out), "--checkpoint",
                 str(tmp_path / "renamed.pth"), *args]) == 0  # same weights: already done
    sidecar = json.loads((out / "a.json").read_text(encoding="utf-8"))
    assert sidecar["provenance"]["settings"]["weights"].startswith("sha256:")
    assert sidecar["provenance"]["settings"]["backbone"] == "r3d_18"


def test_cli_other_stride_exits_2_before_any_work_and_overwrite_replaces(videos, tmp_path, capsys):
    args = ["--random-init", "r3d_18", "--clip-len", "4", "--workers", "0", "--batch-size", "2", "--no-progress"]
    out = tmp_path / "out"
    assert main(["extract", str(videos), "--out", str(out), "--stride", "20", *args]) == 0
    before = stamps(out)
    capsys.readouterr()
    assert main(["extract", str(videos), "--out", str(out), "--stride", "10", *args]) == 2
    [error] = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert "--stride 20 there, 10 now" in error
    assert stamps(out) == before
    assert main(["extract", str(videos), "--out", str(out), "--stride", "10", "--overwrite", *args]) == 0
    assert json.loads((out / "a.json").read_text(encoding="utf-8"))["stride"] == 10


def test_gvf_from_videos_resumes_by_the_same_rule(videos, tmp_path, capsys):
    args = ["--random-init", "r3d_18", "--clip-len", "4", "--workers", "0", "--batch-size", "2", "--no-progress"]
    gvf = tmp_path / "g.h5"
    assert main(["gvf", "--videos", str(videos), "--out", str(gvf), "--stride", "20", *args]) == 0
    assert main(["gvf", "--videos", str(videos), "--out", str(gvf), "--stride", "10", *args]) == 2
    assert "--stride 20 there, 10 now" in capsys.readouterr().err
    assert main(["gvf", "--videos", str(videos), "--out", str(gvf), "--stride", "10", "--overwrite", *args]) == 0


def test_changed_source_file_is_extracted_again(videos, tmp_path, capsys):
    out = tmp_path / "out"
    extract(videos, out)
    old = np.load(out / "a.npy")
    write_index_video(videos / "a.mp4", num_frames=60, fps=30, size=(64, 48))  # replaced by a longer file
    capsys.readouterr()
    report = extract(videos, out)
    assert report.written == [str(videos / "a.mp4")] and report.skipped == [str(videos / "b.mp4")]
    assert "size" in report.refreshed[str(videos / "a.mp4")]
    assert "a.mp4: changed since its features were extracted" in capsys.readouterr().out
    assert len(np.load(out / "a.npy")) > len(old)
    fresh = tmp_path / "fresh"
    extract(videos, fresh)
    np.testing.assert_array_equal(np.load(out / "a.npy"), np.load(fresh / "a.npy"))


def test_rewritten_source_of_the_same_size_is_extracted_again(videos, tmp_path):
    """Same size, later modification time (a file rewritten in place, e.g. a download finishing)."""
    out = tmp_path / "out"
    extract(videos, out)
    stat = (videos / "b.mp4").stat()
    os.utime(videos / "b.mp4", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    report = extract(videos, out)
    assert report.written == [str(videos / "b.mp4")]
    assert report.refreshed[str(videos / "b.mp4")] == "modification time"


def test_sidecar_without_recorded_settings_is_not_trusted(videos, tmp_path):
    out = tmp_path / "out"
    extract(videos, out)
    sidecar = json.loads((out / "a.json").read_text(encoding="utf-8"))
    del sidecar["provenance"]  # as written by an older version
    (out / "a.json").write_text(json.dumps(sidecar), encoding="utf-8")
    with pytest.raises(TspVideoError, match="older tspvideo"):
        extract(videos, out)
    assert len(extract(videos, out, overwrite=True).written) == 2


def test_failed_rerun_leaves_no_stale_features(videos, tmp_path):
    """A video redone because its file changed, and now failing, loses its old features (they are not its)."""
    out = tmp_path / "out"
    extract(videos, out)
    (videos / "b.mp4").write_bytes(b"\x00" * 500)
    report = extract(videos, out)
    assert str(videos / "b.mp4") in report.failed
    assert not (out / "b.npy").exists() and not (out / "b.json").exists()


# ----------------------------------------------------------------------------------------------------
# Inputs and outputs checked before any work
# ----------------------------------------------------------------------------------------------------

CLI_ARGS = ["--random-init", "r3d_18", "--clip-len", "4", "--stride", "40", "--workers", "0", "--no-progress"]


def test_missing_input_path_is_exit_2_and_creates_nothing(videos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["extract", str(videos / "a.mp4"), str(tmp_path / "typo.mp4"), "--out", str(out), *CLI_ARGS]) == 2
    assert f"{tmp_path / 'typo.mp4'}: no such file or folder" in capsys.readouterr().err
    assert not out.exists()
    assert main(["gvf", "--videos", str(tmp_path / "typo_dir"), "--out", str(tmp_path / "g.h5"), *CLI_ARGS]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert not (tmp_path / "g_features").exists() and not (tmp_path / "g.h5").exists()


def test_unwritable_h5_is_found_before_the_extraction(videos, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("not a folder", encoding="utf-8")
    out = tmp_path / "out"
    code = main(["extract", str(videos), "--out", str(out), "--h5", str(tmp_path / "file.txt" / "all.h5"), *CLI_ARGS])
    assert code == 2
    assert "cannot write" in capsys.readouterr().err
    assert not out.exists()  # no feature was extracted before the error
    code = main(["extract", str(videos), "--out", str(out), "--h5", str(tmp_path), *CLI_ARGS])
    assert code == 2 and "it is a folder" in capsys.readouterr().err and not out.exists()


def test_unwritable_gvf_output_is_found_before_the_extraction(videos, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("not a folder", encoding="utf-8")
    code = main(["gvf", "--videos", str(videos), "--out", str(tmp_path / "file.txt" / "g.h5"), "--features-out",
                 str(tmp_path / "features"), *CLI_ARGS])
    assert code == 2 and "cannot write" in capsys.readouterr().err
    assert not (tmp_path / "features").exists()


def test_out_that_is_a_file_is_found_before_any_work(videos, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("not a folder", encoding="utf-8")
    assert main(["extract", str(videos), "--out", str(tmp_path / "file.txt"), *CLI_ARGS]) == 2
    assert "it is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "file.txt").read_text(encoding="utf-8") == "not a folder"


def test_h5_in_a_folder_still_to_create_is_fine(videos, tmp_path):
    h5 = tmp_path / "new" / "deeper" / "all.h5"
    assert main(["extract", str(videos / "a.mp4"), "--out", str(tmp_path / "out"), "--h5", str(h5), *CLI_ARGS]) == 0
    assert h5.is_file()


def test_cpu_batch_default_is_small(monkeypatch):
    from tspvideo.extract import options

    def batch(**given) -> int:
        return ExtractOptions(**given).resolve().batch_size

    monkeypatch.setattr(options, "resolve_precision", lambda *a: options.Precision(None, False, "test"))
    monkeypatch.setattr(options.torch.cuda, "is_available", lambda: True)  # "cuda:0" resolves without a GPU here
    monkeypatch.setattr(options.torch.cuda, "device_count", lambda: 1)
    assert batch(device="cpu") == options.CPU_BATCH_SIZE
    assert batch(device="cuda:0") == 32
    assert batch(device="cpu", batch_size=5) == 5
    assert options.CPU_BATCH_SIZE < 32
    with pytest.raises(TspVideoError, match="--batch-size"):
        batch(device="cpu", batch_size=0)


def test_preprocessing_on_the_device_continues_a_folder_with_the_colour_it_holds(videos, tmp_path):
    """--preprocess-on is no setting, but --colour auto follows it: RGB made on the device (a GPU's default) differs
    from the decoder's by float rounding of the conversion (cosine 0.9999), so a folder started on a CPU refuses it
    and says how to continue: with the folder's --colour."""
    out = tmp_path / "out"
    extract(videos, out)  # on the CPU: frames preprocessed in the workers, RGB from the decoder
    before = stamps(out)
    with pytest.raises(TspVideoError, match="--colour decoder there, device now") as info:
        extract(videos, out, preprocess_on="device")  # --colour auto: converted on the device, as on a GPU
    assert "add --colour decoder to continue this folder" in str(info.value) and "\n" not in str(info.value)
    assert stamps(out) == before
    resumed = extract(videos, out, preprocess_on="device", colour="decoder")
    assert len(resumed.skipped) == 2 and not resumed.written
