"""The synthetic untrimmed-video generator (:mod:`tspvideo.data.synthetic`)."""
