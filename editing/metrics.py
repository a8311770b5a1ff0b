"""Image-quality metrics for the benchmarks: PSNR, SSIM, data consistency ||A x - A y||, the sliced
Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018, "Progressive Growing of GANs", Sec. 5
and Appendix D), and precision and recall of a sample set (Kynkaanniemi et al. 2019).

Images are (B, 3, H, W) float tensors. PSNR and SSIM take a `value_range`, (-1, 1) by default (the engine's
convention); pass (0, 1) for images in [0, 1]. The SWD is invariant to the value range (its descriptors are
normalised per channel). Nothing here reads files or touches a global RNG: randomness comes from a
torch.Generator argument.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from editing.operators import Operator, measurement

Range = tuple[float, float]
ENGINE_RANGE: Range = (-1.0, 1.0)


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"need two (B, C, H, W) batches of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")


def psnr(x: torch.Tensor, y: torch.Tensor, value_range: Range = ENGINE_RANGE) -> torch.Tensor:
    """Per-image PSNR in dB, 10 log10(peak^2 / MSE) with peak = hi - lo of `value_range`; inf for equal images."""
    _check_pair(x, y)
    peak = value_range[1] - value_range[0]
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(1)
    return (10.0 * torch.log10(peak**2 / mse)).float()


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    coords = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    x: torch.Tensor, y: torch.Tensor, value_range: Range = ENGINE_RANGE, *, window: int = 11, sigma: float = 1.5,
) -> torch.Tensor:
    """Per-image mean SSIM (Wang et al. 2004, Eq. 13): 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
    'valid' filtering as in the authors' MATLAB code, averaged over positions and channels."""
    _check_pair(x, y)
    if min(x.shape[-2:]) < window:
        raise ValueError(f"images must be at least {window}x{window} for SSIM, got {tuple(x.shape[-2:])}")
    lo, hi = value_range
    x = (x.double() - lo) / (hi - lo)  # to [0, 1]: L = 1 below
    y = (y.double() - lo) / (hi - lo)
    c = x.shape[1]
    g = _gaussian_window(window, sigma, x.dtype, x.device)
    kernel = (g[:, None] * g[None, :]).expand(c, 1, window, window)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=c)

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(1).float()


