"""The studio's tasks, thin over the samplers and the one solver. Images are (B, 3, H, W) tensors in [-1, 1].

Each task takes the model, its inputs, one seed per output image and a Schedule, and returns images
in [-1, 1]. Class labels are one int for the whole batch (or None for an unconditional model).
Edits take images of any size H, W >= the model's resolution R: the model runs on overlapping R x R tiles
(editing.tiling) under the one solver, whose operator acts on the whole image. Generation and
interpolation stay at R. Each edit refuses work beyond its device's limit (editing.limits).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from editing.feasible import project_feasible
from editing.images import area_resize, from_uint8, resize_mask, to_uint8
from editing.limits import Limits, Pass, check_request
from editing.noise import (BOOTSTRAP_SCALES, JpegCompression, NoiseCurve, Stabilizer, bootstrap_scale,
                           bootstrap_squares, denoiser_sigma, estimate_noise_sigma, is_grey, jpeg_roundtrip)
from editing.operators import Colorize, Identity, Inpaint, Operator, SuperResolve, replace
from editing.precond import Denoiser, Parameterization
from editing.samplers import Callback, Denoise, bind, generators_for, randn, sample_consistency, sample_heun
from editing.schedules import PRESETS, Schedule, karras_sigmas
from editing.solver import iterative_replacement
from editing.tiling import (TileCallback, Tiling, default_tiling, pad_to, stream_seed, subsampled, tile_generators,
                            tiled)

DEFAULT_EDIT = PRESETS["editing 18"]
# Algorithm 4 with a diffusion denoiser D(x, sigma) fills a hole better on the full 40-point grid (its fills keep
# their realism); a consistency model's fills of large holes lose theirs there, so it keeps DEFAULT_EDIT.
INPAINT_EDM = PRESETS["editing 40"]
COLOR_REFINE = Schedule((26, 39), 40)  # colorize's full-size pass: one evaluation at sigma 0.47
INPAINT_REACH = 0.375  # x R: the farthest a hole may reach from known pixels and be filled at full size
# Named random streams (stream_seed) beside a seed's own generator, so no two tasks' seeds draw the same noise.
START_STREAM = "noised start"  # stroke_edit's (and interpolate_images') noise on the painting
REFINE_STREAM = "colorize refine"  # colorize's re-noise before its full-size pass
FRAMES_STREAM = "interpolate_seeds frames"  # the re-injected noise shared by every frame
PHASE_STREAM = "denoise phase"  # the grid shifts of a spread denoise's phase sub-images, one stream per phase
SPREAD_PHASES = 2  # a spread denoise runs on 2x2 phase sub-images: a demosaicing spreads noise over 1-2 pixels
SPREAD_CLEANUP = 0.15  # x the level: its whole-image pass, which takes out the pattern the phases leave
ADDED_STREAM = "denoise added noise"  # the white noise an averaged denoise adds, per draw
AVERAGED_ADDED, AVERAGED_DRAWS = 1.5, 4  # a JPEG's noise: white noise of 1.5 x its level added, 4 draws averaged


def schedule_sigmas(model: Denoiser, schedule: Schedule) -> torch.Tensor:
    p = model.param
    return schedule.sigmas(p.sigma_min, p.sigma_max, p.rho).to(torch.float32)


def class_labels(model: Denoiser, label: int | None, batch: int) -> torch.Tensor | None:
    """A (batch,) label tensor for a conditional model; validates the label."""
    names = model.param.class_names
    if not names:
        if label is not None:
            raise ValueError("this model is unconditional: it takes no class")
        return None
    if label is None:
        raise ValueError(f"this model needs a class, one of 0..{len(names) - 1} ({', '.join(names[:5])}...)")
    if not 0 <= int(label) < len(names):
        raise ValueError(f"class must be between 0 and {len(names) - 1}, got {label}")
    return torch.full((batch,), int(label), dtype=torch.long, device=device_of(model))


def device_of(model: Denoiser) -> torch.device:
    return next(model.unet.parameters()).device


def check_images(model: Denoiser, images: torch.Tensor, name: str = "image", *, any_size: bool = True) -> torch.Tensor:
    """(B, 3, H, W) on the model's device in fp32: H, W >= R (`any_size`), or exactly R x R."""
    r = model.param.resolution
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} must be a (B, 3, H, W) batch, got {tuple(images.shape)}")
    if not any_size and images.shape[-2:] != (r, r):
        raise ValueError(f"{name} must be (B, 3, {r}, {r}) for this model, got {tuple(images.shape)}")
    if min(images.shape[-2:]) < r:
        raise ValueError(f"{name} is {images.shape[-1]}x{images.shape[-2]}: this model needs at least {r}x{r} "
                         "(pad it, e.g. editing.tiling.pad_to, and crop the result)")
    return images.to(device_of(model), torch.float32)


