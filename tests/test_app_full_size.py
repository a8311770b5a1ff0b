"""The studio on a tiled model (a model of photo crops): edits at the upload's own size, alpha kept, the mask
painted on the fitted canvas mapped back, the size fitted to the studio's limits with a note, progress per tile
batch, Stop, and the before/after and download files."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import app.studio as studio_module
from app import forms
from app.request import TILE_SPEED_WINDOW, Cancels, Deadline, TileSpeeds, tile_callback
from app.studio import Studio
from app.tabs.canvas import CANVAS, load_canvas
from editing import images, noise, tasks
from editing.limits import Limits, Pass
from editing.models import Runtime
from editing.tiling import TileProgress, count_tiles, default_tiling
from tests.conftest import make_tiny_folder

R = 16


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Studio:
    weights = tmp_path_factory.mktemp("weights")
    make_tiny_folder(weights / "photo-cm", R, classes=(), tiled=True)
    make_tiny_folder(weights / "photo-edm", R, classes=(), boundary="edm", seed=1, tiled=True)
    make_tiny_folder(weights / "emoji-cm", R, classes=("a", "b"))
    return Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None),
                               out_dir=tmp_path_factory.mktemp("out"), limits=Limits(50.0), request_timeout=None)


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 70x45 RGBA image, half transparent at the left."""
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (45, 70, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:, :20, 3] = 100
    path = tmp_path_factory.mktemp("in") / "photo.png"
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def png(result_files: list[str], suffix: str = "-seed0.png") -> Image.Image:
    return Image.open(next(f for f in result_files if f.endswith(suffix)))


def test_every_edit_keeps_the_upload_size_and_alpha(studio: Studio, photo: Path) -> None:
    alpha = np.asarray(Image.open(photo).getchannel("A"))
    results = {
        "denoise": studio.denoise("photo-cm", None, str(photo), 0.2, 0, 0),
        "colorize": studio.colorize("photo-cm", None, str(photo), "2", 0, 1),
        "stroke": studio.stroke_edit("photo-cm", None, str(photo), None, 30, 2, 0, 1),
        "superresolve-restore": studio.superresolve("photo-cm", None, str(photo), 2, "restore", "2", 0, 1),
    }
    for task, result in results.items():
        out = png(result.files)
        size, kept = ((70, 44), alpha[:44]) if task.endswith("restore") else ((70, 45), alpha)
        assert out.size == size and out.mode == "RGBA", task
        np.testing.assert_array_equal(np.asarray(out.getchannel("A")), kept)
        before, after = result.before_after()
        assert Image.open(before).size == Image.open(after).size, task  # the slider compares like with like
    up = studio.superresolve("photo-cm", None, str(photo), 2, "upscale", "2", 0, 1)
    out = png(up.files)
    assert out.size == (140, 90)
    np.testing.assert_array_equal(np.asarray(out.getchannel("A")), alpha.repeat(2, 0).repeat(2, 1))
    # the emoji-style model still works on its own square
    assert png(studio.denoise("emoji-cm", "a", str(photo), 0.2, 0, 0).files).size == (R, R)



def test_the_api_s_default_style_is_ignored_by_a_model_without_styles(studio: Studio, photo: Path) -> None:
    """An API call that names the photo model leaves the style box at its default, the first model's style."""
    result = studio.denoise("photo-cm", "a", str(photo), 0.2, 0, 0)
    assert png(result.files).size == (70, 45) and "this model has no styles: 'a' ignored" in result.notes


def test_an_image_too_thin_to_read_its_noise_is_still_denoised(studio: Studio, tmp_path: Path) -> None:
    """A one-row upload has no 3x3 window to read its noise from: Denoise returns it (at the lowest level, or at a
    level set by hand) with a note that says why, not an error."""
    row = np.random.default_rng(3).integers(0, 256, (1, 50, 3), dtype=np.uint8)
    path = tmp_path / "row.png"
    Image.fromarray(row).save(path)
    for sigma in (None, 0.1):
        result = studio.denoise("photo-cm", None, str(path), sigma, 0, 0)
        assert png(result.files).size == (50, 1) and result.estimated == 0
        assert any(n.startswith("too small to read its noise (50x1") for n in result.notes)
    assert result.used == 0.1


def test_a_jpeg_s_noise_is_estimated_through_its_own_compression(studio: Studio, tmp_path: Path) -> None:
    """JPEG quantizes away the noise's finest grain, which the estimate reads: the studio reads it through the
    file's own compression (editing.noise.read_noise), and says so."""
    g = np.random.default_rng(5)
    ramp = np.tile(np.linspace(40, 200, 128)[None, :, None], (128, 1, 3))
    jpeg, png_path = tmp_path / "noisy.jpg", tmp_path / "noisy.png"
    noisy = np.clip(ramp + 10 * g.standard_normal(ramp.shape), 0, 255).round().astype(np.uint8)
    Image.fromarray(noisy).save(jpeg, quality=90)
    result = studio.denoise("photo-cm", None, str(jpeg), None, 0, 0)
    read = noise.estimate_noise_sigma(images.load_full(str(jpeg)).tensor).item()
    assert read * 127.5 < 8 and abs(result.estimated * 127.5 - 10) < 1.5  # reads low; read through: about 10
    assert any(n.startswith("a JPEG: its compression quantized") and f"({read:.4f})" in n for n in result.notes)
    # denoised at that level, the mean of AVERAGED_DRAWS denoises under added white noise, as the engine does it
    upload = images.load_full(str(jpeg)).tensor
    expected, _ = tasks.denoise(studio.load("photo-edm"), upload, sigma=result.estimated, added=tasks.AVERAGED_ADDED,
                                draws=tasks.AVERAGED_DRAWS)
    assert result.scale == 1.0 and result.used == pytest.approx(result.estimated)
    assert np.abs(np.asarray(png(result.files), dtype=float) - images.to_uint8(expected)[0]).max() <= 1
    assert any(f"the mean of {tasks.AVERAGED_DRAWS} denoise(s), each under white noise of {tasks.AVERAGED_ADDED:g} x"
               in n and f"{tasks.AVERAGED_DRAWS} evaluation(s)" in n for n in result.notes)
    # the time shown before it runs counts the draws
    tiles = count_tiles(128, 128, default_tiling(studio.resolution("photo-cm")))
    assert f"{tiles} tiles x {tasks.AVERAGED_DRAWS} evaluation(s) x 1 output(s)" in \
        studio.denoise_estimate("photo-cm", str(jpeg), 0)
    # under a budget that takes only two draws at its own size, two, and a note says so
    tight = Studio(list(studio.entries.values()), studio.runtime, limits=Limits(128 * 128 * 2.5 / 1e6),
                   out_dir=tmp_path / "tight", request_timeout=None)
    two = tight.denoise("photo-cm", None, str(jpeg), None, 0, 0)
    assert any("denoised as the mean of 2 draws, not" in n for n in two.notes)
    assert np.asarray(png(two.files)).shape[:2] == (128, 128)
    Image.fromarray(noisy).save(png_path)
    as_png = studio.denoise("photo-cm", None, str(png_path), None, 0, 0)
    assert abs(as_png.estimated * 127.5 - 10) < 1 and not any("JPEG" in n for n in as_png.notes)
    smooth = tmp_path / "smooth.jpg"
    Image.fromarray(ramp.astype(np.uint8)).save(smooth)
    clean = studio.denoise("photo-cm", None, str(smooth), None, 0, 0)
    assert clean.estimated == 0 and not any("JPEG" in n for n in clean.notes)  # no noise read, none to correct