def data_consistency(operator: Operator, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image ||A x - A y||_2 over the measured coefficients (CM paper, Algorithm 4 enforces A x = A y)."""
    _check_pair(x, y)
    x, y = x.to(torch.float32), y.to(torch.float32)
    return (measurement(operator, x) - measurement(operator, y)).flatten(1).norm(dim=1)


# --- Sliced Wasserstein distance (Karras et al. 2018, Appendix D) --------------------------------------------

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0  # the 5x5 Gaussian of Burt & Adelson's pyramid


def _blur5(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    c = x.shape[1]
    k = _BINOMIAL.to(x.device, x.dtype)
    kernel = (gain * k[:, None] * k[None, :]).expand(c, 1, 5, 5)
    # 'reflect' is scipy.ndimage's 'mirror', which the reference implementation uses.
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=c)


def _pyr_down(x: torch.Tensor) -> torch.Tensor:
    return _blur5(x)[..., ::2, ::2]


def _pyr_up(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    up = x.new_zeros(b, c, 2 * h, 2 * w)
    up[..., ::2, ::2] = x
    return _blur5(up, gain=4.0)


def laplacian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Burt-Adelson Laplacian pyramid, finest first; the last level is the coarsest Gaussian level itself."""
    gaussian = [images]
    for _ in range(levels - 1):
        gaussian.append(_pyr_down(gaussian[-1]))
    return [g - _pyr_up(g_next) for g, g_next in zip(gaussian, gaussian[1:])] + [gaussian[-1]]


def pyramid_levels(resolution: int, min_resolution: int = 8, nhood: int = 7) -> int:
    """Levels from `resolution` halving down to `min_resolution` (32 -> 32, 16, 8: three levels)."""
    if resolution < max(min_resolution, nhood):
        raise ValueError(f"images of {resolution} px are smaller than a {nhood}x{nhood} neighbourhood")
    levels, r = 1, resolution
    while r // 2 >= max(min_resolution, nhood) and r % 2 == 0:
        levels, r = levels + 1, r // 2
    return levels


def patch_descriptors(
    level: torch.Tensor, per_image: int, positions: torch.Generator, nhood: int = 7, chunk: int = 256,
) -> torch.Tensor:
    """`per_image` random nhood x nhood neighbourhoods of every image, (N, C, nhood * nhood) (Appendix D)."""
    b, c, h, w = level.shape
    if h < nhood or w < nhood:
        raise ValueError(f"level of {h}x{w} px is smaller than a {nhood}x{nhood} neighbourhood")
    places = (h - nhood + 1) * (w - nhood + 1)
    index = torch.randint(places, (b, per_image), generator=positions).to(level.device)
    out = []
    for start in range(0, b, chunk):
        cols = F.unfold(level[start:start + chunk], nhood)  # (b, c * nhood^2, places)
        idx = index[start:start + chunk, None, :].expand(-1, cols.shape[1], -1)
        out.append(cols.gather(2, idx).permute(0, 2, 1).reshape(-1, c, nhood * nhood))
    return torch.cat(out)


def normalize_descriptors(desc: torch.Tensor) -> torch.Tensor:
    """Per colour channel, zero mean and unit std over all descriptors and neighbourhood positions."""
    mean = desc.mean(dim=(0, 2), keepdim=True)
    std = desc.std(dim=(0, 2), keepdim=True, unbiased=False).clamp_min(1e-8)
    return ((desc - mean) / std).flatten(1)


def sliced_wasserstein(
    a: torch.Tensor, b: torch.Tensor, generator: torch.Generator, *, projections: int = 512, repeats: int = 4,
) -> float:
    """Mean over `projections` random unit directions of the 1-D Wasserstein-1 distance between the projected
    descriptor sets (Karras et al. 2018, Appendix D: 4 repeats of 128 directions); sets of equal size."""
    if a.shape != b.shape:
        raise ValueError(f"descriptor sets must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    per_repeat = projections // repeats
    total = 0.0
    for _ in range(repeats):
        dirs = torch.randn(a.shape[1], per_repeat, generator=generator).to(a.device, a.dtype)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        # Directions as rows: each row is one projection of every descriptor, sorted along the row.
        pa = sorted_rows((a @ dirs).t().contiguous())
        pb = sorted_rows((b @ dirs).t().contiguous())
        total += float((pa - pb).abs().mean())
    return total / repeats


def sorted_rows(x: torch.Tensor) -> torch.Tensor:
    """Each row of a 2-D tensor sorted ascending. On CPU through NumPy, whose vectorised (AVX-512) sort is ~20x
    torch.sort on these 32k-long rows and gives the same values; the SWD spends most of its time here."""
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        return torch.from_numpy(np.sort(x.numpy(), axis=1))
    return torch.sort(x, dim=1).values


def swd(
    a: torch.Tensor, b: torch.Tensor, generator: torch.Generator, *, per_image: int = 128, nhood: int = 7,
    min_resolution: int = 8, projections: int = 512,
) -> dict[str, float]:
    """Sliced Wasserstein distance between two image sets per Laplacian-pyramid level (Karras et al. 2018,
    Sec. 5): {"32": ..., "16": ..., "8": ..., "mean": ...} for 32 x 32 images, in raw units (the paper's
    tables show x 1e3). 7x7 neighbourhoods, `per_image` per image and level, per-level per-channel
    normalisation, `projections` directions drawn from `generator`.

    Both sets share the same random neighbourhood positions (one seed drawn from `generator` and reused:
    common random numbers, so swd(a, a) = 0 exactly); the larger set is subsampled to the smaller's size.
    The original stops at 16 px; for 32 px images we also use the 8 px level (2 x 2 neighbourhoods each).
    """
    if a.ndim != 4 or b.ndim != 4 or a.shape[1:] != b.shape[1:]:
        raise ValueError(f"need two (N, C, H, W) sets of the same image shape, got {tuple(a.shape)}, {tuple(b.shape)}")
    if a.shape[-1] != a.shape[-2]:
        raise ValueError(f"images must be square, got {tuple(a.shape[-2:])}")
    n = min(a.shape[0], b.shape[0])
    if n < 2:
        raise ValueError("each set needs at least 2 images")
    if a.shape[0] > n:
        a = a[torch.randperm(a.shape[0], generator=generator)[:n].to(a.device)]
    if b.shape[0] > n:
        b = b[torch.randperm(b.shape[0], generator=generator)[:n].to(b.device)]
    levels = pyramid_levels(a.shape[-1], min_resolution, nhood)
    pos_seed = int(torch.randint(2**62, (1,), generator=generator))
    pyr_a = laplacian_pyramid(a.double(), levels)
    pyr_b = laplacian_pyramid(b.double(), levels)
    out: dict[str, float] = {}
    for la, lb in zip(pyr_a, pyr_b):
        da = normalize_descriptors(patch_descriptors(la, per_image, torch.Generator().manual_seed(pos_seed), nhood))
        db = normalize_descriptors(patch_descriptors(lb, per_image, torch.Generator().manual_seed(pos_seed), nhood))
        out[str(la.shape[-1])] = sliced_wasserstein(da.float(), db.float(), generator, projections=projections)
    out["mean"] = sum(out.values()) / len(out)
    return out


# --- Precision and recall (Kynkaanniemi et al. 2019) ----------------------------------------------------------


def _knn_radii(points: torch.Tensor, k: int) -> torch.Tensor:
    """Each point's distance to its k-th nearest neighbour in the set, itself excluded (the paper's Eq. 2)."""
    return torch.cdist(points, points).kthvalue(k + 1, dim=1).values


def _covered(queries: torch.Tensor, points: torch.Tensor, radii: torch.Tensor) -> float:
    """The fraction of queries inside at least one ball B(points_i, radii_i) (the paper's f(phi, Phi))."""
    return float((torch.cdist(queries, points) <= radii[None, :]).any(dim=1).double().mean())


def precision_recall(real: torch.Tensor, fake: torch.Tensor, *, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019, Sec. 3), in pixel space.

    Each set's manifold is the union of balls around its points, each ball as wide as that point's distance
    to its k-th nearest neighbour in the set. Precision: the fraction of `fake` inside the real manifold (how
    many samples look like some real image: fidelity, a blend of two emoji falls outside). Recall: the
    fraction of `real` inside the fake manifold (how much of the data the samples cover). Pixels stand in for
    the paper's VGG-16 features, which would need weights from the network; the SWD measures the patch
    statistics, these two the whole images. Each set needs more than k images.
    """
    if real.ndim != 4 or fake.ndim != 4 or real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"need two (N, C, H, W) sets of the same image shape, got {tuple(real.shape)}, {tuple(fake.shape)}")
    if min(real.shape[0], fake.shape[0]) <= k:
        raise ValueError(f"each set needs more than k = {k} images, got {real.shape[0]} and {fake.shape[0]}")
    a, b = real.double().flatten(1), fake.double().flatten(1)
    return _covered(b, a, _knn_radii(a, k)), _covered(a, b, _knn_radii(b, k))


__all__ = [
    "ENGINE_RANGE",
    "data_consistency",
    "laplacian_pyramid",
    "precision_recall",
    "psnr",
    "pyramid_levels",
    "sliced_wasserstein",
    "sorted_rows",
    "ssim",
    "swd",
]
