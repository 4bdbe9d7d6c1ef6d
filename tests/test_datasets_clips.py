"""Training clip dataset and balanced sampler: clip placement, balance, RNG streams, GVF, bad videos."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import torch
from helpers import table_segment
from torch.utils.data import DataLoader

from tspvideo.core.errors import TspVideoError
from tspvideo.datasets.clips import (
    BalancedSampler,
    ClipSpec,
    SegmentClipDataset,
    ShardSampler,
    clip_start_range,
    evenly_spaced,
    seed_worker,
)
from tspvideo.datasets.segments import ACTION, Segment
from tspvideo.datasets.transforms import Preprocessing
from tspvideo.video.synthetic import write_index_video

FPS = 15.0
SPEC = ClipSpec(clip_len=4, fps=FPS, clips_per_segment=3)
PREP = Preprocessing(resize=(24, 32), crop=(16, 16))
LABELS = ["jump", "run"]


def seg(video: str, t_start: float, t_end: float, label: str | None, duration: float = 10.0) -> Segment:
    return table_segment(video, t_start, t_end, label, duration, FPS)


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory):
    """Two 10 s index videos at 15 fps (sampled frame j is source frame j)."""
    root = tmp_path_factory.mktemp("videos")
    for name in ("a", "b"):
        write_index_video(root / f"{name}.mp4", num_frames=150, fps=FPS, size=(32, 24))
    return root


def table() -> list[Segment]:
    return [
        seg("a", 0.0, 2.0, None), seg("a", 2.0, 5.0, "jump"), seg("a", 5.0, 10.0, None),
        seg("b", 0.0, 0.2, None),  # 3 frames: shorter than one clip of 4
        seg("b", 0.2, 3.4, "run"), seg("b", 3.4, 3.5, "jump"),  # the second one is too short
        seg("b", 3.5, 10.0, None),
    ]


def test_clip_start_range_is_inside_segment_and_robust_to_float_noise():
    assert clip_start_range(seg("a", 1.0, 2.0, "jump"), 8, FPS) == (15, 22)
    # 2.4 * 15 = 35.99999...: the segment still starts at frame 36 and ends at frame 45
    assert clip_start_range(seg("a", 2.4, 3.0, "jump"), 8, FPS) == (36, 37)
    assert clip_start_range(seg("a", 2.4, 3.0, "jump"), 9, FPS) == (36, 36)
    assert clip_start_range(seg("a", 2.4, 3.0, "jump"), 10, FPS) is None
    # bounded by the video's end as well
    assert clip_start_range(seg("a", 9.0, 12.0, None, duration=10.0), 8, FPS) == (135, 142)
    assert evenly_spaced(10, 20, 3) == [10, 15, 20]
    assert evenly_spaced(10, 20, 1) == [15]


def test_short_segments_dropped_and_counted(video_dir):
    dataset = SegmentClipDataset(table(), video_dir, train=True, label_map=LABELS, spec=SPEC, prep=PREP)
    assert dataset.dropped["too_short"] == 2
    assert len(dataset.segments) == 5
    assert len(dataset) == 5 * SPEC.clips_per_segment
    assert dataset.num_clips() == {"foreground": 6, "background": 9}
    with pytest.raises(TspVideoError, match="no segment is long enough"):
        SegmentClipDataset([seg("a", 0.0, 0.1, "jump")], video_dir, train=True, label_map=LABELS, spec=SPEC)
    tac = SegmentClipDataset(table(), video_dir, train=True, label_map=LABELS, spec=SPEC, foreground_only=True)
    assert tac.dropped == {"too_short": 1, "background": 4}
    assert tac.num_clips()["background"] == 0
    with pytest.raises(TspVideoError, match="not in the label map: jump"):
        SegmentClipDataset(table(), video_dir, train=True, label_map=["run"], spec=SPEC)


def test_every_clip_lies_inside_its_segment(video_dir):
    for train in (True, False):
        dataset = SegmentClipDataset(table(), video_dir, train=train, label_map=LABELS, spec=SPEC, prep=PREP)
        for index in range(len(dataset)):
            segment = dataset.segments[index // SPEC.clips_per_segment]
            for draw in range(20 if train else 1):
                generator = torch.Generator().manual_seed(draw) if train else None
                start = dataset.clip_start(index, generator)
                assert start / FPS >= segment.t_start - 1e-9
                assert (start + SPEC.clip_len) / FPS <= segment.t_end + 1e-9
    # evaluation: evenly spaced, first and last clip at the segment's ends
    dataset = SegmentClipDataset(table(), video_dir, train=False, label_map=LABELS, spec=SPEC, prep=PREP)
    starts = [dataset[i]["start"] for i in range(3)]  # segment a [0, 2]: frames 0..30
    assert starts == [0, 13, 26]


def test_items_have_labels_and_clip_shape(video_dir, tmp_path):
    gvf = tmp_path / "gvf.h5"
    with h5py.File(gvf, "w") as h5:
        h5.create_dataset("a", data=np.full(512, 1.0, np.float32))
        h5.create_dataset("b", data=np.full(512, 2.0, np.float32))
    dataset = SegmentClipDataset(table(), video_dir, train=True, label_map=LABELS, spec=SPEC, prep=PREP,
                                 gvf_path=gvf)
    background, foreground = dataset[0], dataset[3]
    assert background["clip"].shape == (3, SPEC.clip_len, 16, 16) and background["clip"].dtype == torch.float32
    assert (background["action"], background["region"]) == (-1, 1)
    assert (foreground["action"], foreground["region"]) == (0, 0)
    assert float(dataset[9]["gvf"][0]) == 2.0  # segment b [0.2, 3.4]
    assert dataset.gvf._h5 is not None
    worker_copy = pickle.loads(pickle.dumps(dataset))  # what a DataLoader worker receives: no open handle
    assert worker_copy.gvf._h5 is None and float(worker_copy[9]["gvf"][0]) == 2.0


def test_missing_gvf_names_the_video(video_dir, tmp_path):
    gvf = tmp_path / "gvf.h5"
    with h5py.File(gvf, "w") as h5:
        h5.create_dataset("a", data=np.zeros(512, np.float32))
    with pytest.raises(TspVideoError, match=r"no GVF for 1 of the 2 videos.*e\.g\. b"):
        SegmentClipDataset(table(), video_dir, train=True, label_map=LABELS, spec=SPEC, gvf_path=gvf)


def test_undecodable_clip_is_replaced_by_one_of_the_same_kind(video_dir):
    segments = table() + [seg("missing", 0.0, 5.0, "run"), seg("missing", 5.0, 10.0, None)]
    dataset = SegmentClipDataset(segments, video_dir, train=True, label_map=LABELS, spec=SPEC, prep=PREP)
    cps = SPEC.clips_per_segment
    broken_fg = next(i for i in range(len(dataset)) if dataset.segments[i // cps].video_name == "missing"
                     and dataset.segments[i // cps].is_action)
    broken_bg = broken_fg + cps
    for broken, is_action in ((broken_fg, True), (broken_bg, False)):
        for epoch in range(3):
            item = dataset[(broken, epoch, broken)]
            assert item["replaced"] >= 1
            replacement = dataset.segments[item["index"] // cps]
            assert replacement.video_name != "missing"
            assert replacement.is_action == is_action
            assert (item["action"] >= 0) == is_action
    assert dataset[0]["replaced"] == 0


def test_sampler_balances_and_visits_every_segment(video_dir):
    dataset = SegmentClipDataset(table(), video_dir, train=True, label_map=LABELS, spec=SPEC, prep=PREP)
    sampler = BalancedSampler(dataset, seed=3)
    fg = set(dataset.foreground_items.tolist())
    seen_segments = set()
    for epoch in range(6):
        sampler.set_epoch(epoch)
        keys = list(sampler)
        items = [k[0] for k in keys]
        assert len(keys) == len(sampler) == sampler.epoch_size() == 12
        assert len(set(items)) == len(items)  # without replacement
        assert sum(i in fg for i in items) == len(items) // 2  # as many foreground as background clips
        assert fg <= set(items)  # the smaller kind is used in full every epoch
        assert [k[1] for k in keys] == [epoch] * len(keys)
        seen_segments |= {i // SPEC.clips_per_segment for i in items}
    assert seen_segments == set(range(len(dataset.segments)))
    unbalanced = BalancedSampler(dataset, balance=False)
    assert sorted(k[0] for k in unbalanced) == list(range(len(dataset)))


def test_ranks_split_the_global_order(video_dir):
    dataset = SegmentClipDataset(table(), video_dir, train=True, label_map=LABELS, spec=SPEC, prep=PREP)
    single = BalancedSampler(dataset, 1, 0, seed=1)
    single.set_epoch(2)
    order = [k[0] for k in single]
    ranks = []
    for rank in range(3):
        sampler = BalancedSampler(dataset, 3, rank, seed=1)
        sampler.set_epoch(2)
        ranks.append(list(sampler))
    assert len({len(r) for r in ranks}) == 1  # equal shares (padded)
    positions = sorted(k[2] for r in ranks for k in r)
    assert positions == list(range(len(positions)))  # no position twice, none skipped
    by_position = {k[2]: k[0] for r in ranks for k in r}
    assert [by_position[p] for p in range(len(order))] == order  # the same global order as one process
    shard = [list(ShardSampler(range(10), 3, r)) for r in range(3)]
    assert sorted(sum(shard, [])) == list(range(10))


def _jitter(dataset, sampler, workers: int) -> list[tuple[int, int, int]]:
    loader = DataLoader(dataset, batch_size=1, sampler=sampler, num_workers=workers, worker_init_fn=seed_worker)
    out = []
    for batch in loader:
        out.append((int(batch["index"]), int(batch["start"]), int(batch["clip"].flatten()[0].mul(1e4).round())))
    return out


def test_random_streams_are_reproducible_and_differ_per_worker_rank_and_epoch(video_dir):
    # One long segment and many clips of it: a shared stream would give the same jitter to every worker.
    segments = [seg("a", 0.0, 10.0, "jump")]
    spec = ClipSpec(clip_len=4, fps=FPS, clips_per_segment=8)
    dataset = SegmentClipDataset(segments, video_dir, train=True, label_map=LABELS, spec=spec, prep=PREP, seed=7)
    sampler = BalancedSampler(dataset, seed=7, shuffle=False)
    two_workers = _jitter(dataset, sampler, workers=2)
    assert two_workers == _jitter(dataset, sampler, workers=2)  # reproducible
    assert two_workers == _jitter(dataset, sampler, workers=0)  # independent of the number of workers
    worker0, worker1 = two_workers[0::2], two_workers[1::2]  # the DataLoader alternates workers
    assert [s for _, s, _ in worker0] != [s for _, s, _ in worker1]
    assert len({s for _, s, _ in two_workers}) > 4  # starts are spread, not repeated
    sampler.set_epoch(1)
    assert _jitter(dataset, sampler, workers=0) != two_workers  # a new epoch draws anew
    rank1 = BalancedSampler(dataset, 2, 1, seed=7, shuffle=False)
    rank0 = BalancedSampler(dataset, 2, 0, seed=7, shuffle=False)
    assert [dataset[k]["start"] for k in rank0] != [dataset[k]["start"] for k in rank1]
    other_seed = BalancedSampler(dataset, seed=8, shuffle=False)
    dataset8 = SegmentClipDataset(segments, video_dir, train=True, label_map=LABELS, spec=spec, prep=PREP, seed=8)
    assert _jitter(dataset8, other_seed, workers=0) != two_workers


def test_training_clips_use_the_sampling_rule_of_the_spec(tmp_path):
    """Default: the original's frames (FFmpeg fps=30 then every second frame); timestamp: the option. On a
    25 fps source they differ, and the video's grid length (the end bound of clip starts) follows the rule."""
    from tspvideo.datasets.transforms import preprocess_clip
    from tspvideo.video.decode import read_frames

    write_index_video(tmp_path / "v25.mp4", num_frames=77, fps=25, size=(32, 24))  # 3.08 s: N15 46 / 47
    segment = Segment("v25", 0.0, 3.2, "jump", 3.08, "v25.mp4", 25.0, 77, ACTION)  # ends past the video
    assert clip_start_range(segment, 8, FPS) == (0, 46 - 8)
    assert clip_start_range(segment, 8, FPS, "timestamp") == (0, 47 - 8)
    clips = {}
    for sampling in ("ffmpeg-fps", "timestamp"):
        spec = ClipSpec(clip_len=8, fps=FPS, clips_per_segment=3, sampling=sampling)
        dataset = SegmentClipDataset([segment], tmp_path, train=False, label_map=LABELS, spec=spec, prep=PREP)
        item = dataset[1]
        frames = read_frames(tmp_path / "v25.mp4", item["start"], 8, sampling=sampling)
        assert torch.equal(item["clip"], preprocess_clip(torch.from_numpy(frames), PREP))
        clips[sampling] = item["clip"]
    assert ClipSpec().sampling == "ffmpeg-fps"
    assert not torch.equal(clips["ffmpeg-fps"], clips["timestamp"])
    with pytest.raises(TspVideoError, match="sampling rule"):
        SegmentClipDataset([segment], tmp_path, train=False, label_map=LABELS, spec=ClipSpec(sampling="x"))
