"""UNet configurations, chosen by measured training throughput on 2 CPU cores (the model cards give the numbers):
pixel-unshuffled input, because the widest level then works on a quarter of the positions."""

from __future__ import annotations

import torch
from diffusers import UNet2DModel

from editing.precond import Denoiser, Parameterization

# name -> (UNet2DModel kwargs without channels/size/classes, pixel_unshuffle)
PRESETS: dict[str, tuple[dict, int]] = {
    # 9.8M parameters at 32x32 (16x16x12 inside): the shipped emoji model.
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


def build_unet(preset: str, resolution: int, num_classes: int, dropout: float = 0.0,
               pixel_unshuffle: int | None = None) -> tuple[UNet2DModel, int]:
    """A fresh UNet2DModel for `preset` and its pixel_unshuffle factor (the preset's unless given)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown UNet preset {preset!r}; choose from {sorted(PRESETS)}")
    kwargs, unshuffle = PRESETS[preset]
    unshuffle = unshuffle if pixel_unshuffle is None else pixel_unshuffle
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


def random_unet(preset: str, resolution: int, num_classes: int, seed: int, perturb: float = 0.0,
                pixel_unshuffle: int | None = None) -> tuple[UNet2DModel, int]:
    """build_unet with weights from `seed` alone, plus `perturb` times N(0, 1) on every weight (diffusers
    zero-initialises the output conv, so an unperturbed random net ignores its input). For tests and benchmarks;
    the global generator is left as it was."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        unet, unshuffle = build_unet(preset, resolution, num_classes, pixel_unshuffle=pixel_unshuffle)
        if perturb:
            with torch.no_grad():
                for p in unet.parameters():
                    p.add_(perturb * torch.randn_like(p))
    return unet, unshuffle


def random_denoiser(preset: str, resolution: int, classes: tuple[str, ...], seed: int = 0, perturb: float = 0.0,
                    boundary: str = "cm", pixel_unshuffle: int | None = None) -> Denoiser:
    """random_unet behind a Denoiser of that resolution and those classes (fp32, no autocast)."""
    unet, unshuffle = random_unet(preset, resolution, len(classes), seed, perturb, pixel_unshuffle)
    return Denoiser(unet, Parameterization(boundary=boundary, resolution=resolution, pixel_unshuffle=unshuffle,
                                           class_names=classes))