def tiled_model(
    model: Denoiser, label: int | None, seeds: Sequence[int], *, tiling: Tiling | None = None,
    on_tiles: TileCallback | None = None,
) -> Denoise:
    """The model with one class label bound, on R x R tiles of larger images (exactly the model at R x R)."""
    base = bind(model, class_labels(model, label, 1))
    tiling = tiling or default_tiling(model.param.resolution, device_of(model))
    return tiled(base, tiling, tile_generators(seeds), progress=on_tiles)


def check_seeds(seeds: Sequence[int]) -> list[int]:
    if not seeds:
        raise ValueError("give at least one seed")
    return [int(s) for s in seeds]


def generate(
    model: Denoiser, seeds: Sequence[int], *, schedule: Schedule = PRESETS["1 step"],
    label: int | None = None, callback: Callback | None = None,
) -> torch.Tensor:
    """Sample len(seeds) images from noise (Algorithm 1)."""
    seeds = check_seeds(seeds)
    p, device = model.param, device_of(model)
    generators = generators_for(seeds)
    sigmas = schedule_sigmas(model, schedule)
    x = sigmas[0] * randn((len(seeds), 3, p.resolution, p.resolution), generators, device)
    denoise = bind(model, class_labels(model, label, len(seeds)))
    return sample_consistency(denoise, x, sigmas, generators, sigma_min=p.sigma_min, callback=callback)


def edit(
    model: Denoiser, y: torch.Tensor, operator: Operator, seeds: Sequence[int], *, schedule: Schedule,
    label: int | None = None, x: torch.Tensor | None = None, callback: Callback | None = None,
    tiling: Tiling | None = None, on_tiles: TileCallback | None = None, limits: Limits | None = None,
) -> torch.Tensor:
    """Run Algorithm 4 for one reference image y (1, 3, H, W), one output per seed, tiled beyond R x R."""
    seeds = check_seeds(seeds)
    y = check_images(model, y, "reference").expand(len(seeds), -1, -1, -1)
    check_request(limits, y.device, len(seeds), y.shape[-2], y.shape[-1], schedule.evaluations)
    denoise = tiled_model(model, label, seeds, tiling=tiling, on_tiles=on_tiles)
    return iterative_replacement(
        denoise, y, operator, schedule_sigmas(model, schedule), generators_for(seeds),
        sigma_min=model.param.sigma_min, x=x, callback=callback,
    )


def mask_crop(mask: torch.Tensor, resolution: int, margin: int | None = None) -> tuple[slice, slice]:
    """Rows and columns of the box around the mask's True pixels plus `margin` (default R) on each side,
    grown to at least R x R and clipped to the image; the whole image when nothing is masked."""
    h, w = mask.shape[-2:]
    margin = resolution if margin is None else margin
    hit = mask.reshape(-1, h, w).any(0)
    if not hit.any():
        return slice(0, h), slice(0, w)
    spans = []
    for along, size in ((hit.any(1), h), (hit.any(0), w)):
        where = torch.nonzero(along).flatten()
        lo, hi = int(where[0]) - margin, int(where[-1]) + 1 + margin
        short = max(0, resolution - (hi - lo))
        lo, hi = lo - short // 2, hi + short - short // 2
        lo, hi = max(0, lo - max(0, hi - size)), min(size, hi + max(0, -lo))
        spans.append(slice(max(0, lo), min(size, hi)))
    return spans[0], spans[1]


