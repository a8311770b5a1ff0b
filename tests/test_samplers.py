"""Samplers: Algorithm 1 against diffusers' ConsistencyModelPipeline, per-image generators, EDM Heun."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import CMStochasticIterativeScheduler, ConsistencyModelPipeline

from editing import tasks
from editing.models import Runtime, load_model
from editing.precond import Denoiser
from editing.samplers import Step, generators_for, randn, sample_consistency, sample_heun
from editing.schedules import PRESETS, Schedule, karras_sigmas, uniform
from tests.conftest import make_tiny_folder


@pytest.fixture(scope="module")
def uncond_model(tmp_path_factory: pytest.TempPathFactory, cpu_runtime: Runtime) -> Denoiser:
    folder = make_tiny_folder(tmp_path_factory.mktemp("models") / "tiny-uncond", classes=(), seed=1)
    model = load_model(folder, cpu_runtime)
    assert model.param.pixel_unshuffle == 1 and not model.param.class_names
    return model


def diffusers_sample(model: Denoiser, schedule: Schedule, seeds: list[int], label: int | None,
                     one_step_by_count: bool = False) -> torch.Tensor:
    """The same UNet and seeds through diffusers' pipeline; images in [0, 1]."""
    p = model.param
    scheduler = CMStochasticIterativeScheduler(
        num_train_timesteps=schedule.n, sigma_min=p.sigma_min, sigma_max=p.sigma_max, sigma_data=p.sigma_data,
        rho=p.rho, clip_denoised=True,
    )
    pipe = ConsistencyModelPipeline(unet=model.unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    # diffusers wants the evaluated indices descending, without the final one (sigma_min is appended).
    timesteps = list(reversed(schedule.ts[:-1]))
    steps = {"num_inference_steps": 1} if one_step_by_count else {"num_inference_steps": None, "timesteps": timesteps}
    labels = None if label is None else torch.full((len(seeds),), label, dtype=torch.long)
    out = pipe(batch_size=len(seeds), class_labels=labels, generator=generators_for(seeds), output_type="pt", **steps)
    return out.images


def test_timesteps_convention() -> None:
    scheduler = CMStochasticIterativeScheduler(num_train_timesteps=40)
    scheduler.set_timesteps(timesteps=[22, 0])
    want = PRESETS["ImageNet64 CD 2-step"].sigmas().to(torch.float32)
    torch.testing.assert_close(scheduler.sigmas, want)


@pytest.mark.parametrize("conditional", [False, True], ids=["uncond", "cond"])
@pytest.mark.parametrize(
    "schedule", [PRESETS["1 step"], PRESETS["ImageNet64 CD 2-step"], PRESETS["LSUN bedroom CD 2-step"], uniform(4, 40),
                 Schedule((0, 3, 9, 17), 18)],
    ids=["1step", "0-22-39", "0-17-39", "4steps", "grid18"],
)
def test_matches_diffusers_pipeline(conditional: bool, schedule: Schedule, tiny_model: Denoiser,
                                    uncond_model: Denoiser) -> None:
    model, label = (tiny_model, 2) if conditional else (uncond_model, None)
    seeds = [3, 11]
    ours = (tasks.generate(model, seeds, schedule=schedule, label=label) + 1) / 2
    theirs = diffusers_sample(model, schedule, seeds, label)
    assert ours.shape == theirs.shape == (2, 3, 16, 16)
    assert (ours - theirs).abs().max().item() < 1e-5
    # Different seeds give different images (the comparison is not vacuous).
    assert (ours[0] - ours[1]).abs().max() > 1e-2


def test_one_step_matches_diffusers_step_count(tiny_model: Denoiser) -> None:
    ours = (tasks.generate(tiny_model, [5], label=0) + 1) / 2
    theirs = diffusers_sample(tiny_model, PRESETS["1 step"], [5], 0, one_step_by_count=True)
    assert (ours - theirs).abs().max().item() < 1e-5


@pytest.mark.parametrize("schedule", [PRESETS["1 step"], PRESETS["ImageNet64 CD 2-step"]], ids=["1step", "2step"])
def test_seed_gives_same_image_at_any_batch_size(tiny_model: Denoiser, schedule: Schedule) -> None:
    alone = tasks.generate(tiny_model, [42], schedule=schedule, label=1)
    batch = tasks.generate(tiny_model, [7, 42, 8, 9], schedule=schedule, label=1)
    assert batch.shape == (4, 3, 16, 16)
    assert (alone[0] - batch[1]).abs().max().item() < 1e-5
    assert not torch.allclose(batch[0], batch[1], atol=1e-3)


def test_randn_per_image_generators() -> None:
    x = randn((3, 2, 4, 4), generators_for([1, 2, 1]))
    assert torch.equal(x[0], x[2]) and not torch.equal(x[0], x[1])
    assert torch.equal(x[1], torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(2)))
    with pytest.raises(ValueError, match="one generator per image"):
        randn((2, 3), generators_for([1]))


