"""``tspvideo.data.synthetic`` (documented in earlier releases) is :mod:`tspvideo.video.synthetic`."""

import sys

from tspvideo.video import synthetic

sys.modules[__name__] = synthetic  # the same module object: every name, private ones included