def hole_reach(mask: torch.Tensor, side: int = 256) -> int:
    """How far (Chebyshev, in pixels) the masked pixel farthest from every unmasked one lies: the erosions that
    empty the mask, counted on a copy at most `side` pixels on its long side whose cells are masked where all of
    their pixels are (so a thin stroke stays thin). The image's border is not an unmasked pixel."""
    h, w = mask.shape[-2:]
    cell = max(1, math.ceil(max(h, w) / side))
    hole = mask.reshape(-1, 1, h, w).any(0, keepdim=True).float()
    hole = -F.max_pool2d(-hole, cell, ceil_mode=True) if cell > 1 else hole  # min pooling
    if bool(hole.all()):
        return max(h, w)  # nothing known to fill from
    steps = 0
    while bool(hole.any()):
        hole = -F.max_pool2d(-hole, 3, stride=1, padding=1)  # erosion (the padding is -inf: no border)
        steps += 1
    return steps * cell


def inpaint_plan(mask: torch.Tensor, resolution: int) -> tuple[slice, slice, tuple[int, int] | None]:
    """Where `inpaint` solves: the crop's rows and columns, and the size it is solved at (None: its own).

    A tile whose pixels are all masked sees nothing of the image, so a hole reaching farther than
    INPAINT_REACH x R from every known pixel is filled at a reduced scale where it reaches that far, on a crop
    whose margin is R at that scale."""
    reach, target = hole_reach(mask), INPAINT_REACH * resolution
    if reach <= target:
        return (*mask_crop(mask, resolution), None)
    scale = target / reach
    rows, cols = mask_crop(mask, resolution, margin=math.ceil(resolution / scale))
    h, w = rows.stop - rows.start, cols.stop - cols.start
    return rows, cols, (min(h, max(resolution, round(h * scale))), min(w, max(resolution, round(w * scale))))


def inpaint_passes(mask: torch.Tensor, resolution: int, evaluations: int,
                   size: tuple[int, int] | None = None) -> list[Pass]:
    """What `inpaint` runs per output on an image of `size` (default the mask's) whose mask is `mask` resized to
    it (images.resize_mask: a pixel filled if any mask pixel in it is)."""
    rows, cols, reduced = inpaint_plan(resize_mask(mask, *size) if size else mask, resolution)
    return [Pass(*(reduced or (rows.stop - rows.start, cols.stop - cols.start)), evaluations)]


def stroke_passes(strokes: torch.Tensor, resolution: int, evaluations: int,
                  size: tuple[int, int] | None = None) -> list[Pass]:
    """What `stroke_edit` with `strokes` runs per output on an image of `size` (default the mask's), the strokes
    resized to it: the solver on `mask_crop`'s box around them, at full size."""
    rows, cols = mask_crop(resize_mask(strokes, *size) if size else strokes, resolution)
    return [Pass(rows.stop - rows.start, cols.stop - cols.start, evaluations)]


def inpaint_schedule(param: Parameterization) -> Schedule:
    """`inpaint`'s default schedule for a denoiser of this parameterization: INPAINT_EDM for a diffusion
    denoiser, else DEFAULT_EDIT."""
    return INPAINT_EDM if param.boundary == "edm" else DEFAULT_EDIT


def inpaint(
    model: Denoiser, image: torch.Tensor, mask: torch.Tensor, seeds: Sequence[int], *,
    schedule: Schedule | None = None, label: int | None = None, callback: Callback | None = None,
    tiling: Tiling | None = None, on_tiles: TileCallback | None = None, limits: Limits | None = None,
) -> torch.Tensor:
    """Fill the pixels where mask (1, 1, H, W) is True; the others are kept exactly.

    The solver runs on a crop around the mask (a margin of R, at least R x R), pasted back into the image. A
    large hole is solved at a reduced scale (`inpaint_plan`) and its fill upsampled (bilinear) into the hole.
    `schedule` None: `inpaint_schedule` for this denoiser.
    """
    image = check_images(model, image)
    schedule = inpaint_schedule(model.param) if schedule is None else schedule
    if mask.ndim != 4 or mask.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"mask must be (1, 1, {image.shape[-2]}, {image.shape[-1]}) like the image, "
                         f"got {tuple(mask.shape)}")
    rows, cols, reduced = inpaint_plan(mask, model.param.resolution)
    crop, hole = image[..., rows, cols], mask[..., rows, cols].to(device_of(model))
    if reduced is None:
        filled = edit(model, crop, Inpaint(hole), seeds, schedule=schedule, label=label, callback=callback,
                      tiling=tiling, on_tiles=on_tiles, limits=limits)
        return paste(image, filled, rows, cols)
    low = edit(model, area_resize(crop, *reduced), Inpaint(resize_mask(hole, *reduced)), seeds,
               schedule=schedule, label=label, callback=callback, tiling=tiling, on_tiles=on_tiles, limits=limits)
    up = F.interpolate(low, size=crop.shape[-2:], mode="bilinear", align_corners=False)
    reference = crop.expand(len(up), -1, -1, -1)
    filled = project_feasible(Inpaint(hole), replace(Inpaint(hole), up, reference), reference)  # feasible: as is
    return paste(image, filled, rows, cols)


