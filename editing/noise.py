"""Blind estimation of additive white Gaussian noise on images with flat colours, hard edges and 8-bit clipping.

The measure is Immerkær's (1996, "Fast noise variance estimation"): the 3x3 Laplacian-of-differences kernel
cancels locally linear content, and on noise of std s its response is N(0, 36 s^2). Edges do not cancel,
and on emoji (flat colours, hard outlines) they are a large share of the windows, so the response is read
only where the image is locally flat, chosen as in Tai & Yang (2008) and Liu, Tanaka & Okutomi (2013,
weak-texture patches) by a gradient test whose threshold comes from the noise itself:

- The Sobel pair's responses on noise are N(0, 12 s^2) each, uncorrelated with each other and with the
  Laplacian response (Sobel kernels are antisymmetric, the Laplacian symmetric), so on a flat window
  |G|^2 / (12 s^2) ~ chi^2 with 2 dof and selecting on it does not bias the Laplacian there. A window is
  kept when no pixel of its 3x3 neighbourhood has |G|^2 above the chi^2 quantile FLAT_QUANTILE at the
  current estimate (the neighbourhood also catches thin lines and dots, to which a centred Sobel is blind).
  Starting from the all-window estimate (an overestimate), a few rounds shrink it to the flat windows'.
- Clipped pixels carry no noise information (8-bit uploads clip at 0 and 255). Windows whose local 5x5
  mean lies within CLIP_MARGIN estimates of a bound are left out. That selection is unbiased: the box
  filter is orthogonal to the zero-sum Laplacian kernel, so on noise the two are uncorrelated. Leaving out
  instead the windows that happen to touch a clipped pixel keeps those whose noise pointed away from the
  bound, a low bias that grows with sigma; it is used only for the first estimate and as a fallback.
- 8-bit rounding adds uniform noise of variance (1 level)^2 / 12, removed in quadrature on images whose
  values all lie on the 8-bit grid.

The std is read robustly as median |response| / (6 * 0.6745) (a normal's median absolute value).

An image over SAMPLE_PIXELS is read on a sample of it, SAMPLE_GRID x SAMPLE_GRID squares of at most SAMPLE_SIDE
centred on a grid over it, stacked as channels: every step treats a channel as its own plane and pools the planes
of an image, so that is the same statistic on the sample, at a bounded cost (the cost is linear in the pixels).

A JPEG quantizes away most of the noise's finest grain, which is what the Laplacian reads, so on a JPEG the
estimate reads low. `jpeg_noise_sigma` reads it through the file's own compression: noise of a trial std on flat
grey (flat windows are what the estimator reads), saved with the file's quantization tables and chroma subsampling
and read back by the same estimator, gives the read-out for that std; the std whose read-out matches is the
estimate before compression.

A grey image (its three channels equal) carries its noise along the grey direction (1, 1, 1) / sqrt(3) only, where
the std is sqrt(3) x the noise's per channel; independent noise has there the std it has per channel. So a denoiser
trained on independent channels is handed sqrt(3) x the estimate (`denoiser_sigma`).

A denoiser trained on white noise is best handed more than a JPEG's noise level (its std before compression): 4:2:0
chroma subsampling averages the chroma noise away and leaves the rest mostly grey, larger along the grey direction
(as on a grey image), and how much more depends on the tables, the level and the content. So `bootstrap_scale`
measures it, a parametric bootstrap (Efron 1979): noise of the estimated std is added to a first denoise of squares
of the upload, put through the file's own compression (`jpeg_roundtrip`) and denoised at a few multiples of the
level; the multiple that best recovers the first denoise is used. The same serves a grey image, which the models
denoise best above sqrt(3) x its level too.

A camera's noise is not white: in linear light its variance grows with the signal (photon shot noise beside the
read noise, a Poisson-Gaussian model, Foi et al. 2008), and the tone curve then makes it largest in the shadows of
an sRGB file. `estimate_noise_curve` reads the std against the local mean (a noise level function, Liu et al. 2008):
the same flat windows, binned by their 5x5 mean into CURVE_BINS bins of equal counts, each read as above.
`Stabilizer` maps such noise to one std everywhere, f(v) = -1 + 2 F(v) / F(1) with F' = 1 / sigma(v) (variance
stabilization for a known noise level function, as the Anscombe transform is for Poisson noise; Makitalo and Foi
2013), so a denoiser trained on white noise runs once at that std, and its result is mapped back by f^-1.

An image downscaled by area averaging carries its noise averaged down, and correlated between neighbours where a
source pixel is shared by two outputs, which the Laplacian then reads low. So the estimate is read at the upload's
own size and carried through the downscale by `area_resize_std`, the exact std of white noise after it.

Noise spread over neighbouring pixels, a camera's after demosaicing (each pixel's two missing colours interpolated
from its neighbours' samples), largely cancels in the Laplacian, which then reads it as a fraction of its level (a
tenth after bilinear demosaicing). On the image's 2x2 means such noise is nearly white, and a photo's chroma is
smooth where its detail is not (its texture is mostly in the luma), so `estimate_spread_sigma` reads the noise on the
2x2 means' two chroma directions (orthonormal, where independent noise per channel keeps its std), x 2. Where the
per-pixel reading is under SPREAD_SHARE of that, the noise is spread and is denoised at the chroma reading.

`read_noise` puts these together for one upload at its own size (its curve, read through its compression, whether it
is grey, and the sentences that say so): the one reading the studio and the CLI share.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from editing.images import area_weights, from_uint8, linear_to_srgb, srgb_to_linear, to_uint8

LEVEL = 2.0 / 255.0  # one 8-bit level on the [-1, 1] scale
SATURATED = 0.5 * LEVEL  # within half a level of -1 or 1: clipped
NORMAL_QUARTILE = NormalDist().inv_cdf(0.75)  # median |z| of a standard normal, 0.6745
FLAT_QUANTILE = 0.9999  # chi^2_2 quantile of the flatness test: a flat window fails it 0.01% of the time
CLIP_MARGIN = 1.5  # local means within this many sigmas of -1 or 1 are biased by clipping
ROUNDS = 4  # re-selections of the flat windows, each at the previous estimate
MIN_WINDOWS = 64  # fewer flat windows than this: fall back to the wider selection
LAPLACIAN = ((1.0, -2.0, 1.0), (-2.0, 4.0, -2.0), (1.0, -2.0, 1.0))  # Immerkaer's kernel: N(0, 36 s^2) on noise
SOBEL = ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0))  # N(0, 12 s^2) on noise; its transpose too
SAMPLE_GRID, SAMPLE_SIDE = 16, 64  # a large image is read on 16 x 16 squares of 64 px spread over it
SAMPLE_PIXELS = 2 * SAMPLE_GRID**2 * SAMPLE_SIDE**2  # above this many pixels (2.1 M), read on the sample
SPREAD_SHARE = 0.5  # the per-pixel reading under this share of the 2x2 chroma reading: noise spread over neighbours
SPREAD_MIN = LEVEL  # ... where that reading is over one 8-bit level (clean photos read under a quarter of one)
CHROMA = ((1.0 / math.sqrt(2.0), 0.0, -1.0 / math.sqrt(2.0)),
          (1.0 / math.sqrt(6.0), -2.0 / math.sqrt(6.0), 1.0 / math.sqrt(6.0)))  # two orthonormal opponent directions
JPEG_TRIAL_SIDE = 128  # the flat grey square the trial noise is compressed on
BOOTSTRAP_SCALES = (1.0, 1.15, 1.3, 1.5, 1.75, 2.0)  # multiples of the level the bootstrap tries
BOOTSTRAP_GRID, BOOTSTRAP_SIDE = 6, 64  # it runs on 6 x 6 squares of 64 px spread over the upload (a tile each)
JPEG_BLOCK = 16  # a JPEG's largest coding unit (4:2:0): the squares start on its grid, so they compress as the file did
CURVE_BINS = 8  # brightness bins of the noise level function, of equal counts of flat windows
# Flat windows per bin, at least: a bin's std is then read within about 4% (a median of |responses|, whose
# neighbouring windows share pixels), so white noise's bins stay well inside CURVE_VARIES of each other.
CURVE_MIN_WINDOWS = 4096
CURVE_MIN_BINS = 3  # fewer bins than this filled: the image is read as one level
# A curve whose largest std is under this multiple of its smallest is read as one level: white noise's bins read
# within 1.2x of each other on a lossless file, within 1.6x through a JPEG's quantization (held-out photo crops at
# quality 90), where a camera's curve also reads flatter (benchmarks, section camera_noise).
CURVE_VARIES = 1.2
JPEG_CURVE_VARIES = 1.6
CURVE_FLOOR = 1.0 / 8.0  # no bin's std below this share of the largest: a stabilizer stretches no value more than 8x
STABILIZER_POINTS = 4097  # the grid on [-1, 1] the stabilizer is tabulated on
INTERPOLATE_CHUNK = 1 << 20  # values a stabilizer maps at once (their temporaries: a few MiB each)
JPEG_TRIAL_SIGMAS = torch.logspace(math.log10(0.5 * LEVEL), math.log10(80 * LEVEL), 28, dtype=torch.float64)


def windows(images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Valid 3x3 correlation of every channel with `kernel`: (B, C, H - 2, W - 2)."""
    c = images.shape[1]
    return F.conv2d(images, kernel.to(images).view(1, 1, 3, 3).repeat(c, 1, 1, 1), groups=c)


