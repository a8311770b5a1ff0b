"""Preconditioning (CM paper Eq. 7 / Appendix C; EDM Table 1): the boundary condition and the scalings."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import CMStochasticIterativeScheduler

from editing.precond import Denoiser, Parameterization, edm_loss_weight, scalings, time_input

SIGMAS = [0.002, 0.0021, 0.01, 0.1, 0.5, 1.0, 5.38, 20.0, 80.0]


def reference_scalings(sigma: float, boundary: str, smin: float = 0.002, sd: float = 0.5) -> tuple[float, ...]:
    """The formulas written out in float64, independently of editing.precond."""
    shift = smin if boundary == "cm" else 0.0
    c_skip = sd**2 / ((sigma - shift) ** 2 + sd**2)
    c_out = (sigma - shift) * sd / math.sqrt(sigma**2 + sd**2)
    c_in = 1 / math.sqrt(sigma**2 + sd**2)
    return c_skip, c_out, c_in


@pytest.mark.parametrize("boundary", ["cm", "edm"])
def test_scalings_match_formulas(boundary: str) -> None:
    param = Parameterization(boundary=boundary)
    got = scalings(torch.tensor(SIGMAS, dtype=torch.float64), param)
    assert all(c.dtype == torch.float32 for c in got)
    want = torch.tensor([reference_scalings(s, boundary) for s in SIGMAS], dtype=torch.float32).T
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-7)


def test_scalings_match_diffusers() -> None:
    """diffusers' CMStochasticIterativeScheduler is an independent implementation of the same scalings."""
    sched = CMStochasticIterativeScheduler()
    sigma = torch.tensor(SIGMAS, dtype=torch.float32)
    c_skip, c_out, _ = scalings(sigma, Parameterization(boundary="cm"))
    d_skip, d_out = sched.get_scalings_for_boundary_condition(sigma)
    torch.testing.assert_close(c_skip, d_skip, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(c_out, d_out, rtol=1e-6, atol=1e-7)
    e_skip, e_out, _ = scalings(sigma, Parameterization(boundary="cm"), boundary="edm")
    d_skip, d_out = sched.get_scalings(sigma)
    torch.testing.assert_close(e_skip, d_skip, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(e_out, d_out, rtol=1e-6, atol=1e-7)


def test_time_input_matches_diffusers() -> None:
    sched = CMStochasticIterativeScheduler()
    sigma = torch.tensor(SIGMAS, dtype=torch.float64)
    want = torch.from_numpy(sched.sigma_to_t(sigma.numpy())).to(torch.float32)
    torch.testing.assert_close(time_input(sigma, Parameterization()), want, rtol=1e-6, atol=1e-5)


def test_cm_boundary_is_exact(tiny_model: Denoiser) -> None:
    """f(x, sigma_min) = x bit for bit, whatever the network outputs."""
    g = torch.Generator().manual_seed(0)
    x = 3 * torch.randn(2, 3, 16, 16, generator=g)
    labels = torch.tensor([0, 2])
    out = tiny_model(x, tiny_model.param.sigma_min, labels)
    assert torch.equal(out, x)
    # Per-image sigmas, one at the boundary and one not.
    out = tiny_model(x, torch.tensor([0.002, 1.0]), labels)
    assert torch.equal(out[0], x[0])
    assert not torch.allclose(out[1], x[1], atol=1e-3)


def test_cm_boundary_exact_under_bf16_autocast(tiny_model: Denoiser) -> None:
    """The scalings stay fp32 when the network runs in bf16, so the boundary still holds exactly."""
    model = Denoiser(tiny_model.unet, tiny_model.param, autocast_dtype=torch.bfloat16)
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert torch.equal(model(x, 0.002, torch.tensor([1])), x)


def test_edm_boundary_differs(tiny_model: Denoiser) -> None:
    """Without the shift, D(x, sigma_min) = c_skip x + c_out F != x, and D matches its formula."""
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    labels = torch.tensor([0])
    sigma = torch.tensor([0.002])
    edm = tiny_model(x, sigma, labels, boundary="edm")
    assert not torch.equal(edm, x)
    c_skip, c_out, c_in = reference_scalings(0.002, "edm")
    f_raw = tiny_model.network(c_in * x, time_input(sigma, tiny_model.param), labels)
    # Two forward passes of a conv net: fp32 rounding differs by CPU kernel (1.1e-6 seen on AVX-512).
    torch.testing.assert_close(edm, c_skip * x + c_out * f_raw, rtol=1e-5, atol=1e-5)
    # At a large sigma both use the network, with different weights.
    assert not torch.allclose(tiny_model(x, 1.0, labels), tiny_model(x, 1.0, labels, boundary="edm"), atol=1e-4)


def test_denoiser_formula_and_no_mutation(tiny_model: Denoiser) -> None:
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    before = x.clone()
    labels = torch.tensor([1, 1])
    out = tiny_model(x, 2.0, labels)
    assert torch.equal(x, before)
    c_skip, c_out, c_in = reference_scalings(2.0, "cm")
    f_raw = tiny_model.unet(c_in * x, torch.full((2,), 250 * math.log(2.0)), class_labels=labels).sample
    torch.testing.assert_close(out, c_skip * x + c_out * f_raw, rtol=1e-5, atol=1e-5)  # as above


def test_conditional_model_needs_labels(tiny_model: Denoiser) -> None:
    with pytest.raises(ValueError, match="class-conditional"):
        tiny_model(torch.zeros(1, 3, 16, 16), 1.0)


@pytest.mark.parametrize(
    "kwargs",
    [dict(boundary="vp"), dict(sigma_min=0.0), dict(sigma_min=90.0), dict(sigma_data=0.0), dict(rho=-1.0),
     dict(resolution=30, pixel_unshuffle=4), dict(pixel_unshuffle=0)],
)
def test_parameterization_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Parameterization(**kwargs)


def test_parameterization_round_trip() -> None:
    param = Parameterization(boundary="edm", resolution=32, pixel_unshuffle=2, class_names=("a", "b"))
    assert Parameterization.from_dict(param.to_dict()) == param
    with pytest.raises(ValueError, match="unknown"):
        Parameterization.from_dict({**param.to_dict(), "bogus": 1})


def test_edm_loss_weight() -> None:
    sigma = torch.tensor([0.1, 1.0, 10.0])
    c_out = torch.tensor([reference_scalings(float(s), "edm")[1] for s in sigma])
    torch.testing.assert_close(edm_loss_weight(sigma, 0.5) * c_out**2, torch.ones(3))
