"""Synthetic dataset generator and index videos (tspvideo.video.synthetic, ``tspvideo synth``)."""

from __future__ import annotations

import json
from collections import Counter
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tspvideo.cli import main
from tspvideo.core.errors import TspVideoError
from tspvideo.video import synthetic as S

# Small, short videos keep the module fast; the defaults (64x64, ~30 s) are exercised by the CLI user.
SMALL = dict(num_videos=4, num_classes=5, size=(48, 32), min_duration=9.0, max_duration=12.0)


def decode(path: Path) -> tuple[np.ndarray, np.ndarray, av.video.stream.VideoStream]:
    """All frames (uint8 RGB) and their times in seconds, plus stream facts, decoded with PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, times = [], []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.pts * frame.time_base))
        info = dict(rate=stream.average_rate, width=stream.codec_context.width,
                    height=stream.codec_context.height, codec=stream.codec_context.name,
                    pix_fmt=stream.codec_context.pix_fmt)
    return np.stack(frames), np.array(times), info


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> S.SyntheticDataset:
    return S.generate_dataset(tmp_path_factory.mktemp("synth") / "a", seed=3, **SMALL)


# ----------------------------------------------------------------------------------------------------
# Dataset files and annotations
# ----------------------------------------------------------------------------------------------------


def test_files_and_annotations_are_valid(small_dataset):
    ds = small_dataset
    data = json.loads(ds.annotations_path.read_text())
    labels = json.loads(ds.label_map_path.read_text())
    assert labels == list(S.MOTION_PATTERNS[:5]) == list(ds.label_names)
    database = data["database"]
    assert set(database) == set(ds.video_ids) == set(ds.train_ids) | set(ds.valid_ids)
    assert {entry["subset"] for entry in database.values()} == {"training", "validation"}
    assert len(ds.valid_ids) == 1  # 25 % of 4
    for video_id, entry in database.items():
        assert ds.video_paths[video_id] == ds.root / "videos" / f"{video_id}.mp4"
        assert ds.video_paths[video_id].is_file()
        assert entry["fps"] == 30.0
        duration = entry["duration"]
        assert 9.0 - 1 / 30 <= duration <= 12.0 + 1 / 30
        segments = [a["segment"] for a in entry["annotations"]]
        assert 1 <= len(segments) <= 4
        for (start, end), ann in zip(segments, entry["annotations"], strict=True):
            assert 0 <= start < end <= duration
            assert ann["label"] in labels
        for (_, end), (next_start, _) in zip(segments[:-1], segments[1:], strict=True):
            assert next_start - end >= 1.5 - 1e-6  # background gap between instances
    # No leftover temporary files from the atomic writes.
    assert not [p for p in ds.root.rglob("*") if p.name.endswith(".tmp")]


def test_instances_respect_lengths_and_classes_are_balanced():
    plans, subsets = S.plan_dataset(S.SyntheticConfig(num_videos=12, num_classes=5, width=32, height=32))
    counts = Counter(inst.label_id for plan in plans for inst in plan.instances)
    assert set(counts) == set(range(5))
    assert max(counts.values()) - min(counts.values()) <= 1
    lengths = [inst.end - inst.start for plan in plans for inst in plan.instances]
    assert min(lengths) >= 1.5 - 1e-3 and max(lengths) <= 8.0 + 1e-3
    assert 25 - 1e-6 <= min(plan.duration for plan in plans)
    assert max(plan.duration for plan in plans) <= 35 + 1e-6
    assert subsets.count("validation") == 3


def test_videos_decode_with_expected_format(small_dataset):
    data = json.loads(small_dataset.annotations_path.read_text())["database"]
    for video_id, path in small_dataset.video_paths.items():
        frames, times, info = decode(path)
        duration = data[video_id]["duration"]
        assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
        assert info["rate"] == 30
        assert frames.shape[1:] == (32, 48, 3)
        assert len(frames) == round(duration * 30)
        np.testing.assert_allclose(times, np.arange(len(frames)) / 30, atol=1e-3)


def test_ntsc_frame_rate(tmp_path):
    ds = S.generate_dataset(tmp_path, num_videos=1, num_classes=2, fps=29.97, size=(32, 32),
                            min_duration=4, max_duration=4, min_action=1.5, max_action=2, valid_fraction=0)
    entry = json.loads(ds.annotations_path.read_text())["database"][ds.video_ids[0]]
    assert entry["subset"] == "training"
    assert entry["fps"] == pytest.approx(30000 / 1001, abs=1e-9)
    frames, times, info = decode(ds.video_paths[ds.video_ids[0]])
    assert info["rate"] == Fraction(30000, 1001)
    assert len(frames) == round(entry["duration"] * 30000 / 1001) == 120
    np.testing.assert_allclose(times, np.arange(len(frames)) * 1001 / 30000, atol=1e-3)


def test_same_seed_same_dataset_other_seed_differs(small_dataset, tmp_path):
    again = S.generate_dataset(tmp_path / "b", seed=3, **SMALL)
    other = S.generate_dataset(tmp_path / "c", seed=4, **SMALL)
    first = json.loads(small_dataset.annotations_path.read_text())
    assert json.loads(again.annotations_path.read_text()) == first
    assert json.loads(other.annotations_path.read_text())["database"] != first["database"]
    for video_id in small_dataset.video_ids:
        frames_a = decode(small_dataset.video_paths[video_id])[0]
        frames_b = decode(again.video_paths[video_id])[0]
        np.testing.assert_array_equal(frames_a, frames_b)
    video_id = small_dataset.video_ids[0]
    frames_a = decode(small_dataset.video_paths[video_id])[0]
    frames_c = decode(other.video_paths[video_id])[0]
    n = min(len(frames_a), len(frames_c))
    assert np.abs(frames_a[:n].astype(int) - frames_c[:n]).mean() > 5


def test_rendering_does_not_depend_on_chunking():
    plan = S.plan_dataset(S.SyntheticConfig(num_videos=1, width=32, height=32, min_duration=6,
                                            max_duration=6))[0][0]
    whole = S.render_frames(plan)
    parts = np.concatenate([S.render_frames(plan, 0, 7), S.render_frames(plan, 7, plan.num_frames)])
    np.testing.assert_array_equal(whole, parts)


@pytest.mark.parametrize("bad", [
    dict(num_classes=9), dict(num_classes=0), dict(size=(33, 32)), dict(size=(32, 31)), dict(size=(8, 8)),
    dict(num_videos=0), dict(min_duration=1.0, max_duration=2.0), dict(valid_fraction=1.0),
    dict(min_duration=12.0, max_duration=9.0), dict(preset="nope"), dict(fps=0.0),
])
def test_bad_parameters_are_rejected(tmp_path, bad):
    kwargs = {**SMALL, **bad}
    with pytest.raises(TspVideoError):
        S.generate_dataset(tmp_path, **kwargs)
    assert not (tmp_path / "annotations.json").exists()


# ----------------------------------------------------------------------------------------------------
# Motion design: class patterns in actions, generic drift in background, no appearance give-away
# ----------------------------------------------------------------------------------------------------


def _single_instance_plan(label: int, seed: int = 0, n_objects: int = 3) -> tuple[S.VideoPlan, np.ndarray]:
    """A plan with one instance of ``label``; returns it and the frames of the instance after the ramp."""
    plan = S.plan_video(np.random.default_rng(seed), "x", width=64, height=64, rate=Fraction(30),
                        duration=14.0, labels=[label], n_objects=n_objects, min_action=5.0, max_action=6.0)
    inst = plan.instances[0]
    t = plan.frame_times()
    frames = np.flatnonzero((t >= inst.start + S._RAMP_S) & (t < inst.end))
    return plan, frames


def _zero_crossings(values: np.ndarray) -> int:
    centred = values - (values.max() + values.min()) / 2
    return int(np.sum(np.diff(np.sign(centred)) != 0))


@pytest.mark.parametrize("label", range(len(S.MOTION_PATTERNS)))
@pytest.mark.parametrize("seed", [0, 1])
def test_acting_object_follows_its_class_pattern(label, seed):
    plan, frames = _single_instance_plan(label, seed)
    inst = plan.instances[0]
    a = inst.actor
    x, y = plan.center_x[frames, a], plan.center_y[frames, a]
    # Sizes wander slowly for every object all the time; remove that with a one-period moving average.
    log_r = np.log(plan.radius[frames, a])
    period = int(round(30 / inst.frequency))
    trend = np.convolve(log_r, np.ones(period) / period, "valid")
    pulse = log_r[period // 2:period // 2 + len(trend)] - trend
    xr, yr, sr = np.ptp(x), np.ptp(y), np.ptp(pulse)
    amp = inst.amplitude
    name = S.MOTION_PATTERNS[label]
    still = 1e-6
    duration = len(frames) / 30
    cycles = inst.frequency * duration
    if name == "horizontal_oscillation":
        assert yr < still and sr < 0.1 and xr > amp
        assert abs(_zero_crossings(x) - 2 * cycles) <= 2
    elif name == "vertical_oscillation":
        assert xr < still and sr < 0.1 and yr > amp
        assert abs(_zero_crossings(y) - 2 * cycles) <= 2
    elif name == "circle":
        cx, cy = (x.max() + x.min()) / 2, (y.max() + y.min()) / 2
        np.testing.assert_allclose(np.hypot(x - cx, y - cy), amp, rtol=0.02)
        angle = np.unwrap(np.arctan2(y - cy, x - cx))
        assert np.all(np.diff(angle) * inst.direction > 0)  # keeps turning the same way
    elif name == "pulse":
        assert xr < still and yr < still and sr > amp
        assert abs(_zero_crossings(pulse) - 2 * inst.frequency * len(pulse) / 30) <= 2
    elif name == "zigzag":
        # Up-down at constant speed (triangle wave), with a slower sideways sweep.
        speed_y = np.abs(np.diff(y))
        assert np.median(speed_y) == pytest.approx(4 * 0.7 * amp * inst.frequency / 30, rel=0.02)
        assert xr > 0.3 * amp and _zero_crossings(x) < _zero_crossings(y)
    elif name == "figure_eight":
        # Up-down twice per left-right period.
        assert xr > amp and yr > 0.5 * amp
        assert abs(_zero_crossings(y) - 2 * _zero_crossings(x)) <= 3
    elif name == "bounce":
        # Hops up from a floor: the lowest point (largest y) is visited briefly and sharply.
        assert xr < still and sr < 0.1 and yr > 0.9 * amp
        floor = y.max()
        assert np.mean(y > floor - 0.1 * amp) < 0.2
    elif name == "square_path":
        cx, cy = (x.max() + x.min()) / 2, (y.max() + y.min()) / 2
        np.testing.assert_allclose(np.maximum(np.abs(x - cx), np.abs(y - cy)), 0.8 * amp, rtol=0.02)
    # The other objects keep drifting meanwhile.
    others = [j for j in range(len(plan.shapes)) if j != a]
    assert all(np.ptp(plan.center_x[frames, j]) + np.ptp(plan.center_y[frames, j]) > 1 for j in others)


def test_tracks_are_continuous_and_inside_the_frame():
    # No jumps at action boundaries: a boundary must be found from motion, not from a cut.
    plans, _ = S.plan_dataset(S.SyntheticConfig(num_videos=6, num_classes=8))
    for plan in plans:
        step = np.hypot(np.diff(plan.center_x, axis=0), np.diff(plan.center_y, axis=0))
        assert step.max() < 0.1 * plan.width  # < 6.4 px per frame at 30 fps
        assert np.abs(np.diff(np.log(plan.radius), axis=0)).max() < 0.3  # fastest "pulse" is ~0.27
        assert plan.center_x.min() >= 0 and plan.center_x.max() <= plan.width
        assert plan.center_y.min() >= 0 and plan.center_y.max() <= plan.height


def test_background_and_foreground_have_similar_motion_energy():
    # Mean object speed alone must not separate actions from background (a fair, non-trivial task).
    plans, _ = S.plan_dataset(S.SyntheticConfig(num_videos=12, num_classes=5))
    fg, bg = [], []
    for plan in plans:
        speed = np.hypot(np.diff(plan.center_x, axis=0), np.diff(plan.center_y, axis=0)).mean(axis=1)
        mask = plan.action_mask()[1:]
        fg.append(speed[mask])
        bg.append(speed[~mask])
    ratio = np.concatenate(fg).mean() / np.concatenate(bg).mean()
    assert 0.67 < ratio < 1.5


def test_appearance_is_independent_of_the_action():
    plans, _ = S.plan_dataset(S.SyntheticConfig(num_videos=12, num_classes=5, num_objects=3))
    actors = Counter(inst.actor for plan in plans for inst in plan.instances)
    assert len(actors) == 3  # any object may act
    for plan in plans:
        # Every object is on screen all the time, in action and background alike.
        assert np.isfinite(plan.center_x).all() and (plan.radius > 0).all()
        assert len({tuple(c) for c in plan.colors}) == len(plan.colors)


def test_decoded_video_shows_the_planned_motion(tmp_path):
    # One object, so nothing occludes it: its colour centroid in decoded frames gives its track.
    plan, frames = _single_instance_plan(label=0, seed=5, n_objects=1)
    path = tmp_path / "one.mp4"
    S.encode_video(plan, path)
    decoded, _, _ = decode(path)
    assert len(decoded) == plan.num_frames
    colour = plan.colors[0].astype(int)
    near = np.abs(decoded.astype(int) - colour).sum(axis=3) < 90
    ys, xs = np.mgrid[0:plan.height, 0:plan.width] + 0.5
    counts = near.sum(axis=(1, 2))
    assert counts.min() > 10
    cx = (near * xs).sum(axis=(1, 2)) / counts
    cy = (near * ys).sum(axis=(1, 2)) / counts
    np.testing.assert_allclose(cx, plan.center_x[:, 0], atol=1.0)
    np.testing.assert_allclose(cy, plan.center_y[:, 0], atol=1.0)
    # During the horizontal oscillation the object moves left-right only.
    assert np.ptp(cy[frames]) < 1.5 < 0.5 * plan.instances[0].amplitude < np.ptp(cx[frames])


# ----------------------------------------------------------------------------------------------------
# Index videos
# ----------------------------------------------------------------------------------------------------


def test_index_frame_round_trip():
    for k in [0, 1, 2, 77, 1000, 2**16 - 1]:
        assert S.read_frame_index(S.index_frame(k, (64, 48))) == k
    # Also after resizing (nearest) to another size.
    img = S.index_frame(12345, (64, 48))
    big = img.repeat(3, axis=0).repeat(2, axis=1)
    assert S.read_frame_index(big) == 12345
    with pytest.raises(ValueError):
        S.read_frame_index(np.full((48, 64, 3), 128, np.uint8))
    with pytest.raises(ValueError):
        S.index_frame(2**16)


@pytest.mark.parametrize("fps", [30, 25, Fraction(30000, 1001), 30000 / 1001])
def test_constant_rate_index_video_decodes_to_its_indices(tmp_path, fps):
    path = tmp_path / "index.mp4"
    S.write_index_video(path, num_frames=75, fps=fps)
    frames, times, info = decode(path)
    assert [S.read_frame_index(f) for f in frames] == list(range(75))
    rate = Fraction(30000, 1001) if isinstance(fps, float) else Fraction(fps)
    assert info["rate"] == rate
    assert frames.shape[1:] == (48, 64, 3)
    np.testing.assert_allclose(times, np.arange(75) / float(rate), atol=1e-3)


@pytest.mark.parametrize("offset", [0.0, 0.5])
def test_variable_rate_index_video_keeps_timestamps(tmp_path, offset):
    rng = np.random.default_rng(0)
    timestamps = offset + np.concatenate([[0.0], np.cumsum(rng.uniform(0.01, 0.2, size=59))])
    path = tmp_path / "vfr.mp4"
    S.write_index_video(path, timestamps.tolist(), size=(32, 16))
    frames, times, _ = decode(path)
    assert [S.read_frame_index(f) for f in frames] == list(range(60))
    np.testing.assert_allclose(times, timestamps, atol=1e-3)


def test_index_video_rejects_bad_timestamps(tmp_path):
    with pytest.raises(ValueError):
        S.write_index_video(tmp_path / "x.mp4", [0.0, 0.1, 0.1])
    with pytest.raises(ValueError):
        S.write_index_video(tmp_path / "x.mp4")
    with pytest.raises(TspVideoError):
        S.write_index_video(tmp_path / "x.mp4", num_frames=3, size=(63, 48))
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["--out --num-videos", "positional --videos"])
def test_cli_writes_dataset(tmp_path, capsys, form):
    out = tmp_path / "cli"
    # --out like every other command; the positional folder and --videos N (now --num-videos) still work.
    where = ["--out", str(out), "--num-videos", "2"] if form.startswith("--out") else [str(out), "--videos", "2"]
    code = main(["synth", *where, "--num-classes", "3", "--size", "32x32", "--seed", "7",
                 "--min-duration", "6", "--max-duration", "7", "--valid-fraction", "0.5", "--no-progress"])
    assert code == 0
    captured = capsys.readouterr()
    assert "wrote 2 videos" in captured.out
    assert ("--videos is deprecated; use --num-videos" in captured.err) == form.endswith("--videos")
    assert json.loads((out / "label_map.json").read_text()) == list(S.MOTION_PATTERNS[:3])
    database = json.loads((out / "annotations.json").read_text())["database"]
    assert sorted(p.stem for p in (out / "videos").glob("*.mp4")) == sorted(database)
    assert sorted(e["subset"] for e in database.values()) == ["training", "validation"]


def test_cli_output_folder_given_once(tmp_path, capsys):
    assert main(["synth", "--num-videos", "1"]) == 2
    assert "give the output folder: --out OUT_DIR" in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "a"), "--out", str(tmp_path / "b"), "--num-videos", "1"]) == 2
    assert "two output folders given" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("size", ["63x64", "64x63", "64", "axb", "8x8"])
def test_cli_rejects_bad_size(tmp_path, capsys, size):
    with pytest.raises(SystemExit) as exit_info:
        main(["synth", str(tmp_path / "x"), "--size", size])
    assert exit_info.value.code == 2
    assert "--size" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_reports_bad_parameters(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "x"), "--num-classes", "9", "--no-progress"]) == 2
    assert "classes" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------
# Motion options: pattern ranges, per-video motion style, keyframe interval
# ----------------------------------------------------------------------------------------------------


def _speeds(plan: S.VideoPlan) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mean object speed (px / frame) and the frames' action mask."""
    speed = np.hypot(np.diff(plan.center_x, axis=0), np.diff(plan.center_y, axis=0)).mean(axis=1)
    return speed, plan.action_mask()[1:]


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def test_default_motion_options_leave_datasets_unchanged():
    # The options default to the module's constants and draw nothing extra: old datasets stay as they were.
    config = S.SyntheticConfig(num_videos=3, width=32, height=32, min_duration=6, max_duration=7)
    explicit = S.SyntheticConfig(num_videos=3, width=32, height=32, min_duration=6, max_duration=7,
                                 frequency_range=S._FREQ_RANGE, amplitude_range=S._AMPLITUDE_RANGE,
                                 walk_speed=S._WALK_SPEED, motion_style=1.0)
    for a, b in zip(S.plan_dataset(config)[0], S.plan_dataset(explicit)[0], strict=True):
        np.testing.assert_array_equal(a.center_x, b.center_x)
        np.testing.assert_array_equal(a.radius, b.radius)


