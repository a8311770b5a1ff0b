"""Figures for the photo models' cards, on held-out photos (never trained on): the teacher's 18-step Heun samples,
its denoising next to CBM3D given the true sigma, and before/after crops of each edit with its D next to the
classical baseline; with --cm, the consistency model's samples at 1 and 2 steps beside the teacher's, and its edits.

    python -m training.photo_figures --teacher weights/photo64-edm --data data/photos --out weights/photo64-edm
    python -m training.photo_figures --teacher weights/photo64-edm --cm weights/photo64-cm --out weights/photo64-cm
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

import cv2
import torch.nn.functional as F

from benchmarks.edits import centre_box, grayscale, opencv_inpaint, opencv_resize
from benchmarks.photos import cbm3d
from editing import tasks
from editing.images import from_uint8, to_uint8
from editing.metrics import psnr
from editing.models import load_model, read_schedules, resolve_runtime
from editing.precond import Denoiser
from editing.schedules import steps_schedule
from training.photos import load_heldout

CROP = 128  # px of each before/after crop, shown at 100% (two tiles of the 64 px model across)


def labelled_row(images: list[np.ndarray], labels: list[str], scale: int = 1) -> Image.Image:
    """Images side by side with a caption above each."""
    h, w = images[0].shape[0] * scale, images[0].shape[1] * scale
    row = Image.new("RGB", (len(images) * (w + 4), h + 16), (255, 255, 255))
    draw = ImageDraw.Draw(row)
    for i, (image, label) in enumerate(zip(images, labels)):
        row.paste(Image.fromarray(image).resize((w, h), Image.Resampling.NEAREST), (i * (w + 4), 16))
        draw.text((i * (w + 4) + 2, 2), label, fill=(0, 0, 0))
    return row


def stack(rows: list[Image.Image]) -> Image.Image:
    out = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), (255, 255, 255))
    y = 0
    for r in rows:
        out.paste(r, (0, y))
        y += r.height
    return out


def samples(teacher: Denoiser, seeds: list[int]) -> Image.Image:
    """The teacher's unconditional 18-step Heun samples (35 evaluations), at 2x."""
    images = to_uint8(tasks.heun_baseline(teacher, seeds, steps=18))
    rows = [labelled_row(list(images[i:i + 8]), [f"seed {s}" for s in seeds[i:i + 8]], scale=2)
            for i in range(0, len(images), 8)]
    return stack(rows)


def cm_samples(cm: Denoiser, teacher: Denoiser, seeds: list[int], tuned: dict) -> Image.Image:
    """The same seeds through the CM at 1 and 2 steps (Algorithm 1) and the teacher's 18-step Heun, at 2x."""
    rows = []
    for label, images in ((f"CM, {n} step{'s' * (n > 1)}", tasks.generate(cm, seeds, schedule=steps_schedule(n, tuned)))
                          for n in (1, 2)):
        rows.append(labelled_row(list(to_uint8(images)), [f"{label}, seed {s}" if i == 0 else f"seed {s}"
                                                          for i, s in enumerate(seeds)], scale=2))
    heun = tasks.heun_baseline(teacher, seeds, steps=18)
    rows.append(labelled_row(list(to_uint8(heun)), ["teacher, 35 evaluations" if i == 0 else f"seed {s}"
                                                    for i, s in enumerate(seeds)], scale=2))
    return stack(rows)


def with_psnr(label: str, image: torch.Tensor, clean: torch.Tensor) -> str:
    return f"{label}: {float(psnr(image.clamp(-1, 1), clean)):.1f} dB"


def textured_crop(rgb: np.ndarray, rng: np.random.Generator, candidates: int = 16) -> np.ndarray:
    """The CROP x CROP crop with the most detail (pixel std) of a few random ones: flat sky shows no edit."""
    spots = [(int(rng.integers(0, rgb.shape[0] - CROP)), int(rng.integers(0, rgb.shape[1] - CROP)))
             for _ in range(candidates)]
    y, x = max(spots, key=lambda p: float(rgb[p[0]:p[0] + CROP, p[1]:p[1] + CROP].std()))
    return rgb[y:y + CROP, x:x + CROP]


