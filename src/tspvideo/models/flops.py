"""FLOPs of one clip through a backbone, counted by PyTorch's FLOP counter on shapes only."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from tspvideo.models.backbones import build_on_meta, check_input_size


def clip_gflops(backbone: str, clip_len: int, crop: tuple[int, int]) -> float:
    """GFLOPs of the backbone's forward pass on one ``clip_len x crop`` clip.

    Counts a multiply-add as 2 FLOPs (``torch.utils.flop_counter``'s convention); torchvision's
    weight tables (``_ops``) count it as 1 and quote 16-frame clips. Runs on the ``meta`` device: no
    weights are needed and it takes well under a second.
    """
    model = build_on_meta(backbone)
    try:
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(1, 3, clip_len, crop[0], crop[1], device="meta"))
    except RuntimeError:
        check_input_size(backbone, clip_len, crop)  # raises the clear error
        raise
    return counter.get_total_flops() / 1e9


# clip_gflops at each backbone's default recipe (tspvideo.models.weights.default_recipe), stored so that
# `tspvideo models` lists them instantly; a test recomputes every value.
RECIPE_GFLOPS = {
    "r2plus1d_34": 152.4, "r2plus1d_18": 81.0, "r3d_18": 81.4, "s3d": 287.7, "mvit_v2_s": 128.4,
    "swin3d_t": 175.5, "swin3d_s": 331.4, "swin3d_b": 562.7, "c3d_tiny": 1.6,
    "videomae_b": 360.7, "videomae_b_ft": 360.7, "videomae_l": 1193.7, "videomae_l_ft": 1193.7,
    "vjepa2_vitl": 11570.6, "videomae_tiny": 0.0, "vjepa2_tiny": 0.0,
}
