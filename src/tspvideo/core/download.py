"""Downloading a known file: resumable (HTTP Range), verified (size / hash), atomic, with a progress bar.

Bytes go to ``.<name>.part`` beside the target. An interrupted download leaves that file, and the next
call asks the server only for the missing bytes. The target appears (``os.replace``) only once the whole
file is there and matches its expected size and hash; a file that does not match is deleted, never kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from tspvideo.core.errors import TspVideoError

CHUNK = 1 << 20


@dataclass(frozen=True)
class Expected:
    """What a downloaded file must be; ``None`` fields are not checked.

    ``sha256`` may be a prefix (the released checkpoints carry 8 hex digits in their names);
    ``git_blob_sha1`` is the id git gives the file's content (``git hash-object``), which a repository's
    tree states for files whose size or SHA-256 nobody published.
    """

    size: int | None = None
    sha256: str | None = None
    git_blob_sha1: str | None = None


def partial_path(target: Path) -> Path:
    """Where the bytes of an unfinished download of ``target`` are kept."""
    return target.with_name(f".{target.name}.part")


def file_digests(path: Path) -> tuple[str, str]:
    """(SHA-256, git blob SHA-1) of a file, in one pass."""
    size = path.stat().st_size
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(f"blob {size}\0".encode())  # git's object header, then the content
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            sha256.update(block)
            blob.update(block)
    return sha256.hexdigest(), blob.hexdigest()


def check_file(path: Path, expected: Expected) -> str | None:
    """Why ``path`` is not the expected file, or ``None`` when it is."""
    size = path.stat().st_size
    if expected.size is not None and size != expected.size:
        return f"has {size} bytes, expected {expected.size}"
    if expected.sha256 is None and expected.git_blob_sha1 is None:
        return None
    sha256, blob = file_digests(path)
    if expected.sha256 is not None and not sha256.startswith(expected.sha256.lower()):
        return f"SHA-256 {sha256[:16]}... does not match the expected {expected.sha256}"
    if expected.git_blob_sha1 is not None and blob != expected.git_blob_sha1.lower():
        return f"git blob id {blob} does not match the expected {expected.git_blob_sha1}"
    return None


def offline_message(url: str, target: Path, error: BaseException, hint: str = "") -> str:
    """The one-line "download it yourself" message shared by weights and released features."""
    name = target.name
    return (f"could not download {name} ({type(error).__name__}: {error}). Download {url} yourself and put it "
            f"at {target}{hint}")


def download(url: str, target: str | os.PathLike, expected: Expected = Expected(), progress: bool = True,
             timeout: float = 60.0, hint: str = "") -> Path:
    """Download ``url`` to ``target`` (resuming an earlier partial download) and verify it.

    Raises ``TspVideoError`` with the "download this URL to this path" message when the network fails
    (the partial file is kept for the next try), and a verification error when the finished file does
    not match ``expected`` (the partial file is deleted so the next try starts afresh).
    """
    target = Path(target)
    part = partial_path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _fetch_into(url, part, expected, progress, timeout)
    except TspVideoError:
        raise
    except Exception as error:  # network errors come in many types (URLError, OSError, IncompleteRead...)
        raise TspVideoError(offline_message(url, target, error, hint)) from error
    problem = check_file(part, expected)
    if problem:
        with contextlib.suppress(OSError):
            part.unlink()
        raise TspVideoError(f"downloaded {target.name} from {url} {problem}; the download was deleted, "
                            "rerun to try again")
    os.replace(part, target)
    return target


def _fetch_into(url: str, part: Path, expected: Expected, progress: bool, timeout: float) -> None:
    offset = part.stat().st_size if part.is_file() else 0
    if expected.size is not None and offset > expected.size:
        part.unlink()  # longer than the file can be: not a prefix of it
        offset = 0
    if expected.size is not None and offset == expected.size:
        return  # complete already (an earlier run stopped before verifying)
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing after offset: the partial file is the whole file
            return
        raise
    with response:
        resumed = offset > 0 and response.status == 206 and _range_start(response) == offset
        if response.status == 206 and not resumed:  # bytes from somewhere else: appending them would corrupt
            part.unlink()
            raise ConnectionError(f"the server answered a request for bytes {offset}- with "
                                  f"{response.headers.get('Content-Range')!r}; rerun to download afresh")
        if not resumed:
            offset = 0  # the server sent the whole file (it ignores Range, or it is a fresh start)
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else expected.size
        with open(part, "ab" if resumed else "wb") as f, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=part.name[1:-5],
                disable=not progress) as bar:
            received = 0
            for block in iter(lambda: response.read(CHUNK), b""):
                f.write(block)
                received += len(block)
                bar.update(len(block))
    if length is not None and received < int(length):
        # http.client may end a body that was cut short without an error: this is an interrupted download
        # (the bytes so far are kept for the next try), not a finished one.
        raise ConnectionError(f"connection closed after {offset + received} of {total} bytes")


def _range_start(response) -> int | None:
    # "Content-Range: bytes 100-199/200": the first byte this response holds.
    value = response.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None
