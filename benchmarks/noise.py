"""Section noise: the blind noise estimate (editing.noise) against the truth on 8-bit uploads of images the
models never saw: held-out emoji (flat colours, hard edges, white backgrounds) and crops of the held-out photos, the
photos also as JPEG uploads (a camera's or a phone's photo), whose compression quantizes away the finest grain of
the noise, which is what the estimate reads."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from benchmarks.common import Dataset, Table, label_for, subset
from editing import tasks
from editing.images import area_resize, from_uint8, jpeg_compression, to_uint8
from benchmarks.photos import cbm3d
from editing.metrics import psnr, ssim
from editing.noise import (BOOTSTRAP_SIDE, CURVE_VARIES, JPEG_CURVE_VARIES, LAPLACIAN, SAMPLE_GRID, SAMPLE_PIXELS,
                           SAMPLE_SIDE, SATURATED, JpegCompression, NoiseCurve, Stabilizer, add_camera_noise,
                           area_resize_std, camera_at_mid_grey, camera_curve, estimate_noise, estimate_noise_curve,
                           estimate_noise_sigma, jpeg_noise_sigma, jpeg_roundtrip, read_noise, robust_sigma,
                           through_jpeg, windows)
from editing.precond import Denoiser
from editing.tiling import phase_merge, phase_split
from training.photos import load_heldout

SIGMAS_255 = (5, 10, 15, 25, 50)  # Gaussian std on the 0-255 scale; x / 127.5 on the engine's [-1, 1]
CROP = 128  # photo crops, pixels
JPEG_QUALITIES = (90, 75)  # Pillow's quality (its default chroma subsampling, 4:2:0)
SIGNAL_DEPENDENT = (0.004, 0.0002)  # noise variance a x + b on [0, 1]: a raw-like camera noise
DOWNSCALED_FROM = 136  # uploads the studio's fit shrinks to CROP: a slight downscale, as a request a little over limits


def all_windows(images: torch.Tensor) -> torch.Tensor:
    """Baseline: Immerkaer's Laplacian median over every window that touches no clipped pixel (no flat test)."""
    clipped = ((images.abs() - 1).abs() <= SATURATED).float()
    return robust_sigma(windows(images, torch.tensor(LAPLACIAN)), F.max_pool2d(clipped, 3, stride=1) == 0)


def upload(images: torch.Tensor, quality: int | None = None) -> torch.Tensor:
    """The images as a user's file holds them: 8-bit (clipped, rounded), and JPEG-compressed at `quality`."""
    if quality is None:
        return from_uint8(to_uint8(images))
    return jpeg_roundtrip(images, *compression(quality))


def compression(quality: int) -> tuple[dict[int, list[int]], int]:
    """The quantization tables and chroma subsampling of Pillow's JPEG at `quality` (as `upload` saves)."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "grey").save(buffer, "JPEG", quality=quality)
    found = jpeg_compression(buffer.getvalue())
    assert found is not None
    return found


def read_through(quality: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The estimate as the studio gives it for a JPEG at its own size: read through that quality's compression."""
    tables, subsampling = compression(quality)
    return lambda images: torch.tensor([jpeg_noise_sigma(float(read), tables, subsampling,
                                                          torch.Generator().manual_seed(0))
                                        for read in estimate_noise_sigma(images)])


def bootstrap_scales(teacher: Denoiser, uploads: torch.Tensor, sigmas: torch.Tensor,
                     quality: int | None = None) -> torch.Tensor:
    """Per upload, the multiple of its level the studio denoises a JPEG (of `quality`) or a grey image at when it
    takes it at its own size (tasks.denoise_scale)."""
    saved = None if quality is None else compression(quality)
    return torch.tensor([tasks.denoise_scale(teacher, uploads[i : i + 1], float(sigmas[i]), saved)
                         for i in range(len(uploads))])


def photo_crops(folder: Path, per_photo: int, generator: torch.Generator, side: int = CROP) -> torch.Tensor:
    crops = []
    for _, array in load_heldout(folder):
        image = from_uint8(array[None].copy())
        h, w = image.shape[-2:]
        for _ in range(per_photo):
            i = int(torch.randint(0, h - side + 1, (1,), generator=generator))
            j = int(torch.randint(0, w - side + 1, (1,), generator=generator))
            crops.append(image[..., i : i + side, j : j + side])
    return torch.cat(crops)


