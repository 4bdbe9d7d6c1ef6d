"""Figures in their degenerate cases: rendered to PNG, then checked for what a reader would see wrong (text over
text, labels outside their axes, a title far from what it names)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.image import imread  # noqa: E402

from tspvideo.evaluation.detad_fp import ERROR_TYPES  # noqa: E402
from tspvideo.evaluation.detad_plot import false_positive_figure, plot_false_positive_profile  # noqa: E402
from tspvideo.evaluation.similarity import plot_similarity  # noqa: E402


def _profile(gains: dict[str, float | None]) -> dict:
    """A false-positive profile whose top predictions are all true positives, with the given gains."""
    shares = {name: 1.0 if name == ERROR_TYPES[0] else 0.0 for name in ERROR_TYPES}
    rows = [{"top": f"{k}G", "num_predictions": 10, "shares": shares} for k in range(1, 11)]
    return {"profile": rows, "removing_gain": {"True Positive": None, **gains}}


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("gains", [
    {name: 0.0 for name in ERROR_TYPES[1:]},  # all gains 0: DETAD's degenerate case
    {name: g for name, g in zip(ERROR_TYPES[1:], [0.05, 0.0, None, 0.2, -0.01], strict=True)},
])
def test_false_positive_figure_keeps_its_legend_and_labels_apart(gains, tmp_path):
    fig = false_positive_figure(_profile(gains))
    fig.savefig(tmp_path / "fp.png", dpi=60)  # drawn: every extent below is the one in the file
    renderer = fig.canvas.get_renderer()
    left, right = fig.axes
    legend = fig.legends[0].get_window_extent(renderer)
    # The legend sits below both panels, over none of their tick labels or axis labels.
    for ax in (left, right):
        texts = [ax.xaxis.label, *ax.get_xticklabels()]
        assert not any(_overlap(legend, t.get_window_extent(renderer)) for t in texts if t.get_text())
        assert legend.y1 <= ax.get_window_extent(renderer).y0
    # Every gain has its label, drawn inside the axis (not above it), over its bar.
    low, high = right.get_ylim()
    assert high - low >= 1.0  # never the +-0.05 range that all-zero bars give by default
    labels = [t for t in right.texts]
    assert [t.get_text() for t in labels] == ["n/a" if g is None else f"{100 * g:.1f}" for g in gains.values()]
    for text in labels:
        assert low <= text.get_position()[1] <= high
    image = imread(tmp_path / "fp.png")
    assert image.shape[0] > 100 and image.std() > 0  # a real picture, not an empty canvas


def test_false_positive_profile_writes_a_png(tmp_path):
    out = tmp_path / "fp.png"
    plot_false_positive_profile(_profile({name: 0.0 for name in ERROR_TYPES[1:]}), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _blank_rows(image: np.ndarray) -> np.ndarray:
    """Rows of a rendered figure that are background (white) from edge to edge."""
    return np.all(image[..., :3] > 0.99, axis=(1, 2))


def _longest_run(flags: np.ndarray) -> int:
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


@pytest.mark.parametrize("panels", [1, 2, 3])
def test_similarity_figure_has_no_blank_band_under_its_title(panels, tmp_path):
    rng = np.random.default_rng(0)
    times = np.arange(40) * 0.5 + 0.25
    out = tmp_path / "sim.png"
    plot_similarity([(f"encoder {i}", rng.standard_normal((40, 8)), times) for i in range(panels)],
                    [(3.0, 8.0), (12.0, 15.0)], out, title="v_video")
    image = imread(out)
    blank = _blank_rows(image)
    drawn = np.flatnonzero(~blank)
    inner = blank[drawn[0]:drawn[-1] + 1]  # between the title's first row and the figure's last drawn row
    # Before, square panels under a title at the figure's top left a band of about a sixth of the height.
    assert _longest_run(inner) < 0.05 * image.shape[0]
    # Nor a wide margin around the whole figure.
    assert drawn[0] < 0.05 * image.shape[0] and image.shape[0] - drawn[-1] < 0.05 * image.shape[0]
