"""Decoding on the GPU's NVDEC engines through NVIDIA's PyNvVideoCodec (``pip install "tspvideo[nvdec]"``).

Frames are chosen by exactly the rule of the PyAV backend: the packets' timestamps (read by demuxing
the file with PyAV, no decoding) give each sampled frame's source frame in display order
(:func:`~tspvideo.video.decode.sampled_source_frames`, the torchcodec backend's way too); NVDEC then
decodes the video from its start and returns frames in display order, each checked against the
timestamp its packet gives (up to one constant offset: NVDEC's demuxer does not apply the MP4 edit list
that shifts B-frame streams to start at 0, so its timestamps start two frames early on such files).
Frames stay on the GPU as uint8 RGB ``[H, W, 3]`` (NVDEC's own colour conversion), so nothing crosses
the PCIe bus.

Whatever NVDEC cannot do exactly (a codec it lacks, such as MS-MPEG-4 in old AVI files, a frame
missing or out of place) raises :class:`NvdecUnsupported`, and the caller decodes that video with
PyAV instead, saying so. Variable-frame-rate files go to PyAV too: on an H200, NVDEC's frames of the
variable-rate test videos did not pass the frame-identity test (the run's report was cut before it said
how), so until that is understood they are not trusted to it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from tspvideo.core.errors import TspVideoError
from tspvideo.video.decode import (
    SamplingClock,
    _open_error,
    check_complete,
    check_video_file,
    packet_timeline,
    sampled_source_frames,
)

# Codecs NVDEC decodes on the GPUs this targets (FFmpeg's names); others go to PyAV without trying.
NVDEC_CODECS = ("h264", "hevc", "av1", "vp9", "vp8", "mpeg1video", "mpeg2video", "mpeg4", "vc1", "mjpeg")
FRAMES_PER_CALL = 32  # frames asked of the decoder at a time


class NvdecUnsupported(TspVideoError):
    """NVDEC cannot decode this video exactly; PyAV should (the message says why)."""


def nvdec_problem(device: torch.device) -> str | None:
    """Why NVDEC decoding cannot run for ``device``, or None when it can."""
    if device.type != "cuda":
        return f"--backend nvdec decodes on an NVIDIA GPU; the model runs on {device}"
    if not torch.cuda.is_available():
        return "--backend nvdec needs CUDA, which torch does not see here"
    try:
        import PyNvVideoCodec  # noqa: F401  (optional dependency: imported only when asked for)
    except Exception as error:  # ImportError, or the library failing to find the driver
        return f'--backend nvdec needs `pip install "tspvideo[nvdec]"` (PyNvVideoCodec): {error}'
    return None


def _open_decoder(path: Path, gpu_id: int):
    """A PyNvVideoCodec decoder of ``path`` giving interleaved RGB frames in GPU memory."""
    import PyNvVideoCodec as nvc

    return nvc.SimpleDecoder(str(path), gpu_id=gpu_id, use_device_memory=True,
                             output_color_type=nvc.OutputColorType.RGB)


# Tests replace this to run the logic below with a decoder that works without a GPU.
open_decoder: Callable[[Path, int], object] = _open_decoder
_open_lock = threading.Lock()  # sessions are created one at a time (their set-up is not thread-safe everywhere)


def _as_hwc(frame) -> torch.Tensor:
    """One decoded frame as an owned uint8 ``[H, W, 3]`` tensor (the decoder reuses its buffers)."""
    tensor = torch.from_dlpack(frame)
    if tensor.dim() == 3 and tensor.shape[0] == 3 and tensor.shape[-1] != 3:  # planar RGB: make it HWC
        tensor = tensor.permute(1, 2, 0)
    return tensor.clone()


def iter_nvdec_frames(path: str | os.PathLike, clock: SamplingClock, start_index: int = 0,
                      end_index: int | None = None, gpu_id: int = 0) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(j, frame)`` for sampled frames ``start_index ..`` (to ``end_index`` or the video's end),
    ``frame`` a uint8 RGB ``[H, W, 3]`` tensor on GPU ``gpu_id``; the frames of the PyAV backend.

    Raises :class:`NvdecUnsupported` when NVDEC cannot give exactly those frames (decode with PyAV),
    :class:`~tspvideo.core.errors.VideoDecodeError` for a file no decoder can read, and
    :class:`~tspvideo.core.errors.TruncatedVideoError` for a file that ends before its declared duration.
    """
    path = Path(path)
    check_video_file(path)
    try:
        timeline = packet_timeline(path)
    except TspVideoError:
        raise
    except Exception as error:  # PyAV raises many types
        raise _open_error(path, error) from error
    if timeline.codec not in NVDEC_CODECS:
        raise NvdecUnsupported(f"{path}: NVDEC does not decode {timeline.codec}")
    if not constant_rate(timeline.pts):
        raise NvdecUnsupported(f"{path}: variable frame rate (NVDEC's frames of such files are not checked yet)")
    sources = sampled_source_frames(timeline.times, timeline.end, clock, start_index, end_index)
    reaches_end = end_index is None or end_index >= clock.count(timeline.end)
    if sources:
        yield from _decode_sources(path, timeline.pts, sources, start_index, gpu_id)
    if reaches_end:  # the whole video was asked for: did the file end where it says?
        check_complete(path, timeline.declared, timeline.end)


def constant_rate(pts: list[int]) -> bool:
    """Whether frames are evenly spaced (to one tick of the time base, for containers that round)."""
    steps = [b - a for a, b in zip(pts, pts[1:], strict=False)]
    return not steps or max(steps) - min(steps) <= 1


def _decode_sources(path: Path, pts: list[int], sources: list[int], start_index: int,
                    gpu_id: int) -> Iterator[tuple[int, torch.Tensor]]:
    """Decode from the start, yielding each sampled frame when its source frame comes out."""
    try:
        with _open_lock:
            decoder = open_decoder(path, gpu_id)
    except Exception as error:
        raise NvdecUnsupported(f"{path}: NVDEC cannot open it ({_first_line(error)})") from error
    wanted = 0  # position in ``sources``
    shown = 0  # display index of the next frame out of the decoder
    offset = None  # NVDEC's timestamps minus the packets' (its demuxer ignores the MP4 edit list's shift)
    while wanted < len(sources) and shown < len(pts):
        try:
            batch = decoder.get_batch_frames(min(FRAMES_PER_CALL, len(pts) - shown))
        except Exception as error:
            raise NvdecUnsupported(f"{path}: NVDEC failed after {shown} frames ({_first_line(error)})") from error
        if not batch:
            break
        for frame in batch:
            stamp = frame.getPTS()
            offset = stamp - pts[0] if offset is None else offset
            if shown >= len(pts) or stamp - offset != pts[shown]:
                expected = pts[shown] + offset if shown < len(pts) else "none"
                raise NvdecUnsupported(f"{path}: NVDEC frame {shown} has timestamp {stamp}, the packets "
                                       f"say {expected}")
            if sources[wanted] == shown:
                tensor = _as_hwc(frame)
                while wanted < len(sources) and sources[wanted] == shown:
                    yield start_index + wanted, tensor
                    wanted += 1
            shown += 1
            if wanted == len(sources):
                break
    if wanted < len(sources):
        raise NvdecUnsupported(f"{path}: NVDEC gave {shown} frames; the packets list {len(pts)}")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

