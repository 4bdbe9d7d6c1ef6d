"""A light temporal localization probe trained on extracted features (a feature-quality instrument).

See ``docs/probe.md``. Main entry points: ``train_probe``, ``predict``, ``run_probe``.
"""

from tspvideo.localization.data import ProbeVideo, load_probe_videos, make_targets
from tspvideo.localization.model import ProbeNet
from tspvideo.localization.postprocess import classify_proposals, generate_proposals, soft_nms
from tspvideo.localization.probe import ProbeConfig, ProbeModel, predict, run_probe, train_probe

__all__ = [
    "ProbeConfig", "ProbeModel", "ProbeNet", "ProbeVideo", "classify_proposals", "generate_proposals",
    "load_probe_videos", "make_targets", "predict", "run_probe", "soft_nms", "train_probe",
]
