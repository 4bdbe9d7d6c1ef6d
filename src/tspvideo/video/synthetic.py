"""Synthetic untrimmed videos with temporal action annotations, encoded for real as h264 mp4.

Two things live here:

1. ``generate_dataset``: a small ActivityNet-style dataset (``videos/*.mp4``, ``annotations.json``,
   ``label_map.json``) built so that TSP and TAC can be compared on it fairly. Every video shows a few
   coloured shapes over a textured, noisy background. The same objects are on screen all the time; in
   the background they drift in a generic way (a smooth random walk in position and size), and during an
   action instance one of them moves with the *motion pattern* of the instance's class (horizontal
   oscillation, vertical oscillation, circle, ...), with random frequency, phase, amplitude and
   direction. No single frame says whether a clip is foreground or background, nor its class: colour,
   shape, size and position are drawn independently of both, so a model has to look at motion.

2. ``write_index_video`` / ``read_frame_index``: tiny test videos whose frame ``k`` shows ``k`` as a
   binary pattern and is presented at a chosen time stamp (constant or variable frame rate), so that
   decoding and frame-sampling code can be checked exactly.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tspvideo.core.errors import TspVideoError
from tspvideo.core.fileio import atomic_path, save_json_atomic

# Class id -> motion pattern of the acting object. Every pattern is invariant (as a class) under a
# horizontal flip, because training augments with flips: directions are randomised where they matter.
MOTION_PATTERNS: tuple[str, ...] = (
    "horizontal_oscillation",
    "vertical_oscillation",
    "circle",
    "pulse",  # grows and shrinks in place
    "zigzag",  # fast up-down triangle wave while sweeping slowly sideways
    "figure_eight",
    "bounce",  # hops upwards from a floor, like a bouncing ball
    "square_path",
)
SHAPES: tuple[str, ...] = ("disc", "square", "diamond", "ring")

ANNOTATION_VERSION = "tspvideo-synthetic-1"
DEFAULT_CRF = 20
DEFAULT_PRESET = "ultrafast"
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow", "placebo")

# Motion parameters, in seconds and in fractions of the frame's smaller side.
_FREQ_RANGE = (0.7, 1.6)  # Hz; a 16-frame clip at 15 fps (~1.07 s) sees most of a cycle or more
_AMPLITUDE_RANGE = (0.08, 0.15)
_PULSE_RANGE = (0.3, 0.45)  # relative size change of "pulse"
_RADIUS_RANGE = (0.07, 0.10)
_RAMP_S = 0.3  # the pattern fades in over this long, so positions stay continuous at action starts
_WALK_CORRELATION_S = 0.8  # background random walk: velocity correlation time
_WALK_SPEED = 0.35  # ... and velocity std per axis (frame sides per second), close to the patterns' speed
# Size wander (log scale, all objects all the time): spread about as wide as what "pulse" spans, so
# that a single frame's object size says little; its rate (log units / s) is random and smooth.
_WALK_LOG_SIZE_STD = 0.2
_WALK_SIZE_SPEED = 0.4
_WALK_SIZE_RETURN_S = 1.0  # ... and the time it takes to drift back towards the nominal size
_LOG_SIZE_LIMIT = 0.6  # hard bound of the size wander (3 std)
_MIN_GAP_S = 1.5  # background between two instances, so every gap holds at least one clip
_MIN_EDGE_S = 0.5  # background before the first and after the last instance
_RENDER_CHUNK = 64  # frames rendered at once: bounds memory for large sizes / long videos


# ----------------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------------


def fps_to_fraction(fps: float | Fraction) -> Fraction:
    """Exact frame rate for ``fps``: NTSC rates (29.97, 23.976, 59.94) become ``N*1000/1001``."""
    if isinstance(fps, Fraction):
        rate = fps
    else:
        fps = float(fps)
        if not math.isfinite(fps) or fps <= 0:
            raise TspVideoError(f"frame rate must be a positive number, got {fps}")
        ntsc = round(fps * 1.001)
        if abs(fps - round(fps)) > 1e-6 and abs(fps - ntsc / 1.001) < 5e-3:
            rate = Fraction(ntsc * 1000, 1001)
        else:
            rate = Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise TspVideoError(f"frame rate must be positive, got {fps}")
    return rate


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``"WxH"`` into ``(width, height)``; both must be even (yuv420p) and at least 16."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise TspVideoError(f"size must look like WIDTHxHEIGHT (e.g. 64x64), got {text!r}") from None
    check_size(width, height)
    return width, height


def check_size(width: int, height: int) -> None:
    """Raise ``TspVideoError`` unless the frame size can be encoded as yuv420p h264 here."""
    if width < 16 or height < 16:
        raise TspVideoError(f"frame size {width}x{height} is too small: width and height must be >= 16")
    if width % 2 or height % 2:
        raise TspVideoError(
            f"frame size {width}x{height}: width and height must be even (h264 yuv420p halves them "
            "for the chroma planes)"
        )


def _open_h264_stream(container, rate: Fraction, width: int, height: int, crf: int, preset: str,
                      gop_size: int | None = None):
    stream = container.add_stream("libx264", rate=rate)
    stream.width = width
    stream.height = height
    stream.pix_fmt = "yuv420p"
    options = {"crf": str(crf), "preset": preset}
    if gop_size is not None:
        stream.codec_context.gop_size = gop_size
    # One thread: x264's output is deterministic anyway, but tiny frames gain nothing from threads.
    stream.codec_context.thread_count = 1
    stream.options = options
    return stream


# ----------------------------------------------------------------------------------------------------
# Video plans: what happens in a video, as numbers (objects, instances, per-frame tracks)
# ----------------------------------------------------------------------------------------------------


@dataclass
class ActionInstance:
    """One action instance: its class and time span, the object that performs it and its motion."""

    label_id: int
    start: float  # seconds
    end: float  # seconds
    actor: int  # index of the acting object
    frequency: float  # Hz
    phase: float  # radians
    amplitude: float  # pixels (relative size change for "pulse")
    direction: int  # +1 / -1: turning sense, diagonal or sweep direction, depending on the pattern

    @property
    def pattern(self) -> str:
        """Name of the class's motion pattern."""
        return MOTION_PATTERNS[self.label_id]


