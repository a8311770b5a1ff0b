"""The one editing loop: iterative replacement (CM paper, Algorithm 4). Every edit is an operator here."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from editing.feasible import project_feasible
from editing.operators import Identity, Operator, replace
from editing.samplers import Callback, Denoise, randn, sample_consistency


@torch.inference_mode()
def iterative_replacement(
    denoise: Denoise,
    y: torch.Tensor,
    operator: Operator,
    sigmas: torch.Tensor,
    generators: Sequence[torch.Generator],
    *,
    sigma_min: float,
    x: torch.Tensor | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Algorithm 4: denoise, overwrite the measured part with y's (A x = A y), re-noise; for each sigma.

    1. y <- A^-1[(A y) on the measured coefficients, 0 elsewhere]; x <- y + sigma_0 z, unless the caller
       gives the start `x` (stroke editing starts from the whole painting, interpolation from a blend).
    2. Then Algorithm 1, with the replacement applied to every x0.
    3. The last x0 is moved to the nearest point of [-1, 1] with A x = A y (editing.feasible).
    """
    if y.ndim != 4:
        raise ValueError(f"y must be a (B, C, H, W) batch, got shape {tuple(y.shape)}")
    y = y.to(torch.float32)
    if x is None:
        start = replace(operator, torch.zeros_like(y), y)
        x = start + float(sigmas[0]) * randn(y.shape, generators, y.device)
    if isinstance(operator, Identity):
        project = None  # nothing is measured: skip two no-op transforms per step
    else:
        def project(x0: torch.Tensor) -> torch.Tensor:
            return replace(operator, x0, y)
    x0 = sample_consistency(
        denoise, x, sigmas, generators, sigma_min=sigma_min, project=project, callback=callback
    )
    # 3. The saved result must lie in [-1, 1] too, else clipping it moves A x (editing.feasible).
    return x0 if project is None else project_feasible(operator, x0, y)
