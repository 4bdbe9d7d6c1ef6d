"""Localization on extracted features: the layouts downstream localizers read, and a light probe.

- :mod:`tspvideo.localization.export`: feature folders as ActionFormer, TriDet, OpenTAD, BMN / G-TAD and PDVC
  read them (``docs/export.md``);
- the probe, a feature-quality instrument (``docs/probe.md``): ``train_probe``, ``predict``, ``run_probe``.
"""

from tspvideo.core.lazy import lazy_names

# Loaded on first use: importing one light module of the package (e.g. its config) loads nothing else.
_NAMES = {
    "ProbeVideo": ("tspvideo.localization.data", "ProbeVideo"),
    "load_probe_videos": ("tspvideo.localization.data", "load_probe_videos"),
    "make_targets": ("tspvideo.localization.data", "make_targets"),
    "ProbeNet": ("tspvideo.localization.model", "ProbeNet"),
    "classify_proposals": ("tspvideo.localization.postprocess", "classify_proposals"),
    "generate_proposals": ("tspvideo.localization.postprocess", "generate_proposals"),
    "soft_nms": ("tspvideo.localization.postprocess", "soft_nms"),
    "ProbeConfig": ("tspvideo.localization.probe", "ProbeConfig"),
    "ProbeModel": ("tspvideo.localization.probe", "ProbeModel"),
    "predict": ("tspvideo.localization.probe", "predict"),
    "run_probe": ("tspvideo.localization.probe", "run_probe"),
    "train_probe": ("tspvideo.localization.probe", "train_probe"),
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_names(__name__, _NAMES)
