"""Work units, frame streaming and clip assembly: splitting videos never changes a feature."""

from __future__ import annotations

import functools
import json
import platform
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import TinyEncoder

import tspvideo.extract.run as extract_module
from tspvideo.core.grid import ClipGrid
from tspvideo.datasets.transforms import preprocess_frames
from tspvideo.extract.options import ExtractOptions
from tspvideo.extract.run import extract_dataset, stream_features
from tspvideo.extract.streaming import ClipAssembler, FrameStream, WorkUnit, default_decode_workers, plan_units
from tspvideo.models.encoder import Encoder
from tspvideo.video.decode import read_frames
from tspvideo.video.files import find_videos
from tspvideo.video.synthetic import write_index_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    write_index_video(folder / "long.mp4", num_frames=150, fps=30, size=(64, 48))  # 75 frames at 15 fps
    write_index_video(folder / "short.mp4", num_frames=40, fps=25, size=(48, 64))  # 24 frames at 15 fps
    return folder


def clips_of(paths, units, settings, batch_size=3):
    """All clips the stream + assembler make, as {(video, clip index): clip}."""
    stream = FrameStream(paths, units, settings)
    assembler = ClipAssembler(units, settings, batch_size, torch.device("cpu"))
    out, ends = {}, {}
    for item in stream:
        if "frames" in item:
            assembler.add(item["unit"], item["indices"], item["frames"])
        else:
            ends[item["unit"]] = (item["num_frames"], item["error"])
        for unit_ids, clip_ids, clips in assembler.batches():
            out.update({(units[u].video, int(k)): c for u, k, c in zip(unit_ids, clip_ids, clips, strict=True)})
    for unit_ids, clip_ids, clips in assembler.batches(flush=True):
        out.update({(units[u].video, int(k)): c for u, k, c in zip(unit_ids, clip_ids, clips, strict=True)})
    return out, ends


