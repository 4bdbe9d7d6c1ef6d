"""An encoder's input: the clip grid and frame transforms its features are computed with. One rule, here only.

Every command and every Python caller resolves the input the same way, field by field: an explicit
override, else the input a ``tspvideo train`` checkpoint was trained with (its ``input``), else the weights'
:class:`~tspvideo.models.weights.InputRecipe` (the paper's for a bare module). An override that contradicts
the checkpoint's training input is refused unless forced; a forced one is recorded for the sidecars.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tspvideo.core.errors import TspVideoError
from tspvideo.core.grid import DEFAULT_SAMPLING, ClipGrid
from tspvideo.datasets.transforms import Preprocessing
from tspvideo.models.weights import InputRecipe, default_recipe

PAPER_BACKBONE = "r2plus1d_34"  # whose recipe (the paper's input) a bare module without one gets


@dataclass(frozen=True)
class InputOverrides:
    """Input settings given explicitly (``None``: not given, so resolved as the module says).

    ``force`` accepts ``clip_len`` / ``fps`` / ``sampling`` that contradict a checkpoint's training input.
    """

    clip_len: int | None = None
    fps: float | None = None
    sampling: str | None = None
    stride: int | None = None  # default: one clip per clip length
    resize: Sequence[int] | None = None
    crop: int | Sequence[int] | None = None
    force: bool = False


@dataclass(frozen=True)
class ResolvedInput:
    """The input an encoder's features are computed with, and where it came from (for sidecars)."""

    grid: ClipGrid
    prep: Preprocessing
    source: str  # "checkpoint", "<backbone> input recipe" or "paper defaults"
    overrides: Mapping[str, Any] = field(default_factory=dict)  # forced contradictions of the checkpoint

    def record(self) -> dict[str, Any]:
        """The sidecar's ``input`` (and ``input_overrides`` when some were forced)."""
        record: dict[str, Any] = {"input": {"clip_len": self.grid.clip_len, "fps": self.grid.fps,
                                            "sampling": self.grid.sampling, "resize": list(self.prep.resize),
                                            "crop": list(self.prep.crop), "from": self.source}}
        if self.overrides:
            record["input_overrides"] = {key: dict(value) for key, value in self.overrides.items()}
        return record


def _pair(crop: int | Sequence[int]) -> tuple[int, int]:
    return (int(crop), int(crop)) if isinstance(crop, int) else (int(crop[0]), int(crop[-1]))


def _same(given: object, stored: object) -> bool:
    return given == stored if isinstance(given, str) else float(given) == float(stored)


def _contradiction_message(overrides: Mapping[str, Mapping[str, Any]], name: str) -> str:
    flags = ", ".join(f"--{key.replace('_', '-')} {value['used']:g} (trained with {value['checkpoint']:g})"
                      if key != "sampling" else f"--sampling {value['used']} (trained with {value['checkpoint']})"
                      for key, value in overrides.items())
    return (f"{name}: {flags} contradicts the input the model was trained on; drop the flag to use the "
            "checkpoint's, or add --force")


def resolve_input(recipe: InputRecipe | None, trained_input: Mapping[str, Any] | None = None,
                  overrides: InputOverrides = InputOverrides(), *, name: str = "the checkpoint") -> ResolvedInput:
    """The clip grid and frame transforms: ``overrides``, else ``trained_input`` (a tspvideo checkpoint's
    ``input``), else ``recipe`` (the paper's input when None), field by field, checked.

    Raises :class:`TspVideoError` naming ``name`` when an override contradicts the training input without
    ``overrides.force``.
    """
    trained = dict(trained_input or {})
    source = "checkpoint" if trained else f"{recipe.backbone} input recipe" if recipe else "paper defaults"
    recipe = recipe or default_recipe(PAPER_BACKBONE)
    defaults = {"clip_len": recipe.clip_len, "fps": recipe.fps, "sampling": DEFAULT_SAMPLING}
    # The values given are checked first (e.g. fps 0), so a bad one is not met with "add --force".
    ClipGrid(clip_len=overrides.clip_len if overrides.clip_len is not None else recipe.clip_len,
             fps=overrides.fps if overrides.fps is not None else recipe.fps,
             stride=overrides.stride if overrides.stride is not None else 1,
             sampling=overrides.sampling if overrides.sampling is not None else DEFAULT_SAMPLING)
    chosen, contradictions = {}, {}
    for key, default in defaults.items():
        given, stored = getattr(overrides, key), trained.get(key)
        if given is not None and stored is not None and not _same(given, stored):
            contradictions[key] = {"checkpoint": stored, "used": given}
        chosen[key] = given if given is not None else stored if stored is not None else default
    if contradictions and not overrides.force:
        raise TspVideoError(_contradiction_message(contradictions, name))
    clip_len = int(chosen["clip_len"])
    stride = overrides.stride if overrides.stride is not None else clip_len
    grid = ClipGrid(clip_len=clip_len, fps=chosen["fps"], stride=stride, sampling=chosen["sampling"])
    prep = recipe.preprocessing
    # Frame sizes: a checkpoint records the pair it was trained with; an override replaces either one.
    if trained.get("resize") and trained.get("crop"):
        prep = replace(prep, resize=tuple(trained["resize"]), crop=_pair(trained["crop"]))
    if overrides.resize is not None:
        resize = tuple(int(v) for v in overrides.resize)
        if len(resize) not in (1, 2):
            raise TspVideoError(f"--resize takes H W or one short side S, got {len(resize)} values")
        prep = replace(prep, resize=resize)
    if overrides.crop is not None:
        prep = replace(prep, crop=_pair(overrides.crop))
    if prep.crop[0] > min(prep.resize):
        raise TspVideoError(f"--crop {prep.crop[0]} is larger than the resized frames {tuple(prep.resize)}")
    return ResolvedInput(grid, prep, source, contradictions)
