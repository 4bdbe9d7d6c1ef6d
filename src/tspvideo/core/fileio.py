"""Atomic writes: results appear under their final name complete or not at all."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tspvideo.core.errors import TspVideoError, WriteFailure


@contextlib.contextmanager
def atomic_path(final_path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the same folder; on success move it onto ``final_path``.

    The temporary file sits in the destination folder so that ``os.replace`` is a rename on the same
    file system, which is atomic. On error the temporary file is removed and nothing is left behind.
    The final file gets the mode of a normal write, ``0o666 & ~umask`` (``mkstemp`` creates it 0600,
    which would hide results from colleagues and group jobs on a shared server).
    """
    final_path = Path(final_path)
    try:
        final_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final_path.name}.", suffix=".tmp", dir=final_path.parent)
        os.close(fd)
    except OSError as error:
        raise write_error(final_path, error) from error
    tmp_path = Path(tmp_name)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())
        os.replace(tmp_path, final_path)
    except (OSError, RuntimeError) as error:  # h5py reports a failed write as either, errno in the message
        if error_errno(error) in WRITE_ERRNOS:  # disk full, no permission...: one line naming the output
            raise write_error(final_path, error) from error
        raise
    finally:
        with contextlib.suppress(OSError):
            tmp_path.unlink(missing_ok=True)


# For ``h5py.File(..., "w", **H5_WRITE_OPTIONS)`` with chunked (e.g. compressed) datasets. h5py writes cached
# chunks when a dataset object is freed, where a failing write (a full disk) can only print a traceback per
# dataset and the run goes on; without a chunk cache each write happens, and fails, in the call that makes it.
H5_WRITE_OPTIONS = {"rdcc_nbytes": 0}


def current_umask() -> int:
    """The process umask, read without changing it where the system allows (``os.umask`` sets it)."""
    # Linux reports it in /proc; setting and restoring it would briefly affect files other threads create.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Errors that mean "this output cannot be written here": full disk, quota, file size limit, permissions,
# read-only mount, a failing device.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS,
                          errno.EIO})

_CAUSES = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file size limit reached",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EIO: "I/O error",
}

_HINTS = {
    errno.ENOSPC: "; free some space and rerun (finished outputs are kept)",
    errno.EDQUOT: "; free some space and rerun (finished outputs are kept)",
    errno.EFBIG: "; raise the limit (ulimit -f) or write to another file system, then rerun (finished outputs are "
                 "kept)",
}


def error_errno(error: BaseException) -> int | None:
    """The errno of an I/O error: its ``errno``, or the ``errno = N`` that h5py writes into its messages."""
    code = getattr(error, "errno", None)
    if code is None and (found := re.search(r"errno = (\d+)", str(error))):
        code = int(found.group(1))
    return code


def describe_os_error(path: str | os.PathLike, error: BaseException, action: str = "write") -> str:
    """One line naming the file and the cause: ``cannot write PATH: disk full (No space left on device)``.

    The cause is named from the errno (disk full, disk quota exceeded, file size limit reached, read-only file
    system, permission denied, I/O error), followed by the system's own wording; a full disk adds what to do.
    """
    code = error_errno(error)
    system = os.strerror(code) if code is not None else (getattr(error, "strerror", None) or str(error)
                                                          or type(error).__name__)
    cause = _CAUSES.get(code, system)
    if cause.lower() != system.lower():
        cause = f"{cause} ({system})"
    else:
        cause = system
    hint = _HINTS.get(code, "")
    return f"cannot {action} {path}: {cause}{hint}"


def write_error(path: str | os.PathLike, error: BaseException) -> WriteFailure:
    """A :class:`WriteFailure` naming the output that could not be written and why (see :func:`describe_os_error`)."""
    return WriteFailure(describe_os_error(path, error))


class _WriteOnly:
    """A file seen through ``write`` only: ``np.save`` then writes with Python's ``write``, whose errors keep
    their errno (on a real file it uses ``fwrite``, which reports a full disk as "N requested and M written")."""

    def __init__(self, file) -> None:
        self._file = file

    def write(self, data) -> int:
        return self._file.write(data)


def save_npy_atomic(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as ``.npy`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(_WriteOnly(f), array)


def save_json_atomic(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=indent, ensure_ascii=False)
        f.write("\n")


def save_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def check_file_writable(path: str | os.PathLike) -> None:
    """Raise when the file ``path`` could not be written later, creating nothing.

    Its folder, or the nearest existing folder above it (where the missing ones would be created), must
    be writable; ``path`` itself must not be a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise TspVideoError(f"cannot write {path}: it is a folder")
    _check_can_create_in(path.parent, path)


def check_folder_writable(path: str | os.PathLike) -> None:
    """Raise when files could not be written into the folder ``path`` later, creating nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise TspVideoError(f"cannot write into {path}: it is a file, not a folder")
    _check_can_create_in(path, path)


def _check_can_create_in(folder: Path, target: Path) -> None:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # missing folders are created there
    if not folder.is_dir():
        raise TspVideoError(f"cannot write {target}: {folder} is not a folder")
    with contextlib.suppress(OSError, AttributeError):  # statvfs: POSIX only
        if os.statvfs(folder).f_flag & os.ST_RDONLY:  # refuses root too, unlike the permission bits
            raise TspVideoError(f"cannot write {target}: read-only file system ({folder})")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise TspVideoError(f"cannot write {target}: Permission denied ({folder})")
