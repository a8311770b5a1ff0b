"""The photo_crops benchmark section on tiny models and a synthetic photo folder; its colorization baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.photos import (PhotoBudget, cbm3d, heldout_crops, luma_chroma_table, mean_chroma,
                              posterior_mean_superresolve)
from benchmarks.run import Options, run
from editing.metrics import psnr
from editing.precond import Denoiser
from editing.operators import Colorize
from tests.conftest import make_tiny_folder

TINY_PHOTOS = PhotoBudget(crops_per_photo=1, scales=(1, 2), tune_crops=2, posterior_samples=2)


def make_photos(folder: Path, size: int = 40) -> Path:
    """A folder shaped like `python -m training.photos build` output: two held-out smooth 'photos'."""
    (folder / "photos").mkdir(parents=True)
    yy, xx = np.mgrid[0:size, 0:size * 2]
    records = []
    for i in range(3):
        rgb = np.stack([128 + 100 * np.sin(xx / (5 + i)), 128 + 100 * np.cos(yy / 7), 90 + 0 * xx], -1)
        Image.fromarray(rgb.astype(np.uint8)).save(folder / "photos" / f"p{i}.png")
        records.append({"id": f"p{i}", "split": "train" if i == 0 else "heldout"})
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    tiles = np.random.default_rng(0).integers(0, 256, (50, 16, 16, 3), dtype=np.uint8)
    np.save(folder / "images.npy", tiles)
    return folder


def test_heldout_crops_come_only_from_heldout_photos(tmp_path: Path) -> None:
    folder = make_photos(tmp_path / "photos")
    crops = heldout_crops(folder, 16, TINY_PHOTOS)
    assert crops.shape == (2 * 2, 3, 16, 16)
    # the blue channel of every photo is 90: the crops are of the photos, on [-1, 1]
    assert torch.allclose(crops[:, 2], torch.full_like(crops[:, 2], 90 / 127.5 - 1))


def test_posterior_mean_averages_distinct_samples_and_keeps_every_block_mean(tmp_path: Path) -> None:
    from editing import tasks
    from editing.limits import UNLIMITED
    from editing.models import load_model, resolve_runtime

    teacher = load_model(make_tiny_folder(tmp_path / "edm", classes=(), boundary="edm"), resolve_runtime("cpu"))
    low = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    mean = posterior_mean_superresolve(teacher, low, 2, 3)
    first = tasks.superresolve(teacher, low, 2, [0, 1], limits=UNLIMITED)
    assert mean.shape == (2, 3, 16, 16)
    assert torch.allclose(torch.nn.functional.avg_pool2d(mean, 2), low, atol=1e-5)  # A x = A y is linear
    assert float((mean - first).abs().max()) > 1e-3  # more than the first sample: the others were averaged in


def test_cbm3d_removes_most_of_the_noise_on_a_smooth_image() -> None:
    yy, xx = torch.meshgrid(torch.linspace(-0.5, 0.5, 32), torch.linspace(-0.5, 0.5, 32), indexing="ij")
    clean = torch.stack([xx, yy, xx * yy]).unsqueeze(0)
    noisy = clean + 0.2 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    assert float(psnr(cbm3d(noisy, 0.2), clean)) > float(psnr(noisy, clean)) + 6


def test_mean_chroma_keeps_luma_and_uses_the_table() -> None:
    tiles = np.random.default_rng(3).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    table = luma_chroma_table(tiles, bins=16)
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 1.6 - 0.8
    out = mean_chroma(images, table)
    op = Colorize()
    assert torch.allclose(op.transform(out)[:, 0], op.transform(images)[:, 0], atol=1e-5)
    # chroma no longer depends on the input's chroma: two images with the same luma get the same colours
    grey = op.inverse(torch.cat([op.transform(images)[:, :1], torch.zeros(2, 2, 8, 8)], 1))
    assert torch.allclose(mean_chroma(grey, table), out, atol=1e-5)


def test_photo_section_runs_every_task_on_tiny_models(tmp_path: Path, monkeypatch) -> None:
    import benchmarks.photos as photos

    monkeypatch.setattr(photos, "PHOTO_QUICK", TINY_PHOTOS)
    cm = make_tiny_folder(tmp_path / "photo-cm", classes=())
    teacher = make_tiny_folder(tmp_path / "photo-edm", classes=(), boundary="edm", seed=1)
    doc = run(Options(model=None, teacher=None, out_dir=tmp_path / "out", sections=("photo_crops",), quick=True,
                      photo_model=cm, photo_teacher=teacher, photo_data=make_photos(tmp_path / "photos")))
    rows = doc["tables"]["photo_crops"]["rows"]
    tasks = {r[0] for r in rows}
    assert {"denoising sigma 25/255", "super-resolution x4", "colorization from luma",
            "inpainting: random strokes"} <= tasks
    methods = {r[1] for r in rows}
    assert "CBM3D (true sigma)" in methods and "CM (photo-cm)" in methods
    assert "teacher, 1 evaluation (photo-edm)" in methods
    assert "teacher's D, mean of 2 samples (photo-edm)" in methods  # TINY_PHOTOS' posterior_samples
    # every edit also runs with the teacher's D, the studio's default denoiser for photo models
    assert {r[0] for r in rows if r[1] == "teacher's D (photo-edm)"} == {
        "super-resolution x2", "super-resolution x4", "inpainting: centre box (1/4 of the area)",
        "inpainting: random strokes", "colorization from luma"}
    # the CM and the teacher's D keep the measured part of every edit with an operator (Algorithm 4)
    for task, method, *_, dc, _, _ in rows:
        if method.startswith(("CM (photo-cm)", "teacher's D")):
            assert dc is not None and dc < 1e-3, (task, method, dc)
    assert "photo_speed" not in doc["tables"]  # its own section now


def test_whole_photo_denoise_table_times_every_runtime_next_to_cbm3d(tmp_path: Path) -> None:
    from benchmarks.speed import whole_photo_denoise_table

    teacher = make_tiny_folder(tmp_path / "photo-edm", classes=(), boundary="edm", tiled=True)
    table = whole_photo_denoise_table(teacher, make_photos(tmp_path / "photos"), torch.device("cpu"), 32, 1)
    by_runtime = {row[1]: row for row in table.rows}
    assert table.rows[0][1] == "fp32, PyTorch eager" and table.rows[0][5] == 0.0  # the reference row
    assert table.rows[-1][0].startswith("CBM3D")
    for runtime, (_, _, seconds, per_mp, db, diff) in by_runtime.items():
        assert seconds > 0 and per_mp == pytest.approx(seconds / (32 * 32 / 1e6)) and np.isfinite(db)
        if runtime.startswith("fp32"):  # converted runtimes run the same network in fp32
            assert diff < 1e-3, runtime
    missing = whole_photo_denoise_table(teacher, tmp_path / "nowhere", torch.device("cpu"), 32, 1)
    assert not missing.rows and "skipped" in missing.notes[0]


@pytest.fixture
def cbm3d_told(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The sigmas benchmarks.noise hands CBM3D, which returns its input: the tables' rows, not CBM3D, are tested."""
    import benchmarks.noise

    told: list[float] = []

    def fake_cbm3d(noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        told.append(sigma)
        return noisy

    monkeypatch.setattr(benchmarks.noise, "cbm3d", fake_cbm3d)
    return told


def tiny_photo_teacher(folder: Path) -> Denoiser:
    from editing.models import Runtime, load_model

    made = make_tiny_folder(folder, classes=(), boundary="edm", tiled=True)
    return load_model(made, Runtime(torch.device("cpu"), torch.float32, None))


def test_jpeg_noise_table_runs_every_method_on_a_tiny_teacher(tmp_path: Path, cbm3d_told: list[float]) -> None:
    from benchmarks.noise import JPEG_NOISE_SIGMAS_255, JPEG_QUALITIES, jpeg_noise_table
    from editing import tasks

    teacher = tiny_photo_teacher(tmp_path / "photo-edm")
    table = jpeg_noise_table(teacher, "", make_photos(tmp_path / "photos", size=128), 1)
    studio = (f"read through, the mean of {tasks.AVERAGED_DRAWS} under {tasks.AVERAGED_ADDED:g} x its level added "
              "(the studio)")
    methods = {"the upload": "—", "read through, x the bootstrap's multiple (before)": 8,
               f"read through, the mean of 1 under {tasks.AVERAGED_ADDED:g} x its level added": 1,
               studio: tasks.AVERAGED_DRAWS, "CBM3D told 1 x the true sigma": "—",
               "CBM3D told 1.5 x the true sigma": "—"}
    for quality in JPEG_QUALITIES:
        for s255 in JPEG_NOISE_SIGMAS_255:
            rows = [r for r in table.rows if r[0] == f"JPEG q{quality}" and r[1] == s255]
            assert {r[2]: r[3] for r in rows} == methods
            assert all(np.isfinite(r[4]) and 0 < r[5] <= 1 for r in rows)
            upload = next(r for r in rows if r[2] == "the upload")
            assert next(r for r in rows if r[2].startswith("CBM3D"))[4] == upload[4]  # the fake CBM3D: its input
    crops = int(table.notes[0].split()[0])
    assert sorted(set(cbm3d_told)) == sorted({k * s / 127.5 for k in (1.0, 1.5) for s in JPEG_NOISE_SIGMAS_255})
    assert len(cbm3d_told) == 2 * crops * len(JPEG_QUALITIES) * len(JPEG_NOISE_SIGMAS_255)
    missing = jpeg_noise_table(None, "no teacher", tmp_path / "photos", 1)
    assert not missing.rows and missing.notes == ["skipped: no teacher"]


def test_camera_noise_table_runs_every_method_on_a_tiny_teacher(tmp_path: Path, cbm3d_told: list[float]) -> None:
    from benchmarks.noise import CAMERAS, camera_noise_table

    stabilized = cbm3d_told
    teacher = tiny_photo_teacher(tmp_path / "photo-edm")
    table = camera_noise_table(teacher, "", make_photos(tmp_path / "photos", size=128), 1, tmp_path / "crops")
    png_methods = {"one level, estimated (before)", "its curve, estimated (the studio)", "the true curve",
                   "CBM3D, variance-stabilized on the true curve", "CBM3D, variance-stabilized on the curve read"}
    jpeg_methods = {"one level, estimated (before)", "its curve, estimated (the studio)"}
    for upload, methods in (("PNG", png_methods), ("JPEG q90", jpeg_methods)):
        for camera, _, _ in CAMERAS:
            rows = [r for r in table.rows if r[0] == upload and r[1] == camera]
            assert {r[2] for r in rows} == methods and len(rows) == len(methods), (upload, camera)
            assert all(np.isfinite(r[4]) and 0 < r[5] <= 1 and r[3] >= 1 for r in rows)
    assert len(stabilized) == 2 * len(CAMERAS) * 2  # per camera and crop: on the true curve and on the curve read
    # the figure: noisy, the five PNG methods, clean, each 128 px crop at 2x
    assert Image.open(tmp_path / "crops" / "camera-noise.png").size == (7 * 256, 256)
    legend = (tmp_path / "crops" / "camera-noise.txt").read_text()
    assert legend.startswith("noisy | one level, estimated (before) | ") and "| clean (crop " in legend
    missing = camera_noise_table(None, "no teacher", tmp_path / "photos", 1)
    assert not missing.rows and missing.notes == ["skipped: no teacher"]


def test_demosaiced_noise_table_reads_the_spread_noise_near_its_raw_level(tmp_path: Path,
                                                                          cbm3d_told: list[float]) -> None:
    from benchmarks.noise import (BEFORE, BY_HAND, CBM3D_BY_HAND, DEMOSAICS, NO_WHOLE_PASS, STUDIO, demosaic,
                                  demosaiced_noise_table, mosaic)

    # the mosaic keeps each pixel's own colour of RGGB, and a flat colour demosaics back to itself
    flat = torch.tensor([0.2, -0.4, 0.6]).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    raw = mosaic(flat)
    assert raw[0, 0, 0] == pytest.approx(0.6) and raw[0, 0, 1] == pytest.approx(0.3) and raw[0, 1, 1] == pytest.approx(0.8)
    for _, code in DEMOSAICS:
        torch.testing.assert_close(demosaic(raw, code), flat.float(), atol=2e-4, rtol=0)

    teacher = tiny_photo_teacher(tmp_path / "photo-edm")
    table = demosaiced_noise_table(teacher, "", make_photos(tmp_path / "photos", size=128), 1, tmp_path / "crops")
    methods = {"the upload", BEFORE, NO_WHOLE_PASS, STUDIO,
               *(f"teacher at {k:g} x the raw level, by hand" for k in BY_HAND),
               *(f"CBM3D at {k:g} x the raw level, by hand" for k in CBM3D_BY_HAND)}
    for name, _ in DEMOSAICS:
        rows = [r for r in table.rows if r[0] == name]
        assert {r[1] for r in rows} == methods and all(np.isfinite(r[3]) and 0 < r[4] <= 1 for r in rows)
        read = next(r[2] for r in rows if r[1] == STUDIO)
        # correlated between neighbours, per pixel it reads low; the 2x2 chroma reading is taken instead
        assert 0.6 < read < 1.1, (name, read)
    assert len(cbm3d_told) == 2 * len(DEMOSAICS) * len(CBM3D_BY_HAND)
    # the figure: noisy, per pixel, the studio's, CBM3D, clean, each 128 px crop at 2x
    assert Image.open(tmp_path / "crops" / "demosaiced-noise.png").size == (5 * 256, 2 * 256)  # two crops
    legend = (tmp_path / "crops" / "demosaiced-noise.txt").read_text()
    assert legend.startswith(f"noisy | {BEFORE} | {STUDIO} | CBM3D at ") and "| clean (rows: crop " in legend
    assert "the median gain" in legend and "the most detailed" in legend
    missing = demosaiced_noise_table(None, "no teacher", tmp_path / "photos", 1)
    assert not missing.rows and missing.notes == ["skipped: no teacher"]


def test_spread_reading_table_takes_demosaiced_noise_and_nothing_else(tmp_path: Path) -> None:
    from benchmarks.noise import SPREAD_SIGMAS_255, spread_reading_table

    table = spread_reading_table(make_photos(tmp_path / "photos", size=128), 1)
    share = {(r[0], r[1]): r[3] for r in table.rows}
    assert share[("held-out photos at their own size", "none")] == 0 and share[("held-out crops (128 px)", "none")] == 0
    for sigma in SPREAD_SIGMAS_255:
        assert share[("white noise", f"{sigma}")] == 0
        assert share[("a camera's white noise (larger in the shadows)", f"{sigma} at mid grey")] == 0
        assert share[("demosaiced, bilinear", f"{sigma} on the mosaic")] == 1
        assert share[("demosaiced, edge-aware", f"{sigma} on the mosaic")] == 1
    assert all(r[2] == 2 for r in table.rows)  # the two held-out photos, one crop each
    assert spread_reading_table(tmp_path / "none", 1).notes == [f"skipped: no {tmp_path / 'none'}"]