def noise_table(data: Dataset | None, photo_folder: Path, emoji_per_style: int, crops_per_photo: int) -> Table:
    """Estimate vs truth, per image set, sigma and estimator, on noisy images clipped and rounded to 8 bits."""
    table = Table("noise", "Noise estimate vs truth on 8-bit uploads of held-out images (0-255 levels)",
                  ["images", "true sigma", "estimator", "mean estimate", "mean |error|", "90% |error|",
                   "max |error|", "mean |error| / sigma"])
    sets: list[tuple[str, torch.Tensor, tuple[int | None, ...]]] = []
    if data is not None:
        styles = sorted(set(data.styles))
        emoji = torch.cat([subset(data.select("heldout", s), emoji_per_style, torch.Generator().manual_seed(70 + i))
                           for i, s in enumerate(styles)])
        sets.append((f"{len(emoji)} held-out emoji, {data.resolution} px", emoji, (None,)))
    else:
        table.notes.append("emoji rows skipped: no data set (python -m training.data build)")
    if (photo_folder / "manifest.jsonl").is_file():
        crops = photo_crops(photo_folder, crops_per_photo, torch.Generator().manual_seed(71))
        sets.append((f"{len(crops)} crops of the held-out photos, {CROP} px", crops, (None, *JPEG_QUALITIES)))
    else:
        table.notes.append(f"photo rows skipped: no {photo_folder}")
    estimators: list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = [
        ("editing.noise (flat windows)", estimate_noise_sigma), ("Immerkaer, all unclipped windows", all_windows)]
    for name, clean, qualities in sets:
        for quality in qualities:
            g = torch.Generator().manual_seed(72)  # the same noise in every format
            for s255 in SIGMAS_255:
                file = upload(clean + s255 / 127.5 * torch.randn(clean.shape, generator=g), quality)
                through = [] if quality is None else [("editing.noise, read through the JPEG", read_through(quality))]
                for estimator, fn in estimators + through:
                    est = fn(file) * 127.5
                    err = (est - s255).abs()
                    table.add(name if quality is None else f"{name}, as JPEG q{quality}", s255, estimator,
                              float(est.mean()), float(err.mean()), float(err.quantile(0.9)), float(err.max()),
                              float(err.mean() / s255))
    table.notes.append("Gaussian noise of the given std added to each clean image, clipped to 0..255 and rounded "
                       "(an 8-bit upload); the clean images' own fine texture reads as a little noise too. 'As JPEG': "
                       "the same noisy image saved by Pillow at that quality (4:2:0 chroma); the true sigma is the "
                       "noise's before compression; 'read through the JPEG' is the studio's estimate for a JPEG at its "
                       "own size (editing.noise.jpeg_noise_sigma with the file's tables).")
    return table


