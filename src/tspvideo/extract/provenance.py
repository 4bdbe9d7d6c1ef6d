"""What a video's features depend on, recorded in its sidecar, and the rule for skipping it on a rerun.

A sidecar's ``provenance`` holds two parts:

- ``settings``: everything of the run that changes the numbers (weights identity, backbone, clip grid,
  preprocessing, precision, decoder options). It is built in one place, :func:`feature_settings`: a
  new setting that changes features is one more entry there, and resume checks it from then on.
- ``source``: a fingerprint of the video file (size, modification time, SHA-256 of its first and last
  MiB), so a file replaced or rewritten since its features were made is noticed.

A rerun skips a video only when both match. Features of other settings in the output folder stop the
run before any work (:func:`check_folder_settings`); a changed source file is re-extracted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tspvideo.core.errors import TspVideoError
from tspvideo.features import folder as features

FINGERPRINT_BYTES = 1 << 20  # hashed at each end of the file

# How each setting is named to the user (the option that changes it).
SETTING_NAMES = {
    "weights": "weights",
    "backbone": "backbone",
    "clip_len": "--clip-len",
    "fps": "--fps",
    "stride": "--stride",
    "sampling": "--sampling",
    "preprocessing": "preprocessing",
    "precision": "--amp",
    "decoder": "--backend",
    "decoder_resize": "--decoder-resize",
    "colour_conversion": "--colour",
}


def weights_identity(description: dict) -> str:
    """What identifies the weights: the file's SHA-256 when known, else the weights' name.

    The hash is compared, not the name, so the same file given by name or by path counts as the same.
    """
    sha = description.get("sha256")
    return f"sha256:{sha}" if sha else f"name:{description.get('weights')}"


def feature_settings(clip_settings: Any, description: dict, preprocessing: Any, *, amp: str | None,
                     backend: str, decoder_resize: bool, colour: str = "decoder") -> dict[str, Any]:
    """The settings that change a video's features, as a JSON-friendly dict (one place: add new ones here).

    ``clip_settings`` is a dataclass (every field of the clip grid counts); ``description`` is the
    weights' description (``weights``, ``sha256``, ``model_config``); ``preprocessing`` has ``to_dict()``.
    Device, batch size, workers and ``channels_last`` are left out: they change features only by
    float rounding. ``colour`` is recorded only when it is not the reference (YUV to RGB in the decoder), so
    that folders written before it existed still match.
    """
    settings = {
        "weights": weights_identity(description),
        "backbone": (description.get("model_config") or {}).get("backbone"),
        **dataclasses.asdict(clip_settings),
        "preprocessing": preprocessing.to_dict(),
        "precision": amp or "fp32",
        "decoder": backend,
        "decoder_resize": bool(decoder_resize),
    }
    if colour != "decoder":
        settings["colour_conversion"] = colour
    return json.loads(json.dumps(settings))  # as read back from a sidecar (tuples become lists)


def source_fingerprint(path: Path) -> dict[str, Any] | None:
    """Size, modification time and SHA-256 of the first and last MiB of a file; None when it cannot be read."""
    try:
        stat = path.stat()
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            digest.update(f.read(FINGERPRINT_BYTES))
            if stat.st_size > FINGERPRINT_BYTES:
                f.seek(max(FINGERPRINT_BYTES, stat.st_size - FINGERPRINT_BYTES))
                digest.update(f.read(FINGERPRINT_BYTES))
    except OSError:
        return None
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "head_tail_sha256": digest.hexdigest()}


def source_change(recorded: dict | None, current: dict | None) -> str | None:
    """How the source file differs from the one the features were made from, or None when it is the same."""
    if not recorded or not current:
        return "no fingerprint of the source file"
    changes = []
    if recorded.get("size") != current["size"]:
        changes.append(f"size {recorded.get('size')} -> {current['size']} bytes")
    if recorded.get("mtime_ns") != current["mtime_ns"]:
        changes.append("modification time")
    if recorded.get("head_tail_sha256") != current["head_tail_sha256"]:
        changes.append("content")
    return ", ".join(changes) or None


def settings_difference(existing: dict, current: dict) -> str | None:
    """The first setting that differs, in words (``--stride 16 there, 8 now``), or None when all match."""
    for key in dict.fromkeys([*current, *existing]):
        if existing.get(key) != current.get(key):
            name = SETTING_NAMES.get(key, key)
            there, now = existing.get(key), current.get(key)
            if key == "colour_conversion":  # not recorded: the reference, RGB from the decoder
                there, now = there or "decoder", now or "decoder"
                # --colour auto follows where frames are preprocessed (on a GPU: the device), so a folder started
                # on a CPU meets this when continued on a GPU with the defaults
                return (f"{name} {there} there, {now} now (--colour auto converts on the device when frames are "
                        f"preprocessed there, as on a GPU); add --colour {there} to continue this folder")
            return f"{name} {_show(there)} there, {_show(now)} now"
    return None


def _show(value: Any) -> str:
    if isinstance(value, str) and value.startswith("sha256:"):
        return f"(file sha256 {value[7:19]}...)"
    if isinstance(value, str) and value.startswith("name:"):
        return value[5:]
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def read_sidecar(path: Path) -> dict | None:
    """A feature sidecar's content, or None when the file is not one (unreadable, other JSON)."""
    data = features.read_sidecar(path.with_suffix(".npy"), strict=False) if path.suffix == ".json" else {}
    return data if "num_features" in data else None


def iter_sidecars(out_dir: Path) -> Iterator[tuple[Path, dict]]:
    """Every feature sidecar in ``out_dir`` (not its subfolders), in name order."""
    for path in sorted(out_dir.glob("*.json")):
        if not path.name.startswith("."):
            sidecar = read_sidecar(path)
            if sidecar is not None:
                yield path, sidecar


def settings_of(sidecar: dict) -> dict | None:
    """The recorded settings of a sidecar; None for one written before settings were recorded."""
    provenance = sidecar.get("provenance")
    return provenance.get("settings") if isinstance(provenance, dict) else None


def settings_problem(sidecar: dict, current: dict) -> str | None:
    """Why a sidecar's features cannot count as made with ``current`` settings, or None when they can."""
    recorded = settings_of(sidecar)
    if recorded is None:
        return "written by an older tspvideo that did not record its settings"
    return settings_difference(recorded, current)


def check_folder_settings(sidecars: dict[Path, dict], current: dict, out_dir: Path) -> None:
    """Raise when some of ``sidecars`` (those of ``out_dir``) were made with other settings than ``current``.

    Meant to run before any work. The one-line error names the first file that differs and the difference.
    """
    for path, sidecar in sidecars.items():
        problem = settings_problem(sidecar, current)
        if problem is not None:
            raise TspVideoError(f"{out_dir} holds features of other settings ({path.name}: {problem}); rerun with "
                                "the same settings, use another --out, or --overwrite to replace them")
