"""Samplers: consistency multistep sampling (Algorithm 1) and EDM's Heun sampler for the diffusion baseline.

Every model sits behind one contract, `denoise(x, sigma) -> x0` (k-diffusion's), with class labels
bound by the caller. Randomness comes from one torch.Generator per image, so an image depends on its
own seed only, never on the batch it was drawn in (NVlabs/edm's `StackedRandomGenerator`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from editing.precond import Denoiser

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x, sigma per image) -> x0
Callback = Callable[["Step"], None]


@dataclass(frozen=True)
class Step:
    """What a sampler reports after each network evaluation (for progress bars and previews)."""

    index: int  # 0-based evaluation index
    total: int  # evaluations in the whole run
    sigma: float
    x0: torch.Tensor  # the current estimate of the clean image, in [-1, 1]
    x: torch.Tensor | None = None  # the state the network was evaluated at (Heun: the PF-ODE path at sigma)


def generators_for(seeds: Sequence[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One generator per image, seeded with its own seed."""
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


def randn(shape: Sequence[int], generators: Sequence[torch.Generator], device: torch.device | str = "cpu") -> torch.Tensor:
    """A (B, ...) standard normal tensor whose b-th image is drawn from generators[b] only."""
    if len(generators) != shape[0]:
        raise ValueError(f"need one generator per image: {len(generators)} generators for batch {shape[0]}")
    # Draw on each generator's own device, then move: CPU generators give the same images on any device.
    return torch.stack([torch.randn(tuple(shape[1:]), generator=g, device=g.device) for g in generators]).to(device)


def bind(model: Denoiser, class_labels: torch.Tensor | None = None) -> Denoise:
    """The consistency function (or denoiser) with class labels bound: denoise(x, sigma) -> x0.

    One label (shape (1,)) is broadcast to any batch, so the result can be called on batches of tiles.
    """

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        labels = class_labels
        if labels is not None and labels.shape[0] == 1 and x.shape[0] != 1:
            labels = labels.expand(x.shape[0])
        return model(x, sigma, labels)

    return denoise


@torch.inference_mode()
def sample_consistency(
    denoise: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    generators: Sequence[torch.Generator],
    *,
    sigma_min: float,
    project: Callable[[torch.Tensor], torch.Tensor] | None = None,
    callback: Callback | None = None,
    clip: bool = True,
) -> torch.Tensor:
    """Multistep consistency sampling (CM paper, Algorithm 1); one step when len(sigmas) == 2.

    `x` is the start, sigma_0 * z for generation; `sigmas` holds the level of each evaluation followed
    by the final level (sigma_min: no noise added after the last evaluation). `project`, applied to
    every x0, is the replacement step that turns this loop into Algorithm 4 (see editing.solver).
    """
    sigmas = sigmas.to(torch.float32)
    total = len(sigmas) - 1
    ones = x.new_ones(x.shape[0], dtype=torch.float32)
    x0 = x
    for i in range(total):
        # 1. Jump to the trajectory's origin.
        x0 = denoise(x, sigmas[i] * ones)
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
        if project is not None:
            x0 = project(x0)
        if callback is not None:
            callback(Step(i, total, float(sigmas[i]), x0, x))
        # 2. Re-inject noise at the next level: x = x0 + sqrt(sigma_next^2 - sigma_min^2) z.
        if i + 1 < total:
            z = randn(x.shape, generators, x.device)
            x = x0 + (sigmas[i + 1] ** 2 - sigma_min**2).clamp_min(0).sqrt() * z
    return x0


@torch.inference_mode()
def sample_heun(
    denoise: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    callback: Callback | None = None,
    clip: bool = True,
) -> torch.Tensor:
    """EDM's deterministic Heun sampler (Karras et al. 2022, Algorithm 1, S_churn = 0) to sigma = 0.

    `sigmas` is the descending grid without the final 0; N levels cost 2N - 1 evaluations.
    """
    sigmas = torch.cat([sigmas.to(torch.float32), sigmas.new_zeros(1, dtype=torch.float32)])
    n = len(sigmas) - 1
    total = 2 * n - 1
    ones = x.new_ones(x.shape[0], dtype=torch.float32)
    evaluations = 0
    for i in range(n):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        # 1. Euler step of dx/dsigma = (x - D(x, sigma)) / sigma.
        x0 = denoise(x, sigma * ones)
        d = (x - x0) / sigma
        x_next = x + (sigma_next - sigma) * d
        evaluations += 1
        # 2. Heun's correction, except on the last step to sigma = 0.
        if sigma_next > 0:
            x0_next = denoise(x_next, sigma_next * ones)
            d_next = (x_next - x0_next) / sigma_next
            x_next = x + (sigma_next - sigma) * 0.5 * (d + d_next)
            evaluations += 1
        if callback is not None:
            callback(Step(evaluations - 1, total, float(sigma), x0.clamp(-1.0, 1.0), x))
        x = x_next
    return x.clamp(-1.0, 1.0) if clip else x