def paste(image: torch.Tensor, edited: torch.Tensor, rows: slice, cols: slice) -> torch.Tensor:
    """One copy of image (1, 3, H, W) per edited crop (B, 3, h, w), with the crop at rows, cols."""
    if edited.shape[-2:] == image.shape[-2:]:
        return edited
    out = image.expand(len(edited), -1, -1, -1).clone()
    out[..., rows, cols] = edited
    return out


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """A (B, 1, H, W) bool mask grown by `radius` pixels in every direction (a square; separable max pooling)."""
    side = 2 * radius + 1
    grown = F.max_pool2d(mask.float(), (1, side), stride=1, padding=(0, radius))
    return F.max_pool2d(grown, (side, 1), stride=1, padding=(radius, 0)) > 0


def colorize(
    model: Denoiser, image: torch.Tensor, seeds: Sequence[int], *, schedule: Schedule = DEFAULT_EDIT,
    label: int | None = None, callback: Callback | None = None,
    tiling: Tiling | None = None, on_tiles: TileCallback | None = None, limits: Limits | None = None,
    chroma_side: int | None = None, refine: Schedule | None = COLOR_REFINE,
) -> torch.Tensor:
    """Colour an image keeping its luma exactly (a colour input is reduced to its luma first).

    Tiles coloured on their own disagree (one tile's sky blue, its neighbour's grey), so on an image whose
    short side exceeds `chroma_side` (default R) the colours are chosen once for the whole image:
    1. solve at a reduced size whose short side is `chroma_side` (one or a few tiles);
    2. upsample that result's chroma to full size and put the full-size luma back exactly (A x = A y);
    3. `refine` (None: skip) re-noises that to its first sigma and finishes its schedule at full size, under
       the same operator (SDEdit, Meng et al. 2022, under Algorithm 4), for detail at the full resolution.
    """
    image = check_images(model, image)
    h, w = image.shape[-2:]
    reduced = chroma_size(h, w, chroma_side or model.param.resolution)
    if reduced is None:
        return edit(model, image, Colorize(), seeds, schedule=schedule, label=label, callback=callback,
                    tiling=tiling, on_tiles=on_tiles, limits=limits)
    small = area_resize(image, *reduced)
    low = edit(model, small, Colorize(), seeds, schedule=schedule, label=label, callback=callback,
               tiling=tiling, on_tiles=on_tiles, limits=limits)
    up = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    reference = image.expand(len(up), -1, -1, -1)
    start = replace(Colorize(), up, reference)
    if refine is None:  # no solver pass to end on the projection into range (editing.feasible): do it here
        return project_feasible(Colorize(), start, reference)
    seeds = check_seeds(seeds)
    sigma0 = float(schedule_sigmas(model, refine)[0])
    refine_noise = generators_for([stream_seed(s, REFINE_STREAM) for s in seeds])
    x = start + sigma0 * randn(start.shape, refine_noise, start.device)
    return edit(model, image, Colorize(), seeds, schedule=refine, label=label, x=x, callback=callback,
                tiling=tiling, on_tiles=on_tiles, limits=limits)


def chroma_size(height: int, width: int, chroma_side: int) -> tuple[int, int] | None:
    """The reduced size `colorize` chooses its colours at (short side `chroma_side`), or None when the image's
    short side is not above it (coloured in one pass)."""
    if min(height, width) <= chroma_side:
        return None
    scale = chroma_side / min(height, width)
    return max(chroma_side, round(height * scale)), max(chroma_side, round(width * scale))


