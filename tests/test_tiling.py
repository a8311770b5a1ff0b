"""Tiling (editing.tiling) and every edit on images larger than the model: 100x70 and a 3000x17 strip on the
16 px tiny model. Measurements are recomputed from their definitions (pixels, BT.601 luma, block means)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from editing import tasks
from editing.images import area_resize, from_uint8, resize_mask, to_uint8
from editing.operators import Inpaint
from editing.limits import Limits, Pass, check_passes, check_request
from editing.precond import Denoiser
from editing.samplers import bind
from editing.schedules import Schedule
from editing.tiling import (Tiling, TileProgress, batches_per_call, count_tiles, phase_merge, phase_split,
                            reflect_index, subsampled, tile_generators, tiled, window)

SHORT = Schedule((0, 6, 12, 17), 18)  # 3 evaluations
EXACT = 1e-4


def photo(h: int = 70, w: int = 100, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.tanh(F.interpolate(torch.randn(1, 3, 6, 8, generator=g), size=(h, w), mode="bilinear"))


def luma(x: torch.Tensor) -> torch.Tensor:
    return 0.2989 * x[:, 0] + 0.5870 * x[:, 1] + 0.1140 * x[:, 2]


def test_window_is_a_partition_of_unity_inside() -> None:
    t = Tiling(16, 6)
    w = window(t)
    assert w.min() > 0 and w.max() == 1
    torch.testing.assert_close(w[:6] + w[-6:], torch.ones(6))  # a tile's right ramp + its neighbour's left


def test_reflect_index() -> None:
    assert reflect_index(4, -3, 10).tolist() == [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]
    assert reflect_index(1, -2, 3).tolist() == [0, 0, 0]


def test_identity_is_kept_exactly_through_the_blend() -> None:
    """Blending normalises by the sum of weights: a denoiser that returns its input gives the image back."""
    x = torch.randn(2, 3, 70, 100, generator=torch.Generator().manual_seed(0))
    out = tiled(lambda v, s: v, Tiling(16, 4, 7), tile_generators([0, 1]))(x, torch.ones(2))
    torch.testing.assert_close(out, x, atol=1e-6, rtol=0)


def test_one_tile_is_exactly_the_untiled_call(tiny_model: Denoiser) -> None:
    base = bind(tiny_model, torch.tensor([1]))
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    sigma = torch.full((3,), 2.0)
    assert torch.equal(tiled(base, Tiling(16, 4, 1), tile_generators([0, 1, 2]))(x, sigma), base(x, sigma))
    # And a whole task at the model's size is the untiled one.
    y = photo(16, 16)
    out = tasks.colorize(tiny_model, y, [0], schedule=SHORT, label=0)
    from editing.operators import Colorize
    from editing.samplers import generators_for
    from editing.solver import iterative_replacement
    ref = iterative_replacement(bind(tiny_model, torch.tensor([0])), y, Colorize(),
                                tasks.schedule_sigmas(tiny_model, SHORT), generators_for([0]), sigma_min=0.002)
    assert torch.equal(out, ref)


def test_grid_moves_between_calls() -> None:
    """A denoiser that returns each tile's mean leaves seams where the grid is; they move at the next call."""
    x = torch.randn(1, 3, 40, 60, generator=torch.Generator().manual_seed(2))

    def tile_mean(v: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return v.mean((2, 3), keepdim=True).expand_as(v)

    f = tiled(tile_mean, Tiling(16, 4), tile_generators([5]))
    first, second = f(x, torch.ones(1)), f(x, torch.ones(1))
    assert not torch.allclose(first, second)
    again = tiled(tile_mean, Tiling(16, 4), tile_generators([5]))
    assert torch.equal(again(x, torch.ones(1)), first)


def test_same_result_whatever_the_tile_batch_and_the_image_batch(tiny_model: Denoiser) -> None:
    y = photo(40, 50, seed=3)
    outs = [tasks.stroke_edit(tiny_model, y, [4, 5], schedule=SHORT, label=0, tiling=Tiling(16, 4, batch))
            for batch in (1, 5, 64)]
    for other in outs[1:]:
        assert (other - outs[0]).abs().max().item() < 1e-5
    alone = tasks.stroke_edit(tiny_model, y, [5], schedule=SHORT, label=0, tiling=Tiling(16, 4, 3))
    assert (alone[0] - outs[0][1]).abs().max().item() < 1e-5
    assert not torch.allclose(outs[0][0], outs[0][1], atol=1e-3)


def test_progress_per_tile_batch(tiny_model: Denoiser) -> None:
    seen: list[TileProgress] = []
    t = Tiling(16, 4, 5)
    tasks.denoise(tiny_model, photo(), sigma=0.2, label=0, tiling=t, on_tiles=seen.append)
    per_call = batches_per_call(1, 70, 100, t)
    assert per_call == -(-count_tiles(70, 100, t) // 5) and len(seen) == per_call
    assert [p.done for p in seen] == list(range(1, per_call + 1)) and sum(p.tiles for p in seen) == count_tiles(70, 100, t)
    seen.clear()  # an image of one tile reports its one call too
    tasks.denoise(tiny_model, photo(16, 16), sigma=0.2, label=0, tiling=t, on_tiles=seen.append)
    assert seen == [TileProgress(1, 1, 1)] and batches_per_call(1, 16, 16, t) == 1


def test_phase_sub_images_are_the_strided_pixels_and_merge_back() -> None:
    x = torch.randn(2, 3, 12, 18, generator=torch.Generator().manual_seed(6))
    for f in (1, 2, 3):
        parts = phase_split(x, f)
        assert parts.shape == (2 * f * f, 3, 12 // f, 18 // f)
        expected = torch.stack([x[i, :, p::f, q::f] for i in range(2) for p in range(f) for q in range(f)])
        assert torch.equal(parts, expected) and torch.equal(phase_merge(parts, f), x)


def test_subsampled_runs_the_denoiser_on_each_phase_at_its_image_s_sigma() -> None:
    """A denoiser that mixes neighbours (a 3x3 box blur, scaled by sigma): wrapped, it mixes pixels 2 apart, on
    x[..., p::2, q::2] as the test cuts them; an odd side is reflected to even and cropped back; identity stays
    identity."""
    def blur(v: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(v, (1, 1, 1, 1), mode="replicate"), 3, 1) * s.view(-1, 1, 1, 1)

    x = torch.randn(2, 3, 10, 14, generator=torch.Generator().manual_seed(7))
    sigma = torch.tensor([1.0, 2.0])
    out = subsampled(blur, 2)(x, sigma)
    for i in range(2):
        for p in (0, 1):
            for q in (0, 1):
                expected = blur(x[i : i + 1, :, p::2, q::2], sigma[i : i + 1])
                torch.testing.assert_close(out[i : i + 1, :, p::2, q::2], expected, atol=1e-6, rtol=0)
    odd = torch.randn(1, 3, 9, 13, generator=torch.Generator().manual_seed(8))
    assert torch.equal(subsampled(lambda v, s: v, 2)(odd, torch.ones(1)), odd)
    padded = F.pad(odd, (0, 1, 0, 1), mode="reflect")  # row 9 and column 13 mirror rows/columns 7 and 11
    torch.testing.assert_close(subsampled(blur, 2)(odd, torch.ones(1)),
                               subsampled(blur, 2)(padded, torch.ones(1))[..., :9, :13], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="factor"):
        subsampled(blur, 0)


def test_a_spread_denoise_is_the_phases_denoised_then_one_pass_over_the_whole(tiny_model: Denoiser) -> None:
    """tasks.denoise(spread=True) on a 32 px image of the 16 px model: its four 16 px phases denoised at the level
    (each one tile: the model itself), put back, then the whole image denoised at SPREAD_CLEANUP x the level, each
    step done here by hand; one evaluation more in its price and its progress."""
    x = photo(32, 32, seed=9) + 0.1 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(10))
    out, used = tasks.denoise(tiny_model, x, sigma=0.3, label=0, spread=True)
    merged = torch.empty_like(x)
    for p in (0, 1):
        for q in (0, 1):
            merged[..., p::2, q::2] = tasks.denoise(tiny_model, x[..., p::2, q::2].contiguous(), sigma=0.3, label=0)[0]
    expected, _ = tasks.denoise(tiny_model, merged, sigma=tasks.SPREAD_CLEANUP * 0.3, label=0, seed=0)
    assert used == 0.3
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    assert not torch.allclose(out, tasks.denoise(tiny_model, x, sigma=0.3, label=0)[0], atol=1e-3)
    seen: list[TileProgress] = []
    t = Tiling(16, 4, 64)
    tasks.denoise(tiny_model, photo(), sigma=0.2, label=0, tiling=t, on_tiles=seen.append, spread=True)
    ends = [i for i, p in enumerate(seen) if p.done == p.total]  # an evaluation's last tile batch
    assert len(ends) == 2 and [p.done for p in seen[: ends[0] + 1]] == list(range(1, ends[0] + 2))
    assert sum(p.tiles for p in seen[: ends[0] + 1]) == 4 * count_tiles(35, 50, t)  # the phases, 50x35 each
    assert sum(p.tiles for p in seen[ends[0] + 1 :]) == count_tiles(70, 100, t)
    check_request(Limits(70 * 100 * 2 / 1e6), "cpu", 1, 70, 100, 2)
    with pytest.raises(ValueError, match="too large|megapixel"):
        tasks.denoise(tiny_model, photo(), sigma=0.2, label=0, tiling=t, limits=Limits(70 * 100 * 1.5 / 1e6),
                      spread=True)
    tasks.denoise(tiny_model, photo(), sigma=0.2, label=0, tiling=t, limits=Limits(70 * 100 * 1.5 / 1e6))


def test_inpaint_keeps_every_unmasked_byte(tiny_model: Denoiser) -> None:
    """On a crop around the mask, pasted back: outside the mask the 8-bit output is the upload's bytes."""
    upload = to_uint8(photo(70, 100, seed=4))
    y = from_uint8(upload)
    mask = torch.zeros(1, 1, 70, 100, dtype=torch.bool)
    mask[..., 30:41, 60:75] = True
    rows, cols = tasks.mask_crop(mask, 16)
    assert (rows, cols) == (slice(14, 57), slice(44, 91))
    out = tasks.inpaint(tiny_model, y, mask, [0, 1], schedule=SHORT, label=0)
    assert out.shape == (2, 3, 70, 100)
    keep = ~mask[0, 0].numpy()
    for image in to_uint8(out):
        assert (image[keep] == upload[0][keep]).all()
        assert (image[~keep] != upload[0][~keep]).any()


def test_dilate_grows_a_mask_by_its_radius_in_chebyshev_distance() -> None:
    mask = torch.rand(1, 1, 30, 41, generator=torch.Generator().manual_seed(1)) < 0.02
    ys, xs = torch.nonzero(mask[0, 0], as_tuple=True)
    rows, cols = torch.arange(30)[:, None, None], torch.arange(41)[None, :, None]
    distance = torch.maximum((rows - ys).abs(), (cols - xs).abs()).min(-1).values  # to the nearest True pixel
    for radius in (0, 1, 4):
        assert torch.equal(tasks.dilate(mask, radius)[0, 0], distance <= radius)


def test_strokes_over_a_photo_change_only_their_region(tiny_model: Denoiser) -> None:
    """Strokes over a photo: Algorithm 4 with the inpainting operator keeps every pixel farther than the margin
    from the strokes exactly (8-bit bytes), the strokes change, and the edit fades into the photo across the
    margin. No strokes: the whole painting, as without the argument."""
    upload = to_uint8(photo(70, 100, seed=6))
    painting = from_uint8(upload)
    strokes = torch.zeros(1, 1, 70, 100, dtype=torch.bool)
    strokes[..., 30:36, 20:60] = True
    out = tasks.stroke_edit(tiny_model, painting, [0, 1], schedule=SHORT, label=0, strokes=strokes, margin=6)
    near = tasks.dilate(strokes, 6)[0, 0].numpy()
    for image in to_uint8(out):
        assert (image[~near] == upload[0][~near]).all()
        assert (image[strokes[0, 0].numpy()] != upload[0][strokes[0, 0].numpy()]).any()
    # the change fades: the mean change 1-2 px outside the strokes is larger than 5-6 px outside
    change = (out - painting).abs().mean((0, 1))
    inner, outer = tasks.dilate(strokes, 2) & ~strokes, tasks.dilate(strokes, 6) & ~tasks.dilate(strokes, 4)
    assert change[inner[0, 0]].mean() > 2 * change[outer[0, 0]].mean()
    whole = tasks.stroke_edit(tiny_model, painting, [0, 1], schedule=SHORT, label=0)
    assert torch.equal(whole, tasks.stroke_edit(tiny_model, painting, [0, 1], schedule=SHORT, label=0,
                                                strokes=torch.zeros_like(strokes)))
    assert (to_uint8(whole)[0][~near] != upload[0][~near]).any()
    with pytest.raises(ValueError, match="margin around the strokes must be 0 to 16"):
        tasks.stroke_edit(tiny_model, painting, [0], schedule=SHORT, label=0, strokes=strokes, margin=17)


def test_hole_reach_is_the_farthest_masked_pixel_from_a_known_one() -> None:
    mask = torch.zeros(1, 1, 300, 400, dtype=torch.bool)
    mask[..., 100:164, 50:250] = True  # 64 rows: 32 erosions empty it
    assert tasks.hole_reach(mask) == 32
    mask[..., 100:164, 0:50] = True  # touching the image's left border: the border is not known
    assert tasks.hole_reach(mask) == 32
    stroke = torch.zeros(1, 1, 3000, 4000, dtype=torch.bool)
    stroke[..., 1000:1006, 500:3500] = True  # thin on a copy of 16 px cells: not a hole at that scale
    assert tasks.hole_reach(stroke) == 0
    stroke[..., 1000:1400, 500:3500] = True  # 400 rows: 200, counted in whole cells
    assert 200 - 16 <= tasks.hole_reach(stroke) <= 200
    assert tasks.hole_reach(torch.ones(1, 1, 30, 50, dtype=torch.bool)) == 50


def test_inpaint_passes_price_what_inpaint_runs(tiny_model: Denoiser) -> None:
    """What the studio fits an upload by must be what `inpaint` runs: the engine's own check admits the request
    at exactly that cost and refuses it just below; a hole reaching far from known pixels runs at a reduced
    size, which costs less than its crop at full size."""
    y = photo(70, 100, seed=8)
    small, large = (torch.zeros(1, 1, 70, 100, dtype=torch.bool) for _ in range(2))
    small[..., 30:38, 40:52] = True  # reaches 4 <= 0.375 x 16
    large[..., 15:55, 20:80] = True  # reaches 20: solved at 0.3 of its size
    for mask, reduced in ((small, False), (large, True)):
        (run,) = tasks.inpaint_passes(mask, 16, SHORT.evaluations)
        rows, cols = tasks.mask_crop(mask, 16)
        assert ((run.height, run.width) != (rows.stop - rows.start, cols.stop - cols.start)) == reduced
        cost = 2 * run.megapixel_evaluations
        tasks.inpaint(tiny_model, y, mask, [0, 1], schedule=SHORT, label=0, limits=Limits(cost))
        with pytest.raises(ValueError, match="allowed per request"):
            tasks.inpaint(tiny_model, y, mask, [0, 1], schedule=SHORT, label=0,
                          limits=Limits(0.999 * cost))
        shrunk = resize_mask(mask, 35, 50)
        assert tasks.inpaint_passes(mask, 16, 3, (35, 50)) == tasks.inpaint_passes(shrunk, 16, 3)


def test_stroke_passes_price_what_stroke_edit_runs(tiny_model: Denoiser) -> None:
    """As for inpainting: strokes over a photo run at full size on the box around them, however wide they are
    (the painting gives them their colours), and the engine admits exactly that cost."""
    y = photo(70, 100, seed=10)
    strokes = torch.zeros(1, 1, 70, 100, dtype=torch.bool)
    strokes[..., 15:55, 20:80] = True  # a blob that inpainting would solve at a reduced scale
    (run,) = tasks.stroke_passes(strokes, 16, SHORT.evaluations)
    assert run.megapixel_evaluations > tasks.inpaint_passes(strokes, 16, SHORT.evaluations)[0].megapixel_evaluations
    cost = run.megapixel_evaluations
    tasks.stroke_edit(tiny_model, y, [0], schedule=SHORT, label=0, strokes=strokes, limits=Limits(cost))
    with pytest.raises(ValueError, match="allowed per request"):
        tasks.stroke_edit(tiny_model, y, [0], schedule=SHORT, label=0, strokes=strokes,
                          limits=Limits(0.999 * cost))
    assert tasks.stroke_passes(strokes, 16, 3, (35, 50)) == tasks.stroke_passes(resize_mask(strokes, 35, 50), 16, 3)


def test_a_large_hole_is_filled_from_a_reduced_scale(tiny_model: Denoiser) -> None:
    """The fill of a large hole is the bilinear upsampling of Algorithm 4 at the reduced size (tiles there see
    known pixels), projected onto A x = A y: every known 8-bit pixel is the upload's."""
    upload = to_uint8(photo(70, 100, seed=9))
    y = from_uint8(upload)
    mask = torch.zeros(1, 1, 70, 100, dtype=torch.bool)
    mask[..., 15:55, 20:80] = True
    out = tasks.inpaint(tiny_model, y, mask, [3], schedule=SHORT, label=0)
    rows, cols, reduced = tasks.inpaint_plan(mask, 16)
    assert reduced is not None and reduced[0] < rows.stop - rows.start
    low = tasks.edit(tiny_model, area_resize(y[..., rows, cols], *reduced),
                     Inpaint(resize_mask(mask[..., rows, cols], *reduced)), [3], schedule=SHORT, label=0)
    up = F.interpolate(low, size=(rows.stop - rows.start, cols.stop - cols.start), mode="bilinear")
    hole = mask[0, 0, rows, cols]
    assert torch.allclose(out[0][:, rows, cols][:, hole], up[0][:, hole].clamp(-1, 1), atol=1e-6)
    keep = ~mask[0, 0].numpy()
    assert (to_uint8(out)[0][keep] == upload[0][keep]).all()


def test_colorize_passes_follow_its_reduced_size() -> None:
    schedule = Schedule((0, 6, 12, 17), 18)
    assert tasks.colorize_passes(16, 300, 16, schedule) == [Pass(16, 300, 3)]  # short side R: one pass
    assert tasks.colorize_passes(45, 70, 16, schedule) == [Pass(16, 25, 3), Pass(45, 70, 1)]
    assert tasks.colorize_passes(45, 70, 16, schedule, refine=None) == [Pass(16, 25, 3)]
    assert tasks.chroma_size(700, 45, 16) == (249, 16)


def test_a_request_of_several_passes_is_priced_by_their_sum() -> None:
    passes = [Pass(100, 100, 2), Pass(200, 100, 1)]  # 0.02 + 0.02 megapixel-evaluations
    check_passes(Limits(0.08), "cpu", 2, passes)
    with pytest.raises(ValueError, match=r"\(100x100 x 2 \+ 100x200 x 1\) evaluation\(s\) x 3 output\(s\) is 0.1 "):
        check_passes(Limits(0.08), "cpu", 3, passes)
    with pytest.raises(ValueError, match="allowed per request on cpu"):
        check_passes(Limits(0.03), "cpu", 1, passes[:1] * 2)


@pytest.mark.parametrize("size", [(70, 100), (17, 3000)], ids=["100x70", "3000x17"])
def test_measured_part_kept_across_seams(tiny_model: Denoiser, size: tuple[int, int]) -> None:
    h, w = size
    y = photo(h, w, seed=5)
    out = tasks.colorize(tiny_model, y, [0], schedule=SHORT, label=1)
    assert out.shape == (1, 3, h, w) and (luma(out) - luma(y)).abs().max().item() <= EXACT
    assert (out - y).abs().max().item() > 0.05
    low = F.avg_pool2d(y[..., : h // 2 * 2, : w // 2 * 2], 2)
    sr = tasks.superresolve(tiny_model, low, 2, [0], schedule=SHORT, label=1)
    assert sr.shape == (1, 3, h // 2 * 2, w // 2 * 2)
    assert (F.avg_pool2d(sr, 2) - low).abs().max().item() <= EXACT
    noisy = y + 0.2 * torch.randn(y.shape, generator=torch.Generator().manual_seed(6))
    den, sigma = tasks.denoise(tiny_model, noisy, label=1)
    assert den.shape == y.shape and 0.1 < sigma < 0.3


def test_colorize_at_full_size_without_the_reduced_pass(tiny_model: Denoiser) -> None:
    y = photo(40, 64, seed=7)
    direct = tasks.colorize(tiny_model, y, [0], schedule=SHORT, label=0, chroma_side=40)
    reduced = tasks.colorize(tiny_model, y, [0], schedule=SHORT, label=0, refine=None)
    for out in (direct, reduced):
        assert (luma(out) - luma(y)).abs().max().item() <= EXACT
    assert not torch.allclose(direct, reduced)


def test_too_small_and_too_large_are_refused(tiny_model: Denoiser) -> None:
    with pytest.raises(ValueError, match="at least 16x16"):
        tasks.stroke_edit(tiny_model, photo(15, 100), [0], label=0)
    with pytest.raises(ValueError, match=r"70 \(0.01 megapixels\) x 3 evaluation\(s\) x 2 output\(s\).*limit is"):
        tasks.stroke_edit(tiny_model, photo(), [0, 1], schedule=SHORT, label=0, limits=Limits(0.03))
    check_request(Limits(0.03), "cpu", 1, 70, 100, 3)  # 0.021 fits
    with pytest.raises(ValueError, match="allowed per request on cpu"):
        check_request(None, "cpu", 1, 10_000, 10_000, 18)
