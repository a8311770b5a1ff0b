"""Section 4, scaling: ms per evaluation against batch size, and against resolution up to a 256x256 UNet of the
official LSUN-bedroom consistency-distillation configuration (random weights), to show what needs a GPU."""

from __future__ import annotations

import torch
from diffusers import UNet2DModel

from benchmarks.common import Budget, Table, time_ms
from benchmarks.speed import count_flops, inputs
from editing.precond import Denoiser, Parameterization
from training.nets import build_unet

# diffusers' scripts/convert_consistency_to_diffusers.py, LSUN_256_UNET_CONFIG (openai/diffusers-cd_bedroom256_*).
LSUN_256_UNET_CONFIG: dict = {
    "sample_size": 256,
    "in_channels": 3,
    "out_channels": 3,
    "layers_per_block": 2,
    "num_class_embeds": None,
    "block_out_channels": [256, 256, 512, 512, 1024, 1024],
    "attention_head_dim": 64,
    "down_block_types": ["ResnetDownsampleBlock2D"] * 3 + ["AttnDownBlock2D"] * 3,
    "up_block_types": ["AttnUpBlock2D"] * 3 + ["ResnetUpsampleBlock2D"] * 3,
    "resnet_time_scale_shift": "default",
    "upsample_type": "resnet",
    "downsample_type": "resnet",
}


def batch_table(model: Denoiser, device: torch.device, budget: Budget, model_name: str, runtime_note: str) -> Table:
    """ms per evaluation and images per second against batch size, the app's runtime."""
    table = Table("scaling_batch", f"Time per evaluation vs batch size ({model_name}, {runtime_note})",
                  ["batch", "ms / eval", "ms / image", "images / s (1 step)"])
    for batch in budget.scaling_batches:
        x, sigma, labels = inputs(model, batch, device)
        ms = time_ms(lambda: model(x, sigma, labels), device, budget.reps)
        table.add(batch, ms, ms / batch, 1e3 * batch / ms)
    return table


def random_denoiser(unet: UNet2DModel, param: Parameterization, device: torch.device,
                    autocast: torch.dtype | None, weight_dtype: torch.dtype) -> Denoiser:
    unet = unet.to(device) if weight_dtype == torch.float32 else unet.to(device=device, dtype=weight_dtype)
    unet = unet.eval().requires_grad_(False)
    return Denoiser(unet, param, autocast)


def lsun_flops() -> tuple[int, int]:
    """Parameters and FLOPs of one batch-1 evaluation of the 256x256 bedroom UNet, counted on the meta device."""
    with torch.device("meta"):
        unet = UNet2DModel(**LSUN_256_UNET_CONFIG).eval().requires_grad_(False)
        x = torch.zeros(1, 3, 256, 256)
        t = torch.zeros(1)
    params = sum(p.numel() for p in unet.parameters())
    return params, count_flops(lambda: unet(x, t))


def resolution_table(model: Denoiser | None, device: torch.device, budget: Budget,
                     autocast: torch.dtype | None, weight_dtype: torch.dtype, runtime_note: str,
                     model_name: str = "shipped model") -> Table:
    """One batch-1 evaluation at 32 (the shipped model), 64 (same preset, random) and 256 (bedroom CD config)."""
    table = Table("scaling_resolution", f"Time per evaluation vs resolution (batch 1, {runtime_note})",
                  ["network", "resolution", "parameters (M)", "GFLOP / eval", "ms / eval", "GFLOP/s", "measured"])
    rate = None
    nets: list[tuple[str, Denoiser]] = []
    if model is not None:
        nets.append((model_name, model))
    torch.manual_seed(0)  # random weights only; their values do not change the timing
    for res in (32, 64):
        if model is not None and model.param.resolution == res:
            continue
        unet, k = build_unet("emoji-s5", res, 3)
        param = Parameterization(resolution=res, pixel_unshuffle=k, class_names=("a", "b", "c"))
        nets.append(("emoji-s5 preset, random weights", random_denoiser(unet, param, device, autocast, weight_dtype)))
    for name, net in nets:
        x, sigma, labels = inputs(net, 1, device)
        ms = time_ms(lambda: net(x, sigma, labels), device, budget.reps)
        flops = count_flops(lambda: net(x, sigma, labels))
        rate = flops / (ms / 1e3) / 1e9
        params = sum(p.numel() for p in net.unet.parameters()) / 1e6
        table.add(name, net.param.resolution, params, flops / 1e9, ms, rate, "yes")
    params, flops = lsun_flops()
    if budget.measure_256:
        unet = UNet2DModel(**LSUN_256_UNET_CONFIG)
        net = random_denoiser(unet, Parameterization(resolution=256), device, autocast, weight_dtype)
        x, sigma, _ = inputs(net, 1, device)
        ms = time_ms(lambda: net(x, sigma), device, reps=1)
        table.add("LSUN bedroom CD UNet, random weights", 256, params / 1e6, flops / 1e9, ms,
                  flops / (ms / 1e3) / 1e9, "yes (one evaluation)")
        del net, unet
    elif rate:
        table.add("LSUN bedroom CD UNet, random weights", 256, params / 1e6, flops / 1e9,
                  flops / (rate * 1e9) * 1e3, rate, "no: FLOPs / the 64px rate")
    table.notes.append("The 256x256 network is diffusers' conversion config of OpenAI's cd_bedroom256 "
                       "(LSUN_256_UNET_CONFIG); its FLOPs are counted on the meta device.")
    return table
