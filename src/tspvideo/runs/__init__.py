"""Whole-pipeline runs on synthetic data: the demo and the TSP-vs-TAC experiment.

- :mod:`tspvideo.runs.steps`: what both share (synthetic dataset, initial encoder, extraction of a folder);
- :mod:`tspvideo.runs.demo`: ``tspvideo demo``;
- :mod:`tspvideo.runs.experiment`: ``tspvideo experiment``.
"""