def photo_denoise_table(teacher: Denoiser | None, why: str, folder: Path, crops_per_photo: int) -> Table:
    """What the estimate costs on photos: the photo teacher's one evaluation of noisy crops uploaded as PNG or
    JPEG, at the true sigma, at the estimate and (a JPEG) at the bootstrap's multiple of it; and of uploads the
    studio downscales before denoising."""
    table = Table("photo_noise_psnr", "Denoising photo uploads (PNG or JPEG) at the estimated vs the true sigma",
                  ["upload", "true sigma", "sigma used", "mean sigma used", "PSNR dB"])
    if teacher is None or not (folder / "manifest.jsonl").is_file():
        table.notes.append(f"skipped: {why if teacher is None else f'no {folder}'}")
        return table

    def add(name: str, s255: int, choices: list[tuple[str, torch.Tensor]], noisy: torch.Tensor,
            clean: torch.Tensor, grey: bool | None = None) -> None:
        for choice, used in choices:
            # One image a call: the task takes one sigma per call.
            out = torch.cat([tasks.denoise(teacher, noisy[i : i + 1], sigma=float(used[i]), grey=grey)[0]
                             for i in range(len(clean))]).float().cpu()
            table.add(name, s255, choice, float(used.mean()) * 127.5, float(psnr(out, clean).mean()))

    clean = photo_crops(folder, crops_per_photo, torch.Generator().manual_seed(71))
    for quality in (None, *JPEG_QUALITIES):
        g = torch.Generator().manual_seed(73)
        for s255 in (10, 25):
            file = upload(clean + s255 / 127.5 * torch.randn(clean.shape, generator=g), quality)
            choices = [("true", torch.full((len(clean),), s255 / 127.5)), ("estimated", estimate_noise_sigma(file))]
            if quality is not None:
                through = read_through(quality)(file)
                choices += [("read through the JPEG", through),
                            ("read through, x the bootstrap's multiple (the studio's, before the jpeg_noise table)",
                             through * bootstrap_scales(teacher, file, through, quality))]
            add("PNG" if quality is None else f"JPEG q{quality}", s255, choices, file, clean)
    # The studio's fit: an upload downscaled (exact area, editing.images.area_resize) before it is denoised.
    large = photo_crops(folder, crops_per_photo, torch.Generator().manual_seed(74), DOWNSCALED_FROM)
    small = area_resize(large, CROP, CROP)
    left = area_resize_std((DOWNSCALED_FROM,) * 2, (CROP,) * 2)  # the noise's std after it, per unit before
    for quality in (None, JPEG_QUALITIES[0]):
        g = torch.Generator().manual_seed(75)
        for s255 in (10, 25):
            file = upload(large + s255 / 127.5 * torch.randn(large.shape, generator=g), quality)
            at_own_size = estimate_noise_sigma(file) if quality is None else read_through(quality)(file)
            choices = [("true (x its std after the downscale)", torch.full((len(large),), s255 / 127.5 * left)),
                       ("estimated after the downscale", estimate_noise_sigma(area_resize(file, CROP, CROP))),
                       ("at its own size, carried through the downscale (the studio)", at_own_size * left)]
            add(f"{'PNG' if quality is None else f'JPEG q{quality}'}, downscaled {DOWNSCALED_FROM} -> {CROP} px",
                s255, choices, area_resize(file, CROP, CROP), small)
    # A greyscale upload: its noise lies along the grey direction, sqrt(3) x its std per channel there.
    luma = (clean * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    g = torch.Generator().manual_seed(77)
    for s255 in (10, 25):
        file = upload((luma + s255 / 127.5 * torch.randn(luma.shape, generator=g)).expand(-1, 3, -1, -1))
        true = [("true", torch.full((len(clean),), s255 / 127.5))]
        add("greyscale PNG, as independent channels (before)", s255, true, file, luma.expand_as(clean), grey=False)
        estimated = estimate_noise_sigma(file)
        add("greyscale PNG, along the grey direction (the engine)", s255,
            true + [("estimated", estimated), ("estimated, x the bootstrap's multiple (the studio)",
                                                estimated * bootstrap_scales(teacher, file, estimated))],
            file, luma.expand_as(clean))
    table.notes.append(f"{len(clean)} crops of the held-out photos ({CROP} px, the noise table's), Gaussian noise of "
                       "the given std (0-255 levels), saved as an 8-bit PNG or by Pillow as a JPEG; one evaluation of "
                       "the photo teacher (tasks.denoise, D(x, sigma)) at the sigma used; PSNR on the [-1, 1] scale. "
                       f"'Downscaled': {len(large)} crops of {DOWNSCALED_FROM} px uploaded so, then resized to {CROP} "
                       "px by exact area as the studio's fit does (a request over its limits), PSNR against the clean "
                       f"crop resized alike; the noise's std after the resize is {left:.3f} of its std before "
                       "(editing.noise.area_resize_std). 'x the bootstrap's multiple': the estimate times the multiple "
                       "tasks.denoise_scale measures on the upload (re-noised first denoises of squares of it, "
                       "saved as it was; editing.noise.bootstrap_scale), as the studio (at the upload's own size) and "
                       "the CLI denoise a grey image (a colour JPEG: the jpeg_noise table). 'Greyscale': the crops' "
                       "luma with noise of the given std per pixel, the same in the three channels (a greyscale "
                       "upload), denoised at that std as if "
                       "the channels were independent, or as the engine does it (tasks.denoise on a grey image: "
                       "editing.noise.denoiser_sigma, sqrt(3) x, the result put back onto grey); 'sigma used' gives the "
                       "noise's std per channel.")
    return table


JPEG_NOISE_SIGMAS_255 = (10, 25)


def jpeg_noise_table(teacher: Denoiser | None, why: str, folder: Path, crops_per_photo: int) -> Table:
    """A colour JPEG's noise, shaped by its compression unlike the white noise the models were trained on: the photo
    teacher at the multiple of the level read through the file's compression that the bootstrap measures (the studio
    before), as the mean of denoises under added white noise (tasks.averaged_over_added_noise: one draw, and
    AVERAGED_DRAWS, the studio), against CBM3D told the true sigma and 1.5 x it."""
    table = Table("jpeg_noise", "Denoising a JPEG's noise: the bootstrap's level vs the mean under added noise",
                  ["upload", "true sigma", "method", "evaluations", "PSNR dB", "SSIM"])
    if teacher is None or not (folder / "manifest.jsonl").is_file():
        table.notes.append(f"skipped: {why if teacher is None else f'no {folder}'}")
        return table
    clean = photo_crops(folder, crops_per_photo, torch.Generator().manual_seed(90))
    added, draws = tasks.AVERAGED_ADDED, tasks.AVERAGED_DRAWS
    for quality in JPEG_QUALITIES:
        saved = compression(quality)
        g = torch.Generator().manual_seed(91)
        for s255 in JPEG_NOISE_SIGMAS_255:
            file = upload(clean + s255 / 127.5 * torch.randn(clean.shape, generator=g), quality)
            rows: dict[tuple[str, int], list[torch.Tensor]] = {("the upload", 0): [file]}
            for i in range(len(clean)):
                one = file[i : i + 1]
                level = read_noise(one, saved).level
                scale = tasks.denoise_scale(teacher, one, level, saved)
                bootstrap = len(tasks.denoise_scale_passes(*one.shape[-2:], 1)) * (BOOTSTRAP_SIDE / CROP) ** 2
                rows.setdefault(("read through, x the bootstrap's multiple (before)", round(1 + bootstrap)), []).append(
                    tasks.denoise(teacher, one, sigma=level.scaled(scale))[0])
                for k in (1, draws):
                    name = f"read through, the mean of {k} under {added:g} x its level added" + (
                        " (the studio)" if k == draws else "")
                    rows.setdefault((name, k), []).append(
                        tasks.denoise(teacher, one, sigma=level, added=added, draws=k)[0])
                for k in (1.0, 1.5):
                    rows.setdefault((f"CBM3D told {k:g} x the true sigma", 0), []).append(cbm3d(one, k * s255 / 127.5))
            for (method, evaluations), outs in rows.items():
                out = torch.cat(outs).float().cpu()
                table.add(f"JPEG q{quality}", s255, method, evaluations or "—", float(psnr(out, clean).mean()),
                          float(ssim(out, clean).mean()))
    table.notes.append(
        f"{len(clean)} crops of the held-out photos ({CROP} px), Gaussian noise of the given std (0-255 levels), saved "
        "by Pillow as a JPEG (4:2:0); the level read through the file's own tables (editing.noise.read_noise). 'x the "
        "bootstrap's multiple': one evaluation of the photo teacher at the level times the multiple "
        "tasks.denoise_scale measures on squares of the upload (its own evaluations, in 128 px crops' worth, counted "
        f"with it); 'the mean of k': tasks.denoise(added={added:g}, draws=k), each draw the teacher on the upload "
        f"under white noise of {added:g} x the level more, at the sum's level; the studio takes {draws} draws where "
        "its limits keep the image's size, fewer where not. CBM3D: its default profile, told the true sigma or 1.5 x "
        "it (on a JPEG's noise its best level is above the truth). PSNR and SSIM on [-1, 1].")
    return table


def large_photo_table(folder: Path) -> Table:
    """The estimate on a large image reads a sample of squares (editing.noise.sample_squares): against the same
    estimator on every square of the image, and the seconds each takes."""
    table = Table("noise_large", "Noise estimate on whole held-out photos: the sample of squares vs every square",
                  ["photo", "megapixels", "noise", "rms noise", "on every square", "s", "on the sample (the estimate)",
                   "s"])
    if not (folder / "manifest.jsonl").is_file():
        table.notes.append(f"skipped: no {folder}")
        return table
    g = torch.Generator().manual_seed(76)
    for name, array in load_heldout(folder):
        h, w = array.shape[:2]
        if h * w <= SAMPLE_PIXELS:
            continue
        clean = from_uint8(array[None].copy())
        unit = (clean + 1) / 2  # [0, 1], where a camera's noise variance is about a x + b
        noises = (("none", torch.zeros(())), ("Gaussian", torch.tensor(5 / 255)), ("Gaussian", torch.tensor(15 / 255)),
                  ("signal-dependent", (SIGNAL_DEPENDENT[0] * unit + SIGNAL_DEPENDENT[1]).sqrt()))
        for kind, std in noises:  # std on [0, 1]
            file = upload(clean + 2 * std * torch.randn(clean.shape, generator=g))
            started = time.perf_counter()
            cut = file[..., : h // SAMPLE_SIDE * SAMPLE_SIDE, : w // SAMPLE_SIDE * SAMPLE_SIDE]
            squares = cut.unfold(2, SAMPLE_SIDE, SAMPLE_SIDE).unfold(3, SAMPLE_SIDE, SAMPLE_SIDE)
            every = float(estimate_noise_sigma(squares.reshape(1, -1, SAMPLE_SIDE, SAMPLE_SIDE))[0]) * 127.5
            every_seconds = time.perf_counter() - started
            started = time.perf_counter()
            sampled = float(estimate_noise_sigma(file)[0]) * 127.5
            table.add(name, h * w / 1e6, kind, float(std.square().mean().sqrt()) * 255, every, every_seconds, sampled,
                      time.perf_counter() - started)
    table.notes.append(f"The held-out photos over {SAMPLE_PIXELS / 1e6:.1f} megapixels, 8-bit, as they are ('none') "
                       "or with Gaussian noise, or noise whose variance on [0, 1] is "
                       f"{SIGNAL_DEPENDENT[0]:g} x + {SIGNAL_DEPENDENT[1]:g} (signal-dependent, as a camera's; one "
                       "sigma cannot follow it, and the flat windows read it where they lie), in 0-255 levels; "
                       f"'every square': the estimator on all the disjoint {SAMPLE_SIDE} px squares the photo cuts "
                       f"into, pooled; 'the sample': the {SAMPLE_GRID}x{SAMPLE_GRID} squares, one in each cell of a "
                       "grid, that editing.noise reads.")
    return table


def denoise_table(model: Denoiser | None, why: str, data: Dataset, per_style: int) -> Table:
    """What the estimate costs: the CM's one-evaluation denoise of 8-bit uploads at the estimated vs the true sigma."""
    table = Table("noise_psnr", "Denoising 8-bit uploads of held-out emoji at the estimated vs the true sigma",
                  ["true sigma", "sigma used", "mean sigma used", "PSNR dB"])
    if model is None:
        table.notes.append(f"skipped: {why}")
        return table
    results: dict[tuple[float, str], list[tuple[torch.Tensor, torch.Tensor]]] = {}
    for si, style in enumerate(sorted(set(data.styles))):
        gt = subset(data.select("heldout", style), per_style, torch.Generator().manual_seed(30 + si))
        g = torch.Generator().manual_seed(40 + si)
        for sigma in (0.1, 0.2, 0.4):
            file = upload(gt + sigma * torch.randn(gt.shape, generator=g))
            for name, used in (("true", torch.full((len(gt),), sigma)), ("estimated", estimate_noise_sigma(file))):
                # One image a call: the task estimates (or takes) one sigma per call.
                out = torch.cat([tasks.denoise(model, file[i : i + 1], sigma=float(used[i]),
                                               label=label_for(model, style))[0].float().cpu()
                                 for i in range(len(gt))])
                results.setdefault((sigma, name), []).append((used, psnr(out, gt)))
    for (sigma, name), parts in results.items():
        table.add(f"{sigma:g} ({sigma * 127.5:.1f}/255)", name, float(torch.cat([p[0] for p in parts]).mean()),
                  float(torch.cat([p[1] for p in parts]).mean()))
    table.notes.append(f"{per_style} held-out images per style; noise clipped and rounded to 8 bits; one evaluation "
                       "of the CM at the sigma used (tasks.denoise), PSNR on the [-1, 1] scale.")
    return table


# Two cameras (editing.noise.add_camera_noise: variance a L + b in linear light, written through the sRGB curve,
# larger in a file's shadows): shot noise first, and read noise first (the studio's "add noise" camera's shape).
CAMERAS = (("shot noise first", 0.01, 1e-4), ("read noise first", 0.004, 4e-4))


FIGURE_SPAN = 1.0  # on [-1, 1]: the figure's crop spans this much of the range, shadows and highlights both


def write_camera_crops(out: Path, noisy: torch.Tensor, clean: torch.Tensor, outputs: dict[str, torch.Tensor],
                       zoom: int = 2) -> None:
    """The crop, of those with both shadows and highlights (FIGURE_SPAN between the 5th and 95th percentiles of
    its grey; else of all), whose one-level denoise gains most from its curve: noisy, every method, clean, side by
    side at `zoom` x (nearest), as `camera-noise.png` (and its legend, `camera-noise.txt`)."""
    gains = psnr(outputs["its curve, estimated (the studio)"], clean) - psnr(outputs["one level, estimated (before)"],
                                                                                clean)
    grey = clean.mean(1).flatten(1)
    span = grey.quantile(0.95, dim=1) - grey.quantile(0.05, dim=1)
    i = int(torch.where(span >= FIGURE_SPAN, gains, gains - 100.0).argmax())
    panels = {"noisy": noisy, **outputs, "clean": clean}
    strip = np.concatenate([to_uint8(F.interpolate(image[i : i + 1].float(), scale_factor=zoom, mode="nearest"))[0]
                            for image in panels.values()], axis=1)
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(strip).save(out / "camera-noise.png")
    (out / "camera-noise.txt").write_text(" | ".join(panels) + f" (crop {i}, {float(gains[i]):.1f} dB gained)\n")


def cbm3d_stabilized(noisy: torch.Tensor, curve: NoiseCurve) -> torch.Tensor:
    """CBM3D on the image variance-stabilized by `curve` (Makitalo and Foi's recipe for signal-dependent noise),
    mapped back."""
    stabilizer = Stabilizer.of(curve)
    return stabilizer.inverse(cbm3d(stabilizer.forward(noisy), stabilizer.sigma))


def camera_noise_table(teacher: Denoiser | None, why: str, folder: Path, crops_per_photo: int,
                       crops_to: Path | None = None) -> Table:
    """A camera's noise (larger in the shadows) on held-out photo crops: the photo teacher's one evaluation at the
    one level the estimate reads (the studio before), on the curve it reads (the studio), on the true curve; and
    CBM3D variance-stabilized on the true curve and on the curve read. As PNG and as JPEG (the studio's
    read-through, and the mean of draws under added noise). `crops_to`: where the PNG crop that gains most from
    its curve (the last camera) is written side by side with the others' results (`camera-noise.png`)."""
    table = Table("camera_noise", "Denoising a camera's noise (larger in the shadows): one level vs its curve",
                  ["upload", "camera", "method", "curve spread read (mean)", "PSNR dB", "SSIM"])
    if teacher is None or not (folder / "manifest.jsonl").is_file():
        table.notes.append(f"skipped: {why if teacher is None else f'no {folder}'}")
        return table
    clean = photo_crops(folder, crops_per_photo, torch.Generator().manual_seed(78))
    for quality in (None, JPEG_QUALITIES[0]):
        saved = None if quality is None else compression(quality)
        for camera, a, b in CAMERAS:
            file = upload(add_camera_noise(clean, a, b, torch.Generator().manual_seed(79)), quality)
            true = camera_curve(a, b)
            rows: dict[str, list[torch.Tensor]] = {}
            spreads: list[float] = []
            for i in range(len(clean)):
                noisy = file[i : i + 1]
                level = NoiseCurve.constant(float(estimate_noise_sigma(noisy)[0]))
                curve = estimate_noise(noisy, CURVE_VARIES if saved is None else JPEG_CURVE_VARIES)
                spreads.append(estimate_noise_curve(noisy).spread)
                methods = {"one level, estimated (before)": level, "its curve, estimated (the studio)": curve}
                if saved is None:
                    methods["the true curve"] = true
                for name, noise in methods.items():
                    # a JPEG: read through the file's compression, the mean of draws under added noise (the studio)
                    averaged = dict(added=tasks.AVERAGED_ADDED, draws=tasks.AVERAGED_DRAWS) if saved is not None else {}
                    noise = through_jpeg(noise, saved) if saved is not None else noise
                    rows.setdefault(name, []).append(
                        tasks.denoise(teacher, noisy, sigma=noise, **averaged)[0].float().cpu())
                if saved is None:
                    rows.setdefault("CBM3D, variance-stabilized on the true curve", []).append(
                        cbm3d_stabilized(noisy, true))
                    rows.setdefault("CBM3D, variance-stabilized on the curve read", []).append(
                        cbm3d_stabilized(noisy, curve))
            outputs = {name: torch.cat(outs) for name, outs in rows.items()}
            for name, out in outputs.items():
                table.add("PNG" if quality is None else f"JPEG q{quality}", camera, name,
                          sum(spreads) / len(spreads), float(psnr(out, clean).mean()), float(ssim(out, clean).mean()))
            if crops_to is not None and saved is None:
                write_camera_crops(crops_to, file, clean, outputs)
    spans = []
    for camera, a, b in CAMERAS:
        stds = camera_curve(a, b).at(clean.double()).flatten() * 127.5
        low, high = (float(q) for q in stds.quantile(torch.tensor([0.05, 0.95], dtype=torch.float64)))
        spans.append(f"'{camera}' a = {a:g}, b = {b:g}: {low:.0f} to {high:.0f} levels")
    table.notes.append(
        f"{len(clean)} crops of the held-out photos ({CROP} px); noise of variance a L + b in linear light (L in "
        "[0, 1]), encoded with the sRGB curve and saved as an 8-bit PNG or by Pillow as a JPEG (its std over 90% of "
        f"the crops' pixels: {'; '.join(spans)}). One evaluation of the photo teacher per crop (tasks.denoise): at "
        "the one level editing.noise reads (estimate_noise_sigma, as the studio did), on the curve it reads "
        f"(estimate_noise: the curve where it varies {CURVE_VARIES}x or more, {JPEG_CURVE_VARIES}x on a JPEG, else "
        "that level; variance-stabilized, editing.noise.Stabilizer), on the true curve; a JPEG's noise read through "
        f"its compression, the mean of {tasks.AVERAGED_DRAWS} denoises under {tasks.AVERAGED_ADDED:g} x its level "
        "added (tasks.averaged_over_added_noise), as the studio does. CBM3D (its default profile) on "
        "the image variance-stabilized by the true curve or by the curve read, told the stabilized std: the classical "
        "method for signal-dependent noise. The true curve is first order: near black, where the noise clips at 0, "
        "the file's noise is smaller than it says, and the curve read is closer. 'Curve spread read': the largest "
        "over the smallest std of estimate_noise_curve, averaged over the crops. PSNR and SSIM on [-1, 1].")
    return table


# A camera's raw noise before demosaicing (Gaussian on the mosaic, 0-255 levels), and the demosaicing that spreads it
# over neighbouring pixels: OpenCV's bilinear and edge-aware (RGGB is OpenCV's "BayerBG" pattern name).
RAW_SIGMA_255 = 15
DEMOSAICS = (("bilinear", cv2.COLOR_BayerBG2RGB), ("edge-aware", cv2.COLOR_BayerBG2RGB_EA))
BY_HAND = (0.75, 1.0)  # the teacher's level, a multiple of the raw noise's
CBM3D_BY_HAND = (1.0, 1.5)  # CBM3D's
BEFORE = "teacher at the level read, per pixel (before)"
NO_WHOLE_PASS = "teacher on the 2x2 phases at the level read, no whole-image pass"
STUDIO = "teacher on the 2x2 phases at the level read, then the whole (the studio)"


def mosaic(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) on [-1, 1] -> (B, H, W) on [0, 1]: each pixel's one colour of an RGGB colour filter array."""
    rgb = ((images.permute(0, 2, 3, 1).double().numpy() + 1) / 2)
    raw = rgb[..., 1].copy()
    raw[:, 0::2, 0::2], raw[:, 1::2, 1::2] = rgb[:, 0::2, 0::2, 0], rgb[:, 1::2, 1::2, 2]
    return raw


VNG = ("VNG (8-bit)", cv2.COLOR_BayerBG2RGB_VNG)  # OpenCV's variable number of gradients: 8-bit mosaics only


def demosaic(raw: np.ndarray, code: int) -> torch.Tensor:
    """(B, H, W) mosaics on [0, 1] -> (B, 3, H, W) on [-1, 1], demosaiced by OpenCV at 16 bits (VNG at 8)."""
    top, kind = (255, np.uint8) if code == VNG[1] else (65535, np.uint16)
    levels = np.clip(np.round(raw * top), 0, top).astype(kind)
    rgb = np.stack([cv2.cvtColor(one, code) for one in levels]).astype(np.float32) / top
    return torch.from_numpy(rgb).permute(0, 3, 1, 2) * 2 - 1


def write_demosaiced_crops(out: Path, noisy: torch.Tensor, clean: torch.Tensor, outputs: dict[str, torch.Tensor],
                           zoom: int = 2) -> None:
    """Two crops: the one at the median gain of the phases over per pixel, and the most detailed (the largest mean
    gradient of the clean crop): noisy, per pixel, the studio's, CBM3D at its best level, clean, side by side at
    `zoom` x (nearest), one crop a row, as `demosaiced-noise.png` (and its legend, `demosaiced-noise.txt`)."""
    gains = psnr(outputs[STUDIO], clean) - psnr(outputs[BEFORE], clean)
    detail = (clean.diff(dim=-1).abs().mean((1, 2, 3)) + clean.diff(dim=-2).abs().mean((1, 2, 3)))
    picks = [int(gains.argsort()[len(gains) // 2]), int(detail.argmax())]
    cbm3d_best = f"CBM3D at {CBM3D_BY_HAND[-1]:g} x the raw level, by hand"
    panels = {"noisy": noisy, **{k: outputs[k] for k in (BEFORE, STUDIO, cbm3d_best)}, "clean": clean}
    rows = [np.concatenate([to_uint8(F.interpolate(image[i : i + 1].float(), scale_factor=zoom, mode="nearest"))[0]
                            for image in panels.values()], axis=1) for i in picks]
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(out / "demosaiced-noise.png")
    (out / "demosaiced-noise.txt").write_text(
        " | ".join(panels) + f" (rows: crop {picks[0]}, the median gain, {float(gains[picks[0]]):.1f} dB; crop "
        f"{picks[1]}, the most detailed, {float(gains[picks[1]]):.1f} dB)\n")


def demosaiced_noise_table(teacher: Denoiser | None, why: str, folder: Path, crops_per_photo: int,
                           crops_to: Path | None = None) -> Table:
    """A camera's noise added to the mosaic, then demosaiced: correlated between neighbouring pixels, unlike the
    white noise the models were trained on and the estimate reads. The studio's reading and its denoise on the
    image's 2x2 phase sub-images (tasks.denoise(spread=True)) against the same level per pixel and on the phases
    alone; the teacher and CBM3D at levels set by hand; against the clean mosaic demosaiced alike. `crops_to`: where
    two bilinear crops are written with every method's result (`write_demosaiced_crops`)."""
    table = Table("demosaiced_noise", "Denoising a camera's noise after demosaicing (correlated between neighbours)",
                  ["demosaicing", "method", "level read / raw level (mean)", "PSNR dB", "SSIM"])
    if teacher is None or not (folder / "manifest.jsonl").is_file():
        table.notes.append(f"skipped: {why if teacher is None else f'no {folder}'}")
        return table
    clean_rgb = photo_crops(folder, crops_per_photo, torch.Generator().manual_seed(80))
    raw = mosaic(clean_rgb)
    raw_sigma = RAW_SIGMA_255 / 255
    noisy_raw = raw + np.random.default_rng(81).normal(0.0, raw_sigma, raw.shape)
    white = 2 * raw_sigma  # the raw noise's std on [-1, 1]
    for name, code in DEMOSAICS:
        clean, noisy = demosaic(raw, code), from_uint8(to_uint8(demosaic(noisy_raw, code)))  # an 8-bit file
        rows: dict[str, list[torch.Tensor]] = {"the upload": [noisy]}
        ratios = []
        for i in range(len(noisy)):
            one = noisy[i : i + 1]
            reading = read_noise(one)
            level = reading.level
            ratios.append(float(np.mean(level.sigmas)) / white)
            rows.setdefault(BEFORE, []).append(tasks.denoise(teacher, one, sigma=level)[0].float().cpu())
            phases = tasks.denoise(teacher, phase_split(one, tasks.SPREAD_PHASES), sigma=level)[0]
            rows.setdefault(NO_WHOLE_PASS, []).append(phase_merge(phases, tasks.SPREAD_PHASES).float().cpu())
            rows.setdefault(STUDIO, []).append(
                tasks.denoise(teacher, one, sigma=level, spread=reading.spread)[0].float().cpu())
            for k in BY_HAND:
                rows.setdefault(f"teacher at {k:g} x the raw level, by hand", []).append(
                    tasks.denoise(teacher, one, sigma=k * white, spread=reading.spread)[0].float().cpu())
            for k in CBM3D_BY_HAND:
                rows.setdefault(f"CBM3D at {k:g} x the raw level, by hand", []).append(cbm3d(one, k * white))
        outputs = {method: torch.cat(outs) for method, outs in rows.items()}
        for method, out in outputs.items():
            read = sum(ratios) / len(ratios) if method == STUDIO else float("nan")
            table.add(name, method, read, float(psnr(out, clean).mean()), float(ssim(out, clean).mean()))
        if crops_to is not None and code == DEMOSAICS[0][1]:
            write_demosaiced_crops(crops_to, noisy, clean, outputs)
    table.notes.append(
        f"{len(clean_rgb)} crops of the held-out photos ({CROP} px), mosaicked RGGB, Gaussian noise of "
        f"{RAW_SIGMA_255}/255 added to the mosaic, demosaiced by OpenCV (16-bit) and saved as 8 bits; PSNR and SSIM on "
        "[-1, 1] against the clean mosaic demosaiced alike (the demosaicing's own error is not counted). The studio "
        "reads the noise with editing.noise.read_noise (Immerkaer's 3x3 Laplacian on flat windows, which cancels on "
        "a bilinear interpolation, and where that reads under half of the level on the 2x2 means' chroma, the latter: "
        "'spread') and runs the photo teacher on the crop's four 2x2 phase sub-images (pixel-shuffle downsampling, "
        "Zhou et al. 2020: neighbours there lie 2 px apart, where the noise is nearly white), then once over the "
        f"whole crop at {tasks.SPREAD_CLEANUP:g} x the level (tasks.denoise(spread=True)); 'per pixel': one evaluation "
        "on the crop as it is, as the studio did; 'by hand': the level a user would set, as a multiple of the raw "
        "noise's std (the studio's method). CBM3D: its default profile.")
    return table


SPREAD_SIGMAS_255 = (5, 15, 25)  # noise levels of the spread-reading table, on the mosaic or per pixel


def spread_reading_table(folder: Path, crops_per_photo: int) -> Table:
    """Which uploads `read_noise` takes for noise spread over neighbouring pixels (read on the 2x2 means' chroma):
    a camera's demosaiced noise, and not clean photos, white noise or a camera's white noise."""
    table = Table("spread_reading", "Noise read as spread over neighbouring pixels (a camera's, demosaiced)",
                  ["upload", "noise (of 255)", "images", "taken as spread", "level read / true (mean)"])
    if not (folder / "manifest.jsonl").is_file():
        table.notes.append(f"skipped: no {folder}")
        return table

    def add(upload: str, noise: str, images: list[torch.Tensor], truth: float | None,
            compression: JpegCompression | None = None) -> None:
        readings = [read_noise(one, compression) for one in images]
        ratio = float(np.mean([np.mean(r.level.sigmas) for r in readings])) / truth if truth else float("nan")
        table.add(upload, noise, len(readings), sum(r.spread for r in readings) / len(readings), ratio)

    add("held-out photos at their own size", "none", [from_uint8(a[None].copy()) for _, a in load_heldout(folder)],
        None)
    clean = photo_crops(folder, crops_per_photo, torch.Generator().manual_seed(82))
    add(f"held-out crops ({CROP} px)", "none", list(from_uint8(to_uint8(clean)).split(1)), None)
    raw = mosaic(clean)
    for sigma255 in SPREAD_SIGMAS_255:
        sigma = sigma255 / 127.5
        white = from_uint8(to_uint8(clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(83))))
        add("white noise", f"{sigma255}", list(white.split(1)), sigma)
        a, b = camera_at_mid_grey(sigma)
        camera = from_uint8(to_uint8(add_camera_noise(clean, a, b, torch.Generator().manual_seed(84))))
        add("a camera's white noise (larger in the shadows)", f"{sigma255} at mid grey", list(camera.split(1)), None)
        noisy_raw = raw + np.random.default_rng(85).normal(0.0, sigma255 / 255, raw.shape)
        for name, code in (*DEMOSAICS, VNG):
            demosaiced = from_uint8(to_uint8(demosaic(noisy_raw, code)))
            add(f"demosaiced, {name}", f"{sigma255} on the mosaic", list(demosaiced.split(1)), sigma)
            if name == "bilinear" and sigma255 == 15:
                tables = compression(JPEG_QUALITIES[0])
                saved = jpeg_roundtrip(demosaiced, *tables)
                add(f"demosaiced, {name}, JPEG quality {JPEG_QUALITIES[0]}", f"{sigma255} on the mosaic",
                    list(saved.split(1)), sigma, tables)
    table.notes.append(
        f"editing.noise.read_noise on each upload (8-bit; the JPEG read through its own tables): 'taken as spread' is "
        "the share where the per-pixel estimate reads under half of the level on the 2x2 means' chroma "
        "(estimate_spread_sigma), which is then the level. Crops: 128 px of the held-out photos; the held-out photos "
        "also whole at their own size. Demosaiced: Gaussian noise on the RGGB mosaic, OpenCV's demosaicing; 'true' "
        "is the noise's std on the mosaic (white noise: its std per pixel). No denoising here: the demosaiced_noise "
        "table measures what the level read does.")
    return table
