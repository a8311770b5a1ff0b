"""UNet configurations, chosen by measured training throughput on 2 CPU cores (bf16 autocast, batch 64).

Measured here (training/NOTES in the model card): the pixel-unshuffled 16x16x12 UNets run 2-3x faster
than a 32x32x3 UNet of the same parameter count, because the widest, most expensive level works on a
quarter of the positions; attention with head dim 32 and the math SDPA kernel beat the defaults.
"""

from __future__ import annotations

from diffusers import UNet2DModel

# name -> (UNet2DModel kwargs without channels/size/classes, pixel_unshuffle)
PRESETS: dict[str, tuple[dict, int]] = {
    # 9.8M parameters, 85 img/s training at 32x32 (16x16x12 inside): the shipped emoji model.
    "emoji-s5": (
        dict(
            block_out_channels=(96, 128, 160),
            layers_per_block=2,
            attention_head_dim=32,
            down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        ),
        2,
    ),
    # 8.2M parameters for 64x64 photo tiles (32x32x12 inside): four levels, one block each, attention only
    # at 4x4, so the full-resolution level is cheap; per-pixel cost decides the speed of tiled photo edits.
    "photo-s": (
        dict(
            block_out_channels=(64, 96, 128, 192),
            layers_per_block=1,
            attention_head_dim=32,
            down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"),
        ),
        2,
    ),
    # A few thousand parameters, for tests.
    "tiny": (
        dict(
            block_out_channels=(16, 32),
            layers_per_block=1,
            attention_head_dim=8,
            norm_num_groups=8,
            down_block_types=("DownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        ),
        1,
    ),
}


def build_unet(preset: str, resolution: int, num_classes: int, dropout: float = 0.0) -> tuple[UNet2DModel, int]:
    """A fresh UNet2DModel for `preset` and its pixel_unshuffle factor."""
    if preset not in PRESETS:
        raise ValueError(f"unknown UNet preset {preset!r}; choose from {sorted(PRESETS)}")
    kwargs, unshuffle = PRESETS[preset]
    channels = 3 * unshuffle**2
    unet = UNet2DModel(
        sample_size=resolution // unshuffle,
        in_channels=channels,
        out_channels=channels,
        num_class_embeds=num_classes or None,
        dropout=dropout,
        **kwargs,
    )
    return unet, unshuffle
