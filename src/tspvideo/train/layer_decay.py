"""Parameter groups of a ViT encoder's fine-tuning: layer-wise learning-rate decay and the blocks that train.

Block ``i`` of ``L`` learns at ``backbone_lr * layer_decay ** (L - i)``, the embeddings at
``backbone_lr * layer_decay ** (L + 1)``, the final norms (and VideoMAE's ``fc_norm``) at ``backbone_lr``: the
layers nearest the input, which hold the most general features, move least (BEiT's rule, used by VideoMAE's and
V-JEPA 2's fine-tuning). ``train_blocks = N`` trains the last N blocks and the final norms and freezes the rest.
"""

from __future__ import annotations

from torch import nn

from tspvideo.core.errors import TspVideoError
from tspvideo.models.hf_registry import HFSpec, is_vit, vit_names


def vit_parameter_groups(model: nn.Module, spec: HFSpec, backbone_lr: float, fc_lr: float, freeze_stem: bool,
                         layer_decay: float | None = None, train_blocks: int | None = None) -> list[dict]:
    """One group per depth that trains (``layer_decay`` ``None``: every depth at ``backbone_lr``) and the heads.

    The groups are ordered: the top (final norms, ``backbone_lr``), the heads, then the blocks from the last to the
    embeddings, so that the first two are the backbone's and the heads' rates as for the other backbones. Frozen
    parameters (the stem with ``freeze_stem``, the blocks below the last ``train_blocks``) get no gradient.
    """
    decay = 1.0 if layer_decay is None else float(layer_decay)
    if not 0.0 < decay <= 1.0:
        raise TspVideoError(f"--layer-decay must be in (0, 1], got {decay:g}")
    top = spec.num_layers + 1
    if train_blocks is not None and not 0 <= train_blocks <= spec.num_layers:
        raise TspVideoError(f"--train-blocks must be between 0 and {spec.num_layers} ({spec.name} has "
                            f"{spec.num_layers} blocks), got {train_blocks}")
    lowest = 0 if train_blocks is None else top - train_blocks  # depths below it are frozen
    stem = tuple(f"features.{prefix}" for prefix in spec.stem_prefixes)
    by_depth: dict[int, list[nn.Parameter]] = {}
    heads = []
    for name, param in model.named_parameters():
        if not name.startswith("features."):
            heads.append(param)
            continue
        depth = spec.layer_id(name.removeprefix("features."))
        if (freeze_stem and name.startswith(stem)) or depth < lowest:
            param.requires_grad_(False)
            continue
        by_depth.setdefault(depth, []).append(param)
    groups = [{"params": by_depth.get(top, []), "lr": backbone_lr, "name": "backbone"},
              {"params": heads, "lr": fc_lr, "name": "heads"}]
    for depth in sorted((d for d in by_depth if d != top), reverse=True):
        groups.append({"params": by_depth[depth], "lr": backbone_lr * decay ** (top - depth),
                       "name": f"backbone.depth{depth}"})
    return groups


def check_vit_options(backbone: str, layer_decay: float | None, drop_path: float | None,
                      train_blocks: int | None) -> None:
    """Refuse the ViT-only options for another backbone (they would silently do nothing)."""
    if is_vit(backbone):
        return
    given = [flag for flag, value in (("--layer-decay", layer_decay), ("--drop-path", drop_path),
                                      ("--train-blocks", train_blocks)) if value is not None]
    if given:
        raise TspVideoError(f"{', '.join(given)} apply to the ViT backbones ({', '.join(vit_names())}), "
                            f"not {backbone}")