def test_a_camera_s_noise_is_denoised_on_its_curve(studio: Studio, tmp_path: Path) -> None:
    """Noise whose std falls from the shadows to the highlights, as a camera's after its tone curve: the studio
    reads its curve (editing.noise.estimate_noise), denoises the image variance-stabilized once, and says so; a level
    set by hand is one level, as before."""
    g = np.random.default_rng(7)
    ramp = np.tile(np.linspace(30, 220, 384)[None, :, None], (256, 1, 3))
    std = 22 - 16 * (ramp - 30) / 190  # 22 levels in the shadows, 6 in the highlights
    path = tmp_path / "camera.png"
    Image.fromarray(np.clip(ramp + std * g.standard_normal(ramp.shape), 0, 255).round().astype(np.uint8)).save(path)
    result = studio.denoise("photo-cm", None, str(path), None, 0, 0)
    upload = images.load_full(str(path)).tensor
    curve = noise.estimate_noise(upload)
    assert result.curve == tuple(zip(curve.levels, curve.sigmas)) and curve.spread > 2.5
    assert abs(result.curve[0][1] * 127.5 - 21) < 3 and abs(result.curve[-1][1] * 127.5 - 7) < 2
    assert result.used == pytest.approx(noise.Stabilizer.of(curve).sigma)
    expected, _ = tasks.denoise(studio.load("photo-edm"), upload, sigma=curve)
    assert np.abs(np.asarray(png(result.files), dtype=float) - images.to_uint8(expected)[0]).max() <= 1
    assert any(n.startswith("estimated noise: its level depends on the value") for n in result.notes)
    assert any(n.startswith(f"denoised once on the image variance-stabilized to one level ({result.used:.4f})")
               for n in result.notes)
    by_hand = studio.denoise("photo-cm", None, str(path), 0.1, 0, 0)
    assert by_hand.used == 0.1 and any("used sigma = 0.1000 (override)" in n for n in by_hand.notes)


def test_a_camera_s_demosaiced_noise_is_denoised_on_the_phase_sub_images(studio: Studio, tmp_path: Path) -> None:
    """Noise on an RGGB mosaic, demosaiced (bilinear): spread over neighbouring pixels, which the studio reads and
    denoises on the image's 2x2 phase sub-images, then once over the whole (tasks.denoise(spread=True)), and says so;
    at a level set by hand too. White noise is not."""
    import cv2
    from benchmarks.noise import demosaic, mosaic

    ramp = torch.linspace(-0.7, 0.7, 192).view(1, 1, 1, 192).expand(1, 3, 128, 192) + torch.tensor(
        [0.0, 0.05, -0.05]).view(1, 3, 1, 1)
    raw = mosaic(ramp)
    noisy = images.to_uint8(demosaic(raw + np.random.default_rng(3).normal(0, 0.05, raw.shape),
                                     cv2.COLOR_BayerBG2RGB))[0]
    path = tmp_path / "demosaiced.png"
    Image.fromarray(noisy).save(path)
    result = studio.denoise("photo-cm", None, str(path), None, 0, 0)
    upload = images.load_full(str(path)).tensor
    reading = noise.read_noise(upload)
    assert reading.spread and result.used == pytest.approx(reading.level.sigmas[0])
    expected, _ = tasks.denoise(studio.load("photo-edm"), upload, sigma=reading.level, spread=True)
    assert np.abs(np.asarray(png(result.files), dtype=float) - images.to_uint8(expected)[0]).max() <= 1
    assert any(n.startswith("its noise is spread over neighbouring pixels") for n in result.notes)
    assert any("on its 2x2 phase sub-images" in n and "2 evaluation(s)" in n for n in result.notes)
    by_hand = studio.denoise("photo-cm", None, str(path), 0.1, 0, 0)
    expected, _ = tasks.denoise(studio.load("photo-edm"), upload, sigma=0.1, spread=True)
    assert np.abs(np.asarray(png(by_hand.files), dtype=float) - images.to_uint8(expected)[0]).max() <= 1
    assert any("(override); on its 2x2 phase sub-images" in n for n in by_hand.notes)
    white = tmp_path / "white.png"
    white_noise = 0.05 * torch.randn(ramp.shape, generator=torch.Generator().manual_seed(4))
    Image.fromarray(images.to_uint8(ramp + white_noise)[0]).save(white)
    plain = studio.denoise("photo-cm", None, str(white), None, 0, 0)
    assert not any("phase sub-images" in n for n in plain.notes)
    assert any(n.startswith("used sigma") and "1 evaluation(s)" in n for n in plain.notes)
    # the time shown before it runs counts the phases' evaluation (and, with refinement, its steps)
    tiles = count_tiles(128, 192, default_tiling(studio.resolution("photo-cm")))
    assert f"{tiles} tiles x 2 evaluation(s) x 1 output(s)" in studio.denoise_estimate("photo-cm", str(path), 0)
    assert f"{tiles} tiles x 4 evaluation(s) x 1 output(s)" in studio.denoise_estimate("photo-cm", str(path), 2)
    assert f"{tiles} tiles x 1 evaluation(s) x 1 output(s)" in studio.denoise_estimate("photo-cm", str(white), 0)
    assert studio.denoise_estimate("photo-cm", str(tmp_path / "missing.png"), 0) == ""


def test_the_add_noise_helper_makes_a_camera_s_noise_that_denoise_reads_as_a_curve(studio: Studio,
                                                                                     tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(30, 220, 384)[None, :, None], (256, 1, 3)).round().astype(np.uint8)
    path = tmp_path / "clean.png"
    Image.fromarray(ramp).save(path)
    noisy, notes = studio.add_noise("photo-cm", str(path), 0.06, 3, "camera")
    a, b = noise.camera_at_mid_grey(0.06)
    expected = noise.add_camera_noise(images.load_full(str(path)).tensor, a, b, torch.Generator().manual_seed(3))
    assert np.array_equal(np.asarray(Image.open(noisy).convert("RGB")), images.to_uint8(expected)[0])
    assert any(n.startswith("added a camera's noise") and "sigma 0.06 at mid grey" in n for n in notes)
    result = studio.denoise("photo-cm", None, noisy, None, 0, 0)
    assert len(result.curve) >= 3 and result.curve[0][1] > 1.5 * result.curve[-1][1]
    white, _ = studio.add_noise("photo-cm", str(path), 0.06, 3)  # the default: white, as before
    assert not studio.denoise("photo-cm", None, white, None, 0, 0).curve
    with pytest.raises(ValueError, match="kind of noise must be one of white, camera"):
        studio.add_noise("photo-cm", str(path), 0.06, 3, "pink")


