"""Tasks: stroke editing, interpolation, denoising, the Heun baseline, and input validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from editing import tasks
from editing.images import from_uint8, to_uint8
from editing.models import Runtime, load_model
from editing.noise import estimate_noise_sigma
from editing.precond import Denoiser, Parameterization
from editing.schedules import PRESETS, Schedule
from tests.conftest import make_tiny_folder


def painting(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.tanh(2 * F.interpolate(torch.randn(1, 3, 2, 2, generator=g), size=16, mode="nearest"))


def test_stroke_edit_shape_determinism_and_seeds(tiny_model: Denoiser) -> None:
    p = painting()
    before = p.clone()
    a = tasks.stroke_edit(tiny_model, p, [0, 1], label=0)
    b = tasks.stroke_edit(tiny_model, p, [0, 1], label=0)
    assert a.shape == (2, 3, 16, 16) and torch.equal(a, b)
    assert torch.equal(p, before)
    assert not torch.allclose(a[0], a[1], atol=1e-3)
    assert a.abs().max() <= 1.0
    alone = tasks.stroke_edit(tiny_model, p, [1], label=0)
    assert (alone[0] - a[1]).abs().max().item() < 1e-5


def test_stroke_edit_starts_from_the_noised_painting(tiny_model: Denoiser) -> None:
    """The first evaluation sees painting + sigma_ts[0] z, at sigma_ts[0] = 5.38 for the preset."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    original = tiny_model.forward

    class Spy(Denoiser):
        def forward(self, x, sigma, class_labels=None, boundary=None):  # type: ignore[override]
            seen.append((x.clone(), torch.as_tensor(sigma).clone()))
            return original(x, sigma, class_labels, boundary)

    spy = Spy(tiny_model.unet, tiny_model.param)
    p = painting(1)
    tasks.stroke_edit(spy, p, [3], label=0)
    assert len(seen) == PRESETS["strokes"].evaluations
    assert round(float(seen[0][1][0]), 2) == 5.38 and round(float(seen[1][1][0]), 2) == 2.24
    noise = (seen[0][0] - p) / float(seen[0][1][0])
    assert abs(noise.std().item() - 1.0) < 0.2 and abs(noise.mean().item()) < 0.2


def first_inputs(model: Denoiser, run) -> tuple[torch.Tensor, float]:  # type: ignore[no-untyped-def]
    """The x and sigma of the first network evaluation of run(model)."""
    seen: list[tuple[torch.Tensor, float]] = []
    original = model.forward

    class Spy(Denoiser):
        def forward(self, x, sigma, class_labels=None, boundary=None):  # type: ignore[override]
            seen.append((x.clone(), float(torch.as_tensor(sigma).flatten()[0])))
            return original(x, sigma, class_labels, boundary)

    run(Spy(model.unet, model.param))
    return seen[0]


def test_task_noise_streams_do_not_collide(tiny_model: Denoiser) -> None:
    """stroke_edit's start noise for seed s is no longer generate's noise for seed s + 2**31 (issue 29.5)."""
    p = painting(1)
    x, sigma = first_inputs(tiny_model, lambda m: tasks.stroke_edit(m, p, [0], label=0))
    stroke_z = (x - p) / sigma
    x, sigma = first_inputs(tiny_model, lambda m: tasks.generate(m, [2**31], label=0))
    generate_z = x / sigma
    assert stroke_z.shape == generate_z.shape
    assert (stroke_z - generate_z).abs().max().item() > 1.0
    x, sigma = first_inputs(tiny_model, lambda m: tasks.generate(m, [0], label=0))
    assert (stroke_z - x / sigma).abs().max().item() > 1.0
    streams = {tasks.START_STREAM, tasks.REFINE_STREAM, tasks.FRAMES_STREAM}
    assert len(streams) == 3 and len({tasks.stream_seed(0, s) for s in streams} | {0, 2**31}) == 5


