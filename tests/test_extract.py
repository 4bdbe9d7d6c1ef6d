"""Feature extraction: time grid, batching/sharding invariance, resume, failures, checkpoints, real videos."""

from __future__ import annotations

import json
import math
import shutil

import h5py
import numpy as np
import pytest
import torch
from helpers import TinyEncoder

from tspvideo.cli import main
from tspvideo.core.errors import TspVideoError
from tspvideo.core.grid import ClipGrid
from tspvideo.datasets.transforms import preprocess_clip
from tspvideo.extract.options import ExtractOptions
from tspvideo.extract.run import extract_dataset
from tspvideo.features.folder import merge_to_h5
from tspvideo.features.gvf import gvf_attributes, read_gvf, write_gvf
from tspvideo.localization.export import export_features
from tspvideo.models.encoder import Encoder
from tspvideo.models.tsp import create_model
from tspvideo.video.decode import read_frames
from tspvideo.video.files import find_videos
from tspvideo.video.synthetic import write_index_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    # Frames at 15 fps, as the original gets them (re-encoded to 30 fps, every second frame) / by timestamp:
    write_index_video(folder / "a.mp4", num_frames=100, fps=30, size=(64, 48))  # 3.333 s: 100 at 30 fps -> 50 / 50
    write_index_video(folder / "b.mp4", num_frames=77, fps=25, size=(48, 64))  # 3.08 s: 92 at 30 fps -> 46 / 47
    write_index_video(folder / "c d é.mp4", num_frames=64, fps=30000 / 1001, size=(64, 48))  # 2.135 s: 64 -> 32 / 33
    return folder


GRID = ClipGrid(clip_len=8, fps=15, stride=5)


def run_extract(videos, out, settings=GRID, num_workers=0, batch_size=32, amp="fp32", **options):
    return extract_dataset(find_videos([videos]), out, Encoder.of_module(TinyEncoder(), weights="tiny"),
                           ExtractOptions.for_grid(settings, progress=False, workers=num_workers, batch_size=batch_size,
                                                   amp=amp, **options))


def load_all(folder):
    return {p.stem: np.load(p) for p in sorted(folder.glob("*.npy"))}


def test_number_of_features_and_time_grid(videos, tmp_path):
    report = run_extract(videos, tmp_path, batch_size=4)
    assert not report.failed and len(report.written) == 3
    for stem, n15 in {"a": 50, "b": 46, "c d é": 32}.items():
        features = np.load(tmp_path / f"{stem}.npy")
        sidecar = json.loads((tmp_path / f"{stem}.json").read_text())
        expected_t = (n15 - 8) // 5 + 1
        assert features.shape == (expected_t, 8) and features.dtype == np.float32
        assert sidecar["num_frames"] == n15 and sidecar["num_features"] == expected_t
        assert sidecar["feature_times"] == pytest.approx([(i * 5 + 4) / 15 for i in range(expected_t)], abs=1e-6)
        assert sidecar["weights"] == "tiny" and sidecar["clip_len"] == 8 and sidecar["stride"] == 5
        assert sidecar["sampling"] == "ffmpeg-fps"


def test_timestamp_sampling_option_and_its_sidecar(videos, tmp_path):
    report = run_extract(videos, tmp_path, settings=ClipGrid(clip_len=8, fps=15, stride=5, sampling="timestamp"))
    assert not report.failed
    for stem, n15 in {"a": 50, "b": 47, "c d é": math.ceil(64 * 15 / (30000 / 1001))}.items():
        sidecar = json.loads((tmp_path / f"{stem}.json").read_text())
        assert sidecar["num_frames"] == n15 and sidecar["sampling"] == "timestamp"
        assert np.load(tmp_path / f"{stem}.npy").shape[0] == (n15 - 8) // 5 + 1
    with pytest.raises(TspVideoError, match="sampling rule"):
        ClipGrid(sampling="nearest")


def test_streaming_equals_per_clip_reference(videos, tmp_path):
    """Decoding once and sliding gives the original per-clip approach's input exactly."""
    settings = ClipGrid(clip_len=8, fps=15, stride=3)
    run_extract(videos, tmp_path, settings=settings, batch_size=5)
    encoder = TinyEncoder()
    features = np.load(tmp_path / "b.npy")
    for i in range(len(features)):
        clip = preprocess_clip(torch.from_numpy(read_frames(videos / "b.mp4", i * 3, 8)))
        with torch.no_grad():
            assert np.array_equal(encoder(clip[None])[0].numpy(), features[i])


