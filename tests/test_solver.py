"""Iterative replacement (CM paper, Algorithm 4): after the solver, A x = A y on the tiny model.

The measurements are recomputed here from their definitions (pixels, BT.601 luma, block means), not
through editing.operators, so an operator that measured the wrong thing would fail.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from editing import tasks
from editing.operators import Colorize, Identity, Inpaint, SuperResolve, measurement
from editing.precond import Denoiser
from editing.samplers import bind, generators_for
from editing.schedules import PRESETS, Schedule
from editing.solver import iterative_replacement

TOL = 1 / 255  # the acceptance bound
EXACT = 1e-4  # what fp32 actually achieves: a slightly wrong operator fails here
SHORT = Schedule((0, 6, 12, 17), 18)  # 3 evaluations: enough to exercise re-noising, fast


def reference(seed: int = 0) -> torch.Tensor:
    """A smooth image in [-1, 1] with colour."""
    g = torch.Generator().manual_seed(seed)
    return torch.tanh(F.interpolate(torch.randn(1, 3, 4, 4, generator=g), size=16, mode="bilinear"))


def luma(x: torch.Tensor) -> torch.Tensor:
    return 0.2989 * x[:, 0] + 0.5870 * x[:, 1] + 0.1140 * x[:, 2]


@pytest.mark.parametrize("schedule", [SHORT, PRESETS["editing 18"]], ids=["3steps", "editing18"])
def test_inpaint_keeps_unmasked_pixels(tiny_model: Denoiser, schedule: Schedule) -> None:
    y = reference(0)
    mask = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    mask[..., 3:11, 5:13] = True
    out = tasks.inpaint(tiny_model, y, mask, [0, 1], schedule=schedule, label=0)
    assert out.shape == (2, 3, 16, 16)
    keep = ~mask.expand(2, 3, 16, 16)
    assert (out - y)[keep].abs().max().item() <= TOL
    assert torch.equal(out[keep], y.expand(2, -1, -1, -1)[keep])  # Q = I: bit for bit
    # The hole is the model's: it changes, and differs between seeds.
    assert (out - y)[~keep].abs().max().item() > 0.05
    assert (out[0] - out[1])[~keep[0]].abs().max().item() > 1e-3


@pytest.mark.parametrize("schedule", [SHORT, PRESETS["editing 18"]], ids=["3steps", "editing18"])
def test_colorize_keeps_luma(tiny_model: Denoiser, schedule: Schedule) -> None:
    y = reference(1)
    out = tasks.colorize(tiny_model, y, [0, 1], schedule=schedule, label=1)
    assert (luma(out) - luma(y)).abs().max().item() <= TOL
    assert (luma(out) - luma(y)).abs().max().item() <= EXACT
    # Chroma is the model's: the colours change.
    assert (out - y).abs().max().item() > 0.05


@pytest.mark.parametrize("factor", [2, 4])
def test_superresolve_keeps_block_means(tiny_model: Denoiser, factor: int) -> None:
    low = reference(2)[..., ::factor, ::factor].contiguous()
    out = tasks.superresolve(tiny_model, low, factor, [0, 1], schedule=SHORT, label=2)
    assert out.shape == (2, 3, 16, 16)
    assert (F.avg_pool2d(out, factor) - low).abs().max().item() <= TOL
    assert (F.avg_pool2d(out, factor) - low).abs().max().item() <= EXACT
    # Detail inside the blocks is the model's.
    up = F.interpolate(low, scale_factor=factor, mode="nearest")
    assert (out - up).abs().max().item() > 0.05


@pytest.mark.parametrize("operator", [Colorize(), SuperResolve(2), SuperResolve(8), Identity()],
                         ids=["colorize", "sr2", "sr8", "identity"])
def test_solver_measurement_is_kept(tiny_model: Denoiser, operator) -> None:
    y = reference(3).expand(2, -1, -1, -1)
    denoise = bind(tiny_model, torch.tensor([0, 0]))
    sigmas = SHORT.sigmas().to(torch.float32)
    out = iterative_replacement(denoise, y, operator, sigmas, generators_for([4, 5]), sigma_min=0.002)
    assert (measurement(operator, out) - measurement(operator, y)).abs().max().item() <= TOL


def test_solver_starts_from_y_plus_noise(tiny_model: Denoiser) -> None:
    """Step 1 of Algorithm 4: x = A^-1[A y, 0] + sigma_0 z; seen by the first evaluation."""
    y = reference(4)
    mask = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    mask[..., :8, :] = True
    op = Inpaint(mask)
    seen: list[torch.Tensor] = []

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        seen.append(x.clone())
        return torch.zeros_like(x)

    sigmas = SHORT.sigmas().to(torch.float32)
    iterative_replacement(denoise, y, op, sigmas, generators_for([9]), sigma_min=0.002)
    z = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(9))
    start = torch.where(mask, torch.zeros_like(y), y)
    torch.testing.assert_close(seen[0], start + sigmas[0] * z)
    assert len(seen) == SHORT.evaluations


def test_solver_rejects_unbatched(tiny_model: Denoiser) -> None:
    with pytest.raises(ValueError, match="batch"):
        iterative_replacement(bind(tiny_model, torch.tensor([0])), torch.zeros(3, 16, 16), Colorize(),
                              SHORT.sigmas().float(), generators_for([0]), sigma_min=0.002)


def test_edit_same_image_at_any_batch_size(tiny_model: Denoiser) -> None:
    y = reference(5)
    alone = tasks.colorize(tiny_model, y, [21], schedule=SHORT, label=0)
    batch = tasks.colorize(tiny_model, y, [20, 21, 22, 23], schedule=SHORT, label=0)
    assert (alone[0] - batch[1]).abs().max().item() < 1e-5