def test_interpolate_seeds_endpoints_equal_generate(tiny_model: Denoiser) -> None:
    frames = tasks.interpolate_seeds(tiny_model, 4, 9, 5, label=1)
    assert frames.shape == (5, 3, 16, 16)
    first = tasks.generate(tiny_model, [4], schedule=PRESETS["1 step"], label=1)
    last = tasks.generate(tiny_model, [9], schedule=PRESETS["1 step"], label=1)
    assert (frames[0] - first[0]).abs().max().item() < 1e-5
    assert (frames[-1] - last[0]).abs().max().item() < 1e-4
    # Neighbouring frames are closer than the endpoints.
    assert (frames[1] - frames[0]).abs().mean() < (frames[-1] - frames[0]).abs().mean()


def test_interpolate_seeds_multistep_and_validation(tiny_model: Denoiser) -> None:
    frames = tasks.interpolate_seeds(tiny_model, 0, 1, 3, schedule=PRESETS["ImageNet64 CD 2-step"], label=0)
    assert frames.shape == (3, 3, 16, 16) and torch.isfinite(frames).all()
    with pytest.raises(ValueError, match="2 frames"):
        tasks.interpolate_seeds(tiny_model, 0, 1, 1, label=0)


def test_slerp_endpoints_and_norm() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 3, 16, 16, generator=g), torch.randn(1, 3, 16, 16, generator=g)
    torch.testing.assert_close(tasks.slerp(a, b, 0.0), a)
    torch.testing.assert_close(tasks.slerp(a, b, 1.0), b, atol=1e-5, rtol=1e-5)
    mid = tasks.slerp(a, b, 0.5)
    assert abs(mid.norm() / a.norm() - 1) < 0.05  # stays on the Gaussian shell


def test_interpolate_images(tiny_model: Denoiser) -> None:
    a, b = painting(2), painting(3)
    frames = tasks.interpolate_images(tiny_model, a, b, 4, seed=7, label=2)
    again = tasks.interpolate_images(tiny_model, a, b, 4, seed=7, label=2)
    assert frames.shape == (4, 3, 16, 16) and torch.equal(frames, again)
    # The end frames are stroke edits of a and of b with the same seed: the same noised start
    # (one shared z) and the same, independent, re-injected noise.
    assert (frames[0] - tasks.stroke_edit(tiny_model, a, [7], label=2)[0]).abs().max().item() < 1e-5
    assert (frames[-1] - tasks.stroke_edit(tiny_model, b, [7], label=2)[0]).abs().max().item() < 1e-5
    assert not torch.allclose(frames[1], frames[2], atol=1e-3)
    with pytest.raises(ValueError):
        tasks.interpolate_images(tiny_model, a, torch.zeros(1, 3, 8, 8), 4, seed=0, label=2)


@pytest.mark.parametrize("std", [0.05, 0.2, 0.5])
def test_estimate_noise_sigma_on_pure_noise(std: float) -> None:
    noise = std * torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    est = estimate_noise_sigma(noise)
    assert est.shape == (2,)
    assert ((est - std).abs() / std < 0.10).all(), est


def test_estimate_noise_sigma_ignores_smooth_content() -> None:
    ramp = torch.linspace(-1, 1, 32).view(1, 1, 1, 32).expand(1, 3, 32, 32)
    assert estimate_noise_sigma(ramp).item() < 1e-5
    noisy = ramp + 0.1 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert abs(estimate_noise_sigma(noisy).item() - 0.1) < 0.015
    with pytest.raises(ValueError):
        estimate_noise_sigma(torch.zeros(1, 3, 2, 2))


def test_estimate_noise_sigma_of_a_clipped_8bit_upload() -> None:
    """A white background clips half of its noise away; the estimate must come from the rest of the image.
    (Counting the clipped windows too, as the mean over all windows did, reads 0.1 as 0.08 here; without the
    second pass near the bounds, 0.5 reads as 0.43 to 0.47.)"""
    clean = torch.ones(4, 3, 64, 64)
    clean[..., :, 32:] = 0.1  # white left half, mid-grey right half
    generator = torch.Generator().manual_seed(2)
    for sigma in (0.1, 0.2, 0.3, 0.5):
        noisy = clean + sigma * torch.randn(clean.shape, generator=generator)
        upload = from_uint8(to_uint8(noisy))
        est = estimate_noise_sigma(upload)
        assert ((est - sigma).abs() / sigma < 0.08).all(), (sigma, est)
    white = torch.ones(1, 3, 32, 32)  # all saturated: no windows left to mask, the estimate is still defined
    assert estimate_noise_sigma(white).item() == 0.0