def test_frequency_range_sets_the_patterns():
    plans, _ = S.plan_dataset(S.SyntheticConfig(num_videos=6, num_classes=4, frequency_range=(1.5, 3.0)))
    frequencies = [inst.frequency for plan in plans for inst in plan.instances]
    assert min(frequencies) >= 1.5 and max(frequencies) <= 3.0


def test_motion_style_makes_background_speed_a_per_video_level():
    # Per-video drift speed: calm and busy videos, while the actions keep their speed; the mean object
    # speed of a frame stays a weak foreground cue (the task is about how objects move, not how fast).
    common = dict(num_videos=16, num_classes=4, num_objects=2, frequency_range=(1.5, 3.0), width=48, height=48,
                  min_duration=8, max_duration=12)
    styled, _ = S.plan_dataset(S.SyntheticConfig(**common, motion_style=2.0))
    plain, _ = S.plan_dataset(S.SyntheticConfig(**common))

    def background_spread(plans):
        levels = [np.median(speed[~mask]) for speed, mask in map(_speeds, plans)]
        return max(levels) / min(levels)

    assert background_spread(styled) > 1.5 * background_spread(plain)
    speeds, masks = zip(*(_speeds(p) for p in styled), strict=True)
    assert _auc(np.concatenate(speeds), np.concatenate(masks)) < 0.75


