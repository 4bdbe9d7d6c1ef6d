"""Feature files: the feature folder, the GVF file and the features the TSP authors released.

- :mod:`tspvideo.features.folder`: ``<video>.npy`` + JSON sidecar per video, written atomically, merged to
  HDF5 and read back (every reader goes through it);
- :mod:`tspvideo.features.gvf`: global video features (pooling, the HDF5 file, the training reader);
- :mod:`tspvideo.features.released`: the released feature files, by name.
"""
