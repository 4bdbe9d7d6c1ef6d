"""Evaluation of localization results and of feature temporal sensitivity (see docs/evaluation.md).

- :mod:`tspvideo.evaluation.detection`: detection mAP (ActivityNet challenge / THUMOS14 protocols);
- :mod:`tspvideo.evaluation.proposals`: proposal AR@AN and AUC (ActivityNet proposal protocol);
- :mod:`tspvideo.evaluation.lengths`: mAP per instance-length bucket (DETAD, the paper's Table 8);
- :mod:`tspvideo.evaluation.similarity`: clip-to-clip similarity and fg/bg scores (Figure 2);
- :mod:`tspvideo.train.validate`: clip accuracy of a checkpoint on a segment table (model selection);
- :mod:`tspvideo.evaluation.io`: loading and validating the ActivityNet-style JSON files.
"""
