"""A model of resolution R on images of any size: overlapping R x R tiles, blended with smooth weights.

`tiled(denoise, tiling, generators)` wraps any `denoise(x, sigma) -> x0` (the samplers' contract) and
returns another one, so the one solver (Algorithm 4) runs unchanged on a whole image: the operator's
replacement step acts on the whole blended x0, and what the user's image determines is kept exactly
across tile borders. The blend is MultiDiffusion's (Bar-Tal et al. 2023, Eq. 5: the per-pixel weighted
mean of the tiles' predictions); the grid moves by a random shift at every evaluation, so no seam stays in
one place across a multistep edit. Beyond the image's borders tiles see its reflection.

`subsampled(denoise, factor)` wraps a denoiser the same way, running it on each image's phase sub-images
(pixel-shuffle downsampling), for noise spread over neighbouring pixels.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from editing.samplers import Denoise

TILE_STREAM = "tiling"  # name of the per-image random stream for the grid shifts (see stream_seed)


@dataclass(frozen=True)
class Tiling:
    """Tile side (the model's resolution), overlap between neighbours and tiles per network call."""

    tile: int
    overlap: int
    batch: int = 64

    def __post_init__(self) -> None:
        if self.tile < 1:
            raise ValueError(f"tile size must be positive, got {self.tile}")
        if not 0 <= self.overlap < self.tile:
            raise ValueError(f"tile overlap must be in [0, {self.tile}), got {self.overlap}")
        if self.batch < 1:
            raise ValueError(f"tile batch size must be >= 1, got {self.batch}")

    @property
    def stride(self) -> int:
        return self.tile - self.overlap


TILE_BATCH = {"cpu": 64, "cuda": 512}  # tiles per network call: larger batches ran faster on both


def default_tiling(resolution: int, device: torch.device | str = "cpu") -> Tiling:
    """Tiles of the model's resolution overlapping by a quarter of it, batched for the device."""
    return Tiling(resolution, resolution // 4, TILE_BATCH.get(torch.device(device).type, TILE_BATCH["cpu"]))


@dataclass(frozen=True)
class TileProgress:
    """Reported after each batch of tiles (for progress bars: one network call each)."""

    done: int  # batches finished in this evaluation, 1-based
    total: int  # batches in this evaluation
    tiles: int  # tiles in the batch just finished


TileCallback = Callable[[TileProgress], None]


def stream_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for a named random stream of `seed`, so streams of different purposes never collide."""
    digest = hashlib.blake2b(f"{stream}:{int(seed)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def tile_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One generator per image for its grid shifts, on a stream of its own seed."""
    return [torch.Generator().manual_seed(stream_seed(s, TILE_STREAM)) for s in seeds]


def tiles_along(size: int, tiling: Tiling) -> int:
    """Tiles along a side of `size` pixels: enough to cover it at any shift in [0, stride), so the count is fixed."""
    if size <= tiling.tile:
        return 1
    return -(-(size + tiling.stride - 1 - tiling.tile) // tiling.stride) + 1


def count_tiles(height: int, width: int, tiling: Tiling) -> int:
    """Tiles per image and evaluation (1 when the image fits in one tile)."""
    return tiles_along(height, tiling) * tiles_along(width, tiling)


def batches_per_call(images: int, height: int, width: int, tiling: Tiling) -> int:
    """Network calls per evaluation of a batch of `images` (height x width each)."""
    if (height, width) == (tiling.tile, tiling.tile):
        return 1
    return -(-images * count_tiles(height, width, tiling) // tiling.batch)


def window(tiling: Tiling, device: torch.device | str = "cpu") -> torch.Tensor:
    """The (tile,) blending weights: raised-cosine ramps over the overlap, 1 between.

    Two neighbours' ramps are sin^2 and cos^2 of the same angle, so inside the image they sum to 1; the
    blend still divides by the sum of weights, which handles the borders and any overlap.
    """
    w = torch.ones(tiling.tile, dtype=torch.float32, device=device)
    o = tiling.overlap
    if o:
        ramp = torch.sin(0.5 * math.pi * (torch.arange(o, dtype=torch.float32, device=device) + 0.5) / o) ** 2
        w[:o] = ramp
        w[-o:] = torch.minimum(w[-o:], ramp.flip(0))
    return w


def reflect_index(size: int, start: int, length: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Indices start, ..., start + length - 1 into a side of `size` pixels, reflected at its borders (any length)."""
    if size == 1:
        return torch.zeros(length, dtype=torch.long, device=device)
    period = 2 * (size - 1)
    i = (torch.arange(length, device=device) + start) % period
    return torch.where(i >= size, period - i, i)


def pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(..., H, W) reflected at its bottom and right borders up to at least height x width; crop the result
    back with [..., :H, :W] (for images smaller than the model's tiles)."""
    h, w = x.shape[-2:]
    rows = reflect_index(h, 0, max(h, height), x.device)
    cols = reflect_index(w, 0, max(w, width), x.device)
    return x[..., rows, :][..., cols]


def padded_run(run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, least: int,
               factor: int = 1) -> torch.Tensor:
    """`run` on x reflected up to least x least where it is smaller (one tile), cropped back to factor x its size
    (`factor` > 1: `run` upscales by it)."""
    h, w = x.shape[-2:]
    return run(pad_to(x, least, least))[..., : h * factor, : w * factor]


def tiled(
    denoise: Denoise, tiling: Tiling, generators: Sequence[torch.Generator], *,
    progress: TileCallback | None = None,
) -> Denoise:
    """`denoise` on images of any size, one R x R tile at a time; exactly `denoise` on R x R images.

    `denoise` must take any batch of tiles (class labels bound as one label, see samplers.bind).
    `generators` (one per image) draw each image's grid shift at every call, so an image's result depends
    on its own seed only, whatever the batch and the tile batch size.
    """
    r, s = tiling.tile, tiling.stride

    def run(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if (h, w) == (r, r):
            x0 = denoise(x, sigma)  # one tile: the untiled call itself
            if progress is not None:
                progress(TileProgress(1, 1, b))
            return x0
        if len(generators) != b:
            raise ValueError(f"need one generator per image: {len(generators)} generators for batch {b}")
        nh, nw = tiles_along(h, tiling), tiles_along(w, tiling)
        ch, cw = r + (nh - 1) * s, r + (nw - 1) * s  # the canvas the grid covers
        # 1. Each image's shift (a side that fits in one tile stays put), its canvas by reflection, its tiles.
        tiles, origins = [], []
        for i, g in enumerate(generators):
            dy, dx = (int(v) for v in torch.randint(0, s, (2,), generator=g))
            dy, dx = (dy if nh > 1 else 0), (dx if nw > 1 else 0)
            rows = reflect_index(h, -dy, ch, x.device)
            cols = reflect_index(w, -dx, cw, x.device)
            canvas = x[i][:, rows][:, :, cols]
            tiles.append(canvas.unfold(1, r, s).unfold(2, r, s).permute(1, 2, 0, 3, 4).reshape(nh * nw, c, r, r))
            origins.append((dy, dx))
        tiles_all = torch.cat(tiles)
        sigmas = sigma.to(x.device).repeat_interleave(nh * nw)
        # 2. The network, tile batch by tile batch.
        total = -(-len(tiles_all) // tiling.batch)
        outs = []
        for k in range(total):
            part = slice(k * tiling.batch, (k + 1) * tiling.batch)
            outs.append(denoise(tiles_all[part], sigmas[part]).to(torch.float32))
            if progress is not None:
                progress(TileProgress(k + 1, total, len(outs[-1])))
        x0_tiles = torch.cat(outs)
        # 3. Blend: weighted sum of the tiles' predictions over the sum of weights (MultiDiffusion, Eq. 5), crop.
        wt = window(tiling, x.device)
        weight = (wt[:, None] * wt[None, :]).reshape(1, r * r, 1).expand(1, r * r, nh * nw)
        norm = F.fold(weight, (ch, cw), r, stride=s)
        cols_in = (x0_tiles.view(b, nh * nw, c * r * r).transpose(1, 2)
                   * weight.repeat(1, c, 1))
        blended = F.fold(cols_in, (ch, cw), r, stride=s) / norm
        return torch.stack([blended[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(origins)])

    return run


def phase_split(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(B, C, H, W), H and W multiples of `factor` -> (B * factor^2, C, H / factor, W / factor): each image's phase
    sub-images x[..., p::factor, q::factor], image by image, p then q."""
    b, c, h, w = x.shape
    f = factor
    return x.reshape(b, c, h // f, f, w // f, f).permute(0, 3, 5, 1, 2, 4).reshape(b * f * f, c, h // f, w // f)


def phase_merge(parts: torch.Tensor, factor: int) -> torch.Tensor:
    """The inverse of `phase_split`: each image's factor^2 phase sub-images put back in their pixels."""
    n, c, h, w = parts.shape
    f = factor
    return parts.reshape(n // (f * f), f, f, c, h, w).permute(0, 3, 4, 1, 5, 2).reshape(n // (f * f), c, h * f, w * f)


def subsampled(denoise: Denoise, factor: int = 2) -> Denoise:
    """`denoise` on each image's factor x factor phase sub-images, put back (pixel-shuffle downsampling, Zhou et al.
    2020). Noise spread over neighbouring pixels, as a camera's after demosaicing, is nearly white across a
    sub-image, whose neighbours lie `factor` pixels apart: the noise `denoise` was trained on. `denoise` gets
    factor^2 images per image, in `phase_split`'s order (one generator each, where it is `tiled`); a side that is
    not a multiple of `factor` is reflected up to one and cropped back."""
    if factor < 1:
        raise ValueError(f"the sub-sampling factor must be >= 1, got {factor}")

    def run(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        padded = pad_to(x, -(-h // factor) * factor, -(-w // factor) * factor)
        x0 = denoise(phase_split(padded, factor), sigma.to(x.device).repeat_interleave(factor * factor))
        return phase_merge(x0, factor)[..., :h, :w]

    return run


__all__ = [
    "TileCallback", "TileProgress", "Tiling", "batches_per_call", "count_tiles", "default_tiling", "pad_to",
    "phase_merge", "phase_split", "reflect_index", "stream_seed", "subsampled", "tile_generators", "tiled",
    "tiles_along", "window",
]
