"""Section 3, editing quality on held-out images (never trained on): the CM's zero-shot edits (Algorithm 4)
against classical baselines, scored by PSNR, SSIM, data consistency ||A x - A y|| and SWD."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.common import Budget, Dataset, Table, label_for, subset, sync
from benchmarks.quality import styles_of
from editing import tasks
from editing.images import from_uint8, to_uint8
from editing.metrics import data_consistency, psnr, ssim, swd
from editing.operators import Colorize, Inpaint, Operator, SuperResolve, grayscale
from editing.precond import Denoiser


# --- the degradations ---------------------------------------------------------------------------------------

def centre_box(n: int, r: int) -> torch.Tensor:
    mask = torch.zeros(n, 1, r, r, dtype=torch.bool)
    mask[..., r // 4: 3 * r // 4, r // 4: 3 * r // 4] = True
    return mask


def right_half(n: int, r: int) -> torch.Tensor:
    mask = torch.zeros(n, 1, r, r, dtype=torch.bool)
    mask[..., r // 2:] = True
    return mask


def random_strokes(n: int, r: int, generator: torch.Generator, strokes: int = 4) -> torch.Tensor:
    """Per image, `strokes` random line segments 2-4 px wide (endpoints and widths from `generator`)."""
    masks = np.zeros((n, r, r), dtype=np.uint8)
    ends = torch.randint(r, (n, strokes, 4), generator=generator).tolist()
    widths = torch.randint(2, 5, (n, strokes), generator=generator).tolist()
    for i in range(n):
        for (x0, y0, x1, y1), w in zip(ends[i], widths[i]):
            cv2.line(masks[i], (x0, y0), (x1, y1), 1, thickness=w)
    return torch.from_numpy(masks).bool().unsqueeze(1)


# --- baselines ------------------------------------------------------------------------------------------------

def opencv_inpaint(images: torch.Tensor, mask: torch.Tensor, method: int, radius: int = 3) -> torch.Tensor:
    arrays, masks = to_uint8(images), mask[:, 0].to(torch.uint8).numpy()
    return from_uint8(np.stack([cv2.inpaint(a, m, radius, method) for a, m in zip(arrays, masks)]))


def opencv_resize(low: torch.Tensor, size: int, interpolation: int) -> torch.Tensor:
    """Upscale in float32 (no uint8 rounding), clipped to [-1, 1]."""
    arrays = low.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)
    out = np.stack([cv2.resize(a, (size, size), interpolation=interpolation) for a in arrays])
    return torch.from_numpy(out).permute(0, 3, 1, 2).clamp(-1, 1)


def nl_means(noisy: torch.Tensor, sigma: float) -> torch.Tensor:
    """cv2.fastNlMeansDenoisingColored given the true noise std: h = hColor = 0.45 sigma (0-255 scale), 3x3 patches,
    7x7 search; the best of a small grid on these 32 px held-out images, so the baseline is favoured."""
    h = 0.45 * sigma * 127.5
    return from_uint8(np.stack([cv2.fastNlMeansDenoisingColored(a, None, h, h, 3, 7) for a in to_uint8(noisy)]))


# --- the table --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One degradation: the measured image y, the operator A (None: no exact constraint), and methods."""

    task: str
    operator: Operator | None
    methods: list[tuple[str, Callable[[], torch.Tensor]]]


