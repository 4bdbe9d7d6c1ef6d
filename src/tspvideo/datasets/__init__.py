"""Annotated datasets: segment tables, annotation importers and checks, clip datasets and their transforms.

- :mod:`tspvideo.datasets.activitynet_json`: the one checked reader of ActivityNet-style JSON;
- :mod:`tspvideo.datasets.annotations`: ActivityNet / THUMOS14 / generic annotations -> segment tables;
- :mod:`tspvideo.datasets.segments`: the segment table (CSV) and label maps;
- :mod:`tspvideo.datasets.clips`: clips of segments for training and validation, samplers;
- :mod:`tspvideo.datasets.transforms`: resize / crop / flip / normalise of one clip;
- :mod:`tspvideo.datasets.batch_transforms`: the same on the device, for a batch of raw uint8 clips.
"""