def colorize_passes(height: int, width: int, resolution: int, schedule: Schedule = DEFAULT_EDIT,
                    refine: Schedule | None = COLOR_REFINE, chroma_side: int | None = None) -> list[Pass]:
    """What `colorize` runs per output on a height x width image: `schedule` at the reduced size, then `refine`
    at full size; or `schedule` at full size when the image is small."""
    reduced = chroma_size(height, width, chroma_side or resolution)
    if reduced is None:
        return [Pass(height, width, schedule.evaluations)]
    return [Pass(*reduced, schedule.evaluations)] + ([Pass(height, width, refine.evaluations)] if refine else [])


def upsample_nearest(low: torch.Tensor, factor: int) -> torch.Tensor:
    """Nearest upsampling: a full-size image whose factor x factor block means are the low-res pixels."""
    return F.interpolate(low, scale_factor=factor, mode="nearest")


def superresolve(
    model: Denoiser, low: torch.Tensor, factor: int, seeds: Sequence[int], *, schedule: Schedule = DEFAULT_EDIT,
    label: int | None = None, callback: Callback | None = None,
    tiling: Tiling | None = None, on_tiles: TileCallback | None = None, limits: Limits | None = None,
) -> torch.Tensor:
    """Upscale (1, 3, h, w) by f to (f h, f w), at least the model's resolution, keeping every f x f block mean
    exactly."""
    r = model.param.resolution
    if factor < 2 or r % factor:
        raise ValueError(f"factor {factor} must be >= 2 and divide the model resolution {r}")
    if low.ndim != 4 or min(low.shape[-2:]) * factor < r:
        raise ValueError(f"the low-resolution image must be at least {r // factor}x{r // factor} for factor "
                         f"{factor}, got {tuple(low.shape[-2:])}")
    y = upsample_nearest(low.to(torch.float32), factor)
    return edit(model, y, SuperResolve(factor), seeds, schedule=schedule, label=label, callback=callback,
                tiling=tiling, on_tiles=on_tiles, limits=limits)


