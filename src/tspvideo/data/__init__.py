"""Former home of the synthetic-video generator, kept so that ``tspvideo.data.synthetic`` still imports.

The code is :mod:`tspvideo.video.synthetic`; the other former ``data`` modules are in
:mod:`tspvideo.video` and :mod:`tspvideo.datasets`.
"""
