"""Feature extraction: videos -> one ``[T, C]`` float32 array per video, streamed, sharded and resumable.

- :mod:`tspvideo.extract.run`: ``extract_dataset`` (a folder of features) and ``stream_features`` (in memory);
- :mod:`tspvideo.extract.streaming`: decode workers stream frames, the model's process builds clips;
- :mod:`tspvideo.extract.provenance`: the settings a video's features depend on, for resuming;
- :mod:`tspvideo.extract.progress`: the progress bar in clips/s.
"""