def edit_crops(net: Denoiser, name: str, folder: Path, count: int) -> Image.Image:
    """Per held-out photo crop, a row per edit: truth, what the edit is given, the classical baseline, and `net`
    (captioned `name`): its one evaluation for denoising, Algorithm 4 with it for the other edits."""
    rng = np.random.default_rng(11)
    generator = torch.Generator().manual_seed(11)
    photos = load_heldout(folder)
    rows = []
    for k in np.linspace(0, len(photos) - 1, count).round().astype(int):
        clean = from_uint8(textured_crop(photos[k][1], rng)[None])
        sigma = 25 / 127.5
        noisy = clean + sigma * torch.randn(clean.shape, generator=generator)
        low = F.avg_pool2d(clean, 4)
        box = centre_box(1, CROP)
        with torch.inference_mode():
            edits = [
                ("noisy 25/255", noisy.clamp(-1, 1), "CBM3D", cbm3d(noisy, sigma),
                 tasks.denoise(net, noisy, sigma=sigma)[0]),
                ("x4 block means", tasks.upsample_nearest(low, 4), "Lanczos",
                 opencv_resize(low, CROP, cv2.INTER_LANCZOS4), tasks.superresolve(net, low, 4, [0])),
                ("centre box", clean.masked_fill(box, 0.0), "OpenCV NS", opencv_inpaint(clean, box, cv2.INPAINT_NS),
                 tasks.inpaint(net, clean, box, [0])),
                ("luma", grayscale(clean), "grey", grayscale(clean), tasks.colorize(net, clean, [0])),
            ]
        for given_label, given, base_label, base, ours in edits:  # the given image names the edit
            images = [clean, given, base, ours]
            labels = ["truth", given_label, with_psnr(base_label, base, clean), with_psnr(name, ours, clean)]
            rows.append(labelled_row([to_uint8(image)[0] for image in images], labels))
    return stack(rows)


def denoise_crops(teacher: Denoiser, folder: Path, sigma255: int, count: int) -> Image.Image:
    """Per held-out photo: clean crop, noisy, CBM3D (true sigma), the teacher's one evaluation, with PSNR."""
    rng = np.random.default_rng(5)
    generator = torch.Generator().manual_seed(5)
    sigma = sigma255 / 127.5
    rows = []
    photos = load_heldout(folder)
    for k in np.linspace(0, len(photos) - 1, count).round().astype(int):
        name, rgb = photos[k]
        y, x = int(rng.integers(0, rgb.shape[0] - CROP)), int(rng.integers(0, rgb.shape[1] - CROP))
        clean = from_uint8(rgb[None, y:y + CROP, x:x + CROP])
        noisy = clean + sigma * torch.randn(clean.shape, generator=generator)
        with torch.inference_mode():
            ours = tasks.denoise(teacher, noisy, sigma=sigma)[0]
        outs = [("clean", clean), (f"noisy {sigma255}/255", noisy.clamp(-1, 1)), ("CBM3D", cbm3d(noisy, sigma)),
                ("teacher, 1 evaluation", ours)]
        labels = [label if label == "clean" else with_psnr(label, image, clean) for label, image in outs]
        rows.append(labelled_row([to_uint8(image)[0] for _, image in outs], labels))
    return stack(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.photo_figures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, required=True, help="the photo EDM model folder")
    parser.add_argument("--data", type=Path, default=Path("data/photos"), help="built by python -m training.photos")
    parser.add_argument("--cm", type=Path, help="the photo consistency model folder: its samples and edits instead")
    parser.add_argument("--out", type=Path, required=True, help="folder for the figures (PNG)")
    parser.add_argument("--sigma", type=int, default=25, help="noise std on the 0-255 scale")
    args = parser.parse_args(argv)
    teacher = load_model(args.teacher, resolve_runtime("cpu"))
    if args.cm is not None:
        cm = load_model(args.cm, resolve_runtime("cpu"))
        cm_samples(cm, teacher, list(range(8)), read_schedules(args.cm)).save(args.out / "samples.png")
        edit_crops(cm, "CM", args.data, 2).save(args.out / "edits.png")
        print(f"wrote {args.out / 'samples.png'} and {args.out / 'edits.png'}")
        return
    samples(teacher, list(range(16))).save(args.out / "samples.png")
    denoise_crops(teacher, args.data, args.sigma, 4).save(args.out / "denoise.png")
    edit_crops(teacher, "teacher's D", args.data, 2).save(args.out / "edits.png")  # the studio's photo edits
    print(f"wrote {args.out / 'samples.png'}, {args.out / 'denoise.png'} and {args.out / 'edits.png'}")


if __name__ == "__main__":
    main()