@dataclass
class VideoPlan:
    """Everything needed to render one video; also handy in tests (ground-truth object tracks)."""

    video_id: str
    width: int
    height: int
    rate: Fraction
    num_frames: int
    shapes: list[str]
    colors: np.ndarray  # (n_objects, 3) uint8
    base_radius: np.ndarray  # (n_objects,) pixels
    instances: list[ActionInstance]
    center_x: np.ndarray  # (num_frames, n_objects) pixels
    center_y: np.ndarray  # (num_frames, n_objects) pixels
    radius: np.ndarray  # (num_frames, n_objects) pixels
    background: np.ndarray = field(repr=False)  # (H, W, 3) float32 static texture
    noise: np.ndarray = field(repr=False)  # (n, H, W, 3) float32 sensor-noise images, reused at random
    noise_pick: np.ndarray = field(repr=False)  # (num_frames,) which noise image each frame gets
    # Background stretches where an object performs the video's decoy pattern (not annotated): see
    # ``SyntheticConfig.decoy_background``.
    decoys: list[ActionInstance] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Duration in seconds (number of frames / frame rate)."""
        return float(self.num_frames / self.rate)

    def frame_times(self) -> np.ndarray:
        """Presentation time of every frame, in seconds."""
        return np.arange(self.num_frames) / float(self.rate)

    def action_mask(self) -> np.ndarray:
        """Boolean ``(num_frames,)``: True where the frame lies inside an action instance."""
        t = self.frame_times()
        mask = np.zeros(self.num_frames, dtype=bool)
        for inst in self.instances:
            mask |= (t >= inst.start) & (t < inst.end)
        return mask


@dataclass(frozen=True)
class MotionSettings:
    """How fast things move in one video: the class patterns' ranges and the video's motion style.

    ``scale`` multiplies the background drift speed: a per-video *motion style* (calm or busy videos) while
    the actions stay as they are. With it, how fast objects move says little about foreground vs background
    across videos (a busy video's background moves about as fast as a calm video's action); compared with
    the rest of the same video, which is what a global video feature carries, it says more.
    """

    frequency_range: tuple[float, float] = _FREQ_RANGE
    amplitude_range: tuple[float, float] = _AMPLITUDE_RANGE
    walk_speed: float = _WALK_SPEED
    scale: float = 1.0


def _triangle(u: np.ndarray) -> np.ndarray:
    """Triangle wave of period 1 with values in [-1, 1]."""
    return 4.0 * np.abs(u - np.floor(u + 0.5)) - 1.0


def pattern_offsets(inst: ActionInstance, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets ``(dx, dy, relative_scale)`` of the class pattern at times ``tau`` since the start.

    ``relative_scale`` multiplies the object's size (1 = unchanged); only "pulse" changes it.
    """
    a, f, ph, s = inst.amplitude, inst.frequency, inst.phase, inst.direction
    w = 2 * np.pi * f * tau + ph
    zero = np.zeros_like(tau)
    one = np.ones_like(tau)
    name = inst.pattern
    if name == "horizontal_oscillation":
        return a * np.sin(w), zero, one
    if name == "vertical_oscillation":
        return zero, a * np.sin(w), one
    if name == "circle":
        return a * np.cos(s * w), a * np.sin(s * w), one
    if name == "pulse":
        return zero, zero, 1.0 + a * np.sin(w)
    if name == "zigzag":
        u = f * tau + ph / (2 * np.pi)
        return s * a * _triangle(u / 4.0), a * 0.7 * _triangle(u), one
    if name == "figure_eight":
        return a * np.sin(w), s * 0.5 * a * np.sin(2 * w), one
    if name == "bounce":
        # y grows downwards: hops go up from the floor at +a/2 and come back
        return zero, a * (0.5 - np.abs(np.sin(w / 2))), one
    if name == "square_path":
        u = np.mod(s * (f * tau + ph / (2 * np.pi)) * 0.5, 1.0) * 4.0  # one lap per two periods
        side = np.floor(u)
        r = u - side
        x = np.select([side == 0, side == 1, side == 2], [-1 + 2 * r, one, 1 - 2 * r], -one)
        y = np.select([side == 0, side == 1, side == 2], [-one, -1 + 2 * r, one], 1 - 2 * r)
        return a * 0.8 * x, a * 0.8 * y, one
    raise ValueError(f"unknown motion pattern {name!r}")


def _pattern_extent(inst: ActionInstance) -> tuple[float, float, float]:
    """Largest |dx|, |dy| and relative scale the pattern reaches (to keep the object inside the frame)."""
    tau = np.linspace(0.0, 4.0 / inst.frequency, 400)
    dx, dy, sc = pattern_offsets(inst, tau)
    return float(np.abs(dx).max()), float(np.abs(dy).max()), float(sc.max())


