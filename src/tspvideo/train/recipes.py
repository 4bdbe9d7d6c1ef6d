"""Named training recipes: every hyper-parameter of one of the original code's training runs, in one flag.

``tspvideo train --recipe tsp-thumos14`` (``TrainConfig(recipe="tsp-thumos14")``) fills each training
option the way the original's script ``train/train_tsp_on_thumos14.sh`` did; an option given explicitly
(a flag, or a field not left ``None``) wins over the recipe, and ``--downscale-factor N`` divides the
batch size and both learning rates together, as the scripts' ``DOWNSCALE_FACTOR`` (for GPUs with less
memory). Without ``--recipe`` the values are :data:`DEFAULTS`, the original's ``train/opts.py``
defaults (which ``tsp-activitynet`` also uses).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from tspvideo.core.errors import TspVideoError
from tspvideo.core.grid import DEFAULT_CLIP_LEN, DEFAULT_FPS
from tspvideo.train.config import TrainConfig

# The original's opts.py defaults, plus our options set to the original's behaviour.
DEFAULTS: dict[str, object] = {
    "backbone": "r2plus1d_34",
    "weights": "auto",
    "heads": ["action", "region"],
    "label_map": None,
    "no_gvf": False,
    "gvf_pool": None,  # None: what the GVF file says (its "pool" attribute), else max
    "region_only_gvf": False,
    "tac_clips": "all",
    "clip_len": DEFAULT_CLIP_LEN,
    "fps": DEFAULT_FPS,
    "clips_per_segment": 5,
    "resize": [128, 171],
    "crop": 112,
    "batch_size": 32,
    "backbone_lr": 1e-4,
    "fc_lr": 2e-3,
    "epochs": 8,
    "optimizer": "sgd",
    "momentum": 0.9,
    "weight_decay": 0.005,
    "lr_warmup_epochs": 2.0,
    "lr_milestones": [4.0, 6.0],
    "lr_gamma": 0.01,
    "alpha_action": 1.0,
    "alpha_region": 1.0,
    "action_loss_norm": "foreground",
    "freeze_stem": True,
}
# The ViT encoders from transformers (VideoMAE, V-JEPA 2) fine-tune with AdamW, whatever the recipe: the SGD
# values above are the TSP paper's for R(2+1)D. Learning rates, weight decay, layer decay and drop path are
# VideoMAE's Kinetics fine-tuning values (AdamW, weight decay 0.05, layer decay 0.75, drop path 0.1; its base
# rate 1e-3 per 256 clips at the 32 clips of a TSP step), the heads 10x the backbone's top rate.
VIT_VALUES: dict[str, object] = {
    "optimizer": "adamw",
    "backbone_lr": 1e-4,
    "fc_lr": 1e-3,
    "weight_decay": 0.05,
    "layer_decay": 0.75,
    "drop_path": 0.1,
}
# Options the downscale factor divides (the scripts' DOWNSCALE_FACTOR).
DOWNSCALED = ("batch_size", "backbone_lr", "fc_lr")
# The one encoder GVFs come from: the Kinetics-pretrained (TAC-on-Kinetics) R(2+1)D-34 the released TSP
# models start from; the maintainer max-pools its clip features.
GVF_ENCODER = "r2plus1d_34-tac_on_kinetics"


@dataclass(frozen=True)
class Recipe:
    """A named set of option values and where they come from."""

    name: str
    source: str  # the original's script (or released file) the values come from
    values: dict[str, object] = field(default_factory=dict)  # what differs from DEFAULTS
    gvf_encoder: str | None = GVF_ENCODER  # the encoder the recipe's GVF file must come from (None: no GVF)
    gvf_pool: str = "max"

    def option_values(self) -> dict[str, object]:
        """Every option's value under this recipe."""
        return {**DEFAULTS, **self.values}


_TAC = {"heads": ["action"]}
RECIPES: dict[str, Recipe] = {r.name: r for r in [
    Recipe("tsp-activitynet", "train/train_tsp_on_activitynet.sh", {"label_map": "activitynet"}),
    Recipe("tac-activitynet", "train/train_tac_on_activitynet.sh", {**_TAC, "label_map": "activitynet"},
           gvf_encoder=None),
    Recipe("tsp-thumos14", "train/train_tsp_on_thumos14.sh", {"label_map": "thumos14", "fc_lr": 4e-3}),
    Recipe("tac-thumos14", "train/train_tac_on_thumos14.sh",
           {**_TAC, "label_map": "thumos14", "backbone_lr": 1e-5}, gvf_encoder=None),
    # Ablations on ActivityNet (paper Table 1, supp. Tables 9 and 10). The original has no script for them:
    # the no-GVF and avg-GVF values are those in the names of the released checkpoints, region-only is
    # train_tsp_on_activitynet.sh with the region label column alone (its one head ignores the GVF).
    Recipe("tsp-activitynet-no-gvf", "released r2plus1d_34-tsp_on_activitynet-no_gvf-...-fc_lr_0.004",
           {"label_map": "activitynet", "no_gvf": True, "fc_lr": 4e-3}, gvf_encoder=None),
    Recipe("tsp-activitynet-avg-gvf", "released r2plus1d_34-tsp_on_activitynet-avg_gvf-...-fc_lr_0.004",
           {"label_map": "activitynet", "fc_lr": 4e-3}, gvf_pool="avg"),
    Recipe("region-only-activitynet", "train/train_tsp_on_activitynet.sh, region label column only",
           {"heads": ["region"]}, gvf_encoder=None),
]}