def edit_table(model: Denoiser | None, model_name: str, why: str, data: Dataset, device: torch.device,
               budget: Budget) -> Table:
    """PSNR / SSIM / ||Ax - Ay|| / SWD for every edit and baseline on held-out images."""
    table = Table("edits", "Editing quality on held-out images (split = heldout, never trained on)",
                  ["task", "method", "PSNR dB", "SSIM", "||Ax - Ay||", "SWD x 1e3", "ms / image"])
    r = data.resolution
    usable = model is not None and model.param.resolution == r
    if model is None:
        table.notes.append(f"CM rows skipped: {why}.")
    elif not usable:
        table.notes.append(f"CM rows skipped: model is {model.param.resolution}px, data {r}px.")
    results: dict[tuple[str, str], list[tuple[torch.Tensor, torch.Tensor, float]]] = {}
    truths: dict[str, list[torch.Tensor]] = {}
    consistency: dict[tuple[str, str], list[torch.Tensor]] = {}
    styles = styles_of(data)[: budget.edit_styles]
    for si, style in enumerate(styles):
        gt = subset(data.select("heldout", style), budget.edit_images_per_style, torch.Generator().manual_seed(30 + si))
        n = len(gt)
        if n == 0:
            continue
        g = torch.Generator().manual_seed(40 + si)
        label = label_for(model, style) if usable else None
        seeds = list(range(n))
        cases: list[Case] = []
        for task, mask in (("inpaint: centre box", centre_box(n, r)), ("inpaint: random strokes",
                           random_strokes(n, r, g)), ("inpaint: right half", right_half(n, r))):
            methods = [("OpenCV Telea", lambda m=mask: opencv_inpaint(gt, m, cv2.INPAINT_TELEA)),
                       ("OpenCV Navier-Stokes", lambda m=mask: opencv_inpaint(gt, m, cv2.INPAINT_NS))]
            if usable:
                methods.append((f"CM ({model_name})", lambda m=mask: tasks.inpaint(model, gt, m, seeds, label=label)))
            cases.append(Case(task, Inpaint(mask), methods))
        colorize = [("grayscale input", lambda: grayscale(gt))]
        if usable:
            colorize.append((f"CM ({model_name})", lambda: tasks.colorize(model, gt, seeds, label=label)))
        cases.append(Case("colorization", Colorize(), colorize))
        for factor in (2, 4):
            low = F.avg_pool2d(gt, factor)
            methods = [("bicubic", lambda lo=low: opencv_resize(lo, r, cv2.INTER_CUBIC)),
                       ("Lanczos", lambda lo=low: opencv_resize(lo, r, cv2.INTER_LANCZOS4))]
            if usable:
                methods.append((f"CM ({model_name})",
                                lambda lo=low, f=factor: tasks.superresolve(model, lo, f, seeds, label=label)))
            cases.append(Case(f"super-resolution x{factor}", SuperResolve(factor), methods))
        for sigma in budget.noise_levels:
            noisy = gt + sigma * torch.randn(gt.shape, generator=g)
            # As uploaded: the same noise clipped to [-1, 1] and stored in 8 bits (a white background keeps only
            # half its noise, which the sigma estimate must see past).
            upload = from_uint8(to_uint8(noisy))
            for task, x in ((f"denoising sigma={sigma:g} ({sigma * 127.5:.0f}/255)", noisy),
                            (f"denoising an 8-bit upload, sigma={sigma:g}", upload)):
                methods = [("noisy input", lambda x=x: x.clamp(-1, 1)),
                           ("OpenCV NL-means", lambda x=x, s=sigma: nl_means(x, s))]
                if usable:
                    methods.append((f"CM ({model_name}), sigma estimated",
                                    lambda x=x: tasks.denoise(model, x, label=label)[0]))
                cases.append(Case(task, None, methods))
        for case in cases:
            truths.setdefault(case.task, []).append(gt)
            for method, run in case.methods:
                with torch.inference_mode():
                    t0 = time.perf_counter()
                    out = run().float()
                    sync(device)
                    seconds = time.perf_counter() - t0
                out = out.cpu()
                results.setdefault((case.task, method), []).append((out, gt, seconds))
                if case.operator is not None:
                    op = case.operator
                    if isinstance(op, Inpaint):
                        op = Inpaint(op.mask.cpu())
                    consistency.setdefault((case.task, method), []).append(data_consistency(op, out, gt))
    for (task, method), parts in results.items():
        out = torch.cat([p[0] for p in parts])
        gt = torch.cat([p[1] for p in parts])
        seconds = sum(p[2] for p in parts)
        dc = consistency.get((task, method))
        dc_mean = float(torch.cat(dc).mean()) if dc else None
        realism = 1e3 * swd(out, gt, torch.Generator().manual_seed(1234), per_image=budget.swd_per_image)["mean"] \
            if len(out) >= 2 else None
        table.add(task, method, float(psnr(out, gt).mean()), float(ssim(out, gt).mean()), dc_mean, realism,
                  1e3 * seconds / len(out))
    count = sum(len(t) for t in truths.get("colorization", []))
    table.notes.append(f"{count} held-out images from {', '.join(styles)}; PSNR and SSIM on the whole image "
                       "([-1, 1] scale, peak 2), averaged over images; SWD (mean over levels) of the outputs against "
                       "the ground truths as a set.")
    table.notes.append("||Ax - Ay||: L2 norm per image of the measured coefficients' difference (editing.operators."
                       "measurement); '—' for denoising (no exact measurement). OpenCV inpainting works on uint8, so "
                       "its known pixels carry rounding error.")
    table.notes.append("CM edits run the task defaults (editing 18 schedule; denoise: one evaluation at the "
                       "estimated sigma); one seed per image, images of a style in one batch. Baselines: cv2.inpaint "
                       "radius 3; cv2.resize in float32 from the f x f block means; NL-means is told the true sigma "
                       "(h = hColor = 0.45 sigma, 3x3 patches, 7x7 search: the best of a grid on held-out images), "
                       "while the CM estimates sigma from the image. 'An 8-bit upload' is the same noisy image as "
                       "a saved PNG holds it: clipped to [-1, 1] and rounded to 8 bits.")
    return table