def test_a_downscaled_upload_s_noise_is_read_at_its_own_size(tmp_path: Path) -> None:
    """A downscale averages the noise down and correlates neighbours, which the estimate then reads low (at 160 ->
    153 px, under half the noise left): the studio reads it at the upload's own size (a JPEG through its own
    compression) and carries it through the downscale (editing.noise.area_resize_std), and says so."""
    weights = tmp_path / "weights"
    make_tiny_folder(weights / "photo-cm", R, classes=(), tiled=True)
    make_tiny_folder(weights / "photo-edm", R, classes=(), boundary="edm", seed=1, tiled=True)
    small = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None), out_dir=tmp_path / "o",
                                limits=Limits(0.025), request_timeout=None)
    g = np.random.default_rng(5)
    ramp = np.tile(np.linspace(40, 200, 160)[None, :, None], (160, 1, 3))
    noisy = np.clip(ramp + 10 * g.standard_normal(ramp.shape), 0, 255).round().astype(np.uint8)
    for suffix in ("png", "jpg"):
        path = tmp_path / f"noisy.{suffix}"
        Image.fromarray(noisy).save(path, quality=90)
        result = small.denoise("photo-cm", None, str(path), None, 0, 0)
        w, h = png(result.files).size
        assert 140 < w == h < 160 and any("downscaled 160x160" in n for n in result.notes)
        left = 10 * noise.area_resize_std((160, 160), (h, w))
        read_after = noise.estimate_noise_sigma(images.area_resize(images.load_full(str(path)).tensor, h, w)).item()
        assert abs(result.estimated * 127.5 - left) < 0.12 * left and read_after * 127.5 < 0.6 * left, suffix
        assert any(n.startswith("the noise was estimated at the upload's own size") for n in result.notes)
        assert any(n.startswith("a JPEG: its compression") for n in result.notes) == (suffix == "jpg")
        # a JPEG's draws (each one evaluation more) are not taken at the cost of the image's size: where not even two
        # fit, the bootstrap's multiple, which is not run at that cost either (4 squares of 64 px, 7 evaluations)
        assert any("too large for the mean of 2 draws at its own size" in n for n in result.notes) == (suffix == "jpg")
        assert any("was not measured (this studio's limits" in n for n in result.notes) == (suffix == "jpg")
        assert result.scale == 1.0


def test_the_bootstrap_never_costs_an_upload_its_size(tmp_path: Path) -> None:
    """The bootstrap of a grey JPEG's level (6 x 6 squares of 64 px, 7 evaluations each: 1.03 megapixel-evaluations)
    runs when the studio's limits take it beside the image at its own size; where they would not, the image keeps
    its size and is denoised at the noise's level, with a note."""
    weights = tmp_path / "weights"
    make_tiny_folder(weights / "photo-cm", R, classes=(), tiled=True)
    ramp = np.tile(np.linspace(40, 200, 600)[None, :], (600, 1))
    path = tmp_path / "large.jpg"
    Image.fromarray(np.clip(ramp + 10 * np.random.default_rng(8).standard_normal(ramp.shape), 0, 255).round()
                    .astype(np.uint8)).save(path, quality=90)
    bootstrap = sum(p.megapixel_evaluations for p in tasks.denoise_scale_passes(600, 600, 1))
    assert bootstrap == pytest.approx(36 * 7 * 64**2 / 1e6)
    for limit, measured in ((0.36 + bootstrap + 0.01, True), (0.36 + bootstrap - 0.01, False)):
        studio = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None),
                                     out_dir=tmp_path / "o", limits=Limits(limit), request_timeout=None)
        result = studio.denoise("photo-cm", None, str(path), None, 0, 0, mode="sharp")
        assert png(result.files).size == (600, 600) and not any("downscaled" in n for n in result.notes)
        assert any("was not measured (this studio's limits leave no room" in n for n in result.notes) != measured
        assert result.used == pytest.approx(3**0.5 * result.estimated * result.scale)  # along the grey direction
        if not measured:
            assert result.scale == 1.0

def test_a_greyscale_upload_is_denoised_along_the_grey_direction(studio: Studio, tmp_path: Path) -> None:
    """A greyscale upload's noise lies along the grey direction: the model runs at sqrt(3) x its level, the result
    is grey, and the note says why."""
    g = np.random.default_rng(6)
    ramp = np.tile(np.linspace(40, 200, 64)[None, :], (48, 1))
    path = tmp_path / "grey.png"
    Image.fromarray(np.clip(ramp + 10 * g.standard_normal(ramp.shape), 0, 255).round().astype(np.uint8)).save(path)
    result = studio.denoise("photo-cm", None, str(path), None, 0, 0)
    out = np.asarray(png(result.files).convert("RGB"))
    assert out.shape == (48, 64, 3) and (out == out[..., :1]).all()
    assert result.used == pytest.approx(3**0.5 * result.estimated * result.scale)
    assert abs(result.estimated * 127.5 - 10) < 1.5
    assert any(n.startswith("a grey image: its noise lies along the grey direction") for n in result.notes)
    # and at the multiple the bootstrap measures on it, as the engine (noise saved as 8-bit, no compression)
    scale = tasks.denoise_scale(studio.load("photo-cm"), images.load_full(str(path)).tensor, result.estimated)
    assert result.scale == scale and any(
        n.startswith(f"a grey image: its noise is best denoised at {scale:.2f} x its level, measured")
        for n in result.notes
    ) == (scale != 1.0)
    override = studio.denoise("photo-cm", None, str(path), 0.1, 0, 0)  # a level set by hand is per channel too
    assert override.used == pytest.approx(0.1 * 3**0.5)
    as_jpeg = tmp_path / "grey.jpg"  # saved in colour: its channels decode equal, its noise read through grey trials
    Image.open(path).convert("RGB").save(as_jpeg, quality=90)
    jpeg = studio.denoise("photo-cm", None, str(as_jpeg), None, 0, 0)
    assert abs(jpeg.estimated * 127.5 - 10) < 1.5 and jpeg.used == pytest.approx(3**0.5 * jpeg.estimated * jpeg.scale)


def test_a_photo_model_s_square_inputs_are_centre_crops_not_padded(studio: Studio, photo: Path) -> None:
    """Interpolate and Compare take the model's square: a model of photo crops gets the centre square of a photo,
    never white bars; the emoji-style model pads as before."""
    frames = studio.interpolate("photo-cm", None, "images", 0, 1, str(photo), str(photo), 2, "2", 0)
    assert any("cut 70x45 to its centre 45x45 square" in n for n in frames.notes)
    assert not any("white" in n for n in frames.notes if "padding" in n)
    compared = studio.compare("photo-cm", None, 0, str(photo))
    assert any("reference's centre 32x32 (of 70x45, at its own scale)" in n for n in compared.notes)
    emoji = studio.interpolate("emoji-cm", "a", "images", 0, 1, str(photo), str(photo), 2, "2", 0)
    assert any("padding to 70x70 with white" in n for n in emoji.notes)


