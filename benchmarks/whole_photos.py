"""Section photos: every edit on whole held-out photographs at their native resolution (the any-size engine,
editing.tiling), against the classical baselines of photo_crops on the same images, with seam visibility
and seconds per megapixel beside CBM3D's in the same run. Writes 100% before/after crops for the README.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from benchmarks.common import Table, sync
from benchmarks.edits import grayscale, opencv_inpaint, opencv_resize
from benchmarks.photos import cbm3d, luma_chroma_table, mean_chroma, nl_means, tuned_nl_means_h
from editing import tasks
from editing.images import from_uint8, to_uint8
from editing.limits import UNLIMITED
from editing.metrics import data_consistency, psnr, ssim
from editing.operators import Colorize, Inpaint, Operator, SuperResolve
from editing.precond import Denoiser
from editing.tiling import Tiling, default_tiling, tile_generators, tiles_along
from training.photos import load_heldout

SEED = 0  # every model run uses seed 0 (one output per photo)


@dataclass(frozen=True)
class WholeBudget:
    photos: int = 2  # held-out photos, one per source in turn, each at least side x side
    side: int = 1024  # the centre crop at native resolution (1024: 1.05 megapixels)
    sigmas_255: tuple[int, ...] = (15, 25, 50)
    tune_side: int = 256  # NL-means' h is tuned on a centre crop of this side of the first photo
    band: int = 4  # seam bands: this many pixels centred on each tile edge


WHOLE_FULL = WholeBudget()
WHOLE_QUICK = WholeBudget(photos=1, side=256, sigmas_255=(25,), tune_side=128)


def whole_photos(folder: Path, budget: WholeBudget) -> list[tuple[str, torch.Tensor]]:
    """(id, (1, 3, side, side) on [-1, 1]) centre crops of held-out photos, taking the sources in turn."""
    by_source: dict[str, list[tuple[str, np.ndarray]]] = {}
    for name, rgb in load_heldout(folder):
        if min(rgb.shape[:2]) >= budget.side:
            by_source.setdefault(name.split("_")[0], []).append((name, rgb))
    chosen: list[tuple[str, np.ndarray]] = []
    while len(chosen) < budget.photos and any(by_source.values()):
        for group in by_source.values():
            if group and len(chosen) < budget.photos:
                chosen.append(group.pop(0))
    out = []
    for name, rgb in chosen:
        h, w = rgb.shape[:2]
        top, left = (h - budget.side) // 2, (w - budget.side) // 2
        out.append((name, from_uint8(rgb[None, top:top + budget.side, left:left + budget.side])))
    return out


def tile_edges(size: int, shift: int, tiling: Tiling) -> list[int]:
    """Image coordinates of the tile edges along a side for one grid shift (editing.tiling.tiled's grid)."""
    n = tiles_along(size, tiling)
    if n == 1:
        return []
    starts = [k * tiling.stride - shift for k in range(n)]
    return sorted({e for s in starts for e in (s, s + tiling.tile) if 0 < e < size})


def grid_shift(seed: int, evaluation: int, tiling: Tiling) -> tuple[int, int]:
    """The (dy, dx) grid shift of the `evaluation`-th tiled call (1-based) of an edit with this seed, replayed
    from its tile stream as editing.tiling.tiled draws it."""
    g = tile_generators([seed])[0]
    for _ in range(evaluation):
        dy, dx = (int(v) for v in torch.randint(0, tiling.stride, (2,), generator=g))
    return dy, dx


def seam_masks(height: int, width: int, shift: tuple[int, int], tiling: Tiling,
               band: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean (height, width) masks of the `band`-pixel bands centred on the tile edges of one grid, and of
    the tile interiors (pixels at least `band` from every edge)."""
    rows = distance_to_edges(height, tile_edges(height, shift[0], tiling))
    cols = distance_to_edges(width, tile_edges(width, shift[1], tiling))
    near = torch.minimum(rows.view(-1, 1), cols.view(1, -1))
    return near < band / 2, near >= band


def distance_to_edges(size: int, edges: list[int]) -> torch.Tensor:
    """Per pixel, the distance from its centre to the nearest edge (edges lie between pixels e - 1 and e)."""
    centres = torch.arange(size, dtype=torch.float64) + 0.5
    if not edges:
        return torch.full((size,), float("inf"), dtype=torch.float64)
    return (centres.view(-1, 1) - torch.tensor(edges, dtype=torch.float64).view(1, -1)).abs().min(1).values


def region_psnr(x: torch.Tensor, y: torch.Tensor, where: torch.Tensor) -> float:
    mse = float((x.double() - y.double()).pow(2).mean(1)[0][where].mean())
    return 10 * np.log10(4 / mse)


@dataclass
class Method:
    name: str
    run: Callable[[], torch.Tensor]
    evaluations: int = 0  # > 0: a tiled model run whose last grid the seam bands follow


def photos_tables(cm: Denoiser | None, teacher: Denoiser | None, folder: Path, device: torch.device,
                  budget: WholeBudget, names: tuple[str, str], crops_to: Path | None) -> list[Table]:
    """Quality, seams and seconds per megapixel per task and method on whole held-out photos."""
    images = whole_photos(folder, budget)
    if not images or (cm is None and teacher is None):
        why = "no photo model" if images else f"no held-out photo of at least {budget.side} px a side"
        return [Table("photos", "Every edit on whole held-out photos", [], notes=[f"skipped: {why}"])]
    net = cm or teacher
    tiling = default_tiling(net.param.resolution, device)
    side = budget.side
    tiles = np.load(folder / "images.npy", mmap_mode="r")
    chroma = luma_chroma_table(np.array(tiles[:: max(1, len(tiles) // 20000)]))
    table = Table("photos", f"Every edit on {len(images)} whole held-out photos ({side}x{side}, native resolution)",
                  ["task", "method", "PSNR dB", "SSIM", "||Ax - Ay||", "seam: band - interior dB", "s / megapixel"])
    rows: dict[tuple[str, str], list[list[float]]] = {}
    # Algorithm 4 with each model as its denoiser: the CM, and the teacher's D(x, sigma) (the studio's photo default)
    editors = [(f"{label} ({name}, Algorithm 4)", net) for label, name, net in
               (("CM", names[0], cm), ("teacher's D", names[1], teacher)) if net is not None]
    kept: dict[str, dict[str, torch.Tensor]] = {}
    nlm_h: dict[int, float] = {}
    for index, (name, gt) in enumerate(images):
        g = torch.Generator().manual_seed(7 + index)
        cases: list[tuple[str, Operator | None, list[Method], torch.Tensor]] = []
        for s255 in budget.sigmas_255:
            sigma = s255 / 127.5
            noisy = gt + sigma * torch.randn(gt.shape, generator=g)
            if s255 not in nlm_h:
                t = budget.tune_side
                y0, x0 = (side - t) // 2, (side - t) // 2
                nlm_h[s255] = tuned_nl_means_h(noisy[..., y0:y0 + t, x0:x0 + t], gt[..., y0:y0 + t, x0:x0 + t],
                                               s255, 1)
            methods = [Method("noisy input", lambda x=noisy: x.clamp(-1, 1)),
                       Method("CBM3D (true sigma)", lambda x=noisy, s=sigma: cbm3d(x, s)),
                       Method(f"OpenCV NL-means (h = {nlm_h[s255]:g} sigma)",
                              lambda x=noisy, h=nlm_h[s255] * s255: nl_means(x, h))]
            if teacher is not None:
                methods.append(Method(f"faithful: teacher, 1 evaluation ({names[1]})",
                                      lambda x=noisy, s=sigma: tasks.denoise(teacher, x, sigma=s, seed=SEED)[0], 1))
            if cm is not None:
                methods.append(Method(f"sharp: CM, 1 evaluation ({names[0]})",
                                      lambda x=noisy, s=sigma: tasks.denoise(cm, x, sigma=s, seed=SEED)[0], 1))
            cases.append((f"denoising sigma {s255}/255", None, methods, noisy))
        for factor in (2, 4):
            low = F.avg_pool2d(gt, factor)
            methods = [Method("bicubic", lambda lo=low: opencv_resize(lo, side, cv2.INTER_CUBIC)),
                       Method("Lanczos", lambda lo=low: opencv_resize(lo, side, cv2.INTER_LANCZOS4))]
            methods += [Method(name, lambda lo=low, f=factor, m=net: tasks.superresolve(
                m, lo, f, [SEED], limits=UNLIMITED), tasks.DEFAULT_EDIT.evaluations) for name, net in editors]
            cases.append((f"super-resolution x{factor}", SuperResolve(factor), methods, low))
        mask = torch.zeros(1, 1, side, side, dtype=torch.bool)
        mask[..., 7 * side // 16: 9 * side // 16, 7 * side // 16: 9 * side // 16] = True
        methods = [Method("OpenCV Telea", lambda: opencv_inpaint(gt, mask, cv2.INPAINT_TELEA)),
                   Method("OpenCV Navier-Stokes", lambda: opencv_inpaint(gt, mask, cv2.INPAINT_NS))]
        methods += [Method(name, lambda m=net: tasks.inpaint(m, gt, mask, [SEED], limits=UNLIMITED))
                    for name, net in editors]
        cases.append(("inpainting: centre box (1/64 of the area)", Inpaint(mask), methods, gt * ~mask))
        methods = [Method("grey image", lambda: grayscale(gt)),
                   Method("per-luma mean chroma (training tiles)", lambda: mean_chroma(gt, chroma))]
        methods += [Method(name, lambda m=net: tasks.colorize(m, gt, [SEED], limits=UNLIMITED), 1)
                    for name, net in editors]
        cases.append(("colorization from luma", Colorize(), methods, grayscale(gt)))

        for task, operator, methods, given in cases:
            if index == 0:
                kept[task] = {"input": given}
            for method in methods:
                print(f"[benchmarks] photos: {name} {task}: {method.name}", flush=True)
                with torch.inference_mode():
                    t0 = time.perf_counter()
                    out = method.run().float().cpu()
                    sync(device)
                    seconds = time.perf_counter() - t0
                dc = float(data_consistency(operator, out, gt).mean()) if operator is not None else float("nan")
                seam = float("nan")
                if method.evaluations:
                    shift = grid_shift(SEED, method.evaluations, tiling)
                    band, interior = seam_masks(side, side, shift, tiling, budget.band)
                    seam = region_psnr(out, gt, band) - region_psnr(out, gt, interior)
                rows.setdefault((task, method.name), []).append(
                    [float(psnr(out, gt)), float(ssim(out, gt)), dc, seam, seconds / (side * side / 1e6)])
                if index == 0:
                    kept[task][method.name] = out
            if index == 0:
                kept[task]["truth"] = gt
    for (task, method), values in rows.items():
        cols = np.array(values)  # a column with no value for this method (nan) prints as a dash
        table.add(task, method, *[float(c.mean()) if np.isfinite(c).all() else None for c in cols.T])
    table.notes.append(f"Photos: {', '.join(n for n, _ in images)} (held-out split, never trained on), each a "
                       f"{side}x{side} centre crop at native resolution; one seed; values averaged over photos.")
    table.notes.append("Denoising: Gaussian noise, unclipped floats, true sigma given to every method; NL-means' h "
                       "tuned per sigma on a centre crop of the first photo. Inpainting: a centre box of 1/8 of the "
                       "side. Model rows run the task defaults on tiles of "
                       f"{tiling.tile} px overlapping by {tiling.overlap}, {tiling.batch} per call.")
    table.notes.append(f"Seam: PSNR in {budget.band}-pixel bands centred on the tile edges of the run's last "
                       "evaluation minus PSNR in the tile interiors (pixels at least that far from any edge); 0 "
                       "means no seam shows. 's / megapixel' is wall time per output megapixel on this machine, "
                       "CBM3D's in the same run.")
    if crops_to is not None:
        write_crops(kept, crops_to, side)
    return [table]


def write_crops(kept: dict[str, dict[str, torch.Tensor]], out: Path, side: int, crop: int = 192) -> None:
    """100% crops side by side (input, methods, truth) of the first photo, one PNG per task."""
    out.mkdir(parents=True, exist_ok=True)
    for task, outputs in kept.items():
        if not (task.startswith("denoising sigma 25") or task.startswith("super-resolution")):
            continue
        top = left = side // 2 - crop // 2
        panels = []
        for label, image in outputs.items():
            if label == "noisy input":  # the input itself
                continue
            if label == "input" and image.shape[-1] != side:  # a low-resolution input, shown nearest-upsampled
                image = F.interpolate(image, size=(side, side), mode="nearest")
            panels.append(to_uint8(image[..., top:top + crop, left:left + crop])[0])
        slug = task.split(" (")[0].replace(" ", "-").replace("/", "_")
        Image.fromarray(np.concatenate(panels, axis=1)).save(out / f"{slug}.png")
        (out / f"{slug}.txt").write_text(" | ".join(k for k in outputs if k != "noisy input") + "\n")


__all__ = ["WHOLE_FULL", "WHOLE_QUICK", "WholeBudget", "grid_shift", "photos_tables", "seam_masks", "tile_edges",
           "whole_photos"]
