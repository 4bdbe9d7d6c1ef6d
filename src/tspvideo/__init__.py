"""tspvideo: Temporally-Sensitive Pretraining (TSP) of video encoders for localization tasks."""

__version__ = "0.1.0"