def test_steps_vs_quality_restores_a_photo_s_centre_at_its_own_scale(studio: Studio, tmp_path: Path) -> None:
    """On a photo model, the reference's centre several crops wide (studio.COMPARE_TILES) is restored from its
    block means at each step count and by the teacher's D at Super-resolve's default: every result keeps them
    (Algorithm 4's A x = A y, to 8-bit rounding) and its PSNR is against those pixels of the photo."""
    rng = np.random.default_rng(8)
    path = tmp_path / "large.png"
    Image.fromarray(rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)).save(path)
    result = studio.compare("photo-cm", None, 0, str(path))
    side = studio_module.COMPARE_TILES * R
    truth = images.from_uint8(np.asarray(Image.open(path))[None])[..., 75 - side // 2:75 + side // 2,
                                                                     100 - side // 2:100 + side // 2]
    low = torch.nn.functional.avg_pool2d(truth, 4)
    outputs = [f for f in result.files if f.endswith(".png") and "-x" not in Path(f).name]
    assert len(outputs) == len(studio_module.COMPARE_STEPS) + 1 == len(result.rows)
    assert (result.rows[-1].method, result.rows[-1].evaluations) == ("teacher's D (photo-edm)", 17)
    assert Path(outputs[-1]).name == "compare-teacher-s-D.png"
    for file, row in zip(outputs, result.rows):
        out = images.from_uint8(np.asarray(Image.open(file).convert("RGB"))[None])
        assert out.shape[-2:] == (side, side)
        assert float((torch.nn.functional.avg_pool2d(out, 4) - low).abs().max()) <= 1.01 / 127.5
        assert row.psnr_db == pytest.approx(float(10 * torch.log10(4 / (out - truth).pow(2).mean())), abs=0.2)
    shown = np.asarray(Image.open(result.reference).convert("RGB"))  # enlarged by nearest where small
    k = shown.shape[0] // side
    np.testing.assert_array_equal(shown[::k, ::k], images.to_uint8(truth)[0])


def test_faithful_denoise_is_the_teacher_s_evaluation(studio: Studio, photo: Path) -> None:
    faithful = studio.denoise("photo-cm", None, str(photo), 0.2, 0, 0, mode="faithful")
    sharp = studio.denoise("photo-cm", None, str(photo), 0.2, 0, 0, mode="sharp")
    assert "teacher photo-edm" in faithful.notes_markdown() and "sharp" in sharp.notes_markdown()
    assert not np.array_equal(np.asarray(png(faithful.files)), np.asarray(png(sharp.files)))
    with pytest.raises(ValueError, match="refinement steps need the sharp mode"):
        studio.denoise("photo-cm", None, str(photo), 0.2, 1, 0, mode="faithful")


def test_inpaint_on_the_canvas_changes_only_the_painted_part(studio: Studio, tmp_path: Path) -> None:
    photo = tmp_path / "opaque.png"  # (a transparent upload's pixels are kept as composited on white)
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (45, 70, 3), dtype=np.uint8)).save(photo)
    canvas = load_canvas(studio, str(photo), "photo-cm")["background"]
    assert canvas.size == (CANVAS, CANVAS)
    layer = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    layer[250:300, 300:400] = 255  # the image (70x45) sits centred on the 70x70 canvas square, scaled
    editor = {"background": canvas, "layers": [Image.fromarray(layer)], "composite": canvas}
    result = studio.inpaint("photo-cm", None, str(photo), None, editor, "2", 0, 1)
    before = np.asarray(Image.open(photo)).astype(int)
    after = np.asarray(png(result.files)).astype(int)
    expected = forms.full_size_mask(layer[..., 3] > 0, (45, 70))
    changed = (after[..., :3] != before[..., :3]).any(-1)
    assert changed.any() and not (changed & ~expected).any()  # outside the mask, byte for byte
    rows, cols = np.nonzero(expected)
    scale = CANVAS / 70
    assert rows.min() == int(250 / scale) - 12 and cols.min() == int(300 / scale)  # 12: the square's top margin
    on_canvas = f"{CANVAS}x{round(CANVAS * 45 / 70)}"  # the note names the part of the canvas the image covers
    assert any(f"layer 1: the image's {on_canvas} on the {CANVAS}x{CANVAS} canvas mapped to 70x45" in n
               for n in result.notes)


def test_an_upload_over_the_limit_is_downscaled_with_a_note(tmp_path: Path, photo: Path) -> None:
    weights = tmp_path / "weights"
    make_tiny_folder(weights / "photo-cm", R, classes=(), tiled=True)
    limit = 70 * 45 * 2 / 4 / 1e6
    small = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None), out_dir=tmp_path / "o",
                                limits=Limits(limit), request_timeout=None)
    result = small.stroke_edit("photo-cm", None, str(photo), None, 30, 2, 0, 1)  # 2 evaluations: half the pixels fit
    out = png(result.files)
    assert out.width * out.height <= 70 * 45 / 4 and abs(out.width / out.height - 70 / 45) < 0.1
    assert any("downscaled 70x45" in n for n in result.notes)
    assert "downscaled to fit" in small.estimate("photo-cm", str(photo), "1", 1, evaluations=2)
    # Colorize chooses its colours at a reduced size and runs one evaluation at full size: it keeps more
    colorized = small.colorize("photo-cm", None, str(photo), "1", 0, 1)
    out = png(colorized.files)
    passes = tasks.colorize_passes(out.height, out.width, R, forms.parse_schedule("1", tasks.DEFAULT_EDIT))
    assert [p.evaluations for p in passes] == [1, 1] and passes[0].height == R
    assert sum(p.megapixel_evaluations for p in passes) <= limit
    assert 70 * 45 / 4 < out.width * out.height < 70 * 45 and any("downscaled 70x45" in n for n in colorized.notes)
    line = small.colorize_estimate("photo-cm", str(photo), "1", 1)
    assert f"{out.width}x{out.height} output (downscaled to fit" in line and " + " in line


def test_a_48_megapixel_phone_photo_is_read_reduced_then_fitted(tmp_path: Path) -> None:
    """Over the 40 megapixels edited at full size (images.MAX_FULL_PIXELS), a phone's 48 MP JPEG is reduced as
    it is read, then fitted to the studio's limits as any upload: never refused for its size."""
    weights = tmp_path / "weights"
    make_tiny_folder(weights / "photo-cm", R, classes=(), tiled=True)
    small = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None), out_dir=tmp_path / "o",
                                limits=Limits(0.02), request_timeout=None)
    ramp = np.broadcast_to(np.linspace(0, 255, 8064).astype(np.uint8), (6048, 8064))
    phone = tmp_path / "IMG_0001.jpg"
    Image.fromarray(ramp).convert("RGB").save(phone, quality=90)
    assert "downscaled to fit" in small.estimate("photo-cm", str(phone), None, 1, evaluations=1)
    result = small.denoise("photo-cm", None, str(phone), 0.1, 0, 0)
    out = png(result.files)
    assert out.width * out.height <= 0.02e6 and abs(out.width / out.height - 8064 / 6048) < 0.05
    assert any("reduced 8064x6048 -> 7302x5477 as it was read" in n for n in result.notes), result.notes
    assert any("downscaled 7302x5477" in n for n in result.notes), result.notes


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wide") / "wide.png"
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (150, 200, 3), dtype=np.uint8)).save(path)
    return path


def mask_file(folder: Path, box: tuple[slice, slice], shape: tuple[int, int] = (150, 200)) -> Path:
    mask = np.zeros(shape, np.uint8)
    mask[box] = 255
    path = folder / f"mask-{box[0].start}-{box[0].stop}-{box[1].start}-{box[1].stop}.png"
    Image.fromarray(mask).save(path)
    return path


