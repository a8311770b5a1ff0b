"""`python -m editing TASK ...`: every task turns PNGs into a PNG; bad input exits 2 with a message, no traceback.

A new process pays ~6 s importing torch and diffusers, so `python -m editing ARGS` runs in this process through
runpy (exactly what -m does; `cli`); `--help` runs as its own process, and the many error paths through main().
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from editing.__main__ import DEFAULT_MODEL, PHOTO_MODEL, TASKS, main, pick_model
from tests.conftest import TEST_CACHE_HOME, make_tiny_folder
from tests.test_images import heic, png_by_hand, smooth_rgb

ROOT = Path(__file__).resolve().parents[1]
RES = 16
PHOTO = (40, 30)  # the test photo's size: edits keep it (issue 31)


def python(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(TEST_CACHE_HOME)}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m editing ARGS` run in this process through runpy, exactly what -m does."""
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.object(sys, "argv", ["python -m editing", *args]), \
            mock.patch.dict(os.environ, {"XDG_CACHE_HOME": str(TEST_CACHE_HOME)}), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_module("editing", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as e:
            code = e.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    model = make_tiny_folder(d / "model", resolution=RES)
    photo = d / "photo.png"
    exif = Image.Exif()
    exif[0x010F] = "Phone Maker"  # which the edits' results keep
    Image.new("RGB", PHOTO, (200, 40, 30)).save(photo, exif=exif)  # not square, not the model size
    other = d / "other.png"
    Image.new("RGBA", (RES, RES), (0, 90, 200, 128)).save(other)
    mask = d / "mask.png"
    m = Image.new("L", (64, 64), 0)
    m.paste(255, (16, 16, 48, 48))
    m.save(mask)
    black = d / "black.png"
    Image.new("L", (RES, RES), 0).save(black)
    corrupt = d / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    bomb = d / "bomb.png"
    bomb.write_bytes(png_by_hand(100_000, 100_000, 8, 2, None))  # refused from its header, never decoded
    phone = d / "phone.heic"  # read by the CLI's own process, where only editing.images registers HEIF
    phone.write_bytes(heic(Image.fromarray(smooth_rgb(PHOTO[1], PHOTO[0]))))
    return dict(dir=d, model=model, photo=photo, other=other, mask=mask, black=black, corrupt=corrupt, bomb=bomb,
                phone=phone)


def task_commands(f: dict[str, Path]) -> dict[str, tuple[list[str], Path, tuple[int, int], int]]:
    """name -> (arguments, output path, expected size, expected frames)."""
    out = f["dir"] / "out"
    common = ["--model", str(f["model"]), "--device", "cpu", "--class", "noto"]
    return {
        "generate": (["generate", *common, "--ts", "0,22,39", "--out", str(out / "gen.png")],
                     out / "gen.png", (RES, RES), 1),
        "inpaint": (["inpaint", str(f["photo"]), "--mask", str(f["mask"]), *common, "--steps", "3",
                     "--out", str(out / "inpaint.png")], out / "inpaint.png", PHOTO, 1),
        "colorize": (["colorize", str(f["photo"]), *common, "--ts", "0,9,17", "--grid", "18", "--seed", "3",
                      "--out", str(out / "colorize.png")], out / "colorize.png", PHOTO, 1),
        "superresolve": (["superresolve", str(f["photo"]), *common, "--factor", "2", "--steps", "2",
                          "--out", str(out / "sr.png")], out / "sr.png", (2 * PHOTO[0], 2 * PHOTO[1]), 1),
        "strokes": (["strokes", str(f["photo"]), *common, "--n", "2", "--out", str(out / "strokes.png")],
                    out / "strokes_1.png", PHOTO, 1),
        "interpolate": (["interpolate", *common, "--seed", "1", "--seed-b", "2", "--frames", "3",
                         "--out", str(out / "interp.gif")], out / "interp.gif", (RES, RES), 3),
        "interpolate-images": (["interpolate", str(f["photo"]), str(f["other"]), *common, "--frames", "4",
                                "--out", str(out / "interp.png")], out / "interp.png", (4 * RES, RES), 1),
        "denoise": (["denoise", str(f["photo"]), *common, "--refine", "1", "--out", str(out / "denoise.png")],
                    out / "denoise.png", PHOTO, 1),
        "denoise-heic": (["denoise", str(f["phone"]), *common, "--out", str(out / "phone.png")],
                         out / "phone.png", PHOTO, 1),
    }


@pytest.fixture(scope="module")
def runs(files: dict[str, Path]) -> dict[str, subprocess.CompletedProcess]:
    """Every task, a 2-variation generate and a corrupt input, run by `python -m editing`."""
    commands = {k: c[0] for k, c in task_commands(files).items()}
    common = ["--model", str(files["model"]), "--device", "cpu"]
    commands["variations"] = ["generate", *common, "--class", "1", "--seed", "5", "--n", "2",
                              "--out", str(files["dir"] / "variations" / "gen.png")]
    commands["bad"] = ["colorize", str(files["corrupt"]), *common, "--out", str(files["dir"] / "x.png")]
    return {name: cli(*argv) for name, argv in commands.items()}


@pytest.mark.parametrize(
    "name", ["generate", "inpaint", "colorize", "superresolve", "strokes", "interpolate", "interpolate-images",
             "denoise", "denoise-heic"],
)
def test_task_writes_png(name: str, files: dict[str, Path], runs: dict[str, subprocess.CompletedProcess]) -> None:
    result = runs[name]
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    _, path, size, frames = task_commands(files)[name]
    assert path.is_file() and str(path) in result.stdout
    with Image.open(path) as image:
        assert image.size == size and image.mode in ("RGB", "P")
        assert getattr(image, "n_frames", 1) == frames


@pytest.mark.parametrize("name", ["inpaint", "colorize", "superresolve", "denoise"])
def test_an_edit_keeps_the_photo_s_exif(name: str, files: dict[str, Path],
                                        runs: dict[str, subprocess.CompletedProcess]) -> None:
    assert runs[name].returncode == 0, runs[name].stderr
    with Image.open(task_commands(files)[name][1]) as image:
        assert image.getexif().get(0x010F) == "Phone Maker"


def test_denoise_reports_sigma(runs: dict[str, subprocess.CompletedProcess]) -> None:
    assert "noise sigma" in runs["denoise"].stderr


def test_help_lists_every_task() -> None:
    result = python("-m", "editing", "--help")
    assert result.returncode == 0
    for task in TASKS:
        assert task in result.stdout
    # Parsing imports no torch (6 s of a new process's imports): --help and a usage error answer at once.
    parsed = python("-c", "import sys; from editing.__main__ import build_parser; build_parser(); "
                          "print(sorted(m for m in ('torch', 'diffusers', 'numpy') if m in sys.modules))")
    assert parsed.returncode == 0 and parsed.stdout.strip() == "[]", parsed.stdout + parsed.stderr


@pytest.mark.parametrize("task", list(TASKS))
def test_task_help(task: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([task, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--out" in text and "--model" in text and TASKS[task].split()[0] in text


def test_variations(files: dict[str, Path], runs: dict[str, subprocess.CompletedProcess]) -> None:
    result = runs["variations"]
    assert result.returncode == 0, result.stderr
    for i in range(2):
        with Image.open(files["dir"] / "variations" / f"gen_{i}.png") as image:
            assert image.size == (RES, RES)


def test_bad_input_subprocess(runs: dict[str, subprocess.CompletedProcess]) -> None:
    result = runs["bad"]
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "corrupt.png" in result.stderr and "error" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["colorize", "{dir}/missing.png"], "'missing.png': file not found"),
        (["colorize", "{corrupt}"], "corrupt or truncated"),
        (["colorize", "{bomb}"], "too large"),
        (["inpaint", "{photo}", "--mask", "{bomb}"], "too large"),
        (["generate", "--ts", "0,22,22,39"], "ascending"),
        (["generate", "--ts", "0,22,38"], "end at"),
        (["generate", "--steps", "0"], "steps"),
        (["generate", "--class", "dog"], "unknown class 'dog'"),
        (["generate", "--class", "7"], "between 0 and 2"),
        (["generate", "--n", "0"], "--n"),
        (["superresolve", "{photo}", "--factor", "3"], "factor"),
        (["inpaint", "{photo}", "--mask", "{black}"], "nothing to fill"),
        (["interpolate", "{photo}"], "two images"),
        (["interpolate", "--frames", "1"], "frames"),
        (["denoise", "{photo}", "--sigma", "-1"], "noise level"),
        (["inpaint", "{photo}", "--mask", "{mask}", "--denoiser", "best"], "must be one of auto, teacher, cm"),
        (["denoise", "{photo}", "--refine", "40"], "refinement"),
    ],
)
def test_bad_input_exits_2(args: list[str], message: str, files: dict[str, Path],
                           capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(**files) for a in args] + ["--model", str(files["model"]), "--device", "cpu",
                                                "--out", str(files["dir"] / "bad.png")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (files["dir"] / "bad.png").exists()


def test_missing_model_exits_2(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--model", str(files["dir"] / "nomodel"), "--out", str(files["dir"] / "x.png")]) == 2
    assert "model folder not found" in capsys.readouterr().err


def test_argparse_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["paint"], ["generate"], ["generate", "--out", "x.png", "--steps", "2", "--ts", "0,39"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    capsys.readouterr()


def test_full_size_alpha_jpeg_and_several_inputs(files: dict[str, Path], tmp_path: Path) -> None:
    """Edits write the input's size; a PNG keeps an RGBA input's alpha, a JPEG is written by extension; several
    inputs go to a folder; an input smaller than the model is padded and cropped back."""
    rgba = tmp_path / "sticker.png"
    alpha = Image.linear_gradient("L").resize((50, 20))
    picture = Image.new("RGB", (50, 20), (30, 160, 90))
    picture.putalpha(alpha)
    picture.save(rgba)
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (9, 12), (10, 20, 30)).save(tiny)
    common = ["--model", str(files["model"]), "--device", "cpu", "--class", "0", "--steps", "2"]
    commands = {
        "alpha": ["strokes", str(rgba), *common, "--out", str(tmp_path / "a.png")],
        "jpeg": ["strokes", str(files["photo"]), *common, "--out", str(tmp_path / "b.jpg")],
        "several": ["colorize", str(files["photo"]), str(rgba), str(tiny), *common, "--out", str(tmp_path / "many")],
        "limit": ["strokes", str(files["photo"]), *common, "--max-megapixels", "0.001", "--out", str(tmp_path / "c.png")],
    }
    runs = {name: cli(*argv) for name, argv in commands.items()}
    assert runs["alpha"].returncode == 0, runs["alpha"].stderr
    with Image.open(tmp_path / "a.png") as image:
        assert image.mode == "RGBA" and image.size == (50, 20)
        assert (np.asarray(image.getchannel("A")) == np.asarray(alpha)).all()
    assert "keeps the upload's alpha" in runs["alpha"].stderr and "eval" in runs["alpha"].stderr  # the note, the bar
    assert runs["jpeg"].returncode == 0, runs["jpeg"].stderr
    with Image.open(tmp_path / "b.jpg") as image:
        assert image.format == "JPEG" and image.size == PHOTO
    assert runs["several"].returncode == 0, runs["several"].stderr
    for name, size in (("photo", PHOTO), ("sticker", (50, 20)), ("tiny", (9, 12))):
        with Image.open(tmp_path / "many" / f"{name}.png") as image:
            assert image.size == size
    code, err = runs["limit"].returncode, runs["limit"].stderr
    assert code == 2 and "megapixel-evaluations" in err and "Traceback" not in err


def test_strokes_with_a_mask_change_only_their_surroundings(files: dict[str, Path], tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    before = np.random.default_rng(7).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    Image.fromarray(before).save(photo)
    painted = np.zeros((60, 80), bool)
    painted[20:26, 30:40] = True
    Image.fromarray(painted.astype(np.uint8) * 255).save(tmp_path / "strokes.png")
    common = ["--model", str(files["model"]), "--device", "cpu", "--class", "noto", "--steps", "2"]
    done = cli("strokes", str(photo), "--strokes", str(tmp_path / "strokes.png"), *common, "--out",
               str(tmp_path / "out.png"))
    assert done.returncode == 0, done.stderr
    after = np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))
    near = np.zeros_like(painted)
    near[20 - RES // 2:26 + RES // 2, 30 - RES // 2:40 + RES // 2] = True  # the strokes grown by R / 2
    np.testing.assert_array_equal(after[~near], before[~near])
    assert (after[painted] != before[painted]).any()


def test_denoise_with_a_teacher_folder_is_the_faithful_mode(files: dict[str, Path]) -> None:
    teacher = make_tiny_folder(files["dir"] / "teacher-edm", resolution=RES, boundary="edm", seed=2)
    out = files["dir"] / "teacher-out.png"
    common = ["denoise", str(files["photo"]), "--model", str(teacher), "--device", "cpu", "--class", "noto",
              "--sigma", "0.2"]
    ok = cli(*common, "--out", str(out))
    assert ok.returncode == 0, ok.stderr
    assert f"denoise mode: faithful ({teacher})" in ok.stderr and Image.open(out).size == PHOTO
    refused = cli(*common, "--out", str(out), "--mode", "sharp")
    assert refused.returncode != 0 and "is a diffusion teacher" in refused.stderr and "Traceback" not in refused.stderr


def test_edits_of_a_photo_model_run_with_its_teacher_unless_asked_otherwise(files: dict[str, Path]) -> None:
    cm = make_tiny_folder(files["dir"] / "photo-cm", resolution=RES, classes=(), tiled=True)
    teacher = make_tiny_folder(files["dir"] / "photo-edm", resolution=RES, classes=(), boundary="edm", seed=3,
                               tiled=True)
    outs = {}
    for choice in ("auto", "teacher", "cm"):
        outs[choice] = files["dir"] / f"sr-{choice}.png"
        ok = cli("superresolve", str(files["photo"]), "--model", str(cm), "--device", "cpu", "--factor", "2",
                 "--steps", "2", "--denoiser", choice, "--out", str(outs[choice]))
        assert ok.returncode == 0, ok.stderr
        assert f"the solver's denoiser is {teacher if choice != 'cm' else cm}" in ok.stderr, ok.stderr
    pixels = {k: np.asarray(Image.open(v)) for k, v in outs.items()}
    np.testing.assert_array_equal(pixels["auto"], pixels["teacher"])
    assert not np.array_equal(pixels["auto"], pixels["cm"])
    # the emoji-style test model (not tiled) keeps its consistency model; it has no teacher to ask for
    refused = cli("colorize", str(files["photo"]), "--model", str(files["model"]), "--device", "cpu", "--class",
                  "noto", "--denoiser", "teacher", "--out", str(files["dir"] / "c.png"))
    assert refused.returncode == 2 and "no diffusion teacher" in refused.stderr and "Traceback" not in refused.stderr


def test_denoise_reads_a_jpeg_s_noise_through_its_compression(files: dict[str, Path]) -> None:
    """As the studio: on a JPEG the estimate (which reads the grain the compression left) is read through the file's
    own compression, and the sigma used is that; a PNG of the same pixels is denoised at the estimate itself."""
    teacher = make_tiny_folder(files["dir"] / "jpeg-edm", resolution=RES, classes=(), boundary="edm", seed=4,
                               tiled=True)
    ramp = np.tile(np.linspace(40, 200, 96)[None, :, None], (96, 1, 3))
    noisy = np.clip(ramp + 10 * np.random.default_rng(6).standard_normal(ramp.shape), 0, 255).round()
    jpeg = files["dir"] / "noisy.jpg"
    Image.fromarray(noisy.astype(np.uint8)).save(jpeg, quality=90)
    ok = cli("denoise", str(jpeg), "--model", str(teacher), "--device", "cpu", "--out", str(files["dir"] / "d.png"))
    assert ok.returncode == 0, ok.stderr
    said = re.search(r"a JPEG: .* estimate reads \(([\d.]+)\); read through the file's own compression it is ([\d.]+)",
                     ok.stderr)
    assert said, ok.stderr
    read, through = float(said[1]), float(said[2])
    assert read * 127.5 < 8 and abs(through * 127.5 - 10) < 1.5
    scaled = re.search(r"best denoised at ([\d.]+) x its level", ok.stderr)  # the bootstrap's multiple, if not 1
    used = float(re.search(r"noise sigma ([\d.]+) \(on the", ok.stderr)[1])  # the sigma used
    assert used == pytest.approx(through * (float(scaled[1]) if scaled else 1.0), rel=5e-3, abs=1e-4)


def test_denoise_runs_demosaiced_noise_on_the_phase_sub_images(files: dict[str, Path]) -> None:
    """As the studio: a camera's noise after demosaicing, read as spread over neighbouring pixels, is denoised on
    the image's 2x2 phase sub-images and once more over the whole (tasks.denoise(spread=True)), at the level read or
    one given; the output is that."""
    import cv2
    import torch

    from benchmarks.noise import demosaic, mosaic
    from editing import images, noise, tasks
    from editing.models import load_model, resolve_runtime

    teacher = make_tiny_folder(files["dir"] / "spread-edm", resolution=RES, classes=(), boundary="edm", seed=5,
                               tiled=True)
    ramp = torch.linspace(-0.7, 0.7, 96).view(1, 1, 1, 96).expand(1, 3, 64, 96) + torch.tensor(
        [0.0, 0.05, -0.05]).view(1, 3, 1, 1)
    raw = mosaic(ramp)
    path = files["dir"] / "demosaiced.png"
    Image.fromarray(images.to_uint8(demosaic(raw + np.random.default_rng(3).normal(0, 0.05, raw.shape),
                                             cv2.COLOR_BayerBG2RGB))[0]).save(path)
    upload = images.load_full(str(path)).tensor
    reading = noise.read_noise(upload)
    assert reading.spread
    model = load_model(teacher, resolve_runtime("cpu"))
    for given in (None, 0.1):
        out = files["dir"] / f"spread-{given}.png"
        sigma = ["--sigma", str(given)] if given is not None else []
        ok = cli("denoise", str(path), "--model", str(teacher), "--device", "cpu", *sigma, "--out", str(out))
        assert ok.returncode == 0, ok.stderr
        assert "on its 2x2 phase sub-images (its noise is spread over neighbouring pixels)" in ok.stderr, ok.stderr
        expected, _ = tasks.denoise(model, upload, sigma=reading.level if given is None else given, spread=True)
        assert np.abs(np.asarray(Image.open(out), dtype=float) - images.to_uint8(expected)[0]).max() <= 1


def test_denoise_runs_a_grey_image_at_the_bootstraps_multiple(files: dict[str, Path]) -> None:
    """As the studio: a grey image's noise, the same in R, G and B, is denoised at sqrt(3) x its level (along the
    grey direction) times the multiple the bootstrap measures on it (the shipped photo teacher: on a smooth ramp,
    more than 1); the output is grey."""
    from editing import images, noise

    teacher = Path(__file__).resolve().parents[1] / "weights" / "photo64-edm"
    ramp = np.tile(np.linspace(40, 200, 96)[None, :], (80, 1))
    path = files["dir"] / "grey.png"
    Image.fromarray(np.clip(ramp + 10 * np.random.default_rng(7).standard_normal(ramp.shape), 0, 255).round()
                    .astype(np.uint8)).save(path)
    out = files["dir"] / "grey-out.png"
    ok = cli("denoise", str(path), "--model", str(teacher), "--device", "cpu", "--out", str(out))
    assert ok.returncode == 0, ok.stderr
    estimate = float(noise.estimate_noise_sigma(images.load_full(str(path)).tensor).mean())
    read = re.search(r"estimated noise sigma = ([\d.]+)", ok.stderr)
    scaled = re.search(r"a grey image: its noise is best denoised at ([\d.]+) x its level", ok.stderr)
    assert read and float(read[1]) == pytest.approx(estimate, abs=1e-4) and "along the grey direction" in ok.stderr
    assert scaled and float(scaled[1]) > 1, ok.stderr
    used = float(re.search(r"noise sigma ([\d.]+) \(on the", ok.stderr)[1])
    assert used == pytest.approx(3**0.5 * estimate * float(scaled[1]), rel=5e-3, abs=1e-4)
    pixels = np.asarray(Image.open(out).convert("RGB"))
    assert pixels.shape == (80, 96, 3) and (pixels == pixels[..., :1]).all()


def test_denoise_runs_a_cameras_noise_on_its_curve(files: dict[str, Path]) -> None:
    """As the studio: noise whose level falls from the shadows to the highlights is read as a curve and denoised
    once variance-stabilized (editing.noise.Stabilizer); the output is the engine's on that curve."""
    from editing import images, noise, tasks
    from editing.models import load_model, resolve_runtime

    teacher = Path(__file__).resolve().parents[1] / "weights" / "photo64-edm"
    ramp = np.tile(np.linspace(30, 220, 384)[None, :, None], (256, 1, 3))
    std = 22 - 16 * (ramp - 30) / 190
    path = files["dir"] / "camera.png"
    Image.fromarray(np.clip(ramp + std * np.random.default_rng(8).standard_normal(ramp.shape), 0, 255).round()
                    .astype(np.uint8)).save(path)
    out = files["dir"] / "camera-out.png"
    ok = cli("denoise", str(path), "--model", str(teacher), "--device", "cpu", "--out", str(out))
    assert ok.returncode == 0, ok.stderr
    upload = images.load_full(str(path)).tensor
    curve = noise.estimate_noise(upload)
    assert not curve.is_constant and f"depends on the value, {noise.describe_level(curve)}" in ok.stderr, ok.stderr
    used = float(re.search(r"noise sigma ([\d.]+) \(on the \[-1, 1\] scale, variance-stabilized\)", ok.stderr)[1])
    assert used == pytest.approx(noise.Stabilizer.of(curve).sigma, abs=1e-4)
    expected, _ = tasks.denoise(load_model(teacher, resolve_runtime("cpu")), upload, sigma=curve)
    assert np.abs(np.asarray(Image.open(out).convert("RGB"), dtype=float) - images.to_uint8(expected)[0]).max() <= 1


def test_the_default_model_follows_the_input_s_size_as_the_loader_reads_it(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The photo model for inputs over the emoji model's 32 px (a phone's HEIC too), the emoji model for the rest
    and for files that cannot be read (the loader then says why)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / PHOTO_MODEL).mkdir(parents=True)
    Image.fromarray(smooth_rgb(24, 30)).save("icon.png")
    Path("phone.heic").write_bytes(heic(Image.fromarray(smooth_rgb(100, 140))))
    Path("notes.png").write_text("not a picture")

    def chosen(*images: str) -> str:
        return pick_model(argparse.Namespace(model=None, images=list(images)))

    assert chosen("icon.png") == chosen("notes.png") == DEFAULT_MODEL
    assert chosen("phone.heic") == chosen("icon.png", "phone.heic") == PHOTO_MODEL
    assert pick_model(argparse.Namespace(model="mine", images=["phone.heic"])) == "mine"
