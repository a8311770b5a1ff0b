"""Metrics: closed forms for PSNR, SSIM's fixed point, data consistency after replacement, SWD's monotonicity."""

from __future__ import annotations

import math

import pytest
import torch

from editing.metrics import (data_consistency, laplacian_pyramid, precision_recall, psnr, pyramid_levels,
                             sliced_wasserstein, sorted_rows, ssim, swd)
from editing.operators import Colorize, Inpaint, SuperResolve, replace


def smooth_images(n: int, seed: int, size: int = 32) -> torch.Tensor:
    """Blobby images in [-1, 1] with structure at several scales (a stand-in for emoji)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g) * 2 - 1
    mid = torch.rand(n, 3, 8, 8, generator=g) * 2 - 1
    up = torch.nn.functional.interpolate
    x = 0.7 * up(coarse, size=size, mode="bicubic") + 0.3 * up(mid, size=size, mode="bilinear")
    return x.clamp(-1, 1)


def test_psnr_constant_offset_closed_form() -> None:
    x = smooth_images(3, 0)
    for d in (0.01, 0.1, 0.5):
        # MSE = d^2, peak 2 on [-1, 1]: PSNR = 20 log10(2 / d).
        torch.testing.assert_close(psnr(x + d, x), torch.full((3,), 20 * math.log10(2 / d)), rtol=0, atol=1e-4)
    # On [0, 1] the peak is 1.
    torch.testing.assert_close(psnr(x + 0.1, x, (0.0, 1.0)), torch.full((3,), 20.0), rtol=0, atol=1e-4)
    assert torch.isinf(psnr(x, x)).all()


def test_psnr_is_per_image() -> None:
    x = smooth_images(2, 1)
    y = x.clone()
    y[1] += 0.2
    out = psnr(y, x)
    assert math.isinf(float(out[0])) and abs(float(out[1]) - 20 * math.log10(10)) < 1e-4


def test_ssim_identity_and_noise() -> None:
    x = smooth_images(4, 2)
    torch.testing.assert_close(ssim(x, x), torch.ones(4))
    g = torch.Generator().manual_seed(0)
    previous = torch.ones(4)
    for level in (0.05, 0.2, 0.5):
        s = ssim(x + level * torch.randn(x.shape, generator=g), x)
        assert (s < previous).all(), (level, s, previous)
        previous = s
    # Range matters: the same images mapped to [0, 1] give the same SSIM when told so.
    torch.testing.assert_close(ssim((x + 0.1 + 1) / 2, (x + 1) / 2, (0.0, 1.0)), ssim(x + 0.1, x), atol=1e-5, rtol=0)


def test_ssim_rejects_small_images() -> None:
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


@pytest.mark.parametrize("operator", [
    Inpaint(torch.zeros(1, 1, 32, 32, dtype=torch.bool).index_fill_(2, torch.arange(8, 24), True)),
    Colorize(),
    SuperResolve(4),
])
def test_data_consistency_of_replaced_image_is_zero(operator) -> None:
    y, x = smooth_images(2, 3), smooth_images(2, 4)
    assert (data_consistency(operator, x, y) > 1.0).all()  # unrelated images disagree
    assert (data_consistency(operator, replace(operator, x, y), y) < 1e-5).all()


def test_laplacian_pyramid_levels_and_reconstruction() -> None:
    assert pyramid_levels(32) == 3 and pyramid_levels(64) == 4 and pyramid_levels(16) == 2
    x = smooth_images(2, 5).double()
    pyr = laplacian_pyramid(x, 3)
    assert [p.shape[-1] for p in pyr] == [32, 16, 8]
    # Collapsing the pyramid gives the image back exactly (it is a redundant, invertible representation).
    from editing.metrics import _pyr_up
    rebuilt = pyr[-1]
    for level in reversed(pyr[:-1]):
        rebuilt = level + _pyr_up(rebuilt)
    torch.testing.assert_close(rebuilt, x)


def test_swd_self_is_zero_and_grows_with_noise() -> None:
    x = smooth_images(48, 6)
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    self_distance = swd(x, x, gen())
    assert set(self_distance) == {"32", "16", "8", "mean"}
    assert self_distance["mean"] < 1e-6
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    means = [swd(x + level * noise, x, gen())["mean"] for level in (0.02, 0.1, 0.3, 1.0)]
    assert all(b > a for a, b in zip(means, means[1:])), means
    assert means[0] > 10 * self_distance["mean"] + 1e-4
    # Another draw of the same distribution sits well below heavy noise.
    other = swd(smooth_images(48, 7), x, gen())["mean"]
    assert other < means[-1]


def test_sliced_wasserstein_of_a_shuffled_shifted_set_is_the_mean_projected_shift() -> None:
    """W1 between a 1-D sample and a permuted copy shifted by c is |c| exactly, so over unit directions d the
    sliced distance of (a, a[perm] + v) is mean |d . v|; it needs every projection sorted."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4096, 12, generator=g)
    v = torch.randn(12, generator=g)
    b = a[torch.randperm(len(a), generator=g)] + v
    measured = sliced_wasserstein(a, b, torch.Generator().manual_seed(5), projections=64, repeats=2)
    dirs_g = torch.Generator().manual_seed(5)
    dirs = torch.cat([torch.randn(12, 32, generator=dirs_g) for _ in range(2)], dim=1)
    expected = float((v @ (dirs / dirs.norm(dim=0, keepdim=True))).abs().mean())
    assert measured == pytest.approx(expected, rel=1e-4)