def _draw_instances(rng: np.random.Generator, duration: float, labels: Sequence[int], n_objects: int,
                    min_action: float, max_action: float, short_side: int,
                    motion: MotionSettings) -> list[ActionInstance]:
    """Place ``len(labels)`` instances with background gaps between them, in time order."""
    n = len(labels)
    lengths = rng.uniform(min_action, max_action, size=n)
    # Shrink the instances if the video is too short to hold them with their gaps.
    room = duration - (n - 1) * _MIN_GAP_S - 2 * _MIN_EDGE_S
    if lengths.sum() > room:
        lengths *= room / lengths.sum()
    slack = room - lengths.sum()
    gaps = rng.dirichlet(np.ones(n + 1)) * slack
    instances = []
    t = _MIN_EDGE_S + gaps[0]
    for i, label in enumerate(labels):
        start, end = t, t + lengths[i]
        instances.append(_draw_motion(rng, int(label), round(float(start), 3), round(float(end), 3), n_objects,
                                      short_side, motion))
        t = end + _MIN_GAP_S + gaps[i + 1]
    return instances


def _draw_motion(rng: np.random.Generator, label: int, start: float, end: float, n_objects: int,
                 short_side: int, motion: MotionSettings) -> ActionInstance:
    """One performance of class ``label``'s pattern over ``[start, end)``: actor, frequency, phase, amplitude."""
    if MOTION_PATTERNS[label] == "pulse":
        amplitude = rng.uniform(*_PULSE_RANGE)
    else:
        amplitude = rng.uniform(*motion.amplitude_range) * short_side
    return ActionInstance(
        label_id=label,
        start=start,
        end=end,
        actor=int(rng.integers(n_objects)),
        frequency=float(rng.uniform(*motion.frequency_range)),
        phase=float(rng.uniform(0, 2 * np.pi)),
        amplitude=float(amplitude),
        direction=int(rng.choice([-1, 1])),
    )


def _draw_decoys(rng: np.random.Generator, instances: list[ActionInstance], duration: float, decoy_label: int,
                 n_objects: int, short_side: int, motion: MotionSettings) -> list[ActionInstance]:
    """The decoy pattern over every background stretch (before, between and after the instances)."""
    edges = [0.0] + [x for inst in instances for x in (inst.start, inst.end)] + [round(duration, 3)]
    return [_draw_motion(rng, decoy_label, start, end, n_objects, short_side, motion)
            for start, end in zip(edges[::2], edges[1::2], strict=True) if end > start]


