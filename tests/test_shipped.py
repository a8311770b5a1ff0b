"""End-to-end on the shipped weights: they load (checksums verified), and every task runs on them at small batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from editing import tasks
from editing.models import Runtime, cpu_has_native_bf16, load_model, resolve_runtime
from editing.precond import Denoiser
from editing.schedules import PRESETS, uniform

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return resolve_runtime("cpu")  # what the studio runs


@pytest.fixture(scope="module")
def cm(runtime: Runtime) -> Denoiser:
    return load_model(WEIGHTS / "emoji32-cm", runtime)


@pytest.fixture(scope="module")
def teacher(runtime: Runtime) -> Denoiser:
    return load_model(WEIGHTS / "emoji32-edm", runtime)


def test_shipped_models_are_described(cm: Denoiser, teacher: Denoiser) -> None:
    assert cm.param.boundary == "cm" and teacher.param.boundary == "edm"
    assert cm.param.resolution == teacher.param.resolution == 32
    assert cm.param.class_names == teacher.param.class_names == ("twemoji", "noto", "fluent3d")
    assert (WEIGHTS / "emoji32-cm" / "MODEL_CARD.md").is_file()
    # every shipped model stays small enough for git (fp16), and its folder says what it is
    for folder in (p for p in WEIGHTS.iterdir() if (p / "config.json").is_file()):
        size = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
        assert size < 25 * 2**20, f"{folder.name}: shipped weights are {size / 2**20:.1f} MiB"
        assert (folder / "MODEL_CARD.md").is_file() and (folder / "SHA256SUMS").is_file(), folder.name


def test_generate_is_seeded_and_in_range(cm: Denoiser) -> None:
    a = tasks.generate(cm, [3, 4], schedule=uniform(2), label=1)
    b = tasks.generate(cm, [4], schedule=uniform(2), label=1)
    assert a.shape == (2, 3, 32, 32) and a.min() >= -1 and a.max() <= 1
    torch.testing.assert_close(a[1:], b, atol=1e-4, rtol=0)  # fp32 kernels may round batch shapes differently
    assert (a[0] - a[1]).abs().mean() > 1e-3  # different seeds, different images


def test_edits_keep_what_they_measure(cm: Denoiser) -> None:
    y = tasks.generate(cm, [0], label=2)
    mask = torch.zeros(1, 1, 32, 32, dtype=torch.bool)
    mask[..., 8:24, 8:24] = True
    filled = tasks.inpaint(cm, y, mask, [0, 1], schedule=uniform(4), label=2)
    assert torch.equal(filled[..., ~mask[0, 0]], y.expand(2, -1, -1, -1)[..., ~mask[0, 0]])
    low = torch.nn.functional.avg_pool2d(y, 4)
    up = tasks.superresolve(cm, low, 4, [0], schedule=uniform(4), label=2)
    assert (torch.nn.functional.avg_pool2d(up, 4) - low).abs().max() < 1 / 255


def test_teacher_heun_runs(teacher: Denoiser) -> None:
    out = tasks.heun_baseline(teacher, [0], steps=4, label=0)
    assert out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()


def test_shipped_schedules_cover_the_studios_step_counts() -> None:
    from app.studio import COMPARE_STEPS
    from editing.models import read_schedules

    tuned = read_schedules(WEIGHTS / "emoji32-cm")
    assert set(COMPARE_STEPS) <= set(tuned)
    assert all(s.ts[0] == 0 and s.n == 40 and s.evaluations == k for k, s in tuned.items())
    # Greedy growth: each tuned schedule holds the one before it.
    assert all(set(tuned[k - 1].ts) <= set(tuned[k].ts) for k in tuned if k - 1 in tuned)


def test_photo_teacher_denoises_a_non_square_image_at_its_own_size(runtime: Runtime) -> None:
    teacher = load_model(WEIGHTS / "photo64-edm", runtime)
    assert teacher.param.boundary == "edm" and teacher.param.resolution == 64 and not teacher.param.class_names
    # a smooth colour field with an edge, 100 x 70: larger than one 64 px tile and not square
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 70), torch.linspace(-1, 1, 100), indexing="ij")
    clean = torch.stack([0.6 * xx, 0.5 * yy, torch.where(xx > 0.2, 0.5, -0.4)]).unsqueeze(0)
    noisy = clean + 0.196 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))  # 25/255
    out, sigma = tasks.denoise(teacher, noisy, sigma=0.196)
    assert out.shape == clean.shape and sigma == pytest.approx(0.196)
    gain = float(10 * torch.log10((noisy - clean).pow(2).mean() / (out - clean).pow(2).mean()))
    assert gain > 8, f"the teacher's one evaluation gained only {gain:.1f} dB"


# Without native bf16, "auto" keeps fp32 and emulated bf16 runs this test for over a minute.
@pytest.mark.skipif(not cpu_has_native_bf16(), reason="no native bf16 on this CPU: precision auto keeps fp32")
def test_photo_teacher_under_bf16_agrees_with_fp32_within_tolerance() -> None:
    """precision "auto" runs tiled models under bf16 autocast (where the CPU has native bf16): on two held-out
    photo crops from the README's results, its denoise stays within 0.02 of fp32 everywhere and within 0.02 dB."""
    from PIL import Image

    from editing.images import from_uint8
    from editing.metrics import psnr

    docs = WEIGHTS.parent / "docs" / "photos"
    truths = [np.asarray(Image.open(docs / f"{name}.png").convert("RGB"))[:, -192:]  # the panel "truth"
              for name in ("denoising-sigma-25_255", "super-resolution-x4")]
    clean = from_uint8(np.concatenate(truths, axis=1)[None])
    noisy = clean + 0.196 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    outs = {}
    for precision in ("fp32", "bf16"):
        runtime = resolve_runtime("cpu", backend="onnxruntime", precision=precision)
        teacher = load_model(WEIGHTS / "photo64-edm", runtime)
        assert (teacher.autocast_dtype is torch.bfloat16) == (precision == "bf16")
        with torch.inference_mode():
            outs[precision] = tasks.denoise(teacher, noisy, sigma=0.196)[0]
    assert float((outs["bf16"] - outs["fp32"]).abs().max()) < 0.02
    assert abs(float(psnr(outs["bf16"], clean) - psnr(outs["fp32"], clean))) < 0.02


