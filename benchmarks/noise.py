"""Section noise: the blind noise estimate (editing.noise) against the truth on 8-bit uploads of images the
models never saw: held-out emoji (flat colours, hard edges, white backgrounds) and crops of the held-out photos."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.common import Dataset, Table, subset
from editing.images import from_uint8, to_uint8
from editing.noise import LAPLACIAN, SATURATED, estimate_noise_sigma, robust_sigma, windows
from training.photos import load_heldout

SIGMAS_255 = (5, 10, 15, 25, 50)  # Gaussian std on the 0-255 scale; x / 127.5 on the engine's [-1, 1]
CROP = 128  # photo crops, pixels


def all_windows(images: torch.Tensor) -> torch.Tensor:
    """Baseline: Immerkaer's Laplacian median over every window that touches no clipped pixel (no flat test)."""
    clipped = ((images.abs() - 1).abs() <= SATURATED).float()
    return robust_sigma(windows(images, torch.tensor(LAPLACIAN)), F.max_pool2d(clipped, 3, stride=1) == 0)


def photo_crops(folder: Path, per_photo: int, generator: torch.Generator) -> torch.Tensor:
    crops = []
    for _, array in load_heldout(folder):
        image = from_uint8(array[None].copy())
        h, w = image.shape[-2:]
        for _ in range(per_photo):
            i = int(torch.randint(0, h - CROP + 1, (1,), generator=generator))
            j = int(torch.randint(0, w - CROP + 1, (1,), generator=generator))
            crops.append(image[..., i : i + CROP, j : j + CROP])
    return torch.cat(crops)


def noise_table(data: Dataset | None, photo_folder: Path, emoji_per_style: int, crops_per_photo: int) -> Table:
    """Estimate vs truth, per image set, sigma and estimator, on noisy images clipped and rounded to 8 bits."""
    table = Table("noise", "Noise estimate vs truth on 8-bit uploads of held-out images (0-255 levels)",
                  ["images", "true sigma", "estimator", "mean estimate", "mean |error|", "90% |error|",
                   "max |error|", "mean |error| / sigma"])
    sets: list[tuple[str, torch.Tensor]] = []
    if data is not None:
        styles = sorted(set(data.styles))
        emoji = torch.cat([subset(data.select("heldout", s), emoji_per_style, torch.Generator().manual_seed(70 + i))
                           for i, s in enumerate(styles)])
        sets.append((f"{len(emoji)} held-out emoji, {data.resolution} px", emoji))
    else:
        table.notes.append("emoji rows skipped: no data set (python -m training.data build)")
    if (photo_folder / "manifest.jsonl").is_file():
        crops = photo_crops(photo_folder, crops_per_photo, torch.Generator().manual_seed(71))
        sets.append((f"{len(crops)} crops of the held-out photos, {CROP} px", crops))
    else:
        table.notes.append(f"photo rows skipped: no {photo_folder}")
    estimators: list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = [
        ("editing.noise (flat windows)", estimate_noise_sigma), ("Immerkaer, all unclipped windows", all_windows)]
    for name, clean in sets:
        g = torch.Generator().manual_seed(72)
        for s255 in SIGMAS_255:
            upload = from_uint8(to_uint8(clean + s255 / 127.5 * torch.randn(clean.shape, generator=g)))
            for estimator, fn in estimators:
                est = fn(upload) * 127.5
                err = (est - s255).abs()
                table.add(name, s255, estimator, float(est.mean()), float(err.mean()), float(err.quantile(0.9)),
                          float(err.max()), float(err.mean() / s255))
    table.notes.append("Gaussian noise of the given std added to each clean image, clipped to 0..255 and rounded "
                       "(an 8-bit upload); the clean images' own fine texture reads as a little noise too.")
    return table