def _smooth_texture(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A muted, low-contrast colour texture: a sum of random plane waves plus fixed pixel grain."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(90, 150, size=3).astype(np.float32)
    img = np.broadcast_to(base, (height, width, 3)).copy()
    for _ in range(6):
        k = rng.uniform(0.5, 4.0) * 2 * np.pi / max(width, height)
        angle = rng.uniform(0, 2 * np.pi)
        wave = np.sin(k * (np.cos(angle) * x + np.sin(angle) * y) + rng.uniform(0, 2 * np.pi))
        img += wave[..., None] * rng.uniform(4, 14) * rng.uniform(0.6, 1.0, size=3).astype(np.float32)
    img += rng.normal(0, 6, size=img.shape).astype(np.float32)
    return img


def _random_colors(rng: np.random.Generator, n: int) -> np.ndarray:
    """Saturated colours with hues spread around the wheel (distinct from each other and the background)."""
    hues = (rng.uniform() + np.arange(n) / n + rng.uniform(-0.05, 0.05, size=n)) % 1.0
    rng.shuffle(hues)
    value = rng.uniform(0.75, 1.0, size=n)
    sat = rng.uniform(0.7, 1.0, size=n)
    # HSV -> RGB, vectorised
    h6 = hues * 6
    c = value * sat
    xcomp = c * (1 - np.abs(h6 % 2 - 1))
    m = value - c
    sector = np.floor(h6).astype(int) % 6
    zeros = np.zeros(n)
    table = [(c, xcomp, zeros), (xcomp, c, zeros), (zeros, c, xcomp),
             (zeros, xcomp, c), (xcomp, zeros, c), (c, zeros, xcomp)]
    rgb = np.stack([np.choose(sector, [t[ch] for t in table]) for ch in range(3)], axis=1) + m[:, None]
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


def plan_video(rng: np.random.Generator, video_id: str, *, width: int, height: int, rate: Fraction,
               duration: float, labels: Sequence[int], n_objects: int = 3, min_action: float = 1.5,
               max_action: float = 8.0, motion: MotionSettings | None = None,
               decoy_label: int | None = None) -> VideoPlan:
    """Draw the content of one video: objects, instances of the given classes, and per-frame tracks.

    Background: every object drifts as a smooth random walk (Ornstein-Uhlenbeck velocity, reflecting
    walls) and its size wanders slowly. Inside an instance the acting object follows the class pattern
    around a centre near where it was, fading in over ``_RAMP_S`` so that its position is continuous;
    the other objects keep drifting. After the instance the random walk goes on from where it ended.
    ``motion`` sets the patterns' frequencies and amplitudes, the drift speed and this video's motion style
    (a factor on the drift speed); default: the module's ranges, no style. With ``decoy_label`` one object
    performs that class's pattern in every background stretch (``VideoPlan.decoys``, not annotated).
    """
    motion = motion or MotionSettings()
    short = min(width, height)
    num_frames = max(1, int(round(duration * rate)))
    duration = float(num_frames / rate)
    dt = 1.0 / float(rate)
    instances = _draw_instances(rng, duration, labels, n_objects, min_action, max_action, short, motion)
    decoys = [] if decoy_label is None else _draw_decoys(rng, instances, duration, decoy_label, n_objects, short,
                                                          motion)

    shapes = [SHAPES[i] for i in rng.integers(len(SHAPES), size=n_objects)]
    colors = _random_colors(rng, n_objects)
    base_radius = rng.uniform(*_RADIUS_RANGE, size=n_objects) * short
    background = _smooth_texture(rng, width, height)

    # Walls for the random walk: the largest size an object reaches stays inside the frame.
    max_r = base_radius * math.exp(_LOG_SIZE_LIMIT)
    lo = np.stack([max_r, max_r], axis=1)
    hi = np.stack([width - max_r, height - max_r], axis=1)

    pos = rng.uniform(lo, hi)
    speed = motion.walk_speed * short * motion.scale
    vel = rng.normal(0, speed, size=(n_objects, 2))
    log_size = rng.normal(0, _WALK_LOG_SIZE_STD, size=n_objects)
    size_rate = rng.normal(0, _WALK_SIZE_SPEED, size=n_objects)
    rho = math.exp(-dt / _WALK_CORRELATION_S)
    kick = math.sqrt(1 - rho * rho)

    cx = np.empty((num_frames, n_objects))
    cy = np.empty((num_frames, n_objects))
    rad = np.empty((num_frames, n_objects))
    frame_t = np.arange(num_frames) * dt
    # Per instance: the frames it covers (a frame belongs to it when its time is in [start, end)).
    spans = [(int(np.searchsorted(frame_t, i.start)), int(np.searchsorted(frame_t, i.end)), i)
             for i in instances + decoys]
    acting: dict[int, tuple[int, np.ndarray, np.ndarray, np.ndarray]] = {}  # actor -> (end, x, y, scale)

    for k in range(num_frames):
        for first, last, inst in spans:
            if k == first and last > first:
                a = inst.actor
                acting[a] = (last, *_instance_track(inst, last - first, dt, pos[a], lo[a], hi[a]))
        # Background random walk for everyone (actors' draws are spent too, keeping rng use regular).
        vel = rho * vel + kick * rng.normal(0, speed, size=(n_objects, 2))
        # Size: smooth like position (random rate, integrated), pulled back gently, reflected at limits.
        size_rate = rho * size_rate + kick * rng.normal(0, _WALK_SIZE_SPEED, size=n_objects)
        log_size = log_size + (size_rate - log_size / _WALK_SIZE_RETURN_S) * dt
        out = np.abs(log_size) > _LOG_SIZE_LIMIT
        log_size = np.where(out, np.sign(log_size) * (2 * _LOG_SIZE_LIMIT - np.abs(log_size)), log_size)
        size_rate = np.where(out, -size_rate, size_rate)
        new = pos + vel * dt
        below, above = new < lo, new > hi
        new = np.where(below, 2 * lo - new, np.where(above, 2 * hi - new, new))
        vel = np.where(below | above, -vel, vel)
        pos = np.clip(new, lo, hi)
        size = base_radius * np.exp(log_size)
        for actor, (end, tx, ty, ts) in list(acting.items()):
            # The actor's position follows the pattern; its size keeps wandering like everyone's (so a
            # frozen size gives nothing away), times the pattern's scale ("pulse").
            j = k - (end - len(tx))
            pos[actor] = (tx[j], ty[j])
            size[actor] *= ts[j]
            if k == end - 1:
                del acting[actor]
        cx[k], cy[k], rad[k] = pos[:, 0], pos[:, 1], size

    return VideoPlan(
        video_id=video_id, width=width, height=height, rate=rate, num_frames=num_frames,
        shapes=shapes, colors=colors, base_radius=base_radius, instances=instances,
        center_x=cx, center_y=cy, radius=rad, background=background,
        noise=rng.normal(0, 5.0, size=(8, height, width, 3)).astype(np.float32),
        noise_pick=rng.integers(8, size=num_frames), decoys=decoys,
    )


def _instance_track(inst: ActionInstance, n: int, dt: float, pos0: np.ndarray, lo: np.ndarray,
                    hi: np.ndarray):
    """Track of the acting object over the ``n`` frames of ``inst``: ``(x, y, scale_factor)`` arrays.

    The track starts at ``pos0`` and stays inside the random walk's walls ``lo``/``hi``, so the walk
    resumes smoothly after it. The scale factor fades in and out, so sizes are continuous at both ends.
    """
    tau = np.arange(n) * dt
    dx, dy, sc = pattern_offsets(inst, tau)
    ex, ey, _ = _pattern_extent(inst)
    # Centre of the pattern: as close as possible to where the object was, with room for the pattern.
    centre = []
    for axis, e in enumerate((ex, ey)):
        low, high = lo[axis] + e, hi[axis] - e
        centre.append(float(np.clip(pos0[axis], low, high)) if low <= high else float(lo[axis] + hi[axis]) / 2)
    cx, cy = centre
    ramp = np.clip(tau / _RAMP_S, 0, 1)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep: no jump in position or speed at the start
    x = pos0[0] + (cx - pos0[0]) * ramp + dx * ramp
    y = pos0[1] + (cy - pos0[1]) * ramp + dy * ramp
    # The position needs no fade-out (the walk goes on from wherever the pattern ends); the size does.
    fade_out = np.clip((n - 1 - np.arange(n)) * dt / _RAMP_S, 0, 1)
    fade_out = fade_out * fade_out * (3 - 2 * fade_out)
    scale = 1.0 + (sc - 1.0) * ramp * fade_out
    return x, y, scale


# ----------------------------------------------------------------------------------------------------
# Rendering and encoding
# ----------------------------------------------------------------------------------------------------


def _shape_distance(shape: str, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Signed distance (pixels, negative inside) to the outline of a shape of radius ``r``."""
    if shape == "disc":
        return np.sqrt(dx * dx + dy * dy) - r
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - 0.88 * r
    if shape == "diamond":
        return (np.abs(dx) + np.abs(dy) - 1.25 * r) * (1 / math.sqrt(2))
    if shape == "ring":
        return np.abs(np.sqrt(dx * dx + dy * dy) - 0.75 * r) - 0.3 * r
    raise ValueError(f"unknown shape {shape!r}")


def render_frames(plan: VideoPlan, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Render frames ``[start, stop)`` of a plan as uint8 RGB ``(n, H, W, 3)``, all at once with numpy.

    Objects are anti-aliased (coverage from the signed distance) so that sub-pixel motion is smooth.
    Each object is drawn only inside a window around it (gathered and scattered back with
    fancy indexing), which is several times cheaper than evaluating it over whole frames.
    Per-frame sensor noise comes from a small pool of noise images, reused at random, because drawing
    fresh Gaussian noise for every pixel of every frame would dominate the run time.
    """
    stop = plan.num_frames if stop is None else stop
    n = stop - start
    h, w = plan.height, plan.width
    frames = plan.noise[plan.noise_pick[start:stop]]
    frames += plan.background
    flat = frames.reshape(-1, 3)
    pixels = frames.view(np.dtype((np.void, 12))).reshape(-1)  # one item per RGB pixel, for np.put
    frame_base = np.arange(n)[:, None, None] * h
    for j, shape in enumerate(plan.shapes):
        cx = plan.center_x[start:stop, j].astype(np.float32)
        cy = plan.center_y[start:stop, j].astype(np.float32)
        r = plan.radius[start:stop, j].astype(np.float32)
        half = int(math.ceil(r.max() * 1.3)) + 1
        # Window per frame around the object, shifted to lie inside the frame (it still covers the
        # object's visible part); pixel-centre coordinates of the window relative to the object.
        xs = np.clip(np.floor(cx).astype(np.int64) - half, 0, max(0, w - 2 * half - 1))[:, None]
        ys = np.clip(np.floor(cy).astype(np.int64) - half, 0, max(0, h - 2 * half - 1))[:, None]
        xs = xs + np.arange(min(w, 2 * half + 1))  # (n, window width)
        ys = ys + np.arange(min(h, 2 * half + 1))
        dx = (xs + 0.5 - cx[:, None])[:, None, :]
        dy = (ys + 0.5 - cy[:, None])[:, :, None]
        alpha = np.clip(0.5 - _shape_distance(shape, dx, dy, r[:, None, None]), 0.0, 1.0).reshape(-1, 1)
        # Linear pixel indices of the windows; take/put on them is much faster than 3-axis indexing.
        index = ((frame_base + ys[:, :, None]) * w + xs[:, None, :]).reshape(-1)
        window = np.take(flat, index, axis=0)
        window += alpha * (plan.colors[j].astype(np.float32) - window)
        np.put(pixels, index, window.view(np.dtype((np.void, 12))).reshape(-1))
    np.clip(frames, 0, 255, out=frames)
    frames += 0.5
    return frames.astype(np.uint8)


def _iter_chunks(plan: VideoPlan) -> Iterator[np.ndarray]:
    for start in range(0, plan.num_frames, _RENDER_CHUNK):
        yield render_frames(plan, start, min(plan.num_frames, start + _RENDER_CHUNK))


def encode_video(plan: VideoPlan, path: str | os.PathLike, crf: int = DEFAULT_CRF,
                 preset: str = DEFAULT_PRESET, keyframe_interval: int | None = None) -> None:
    """Render ``plan`` and encode it as h264 (libx264, yuv420p) constant-rate mp4 at ``path``, atomically.

    ``keyframe_interval`` (frames; None: x264's default of 250) bounds what reading one clip decodes: a
    clip is decoded from the keyframe before it.
    """
    with atomic_path(path) as tmp:
        import av  # here, not at import: the CLI reads this module's defaults without PyAV

        with av.open(str(tmp), "w", format="mp4") as container:
            stream = _open_h264_stream(container, plan.rate, plan.width, plan.height, crf, preset,
                                       gop_size=keyframe_interval)
            for chunk in _iter_chunks(plan):
                for rgb in chunk:
                    for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                        container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


# ----------------------------------------------------------------------------------------------------
# Whole dataset
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of a synthetic dataset (stored in ``annotations.json`` for reproducibility)."""

    num_videos: int = 20
    num_classes: int = 5
    fps: float = 30.0
    width: int = 64
    height: int = 64
    seed: int = 0
    min_duration: float = 25.0
    max_duration: float = 35.0
    valid_fraction: float = 0.25
    min_instances: int = 1
    max_instances: int = 4
    min_action: float = 1.5
    max_action: float = 8.0
    num_objects: int = 3
    crf: int = DEFAULT_CRF
    preset: str = DEFAULT_PRESET
    # Motion (see MotionSettings): pattern frequencies (Hz) and amplitudes (fraction of the smaller side),
    # background drift speed (sides per second) and the per-video motion style: each video's speed factor
    # is drawn log-uniformly in [1 / motion_style, motion_style] (1: every video alike).
    frequency_range: tuple[float, float] = _FREQ_RANGE
    amplitude_range: tuple[float, float] = _AMPLITUDE_RANGE
    walk_speed: float = _WALK_SPEED
    motion_style: float = 1.0
    keyframe_interval: int | None = None  # frames; None: x264's default (250)
    # Classes are the motion patterns class_offset .. class_offset + num_classes - 1 (a disjoint set of
    # classes for pretraining: offset 4 with 4 classes).
    class_offset: int = 0
    # A context task: in every background stretch of a video one object performs the pattern of the video's
    # decoy class (one of the classes none of its instances has). A clip of that pattern is background in this
    # video and would be an action in another: the clip alone cannot tell, the rest of the video can.
    decoy_background: bool = False

    def validate(self) -> None:
        """Raise ``TspVideoError`` with a clear message for parameters that cannot work."""
        if self.num_videos < 1:
            raise TspVideoError(f"need at least 1 video, got {self.num_videos}")
        if self.seed < 0:
            raise TspVideoError(f"seed must be >= 0, got {self.seed}")
        if not 1 <= self.num_classes <= len(MOTION_PATTERNS) - max(self.class_offset, 0) or self.class_offset < 0:
            raise TspVideoError(f"number of classes plus class offset must be between 1 and {len(MOTION_PATTERNS)} "
                                f"(one motion pattern each), got {self.num_classes} + {self.class_offset}")
        if self.decoy_background and self.max_instances >= self.num_classes:
            raise TspVideoError(f"decoy-background needs more classes than max-instances (a class no instance of "
                                f"the video has), got {self.num_classes} classes, {self.max_instances} instances")
        check_size(self.width, self.height)
        fps_to_fraction(self.fps)
        if not 0 < self.min_action <= self.max_action:
            raise TspVideoError(f"need 0 < min-action <= max-action, got {self.min_action}, {self.max_action}")
        if not 1 <= self.min_instances <= self.max_instances:
            raise TspVideoError(f"need 1 <= min-instances <= max-instances, got {self.min_instances}, "
                                f"{self.max_instances}")
        if not 0 < self.min_duration <= self.max_duration:
            raise TspVideoError(f"need 0 < min-duration <= max-duration, got {self.min_duration}, "
                                f"{self.max_duration}")
        needed = self.min_action + 2 * _MIN_EDGE_S
        if self.min_duration < needed:
            raise TspVideoError(f"min-duration {self.min_duration} s is too short: a video needs at least "
                                f"{needed} s (one action of min-action seconds plus background)")
        if not 0 <= self.valid_fraction < 1:
            raise TspVideoError(f"valid-fraction must be in [0, 1), got {self.valid_fraction}")
        for name in ("frequency_range", "amplitude_range"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise TspVideoError(f"{name.replace('_', '-')} must be two numbers with 0 < low <= high, "
                                    f"got {low}, {high}")
        if self.keyframe_interval is not None and self.keyframe_interval < 1:
            raise TspVideoError(f"keyframe-interval must be >= 1 frame, got {self.keyframe_interval}")
        if self.walk_speed < 0:
            raise TspVideoError(f"walk-speed must be >= 0, got {self.walk_speed}")
        if self.motion_style < 1:
            raise TspVideoError(f"motion-style must be >= 1 (the largest per-video speed factor), "
                                f"got {self.motion_style}")
        if self.num_objects < 1:
            raise TspVideoError(f"need at least 1 object, got {self.num_objects}")
        if self.preset not in X264_PRESETS:
            raise TspVideoError(f"unknown x264 preset {self.preset!r}; one of {', '.join(X264_PRESETS)}")
        if not 0 <= self.crf <= 51:
            raise TspVideoError(f"crf must be in [0, 51], got {self.crf}")


@dataclass(frozen=True)
class SyntheticDataset:
    """What ``generate_dataset`` wrote."""

    root: Path
    annotations_path: Path
    label_map_path: Path
    video_paths: dict[str, Path]
    train_ids: tuple[str, ...]
    valid_ids: tuple[str, ...]
    label_names: tuple[str, ...]
    config: SyntheticConfig

    @property
    def video_ids(self) -> tuple[str, ...]:
        """All video ids, in generation order."""
        return tuple(self.video_paths)


def _max_instances_for(duration: float, cfg: SyntheticConfig) -> int:
    # Instances at their shortest plus the gaps must fit (longer ones are shrunk to fit).
    n = int((duration - 2 * _MIN_EDGE_S + _MIN_GAP_S) // (cfg.min_action + _MIN_GAP_S))
    return max(1, min(cfg.max_instances, n))


def plan_dataset(cfg: SyntheticConfig) -> tuple[list[VideoPlan], list[str]]:
    """Plans of every video of the dataset and their subsets, deterministic for ``cfg.seed``.

    Class labels are dealt out round-robin over all instances and then shuffled, so every class has
    about as many instances as the others, even in small datasets.
    """
    cfg.validate()
    rate = fps_to_fraction(cfg.fps)
    root = np.random.SeedSequence(cfg.seed)
    dataset_rng = np.random.default_rng(root.spawn(1)[0])
    video_seeds = root.spawn(cfg.num_videos)
    durations = dataset_rng.uniform(cfg.min_duration, cfg.max_duration, size=cfg.num_videos)
    counts = [int(dataset_rng.integers(min(cfg.min_instances, _max_instances_for(d, cfg)),
                                       _max_instances_for(d, cfg) + 1)) for d in durations]
    labels = cfg.class_offset + dataset_rng.permutation(np.arange(sum(counts)) % cfg.num_classes)
    n_valid = int(round(cfg.valid_fraction * cfg.num_videos))
    if cfg.valid_fraction > 0 and cfg.num_videos >= 2:
        n_valid = min(max(n_valid, 1), cfg.num_videos - 1)
    valid = set(dataset_rng.permutation(cfg.num_videos)[:n_valid].tolist())
    subsets = ["validation" if i in valid else "training" for i in range(cfg.num_videos)]

    scales = np.ones(cfg.num_videos)
    if cfg.motion_style > 1:
        # A stream of its own, drawn after the others: datasets without a style stay exactly as they were.
        style_rng = np.random.default_rng(root.spawn(1)[0])
        scales = np.exp(style_rng.uniform(-1, 1, size=cfg.num_videos) * math.log(cfg.motion_style))
    decoy_rng = np.random.default_rng(root.spawn(1)[0]) if cfg.decoy_background else None

    plans = []
    offset = 0
    for i in range(cfg.num_videos):
        motion = MotionSettings(tuple(cfg.frequency_range), tuple(cfg.amplitude_range), cfg.walk_speed,
                                float(scales[i]))
        video_labels = labels[offset:offset + counts[i]]
        offset += counts[i]
        decoy = None
        if decoy_rng is not None:
            absent = sorted(set(range(cfg.class_offset, cfg.class_offset + cfg.num_classes)) - set(video_labels))
            decoy = int(decoy_rng.choice(absent))
        plans.append(plan_video(
            np.random.default_rng(video_seeds[i]), f"synth_{i:05d}", width=cfg.width, height=cfg.height,
            rate=rate, duration=float(durations[i]), labels=video_labels, n_objects=cfg.num_objects,
            min_action=cfg.min_action, max_action=cfg.max_action, motion=motion, decoy_label=decoy,
        ))
    return plans, subsets


def label_names(num_classes: int, class_offset: int = 0) -> list[str]:
    """Class names of a synthetic dataset with ``num_classes`` classes from ``class_offset`` on (index = class id
    in the dataset's label map)."""
    return list(MOTION_PATTERNS[class_offset:class_offset + num_classes])


def generate_dataset(out_dir: str | os.PathLike, num_videos: int = 20, num_classes: int = 5,
                     fps: float = 30.0, size: tuple[int, int] = (64, 64), seed: int = 0,
                     min_duration: float = 25.0, max_duration: float = 35.0, valid_fraction: float = 0.25,
                     *, min_instances: int = 1, max_instances: int = 4, min_action: float = 1.5,
                     max_action: float = 8.0, num_objects: int = 3, crf: int = DEFAULT_CRF,
                     preset: str = DEFAULT_PRESET, frequency_range: tuple[float, float] = _FREQ_RANGE,
                     amplitude_range: tuple[float, float] = _AMPLITUDE_RANGE, walk_speed: float = _WALK_SPEED,
                     motion_style: float = 1.0, keyframe_interval: int | None = None, class_offset: int = 0,
                     decoy_background: bool = False, progress: bool = False) -> SyntheticDataset:
    """Write a synthetic untrimmed-video dataset to ``out_dir`` and describe what was written.

    Layout: ``videos/<video_id>.mp4`` (h264, yuv420p, constant ``fps``), ``annotations.json``
    (ActivityNet style: ``database[video_id] = {subset, duration, fps, resolution, annotations:
    [{segment: [start_s, end_s], label}]}``) and ``label_map.json`` (list of class names, index = id).
    Everything is a deterministic function of the arguments. ``size`` is ``(width, height)``.
    """
    cfg = SyntheticConfig(
        num_videos=num_videos, num_classes=num_classes, fps=float(fps), width=int(size[0]),
        height=int(size[1]), seed=seed, min_duration=min_duration, max_duration=max_duration,
        valid_fraction=valid_fraction, min_instances=min_instances, max_instances=max_instances,
        min_action=min_action, max_action=max_action, num_objects=num_objects, crf=crf, preset=preset,
        frequency_range=tuple(frequency_range), amplitude_range=tuple(amplitude_range), walk_speed=walk_speed,
        motion_style=motion_style, keyframe_interval=keyframe_interval, class_offset=class_offset,
        decoy_background=decoy_background,
    )
    plans, subsets = plan_dataset(cfg)
    names = label_names(num_classes, class_offset)
    root = Path(out_dir)
    videos_dir = root / "videos"
    videos_dir.mkdir(parents=True, exist_ok=True)

    iterator = zip(plans, subsets, strict=True)
    if progress:
        iterator = tqdm(iterator, total=len(plans), desc="synth", unit="video")
    database = {}
    video_paths = {}
    for plan, subset in iterator:
        path = videos_dir / f"{plan.video_id}.mp4"
        encode_video(plan, path, crf=crf, preset=preset, keyframe_interval=keyframe_interval)
        video_paths[plan.video_id] = path
        database[plan.video_id] = {
            "subset": subset,
            "duration": round(plan.duration, 6),
            "fps": float(plan.rate),
            "resolution": f"{plan.width}x{plan.height}",
            "annotations": [
                {"segment": [inst.start, inst.end], "label": MOTION_PATTERNS[inst.label_id]}
                for inst in plan.instances
            ],
        }
    annotations_path = root / "annotations.json"
    label_map_path = root / "label_map.json"
    save_json_atomic(label_map_path, names)
    save_json_atomic(annotations_path, {
        "version": ANNOTATION_VERSION,
        "generator": asdict(cfg),
        "database": database,
    })
    return SyntheticDataset(
        root=root, annotations_path=annotations_path, label_map_path=label_map_path,
        video_paths=video_paths,
        train_ids=tuple(p.video_id for p, s in zip(plans, subsets, strict=True) if s == "training"),
        valid_ids=tuple(p.video_id for p, s in zip(plans, subsets, strict=True) if s == "validation"),
        label_names=tuple(names), config=cfg,
    )


# ----------------------------------------------------------------------------------------------------
# Index videos: frame k shows k, for exact decoding tests
# ----------------------------------------------------------------------------------------------------

_INDEX_BITS = 16
_INDEX_COLS = 8
_INDEX_ROWS = 4  # rows 0-1: the 16 bits; rows 2-3: their complement, to detect unreadable frames
_TIME_BASE = Fraction(1, 90000)


def _index_cells(index: int) -> np.ndarray:
    bits = (index >> np.arange(_INDEX_BITS)) & 1
    return np.concatenate([bits, 1 - bits]).reshape(_INDEX_ROWS, _INDEX_COLS).astype(np.uint8)


def index_frame(index: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """The uint8 RGB ``(H, W, 3)`` image that encodes ``index`` (black/white blocks, LSB first)."""
    width, height = size
    if not 0 <= index < 2**_INDEX_BITS:
        raise ValueError(f"frame index {index} does not fit in {_INDEX_BITS} bits")
    cells = _index_cells(index)
    rows = np.minimum(np.arange(height) * _INDEX_ROWS // height, _INDEX_ROWS - 1)
    cols = np.minimum(np.arange(width) * _INDEX_COLS // width, _INDEX_COLS - 1)
    img = cells[rows[:, None], cols[None, :]] * np.uint8(255)
    return np.repeat(img[..., None], 3, axis=2)


def read_frame_index(frame_rgb: np.ndarray) -> int:
    """Decode the index shown by a frame of an index video (any size: cells are found proportionally).

    Raises ``ValueError`` when the pattern is not readable (a bit and its complement agree).
    """
    frame = np.asarray(frame_rgb)
    if frame.ndim == 3:
        frame = frame.astype(np.float32).mean(axis=2)
    h, w = frame.shape
    values = np.empty((_INDEX_ROWS, _INDEX_COLS), dtype=np.float32)
    for r in range(_INDEX_ROWS):
        y0, y1 = int((r + 0.25) * h / _INDEX_ROWS), int(math.ceil((r + 0.75) * h / _INDEX_ROWS))
        for c in range(_INDEX_COLS):
            x0, x1 = int((c + 0.25) * w / _INDEX_COLS), int(math.ceil((c + 0.75) * w / _INDEX_COLS))
            values[r, c] = frame[y0:y1, x0:x1].mean()
    bits = (values > 127.5).reshape(-1)
    data, check = bits[:_INDEX_BITS], bits[_INDEX_BITS:]
    if np.any(data == check):
        raise ValueError("frame does not show a readable index pattern")
    return int(np.sum(data.astype(np.int64) << np.arange(_INDEX_BITS)))


def write_index_video(path: str | os.PathLike, timestamps: Sequence[float] | None = None, *,
                      num_frames: int | None = None, fps: float | Fraction = 30.0,
                      size: tuple[int, int] = (64, 48), crf: int = 4, preset: str = "fast",
                      gop_size: int = 12) -> None:
    """Write an h264 mp4 whose frame ``k`` shows the number ``k`` (see ``read_frame_index``).

    With ``timestamps`` (seconds, strictly increasing, first >= 0) frame ``k`` is presented at
    ``timestamps[k]``: a variable-frame-rate stream with a 1/90000 s time base. Without, ``num_frames``
    frames at the constant rate ``fps`` (float or Fraction; 29.97 means 30000/1001). The low ``crf``
    keeps the blocks exact; the default preset uses B-frames (decode order differs from display order)
    and a short GOP, like real files. ``size`` is ``(width, height)``, both even.
    """
    width, height = size
    check_size(width, height)
    if width < _INDEX_COLS * 2 or height < _INDEX_ROWS * 2:
        raise ValueError(f"size {size} is too small for the index pattern")
    rate = fps_to_fraction(fps)
    if timestamps is None:
        if num_frames is None or num_frames < 1:
            raise ValueError("give timestamps or a positive num_frames")
        time_base = 1 / rate
        pts = list(range(num_frames))
    else:
        if num_frames is not None and num_frames != len(timestamps):
            raise ValueError("num_frames disagrees with len(timestamps)")
        time_base = _TIME_BASE
        pts = [int(round(float(t) / time_base)) for t in timestamps]
        if not pts or pts[0] < 0 or any(b <= a for a, b in zip(pts[:-1], pts[1:], strict=True)):
            raise ValueError("timestamps must be non-empty, >= 0 and strictly increasing "
                             "(at 1/90000 s resolution)")
        if len(pts) > 1:
            # The nominal rate only guides x264's rate control; the pts decide presentation times.
            rate = Fraction(len(pts) - 1) / (Fraction(pts[-1] - pts[0]) * time_base)
            rate = rate.limit_denominator(1001)
    if len(pts) > 2**_INDEX_BITS:
        raise ValueError(f"at most {2**_INDEX_BITS} frames")

    with atomic_path(path) as tmp:
        import av  # here, not at import: the CLI reads this module's defaults without PyAV

        with av.open(str(tmp), "w", format="mp4") as container:
            stream = _open_h264_stream(container, rate, width, height, crf, preset, gop_size=gop_size)
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
            for k, p in enumerate(pts):
                frame = av.VideoFrame.from_ndarray(index_frame(k, size), format="rgb24")
                frame.pts = p
                frame.time_base = time_base
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
