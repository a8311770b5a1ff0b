"""Figures for the photo models' cards: samples of the teacher's 18-step Heun sampler, and before/after crops of
denoising held-out photos (never trained on) next to CBM3D given the true sigma.

    python -m training.photo_figures --teacher weights/photo64-edm --data data/photos --out weights/photo64-edm
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from benchmarks.photos import cbm3d
from editing import tasks
from editing.images import from_uint8, to_uint8
from editing.metrics import psnr
from editing.models import load_model, resolve_runtime
from editing.precond import Denoiser
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
        labels = [label if label == "clean" else
                  f"{label}: {float(psnr(image.clamp(-1, 1), clean)):.1f} dB"
                  for label, image in outs]
        rows.append(labelled_row([to_uint8(image)[0] for _, image in outs], labels))
    return stack(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.photo_figures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, required=True, help="the photo EDM model folder")
    parser.add_argument("--data", type=Path, default=Path("data/photos"), help="built by python -m training.photos")
    parser.add_argument("--out", type=Path, required=True, help="folder for samples.png and denoise.png")
    parser.add_argument("--sigma", type=int, default=25, help="noise std on the 0-255 scale")
    args = parser.parse_args(argv)
    teacher = load_model(args.teacher, resolve_runtime("cpu"))
    samples(teacher, list(range(16))).save(args.out / "samples.png")
    denoise_crops(teacher, args.data, args.sigma, 4).save(args.out / "denoise.png")
    print(f"wrote {args.out / 'samples.png'} and {args.out / 'denoise.png'}")


if __name__ == "__main__":
    main()
