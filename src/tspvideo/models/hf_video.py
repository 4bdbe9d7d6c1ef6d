"""VideoMAE and V-JEPA 2 encoders from ``transformers`` as tspvideo backbones (``[B, 3, T, H, W]`` -> ``[B, D]``).

The wrapper holds ``transformers``' own modules under their own names (``videomae.*`` and ``fc_norm`` for
VideoMAE, ``encoder.*`` for V-JEPA 2, whose pretraining predictor is left out), so a checkpoint folder's weights
map onto it one to one. Its forward computes the clip feature its registered name defines
(:mod:`tspvideo.models.hf_registry`).
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from tspvideo.core.errors import TspVideoError
from tspvideo.models.hf_registry import EXTRA_MESSAGE, VIDEOMAE, HFSpec


def require_transformers():
    """The ``transformers`` module; a one-line error naming the extra when it is not installed."""
    try:
        import transformers
    except ImportError as error:
        raise TspVideoError(EXTRA_MESSAGE) from error
    return transformers


def hf_config(spec: HFSpec, **overrides):
    """The ``transformers`` config of ``spec``'s architecture."""
    transformers = require_transformers()
    config_class = transformers.VideoMAEConfig if spec.family == VIDEOMAE else transformers.VJEPA2Config
    return config_class(**{**spec.arch, **overrides})


class HFVideoEncoder(nn.Module):
    """A ``transformers`` video encoder whose forward returns the clip feature of its spec.

    ``videomae`` (VideoMAE) or ``encoder`` (V-JEPA 2) is ``transformers``' module; ``fc_norm`` the fine-tuned
    VideoMAE's layer norm over the mean token (its classifier's input).
    """

    def __init__(self, spec: HFSpec, body: nn.Module, fc_norm: nn.LayerNorm | None = None) -> None:
        super().__init__()
        self.spec_name = spec.name
        self.family = spec.family
        if spec.family == VIDEOMAE:
            self.videomae = body
        else:
            self.encoder = body
        self.fc_norm = fc_norm

    def blocks(self) -> list[nn.Module]:
        """The transformer blocks, first to last."""
        body = self.videomae if self.family == VIDEOMAE else self.encoder
        return list((body.encoder if self.family == VIDEOMAE else body).layer)

    def tokens(self, clips: torch.Tensor) -> torch.Tensor:
        """The last layer's tokens ``[B, N, D]`` of clips ``[B, 3, T, H, W]`` (after the final norm, if any)."""
        pixels = clips.transpose(1, 2)  # transformers takes [B, T, 3, H, W]
        if self.family == VIDEOMAE:
            return self.videomae(pixel_values=pixels).last_hidden_state
        return self.encoder(pixel_values_videos=pixels).last_hidden_state

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Clip features ``[B, D]``: the mean token (through ``fc_norm`` where the checkpoint has one)."""
        feature = self.tokens(clips).mean(dim=1)
        return self.fc_norm(feature) if self.fc_norm is not None else feature


def build_encoder(spec: HFSpec, config=None) -> HFVideoEncoder:
    """``spec``'s encoder with random weights (``config``: a checkpoint's own config, else the spec's)."""
    transformers = require_transformers()
    config = config if config is not None else hf_config(spec)
    config._attn_implementation = "sdpa"  # the same kernels whatever transformers' default is
    if spec.family == VIDEOMAE:
        fc_norm = nn.LayerNorm(config.hidden_size) if spec.pooling == "fc_norm" else None  # eps 1e-5, as theirs
        return HFVideoEncoder(spec, transformers.VideoMAEModel(config), fc_norm)
    return HFVideoEncoder(spec, _vjepa2_encoder(transformers, config))


def _vjepa2_encoder(transformers, config) -> nn.Module:
    """V-JEPA 2's encoder alone (the pretraining predictor is not built), initialised as ``VJEPA2Model`` does:
    linear and convolution weights truncated-normal with the config's ``initializer_range``, biases 0."""
    from transformers.models.vjepa2.modeling_vjepa2 import VJEPA2Encoder

    encoder = VJEPA2Encoder(config)
    for module in encoder.modules():
        if isinstance(module, (nn.Linear, nn.Conv3d)):
            nn.init.trunc_normal_(module.weight, std=config.initializer_range)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return encoder


# ----------------------------------------------------------------------------------------------------
# Drop path (stochastic depth)
# ----------------------------------------------------------------------------------------------------


class DropPath(nn.Module):
    """Drop a residual branch for a whole sample with probability ``rate`` in training (rescaled to keep the mean)."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = float(rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rate == 0.0 or not self.training:
            return x
        keep = 1.0 - self.rate
        mask = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"rate={self.rate:g}"


def set_drop_path(encoder: HFVideoEncoder, rate: float) -> list[float]:
    """Stochastic depth rising linearly from 0 at the first block to ``rate`` at the last (VideoMAE's and
    V-JEPA 2's rule); returns the rates. Parameters do not change, so checkpoints load either way."""
    if not 0.0 <= rate < 1.0:
        raise TspVideoError(f"--drop-path must be in [0, 1), got {rate:g}")
    blocks = encoder.blocks()
    rates = [rate * i / (len(blocks) - 1) if len(blocks) > 1 else 0.0 for i in range(len(blocks))]
    for block, block_rate in zip(blocks, rates, strict=True):
        block.drop_path = DropPath(block_rate).train(block.training)  # a new module would be in training mode
        if encoder.family == VIDEOMAE:  # transformers' VideoMAE block has no drop path: ours adds it
            block.forward = functools.partial(_videomae_block_forward, block)
    return rates


def _videomae_block_forward(block: nn.Module, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """transformers' ``VideoMAELayer.forward`` with drop path on both residual branches."""
    attention = block.attention(block.layernorm_before(hidden_states), **kwargs)
    hidden_states = hidden_states + block.drop_path(attention)
    mlp = block.output.dropout(block.output.dense(block.intermediate(block.layernorm_after(hidden_states))))
    return hidden_states + block.drop_path(mlp)