def recipe_names() -> list[str]:
    """Names accepted by ``--recipe``."""
    return list(RECIPES)


@dataclass
class ResolvedOptions:
    """The value each option ended with and where it came from (``explicit``, the recipe, or ``default``)."""

    recipe: Recipe | None
    downscale: int
    origins: dict[str, str]

    @property
    def gvf_encoder(self) -> str | None:
        """The encoder the recipe's GVF file must come from (None: no recipe, or one without GVF)."""
        return self.recipe.gvf_encoder if self.recipe else None

    def describe(self, config: TrainConfig) -> str:
        """One line listing every hyper-parameter, explicit flags marked with ``*``."""
        head = f"recipe {self.recipe.name} ({self.recipe.source})" if self.recipe else "no recipe (defaults)"
        if self.downscale != 1:
            head += f", downscale factor {self.downscale}"
        values = []
        for key in self.origins:  # DEFAULTS' keys, then the ViT-only ones where they apply
            value = getattr(config, key)
            if isinstance(value, list):
                value = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) or "none"
            elif isinstance(value, float):
                value = f"{value:g}"
            values.append(f"{key}={value}{'*' if self.origins[key] == 'explicit' else ''}")
        return f"{head}; * = explicit flag: " + " ".join(values)


def _backbone_input(backbone: str, keep: dict[str, object]) -> dict[str, object]:
    """Clip length, fps, resize and crop of ``backbone``'s input recipe, except the keys in ``keep``."""
    # Here, not at the top: the weights registry loads torch, and the CLI lists recipes without it.
    from tspvideo.models.weights import default_recipe

    recipe = default_recipe(backbone)
    values = {"clip_len": recipe.clip_len, "fps": recipe.fps, "resize": list(recipe.resize), "crop": recipe.crop[0]}
    return {key: value for key, value in values.items() if key not in keep}


def _backbone_optimisation(backbone: str) -> dict[str, object]:
    """:data:`VIT_VALUES` for the ViT encoders, nothing for the others."""
    from tspvideo.models.hf_registry import is_vit  # no torch needed, but kept with the other lookup

    return dict(VIT_VALUES) if is_vit(backbone) else {}


def apply_recipe(config: TrainConfig) -> tuple[TrainConfig, ResolvedOptions]:
    """``config`` with every option left unset (``None``) filled from its recipe (or the defaults).

    Explicit values are kept as given; ``downscale_factor`` divides the batch size and learning rates
    that come from the recipe or the defaults, not explicit ones. ``config`` itself is not changed.
    """
    name = config.recipe
    if name is not None and name not in RECIPES:
        raise TspVideoError(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}")
    recipe = RECIPES[name] if name else None
    downscale = config.downscale_factor or 1
    if downscale < 1:
        raise TspVideoError(f"--downscale-factor must be at least 1, got {downscale}")
    values = recipe.option_values() if recipe else dict(DEFAULTS)
    # The clip grid and frame sizes the recipe leaves to the backbone: its weights' input recipe
    # (the defaults above for the VideoResNets; see `tspvideo models`).
    backbone = config.backbone or values["backbone"]
    values.update(_backbone_input(backbone, keep=recipe.values if recipe else {}))
    values.update(_backbone_optimisation(backbone))
    if recipe and recipe.gvf_encoder:  # a GVF recipe names its pooling: a file pooled otherwise is refused
        values["gvf_pool"] = recipe.gvf_pool
    origins, filled = {}, {}
    for key, value in values.items():
        if getattr(config, key) is not None:
            origins[key] = "explicit"
            continue
        origins[key] = recipe.name if recipe else "default"
        if key in DOWNSCALED and downscale != 1:
            value = value // downscale if key == "batch_size" else value / downscale
            if value < 1 and key == "batch_size":
                raise TspVideoError(f"--downscale-factor {downscale} leaves a batch of 0 clips")
        filled[key] = list(value) if isinstance(value, list) else value
    return dataclasses.replace(config, **filled), ResolvedOptions(recipe, downscale, origins)