def robust_sigma(response: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Per image, median |response| over `keep` / (6 * 0.6745): the noise std (Immerkaer's normalisation)."""
    return response.abs().masked_fill(~keep, float("nan")).flatten(1).nanmedian(1).values / (6.0 * NORMAL_QUARTILE)


def _fallback(keep: torch.Tensor, wider: torch.Tensor) -> torch.Tensor:
    """`keep` for images where it has MIN_WINDOWS windows, else `wider`."""
    enough = keep.flatten(1).sum(1) >= MIN_WINDOWS
    return torch.where(enough.view(-1, 1, 1, 1), keep, wider)


def sample_squares(images: torch.Tensor, side: int = SAMPLE_SIDE) -> torch.Tensor:
    """(B, C, H, W) images over 2 SAMPLE_GRID^2 side^2 pixels (SAMPLE_PIXELS) as (B, C * SAMPLE_GRID^2, s, s): squares
    of side s = `side` (less where a side of the image is short), one centred in each cell of a SAMPLE_GRID x
    SAMPLE_GRID grid, so none overlap; smaller images as they are."""
    h, w = images.shape[-2:]
    if h * w <= 2 * SAMPLE_GRID**2 * side**2:
        return images
    n, side = SAMPLE_GRID, min(side, h // SAMPLE_GRID, w // SAMPLE_GRID)
    tops = [int((i + 0.5) * h / n) - side // 2 for i in range(n)]
    lefts = [int((j + 0.5) * w / n) - side // 2 for j in range(n)]
    return torch.cat([images[..., t : t + side, left : left + side] for t in tops for left in lefts], dim=1)


def estimate_noise_sigma(images: torch.Tensor) -> torch.Tensor:
    """Per-image std of additive Gaussian noise on the [-1, 1] scale (Immerkaer 1996 on flat windows); an image
    over SAMPLE_PIXELS read on `sample_squares`."""
    if images.ndim != 4 or images.shape[-1] < 3 or images.shape[-2] < 3:
        raise ValueError(f"need (B, C, H>=3, W>=3) images, got {tuple(images.shape)}")
    images = sample_squares(images.to(torch.float32))
    laplacian, gradient2, local_mean = _window_statistics(images)
    # 1. A first, high estimate from the windows with no clipped pixel (an image with too few keeps them all).
    unclipped = _fallback(unclipped_windows(images), torch.ones_like(laplacian, dtype=torch.bool))
    sigma = robust_sigma(laplacian, unclipped)
    # 2. Re-select flat windows whose local mean is away from the bounds at the current estimate, re-estimate.
    for _ in range(ROUNDS):
        flat, inside = _flat_windows(gradient2, local_mean, sigma.view(-1, 1, 1, 1))
        keep = _fallback(flat & inside, _fallback(unclipped & flat, unclipped))
        sigma = robust_sigma(laplacian, keep)
    # 3. On 8-bit images (every value on the grid), remove the rounding's share, (1 level)^2 / 12.
    return (sigma**2 - _rounding_variance(images)).clamp_min(0.0).sqrt()


def unclipped_windows(images: torch.Tensor) -> torch.Tensor:
    """The 3x3 windows (B, C, H - 2, W - 2) with no pixel within half a level of -1 or 1: a clipped pixel carries
    no noise information."""
    clipped = ((images.abs() - 1.0).abs() <= SATURATED).to(torch.float32)
    return F.max_pool2d(clipped, 3, stride=1) == 0


def _window_statistics(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per 3x3 window: the Laplacian response, the squared Sobel gradient and the 5x5 local mean."""
    sobel = torch.tensor(SOBEL)
    local_mean = F.avg_pool2d(images, 5, stride=1, padding=2, count_include_pad=False)[..., 1:-1, 1:-1]
    return (windows(images, torch.tensor(LAPLACIAN)), windows(images, sobel) ** 2 + windows(images, sobel.T) ** 2,
            local_mean)


def _flat_windows(gradient2: torch.Tensor, local_mean: torch.Tensor,
                  sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The windows with no steep pixel in their 3x3 neighbourhood at noise std `sigma` (broadcast to the windows),
    and those whose local mean is CLIP_MARGIN stds inside the bounds."""
    chi2 = -2.0 * math.log(1.0 - FLAT_QUANTILE)  # chi^2_2 quantile
    steep = (gradient2 > chi2 * 12.0 * sigma**2).to(torch.float32)
    flat = F.max_pool2d(F.pad(steep, (1, 1, 1, 1)), 3, stride=1) == 0
    return flat, local_mean.abs() < 1.0 - CLIP_MARGIN * sigma


def _rounding_variance(images: torch.Tensor) -> torch.Tensor:
    """Per image, (1 level)^2 / 12 where every value lies on the 8-bit grid (8-bit rounding's variance), else 0."""
    levels = (images + 1.0) / LEVEL
    on_grid = ((levels - levels.round()).abs() < 1e-3).flatten(1).all(1)
    return torch.where(on_grid, LEVEL**2 / 12.0, 0.0)


@dataclass(frozen=True)
class NoiseCurve:
    """The noise's std against the local mean value, both on [-1, 1] (a noise level function): piecewise linear
    through (levels[i], sigmas[i]), levels rising, constant beyond the ends. One point: white noise of one std."""

    levels: tuple[float, ...]
    sigmas: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.levels or len(self.levels) != len(self.sigmas):
            raise ValueError(f"a noise curve needs as many levels as stds, at least one; got {len(self.levels)} "
                             f"and {len(self.sigmas)}")
        if any(b <= a for a, b in zip(self.levels, self.levels[1:])):
            raise ValueError(f"a noise curve's levels must rise, got {list(self.levels)}")
        if not all(math.isfinite(s) and s >= 0 for s in self.sigmas):
            raise ValueError(f"a noise curve's stds must be finite and >= 0, got {list(self.sigmas)}")

    @classmethod
    def constant(cls, sigma: float) -> NoiseCurve:
        return cls((0.0,), (float(sigma),))

    @property
    def is_constant(self) -> bool:
        return len(set(self.sigmas)) == 1

    @property
    def spread(self) -> float:
        """The largest std over the smallest (inf when the smallest is 0 and the largest is not; 1 for no noise)."""
        low, high = min(self.sigmas), max(self.sigmas)
        return 1.0 if high == 0 else (math.inf if low == 0 else high / low)

    def at(self, values: torch.Tensor) -> torch.Tensor:
        """The std at each of `values` (any shape), in their dtype."""
        levels = torch.tensor(self.levels, dtype=torch.float64, device=values.device)
        sigmas = torch.tensor(self.sigmas, dtype=torch.float64, device=values.device)
        return interpolate(values.to(torch.float64), levels, sigmas).to(values.dtype)

    def scaled(self, factor: float) -> NoiseCurve:
        return NoiseCurve(self.levels, tuple(factor * s for s in self.sigmas))

    def mapped(self, std: Callable[[float], float]) -> NoiseCurve:
        """Every std through `std` (a read-out to the level it stands for, as `jpeg_noise_sigma`)."""
        return NoiseCurve(self.levels, tuple(float(std(s)) for s in self.sigmas))


def describe_level(curve: NoiseCurve) -> str:
    """A curve for messages: its std ("0.0312"), or where it varies, from its darkest point to its brightest."""
    if curve.is_constant:
        return f"{curve.sigmas[0]:.4f}"
    return f"{curve.sigmas[0]:.4f} at the darkest values to {curve.sigmas[-1]:.4f} at the brightest"


def interpolate(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """numpy.interp in torch: piecewise linear through (xp, fp), xp rising, constant beyond the ends."""
    if len(xp) == 1:
        return fp.expand_as(x).clone()
    right = torch.searchsorted(xp, x.contiguous()).clamp(1, len(xp) - 1)
    x0, x1, f0, f1 = xp[right - 1], xp[right], fp[right - 1], fp[right]
    return f0 + ((x - x0) / (x1 - x0)).clamp(0.0, 1.0) * (f1 - f0)


def estimate_noise_curve(image: torch.Tensor, bins: int = CURVE_BINS) -> NoiseCurve:
    """The noise level function of one image (1, C, H, W) on [-1, 1]: its flat windows (selected as in
    `estimate_noise_sigma`, at the curve's std at their own local mean) binned by local mean into `bins` bins of
    equal counts (as many as CURVE_MIN_WINDOWS each allow, up to `bins`), each bin's std read robustly, 8-bit
    rounding removed; a grey image's channels are one. Where the flat windows fill fewer than CURVE_MIN_BINS bins,
    the one level `estimate_noise_sigma` reads."""
    return _curve_and_level(image, bins)[0]


def _curve_and_level(image: torch.Tensor, bins: int) -> tuple[NoiseCurve, float]:
    """`estimate_noise_curve` and the one level `estimate_noise_sigma` reads, which it starts from."""
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"need one (1, C, H, W) image, got {tuple(image.shape)}")
    sigma = float(estimate_noise_sigma(image)[0])
    if sigma == 0:
        return NoiseCurve.constant(0.0), sigma
    images = sample_squares((image[:, :1] if is_grey(image) else image).to(torch.float32))
    laplacian, gradient2, local_mean = _window_statistics(images)
    rounding = float(_rounding_variance(images)[0])
    curve = NoiseCurve.constant(math.sqrt(sigma**2 + rounding))
    for _ in range(ROUNDS):
        flat, inside = _flat_windows(gradient2, local_mean, curve.at(local_mean))
        keep = flat & inside
        means, responses = local_mean[keep], laplacian[keep].abs()
        filled = min(bins, len(means) // CURVE_MIN_WINDOWS)
        if filled < CURVE_MIN_BINS:
            return NoiseCurve.constant(sigma), sigma
        order = means.argsort()
        levels: list[float] = []
        stds: list[float] = []
        for part in order.tensor_split(filled):
            level = float(means[part].median())
            if not levels or level > levels[-1]:
                levels.append(level)
                stds.append(float(responses[part].median()) / (6.0 * NORMAL_QUARTILE))
        curve = NoiseCurve(tuple(levels), tuple(stds))
    return NoiseCurve(curve.levels, tuple(math.sqrt(max(s**2 - rounding, 0.0)) for s in curve.sigmas)), sigma


def estimate_spread_sigma(image: torch.Tensor) -> float:
    """The per-channel std of noise spread over neighbouring pixels (a camera's after demosaicing), of one RGB image
    (1, 3, H >= 6, W >= 6) on [-1, 1]: `estimate_noise_sigma` on the two chroma directions of its 2x2 means, x 2 (a
    mean of four halves white noise's std). A large image is read on `sample_squares` of twice the side, whose 2x2
    means are the squares `estimate_noise_sigma` would sample."""
    squares = sample_squares(image.to(torch.float32), 2 * SAMPLE_SIDE)
    side_h, side_w = squares.shape[-2] // 2 * 2, squares.shape[-1] // 2 * 2
    rgb = squares[..., :side_h, :side_w].reshape(-1, 3, side_h, side_w)  # each square's three channels
    chroma = torch.einsum("oc,bchw->bohw", torch.tensor(CHROMA, dtype=torch.float32), F.avg_pool2d(rgb, 2))
    return 2.0 * float(estimate_noise_sigma(chroma.reshape(1, -1, side_h // 2, side_w // 2))[0])


def estimate_noise(image: torch.Tensor, varies: float = CURVE_VARIES) -> NoiseCurve:
    """One image's noise (1, C, H, W): its noise level function where that varies with the value by `varies` or
    more (JPEG_CURVE_VARIES for a JPEG), else the one level `estimate_noise_sigma` reads (a constant curve)."""
    curve, sigma = _curve_and_level(image, CURVE_BINS)
    return curve if curve.spread >= varies else NoiseCurve.constant(sigma)


@dataclass(frozen=True)
class Stabilizer:
    """The variance-stabilizing map of a noise curve, tabulated on a uniform grid of [-1, 1]: f(v) = -1 + 2 F(v) /
    F(1), F(v) the integral from -1 to v of 1 / sigma(t). Noise of std sigma(v) becomes, to first order, noise of std
    `sigma` = 2 / F(1) (f'(v) sigma(v) is that everywhere), and [-1, 1] maps onto itself. `values` is f on the grid,
    `inverse_values` f^-1 on the same grid. A constant curve's map is the identity, with `sigma` its std."""

    values: torch.Tensor
    inverse_values: torch.Tensor
    sigma: float

    @classmethod
    def of(cls, curve: NoiseCurve) -> Stabilizer:
        if max(curve.sigmas) <= 0:
            raise ValueError("a noise curve with no noise has no stabilizer")
        grid = uniform_grid()
        sigmas = curve.at(grid).clamp_min(CURVE_FLOOR * max(curve.sigmas))
        steps = (1.0 / sigmas[1:] + 1.0 / sigmas[:-1]) * 0.5 * (grid[1] - grid[0])  # the trapezoid rule
        integral = torch.cat([torch.zeros(1, dtype=torch.float64), steps.cumsum(0)])
        total = float(integral[-1])
        values = -1.0 + 2.0 * integral / total
        values[-1] = 1.0
        return cls(values, interpolate(grid, values, grid), 2.0 / total)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return uniform_lookup(images, self.values)

    def inverse(self, images: torch.Tensor) -> torch.Tensor:
        return uniform_lookup(images, self.inverse_values)


def uniform_grid() -> torch.Tensor:
    """STABILIZER_POINTS values evenly over [-1, 1], float64."""
    return torch.linspace(-1.0, 1.0, STABILIZER_POINTS, dtype=torch.float64)


def uniform_lookup(images: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """`images` (clamped to [-1, 1]) through a function tabulated on `uniform_grid`, linearly between its points:
    an index, not a search, in chunks of INTERPOLATE_CHUNK values, in the images' dtype."""
    flat = images.reshape(-1)
    table = table.to(device=images.device, dtype=torch.float32 if images.dtype != torch.float64 else torch.float64)
    out = torch.empty_like(flat)
    scale = (len(table) - 1) / 2.0
    for start in range(0, len(flat), INTERPOLATE_CHUNK):
        position = (flat[start : start + INTERPOLATE_CHUNK].to(table.dtype).clamp(-1.0, 1.0) + 1.0) * scale
        index = position.floor().long().clamp(max=len(table) - 2)
        low = table[index]
        out[start : start + INTERPOLATE_CHUNK] = low + (position - index) * (table[index + 1] - low)
    return out.view(images.shape)


# A camera's noise, to try the curve on: variance a L + b in linear light L in [0, 1] (shot noise beside read noise,
# Foi et al. 2008), written through the sRGB curve. Its read noise: this share of the shot noise's variance at L = 1.
CAMERA_READ_SHARE = 0.1


def add_camera_noise(images: torch.Tensor, a: float, b: float, generator: torch.Generator) -> torch.Tensor:
    """Images on [-1, 1] as a camera whose noise in linear light has variance a L + b writes them (sRGB): larger
    in the shadows. One normal draw per value from `generator`."""
    linear = srgb_to_linear((images.double() + 1) / 2)
    normal = torch.randn(linear.shape, generator=generator, dtype=torch.float64).to(linear.device)
    return (linear_to_srgb(linear + (a * linear + b).sqrt() * normal) * 2 - 1).to(images.dtype)


def camera_curve(a: float, b: float, points: int = 65) -> NoiseCurve:
    """The noise curve of `add_camera_noise` on [-1, 1], to first order: the std in linear light times the sRGB
    curve's slope there (near black, where the noise clips at 0, the noise is smaller than this)."""
    values = torch.linspace(-1.0, 1.0, points, dtype=torch.float64)
    linear = srgb_to_linear((values + 1) / 2)
    slope = torch.where(linear <= 0.0031308, torch.full_like(linear, 12.92),
                        1.055 / 2.4 * linear.clamp_min(1e-6) ** (1 / 2.4 - 1))
    return NoiseCurve(tuple(values.tolist()), tuple((2 * (a * linear + b).sqrt() * slope).tolist()))


def camera_at_mid_grey(sigma: float, read_share: float = CAMERA_READ_SHARE) -> tuple[float, float]:
    """(a, b) of the camera whose noise has std `sigma` at mid grey (0 on [-1, 1]), b = read_share x a."""
    unit = float(camera_curve(1.0, read_share).at(torch.zeros((), dtype=torch.float64)))
    a = (sigma / unit) ** 2
    return a, read_share * a


def jpeg_roundtrip(images: torch.Tensor, qtables: Mapping[int, Sequence[int]], subsampling: int) -> torch.Tensor:
    """(B, 3, H, W) images on [-1, 1] as 8-bit JPEGs with these quantization tables and chroma subsampling
    (`subsampling` -1: a greyscale JPEG of the first channel), decoded into three channels as an upload is."""
    decoded = []
    for array in to_uint8(images.detach().float().cpu()):
        buffer = io.BytesIO()
        image = Image.fromarray(array)
        if subsampling == -1:
            image.getchannel(0).save(buffer, "JPEG", qtables=dict(qtables))
        else:
            image.save(buffer, "JPEG", qtables=dict(qtables), subsampling=subsampling)
        decoded.append(np.array(Image.open(buffer).convert("RGB")))
    return from_uint8(np.stack(decoded)).to(images.device)


def read_through_jpeg(sigma: float, normal: torch.Tensor, qtables: Mapping[int, Sequence[int]],
                      subsampling: int) -> float:
    """The estimate of noise `sigma * normal` on flat mid-grey after 8-bit rounding and this JPEG compression."""
    return float(estimate_noise_sigma(jpeg_roundtrip((sigma * normal)[None], qtables, subsampling))[0])


def is_grey(images: torch.Tensor) -> bool:
    """Every image's three channels equal everywhere (a greyscale upload)."""
    return images.shape[1] == 3 and bool((images[:, :1] == images[:, 1:]).all())


def denoiser_sigma(sigma: float, grey: bool) -> float:
    """The level to hand a denoiser trained on independent channels for noise of std `sigma` per channel: on a grey
    image the noise lies along (1, 1, 1) / sqrt(3), with std sqrt(3) sigma there."""
    return math.sqrt(3.0) * sigma if grey else sigma


def area_resize_std(size: tuple[int, int], to: tuple[int, int]) -> float:
    """The std (rms over the output) of unit white noise after `editing.images.area_resize` from `size` to `to`,
    both (height, width): an output's variance is the sum of its squared area weights, and rows and columns
    factor."""
    mean_square = [float((area_weights(n, m)[1] ** 2).sum(1).mean()) for n, m in zip(size, to)]
    return math.sqrt(mean_square[0] * mean_square[1])


def jpeg_noise_sigma(observed: float, qtables: Mapping[int, Sequence[int]], subsampling: int,
                     generator: torch.Generator, *, grey: bool = False) -> float:
    """The noise std before a JPEG's compression whose estimate after it reads `observed` (both on [-1, 1]):
    the trial read-outs (one normal draw from `generator`, scaled) rise with the std, so a bisection over
    JPEG_TRIAL_SIGMAS and a linear step between two neighbours invert them. 0 (nothing read) stays 0. `grey`: the
    image is grey, so its noise is the same in the three channels, and so is the trial's (chroma subsampling leaves
    such noise whole, where it averages independent channels' noise down)."""
    if observed <= 0:
        return 0.0
    normal = torch.randn(3, JPEG_TRIAL_SIDE, JPEG_TRIAL_SIDE, generator=generator)
    if grey:
        normal = normal[:1].expand(3, -1, -1)
    sigmas = JPEG_TRIAL_SIGMAS.tolist()
    reads: dict[int, float] = {}

    def read(k: int) -> float:
        if k not in reads:
            reads[k] = read_through_jpeg(sigmas[k], normal, qtables, subsampling)
        return reads[k]

    if read(len(sigmas) - 1) <= observed:  # beyond the trials: the read-out is near proportional there
        return sigmas[-1] * observed / max(read(len(sigmas) - 1), 1e-12)
    lo, hi = -1, len(sigmas) - 1  # read(hi) > observed; read(lo) <= observed (lo = -1: the std 0, read 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if read(mid) <= observed else (lo, mid)
    low_sigma, low_read = (0.0, 0.0) if lo < 0 else (sigmas[lo], read(lo))
    return low_sigma + (sigmas[hi] - low_sigma) * (observed - low_read) / (read(hi) - low_read)


JpegCompression = tuple[Mapping[int, Sequence[int]], int]  # a JPEG's quantization tables and chroma subsampling

SET_THE_LEVEL = "set the noise level yourself (the studio's 'Set the noise level myself', the CLI's --sigma)"
GREY_NOTE = ("a grey image: its noise lies along the grey direction only, where it is sqrt(3) x its level per channel, "
             "so the model (trained on independent channels) is handed sqrt(3) x the level; the result is grey")


def through_jpeg(curve: NoiseCurve, compression: JpegCompression, *, grey: bool = False) -> NoiseCurve:
    """A curve read on a JPEG, read through its compression: at each point the std the noise had before it
    (`jpeg_noise_sigma`, its trial noise from a fixed seed, so that a file reads the same every time)."""
    return curve.mapped(lambda s: jpeg_noise_sigma(s, *compression, torch.Generator().manual_seed(0), grey=grey))


@dataclass(frozen=True)
class NoiseReading:
    """An upload's noise, read at its own size by `read_noise`. `read`: what the estimate reads in the pixels;
    `level`: the noise before the file's JPEG compression quantized its finest grain (`read` read through
    `compression`), or `read` itself where there was no compression to read through; `grey`: a greyscale image,
    whose noise lies along the grey direction."""

    read: NoiseCurve
    level: NoiseCurve
    compression: JpegCompression | None
    grey: bool
    doubt: str = ""  # why the level may be far off, where the image hardly lets its noise be read
    spread: bool = False  # spread over neighbouring pixels: `level` is `estimate_spread_sigma`'s, `read` per pixel

    @property
    def kind(self) -> str:
        return "a JPEG" if self.compression is not None else "a grey image" if self.grey else "an image"

    @property
    def averaged(self) -> bool:
        """A colour JPEG's noise, which its compression shaped unlike the white noise the models were trained on:
        denoised under more white noise, the mean of several draws (`tasks.averaged_over_added_noise`)."""
        return max(self.level.sigmas) > 0 and self.compression is not None and not self.grey

    @property
    def unlike_training(self) -> bool:
        """A grey image's noise (a grey JPEG's too), unlike the white noise the models were trained on: best
        denoised at a multiple of its level, which `tasks.denoise_scale` measures (`bootstrap_scale`)."""
        return max(self.level.sigmas) > 0 and self.grey

    def bootstrapped(self, draws: int) -> bool:
        """Whether its level is best taken at the bootstrap's multiple (`tasks.denoise_scale`): a grey image's noise,
        and a colour JPEG's denoised in fewer than two draws (`tasks.averaged_draws`)."""
        return self.unlike_training or (self.averaged and draws < 2)

    def notes(self) -> list[str]:
        """What was read, in sentences for the studio's notes and the CLI's messages."""
        if self.level.is_constant:
            notes = [f"estimated noise sigma = {describe_level(self.level)} (on the [-1, 1] scale)"]
        else:
            notes = [f"estimated noise: its level depends on the value, {describe_level(self.level)} (on the [-1, 1] "
                     "scale, as a camera's noise, larger in the shadows)"]
        if self.grey:
            notes.append(GREY_NOTE)
        if self.spread:
            notes.append(f"its noise is spread over neighbouring pixels (as a camera's after demosaicing, or noise "
                         f"resized with the image), which the estimate per pixel reads low ({describe_level(self.read)}); "
                         f"read on 2x2 blocks of its colours it is {describe_level(self.level)}, the level used; if "
                         f"grain is left or detail lost, {SET_THE_LEVEL}")
        if self.compression is not None:
            notes.append(f"a JPEG: its compression quantized the noise's finest grain, which is what the estimate "
                         f"reads ({describe_level(self.read)}); read through the file's own compression it is "
                         f"{describe_level(self.level)}")
        if self.doubt:
            notes.append(self.doubt)
        return notes

    def scale_note(self, scale: float) -> str:
        """The sentence for the multiple of its level that `tasks.denoise_scale` measured."""
        left = "what its compression left of the noise" if self.compression is not None else "its noise"
        saved = "compressed as the file was" if self.compression is not None else "saved as 8-bit"
        return (f"{self.kind}: {left} is best denoised at {scale:.2f} x its level, measured on squares of the image "
                f"re-noised and {saved}")


def read_noise(image: torch.Tensor, compression: JpegCompression | None = None, *,
               as_curve: bool = True) -> NoiseReading:
    """One upload's noise (1, C, H, W, at the file's own size): its curve where the level depends on the value
    (`estimate_noise`; `as_curve` False: one level), read through `compression`, the file's JPEG tables (None for a
    lossless file, or one no longer at its own size), where anything was read; a lossless colour image's noise spread
    over neighbouring pixels at `estimate_spread_sigma`'s level. An image under 3 px on a side has no 3x3 window to
    read: no noise, and a note that says so."""
    grey = is_grey(image)
    if min(image.shape[-2:]) < 3:
        none = NoiseCurve.constant(0.0)
        h, w = image.shape[-2:]
        return NoiseReading(none, none, None, grey, f"too small to read its noise ({w}x{h}; the estimate needs 3 px "
                            f"on a side): {SET_THE_LEVEL}")
    # Too few windows free of clipped pixels: the estimate falls back to windows whose noise clipping cut
    # (estimate_noise_sigma), which a black-and-white image's edges or dither dominate.
    doubt = "" if int(unclipped_windows(sample_squares(image)).sum()) >= MIN_WINDOWS else (
        "nearly every pixel is black or white (clipped), where noise cannot be read: the estimate may be far off; "
        f"if the result is too smooth or still grainy, {SET_THE_LEVEL}")
    if as_curve:
        read = estimate_noise(image, CURVE_VARIES if compression is None else JPEG_CURVE_VARIES)
    else:
        read = NoiseCurve.constant(float(estimate_noise_sigma(image).mean()))
    if compression is None and not grey and min(image.shape[-2:]) >= 6:
        spread = estimate_spread_sigma(image)
        if spread > SPREAD_MIN and max(read.sigmas) < SPREAD_SHARE * spread:
            return NoiseReading(read, NoiseCurve.constant(spread), None, grey, doubt, spread=True)
    if compression is None or max(read.sigmas) <= 0:
        return NoiseReading(read, read, None, grey, doubt)
    return NoiseReading(read, through_jpeg(read, compression, grey=grey), compression, grey, doubt)


def bootstrap_squares(images: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(B, C, H, W) images as (B * n, C, s, s) squares of side s = BOOTSTRAP_SIDE (less, a multiple of JPEG_BLOCK,
    where a side is short), one in each cell of an up to BOOTSTRAP_GRID x BOOTSTRAP_GRID grid, starting on the
    JPEG_BLOCK grid; and s. An image under JPEG_BLOCK on a side gives none (s = 0)."""
    h, w = images.shape[-2:]
    side = min(BOOTSTRAP_SIDE, h - h % JPEG_BLOCK, w - w % JPEG_BLOCK)
    if side <= 0:
        return images[:0], 0

    def starts(length: int) -> list[int]:
        n = min(BOOTSTRAP_GRID, length // side)
        return [min(int((i + 0.5) * length / n - side / 2), length - side) // JPEG_BLOCK * JPEG_BLOCK for i in range(n)]

    squares = [images[..., t : t + side, left : left + side] for t in starts(h) for left in starts(w)]
    return torch.cat(squares), side


def bootstrap_scale(denoise: Callable[[torch.Tensor, float], torch.Tensor], squares: torch.Tensor, noise: NoiseCurve,
                    degrade: Callable[[torch.Tensor], torch.Tensor], generator: torch.Generator, *,
                    grey: bool = False, scales: Sequence[float] = BOOTSTRAP_SCALES) -> float:
    """The multiple of the `noise` curve at which `denoise(x, multiple)` best removes that noise after it went
    through `degrade` (the upload's 8-bit file, its compression): a parametric bootstrap. The first denoise of
    `squares` (noisy, at 1 x) stands in for the clean image; noise of the curve's std at each of its values (one
    draw from `generator`, the same in the three channels when `grey`) is added to it, degraded, and denoised at
    each of `scales`; the squared error to the first denoise is least at the multiple returned, refined between the
    best scale's neighbours by a parabola in log scale."""
    if not scales or any(b <= a for a, b in zip(scales, scales[1:])):
        raise ValueError(f"scales must rise, got {list(scales)}")
    if max(noise.sigmas) <= 0 or len(squares) == 0:
        return 1.0
    reference = denoise(squares, 1.0).float()
    normal = torch.randn(reference.shape, generator=generator, dtype=torch.float32)
    if grey:
        normal = normal[:, :1].expand_as(normal)
    noisy = degrade(reference + noise.at(reference) * normal.to(reference.device))
    errors = [float((denoise(noisy, s).float() - reference).square().mean()) for s in scales]
    k = min(range(len(scales)), key=errors.__getitem__)
    if k in (0, len(scales) - 1):
        return float(scales[k])
    x = np.log(scales[k - 1 : k + 2])
    a, b, _ = np.polyfit(x, errors[k - 1 : k + 2], 2)
    vertex = -b / (2 * a) if a > 0 else x[1]  # through three points with the middle lowest, a > 0
    return float(np.exp(np.clip(vertex, x[0], x[2])))