@pytest.mark.parametrize("bad", [dict(motion_style=0.5), dict(frequency_range=(2.0, 1.0)),
                                 dict(amplitude_range=(0.0, 0.1)), dict(walk_speed=-1.0),
                                 dict(keyframe_interval=0)])
def test_bad_motion_options_are_rejected(tmp_path, bad):
    with pytest.raises(TspVideoError):
        S.generate_dataset(tmp_path, **{**SMALL, **bad})


def test_keyframe_interval_is_written(tmp_path):
    dataset = S.generate_dataset(tmp_path, num_videos=1, num_classes=2, size=(32, 32), min_duration=6.0,
                                 max_duration=6.0, fps=15.0, keyframe_interval=8)
    with av.open(str(dataset.video_paths[dataset.video_ids[0]])) as container:
        packets = [p for p in container.demux(container.streams.video[0]) if p.size]
    keyframes = sum(p.is_keyframe for p in packets)
    assert keyframes >= len(packets) // 8  # x264's default would give one keyframe for these 90 frames



def test_decoy_background_fills_every_background_stretch_with_a_class_the_video_lacks():
    common = dict(num_videos=8, num_classes=4, max_instances=3, width=32, height=32, min_duration=8, max_duration=10)
    plain, _ = S.plan_dataset(S.SyntheticConfig(**common))
    decoyed, _ = S.plan_dataset(S.SyntheticConfig(**common, decoy_background=True))
    for without, plan in zip(plain, decoyed, strict=True):
        assert [(i.label_id, i.start, i.end) for i in plan.instances] == [
            (i.label_id, i.start, i.end) for i in without.instances]  # the annotations stay as they were
        decoys = {d.label_id for d in plan.decoys}
        assert len(decoys) == 1 and decoys.isdisjoint(i.label_id for i in plan.instances)
        # instances and decoys tile the video: every background frame shows the decoy pattern
        spans = sorted((m.start, m.end) for m in plan.instances + plan.decoys)
        assert spans[0][0] == 0.0 and spans[-1][1] == pytest.approx(plan.duration, abs=1e-3)
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
        # the decoy's actor moves: its track differs from the one the plain random walk gave
        actor = plan.decoys[len(plan.decoys) // 2].actor
        assert not np.allclose(plan.center_x[:, actor], without.center_x[:, actor])
    assert all(not p.decoys for p in plain)


def test_class_offset_gives_a_disjoint_set_of_classes(tmp_path):
    dataset = S.generate_dataset(tmp_path, num_videos=2, num_classes=2, size=(32, 32), min_duration=6.0,
                                 max_duration=6.0, class_offset=4, max_instances=1)
    assert list(dataset.label_names) == list(S.MOTION_PATTERNS[4:6])
    labels = {a["label"] for v in json.loads(dataset.annotations_path.read_text())["database"].values()
              for a in v["annotations"]}
    assert labels <= set(S.MOTION_PATTERNS[4:6])
    with pytest.raises(TspVideoError, match="decoy-background needs more classes"):
        S.SyntheticConfig(num_classes=3, max_instances=3, decoy_background=True).validate()
    with pytest.raises(TspVideoError, match="class offset"):
        S.SyntheticConfig(num_classes=5, class_offset=4).validate()
