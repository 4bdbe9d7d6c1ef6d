"""Training input preprocessed on the model's device: raw uint8 clips in, float clips out, per batch.

With ``SegmentClipDataset(preprocess_on="device")`` loader workers only decode: each item carries the
uint8 clip ``[T, H, W, 3]`` as decoded and the crop box ``(top, left, flip)`` drawn by
:func:`tspvideo.datasets.transforms.crop_params` (the same generator calls as the worker path).
:func:`collate_raw_clips` stacks clips of the same frame size (videos differ in size, so a batch may hold
several groups) and :func:`preprocess_batch` runs, on the device, the operations of
:func:`tspvideo.datasets.transforms.preprocess_clip`: float, bilinear resize and normalisation in one call per
group, then each clip's crop and flip. Every operation acts on each frame alone and the crop and flip only
move values, so the result is the worker path's up to the device's float rounding (on CPU: bit-identical).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import default_collate

from tspvideo.datasets.transforms import PREPROCESSING, Preprocessing, crop, normalize, resize, to_float

RAW_KEYS = ("clip", "crop")  # what a raw item carries instead of a float clip


def collate_raw_clips(items: Sequence[dict]) -> dict:
    """Batch raw items: ``clip`` becomes a list of uint8 ``[b, T, H, W, 3]`` tensors, one per frame size (in
    order of first appearance), ``clip_positions`` the batch positions of each group's clips, ``crop`` a long
    ``[B, 3]`` of ``(top, left, flip)``; every other key is collated as the default collate does."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for position, item in enumerate(items):
        groups.setdefault(tuple(item["clip"].shape), []).append(position)
    batch = default_collate([{k: v for k, v in item.items() if k != "clip"} for item in items])
    batch["clip"] = [torch.stack([items[p]["clip"] for p in positions]) for positions in groups.values()]
    batch["clip_positions"] = [torch.tensor(positions, dtype=torch.long) for positions in groups.values()]
    return batch


def is_raw_batch(batch: dict) -> bool:
    """Whether ``batch`` came from :func:`collate_raw_clips` (its clips still need :func:`preprocess_batch`)."""
    return "clip_positions" in batch


def preprocess_batch(groups: Sequence[torch.Tensor], positions: Sequence[torch.Tensor], boxes: torch.Tensor,
                     prep: Preprocessing = PREPROCESSING["tsp"], device: torch.device | str | None = None,
                     channels_last: bool = False) -> torch.Tensor:
    """Raw clip groups -> float ``[B, 3, T, h, w]`` on ``device`` (default: the groups' own device).

    ``groups``, ``positions`` and ``boxes`` are :func:`collate_raw_clips`' ``clip``, ``clip_positions`` and
    ``crop``. Each group is copied to the device as uint8 (non-blocking: from pinned memory this overlaps),
    converted, resized and normalised in one batched call; ``channels_last`` returns ``channels_last_3d``.
    """
    device = torch.device(device) if device is not None else groups[0].device
    memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
    size = sum(len(group) for group in groups)
    boxes = boxes.tolist()
    out = None
    for group, where in zip(groups, positions, strict=True):
        clips, length = group.to(device, non_blocking=True), group.shape[1]
        frames = resize(to_float(clips.flatten(0, 1)), prep.resize, prep.hf_processor)  # [b * T, 3, H', W']
        frames = frames.unflatten(0, (len(group), length))
        cropped = []
        for clip, position in zip(frames, where.tolist(), strict=True):
            top, left, flip = boxes[position]
            clip = crop(clip, top, left, prep.crop)
            cropped.append(clip.flip(-1) if flip else clip)
        # normalising after the crop: elementwise, so the same values as before it, on fewer pixels
        clips = normalize(torch.stack(cropped).flatten(0, 1), prep.mean, prep.std).unflatten(0, (len(group), length))
        clips = clips.permute(0, 2, 1, 3, 4)  # [b, 3, T, h, w]
        if len(groups) == 1:
            return clips.contiguous(memory_format=memory_format)
        if out is None:
            out = torch.empty((size, *clips.shape[1:]), dtype=clips.dtype, device=device).contiguous(
                memory_format=memory_format)
        out[where.to(device)] = clips
    return out
