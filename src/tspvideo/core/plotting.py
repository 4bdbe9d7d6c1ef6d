"""matplotlib, imported only when a figure is drawn (an optional dependency: ``pip install "tspvideo[plot]"``)."""

from __future__ import annotations

from tspvideo.core.errors import TspVideoError


def pyplot():
    """``matplotlib.pyplot`` with the Agg backend (files, no display), or a clear error when it is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise TspVideoError("plotting needs matplotlib: pip install 'tspvideo[plot]'") from error
    return plt
