"""Does a video file that failed to decode look cut short? A hint for its error message, from its container.

FFmpeg reports a partly downloaded MP4 whose index (``moov``) was to come last, or an MPEG program stream
cut inside a packet, as "Invalid data found when processing input", which does not say what happened.
The containers say how long their parts are, so a part that runs past the end of the file shows the cut:

- MP4 / QuickTime: each top-level box declares its size; media data without any ``moov`` box means
  the index, written last, is missing;
- AVI: the ``RIFF`` header declares the file's size;
- Matroska / WebM: the ``Segment`` element declares its size (unless written as unknown, as live streams do);
- MPEG program stream: each packet after a pack header declares its length (only the file's tail is read).

:func:`truncation_hint` only reads headers (the tail of an MPEG file), so it is cheap enough for every
failure. It never decides whether a video fails: it only words the error of one that did.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

MP4_TOP_LEVEL = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pdin", b"moof", b"mfra", b"meta",
                 b"styp", b"sidx", b"pnot", b"prfl"}
PACK_START = b"\x00\x00\x01\xba"
EBML_MAGIC = b"\x1a\x45\xdf\xa3"
MATROSKA_SEGMENT = b"\x18\x53\x80\x67"
MPEG_TAIL_BYTES = 1 << 20  # an MPEG file's last packets are looked for in its last MiB
MAX_MP4_BOXES = 10_000  # top-level boxes walked at most (real files have a handful)


def truncation_hint(path: str | os.PathLike) -> str | None:
    """``file looks truncated: ...`` (why) when the file's container shows it was cut short, else None."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(16)
            if len(head) >= 8 and head[4:8] in MP4_TOP_LEVEL:
                reason = _mp4_cut(f, size)
            elif head[:4] == b"RIFF" and head[8:12] == b"AVI ":
                reason = _riff_cut(head, size)
            elif head[:4] == EBML_MAGIC:
                reason = _matroska_cut(f, size)
            elif head[:4] == PACK_START:
                reason = _mpeg_ps_cut(f, size)
            else:
                reason = None
    except OSError:
        return None
    return f"file looks truncated: {reason}" if reason else None


def with_truncation_hint(path: str | os.PathLike, message: str) -> str:
    """``message``, and ``; file looks truncated: ...`` when the container of ``path`` shows a cut."""
    hint = truncation_hint(path)
    return f"{message}; {hint}" if hint else message


def _mp4_cut(f, size: int) -> str | None:
    offset, seen = 0, set()
    for _ in range(MAX_MP4_BOXES):
        if offset + 8 > size:
            break
        f.seek(offset)
        header = f.read(16)
        box_size, kind = struct.unpack(">I4s", header[:8])
        if box_size == 1 and len(header) == 16:
            box_size = struct.unpack(">Q", header[8:16])[0]
        elif box_size == 0:  # the box runs to the end of the file
            box_size = size - offset
        if box_size < 8:
            return None  # not a box structure we can follow: no hint rather than a wrong one
        name = kind.decode("latin-1")
        seen.add(kind)
        if offset + box_size > size:
            return (f"its '{name}' box declares {box_size} bytes from byte {offset}, but the file ends "
                    f"{offset + box_size - size} bytes short of that")
        offset += box_size
    if b"mdat" in seen and b"moov" not in seen and b"moof" not in seen:
        return "it has media data ('mdat') but no index ('moov'), which is written after the data"
    return None


def _riff_cut(head: bytes, size: int) -> str | None:
    declared = struct.unpack("<I", head[4:8])[0] + 8
    if declared > size:
        return f"its RIFF header declares {declared} bytes, the file has {size}"
    return None


def _read_vint(data: bytes, at: int) -> tuple[int | None, int]:
    """An EBML variable-size integer at ``at``: (value, or None when all ones, i.e. unknown; bytes it takes)."""
    if at >= len(data) or data[at] == 0:
        raise ValueError("not an EBML size")
    length = 9 - data[at].bit_length()
    if at + length > len(data):
        raise ValueError("cut inside an EBML size")
    value = int.from_bytes(data[at:at + length], "big") & ((1 << (7 * length)) - 1)
    return (None if value == (1 << (7 * length)) - 1 else value), length


def _matroska_cut(f, size: int) -> str | None:
    f.seek(0)
    head = f.read(256)
    try:
        header_size, length = _read_vint(head, 4)
        if header_size is None:
            return None
        at = 4 + length + header_size
        if head[at:at + 4] != MATROSKA_SEGMENT:
            return None
        segment_size, length = _read_vint(head, at + 4)
    except ValueError:
        return None
    data_start = at + 4 + length
    if segment_size is not None and data_start + segment_size > size:
        return (f"its Matroska segment declares {segment_size} bytes from byte {data_start}, but the file ends "
                f"{data_start + segment_size - size} bytes short of that")
    return None


def _mpeg_ps_cut(f, size: int) -> str | None:
    """The last packet of an MPEG program stream running past the end of the file."""
    start = max(0, size - MPEG_TAIL_BYTES)
    f.seek(start)
    tail = f.read()
    at = tail.find(PACK_START)
    while 0 <= at and at + 4 <= len(tail):
        code = tail[at + 3]
        if code == 0xB9:  # program end code: the stream says it is complete
            return None
        if code == 0xBA:  # pack header: MPEG-2 (14 bytes + stuffing) or MPEG-1 (12 bytes)
            if at + 14 > len(tail):
                return _short(start + at, 14, size)
            length = 14 + (tail[at + 13] & 0x07) if tail[at + 4] >> 6 == 0b01 else 12
        elif code >= 0xBB:  # system header or a packet: a 16-bit length follows its start code
            if at + 6 > len(tail):
                return _short(start + at, 6, size)
            length = 6 + struct.unpack(">H", tail[at + 4:at + 6])[0]
        else:
            return None  # not a start code of a program stream's top level: lost sync, no hint
        if at + length > len(tail):
            return _short(start + at, length, size)
        at += length
        if at + 4 <= len(tail) and tail[at:at + 3] != b"\x00\x00\x01":
            return None  # the next packet does not start where the length says: lost sync, no hint
    return None


def _short(offset: int, length: int, size: int) -> str:
    return (f"its last MPEG packet declares {length} bytes from byte {offset}, but the file ends "
            f"{offset + length - size} bytes short of that")