@pytest.mark.parametrize("stride", [1, 5, 20])
def test_parts_give_exactly_the_clips_of_a_whole_decode(videos, stride):
    paths = [videos / "long.mp4"]
    settings = ClipGrid(clip_len=8, fps=15, stride=stride)
    whole, ends = clips_of(paths, [WorkUnit(0)], settings)
    expected = (75 - 8) // stride + 1
    assert sorted(k for _, k in whole) == list(range(expected)) and ends == {0: (75, None)}
    cut = [0, 1, expected // 2, expected - 1]
    units = [WorkUnit(0, a, b) for a, b in zip(cut, cut[1:], strict=False)] + [WorkUnit(0, cut[-1], None)]
    parts, part_ends = clips_of(paths, units, settings)
    assert parts.keys() == whole.keys()
    for key, clip in whole.items():
        assert torch.equal(parts[key], clip)
    assert max(n for n, _ in part_ends.values()) == 75 and all(e is None for _, e in part_ends.values())


def test_a_part_past_the_end_yields_nothing_and_no_error(videos):
    settings = ClipGrid(clip_len=8, fps=15, stride=4)
    units = [WorkUnit(0, 0, 30), WorkUnit(0, 30, None)]  # the header said more frames than there are
    clips, ends = clips_of([videos / "short.mp4"], units, settings)
    assert sorted(k for _, k in clips) == list(range((24 - 8) // 4 + 1))
    assert ends[0] == (24, None) and ends[1] == (0, None)


def test_plan_splits_long_videos_only_when_workers_would_idle(videos):
    paths = find_videos([videos])
    settings = ClipGrid(clip_len=8, fps=15, stride=2)
    assert plan_units(paths, settings, num_workers=0) == [WorkUnit(0), WorkUnit(1)]
    units = plan_units(paths, settings, num_workers=2, part_frames=16)
    long_parts = [u for u in units if paths[u.video].name == "long.mp4"]
    assert len(long_parts) > 2 and long_parts[0].first_clip == 0 and long_parts[-1].end_clip is None
    assert all(a.end_clip == b.first_clip for a, b in zip(long_parts, long_parts[1:], strict=False))
    assert plan_units(paths * 4, settings, num_workers=2, part_frames=16) == \
        [WorkUnit(i) for i in sorted(range(8), key=lambda i: -paths[i % 2].stat().st_size)]


def test_split_extraction_with_workers_equals_one_process(videos, tmp_path, monkeypatch):
    settings = ClipGrid(clip_len=8, fps=15, stride=3)
    paths = find_videos([videos])
    extract_dataset(paths, tmp_path / "one", Encoder.of_module(TinyEncoder()),
                    ExtractOptions.for_grid(settings, batch_size=4, progress=False, workers=0, amp="fp32"))
    monkeypatch.setattr(extract_module, "plan_units", functools.partial(plan_units, part_frames=12))
    report = extract_dataset(paths, tmp_path / "split", Encoder.of_module(TinyEncoder()),
                             ExtractOptions.for_grid(settings, batch_size=5, workers=2, progress=False, amp="fp32"))
    assert sorted(report.written) == sorted(map(str, paths)) and not report.failed
    for name in ("long", "short"):
        np.testing.assert_array_equal(np.load(tmp_path / "split" / f"{name}.npy"),
                                      np.load(tmp_path / "one" / f"{name}.npy"))


def test_stream_features_of_a_window_equal_those_rows_of_the_whole_video(videos, tmp_path):
    settings = ClipGrid(clip_len=8, fps=15, stride=2)
    paths = [videos / "long.mp4"]
    [(index, outcome)] = list(stream_features(paths, TinyEncoder(), settings, batch_size=4))
    whole = outcome.features
    assert index == 0 and outcome.num_frames == 75 and len(whole) == (75 - 8) // 2 + 1 and outcome.short is None
    [(_, window)] = list(stream_features(paths, TinyEncoder(), settings, units=[WorkUnit(0, 10, 25)]))
    np.testing.assert_array_equal(window.features, whole[10:25])
    [(_, error)] = list(stream_features(paths, TinyEncoder(), settings, units=[WorkUnit(0, 40, 50)]))
    assert isinstance(error, str) and "long.mp4" in error and "no clip from clip 40" in error


def test_raw_frames_preprocessed_on_the_device_equal_the_workers_preprocessing(videos, tmp_path):
    """Workers sending uint8 frames, preprocessed by the model's process, give the same features."""
    settings = ClipGrid(clip_len=8, fps=15, stride=3)
    paths = find_videos([videos])
    extract_dataset(paths, tmp_path / "workers", Encoder.of_module(TinyEncoder()),
                    ExtractOptions.for_grid(settings, batch_size=4, preprocess_on="workers", progress=False,
                    workers=0, amp="fp32"))
    extract_dataset(paths, tmp_path / "device", Encoder.of_module(TinyEncoder()),
                    ExtractOptions.for_grid(settings, batch_size=4, preprocess_on="device", workers=1, progress=False,
                                            colour="decoder", amp="fp32"))
    for name in ("long", "short"):
        # The same operations; only CPU kernels split over another number of threads may round differently.
        device, workers = np.load(tmp_path / "device" / f"{name}.npy"), np.load(tmp_path / "workers" / f"{name}.npy")
        np.testing.assert_allclose(device, workers, rtol=1e-5, atol=1e-6)
        cosine = (device * workers).sum(1) / np.linalg.norm(device, axis=1) / np.linalg.norm(workers, axis=1)
        assert cosine.min() >= 0.99999
        assert json.loads((tmp_path / "device" / f"{name}.json").read_text())["preprocess_on"] == "device"
        assert json.loads((tmp_path / "workers" / f"{name}.json").read_text())["preprocess_on"] == "workers"


def test_raw_items_are_uint8_frames_and_small_for_large_frames(tmp_path, monkeypatch):
    import tspvideo.extract.streaming as streaming

    write_index_video(tmp_path / "v.mp4", num_frames=40, fps=15, size=(64, 48))
    settings = ClipGrid(clip_len=4, fps=15, stride=1)
    monkeypatch.setattr(streaming, "RAW_BYTES_PER_ITEM", 64 * 48 * 3 * 5)  # five frames' bytes
    items = [i for i in FrameStream([tmp_path / "v.mp4"], [WorkUnit(0)], settings, raw=True) if "frames" in i]
    assert all(i["frames"].dtype == torch.uint8 and i["frames"].shape[1:] == (48, 64, 3) for i in items)
    assert [len(i["indices"]) for i in items] == [5] * 8
    cooked = [i for i in FrameStream([tmp_path / "v.mp4"], [WorkUnit(0)], settings) if "frames" in i]
    assert [len(i["indices"]) for i in cooked] == [40] and cooked[0]["frames"].dtype == torch.float32


def test_default_preprocessing_place_follows_the_device():
    assert extract_module.preprocess_on_device(torch.device("cuda")) is True
    assert extract_module.preprocess_on_device(torch.device("cpu")) is False


def test_preprocessed_items_hold_their_frames_alone(videos):
    """A worker's item is its cropped frames in a storage of their own (not a view of the larger resized
    frames, which would all cross to the model's process), with the values preprocessing gives them."""
    settings = ClipGrid(clip_len=8, fps=15, stride=3)
    path = videos / "long.mp4"
    items = [i for i in FrameStream([path], [WorkUnit(0)], settings) if "frames" in i]
    assert items
    for item in items:
        frames = item["frames"]
        assert frames.is_contiguous()
        assert frames.untyped_storage().nbytes() == frames.numel() * frames.element_size()
        first, count = int(item["indices"][0]), len(item["indices"])
        assert item["indices"].tolist() == list(range(first, first + count))
        decoded = torch.from_numpy(read_frames(path, first, count, fps=15))
        assert torch.equal(frames, preprocess_frames(decoded))


def test_large_blocks_are_mapped_in_a_glibc_process():
    """The allocator setting of decode workers applies under glibc and is a no-op elsewhere (own process:
    it changes the allocator of the process that calls it)."""
    code = "from tspvideo.core.memory import map_large_blocks; print(map_large_blocks())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == str(platform.libc_ver()[0] == "glibc")


def test_default_decode_workers_follow_the_device_backend_and_cores():
    assert [default_decode_workers("cpu", "pyav", cores) for cores in (1, 2, 4, 16)] == [0, 0, 1, 1]
    assert [default_decode_workers("cuda", "pyav", cores) for cores in (1, 2, 3, 16)] == [1, 1, 1, 14]
    assert default_decode_workers("cuda", "torchcodec", 16) == 14
    assert default_decode_workers("cuda", "nvdec", 16) == 0