def test_features_do_not_depend_on_batch_size_workers_or_sharding(videos, tmp_path):
    reference = load_all(run_extract(videos, tmp_path / "ref", batch_size=1) and tmp_path / "ref")
    for name, kwargs in {"b7": {"batch_size": 7}, "w2": {"batch_size": 3, "num_workers": 2}}.items():
        run_extract(videos, tmp_path / name, **kwargs)
        got = load_all(tmp_path / name)
        assert got.keys() == reference.keys()
        for stem in reference:
            np.testing.assert_allclose(got[stem], reference[stem], rtol=1e-5, atol=1e-6)
    for shard_id in (0, 1):
        run_extract(videos, tmp_path / "sharded", shard_id=shard_id, num_shards=2)
    sharded = load_all(tmp_path / "sharded")
    assert sharded.keys() == reference.keys()
    for stem in reference:
        np.testing.assert_allclose(sharded[stem], reference[stem], rtol=1e-5, atol=1e-6)


def test_skip_if_done_and_failures_do_not_stop_others(videos, tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(videos, folder)
    (folder / "broken.mp4").write_bytes(b"\x00" * 1000)
    out = tmp_path / "out"
    first = run_extract(folder, out)
    assert sorted(first.failed) == [str(folder / "broken.mp4")]
    assert len(first.written) == 3
    failures = (out / "failures.csv").read_text()
    assert "broken.mp4" in failures and "cannot decode" in failures
    assert not list(out.glob("broken*"))  # nothing partial for the failed video
    stamp = (out / "a.npy").stat().st_mtime_ns
    second = run_extract(folder, out)
    assert len(second.skipped) == 3 and second.clips == 0
    assert (out / "a.npy").stat().st_mtime_ns == stamp
    (folder / "broken.mp4").unlink()
    third = run_extract(folder, out)
    assert not third.failed and not (out / "failures.csv").exists()


def test_duplicate_stems_are_rejected_before_work(tmp_path):
    for sub in ("x", "y"):
        write_index_video(tmp_path / sub / "same.mp4", num_frames=4, fps=30)
    with pytest.raises(TspVideoError, match="share the name"):
        find_videos([tmp_path])


def test_video_shorter_than_one_clip_is_a_reported_failure(tmp_path):
    write_index_video(tmp_path / "short.mp4", num_frames=10, fps=30)
    report = run_extract(tmp_path, tmp_path / "out")
    assert "too short" in report.failed[str(tmp_path / "short.mp4")]


def test_cli_with_released_layout_checkpoint_and_h5(videos, tmp_path, capsys):
    torch.manual_seed(1)
    model = create_model("r3d_18", 4, gvf="max").eval()
    checkpoint = tmp_path / "tsp.pth"
    torch.save({"model": model.state_dict()}, checkpoint)
    out = tmp_path / "features"
    code = main(["extract", str(videos / "a.mp4"), "--out", str(out), "--checkpoint", str(checkpoint),
                 "--clip-len", "4", "--stride", "16", "--batch-size", "2", "--workers", "0",
                 "--h5", str(tmp_path / "all.h5"), "--no-progress", "--exact"])
    assert code == 0
    features = np.load(out / "a.npy")
    assert features.shape == ((50 - 4) // 16 + 1, 512)
    clip = preprocess_clip(torch.from_numpy(read_frames(videos / "a.mp4", 16, 4)))
    with torch.no_grad():
        np.testing.assert_allclose(model.features(clip[None])[0].numpy(), features[1], rtol=1e-4, atol=1e-5)
    with h5py.File(tmp_path / "all.h5") as h5:
        np.testing.assert_array_equal(h5["a"][()], features)
        assert (h5.attrs["model"], h5.attrs["clip_len"], h5.attrs["stride"], h5.attrs["fps"]) == ("r3d_18", 4, 16, 15)
    assert "1 written" in capsys.readouterr().out


def test_cli_exit_codes(videos, tmp_path, capsys):
    args = ["--random-init", "r3d_18", "--clip-len", "4", "--stride", "40", "--workers", "0", "--no-progress"]
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)  # exists but cannot be decoded: that video fails
    assert main(["extract", str(videos / "a.mp4"), str(tmp_path / "broken.mp4"), "--out", str(tmp_path / "o"),
                 *args]) == 1
    assert main(["extract", str(videos / "a.mp4"), "--out", str(tmp_path / "o"), "--stride", "0",
                 "--random-init", "r3d_18"]) == 2
    assert "stride must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["extract", str(videos), "--out", str(tmp_path), "--random-init", "r4d_18"])
    assert info.value.code == 2


def test_gvf_file_layout_and_values(videos, tmp_path, reference_data_dir):
    run_extract(videos, tmp_path / "f")
    count = write_gvf(tmp_path / "f", tmp_path / "gvf.h5", pool="max")
    assert count == 3
    gvf = read_gvf(tmp_path / "gvf.h5")
    np.testing.assert_array_equal(gvf["a"], np.load(tmp_path / "f" / "a.npy").max(axis=0))
    reference = reference_data_dir / "thumos14_r2plus1d_34-max_gvf.h5"
    with h5py.File(tmp_path / "gvf.h5") as ours, h5py.File(reference) as ref:
        key = next(iter(ref))
        assert ours["a"].dtype == ref[key].dtype and ours["a"].ndim == ref[key].ndim == 1
        assert ours["a"].compression == ref[key].compression
    with pytest.raises(TspVideoError, match="no GVF for 1 video"):
        read_gvf(tmp_path / "gvf.h5", ["a", "zzz"])
    # how it was made travels with the file: pooling, and the encoder named by the features' sidecars
    assert gvf_attributes(tmp_path / "gvf.h5") == {"pool": "max", "encoder": "tiny"}
    write_gvf(tmp_path / "f", tmp_path / "avg.h5", pool="avg", encoder="other")
    assert gvf_attributes(tmp_path / "avg.h5") == {"pool": "avg", "encoder": "other"}
    assert gvf_attributes(reference) == {}  # released: none, still loads
    assert len(read_gvf(reference)) > 0
    merge_to_h5(tmp_path / "f", ["a", "b"], tmp_path / "features.h5")  # an HDF5 source names its weights too
    write_gvf(tmp_path / "features.h5", tmp_path / "from_h5.h5")
    assert gvf_attributes(tmp_path / "from_h5.h5") == {"pool": "max", "encoder": "tiny"}
    sidecar = tmp_path / "f" / "b.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "weights": "another"}))
    with pytest.raises(TspVideoError, match="different encoders"):
        write_gvf(tmp_path / "f", tmp_path / "mixed.h5")


def test_gvf_cli_defaults_to_the_tac_on_kinetics_encoder(videos, tmp_path, monkeypatch, capsys):
    from tspvideo.commands import gvf as gvf_command

    chosen = []

    def load(args, choice):
        chosen.append(choice.source)
        return Encoder.of_module(TinyEncoder(), weights=choice.source)

    monkeypatch.setattr(gvf_command, "load_chosen", load)
    grid = ["--clip-len", "4", "--workers", "0", "--no-progress"]
    assert main(["gvf", "--videos", str(videos / "a.mp4"), "--out", str(tmp_path / "g.h5"), *grid]) == 0
    assert main(["gvf", "--videos", str(videos / "a.mp4"), "--out", str(tmp_path / "avg.h5"),
                 "--recipe", "tsp-activitynet-avg-gvf", *grid]) == 0
    assert chosen == ["r2plus1d_34-tac_on_kinetics"] * 2
    assert gvf_attributes(tmp_path / "g.h5") == {"pool": "max", "encoder": "r2plus1d_34-tac_on_kinetics"}
    assert gvf_attributes(tmp_path / "avg.h5")["pool"] == "avg"


def test_gvf_cli_from_videos_with_an_encoder(videos, tmp_path):
    code = main(["gvf", "--videos", str(videos / "a.mp4"), str(videos / "b.mp4"), "--out", str(tmp_path / "g.h5"),
                 "--random-init", "r3d_18", "--clip-len", "4", "--stride", "40", "--workers", "0",
                 "--pool", "avg", "--no-progress"])
    assert code == 0
    gvf = read_gvf(tmp_path / "g.h5")
    assert set(gvf) == {"a", "b"} and gvf["a"].shape == (512,)
    np.testing.assert_allclose(gvf["b"], np.load(tmp_path / "g_features" / "b.npy").mean(axis=0), rtol=1e-6)


def test_default_decode_workers_follow_the_device(monkeypatch):
    import os

    from tspvideo.extract import options

    def workers(**given) -> int:
        return ExtractOptions(**given).resolve().workers

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.setattr(options.torch.cuda, "is_available", lambda: True)  # "cuda" resolves without a GPU here
    monkeypatch.setattr(options.torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(options, "resolve_precision", lambda *a: options.Precision(None, False, "test"))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert workers(device="cpu") == 1
    assert workers(device="cuda:0") == 14
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun with 4 ranks on this machine: 4 cores each
    assert workers(device="cuda:0") == 2
    assert workers(device="cuda", workers=3) == 3
    assert workers(device="cuda:0", backend="nvdec") == 0
    with pytest.raises(TspVideoError, match="--workers"):
        workers(device="cpu", workers=-1)


def test_merged_h5_carries_its_grid_and_exports_like_the_folder(videos, tmp_path):
    settings = ClipGrid(clip_len=8, fps=15, stride=5)
    run_extract(videos, tmp_path / "f", settings=settings)
    stems = sorted(p.stem for p in (tmp_path / "f").glob("*.npy"))
    assert merge_to_h5(tmp_path / "f", stems, tmp_path / "all.h5") == 3
    with h5py.File(tmp_path / "all.h5") as h5:
        assert (h5.attrs["clip_len"], h5.attrs["fps"], h5.attrs["stride"]) == (8, 15, 5)
        assert h5.attrs["weights"] == "tiny" and "preprocessing" in h5.attrs and h5.attrs["sampling"] == "ffmpeg-fps"
        sidecar = json.loads((tmp_path / "f" / "a.json").read_text())
        assert h5["a"].attrs["num_frames"] == sidecar["num_frames"] == 50
    for fmt in ("actionformer", "bmn"):  # no grid flags: the file says it
        export_features(tmp_path / "all.h5", fmt, tmp_path / f"{fmt}_h5")
        export_features(tmp_path / "f", fmt, tmp_path / f"{fmt}_dir")
        for path in sorted((tmp_path / f"{fmt}_dir").rglob("*")):
            twin = tmp_path / f"{fmt}_h5" / path.relative_to(tmp_path / f"{fmt}_dir")
            if path.is_file():
                expected = path.read_bytes().replace(str(tmp_path / f"{fmt}_dir").encode(), b"OUT")
                assert twin.read_bytes().replace(str(tmp_path / f"{fmt}_h5").encode(), b"OUT") == expected


@pytest.mark.parametrize("native", [True, False])
def test_cli_default_precision_follows_the_hardware_and_exact_is_the_reference(videos, tmp_path, capsys,
                                                                               monkeypatch, native):
    from tspvideo.core import precision

    monkeypatch.setattr(precision, "cpu_native_bf16", lambda flags=None: "avx512_bf16" if native else None)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)  # restored after the test
    args = [str(videos / "a.mp4"), "--random-init", "r3d_18", "--clip-len", "4", "--stride", "16", "--workers", "0",
            "--device", "cpu", "--no-progress"]
    assert main(["extract", *args, "--out", str(tmp_path / "default")]) == 0
    assert main(["extract", *args, "--out", str(tmp_path / "exact"), "--exact"]) == 0
    default = json.loads((tmp_path / "default" / "a.json").read_text())
    exact = json.loads((tmp_path / "exact" / "a.json").read_text())
    assert (default["precision"], default["channels_last"]) == (("bf16", True) if native else ("fp32", False))
    assert (exact["precision"], exact["channels_last"], exact["preprocess_on"]) == ("fp32", False, "workers")
    out = capsys.readouterr().out
    assert ("bf16 autocast + channels_last (auto: the CPU has avx512_bf16)" in out) == native
    assert "float32 (--exact: the reference path, TF32 off)" in out and torch.backends.cudnn.allow_tf32 is False
    ours, reference = np.load(tmp_path / "default" / "a.npy"), np.load(tmp_path / "exact" / "a.npy")
    if native:  # bf16 rounding: close to the reference, not equal
        cosine = (ours * reference).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(reference, axis=1)
        assert cosine.min() > 0.999 and not np.array_equal(ours, reference)
    else:
        np.testing.assert_array_equal(ours, reference)


@pytest.mark.parametrize("clash", [["--amp", "bf16"], ["--channels-last"], ["--decoder-resize"]])
def test_cli_exact_refuses_other_precision_flags(videos, tmp_path, capsys, clash):
    assert main(["extract", str(videos / "a.mp4"), "--out", str(tmp_path / "o"), "--random-init", "r3d_18",
                 "--exact", *clash]) == 2
    assert f"--exact runs the float32 reference path; drop {clash[0]}" in capsys.readouterr().err
    assert not (tmp_path / "o" / "a.npy").exists()


def test_resume_refuses_a_float32_folder_under_a_bf16_default_and_exact_continues_it(videos, tmp_path, capsys,
                                                                                      monkeypatch):
    from tspvideo.core import precision

    monkeypatch.setattr(precision, "cpu_native_bf16", lambda flags=None: "avx512_bf16")
    out = tmp_path / "f"
    args = ["extract", str(videos / "a.mp4"), "--out", str(out), "--random-init", "r3d_18", "--clip-len", "4",
            "--stride", "16", "--workers", "0", "--device", "cpu", "--no-progress"]
    assert main([*args, "--exact"]) == 0
    stamp = (out / "a.npy").stat().st_mtime_ns
    assert main(args) == 2
    assert "--amp fp32 there, bf16 now" in capsys.readouterr().err
    assert main([*args, "--exact"]) == 0
    assert (out / "a.npy").stat().st_mtime_ns == stamp


def test_clip_grid_flag_then_checkpoint_then_weights_recipe():
    from tspvideo.models.inputs import InputOverrides, resolve_input
    from tspvideo.models.weights import default_recipe

    swin = default_recipe("swin3d_t")
    resolved = resolve_input(swin)
    grid = resolved.grid
    assert (grid.clip_len, grid.fps, grid.stride) == (swin.clip_len, swin.fps, swin.clip_len)
    assert resolved.record()["input"]["from"] == "swin3d_t input recipe"  # the sidecar says where it came from
    trained = {"clip_len": 4, "fps": 10.0, "sampling": "timestamp", "resize": [40, 40], "crop": [32, 32]}
    resolved = resolve_input(swin, trained, name="run.pth")
    assert (resolved.grid.clip_len, resolved.grid.fps, resolved.grid.sampling) == (4, 10.0, "timestamp")
    prep = resolved.prep  # the checkpoint's sizes, the recipe's normalisation
    assert (prep.resize, prep.crop, prep.mean) == ((40, 40), (32, 32), tuple(swin.mean))
    with pytest.raises(TspVideoError, match=r"run.pth: --clip-len 8 \(trained with 4\)"):
        resolve_input(swin, trained, InputOverrides(clip_len=8), name="run.pth")
    forced = resolve_input(swin, trained, InputOverrides(clip_len=8, force=True))
    assert forced.grid.clip_len == 8
    assert forced.record()["input_overrides"] == {"clip_len": {"checkpoint": 4, "used": 8}}


def test_python_extraction_uses_the_encoders_own_input_and_equals_the_cli(videos, tmp_path):
    """An S3D checkpoint extracted from Python gets its recipe's clip length and crop, not the paper's 16 x 112,
    and the same features as `tspvideo extract --checkpoint`."""
    from tspvideo.extract.run import extract_dataset
    from tspvideo.models.encoder import load_encoder
    from tspvideo.models.tsp import create_model
    from tspvideo.models.weights import InputRecipe

    torch.manual_seed(0)
    model = create_model("s3d", heads=("region",), gvf=None)
    recipe = InputRecipe("s3d", clip_len=8, fps=15.0, resize=(40, 53), crop=(32, 32), mean=(0.5, 0.5, 0.5),
                         std=(0.25, 0.25, 0.25))
    checkpoint = tmp_path / "s3d.pth"
    torch.save({"model": model.state_dict(), "model_config": model.config.to_dict(), "recipe": recipe.to_dict()},
               checkpoint)
    encoder = load_encoder(checkpoint)
    assert encoder.recipe == recipe
    options = ExtractOptions(stride=20, workers=0, batch_size=2, amp="fp32", progress=False)
    report = extract_dataset([videos / "a.mp4"], tmp_path / "py", encoder, options)
    assert report.written and not report.failed
    sidecar = json.loads((tmp_path / "py" / "a.json").read_text(encoding="utf-8"))
    assert sidecar["clip_len"] == 8 and sidecar["preprocessing"]["crop"] == [32, 32]
    assert sidecar["preprocessing"]["mean"] == [0.5, 0.5, 0.5] and sidecar["input"]["from"] == "s3d input recipe"
    assert main(["extract", str(videos / "a.mp4"), "--out", str(tmp_path / "cli"), "--checkpoint", str(checkpoint),
                 "--stride", "20", "--workers", "0", "--batch-size", "2", "--amp", "fp32", "--no-progress"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "py" / "a.npy"), np.load(tmp_path / "cli" / "a.npy"))