def gaussian_consistency(sd: float, smin: float):
    """The exact consistency function for data ~ N(0, sd^2 I): the PF-ODE scales x by sqrt(sigma^2 + sd^2)."""

    def f(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return x * math.sqrt(smin**2 + sd**2) / (sigma.view(-1, 1, 1, 1) ** 2 + sd**2).sqrt()

    return f


def test_algorithm1_by_hand_and_callback() -> None:
    """Three steps of Algorithm 1 written out, on an analytic consistency function, no clipping."""
    sd, smin = 0.5, 0.002
    f = gaussian_consistency(sd, smin)
    sigmas = Schedule((0, 10, 25, 39), 40).sigmas().to(torch.float32)
    shape = (2, 3, 4, 4)
    steps: list[Step] = []
    generators = generators_for([0, 1])  # the start and the re-injected noise come from one stream per image
    x = sigmas[0] * randn(shape, generators)
    got = sample_consistency(f, x, sigmas, generators, sigma_min=smin, clip=False, callback=steps.append)
    gens = generators_for([0, 1])
    ones = torch.ones(2)
    xh = sigmas[0] * torch.stack([torch.randn(shape[1:], generator=g) for g in gens])
    states = []
    for i in range(3):
        states.append(xh)
        x0 = f(xh, sigmas[i] * ones)
        if i < 2:
            z = torch.stack([torch.randn(shape[1:], generator=g) for g in gens])
            xh = x0 + math.sqrt(float(sigmas[i + 1]) ** 2 - smin**2) * z
    torch.testing.assert_close(got, x0, rtol=1e-5, atol=1e-6)
    assert [s.index for s in steps] == [0, 1, 2] and all(s.total == 3 for s in steps)
    assert [s.sigma for s in steps] == pytest.approx(sigmas[:3].tolist())
    assert steps[-1].x0 is got
    for step, state in zip(steps, states):  # each step reports the point it evaluated
        torch.testing.assert_close(step.x, state, rtol=1e-5, atol=1e-5)


def test_project_hook_applies_to_every_x0() -> None:
    seen: list[float] = []
    sigmas = Schedule((0, 20, 39), 40).sigmas().to(torch.float32)

    def project(x0: torch.Tensor) -> torch.Tensor:
        seen.append(float(x0.abs().max()))
        return torch.zeros_like(x0)

    out = sample_consistency(lambda x, s: x, torch.ones(1, 3, 4, 4), sigmas, generators_for([0]), sigma_min=0.002,
                             project=project)
    assert len(seen) == 2 and torch.equal(out, torch.zeros(1, 3, 4, 4))


def test_heun_solves_gaussian_ode_to_second_order() -> None:
    """With the ideal denoiser for N(0, sd^2) data the PF-ODE solution is x_T sd / sqrt(sigma_T^2 + sd^2)
    (EDM Eq. 1); Heun's error must fall ~4x per doubling of the steps."""
    sd = 0.5

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return x * sd**2 / (sigma.view(-1, 1, 1, 1) ** 2 + sd**2)

    x_t = 80 * randn((2, 3, 4, 4), generators_for([0, 1]))
    want = x_t * sd / math.sqrt(80.0**2 + sd**2)
    errors = []
    for n in (20, 40, 80):
        steps: list[Step] = []
        got = sample_heun(denoise, x_t, karras_sigmas(n).to(torch.float32), callback=steps.append, clip=False)
        errors.append(((got - want).abs().max() / want.abs().max()).item())
        assert len(steps) == n and steps[-1].index == steps[-1].total - 1 == 2 * n - 2
        # The reported states are the ODE path x(sigma) = x_T sqrt(sigma^2 + sd^2) / sqrt(sigma_T^2 + sd^2).
        path = torch.stack([s.x for s in steps])
        exact = torch.stack([x_t * math.sqrt(s.sigma**2 + sd**2) / math.sqrt(80.0**2 + sd**2) for s in steps])
        assert ((path - exact).abs().max() / exact.abs().max()).item() < 2 * errors[-1] + 1e-6
    assert errors[1] < 0.015
    assert errors[0] / errors[1] > 3.5 and errors[1] / errors[2] > 3.5