def test_inpaint_fits_the_box_around_the_mask_not_the_whole_image(tmp_path: Path, wide: Path) -> None:
    """The solver runs on the box around the mask (tasks.inpaint): a small mask keeps a photo at full size even
    where the whole image at these settings is over the limit; a large one downscales the photo, mask with it."""
    weights = tmp_path / "weights"
    make_tiny_folder(weights / "photo-cm", R, classes=(), tiled=True)
    limit = 2 * 4000 / 1e6  # 2 evaluations of 4000 pixels: the whole 200x150 would need 30000
    small = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None), out_dir=tmp_path / "o",
                                limits=Limits(limit), request_timeout=None)
    dot = mask_file(tmp_path, (slice(70, 75), slice(90, 96)))  # its box: 5x6 + 16 on each side = 37x38
    result = small.inpaint("photo-cm", None, str(wide), str(dot), None, "2", 0, 1)
    out = np.asarray(png(result.files))
    assert out.shape == (150, 200, 3) and not any("downscaled" in n for n in result.notes)
    before = np.array(Image.open(wide))
    changed = (out != before).any(-1)
    assert changed.any() and not changed[np.asarray(Image.open(dot)) == 0].any()
    tiles = count_tiles(5 + 2 * R, 6 + 2 * R, default_tiling(R))
    line = small.inpaint_estimate("photo-cm", str(wide), str(dot), "2", 1)
    assert f"200x150 output, {tiles} tiles x 2 evaluation(s)" in line
    assert tiles < count_tiles(150, 200, default_tiling(R))
    # a 60x80 hole reaches 30 px from the known pixels: solved at a reduced size, so cheap, at full size
    hole = mask_file(tmp_path, (slice(40, 100), slice(50, 130)))
    result = small.inpaint("photo-cm", None, str(wide), str(hole), None, "2", 0, 1)
    assert png(result.files).size == (200, 150) and not any("downscaled" in n for n in result.notes)
    # a long stroke 10 px wide is solved at full size on its box (42x212), over the limit: the photo is downscaled
    large = mask_file(tmp_path, (slice(70, 80), slice(10, 190)))
    result = small.inpaint("photo-cm", None, str(wide), str(large), None, "2", 0, 1)
    out = png(result.files)
    assert out.width * out.height < 150 * 200 and abs(out.width / out.height - 200 / 150) < 0.05
    assert any("downscaled 200x150" in n for n in result.notes)
    fill = images.resize_mask(images.load_mask_full(str(large), 150, 200).mask, out.height, out.width)
    assert sum(p.megapixel_evaluations for p in tasks.inpaint_passes(fill, R, 2)) <= limit
    shrunk = images.to_uint8(images.area_resize(images.from_uint8(before[None]), out.height, out.width))[0]
    changed = (np.asarray(out.convert("RGB")) != shrunk).any(-1)
    assert changed.any() and not (changed & ~fill[0, 0].numpy()).any()  # area-downscaled bytes kept outside it


def test_inpaint_estimate_without_a_mask_spans_a_small_mask_to_the_whole_image(tmp_path: Path, wide: Path) -> None:
    weights = tmp_path / "weights"
    make_tiny_folder(weights / "photo-cm", R, classes=(), tiled=True)
    small = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None), out_dir=tmp_path / "o",
                                limits=Limits(2 * 4000 / 1e6), request_timeout=None)
    line = small.inpaint_estimate("photo-cm", str(wide), None, "2", 1)
    assert line.startswith("**About ") and "200x150 output" in line and "for a small mask" in line
    assert "for thin strokes across the whole image (2, downscaled to" in line
    assert small.inpaint_estimate("photo-cm", None, None, "2", 1) == ""
    assert small.inpaint_estimate("photo-cm", str(wide), None, "not steps", 1) == ""


def test_results_are_capped_in_megapixels(tmp_path: Path, wide: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cheap request (a small mask) on a huge photo with many variations is held to RESULT_MEGAPIXELS of
    results: their memory and files."""
    monkeypatch.setattr(studio_module, "RESULT_MEGAPIXELS", 0.01)
    weights = tmp_path / "weights"
    make_tiny_folder(weights / "photo-cm", R, classes=(), tiled=True)
    capped = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None), out_dir=tmp_path / "o",
                                 limits=Limits(50.0), request_timeout=None)
    dot = mask_file(tmp_path, (slice(70, 75), slice(90, 96)))
    result = capped.inpaint("photo-cm", None, str(wide), str(dot), None, "2", 0, 2)
    for seed in (0, 1):
        out = png(result.files, f"-seed{seed}.png")
        assert 2 * out.width * out.height <= 0.01e6 and abs(out.width / out.height - 200 / 150) < 0.05
    assert any("megapixels of results" in n for n in result.notes)


def test_several_outputs_come_with_one_zip_and_photos_with_a_jpeg(studio: Studio, tmp_path: Path) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (260, 300, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "big.png")
    result = studio.colorize("photo-cm", None, str(tmp_path / "big.png"), "1", 0, 2)
    archive = result.files[0]
    assert archive.endswith(".zip")
    names = zipfile.ZipFile(archive).namelist()
    assert {"colorize-seed0.png", "colorize-seed1.png", "colorize-seed0.jpg", "colorize-seed1.jpg"} <= set(names)
    assert Image.open(png(result.files, "-seed1.jpg").filename).size == (300, 260)


def test_tile_progress_counts_batches_over_the_whole_request() -> None:
    seen: list[tuple[int, int, str]] = []
    callback = tile_callback(lambda done, total, unit: seen.append((done, total, unit)), Deadline(None), 2)
    for _ in range(2):
        for k in range(3):
            callback(TileProgress(k + 1, 3, 64))
    assert [d for d, *_ in seen] == [1, 2, 3, 4, 5, 6] and {t for _, t, _ in seen} == {6}
    assert seen[0][2] == "tile batches"


def test_tile_speeds_are_the_median_of_the_latest_batches() -> None:
    speeds = TileSpeeds(window=5)
    assert speeds.seconds_per_tile("m") is None
    for seconds in (3.0, 3.0, 3.0, 90.0):
        speeds.record("m", seconds * 32, 32)  # per tile: the batch's seconds over its tiles
    speeds.record("m", 1.0, 0)  # a batch of no tiles says nothing
    assert speeds.seconds_per_tile("m") == 3.0 and speeds.seconds_per_tile("other") is None
    for _ in range(3):
        speeds.record("m", 0.5, 1)
    assert speeds.seconds_per_tile("m") == 0.5  # the window keeps 3.0, 90.0 and three 0.5


def test_the_time_per_tile_follows_the_batches_that_ran(tmp_path: Path) -> None:
    """A time per tile measured while the CPU was busy (planted here: 100 s) is outvoted by the batches of the
    next tiled request, and the estimates follow."""
    weights = tmp_path / "weights"
    make_tiny_folder(weights / "photo-cm", R, classes=(), tiled=True)
    studio = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None), out_dir=tmp_path / "o",
                                 limits=Limits(50.0), request_timeout=None)
    measured = studio.seconds_per_tile("photo-cm")
    assert 0 < measured < 1 and studio.seconds_per_tile("photo-cm") == measured  # measured once
    for _ in range(TILE_SPEED_WINDOW):
        studio.tile_speeds.record("photo-cm", 100.0, 1)
    assert studio.seconds_per_tile("photo-cm") == 100.0
    path = tmp_path / "large.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(path)
    slow = studio.estimate("photo-cm", str(path), "2")
    batches = -(-count_tiles(300, 400, default_tiling(R)) // default_tiling(R).batch)
    assert 2 * batches - 1 > TILE_SPEED_WINDOW // 2  # enough timed batches to outvote the planted ones
    studio.stroke_edit("photo-cm", None, str(path), None, 30, 2, 0, 1)
    assert studio.seconds_per_tile("photo-cm") < 1
    fast = studio.estimate("photo-cm", str(path), "2")
    assert float(fast.split()[1]) < float(slow.split()[1]) / 100, (slow, fast)


def test_stop_stops_only_requests_that_started_before_it(studio: Studio, photo: Path) -> None:
    cancels = Cancels()
    earlier = cancels.watch("s1")
    cancels.press("s1")
    later, other = cancels.watch("s1"), cancels.watch("s2")
    assert earlier() and not later() and not other()

    def on_step(done: int, total: int, unit: str = "evaluations") -> None:
        if earlier():
            raise ValueError(f"stopped after {done} of {total} {unit}, as asked")

    with pytest.raises(ValueError, match="stopped after 1 of .* tile batches"):
        studio.superresolve("photo-cm", None, str(photo), 2, "upscale", "4", 0, 1, on_step)


def test_an_upload_that_would_run_past_half_the_timeout_is_downscaled(tmp_path: Path, photo: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "weights"
    make_tiny_folder(weights / "photo-cm", R, classes=(), tiled=True)
    slow = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None), out_dir=tmp_path / "o",
                               limits=Limits(50.0), request_timeout=10.0)
    monkeypatch.setattr(slow, "seconds_per_tile", lambda name: 0.25)  # 20 tiles of work in the 5 s allowed
    h, w = slow.fitted_size("photo-cm", 45, 70, 1, lambda height, width: [Pass(height, width, 2)])
    tiling = default_tiling(R)
    assert count_tiles(h, w, tiling) * 2 * 0.25 <= 5 and abs(w / h - 70 / 45) < 0.15 and h * w < 45 * 70
    result = slow.stroke_edit("photo-cm", None, str(photo), None, 30, 2, 0, 1)
    assert png(result.files).size == (w, h) and any("half the time limit" in n for n in result.notes)


def test_a_request_that_fits_only_as_a_thumbnail_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The box around a mask keeps its margin however small the image gets, so the cost stops falling with the
    size: steps that fit only below the model's crop size are refused with a clear message (the estimate says
    so first), not run on a thumbnail; fewer steps run."""
    weights = tmp_path / "weights"
    make_tiny_folder(weights / "photo-cm", R, classes=(), tiled=True)
    slow = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None), out_dir=tmp_path / "o",
                               limits=Limits(50.0), request_timeout=10.0)
    monkeypatch.setattr(slow, "seconds_per_tile", lambda name: 0.25)  # 20 tiles of work in the 5 s allowed
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(photo)
    mask = mask_file(tmp_path, (slice(140, 160), slice(190, 210)), shape=(300, 400))
    estimate = slow.inpaint_estimate("photo-cm", str(photo), str(mask), "editing 40", 1)
    assert estimate.startswith("**Too large")
    for steps in ("editing 40", "auto"):
        with pytest.raises(ValueError, match=r"too large for this studio: .* smaller than the model's 16 px crops; "
                                             r"ask for fewer steps or variations \((\d) steps? would fit, at "
                                             r"(\d+)x(\d+)\)") as refused:
            slow.inpaint("photo-cm", None, str(photo), str(mask), None, steps, 0, 1)
    k, *size = map(int, re.search(r"\((\d) steps? would fit, at (\d+)x(\d+)\)", str(refused.value)).groups())
    assert estimate.endswith(f"ask for fewer ({k} step{'s' if k > 1 else ''} would fit, at {size[0]}x{size[1]})")
    fewer = slow.inpaint("photo-cm", None, str(photo), str(mask), None, str(k), 0, 1)  # runs, at that size
    assert list(png(fewer.files).size) == size and min(size) >= R
    assert any("downscaled 400x300" in n for n in fewer.notes)
    with pytest.raises(ValueError, match="too large for this studio"):  # the most that fits: one more step does not
        slow.inpaint("photo-cm", None, str(photo), str(mask), None, str({1: 2, 2: 4, 4: 8}[k]), 0, 1)


