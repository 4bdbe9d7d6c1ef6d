"""How an extraction runs: :class:`ExtractOptions`, every choice with its default, resolved once for the device.

```python
from tspvideo.extract.options import ExtractOptions
from tspvideo.extract.run import extract_dataset
from tspvideo.models.encoder import load_encoder

extract_dataset(videos, "features/", load_encoder("r2plus1d_34-tsp_on_activitynet"), ExtractOptions(stride=4))
```

Input fields left ``None`` are the encoder's own (:meth:`tspvideo.models.encoder.Encoder.resolve_input`);
runtime fields left ``None`` / ``"auto"`` are chosen for the device by :meth:`ExtractOptions.resolve`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from tspvideo.core.choices import COLOUR_CONVERSIONS, CPU_BATCH_SIZE, GPU_BATCH_SIZE, PRECISIONS
from tspvideo.core.cores import cpu_share
from tspvideo.core.devices import resolve_device, resolve_preprocess_on
from tspvideo.core.errors import TspVideoError
from tspvideo.core.grid import ClipGrid
from tspvideo.core.precision import Precision, exact_float32, resolve_precision
from tspvideo.extract.streaming import default_decode_workers
from tspvideo.models.inputs import InputOverrides
from tspvideo.video.watchdog import DEFAULT_VIDEO_TIMEOUT


def colour_conversion(raw_frames: bool, backend: str = "pyav", decoder_resize: bool = False) -> str:
    """Where YUV becomes RGB by default: on the device when raw frames go there from PyAV's decoder (the
    conversion costs a worker more than decoding; features within the cosine measured in
    ``benchmarks/gpu.py``), else in the decoder (swscale, the reference path). With NVDEC this concerns the
    PyAV workers beside it (NVDEC converts its own frames)."""
    return "device" if raw_frames and backend in ("pyav", "nvdec") and not decoder_resize else "decoder"


@dataclass(frozen=True)
class ExtractOptions:
    """Everything an extraction can be told besides the videos, the folder and the encoder."""

    # The input: None is the encoder's own (a checkpoint's training input, else its weights' recipe).
    clip_len: int | None = None
    fps: float | None = None
    stride: int | None = None  # default: one clip per clip length
    sampling: str | None = None
    force: bool = False  # accept clip_len / fps / sampling that contradict a checkpoint's training input
    # The runtime: None / "auto" is chosen for the device by resolve().
    device: str = "auto"
    batch_size: int | None = None
    workers: int | None = None  # decode worker processes (0: in the main process)
    decode_threads: int = 0  # FFmpeg threads per decoder (0: cores / workers)
    backend: str = "pyav"  # pyav, torchcodec or nvdec
    nvdec_sessions: int = 4
    amp: str = "auto"  # auto, fp32, bf16, fp16
    channels_last: bool | None = None
    exact: bool = False  # the float32 reference path, TF32 off
    decoder_resize: bool = False
    preprocess_on: str = "auto"  # auto, workers, device
    colour: str = "auto"  # auto, decoder, device
    # The run.
    shard_id: int = 0
    num_shards: int = 1
    overwrite: bool = False
    accept_short: bool = False
    video_timeout: float | None = DEFAULT_VIDEO_TIMEOUT  # seconds a decoder may stall before its video fails
    progress: bool = True

    @classmethod
    def for_grid(cls, grid: ClipGrid, **options: object) -> ExtractOptions:
        """Options that extract on exactly ``grid`` (whatever the encoder's own input), and ``options``."""
        return cls(clip_len=grid.clip_len, fps=grid.fps, stride=grid.stride, sampling=grid.sampling, force=True,
                   **options)

    @property
    def input_overrides(self) -> InputOverrides:
        """The input fields given explicitly."""
        return InputOverrides(clip_len=self.clip_len, fps=self.fps, sampling=self.sampling, stride=self.stride,
                              force=self.force)

    @property
    def precision(self) -> Precision:
        """What the model runs in on this device (the options' ``amp`` / ``channels_last`` / ``exact``)."""
        if self.exact:
            return Precision(None, False, "--exact: the reference path, TF32 off")
        return resolve_precision(resolve_device(self.device), self.amp, self.channels_last)

    @property
    def raw_frames(self) -> bool:
        """Whether the decode workers send uint8 frames that the model's device preprocesses."""
        return resolve_preprocess_on(self.preprocess_on, resolve_device(self.device)) == "device" or (
            self.preprocess_on == "auto" and self.backend == "nvdec")

    def resolve(self) -> ExtractOptions:
        """These options with every ``auto`` / ``None`` runtime choice made for the device, checked; resolving
        twice gives the same options. ``exact`` also turns TF32 off in this process."""
        self.check()
        device = resolve_device(self.device)
        device_type = torch.device(device).type
        precision = self.precision
        if self.exact:
            exact_float32()
        raw = self.raw_frames
        colour = self.colour if self.colour != "auto" else (
            "decoder" if self.exact else colour_conversion(raw, self.backend, self.decoder_resize))
        workers = self.workers if self.workers is not None else default_decode_workers(
            device_type, self.backend, cpu_share())
        batch = self.batch_size if self.batch_size is not None else (
            CPU_BATCH_SIZE if device_type == "cpu" else GPU_BATCH_SIZE)
        return replace(self, device=device, batch_size=batch, workers=workers, amp=precision.name,
                       channels_last=precision.channels_last, preprocess_on="device" if raw else "workers",
                       colour=colour)

    def check(self) -> None:
        """Raise :class:`TspVideoError` for a value out of range, a device this machine lacks, or options that
        exclude each other."""
        resolve_device(self.device)
        if self.batch_size is not None and self.batch_size < 1:
            raise TspVideoError(f"--batch-size must be 1 or more, got {self.batch_size}")
        if self.workers is not None and self.workers < 0:
            raise TspVideoError(f"--workers must be 0 or more, got {self.workers}")
        if self.decode_threads < 0:
            raise TspVideoError(f"--decode-threads must be 0 (automatic) or more, got {self.decode_threads}")
        if self.num_shards < 1:
            raise TspVideoError(f"--num-shards must be >= 1, got {self.num_shards}")
        if not 0 <= self.shard_id < self.num_shards:
            raise TspVideoError(f"--shard-id must be in 0..{self.num_shards - 1}, got {self.shard_id}")
        if self.video_timeout is not None and not self.video_timeout >= 0:
            raise TspVideoError(f"--video-timeout must be 0 (no limit) or more seconds, got {self.video_timeout}")
        if self.amp not in PRECISIONS:
            raise TspVideoError(f"--amp takes {', '.join(PRECISIONS)}, got {self.amp!r}")
        if self.colour not in ("auto", *COLOUR_CONVERSIONS):
            raise TspVideoError(f"--colour takes auto, {', '.join(COLOUR_CONVERSIONS)}, got {self.colour!r}")
        if self.exact:
            if self.colour == "device":
                raise TspVideoError("--exact runs the reference path, with RGB from the decoder; drop --colour device")
            clashes = [flag for flag, given in (("--amp", self.amp not in ("auto", "fp32")),
                                                ("--channels-last", bool(self.channels_last)),
                                                ("--decoder-resize", self.decoder_resize)) if given]
            if clashes:
                raise TspVideoError(f"--exact runs the float32 reference path; drop {' and '.join(clashes)}")
