"""editing.noise: the noise level function of an upload (`estimate_noise_curve`), its variance-stabilizing map
(`Stabilizer`), `tasks.denoise` on a curve (a camera's noise, whose std depends on the value), and the reading the
studio and the CLI share (`read_noise`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.noise import compression, demosaic, mosaic
from editing import tasks
from editing.images import from_uint8, to_uint8
from editing.models import load_model, resolve_runtime
from editing.noise import (CURVE_FLOOR, CURVE_VARIES, GREY_NOTE, JPEG_CURVE_VARIES, SPREAD_SHARE, NoiseCurve,
                           Stabilizer, add_camera_noise, camera_at_mid_grey, camera_curve, describe_level,
                           estimate_noise, estimate_noise_curve, estimate_noise_sigma, estimate_spread_sigma,
                           jpeg_roundtrip, read_noise, through_jpeg, uniform_grid, unclipped_windows)
from editing.precond import Denoiser

EXAMPLES = Path(__file__).resolve().parents[1] / "app" / "examples" / "photos"  # held out from training
WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


def shot_noise_std(values: torch.Tensor) -> torch.Tensor:
    """A camera-like curve on [-1, 1]: 0.09 in the shadows falling to 0.03 in the highlights."""
    return 0.06 - 0.03 * values


def ramp(height: int = 256, width: int = 768) -> torch.Tensor:
    """A smooth ramp from -0.85 to 0.85 across, slightly different per channel: flat windows at every value."""
    t = torch.linspace(-0.85, 0.85, width).view(1, 1, 1, width).expand(1, 3, height, width)
    return (t + torch.tensor([0.0, 0.02, -0.02]).view(1, 3, 1, 1)).clamp(-0.85, 0.85)


def noisy_upload(clean: torch.Tensor, std: Callable[[torch.Tensor], torch.Tensor], seed: int) -> torch.Tensor:
    """Noise of std `std(value)` at each pixel, clipped and rounded to 8 bits as a saved file."""
    g = torch.Generator().manual_seed(seed)
    return from_uint8(to_uint8(clean + std(clean) * torch.randn(clean.shape, generator=g)))


def test_the_curve_reads_a_value_dependent_noise() -> None:
    curve = estimate_noise_curve(noisy_upload(ramp(), shot_noise_std, 1))
    levels = torch.tensor(curve.levels)
    assert len(levels) >= 6 and levels.min() < -0.5 and levels.max() > 0.5
    relative = (torch.tensor(curve.sigmas) / shot_noise_std(levels) - 1).abs()
    assert relative.max() < 0.1, (curve, relative)
    noisy = noisy_upload(ramp(), shot_noise_std, 1)
    assert curve.spread > 2.0 and estimate_noise(noisy) == curve
    # under the threshold asked for (a JPEG's is higher), one level
    assert estimate_noise(noisy, curve.spread + 0.01) == NoiseCurve.constant(float(estimate_noise_sigma(noisy)[0]))


def test_white_noise_stays_one_level() -> None:
    noisy = noisy_upload(ramp(), lambda v: torch.full_like(v, 0.05), 2)
    curve = estimate_noise_curve(noisy)
    assert curve.spread < CURVE_VARIES
    assert estimate_noise(noisy) == NoiseCurve.constant(float(estimate_noise_sigma(noisy)[0]))
    clean = from_uint8(to_uint8(ramp()))  # nothing to read
    assert estimate_noise(clean).sigmas[0] * 127.5 < 0.5


def test_a_curve_is_checked_and_interpolated() -> None:
    curve = NoiseCurve((-0.5, 0.5), (0.1, 0.3))
    values = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0])
    torch.testing.assert_close(curve.at(values), torch.tensor([0.1, 0.1, 0.2, 0.3, 0.3]))
    assert curve.spread == pytest.approx(3.0) and not curve.is_constant
    assert curve.scaled(2.0).sigmas == pytest.approx((0.2, 0.6))
    assert NoiseCurve.constant(0.1).is_constant and NoiseCurve.constant(0.0).spread == 1.0
    for levels, sigmas, words in [((0.5, -0.5), (0.1, 0.1), "must rise"), ((0.0,), (-0.1,), ">= 0"),
                                  ((), (), "at least one"), ((0.0,), (math.nan,), "finite")]:
        with pytest.raises(ValueError, match=words):
            NoiseCurve(levels, sigmas)


def test_the_stabilizer_maps_the_range_onto_itself_and_inverts() -> None:
    curve = NoiseCurve((-0.8, 0.0, 0.8), (0.09, 0.05, 0.03))
    stabilizer = Stabilizer.of(curve)
    assert stabilizer.values[0] == -1.0 and stabilizer.values[-1] == pytest.approx(1.0, abs=1e-12)
    assert (stabilizer.values.diff() > 0).all()
    x = torch.linspace(-1, 1, 1001, dtype=torch.float64)
    torch.testing.assert_close(stabilizer.inverse(stabilizer.forward(x)), x, atol=1e-6, rtol=0)  # both tabulated
    torch.testing.assert_close(stabilizer.forward(x), torch.from_numpy(
        np.interp(x.numpy(), uniform_grid().numpy(), stabilizer.values.numpy())), atol=1e-12, rtol=0)
    # f' sigma is the stabilized std everywhere (the trapezoid rule's slopes against the curve at mid-steps)
    grid = uniform_grid()
    slope = stabilizer.values.diff() / grid.diff()
    torch.testing.assert_close(slope * curve.at((grid[1:] + grid[:-1]) / 2),
                               torch.full_like(slope, stabilizer.sigma), rtol=2e-3, atol=0)
    # a constant curve: the identity, at its std
    flat = Stabilizer.of(NoiseCurve.constant(0.07))
    torch.testing.assert_close(flat.forward(x), x, atol=1e-12, rtol=0)
    assert flat.sigma == pytest.approx(0.07)
    # the floor: no value is stretched more than 1 / CURVE_FLOOR times another
    steep = Stabilizer.of(NoiseCurve((-0.5, 0.5), (0.2, 0.0)))
    slopes = steep.values.diff() / uniform_grid().diff()
    assert float(slopes.max() / slopes.min()) == pytest.approx(1 / CURVE_FLOOR, rel=1e-3)
    with pytest.raises(ValueError, match="no noise"):
        Stabilizer.of(NoiseCurve.constant(0.0))


def test_stabilized_noise_has_one_std() -> None:
    """Flat patches at three values, each with its curve's noise: after the map, each patch's noise has the
    stabilizer's std (first order: the noise is small against the curve's changes)."""
    curve = NoiseCurve((-0.8, 0.8), (0.04, 0.012))
    stabilizer = Stabilizer.of(curve)
    g = torch.Generator().manual_seed(3)
    for value in (-0.6, 0.0, 0.6):
        patch = torch.full((1, 3, 128, 128), value, dtype=torch.float64)
        noisy = patch + curve.at(patch) * torch.randn(patch.shape, generator=g, dtype=torch.float64)
        std = float((stabilizer.forward(noisy) - stabilizer.forward(patch)).std())
        assert std == pytest.approx(stabilizer.sigma, rel=0.03), value


def test_denoise_on_a_curve_is_the_stabilized_denoise(tiny_model: Denoiser) -> None:
    noisy = noisy_upload(ramp(40, 48), shot_noise_std, 4)
    curve = NoiseCurve((-0.8, 0.8), (0.09, 0.03))
    stabilizer = Stabilizer.of(curve)
    out, used = tasks.denoise(tiny_model, noisy, sigma=curve, label=0)
    direct, _ = tasks.denoise(tiny_model, stabilizer.forward(noisy), sigma=stabilizer.sigma, label=0)
    assert used == pytest.approx(stabilizer.sigma)
    torch.testing.assert_close(out, stabilizer.inverse(direct), atol=1e-6, rtol=0)
    constant, used_constant = tasks.denoise(tiny_model, noisy, sigma=NoiseCurve.constant(0.05), label=0)
    scalar, _ = tasks.denoise(tiny_model, noisy, sigma=0.05, label=0)
    assert used_constant == 0.05 and torch.equal(constant, scalar)
    grey = noisy.mean(1, keepdim=True).expand_as(noisy).contiguous()
    out_grey, _ = tasks.denoise(tiny_model, grey, sigma=curve, label=0)
    assert torch.equal(out_grey[:, :1], out_grey[:, 1:2]) and torch.equal(out_grey[:, :1], out_grey[:, 2:])


@pytest.fixture(scope="module")
def photo_teacher() -> Denoiser:
    return load_model(WEIGHTS / "photo64-edm", resolve_runtime("cpu"))


def test_the_photo_teacher_denoises_a_cameras_noise_better_on_its_curve(photo_teacher: Denoiser) -> None:
    """A held-out photo under Poisson-Gaussian noise in linear light, saved as sRGB (shadows noisier): denoised at
    the curve the upload reads, it is closer to the clean photo than at the one level it reads."""
    rgb = np.array(Image.open(EXAMPLES / "konark-sun-temple.jpg").convert("RGB"))
    h, w = rgb.shape[:2]
    clean = from_uint8(rgb[None, h // 2 - 96 : h // 2 + 96, w // 2 - 128 : w // 2 + 128])
    noisy = from_uint8(to_uint8(add_camera_noise(clean, 0.004, 4e-4, torch.Generator().manual_seed(5))))
    curve = estimate_noise(noisy)
    assert curve.spread > 1.5 and curve.sigmas[0] > curve.sigmas[-1]  # the shadows are the noisier

    def psnr(x: torch.Tensor) -> float:
        return float(10 * torch.log10(4 / (x.clamp(-1, 1) - clean).square().mean()))

    on_curve, _ = tasks.denoise(photo_teacher, noisy, sigma=curve)
    one_level, _ = tasks.denoise(photo_teacher, noisy, sigma=float(estimate_noise_sigma(noisy)[0]))
    assert psnr(on_curve) > psnr(one_level) + 0.5, (psnr(on_curve), psnr(one_level), psnr(noisy))


def test_camera_curve_is_the_std_add_camera_noise_draws() -> None:
    """camera_curve, the first-order std of a camera's noise after the sRGB curve, against the std add_camera_noise
    draws on flat patches (noise small against the curve's bends, none clipped); camera_at_mid_grey's level."""
    a, b = 0.0004, 4e-6
    curve = camera_curve(a, b)
    for value in (-0.6, -0.2, 0.3, 0.8):
        patch = torch.full((1, 3, 256, 256), value)
        drawn = float((add_camera_noise(patch, a, b, torch.Generator().manual_seed(3)) - patch).std())
        assert drawn == pytest.approx(float(curve.at(torch.tensor(value, dtype=torch.float64))), rel=0.03), value
    a, b = camera_at_mid_grey(0.02)
    assert b == pytest.approx(0.1 * a)
    assert float(camera_curve(a, b).at(torch.zeros((), dtype=torch.float64))) == pytest.approx(0.02)
    darkest, brightest = camera_curve(a, b).at(torch.tensor([-0.8, 0.8], dtype=torch.float64)).tolist()
    assert darkest > 2 * brightest  # larger in the shadows


def test_a_reading_is_the_curve_read_through_the_file_s_compression() -> None:
    """`read_noise`, which the studio and the CLI both use: a lossless file's level is what the estimate reads; a
    JPEG's is that read through its own tables (larger: the compression quantized the finest grain); both, and a
    grey image's, say so; nothing read, nothing read through."""
    upload = noisy_upload(ramp(128, 384), shot_noise_std, 3)
    lossless = read_noise(upload)
    assert lossless.read == lossless.level == estimate_noise(upload) and not lossless.level.is_constant
    assert lossless.compression is None and not lossless.grey and not lossless.unlike_training and not lossless.averaged
    assert lossless.notes() == [f"estimated noise: its level depends on the value, {describe_level(lossless.level)} "
                                "(on the [-1, 1] scale, as a camera's noise, larger in the shadows)"]
    one_level = read_noise(upload, as_curve=False).level
    assert one_level == NoiseCurve.constant(float(estimate_noise_sigma(upload)[0]))

    tables = compression(90)  # Pillow's tables at quality 90
    saved = jpeg_roundtrip(upload, *tables)
    jpeg = read_noise(saved, tables)
    assert jpeg.read == estimate_noise(saved, JPEG_CURVE_VARIES) and jpeg.compression == tables
    assert jpeg.level == through_jpeg(jpeg.read, tables)
    assert all(before > after for before, after in zip(jpeg.level.sigmas, jpeg.read.sigmas))
    assert jpeg.averaged and not jpeg.unlike_training and jpeg.kind == "a JPEG"  # draws under added noise, no bootstrap
    assert any(f"estimate reads ({describe_level(jpeg.read)}); read through the file's own compression it is "
               f"{describe_level(jpeg.level)}" in n for n in jpeg.notes())
    assert jpeg.scale_note(1.3).startswith("a JPEG: what its compression left of the noise is best denoised at 1.30 x")

    flat = read_noise(torch.zeros(1, 3, 64, 64), tables)  # nothing read: no compression to read it through
    assert flat.level == NoiseCurve.constant(0.0) and flat.compression is None and not flat.unlike_training

    grey = read_noise(upload[:, :1].expand(-1, 3, -1, -1))
    assert grey.grey and grey.unlike_training and not grey.averaged and GREY_NOTE in grey.notes()
    grey_jpeg = read_noise(jpeg_roundtrip(upload[:, :1].expand(-1, 3, -1, -1), *tables), tables)
    assert grey_jpeg.unlike_training and not grey_jpeg.averaged  # a grey JPEG: the bootstrap, as a grey image
    assert grey.scale_note(1.25).startswith("a grey image: its noise is best denoised at 1.25 x its level")


def test_a_reading_doubts_what_the_image_hardly_shows() -> None:
    """Where the estimate cannot work as designed the reading says so: under 3 px on a side there is no window to
    read (no noise, rather than an error); a black-and-white image has no unclipped window, and what it reads
    instead (its edges, its dither) is flagged; an ordinary noisy image carries no doubt."""
    thin = read_noise(torch.zeros(1, 3, 2, 40))
    assert thin.level == NoiseCurve.constant(0.0) and "too small to read its noise (40x2" in thin.doubt
    assert thin.doubt in thin.notes() and not thin.unlike_training
    g = torch.Generator().manual_seed(4)
    dithered = torch.where(torch.rand(1, 1, 96, 96, generator=g) < 0.4, 1.0, -1.0).expand(-1, 3, -1, -1)
    assert not unclipped_windows(dithered).any()
    black_and_white = read_noise(dithered)
    assert black_and_white.doubt.startswith("nearly every pixel is black or white")
    assert black_and_white.doubt in black_and_white.notes()
    assert read_noise(noisy_upload(ramp(64, 128), shot_noise_std, 5)).doubt == ""


def demosaiced_upload(clean: torch.Tensor, raw_sigma: float, seed: int, code: int) -> torch.Tensor:
    """A camera's noise before demosaicing: `clean` (1, 3, H, W) mosaicked RGGB, Gaussian noise of `raw_sigma` (on
    [-1, 1]) added to the mosaic, demosaiced by OpenCV (`code`), saved as 8 bits."""
    raw = mosaic(clean)
    noisy = raw + np.random.default_rng(seed).normal(0.0, raw_sigma / 2, raw.shape)
    return from_uint8(to_uint8(demosaic(noisy, code)))


@pytest.mark.parametrize("name", ["konark-sun-temple", "red-pyramid"])
def test_the_photo_teacher_denoises_demosaiced_noise_better_on_the_phase_sub_images(photo_teacher: Denoiser,
                                                                                     name: str) -> None:
    """A held-out photo under a camera's noise, demosaiced (bilinear): read as spread, it is denoised on its 2x2
    phase sub-images (tasks.denoise(spread=True)) over 1 dB closer to the photo than per pixel at the same level."""
    rgb = np.array(Image.open(EXAMPLES / f"{name}.jpg").convert("RGB"))
    h, w = rgb.shape[:2]
    photo = from_uint8(rgb[None, h // 2 - 96 : h // 2 + 96, w // 2 - 128 : w // 2 + 128])
    clean = from_uint8(to_uint8(demosaic(mosaic(photo), cv2.COLOR_BayerBG2RGB)))  # the demosaicing's own error aside
    noisy = demosaiced_upload(photo, 30 / 255, 5, cv2.COLOR_BayerBG2RGB)
    reading = read_noise(noisy)
    assert reading.spread

    def psnr(x: torch.Tensor) -> float:
        return float(10 * torch.log10(4 / (x.clamp(-1, 1) - clean).square().mean()))

    on_phases, used = tasks.denoise(photo_teacher, noisy, sigma=reading.level, spread=True)
    per_pixel, _ = tasks.denoise(photo_teacher, noisy, sigma=reading.level)
    assert used == pytest.approx(reading.level.sigmas[0])
    assert psnr(on_phases) > psnr(per_pixel) + 1.0 > psnr(noisy) + 3.0, (psnr(on_phases), psnr(per_pixel))


@pytest.mark.parametrize("name", ["konark-sun-temple", "red-pyramid"])
def test_the_photo_teacher_denoises_a_jpeg_s_noise_better_under_added_noise(photo_teacher: Denoiser,
                                                                            name: str) -> None:
    """A held-out photo's smooth stone and sky (where a JPEG's shaped noise shows most; on dense texture the two
    are level) under white noise of 15/255, saved as a JPEG (quality 90): read through its compression, it is
    denoised as the mean of AVERAGED_DRAWS denoises under added white noise over 0.5 dB closer to the photo than at
    the multiple of its level the bootstrap measures (what the studio did)."""
    rgb = np.array(Image.open(EXAMPLES / f"{name}.jpg").convert("RGB"))
    h, w = rgb.shape[:2]
    clean = from_uint8(rgb[None, h // 2 - 96 : h // 2 + 96, w // 2 - 128 : w // 2 + 128])
    tables = compression(90)
    noisy = jpeg_roundtrip(noisy_upload(clean, lambda v: torch.full_like(v, 30 / 255), 9), *tables)
    reading = read_noise(noisy, tables)
    assert reading.averaged

    def psnr(x: torch.Tensor) -> float:
        return float(10 * torch.log10(4 / (x.clamp(-1, 1) - clean).square().mean()))

    averaged, used = tasks.denoise(photo_teacher, noisy, sigma=reading.level, added=tasks.AVERAGED_ADDED,
                                   draws=tasks.AVERAGED_DRAWS)
    scale = tasks.denoise_scale(photo_teacher, noisy, reading.level, tables)
    bootstrapped, _ = tasks.denoise(photo_teacher, noisy, sigma=reading.level.scaled(scale))
    assert psnr(averaged) > psnr(bootstrapped) + 0.5 > psnr(noisy) + 1.0, (psnr(averaged), psnr(bootstrapped))


def test_the_spread_reading_is_the_level_of_independent_noise_and_blind_to_grey_noise() -> None:
    """On the 2x2 means' chroma, x 2: noise independent per channel reads at its level; noise the same in the three
    channels has no chroma, and reads nothing; a smooth colour ramp alone reads nothing."""
    g = torch.Generator().manual_seed(11)
    clean = ramp(128, 256)
    independent = clean + 0.08 * torch.randn(clean.shape, generator=g)
    assert estimate_spread_sigma(independent) == pytest.approx(0.08, rel=0.05)
    grey = clean + 0.08 * torch.randn(1, 1, 128, 256, generator=g)
    assert estimate_spread_sigma(grey) < 1e-3 and estimate_spread_sigma(clean) < 1e-3
    # a large image (12 megapixels) is read on squares sampled over it, at the same level
    large = torch.linspace(-0.8, 0.8, 4000).view(1, 1, 1, 4000).expand(1, 3, 3000, 4000)
    assert estimate_spread_sigma(large + 0.08 * torch.randn(large.shape, generator=g)) == pytest.approx(0.08, rel=0.03)


@pytest.mark.parametrize("code", [cv2.COLOR_BayerBG2RGB, cv2.COLOR_BayerBG2RGB_EA], ids=["bilinear", "edge-aware"])
def test_a_reading_finds_a_camera_s_demosaiced_noise_spread_over_neighbours(code: int) -> None:
    """Demosaicing interpolates each pixel's missing colours from its neighbours, and the per-pixel estimate reads
    such noise as a fraction of its level; the reading then takes the 2x2 chroma level, 0.7-1.05 x the raw noise's
    (on the 2x2 phases the teacher denoises it best near 0.75 x: `python -m benchmarks --sections demosaiced_noise`),
    and says so. White noise of the same level, a camera's white noise and a clean image are read as before; a JPEG
    is read through its compression, not on its chroma."""
    clean = ramp(128, 256)
    raw_sigma = 10 / 127.5
    reading = read_noise(demosaiced_upload(clean, raw_sigma, 5, code))
    assert reading.spread and max(reading.read.sigmas) < SPREAD_SHARE * reading.level.sigmas[0]
    assert 0.7 * raw_sigma < reading.level.sigmas[0] < 1.05 * raw_sigma and reading.level.is_constant
    assert any(n.startswith("its noise is spread over neighbouring pixels") for n in reading.notes())
    white = noisy_upload(clean, lambda v: torch.full_like(v, raw_sigma), 6)
    camera = noisy_upload(clean, shot_noise_std, 7)
    for upload in (white, camera, from_uint8(to_uint8(clean))):
        other = read_noise(upload)
        assert not other.spread and other.level == other.read
    tables = compression(95)
    assert not read_noise(jpeg_roundtrip(demosaiced_upload(clean, raw_sigma, 5, code), *tables), tables).spread
