"""Section photo_crops: the photo model on crops of held-out photographs (never trained on) at the model's
resolution, against the strongest classical baselines installed here: CBM3D (given the true sigma) and OpenCV
NL-means (h tuned per sigma) for denoising, Lanczos and bicubic for super-resolution, OpenCV Telea and
Navier-Stokes for inpainting, the grey image and a per-luma mean chroma (from the training tiles) for colorization.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bm3d
import cv2
import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.common import Table, sync
from benchmarks.edits import centre_box, grayscale, opencv_inpaint, opencv_resize, random_strokes
from editing import tasks
from editing.images import from_uint8, to_uint8
from editing.limits import UNLIMITED
from editing.metrics import data_consistency, psnr, ssim, swd
from editing.operators import Colorize, Inpaint, Operator, SuperResolve
from editing.precond import Denoiser
from training.photos import area_downscale, load_heldout

SIGMAS_255 = (15, 25, 50)  # Gaussian std on the 0-255 scale; x / 127.5 on the engine's [-1, 1]
NLM_H_FACTORS = (0.45, 0.6, 0.8, 1.0, 1.25, 1.6, 2.0)  # h = hColor = factor x sigma (0-255), tuned per sigma


@dataclass(frozen=True)
class PhotoBudget:
    crops_per_photo: int = 2  # per scale (CBM3D takes seconds per crop)
    scales: tuple[int, ...] = (1, 2)  # native and area-downscaled by 2, as the model was trained
    tune_crops: int = 16  # NL-means' h is chosen on the first crops (favours the baseline)
    posterior_samples: int = 8  # super-resolution samples averaged into the posterior-mean estimate


PHOTO_FULL = PhotoBudget()
PHOTO_QUICK = PhotoBudget(crops_per_photo=1, scales=(2,), tune_crops=4, posterior_samples=2)


def heldout_crops(folder: Path, size: int, budget: PhotoBudget) -> torch.Tensor:
    """(N, 3, size, size) crops of the held-out photos on [-1, 1], at each scale, positions from a fixed seed."""
    rng = np.random.default_rng(2026)
    crops = []
    for _, rgb in load_heldout(folder):
        for scale in budget.scales:
            image = area_downscale(rgb, scale) if scale > 1 else rgb
            h, w = image.shape[:2]
            for _ in range(budget.crops_per_photo):
                y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
                crops.append(image[y : y + size, x : x + size])
    return from_uint8(np.stack(crops))


def posterior_mean_superresolve(model: Denoiser, low: torch.Tensor, factor: int, samples: int) -> torch.Tensor:
    """The mean of `samples` Algorithm 4 super-resolutions per image, each from its own seeds: an estimate of
    E[x | block means] under the model's prior, the best PSNR its samples can give (a sample's error is the
    posterior mean's plus the sample's spread). The mean keeps every block mean: A x = A y is linear."""
    n = len(low)
    total = torch.zeros(n, 3, low.shape[-2] * factor, low.shape[-1] * factor)
    for k in range(samples):
        total += tasks.superresolve(model, low, factor, list(range(k * n, (k + 1) * n)), limits=UNLIMITED).cpu()
    return total / samples


def cbm3d(noisy: torch.Tensor, sigma: float) -> torch.Tensor:
    """CBM3D (bm3d.bm3d_rgb, its default profile, YCbCr) told the true sigma, on unclipped float images."""
    out = [bm3d.bm3d_rgb(a, sigma_psd=sigma / 2) for a in ((noisy.permute(0, 2, 3, 1).numpy() + 1) / 2)]
    return torch.from_numpy(np.stack(out) * 2 - 1).permute(0, 3, 1, 2).float()


def nl_means(noisy: torch.Tensor, h255: float) -> torch.Tensor:
    """cv2.fastNlMeansDenoisingColored (8-bit input: it takes no float images), 3x3 patches, 7x7 search."""
    return from_uint8(np.stack([cv2.fastNlMeansDenoisingColored(a, None, h255, h255, 3, 7) for a in to_uint8(noisy)]))


def tuned_nl_means_h(noisy: torch.Tensor, clean: torch.Tensor, sigma255: float, tune: int) -> float:
    """The h factor of NLM_H_FACTORS with the best PSNR on the first `tune` crops."""
    scores = [float(psnr(nl_means(noisy[:tune], f * sigma255), clean[:tune]).mean()) for f in NLM_H_FACTORS]
    return NLM_H_FACTORS[int(np.argmax(scores))]


def luma_chroma_table(tiles: np.ndarray, bins: int = 256) -> torch.Tensor:
    """Mean chroma coefficients (Colorize's axes 1, 2) per luma bin over training tiles: (bins, 2)."""
    coeffs = Colorize().transform(from_uint8(tiles)).permute(1, 0, 2, 3).reshape(3, -1).double()
    lo, hi = float(coeffs[0].min()), float(coeffs[0].max())
    index = luma_bins(coeffs[0], lo, hi, bins)
    sums = torch.zeros(bins, 2, dtype=torch.float64).index_add_(0, index, coeffs[1:].T)
    counts = torch.bincount(index, minlength=bins).clamp(min=1).double()
    table = sums / counts[:, None]
    return torch.cat([torch.tensor([[lo, hi]], dtype=torch.float64), table]).float()


def luma_bins(luma: torch.Tensor, lo: float, hi: float, bins: int) -> torch.Tensor:
    """The bin of each luma coefficient among `bins` equal bins spanning [lo, hi] (clamped at the ends)."""
    return ((luma - lo) / (hi - lo) * (bins - 1)).round().long().clamp(0, bins - 1)


def mean_chroma(images: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Each pixel's luma kept exactly, its chroma the training set's mean at that luma."""
    op = Colorize()
    c = op.transform(images)
    lo, hi = float(table[0, 0]), float(table[0, 1])
    bins = len(table) - 1
    index = luma_bins(c[:, 0], lo, hi, bins)
    chroma = table[1:][index]  # (B, H, W, 2)
    return op.inverse(torch.cat([c[:, :1], chroma.permute(0, 3, 1, 2)], 1)).clamp(-1, 1)


def photo_crops_tables(cm: Denoiser | None, teacher: Denoiser | None, folder: Path, device: torch.device,
                       budget: PhotoBudget, names: tuple[str, str]) -> list[Table]:
    """Quality per task and method, and time per evaluation, on held-out photo crops."""
    net = cm or teacher
    if net is None:
        return [Table("photo_crops", "Photo model on held-out photo crops", [], notes=["skipped: no photo model"])]
    r = net.param.resolution
    gt = heldout_crops(folder, r, budget)
    n = len(gt)
    g = torch.Generator().manual_seed(7)
    seeds = list(range(n))
    table = Table("photo_crops", f"Photo model on {n} crops ({r}x{r}) of the held-out photos (never trained on)",
                  ["task", "method", "PSNR dB", "SSIM", "||Ax - Ay||", "SWD x 1e3", "ms / crop"])
    cases: list[tuple[str, Operator | None, list[tuple[str, Callable[[], torch.Tensor]]]]] = []
    nlm_choice: dict[int, float] = {}
    for s255 in SIGMAS_255:
        sigma = s255 / 127.5
        noisy = gt + sigma * torch.randn(gt.shape, generator=g)
        methods: list[tuple[str, Callable[[], torch.Tensor]]] = [
            ("noisy input", lambda x=noisy: x.clamp(-1, 1)),
            ("CBM3D (true sigma)", lambda x=noisy, s=sigma: cbm3d(x, s)),
        ]
        h = tuned_nl_means_h(noisy, gt, s255, budget.tune_crops)
        nlm_choice[s255] = h
        methods.append((f"OpenCV NL-means (h = {h:g} sigma)", lambda x=noisy, hh=h * s255: nl_means(x, hh)))
        if teacher is not None:
            methods.append((f"teacher, 1 evaluation ({names[1]})",
                            lambda x=noisy, s=sigma: tasks.denoise(teacher, x, sigma=s)[0]))
        if cm is not None:
            methods.append((f"CM, 1 evaluation ({names[0]})",
                            lambda x=noisy, s=sigma: tasks.denoise(cm, x, sigma=s)[0]))
        cases.append((f"denoising sigma {s255}/255", None, methods))
    # Algorithm 4 with each model as its denoiser: the CM, and the teacher's D(x, sigma) (the studio's photo default)
    editors = [(name, net) for name, net in ((f"CM ({names[0]})", cm), (f"teacher's D ({names[1]})", teacher))
               if net is not None]
    for factor in (2, 4):
        low = F.avg_pool2d(gt, factor)
        methods = [("bicubic", lambda lo=low: opencv_resize(lo, r, cv2.INTER_CUBIC)),
                   ("Lanczos", lambda lo=low: opencv_resize(lo, r, cv2.INTER_LANCZOS4))]
        methods += [(name, lambda lo=low, f=factor, m=net: tasks.superresolve(m, lo, f, seeds, limits=UNLIMITED))
                    for name, net in editors]
        if teacher is not None:  # and the mean of the teacher's samples
            k = budget.posterior_samples
            methods.append((f"teacher's D, mean of {k} samples ({names[1]})",
                            lambda lo=low, f=factor: posterior_mean_superresolve(teacher, lo, f, k)))
        cases.append((f"super-resolution x{factor}", SuperResolve(factor), methods))
    for task, mask in (("inpainting: centre box (1/4 of the area)", centre_box(n, r)),
                       ("inpainting: random strokes", random_strokes(n, r, g))):
        methods = [("OpenCV Telea", lambda m=mask: opencv_inpaint(gt, m, cv2.INPAINT_TELEA)),
                   ("OpenCV Navier-Stokes", lambda m=mask: opencv_inpaint(gt, m, cv2.INPAINT_NS))]
        methods += [(name, lambda mk=mask, m=net: tasks.inpaint(m, gt, mk, seeds, limits=UNLIMITED))
                    for name, net in editors]
        cases.append((task, Inpaint(mask), methods))
    tiles = np.load(folder / "images.npy", mmap_mode="r")
    chroma = luma_chroma_table(np.array(tiles[:: max(1, len(tiles) // 20000)]))  # a copy: the file is mapped read-only
    methods = [("grey image", lambda: grayscale(gt)), ("per-luma mean chroma (training tiles)",
                                                       lambda: mean_chroma(gt, chroma))]
    methods += [(name, lambda m=net: tasks.colorize(m, gt, seeds, limits=UNLIMITED)) for name, net in editors]
    cases.append(("colorization from luma", Colorize(), methods))

    for task, operator, methods in cases:
        for method, run in methods:
            with torch.inference_mode():
                t0 = time.perf_counter()
                out = run().float().cpu()
                sync(device)
                seconds = time.perf_counter() - t0
            dc = float(data_consistency(operator, out, gt).mean()) if operator is not None else None
            realism = 1e3 * swd(out, gt, torch.Generator().manual_seed(1234), per_image=64)["mean"]
            table.add(task, method, float(psnr(out, gt).mean()), float(ssim(out, gt).mean()), dc, realism,
                      1e3 * seconds / n)
    table.notes.append(f"{n} crops: {budget.crops_per_photo} per held-out photo at each scale "
                       f"{', '.join(f'1/{s}' for s in budget.scales)} (area downscaling), fixed positions. PSNR and "
                       "SSIM on [-1, 1] (peak 2), averaged over crops; SWD of the outputs against the truths as a set.")
    table.notes.append("Denoising: Gaussian noise, unclipped floats, the true sigma given to every method. CBM3D is "
                       "bm3d.bm3d_rgb (bm3d 4.0.3, default profile). NL-means needs 8-bit input, so its input is "
                       "rounded; its h (= hColor) is the best of " + ", ".join(f"{f:g}" for f in NLM_H_FACTORS)
                       + " x sigma on the first crops: " + ", ".join(f"{k}/255: {v:g}" for k, v in nlm_choice.items())
                       + ". 'ms / crop' for CBM3D and NL-means is their CPU time per crop, one at a time.")
    table.notes.append("CM edits run the task defaults with one seed per crop, all crops in one batch (a benchmark, "
                       "not a studio request: no per-request limit). Colorization baseline: each pixel's luma kept, its"
                       " chroma the mean chroma of the training tiles at that luma.")
    if teacher is not None:
        table.notes.append("Edits with the teacher: Algorithm 4 with D(x, sigma) as the denoiser (the studio's "
                           "default for photo models), one sample per crop. In super-resolution the mean of samples "
                           "per crop (seeds k n .. k n + n - 1 for sample k) estimates the posterior mean E[x | block "
                           "means] of the teacher's prior: how much PSNR sampling this prior can give at most, short "
                           f"of the spread left by averaging {budget.posterior_samples} samples.")
    return [table]
