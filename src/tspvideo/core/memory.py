"""Keeping a long-running worker process's memory at what it uses (glibc's allocator).

A decode worker allocates and frees a few large buffers per item (a stack of frames, its preprocessed
copy, the resize's intermediates: 10-60 MB each). glibc serves blocks above its mmap threshold with
their own mappings, returned to the system when freed, but raises that threshold to the size of each
such block freed (up to 32 MB). After the first item, the buffers therefore come from the process's
heap, and the heap only shrinks from its top: with small live allocations above them, the freed
buffers stay resident, and the holes left between live blocks get too small for the next item's buffers.
In a decode worker (items sent to the model's process) this grew the heap to 1.7 GB after 15 s, of which
under 200 MB in use (``mallinfo2``), and the worker to 2.3 GB RSS (``benchmarks/RESULTS.md``, decode
workers). A fixed threshold (which also turns the adjustment off) keeps such buffers in their own mappings.
"""

from __future__ import annotations

import ctypes
import functools

# Blocks of at least this many bytes get their own mapping: items and their intermediates (megabytes)
# do, one decoded frame (a 320x240 RGB frame is 230 KB) stays on the heap, where freed blocks are reused.
LARGE_BLOCK_BYTES = 1 << 20
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library this process runs with, when it is glibc (the symbols already loaded: no library search,
    which would start ``ldconfig`` in a subprocess)."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 -- present in glibc only (not musl, macOS)
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError, TypeError):
        return None
    return libc


def map_large_blocks(threshold: int = LARGE_BLOCK_BYTES) -> bool:
    """Serve allocations of ``threshold`` bytes and more from their own mappings from now on, so that memory
    freed by large, short-lived buffers goes back to the system at once (glibc; elsewhere nothing changes).

    Meant for a worker process that allocates large buffers per item (see the module doc); it changes the
    whole process's allocator, never any value computed. Returns whether the setting was applied.
    """
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)))