def test_photo_teacher_denoises_a_jpeg_at_the_level_the_bootstrap_measures(runtime: Runtime) -> None:
    """A JPEG with 4:2:0 chroma leaves noise the teacher is best handed more than its level for
    (editing.noise.bootstrap_scale): on held-out crops from the README's results at 25 levels, q90, the measured
    multiple gains over the level itself; with 4:4:4, where the noise is left near white, it stays near 1."""
    import io

    from PIL import Image

    from editing.images import from_uint8, jpeg_compression, load_full, to_uint8
    from editing.metrics import psnr
    from editing.noise import estimate_noise_sigma, jpeg_noise_sigma

    docs = WEIGHTS.parent / "docs" / "photos"
    truths = [np.asarray(Image.open(docs / f"{name}.png").convert("RGB"))[:, -192:]  # the panel "truth"
              for name in ("denoising-sigma-25_255", "super-resolution-x4")]
    clean = from_uint8(np.concatenate(truths, axis=1)[None])
    noisy = clean + 25 / 127.5 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(3))
    teacher = load_model(WEIGHTS / "photo64-edm", runtime)
    for subsampling, least, gain in ((2, 1.25, 1.0), (0, 0.0, -0.05)):
        buffer = io.BytesIO()
        Image.fromarray(to_uint8(noisy)[0]).save(buffer, "JPEG", quality=90, subsampling=subsampling)
        compression = jpeg_compression(buffer.getvalue())
        upload = load_full(buffer.getvalue()).tensor
        sigma = jpeg_noise_sigma(float(estimate_noise_sigma(upload)[0]), *compression, torch.Generator().manual_seed(0))
        scale = tasks.denoise_scale(teacher, upload, sigma, compression)
        at_level, at_scale = (float(psnr(tasks.denoise(teacher, upload, sigma=sigma * k)[0], clean)[0])
                              for k in (1.0, scale))
        assert scale >= least and at_scale - at_level > gain, (subsampling, scale, at_level, at_scale)
        if subsampling == 0:
            assert scale < 1.15
