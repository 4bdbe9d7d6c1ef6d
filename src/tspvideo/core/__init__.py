"""The base every layer uses: errors, atomic writes, the clip grid, precision, torchrun, downloads, plotting, memory.

- :mod:`tspvideo.core.errors`: :class:`TspVideoError`, the one-line errors meant for the user;
- :mod:`tspvideo.core.fileio`: atomic writes and write errors that name the file;
- :mod:`tspvideo.core.grid`: the clip grid (:class:`ClipGrid`) and the paper's defaults;
- :mod:`tspvideo.core.precision`: autocast and the precision choice of each device;
- :mod:`tspvideo.core.distributed`: torchrun processes;
- :mod:`tspvideo.core.download`: resumable, hash-checked downloads;
- :mod:`tspvideo.core.plotting`: the optional matplotlib import;
- :mod:`tspvideo.core.memory`: glibc's allocator setting that keeps decode workers' memory at what they use.
"""