def test_photo_edits_run_with_the_teacher_unless_asked_otherwise(studio: Studio, photo: Path) -> None:
    auto = studio.superresolve("photo-cm", None, str(photo), 2, "restore", "2", 0, 1)
    cm = studio.superresolve("photo-cm", None, str(photo), 2, "restore", "2", 0, 1, edit_with="cm")
    teacher = studio.superresolve("photo-cm", None, str(photo), 2, "restore", "2", 0, 1, edit_with="teacher")
    assert "teacher photo-edm" in auto.notes_markdown() and "consistency model photo-cm" in cm.notes_markdown()
    np.testing.assert_array_equal(np.asarray(png(auto.files)), np.asarray(png(teacher.files)))
    assert not np.array_equal(np.asarray(png(auto.files)), np.asarray(png(cm.files)))
    # a model of whole subjects keeps its consistency model; one without a teacher cannot be asked for one
    assert "consistency model emoji-cm" in studio.colorize("emoji-cm", "a", str(photo), "2", 0, 1).notes_markdown()
    with pytest.raises(ValueError, match="no diffusion teacher"):
        studio.colorize("emoji-cm", "a", str(photo), "2", 0, 1, edit_with="teacher")


def test_inpaint_s_default_steps_follow_its_denoiser(studio: Studio, photo: Path, tmp_path: Path) -> None:
    """Steps "auto" (the tab's default; also none): tasks.inpaint_schedule of the denoiser that runs, 39
    evaluations with the teacher's D, 17 with a consistency model; the estimate counts the same."""
    mask = mask_file(tmp_path, (slice(10, 30), slice(20, 50)), shape=(45, 70))
    for edit_with, evaluations in (("auto", 39), ("teacher", 39), ("cm", 17)):
        for steps in ("auto", None):
            result = studio.inpaint("photo-cm", None, str(photo), str(mask), None, steps, 0, 1, edit_with=edit_with)
            assert f"{evaluations} evaluations per image" in result.notes_markdown()
        line = studio.inpaint_estimate("photo-cm", str(photo), str(mask), "auto", 1, edit_with)
        assert f"x {evaluations} evaluation(s)" in line
    named = studio.inpaint("photo-cm", None, str(photo), str(mask), None, "editing 18", 0, 1)
    assert "17 evaluations per image" in named.notes_markdown()  # a schedule asked for is kept
    assert "17 evaluations per image" in studio.inpaint("emoji-cm", "a", str(photo), str(mask), None, "auto", 0,
                                                        1).notes_markdown()


def test_auto_steps_keep_the_image_s_size_before_the_finer_grid(tmp_path: Path, wide: Path) -> None:
    """Where the teacher's 39 evaluations would make the studio's limits downscale the photo and 17 would not,
    Auto takes 17 and says why (at full size); 40 steps asked for are kept, at the cost of the size."""
    weights = tmp_path / "weights"
    make_tiny_folder(weights / "photo-cm", R, classes=(), tiled=True)
    make_tiny_folder(weights / "photo-edm", R, classes=(), boundary="edm", seed=1, tiled=True)
    dot = mask_file(tmp_path, (slice(70, 75), slice(90, 96)))
    fill = images.load_mask_full(str(dot), 150, 200).mask
    cost = {e: sum(p.megapixel_evaluations for p in tasks.inpaint_passes(fill, R, e)) for e in (17, 39)}
    limit = 1.5 * cost[17]
    assert limit < cost[39]
    studio = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None), out_dir=tmp_path / "o",
                                 limits=Limits(limit), request_timeout=None)
    for steps in ("auto", None):
        result = studio.inpaint("photo-cm", None, str(wide), str(dot), None, steps, 0, 1)
        assert png(result.files).size == (200, 150)
        assert "17 evaluations per image" in result.notes_markdown()
        assert "Auto took 17 evaluations, not 39" in result.notes_markdown()
    assert "(17 evaluations per image)" in studio.inpaint_estimate("photo-cm", str(wide), None, "auto", 1)
    assert "x 17 evaluation(s)" in studio.inpaint_estimate("photo-cm", str(wide), str(dot), "auto", 1)
    asked = studio.inpaint("photo-cm", None, str(wide), str(dot), None, "editing 40", 0, 1)
    assert "39 evaluations per image" in asked.notes_markdown() and png(asked.files).width < 200
    assert "Auto took" not in asked.notes_markdown()


