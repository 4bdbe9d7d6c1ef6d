"""TSP vs TAC on the synthetic dataset, from the same initial encoder: the paper's Table 1 in miniature.

For every seed:

1. the initial encoder (seeded random weights, or ``weights``) and its features of every video; the GVF
   is their max-pool per video (the paper's first step);
2. trainings from that encoder with the same data and schedule, each until its validation accuracy stops
   improving (``ExperimentConfig.variants``): ``tsp`` (action + region heads, max GVF), ``tsp_no_gvf`` (both
   heads, no GVF), ``tsp_avg_gvf`` (average GVF) and ``tac`` (action head only, on every clip, background
   ignored by the loss); with ``tsp`` and ``tac`` also both at matched validation action accuracy;
3. features of every video with each trained encoder;
4. for each feature set (and the initial one, ``init``): the localization probe with the same probe seed,
   detection mAP per tIoU, proposal AUC, average mAP per instance-length bucket, and the temporal-sensitivity
   scores of the validation videos; a similarity figure of one validation video.

The synthetic dataset (``ExperimentConfig.data``) is generated once and shared by all seeds, so the spread
over seeds is that of initialisation, training order and probe training, not of the data. Every step skips
work whose output exists, so an interrupted run continues where it stopped; results are a deterministic
function of the configuration and the seeds (up to an interrupted training resumed mid-way).

Modules, in the order a run uses them: ``config`` (:class:`ExperimentConfig`, presets, ``config.json``),
``context`` (how ambiguous the clip alone is on the context task, measured on the plans), ``stage0`` (the
initial encoder pretrained on disjoint classes, optional), ``seed`` (one seed's steps), ``match`` (the epochs
at which TSP and TAC reach one validation accuracy), ``evaluate`` (one feature set's scores and figures),
``jobs`` (seeds side by side, one process each), ``report`` (results over seeds, the tables), ``plots``
(figures), ``run`` (:func:`run_experiment`).
"""

from tspvideo.core.lazy import lazy_names

# Loaded on first use: importing one light module of the package (e.g. its config) loads nothing else.
_NAMES = {
    "PRESETS": ("tspvideo.runs.experiment.config", "PRESETS"),
    "ExperimentConfig": ("tspvideo.runs.experiment.config", "ExperimentConfig"),
    "run_experiment": ("tspvideo.runs.experiment.run", "run_experiment"),
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_names(__name__, _NAMES)
