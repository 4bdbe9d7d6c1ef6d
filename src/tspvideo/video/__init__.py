"""Video files: decoding frames on the clip grid's times, metadata, transcoding, synthetic videos.

- :mod:`tspvideo.video.decode`: PyAV / torchcodec decoders and the sampling rules (which source frames);
- :mod:`tspvideo.video.nvdec`, :mod:`tspvideo.video.colour`: GPU decoding and YUV -> RGB on the device;
- :mod:`tspvideo.video.metadata`: duration, frame rate, frame count and size of each video;
- :mod:`tspvideo.video.transcode`: the optional re-encode for faster training input;
- :mod:`tspvideo.video.synthetic`: synthetic untrimmed videos (encoded for real) and frame-index test videos.
"""