def test_auto_steps_upscale_the_whole_photo_with_fewer_evaluations(tmp_path: Path) -> None:
    """Upscaling x2, where 17 evaluations over the result would make the limits downscale it and 8 would not,
    Auto takes 8 (studio.SUPERRESOLVE_AUTO) and says why, at full size; 18 steps asked for are kept, downscaled."""
    weights = tmp_path / "weights"
    make_tiny_folder(weights / "photo-cm", R, classes=(), tiled=True)
    small = tmp_path / "small.png"
    Image.fromarray(np.random.default_rng(6).integers(0, 256, (36, 48, 3), dtype=np.uint8)).save(small)
    studio = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None), out_dir=tmp_path / "o",
                                 limits=Limits(1.5 * 8 * 72 * 96 / 1e6), request_timeout=None)
    assert [s.evaluations for s in studio_module.SUPERRESOLVE_AUTO] == [17, 8, 4]
    for steps in ("auto", None):
        result = studio.superresolve("photo-cm", None, str(small), 2, "upscale", steps, 0, 1)
        assert png(result.files).size == (96, 72)
        assert "steps: Auto took 8 evaluations, not 17" in result.notes_markdown()
    line = studio.superresolve_estimate("photo-cm", str(small), "auto", 1, "2", "upscale")
    assert "96x72 output" in line and "x 8 evaluation(s)" in line
    asked = studio.superresolve("photo-cm", None, str(small), 2, "upscale", "editing 18", 0, 1)
    assert png(asked.files).width < 96 and "Auto took" not in asked.notes_markdown()
    assert "x 17 evaluation(s)" in studio.superresolve_estimate("photo-cm", str(small), "editing 18", 1, "2",
                                                                  "upscale")
    # restore runs at the original's size (96x72 here): Auto keeps it whole the same way
    original = tmp_path / "original.png"
    Image.fromarray(np.random.default_rng(7).integers(0, 256, (72, 96, 3), dtype=np.uint8)).save(original)
    restored = studio.superresolve("photo-cm", None, str(original), 2, "restore", "auto", 0, 1)
    assert png(restored.files).size == (96, 72) and "Auto took 8 evaluations" in restored.notes_markdown()
    assert "x 8 evaluation(s)" in studio.superresolve_estimate("photo-cm", str(original), "auto", 1, "2", "restore")


def test_inpaint_estimate_counts_the_steps_auto_takes_for_each_end_of_its_range(tmp_path: Path, wide: Path) -> None:
    """Without a mask the estimate spans a small mask to thin strokes across the whole photo: where the teacher's
    39 evaluations fit the first but would downscale the second and 17 would not, each end counts its own."""
    weights = tmp_path / "weights"
    make_tiny_folder(weights / "photo-cm", R, classes=(), tiled=True)
    make_tiny_folder(weights / "photo-edm", R, classes=(), boundary="edm", seed=1, tiled=True)
    studio = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None), out_dir=tmp_path / "o",
                                 limits=Limits(1.2 * 17 * 150 * 200 / 1e6), request_timeout=None)
    line = studio.inpaint_estimate("photo-cm", str(wide), None, "auto", 1)
    assert "for a small mask (39 evaluations per image)" in line and "across the whole image (17)" in line, line
    asked = studio.inpaint_estimate("photo-cm", str(wide), None, "editing 40", 1)
    assert "across the whole image (39, downscaled to" in asked, asked


def test_strokes_from_the_stroke_canvas_land_at_full_size(studio: Studio, tmp_path: Path) -> None:
    """The stroke canvas sends only its strokes layer; over a photo (fitted, centred on the square canvas) they
    are painted at full size where they were drawn, and the rest of the edit's input is the photo's pixels."""
    from app.tabs.canvas import painted_canvas

    photo = tmp_path / "opaque.png"
    before = np.random.default_rng(3).integers(0, 256, (280, 420, 3), dtype=np.uint8)  # shown at its size
    Image.fromarray(before).save(photo)
    strokes = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    strokes[200:300, 100:300] = (0, 0, 255, 255)
    editor = painted_canvas(studio, str(photo), "photo-cm", Image.fromarray(strokes, "RGBA"))
    result = studio.stroke_edit("photo-cm", None, str(photo), editor, 1, 1, 0, 1)
    shown = np.asarray(Image.open(result.before).convert("RGB"))
    assert shown.shape == (280, 420, 3)
    painted = forms.full_size_mask(strokes[..., 3] > 0, (280, 420))
    rows, cols = np.nonzero(painted)  # the canvas is the 420 px square (photo rows 70..349) enlarged to 512
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (94, 176, 82, 246)
    inner = painted.copy()
    inner[[rows.min(), rows.max()], :] = False  # its edge cells mix a blue and a white canvas pixel
    inner[:, [cols.min(), cols.max()]] = False
    assert (shown[inner] == (0, 0, 255)).all()
    np.testing.assert_array_equal(shown[~painted], before[~painted])
    # only the strokes and R / 2 around them change; the rest of the photo is its bytes
    after = np.asarray(png(result.files).convert("RGB"))
    near = tasks.dilate(torch.from_numpy(painted)[None, None], R // 2)[0, 0].numpy()
    np.testing.assert_array_equal(after[~near], before[~near])
    assert (after[painted] != before[painted]).any() and any("kept exactly" in n for n in result.notes)
    assert not any("no strokes" in n for n in result.notes)
    # without strokes the whole photo is re-imagined, and the notes say so
    unpainted = studio.stroke_edit("photo-cm", None, str(photo), None, 1, 1, 0, 1)
    assert any(n.startswith("no strokes on the canvas: the whole photo") for n in unpainted.notes)


def test_strokes_over_a_photo_are_fitted_by_the_box_around_them(tmp_path: Path, wide: Path) -> None:
    from app.tabs.canvas import painted_canvas

    weights = tmp_path / "weights"
    make_tiny_folder(weights / "photo-cm", R, classes=(), tiled=True)
    limit = 2 * 4000 / 1e6  # the whole 200x150 at 2 evaluations would need 60000 pixel-evaluations
    small = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None), out_dir=tmp_path / "o",
                                limits=Limits(limit), request_timeout=None)
    strokes = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    strokes[250:260, 250:262] = (255, 0, 0, 255)  # near the middle: about 4x5 px of the photo
    editor = painted_canvas(small, str(wide), "photo-cm", Image.fromarray(strokes, "RGBA"))
    result = small.stroke_edit("photo-cm", None, str(wide), editor, 20, 2, 0, 1)
    assert png(result.files).size == (200, 150) and not any("downscaled" in n for n in result.notes)
    blob = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    blob[180:330, 180:330] = (255, 0, 0, 255)  # a wide blob runs at full size on its box: downscaled to fit
    editor = painted_canvas(small, str(wide), "photo-cm", Image.fromarray(blob, "RGBA"))
    result = small.stroke_edit("photo-cm", None, str(wide), editor, 20, 2, 0, 1)
    assert png(result.files).size < (200, 150) and any("downscaled 200x150" in n for n in result.notes)
    whole = small.stroke_edit("photo-cm", None, str(wide), None, 20, 2, 0, 1)  # no strokes: the whole photo
    assert png(whole.files).size < (200, 150) and any("downscaled 200x150" in n for n in whole.notes)


def test_restoring_an_image_too_thin_to_shrink_names_its_size(studio: Studio, tmp_path: Path) -> None:
    """Super-resolve's restore mode shrinks the upload by the factor first: a 300x1 image cannot be, and the message
    gives its own size (it read '300x0', the size after cutting to whole blocks)."""
    path = tmp_path / "thin.png"
    Image.fromarray(np.full((1, 300, 3), 128, np.uint8)).save(path)
    with pytest.raises(ValueError, match=r"original: 300x1 is too small to shrink by 2 \(it needs 2 px on each side\)"):
        studio.superresolve("photo-cm", None, str(path), 2, "restore", "1 step", 0, 1)