def test_denoise(tiny_model: Denoiser) -> None:
    clean = painting(4)
    noisy = clean + 0.2 * torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    out, sigma = tasks.denoise(tiny_model, noisy, label=0)
    assert out.shape == (1, 3, 16, 16) and 0.1 < sigma < 0.3
    out2, sigma2 = tasks.denoise(tiny_model, noisy, sigma=0.3, refine_steps=2, label=0)
    assert sigma2 == 0.3 and out2.shape == (1, 3, 16, 16) and not torch.equal(out, out2)
    # At sigma_min the consistency function is the identity (boundary condition): only the clamp remains.
    same, s = tasks.denoise(tiny_model, noisy, sigma=0.0, label=0)
    assert s == tiny_model.param.sigma_min and torch.equal(same, noisy.clamp(-1, 1))
    for bad in (dict(sigma=float("nan")), dict(sigma=-1.0), dict(refine_steps=17), dict(refine_steps=-1)):
        with pytest.raises(ValueError):
            tasks.denoise(tiny_model, noisy, label=0, **bad)


def test_averaged_over_added_noise_is_the_mean_of_denoises_under_the_drawn_noise() -> None:
    """Each draw: white noise of added x sigma from the image's own generator on top, the denoiser at
    sqrt(1 + added^2) x sigma; the mean of the draws. Checked with a denoiser that records its inputs."""
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    sigma = torch.tensor([0.1, 0.3])
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def record(v: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        seen.append((v.clone(), s.clone()))
        return v * 0.5 + s.view(-1, 1, 1, 1)

    generators = [torch.Generator().manual_seed(7), torch.Generator().manual_seed(8)]
    out = tasks.averaged_over_added_noise(record, 1.5, 3, generators)(x, sigma)
    again = [torch.Generator().manual_seed(7), torch.Generator().manual_seed(8)]
    expected = torch.zeros_like(x)
    for v, s in seen:
        z = torch.stack([torch.randn(3, 8, 8, generator=g) for g in again])
        torch.testing.assert_close(v, x + 1.5 * sigma.view(-1, 1, 1, 1) * z)
        torch.testing.assert_close(s, sigma * 3.25**0.5)
        expected += (v * 0.5 + s.view(-1, 1, 1, 1)) / 3
    assert len(seen) == 3
    torch.testing.assert_close(out, expected)
    for bad in ((-0.1, 2), (1.0, 0)):
        with pytest.raises(ValueError, match="added noise"):
            tasks.averaged_over_added_noise(record, *bad, generators)


def test_denoise_with_added_noise_runs_draws_evaluations_and_returns_the_noise_s_level(tiny_model: Denoiser) -> None:
    noisy = painting(5) + 0.1 * torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    out, used = tasks.denoise(tiny_model, noisy, sigma=0.2, label=0, added=1.5, draws=3)
    assert used == 0.2 and not torch.equal(out, tasks.denoise(tiny_model, noisy, sigma=0.2, label=0)[0])
    torch.testing.assert_close(out, tasks.denoise(tiny_model, noisy, sigma=0.2, label=0, added=1.5, draws=3)[0])
    steps: list = []
    tasks.denoise(tiny_model, noisy, sigma=0.2, label=0, added=1.5, draws=3, refine_steps=1, callback=steps.append)
    assert len(steps) == 2  # one step per evaluation of the schedule; each of them the mean of 3 draws
    from editing.limits import Limits
    with pytest.raises(ValueError, match="megapixel"):  # 3 draws x 2 evaluations of 16x16
        tasks.denoise(tiny_model, noisy, sigma=0.2, label=0, added=1.5, draws=3, refine_steps=1,
                      limits=Limits(16 * 16 * 5.5 / 1e6))
    tasks.denoise(tiny_model, noisy, sigma=0.2, label=0, added=1.5, draws=3, refine_steps=1,
                  limits=Limits(16 * 16 * 6 / 1e6))


def test_heun_baseline_shapes_and_determinism(tiny_model: Denoiser) -> None:
    steps_seen: list[int] = []
    a = tasks.heun_baseline(tiny_model, [0, 1], steps=3, label=0, callback=lambda s: steps_seen.append(s.index))
    b = tasks.heun_baseline(tiny_model, [0, 1], steps=3, label=0)
    alone = tasks.heun_baseline(tiny_model, [1], steps=3, label=0)
    assert a.shape == (2, 3, 16, 16) and torch.equal(a, b)
    # Heun divides by sigma, so batched-vs-single conv rounding (~1e-7) is amplified; still far below 1/255.
    assert (alone[0] - a[1]).abs().max().item() < 1e-4
    assert a.abs().max() <= 1.0
    assert steps_seen == [1, 3, 4]  # 2 * 3 - 1 = 5 evaluations; each report names the last one done


def test_generate_callback_and_validation(tiny_model: Denoiser) -> None:
    seen: list[int] = []
    out = tasks.generate(tiny_model, [0], schedule=Schedule((0, 10, 20, 39), 40), label=0,
                         callback=lambda s: seen.append(s.index))
    assert out.shape == (1, 3, 16, 16) and seen == [0, 1, 2]
    with pytest.raises(ValueError, match="needs a class"):
        tasks.generate(tiny_model, [0])
    with pytest.raises(ValueError, match="between 0 and 2"):
        tasks.generate(tiny_model, [0], label=3)
    with pytest.raises(ValueError, match="seed"):
        tasks.generate(tiny_model, [], label=0)
    with pytest.raises(ValueError):
        tasks.colorize(tiny_model, torch.zeros(1, 3, 8, 8), [0], label=0)
    with pytest.raises(ValueError):
        tasks.superresolve(tiny_model, torch.zeros(1, 3, 8, 8), 3, [0], label=0)
    with pytest.raises(ValueError):
        tasks.superresolve(tiny_model, torch.zeros(1, 3, 4, 4), 2, [0], label=0)


def test_a_grey_image_is_denoised_at_sqrt_3_times_its_level_and_stays_grey(tiny_model: Denoiser) -> None:
    """A grey image's noise lies along (1, 1, 1) / sqrt(3), with std sqrt(3) sigma there: the network sees the
    upload at sqrt(3) sigma, and the result is its channels' mean. A colour image, or grey=False, runs at sigma."""
    from editing.noise import denoiser_sigma, is_grey

    g = torch.Generator().manual_seed(3)
    grey = (painting(2).mean(1, keepdim=True) + 0.1 * torch.randn(1, 1, 16, 16, generator=g)).expand(1, 3, 16, 16)
    assert is_grey(grey) and not is_grey(painting(2)) and denoiser_sigma(0.1, True) == pytest.approx(0.1 * 3**0.5)
    x, sigma = first_inputs(tiny_model, lambda m: tasks.denoise(m, grey, sigma=0.1, label=0))
    assert torch.equal(x, grey) and sigma == pytest.approx(0.1 * 3**0.5)
    out, used = tasks.denoise(tiny_model, grey, sigma=0.1, label=0)
    assert used == pytest.approx(0.1 * 3**0.5) and is_grey(out)
    as_colour, _ = tasks.denoise(tiny_model, grey, sigma=0.1 * 3**0.5, label=0, grey=False)
    torch.testing.assert_close(out, as_colour.mean(1, keepdim=True).expand_as(as_colour))
    assert first_inputs(tiny_model, lambda m: tasks.denoise(m, grey, sigma=0.1, label=0, grey=False))[1] == \
        pytest.approx(0.1)
    assert first_inputs(tiny_model, lambda m: tasks.denoise(m, painting(2), sigma=0.1, label=0))[1] == \
        pytest.approx(0.1)


def test_the_bootstrap_denoises_squares_as_the_upload_will_be(tiny_model: Denoiser,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """tasks.denoise_scale: a first denoise of squares of the upload at its level, then, on the squares re-noised
    and compressed with the file's tables, one denoise per scale at the level times the scale; a lossless file's
    squares are saved as 8-bit, a grey image's re-noised along the grey direction."""
    from editing.noise import BOOTSTRAP_SCALES, NoiseCurve, is_grey

    tables = {0: [8] * 64, 1: [12] * 64}
    upload = painting(2).repeat(1, 1, 20, 24)[..., :300, :360]  # 300 x 360: 4 x 5 squares of 64 px
    calls: list[tuple[torch.Tensor, float]] = []
    denoise = tasks.denoise

    def spy(model: Denoiser, x: torch.Tensor, **kwargs) -> tuple[torch.Tensor, float]:
        level = kwargs["sigma"]  # the bootstrap hands a curve; a constant one is the level
        calls.append((x, level.sigmas[0] if isinstance(level, NoiseCurve) and level.is_constant else level))
        return denoise(model, x, **kwargs)

    monkeypatch.setattr(tasks, "denoise", spy)
    scale = tasks.denoise_scale(tiny_model, upload, 0.1, (tables, 2), label=0)
    assert BOOTSTRAP_SCALES[0] <= scale <= BOOTSTRAP_SCALES[-1]
    assert [(tuple(x.shape), s) for x, s in calls] == [((20, 3, 64, 64), pytest.approx(0.1 * s))
                                                        for s in (1.0, *BOOTSTRAP_SCALES)]
    first, renoised = calls[0][0], calls[1][0]
    assert torch.equal(first[0], upload[0, :, 0:64, 0:64]) and torch.equal(first[6], upload[0, :, 80:144, 64:128])
    assert all(torch.equal(renoised, x) for x, _ in calls[2:]) and not torch.equal(renoised, first)
    assert tasks.denoise_scale(tiny_model, upload, 0.0, (tables, 2), label=0) == 1.0  # no noise, nothing to scale
    small = upload[..., :12, :40]  # under a JPEG block on a side: no squares
    assert tasks.denoise_scale(tiny_model, small, 0.1, (tables, 2), label=0) == 1.0
    # a grey image in a lossless file: its squares re-noised with grey noise and saved as 8-bit
    calls.clear()
    grey = upload.mean(1, keepdim=True).expand_as(upload)
    tasks.denoise_scale(tiny_model, grey, 0.1, label=0)
    renoised = calls[1][0]
    levels = (renoised + 1) * 127.5
    assert is_grey(renoised) and torch.allclose(levels, levels.round(), atol=1e-4)


def test_inpaint_defaults_to_the_full_grid_with_a_diffusion_denoiser(tmp_path: Path, cpu_runtime: Runtime) -> None:
    """tasks.inpaint without a schedule runs inpaint_schedule(param): the 40-point grid's 39 evaluations with an
    EDM D(x, sigma), editing 18's 17 with a consistency model; the same pixels as that schedule given."""
    assert tasks.inpaint_schedule(Parameterization(boundary="edm")) == PRESETS["editing 40"]
    assert tasks.inpaint_schedule(Parameterization(boundary="cm")) == tasks.DEFAULT_EDIT
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    mask = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    mask[..., 4:12, 4:12] = True
    for boundary, evaluations in (("edm", 39), ("cm", 17)):
        model = load_model(make_tiny_folder(tmp_path / boundary, 16, classes=(), boundary=boundary), cpu_runtime)
        calls: list[int] = []
        out = tasks.inpaint(model, image, mask, [1], callback=lambda step: calls.append(step.index))
        assert len(calls) == evaluations
        given = tasks.inpaint(model, image, mask, [1], schedule=tasks.inpaint_schedule(model.param))
        assert torch.equal(out, given)
