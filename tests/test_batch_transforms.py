"""Training input preprocessed on the device: raw items, grouped batches, the same clips as the worker path."""

from __future__ import annotations

import pytest
import torch
from helpers import table_segment
from torch.utils.data import DataLoader

from tspvideo.core.errors import TspVideoError
from tspvideo.datasets.batch_transforms import collate_raw_clips, is_raw_batch, preprocess_batch
from tspvideo.datasets.clips import BalancedSampler, ClipSpec, SegmentClipDataset, ShardSampler
from tspvideo.datasets.segments import Segment
from tspvideo.datasets.transforms import Preprocessing, crop_params, preprocess_clip
from tspvideo.video.synthetic import write_index_video

FPS = 15.0
SPEC = ClipSpec(clip_len=4, fps=FPS, clips_per_segment=3)
LABELS = ["jump", "run"]
SIZES = {"small": (32, 24), "wide": (48, 24), "tall": (30, 40)}  # (width, height): three frame sizes


def seg(video: str, t_start: float, t_end: float, label: str | None, duration: float = 6.0) -> Segment:
    return table_segment(video, t_start, t_end, label, duration, FPS)


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory):
    """Three 6 s index videos of different frame sizes."""
    root = tmp_path_factory.mktemp("sized-videos")
    for name, size in SIZES.items():
        write_index_video(root / f"{name}.mp4", num_frames=90, fps=FPS, size=size)
    return root


def segments() -> list[Segment]:
    return [segment for name in SIZES for segment in
            (seg(name, 0.0, 2.0, None), seg(name, 2.0, 4.0, "jump" if name != "wide" else "run"),
             seg(name, 4.0, 6.0, None))]


def batches(video_dir, prep: Preprocessing, train: bool, preprocess_on: str, batch_size: int = 6) -> list[dict]:
    dataset = SegmentClipDataset(segments(), video_dir, train=train, label_map=LABELS, spec=SPEC, prep=prep,
                                 seed=3, preprocess_on=preprocess_on)
    sampler = BalancedSampler(dataset, seed=3) if train else ShardSampler(dataset)
    raw = preprocess_on == "device"  # in a worker process: items and collate cross the process boundary
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=1 if raw else 0,
                        collate_fn=collate_raw_clips if raw else None)
    return list(loader)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("resize", [(24, 32), (20,)])  # fixed size, and short side (resized sizes differ per video)
def test_device_path_gives_the_worker_paths_batches_bit_for_bit(video_dir, train, resize):
    prep = Preprocessing(resize=resize, crop=(16, 16))
    workers, device = batches(video_dir, prep, train, "workers"), batches(video_dir, prep, train, "device")
    assert len(workers) == len(device) > 1
    mixed = 0
    for expected, raw in zip(workers, device, strict=True):
        assert is_raw_batch(raw) and not is_raw_batch(expected)
        assert all(group.dtype == torch.uint8 for group in raw["clip"])
        mixed += len(raw["clip"]) > 1
        clips = preprocess_batch(raw["clip"], raw["clip_positions"], raw["crop"], prep)
        assert clips.dtype == torch.float32 and clips.shape == expected["clip"].shape
        assert torch.equal(clips, expected["clip"])  # CPU: the same operations on the same values
        for key in ("action", "region", "index", "start", "replaced"):
            assert torch.equal(raw[key], expected[key]), key
    assert mixed  # some batches did hold clips of several frame sizes
    if train:  # the random crops were drawn, and some flipped
        boxes = torch.cat([raw["crop"] for raw in device])
        assert len({tuple(b[:2].tolist()) for b in boxes}) > 2 and 0 < int(boxes[:, 2].sum()) < len(boxes)


def test_crop_params_are_the_draws_of_preprocess_clip():
    prep = Preprocessing(resize=(24, 32), crop=(16, 16))
    frames = torch.randint(0, 256, (2, 30, 40, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for seed in range(8):
        top, left, flip = crop_params(30, 40, prep, True, torch.Generator().manual_seed(seed))
        x = preprocess_clip(frames, prep, train=False)  # centre crop, for the shapes only
        clip = preprocess_clip(frames, prep, train=True, generator=torch.Generator().manual_seed(seed))
        full = preprocess_clip(frames, Preprocessing(resize=(24, 32), crop=(24, 32), mean=prep.mean, std=prep.std))
        window = full[..., top:top + 16, left:left + 16]
        assert torch.equal(clip, window.flip(-1) if flip else window) and clip.shape == x.shape
    assert crop_params(30, 40, prep, False) == (4, 8, False)  # centre of 24x32, unflipped


def test_collate_groups_clips_by_frame_size_and_keeps_batch_order():
    def item(height: int, width: int, index: int) -> dict:
        return {"clip": torch.full((2, height, width, 3), index, dtype=torch.uint8), "index": index,
                "crop": torch.tensor([0, 0, 0])}

    batch = collate_raw_clips([item(4, 6, 0), item(6, 4, 1), item(4, 6, 2), item(6, 4, 3), item(4, 6, 4)])
    assert [tuple(group.shape) for group in batch["clip"]] == [(3, 2, 4, 6, 3), (2, 2, 6, 4, 3)]
    assert [p.tolist() for p in batch["clip_positions"]] == [[0, 2, 4], [1, 3]]
    assert batch["index"].tolist() == [0, 1, 2, 3, 4] and batch["crop"].shape == (5, 3)
    same = collate_raw_clips([item(4, 6, 0), item(4, 6, 1)])
    assert len(same["clip"]) == 1 and same["clip"][0].shape == (2, 2, 4, 6, 3)


def test_mixed_groups_land_at_their_positions_and_channels_last_on_request():
    prep = Preprocessing(resize=(8,), crop=(8, 8), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    # constant clips whose value is their batch position: after resizing and cropping each stays constant
    items = [{"clip": torch.full((2, *((8, 12) if i % 2 else (16, 8)), 3), 10 * i, dtype=torch.uint8),
              "crop": torch.tensor([0, 0, i % 2])} for i in range(5)]
    batch = collate_raw_clips(items)
    assert len(batch["clip"]) == 2
    clips = preprocess_batch(batch["clip"], batch["clip_positions"], batch["crop"], prep, channels_last=True)
    assert clips.shape == (5, 3, 2, 8, 8) and clips.is_contiguous(memory_format=torch.channels_last_3d)
    for i in range(5):
        assert torch.allclose(clips[i], torch.full_like(clips[i], 10 * i / 255.0)), i


def test_unknown_preprocess_on_is_an_error(video_dir):
    with pytest.raises(TspVideoError, match="preprocess_on must be one of workers, device"):
        SegmentClipDataset(segments(), video_dir, train=True, label_map=LABELS, spec=SPEC, preprocess_on="gpu")