def stroke_edit(
    model: Denoiser, painting: torch.Tensor, seeds: Sequence[int], *, schedule: Schedule = PRESETS["strokes"],
    label: int | None = None, callback: Callback | None = None,
    tiling: Tiling | None = None, on_tiles: TileCallback | None = None, limits: Limits | None = None,
    strokes: torch.Tensor | None = None, margin: int | None = None,
) -> torch.Tensor:
    """SDEdit-style: noise the rough painting to the schedule's first sigma and run it (CM paper, Fig. 6).

    A later first index of ts (a smaller starting sigma) stays closer to the painting. With `strokes`
    (1, 1, H, W) bool, the pixels painted over a photo, only they and `margin` (default R / 2, at most R) pixels
    around them change: Algorithm 4 with the inpainting operator outside that region keeps the photo exactly, on
    the crop around the strokes (as `inpaint`), and the result fades into the photo across the margin (a linear
    ramp from the strokes out), so that a few-step edit leaves no seam at the region's edge. Without (or with
    none painted) the whole painting is re-noised.
    """
    seeds = check_seeds(seeds)
    painting = check_images(model, painting, "painting")
    sigma0 = float(schedule_sigmas(model, schedule)[0])
    start_noise = generators_for([stream_seed(s, START_STREAM) for s in seeds])
    local = strokes is not None and bool(strokes.any())
    operator: Operator = Identity()
    rows, cols = slice(None), slice(None)
    if local:
        if strokes.ndim != 4 or strokes.shape[-2:] != painting.shape[-2:]:
            raise ValueError(f"strokes must be (1, 1, {painting.shape[-2]}, {painting.shape[-1]}) like the "
                             f"painting, got {tuple(strokes.shape)}")
        r = model.param.resolution
        margin = r // 2 if margin is None else margin
        if not 0 <= margin <= r:
            raise ValueError(f"the margin around the strokes must be 0 to {r} pixels, got {margin}")
        rows, cols = mask_crop(strokes, r)  # R beyond the strokes: the region and context around it
        near = strokes[..., rows, cols]
        operator = Inpaint(dilate(near, margin).to(device_of(model)))
        # 1 on the strokes down to 0 at `margin` from them: a box mean of the strokes grown by half of it
        half = margin // 2
        fade = F.avg_pool2d(dilate(near, half).float(), 2 * half + 1, stride=1, padding=half, count_include_pad=False)
    crop = painting[..., rows, cols].expand(len(seeds), -1, -1, -1)
    x = crop + sigma0 * randn(crop.shape, start_noise, crop.device)
    edited = edit(model, crop[:1], operator, seeds, schedule=schedule, label=label, x=x, callback=callback,
                  tiling=tiling, on_tiles=on_tiles, limits=limits)
    if local:
        edited = torch.lerp(crop.to(edited), edited, fade.to(edited))
    return paste(painting, edited, rows, cols)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of two (high-dimensional Gaussian) noises, per image."""
    a_flat, b_flat = a.flatten(1), b.flatten(1)
    cos = (a_flat * b_flat).sum(1) / (a_flat.norm(dim=1) * b_flat.norm(dim=1))
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7)).view(-1, *[1] * (a.ndim - 1))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def interpolate_seeds(
    model: Denoiser, seed_a: int, seed_b: int, frames: int, *, schedule: Schedule = PRESETS["1 step"],
    label: int | None = None, callback: Callback | None = None,
) -> torch.Tensor:
    """Frames between two samples: slerp of their noises, then sampling (one evaluation per frame at 1 step).

    Every frame uses the same re-injected noise (seed_a's), so frames differ only by their start.
    """
    if frames < 2:
        raise ValueError(f"interpolation needs at least 2 frames, got {frames}")
    p, device = model.param, device_of(model)
    shape = (1, 3, p.resolution, p.resolution)
    za, zb = randn(shape, generators_for([seed_a]), device), randn(shape, generators_for([seed_b]), device)
    sigmas = schedule_sigmas(model, schedule)
    x = torch.cat([slerp(za, zb, i / (frames - 1)) for i in range(frames)]) * sigmas[0]
    denoise = bind(model, class_labels(model, label, frames))
    generators = generators_for([stream_seed(seed_a, FRAMES_STREAM)] * frames)
    return sample_consistency(denoise, x, sigmas, generators, sigma_min=p.sigma_min, callback=callback)


def interpolate_images(
    model: Denoiser, a: torch.Tensor, b: torch.Tensor, frames: int, seed: int, *,
    schedule: Schedule = Schedule((16, 20, 39), 40), label: int | None = None, callback: Callback | None = None,
) -> torch.Tensor:
    """Frames between two images: noise both to sigma_ts[0] with one shared z, blend linearly, finish the schedule."""
    if frames < 2:
        raise ValueError(f"interpolation needs at least 2 frames, got {frames}")
    a, b = check_images(model, a, "first image", any_size=False), check_images(model, b, "second image", any_size=False)
    sigma0 = float(schedule_sigmas(model, schedule)[0])
    # The start noise is stroke_edit's stream, so the end frames are its edits of a and b; generators_for([seed])
    # drives the re-injected noise, whose first draw would otherwise be z again.
    z = randn(a.shape, generators_for([stream_seed(seed, START_STREAM)]), a.device)
    x = torch.cat([(1 - t) * a + t * b for t in torch.linspace(0, 1, frames).tolist()]) + sigma0 * z
    return edit(model, a, Identity(), [seed] * frames, schedule=schedule, label=label, x=x, callback=callback)


def averaged_over_added_noise(denoise: Denoise, added: float, draws: int,
                              generators: Sequence[torch.Generator]) -> Denoise:
    """The mean over `draws` draws of denoise(x + added sigma z, sqrt(1 + added^2) sigma), z white noise drawn per
    image from `generators`. Noise the model was not trained on (a JPEG's, shaped by its compression) under more
    white noise is mostly the Gaussian noise it was trained on, at the sum's level; the mean over draws takes back
    most of what the added noise costs."""
    if added < 0 or draws < 1:
        raise ValueError(f"need added noise >= 0 and at least one draw, got {added} and {draws}")

    def run(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sigma = sigma.to(x.device, torch.float32)
        std = (added * sigma).view(-1, *([1] * (x.dim() - 1)))
        total = sigma * math.sqrt(1.0 + added**2)
        outs = [denoise(x + std * randn(x.shape, generators, x.device).to(x.dtype), total).to(torch.float32)
                for _ in range(draws)]
        return torch.stack(outs).mean(0)

    return run


def averaged_draws(fits: Callable[[int], bool]) -> int:
    """The most draws, up to AVERAGED_DRAWS, for which `fits(draws)` (the request within its limits); 1 where not
    even two fit, where a JPEG keeps the bootstrap's multiple, which one draw does not beat (the jpeg_noise section)."""
    return next((k for k in range(AVERAGED_DRAWS, 1, -1) if fits(k)), 1)


def denoise(
    model: Denoiser, noisy: torch.Tensor, *, sigma: float | NoiseCurve | None = None, refine_steps: int = 0,
    seed: int = 0, label: int | None = None, callback: Callback | None = None,
    tiling: Tiling | None = None, on_tiles: TileCallback | None = None, limits: Limits | None = None,
    grey: bool | None = None, spread: bool = False, added: float = 0.0, draws: int = 1,
) -> tuple[torch.Tensor, float]:
    """One evaluation of f at the upload's noise level (estimated on the whole image unless given), then
    optional refinement steps at lower levels of the Karras grid (Algorithm 1). Returns the image and the
    sigma the model ran at. With the EDM teacher as `model` the one evaluation is D(x, sigma), the MMSE estimate.
    `sigma` is the noise's std per channel, or a curve of it against the value (`noise.NoiseCurve`, a camera's
    noise): then the model runs on the image variance-stabilized (`noise.Stabilizer`), at the one std the noise has
    there, and the result is mapped back. On a grey image (`grey` None: every image's channels equal) the model runs
    at `noise.denoiser_sigma` of it and the result is put back onto grey (the mean of its channels). `spread`: noise
    spread over neighbouring pixels (`noise.NoiseReading.spread`, a camera's after demosaicing), which the model runs
    on each image's 2x2 phase sub-images for (`tiling.subsampled`), then once more on the whole image at
    SPREAD_CLEANUP x the level. `added` > 0: each evaluation is the mean of `draws`, each on the image under white
    noise of `added` x its level more (`averaged_over_added_noise`, for a JPEG's noise: AVERAGED_ADDED and
    AVERAGED_DRAWS); the sigma returned is the noise's own level."""
    noisy = check_images(model, noisy, "noisy image")
    if isinstance(sigma, NoiseCurve):
        if sigma.is_constant:
            sigma = sigma.sigmas[0]
        else:
            stabilizer = Stabilizer.of(sigma)
            out, used = denoise(model, stabilizer.forward(noisy), sigma=stabilizer.sigma, refine_steps=refine_steps,
                                seed=seed, label=label, callback=callback, tiling=tiling, on_tiles=on_tiles,
                                limits=limits, grey=grey, spread=spread, added=added, draws=draws)
            return stabilizer.inverse(out), used
    p = model.param
    if sigma is None:
        sigma = float(estimate_noise_sigma(noisy).mean())
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"noise level must be a finite number >= 0, got {sigma}")
    if refine_steps < 0 or refine_steps > 16:
        raise ValueError(f"refinement steps must be between 0 and 16, got {refine_steps}")
    grey = is_grey(noisy) if grey is None else grey
    sigma = min(max(denoiser_sigma(sigma, grey), p.sigma_min), p.sigma_max)
    grid = karras_sigmas(40, p.sigma_min, p.sigma_max, p.rho)
    lower = grid[(grid < sigma) & (grid > p.sigma_min)]
    pick = lower[torch.linspace(0, len(lower) - 1, refine_steps).round().long()] if refine_steps and len(lower) else lower[:0]
    sigmas = torch.cat([torch.tensor([sigma], dtype=torch.float64), pick, torch.tensor([p.sigma_min], dtype=torch.float64)])
    draws = draws if added > 0 else 1
    check_request(limits, noisy.device, noisy.shape[0], noisy.shape[-2], noisy.shape[-1],
                  (len(sigmas) - 1) * draws + spread)
    seeds = [seed + i for i in range(noisy.shape[0])]
    whole = tiled_model(model, label, seeds, tiling=tiling, on_tiles=on_tiles)
    run = whole
    if spread:
        phase_seeds = [stream_seed(s, f"{PHASE_STREAM} {k}") for s in seeds for k in range(SPREAD_PHASES**2)]
        run = subsampled(tiled_model(model, label, phase_seeds, tiling=tiling, on_tiles=on_tiles), SPREAD_PHASES)
    if added > 0:
        added_generators = [torch.Generator().manual_seed(stream_seed(s, ADDED_STREAM)) for s in seeds]
        run = averaged_over_added_noise(run, added, draws, added_generators)
    # f(x, sigma) with x the upload itself: it lies on a trajectory at that sigma (CM paper, Sec. 6).
    out = sample_consistency(run, noisy, sigmas.to(torch.float32), generators_for(seeds), sigma_min=p.sigma_min,
                             callback=callback)
    if spread:
        # The phases, denoised apart, differ by a faint pattern of period 2 px: their independent errors, which one
        # evaluation over the whole image at a fraction of the level takes out (as noise it is white).
        cleanup = out.new_full((out.shape[0],), max(SPREAD_CLEANUP * sigma, p.sigma_min), dtype=torch.float32)
        out = whole(out, cleanup).to(torch.float32).clamp(-1.0, 1.0)
    if grey:
        out = out.mean(1, keepdim=True).expand_as(out).contiguous()
    return out, sigma


def denoise_scale(
    model: Denoiser, upload: torch.Tensor, sigma: float | NoiseCurve,
    compression: JpegCompression | None = None, *, refine_steps: int = 0, seed: int = 0,
    label: int | None = None, grey: bool | None = None, tiling: Tiling | None = None,
    on_tiles: TileCallback | None = None, limits: Limits | None = None,
) -> float:
    """The multiple of its level at which `denoise` best cleans an 8-bit upload whose noise is not what the model
    was trained on, a JPEG's or a grey image's (editing.noise.bootstrap_scale on `noise.bootstrap_squares` of it):
    `upload` (1, 3, H, W) at its own size, `sigma` its noise's std or curve (a JPEG's before its compression,
    `noise.through_jpeg`), `compression` a JPEG's (tables, subsampling), None for a lossless file. The other
    arguments as `denoise`'s, with which the bootstrap denoises; its noise is drawn from `seed`."""
    curve = sigma if isinstance(sigma, NoiseCurve) else NoiseCurve.constant(sigma)
    grey = is_grey(upload) if grey is None else grey
    squares, _ = bootstrap_squares(upload)

    def save(images: torch.Tensor) -> torch.Tensor:  # as the file holds it
        if compression is None:
            return from_uint8(to_uint8(images.detach().float().cpu())).to(images)
        return jpeg_roundtrip(images, *compression).to(images)

    def run(images: torch.Tensor, multiple: float) -> torch.Tensor:  # squares under the model's tile: reflected
        h, w = images.shape[-2:]
        r = model.param.resolution
        out, _ = denoise(model, pad_to(images, r, r), sigma=curve.scaled(multiple), refine_steps=refine_steps,
                         seed=seed, label=label, grey=grey, tiling=tiling, on_tiles=on_tiles, limits=limits)
        return out[..., :h, :w]

    return bootstrap_scale(run, squares, curve, save, torch.Generator().manual_seed(seed), grey=grey)


def denoise_scale_passes(height: int, width: int, evaluations: int) -> list[Pass]:
    """What `denoise_scale` runs on an upload of height x width (at most): per square, a first denoise and one
    per scale, each of `evaluations`."""
    squares, side = bootstrap_squares(torch.empty(1, 0, height, width))
    return [Pass(side, side, evaluations)] * (len(squares) * (1 + len(BOOTSTRAP_SCALES)))


def heun_baseline(
    model: Denoiser, seeds: Sequence[int], *, steps: int = 18, label: int | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """The diffusion teacher's EDM Heun sampler (2 * steps - 1 evaluations), the quality reference."""
    seeds = check_seeds(seeds)
    p, device = model.param, device_of(model)
    sigmas = karras_sigmas(steps, p.sigma_min, p.sigma_max, p.rho).to(torch.float32)
    x = sigmas[0] * randn((len(seeds), 3, p.resolution, p.resolution), generators_for(seeds), device)
    return sample_heun(bind(model, class_labels(model, label, len(seeds))), x, sigmas, callback=callback)