def test_sorted_rows_matches_torch_sort() -> None:
    x = torch.randn(5, 3000, generator=torch.Generator().manual_seed(3))
    assert torch.equal(sorted_rows(x), torch.sort(x, dim=1).values)
    assert torch.equal(sorted_rows(x.double()), torch.sort(x.double(), dim=1).values)


def test_swd_subsamples_and_validates() -> None:
    x, y = smooth_images(10, 8), smooth_images(6, 9)
    out = swd(x, y, torch.Generator().manual_seed(0), per_image=16)
    assert out["mean"] > 0
    with pytest.raises(ValueError, match="same image shape"):
        swd(x, y[..., :16, :16], torch.Generator())
    with pytest.raises(ValueError, match="at least 2"):
        swd(x[:1], y, torch.Generator())


def constant_images(values: list[float]) -> torch.Tensor:
    """One flat 1x3x2x2 image per value: distances are |v - w| * sqrt(12), so balls can be worked out by hand."""
    return torch.tensor(values).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).contiguous()


def test_precision_recall_by_hand() -> None:
    # Real 0, 1, 2, 10: 1-NN radii 1, 1, 1, 8. Fake 0.5, 5, 30: radii 4.5, 4.5, 25.
    # Precision: 0.5 is within 1 of 0, 5 within 8 of 10, 30 in no real ball: 2/3.
    # Recall: 0, 1, 2 are within 4.5 of 0.5; 10 is 5 from 5 (> 4.5) but 20 from 30 (<= 25): 4/4.
    real, fake = constant_images([0, 1, 2, 10]), constant_images([0.5, 5, 30])
    precision, recall = precision_recall(real, fake, k=1)
    assert precision == pytest.approx(2 / 3) and recall == 1.0
    # Swapping the sets swaps the roles: real 0.5, 5, 30 (radii 4.5, 4.5, 25) cover 0, 1, 2 and 10 (from 30).
    assert precision_recall(fake, real, k=1) == pytest.approx((1.0, 2 / 3))


def test_precision_recall_of_a_set_with_itself_and_far_away() -> None:
    x = smooth_images(32, 3)
    assert precision_recall(x, x) == (1.0, 1.0)
    assert precision_recall(x, x + 100.0) == (0.0, 0.0)
    # Half the samples copies of real images, half far away: precision halves.
    half = torch.cat([x[:16], x[16:] + 100.0])
    assert precision_recall(x, half)[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="more than k"):
        precision_recall(x[:3], x, k=3)