def test_a_photo_s_results_keep_its_exif(studio: Studio, tmp_path: Path) -> None:
    """Denoised or super-resolved, a photo keeps when and with what it was taken in its PNG and its JPEG (its
    orientation 1, as it was turned when read; editing.images.result_exif)."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0112], exif[0x0132] = "Phone Maker", 3, "2026:12:01 10:00:00"
    rng = np.random.default_rng(4)
    phone = tmp_path / "IMG_0002.jpg"
    Image.fromarray(rng.integers(0, 256, (270, 300, 3), dtype=np.uint8)).save(phone, quality=92, exif=exif)
    denoised = studio.denoise("photo-cm", None, str(phone), 0.1, 0, 0)
    upscaled = studio.superresolve("photo-cm", None, str(phone), 2, "upscale", "1", 0, 1)
    for result, size in ((denoised, (300, 270)), (upscaled, (600, 540))):
        written = [f for f in result.files if f.endswith(("-seed0.png", "-seed0.jpg"))]
        assert len(written) == 2
        for path in written:
            with Image.open(path) as image:
                kept = image.getexif()
                assert image.size == size and (kept[0x010F], kept[0x0132], kept[0x0112]) == (
                    "Phone Maker", "2026:12:01 10:00:00", 1), path


def noisy_ramp(path: Path, height: int, width: int, seed: int = 7, *, grey: bool = False) -> Path:
    """An opaque ramp with Gaussian noise of 10 levels, saved at `path` (PNG or JPEG by its suffix); `grey`: one
    channel."""
    ramp = np.tile(np.linspace(40, 200, width)[None, :], (height, 1))
    ramp = ramp if grey else np.repeat(ramp[..., None], 3, axis=2)
    noisy = ramp + 10 * np.random.default_rng(seed).standard_normal(ramp.shape)
    Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8)).save(path, quality=90)
    return path


def test_preview_windows_stay_inside_the_image_and_the_context_holds_the_window() -> None:
    for size in [(45, 70), (300, 200), (257, 1000), (16, 16)]:
        for centre in [(0, 0), (size[0] / 2, size[1] / 2), (size[0], size[1]), (-50, 1e4), (13.5, 7.25)]:
            window = studio_module.preview_window(size, centre, 64)
            context = studio_module.preview_window(size, window.centre, 64 + 2 * 16)
            for box in (window, context):
                assert 0 <= box.top and box.top + box.height <= size[0] and 0 <= box.left
                assert box.left + box.width <= size[1]
            assert (window.height, window.width) == (min(64, size[0]), min(64, size[1]))
            inner = window.within(context)
            assert inner.top >= 0 and inner.left >= 0
            assert inner.top + inner.height <= context.height and inner.left + inner.width <= context.width
            x = torch.arange(size[0] * size[1]).view(1, 1, *size)
            assert torch.equal(inner.crop(context.crop(x)), window.crop(x))


def test_a_preview_of_an_image_within_its_window_is_the_denoise_itself(studio: Studio, tmp_path: Path) -> None:
    """Where the whole image fits the window and its context, the preview is Denoise's result, pixel for pixel, for
    the estimated level and for one set by hand; and it reports the level the slider then starts from."""
    path = noisy_ramp(tmp_path / "small.png", 45, 70)
    for sigma in (None, 0.3):
        result = studio.denoise("photo-cm", None, str(path), sigma, 0, 0)
        shown = studio.denoise_preview("photo-cm", None, str(path), sigma, 0, 0)
        assert shown.window == studio_module.Window(0, 0, 45, 70)
        np.testing.assert_array_equal(np.asarray(shown.after), np.asarray(png(result.files)))
        np.testing.assert_array_equal(np.asarray(shown.before), np.asarray(Image.open(path)))
        assert shown.used == result.used and shown.level == pytest.approx(result.level, abs=1e-7)
    assert result.level == 0.3  # set by hand: the slider keeps it
    assert shown.notes[-1] == "used sigma = 0.3000 (override); 1 evaluation(s)"


def test_the_preview_window_is_where_the_upload_was_clicked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The point is in the upload's own pixels: on an upload the studio's limits downscale, the window lies around
    the same place of the fitted result; at 100% of the result, so its pixels are the fitted upload's."""
    monkeypatch.setattr(studio_module, "PREVIEW_SIDE", 32)
    monkeypatch.setattr(studio_module, "PREVIEW_CONTEXT", R)
    weights = tmp_path / "weights"
    make_tiny_folder(weights / "photo-cm", R, classes=(), tiled=True)
    small = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None), out_dir=tmp_path / "o",
                                limits=Limits(0.02), request_timeout=None)
    path = noisy_ramp(tmp_path / "wide.png", 200, 300)
    result = small.denoise("photo-cm", None, str(path), 0.2, 0, 0)
    height, width = np.asarray(png(result.files)).shape[:2]
    assert width < 300 and any("downscaled 300x200" in n for n in result.notes)
    fitted = images.area_resize(images.load_full(str(path)).tensor, height, width)
    for point, centre in [((150, 100), (height / 2, width / 2)), ((240, 40), (40 * height / 200, 240 * width / 300)),
                          ((299, 199), (height, width)), (None, (height / 2, width / 2))]:
        shown = small.denoise_preview("photo-cm", None, str(path), 0.2, 0, 0, point)
        assert shown.window == studio_module.preview_window((height, width), centre, 32), point
        np.testing.assert_array_equal(np.asarray(shown.before), images.to_uint8(shown.window.crop(fitted))[0])
        assert shown.after.size == (32, 32) and shown.used == pytest.approx(0.2)


@pytest.mark.parametrize("point", ["middle", [1], [1, 2, 3], [1, "x"], [float("nan"), 1], [True, 2], {"x": 1}])
def test_a_preview_point_that_is_not_two_numbers_gets_a_clear_message(studio: Studio, photo: Path, point) -> None:
    with pytest.raises(ValueError, match="the preview's point: expected"):
        studio.denoise_preview("photo-cm", None, str(photo), 0.2, 0, 0, point)


def test_a_preview_and_the_denoise_after_it_read_the_upload_s_noise_once(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The noise reading and a grey JPEG's bootstrap are kept for the upload: the preview redrawn and the Denoise
    that follows reuse them, and land on the same level; another file is read anew."""
    weights = tmp_path / "weights"
    make_tiny_folder(weights / "photo-cm", R, classes=(), tiled=True)
    make_tiny_folder(weights / "photo-edm", R, classes=(), boundary="edm", seed=1, tiled=True)
    fresh = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None), out_dir=tmp_path / "o",
                                limits=Limits(50.0), request_timeout=None)
    calls = {"read_noise": 0, "denoise_scale": 0}

    def counted(module: Any, name: str) -> None:
        original = getattr(module, name)

        def count(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, count)

    counted(noise, "read_noise")
    counted(tasks, "denoise_scale")
    path = noisy_ramp(tmp_path / "noisy.jpg", 96, 128, grey=True)
    first = fresh.denoise_preview("photo-cm", None, str(path), None, 0, 0)
    again = fresh.denoise_preview("photo-cm", None, str(path), None, 0, 0, [0, 0])
    result = fresh.denoise("photo-cm", None, str(path), None, 0, 0)
    assert calls == {"read_noise": 1, "denoise_scale": 1}
    assert first.used == again.used == result.used
    fresh.denoise_preview("photo-cm", None, str(noisy_ramp(tmp_path / "other.jpg", 96, 128, seed=8, grey=True)),
                          None, 0, 0)
    assert calls == {"read_noise": 2, "denoise_scale": 2}
