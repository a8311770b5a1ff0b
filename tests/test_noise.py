"""editing.noise.estimate_noise_sigma on synthetic 8-bit uploads: flat colours with hard edges, gradients, textures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from editing.images import from_uint8, to_uint8
from editing.noise import LAPLACIAN, estimate_noise_sigma, is_grey, robust_sigma, windows

SIGMAS_255 = (5, 10, 15, 25, 50)
RELATIVE_BOUND = 0.12  # per image, |estimate - sigma| / sigma, for sigma <= 25 levels
HIGH_NOISE_BOUND = 0.2  # at 50 levels, where a third of these test images' channels clip at 0 or 255


def flat_shapes(n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """Emoji-like: a white background, saturated and mid colours in rectangles and discs, black outlines."""
    out = torch.ones(n, 3, size, size)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    for b in range(n):
        for _ in range(6):
            colour = torch.randint(0, 3, (3,), generator=g).float() - 1.0  # -1, 0 or 1 per channel
            cy, cx, r = (torch.randint(4, size - 4, (2,), generator=g)).tolist() + [int(torch.randint(3, size // 3, (1,), generator=g))]
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
            ring = disc & ((yy - cy) ** 2 + (xx - cx) ** 2 > (r - 1) ** 2)
            out[b, :, disc] = colour.view(3, 1)
            out[b, :, ring] = -1.0  # a one-pixel black outline
        y0, x0 = torch.randint(0, size // 2, (2,), generator=g).tolist()
        out[b, :, y0 : y0 + size // 3, x0 : x0 + size // 4] = torch.rand(3, 1, 1, generator=g) * 1.6 - 0.8
    return out


def gradients(n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """Linear ramps in random directions between random colours (kept off the bounds)."""
    t = torch.linspace(-1, 1, size)
    out = []
    for _ in range(n):
        a, b = torch.rand(2, generator=g) * 2 - 1
        ramp = 0.5 * (a * t.view(1, -1) + b * t.view(-1, 1))
        out.append(ramp + 0.3 * (torch.rand(3, 1, 1, generator=g) - 0.5))
    return torch.stack(out)


def textures(n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """Natural-ish: smooth random fields (noise upsampled from 1/8 size) plus a weaker mid-scale layer."""
    coarse = F.interpolate(torch.randn(n, 3, size // 8, size // 8, generator=g), size=(size, size), mode="bicubic",
                           align_corners=False)
    mid = F.interpolate(torch.randn(n, 3, size // 4, size // 4, generator=g), size=(size, size), mode="bilinear",
                        align_corners=False)
    return (0.35 * coarse + 0.1 * mid).clamp(-0.95, 0.95)


def upload(clean: torch.Tensor, sigma: float, g: torch.Generator) -> torch.Tensor:
    """Noise added, clipped and rounded to 8 bits, as a user's noisy PNG."""
    return from_uint8(to_uint8(clean + sigma * torch.randn(clean.shape, generator=g)))


@pytest.mark.parametrize("kind", ["flat_shapes", "gradients", "textures"])
def test_estimate_within_bound_on_8_bit_uploads(kind: str) -> None:
    g = torch.Generator().manual_seed({"flat_shapes": 0, "gradients": 1, "textures": 2}[kind])
    clean = {"flat_shapes": flat_shapes, "gradients": gradients, "textures": textures}[kind](6, 64, g)
    for s255 in SIGMAS_255:
        sigma = s255 / 127.5
        est = estimate_noise_sigma(upload(clean, sigma, g))
        assert est.shape == (6,)
        bound = RELATIVE_BOUND if s255 <= 25 else HIGH_NOISE_BOUND
        assert ((est - sigma).abs() / sigma < bound).all(), (kind, s255, est * 127.5)


def test_edges_would_fool_an_all_window_estimate() -> None:
    """The bound above is not loose: the Laplacian median over all unclipped windows misses it on hard edges."""
    g = torch.Generator().manual_seed(0)
    clean = flat_shapes(6, 64, g)
    sigma = 5 / 127.5
    noisy = upload(clean, sigma, g)
    response = windows(noisy, torch.tensor(LAPLACIAN))
    naive = robust_sigma(response, torch.ones_like(response, dtype=torch.bool))
    assert ((naive - sigma).abs() / sigma > RELATIVE_BOUND).any()
    assert ((estimate_noise_sigma(noisy) - sigma).abs() / sigma < RELATIVE_BOUND).all()


def test_clean_flat_and_ramp_images_read_as_no_noise() -> None:
    g = torch.Generator().manual_seed(3)
    for clean in (flat_shapes(2, 32, g), gradients(2, 32, g)):
        assert estimate_noise_sigma(from_uint8(to_uint8(clean))).max() * 127.5 < 0.5
    assert estimate_noise_sigma(torch.ones(1, 3, 32, 32)).item() == 0.0  # all saturated: still defined


def test_float_noise_is_not_corrected_for_rounding_and_input_is_checked() -> None:
    noise = 0.01 * torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    assert ((estimate_noise_sigma(noise) - 0.01).abs() < 0.0005).all()
    with pytest.raises(ValueError):
        estimate_noise_sigma(torch.zeros(1, 3, 2, 2))


def test_benchmark_table_rows_and_the_baseline_it_beats(tmp_path) -> None:
    """benchmarks.noise on a tiny emoji-like set (no photo folder): one row per sigma and estimator."""
    from benchmarks.common import Dataset
    from benchmarks.noise import SIGMAS_255, noise_table

    g = torch.Generator().manual_seed(9)
    images = from_uint8(to_uint8(flat_shapes(8, 32, g)))
    data = Dataset(images, ["twemoji"] * 8, ["heldout"] * 8)
    table = noise_table(data, tmp_path / "no-photos", emoji_per_style=8, crops_per_photo=1)
    assert len(table.rows) == 2 * len(SIGMAS_255) and any("photo rows skipped" in n for n in table.notes)
    ours = [row for row in table.rows if row[2].startswith("editing.noise")]
    baseline = [row for row in table.rows if row[2].startswith("Immerkaer")]
    assert ours[0][4] < baseline[0][4]  # mean |error| at 5 levels: the flat test matters on hard edges


def test_benchmark_denoise_table(tiny_model) -> None:
    """benchmarks.noise.denoise_table on a tiny random model: a row per sigma and choice of sigma."""
    from benchmarks.common import Dataset
    from benchmarks.noise import denoise_table

    images = from_uint8(to_uint8(flat_shapes(2, 16, torch.Generator().manual_seed(11))))
    table = denoise_table(tiny_model, "", Dataset(images, ["twemoji"] * 2, ["heldout"] * 2), per_style=2)
    assert [row[1] for row in table.rows] == ["true", "estimated"] * 3
    assert table.rows[0][2] == pytest.approx(0.1)
    assert denoise_table(None, "no model", Dataset(images, ["twemoji"] * 2, ["heldout"] * 2), 2).notes == ["skipped: no model"]


def test_jpeg_uploads_hide_part_of_the_noise_from_the_estimate() -> None:
    """benchmarks.noise.upload: PNG is the 8-bit image itself; JPEG quantizes away the noise's finest grain, which is
    what the estimate reads (the finding the benchmark's JPEG rows measure)."""
    from benchmarks.noise import upload

    g = torch.Generator().manual_seed(12)
    noisy = 20 / 127.5 * torch.randn(2, 3, 96, 96, generator=g)
    assert torch.equal(upload(noisy), from_uint8(to_uint8(noisy)))
    jpeg = upload(noisy, 75)
    assert 0 < float((jpeg - upload(noisy)).abs().mean()) < 20 / 127.5  # lossy, and still this image
    png_estimate, jpeg_estimate = estimate_noise_sigma(upload(noisy)), estimate_noise_sigma(jpeg)
    assert torch.allclose(png_estimate * 127.5, torch.full((2,), 20.0), rtol=0.05)
    assert (jpeg_estimate < 0.8 * png_estimate).all()


def test_benchmark_tables_on_photos_as_png_and_jpeg(tmp_path) -> None:
    """The noise table's photo rows in every format, and the photo teacher's denoise at the true vs the estimate,
    as uploaded and downscaled by the studio's fit."""
    from benchmarks.noise import CROP, DOWNSCALED_FROM, JPEG_QUALITIES, SIGMAS_255, noise_table, photo_denoise_table
    from editing.models import load_model, resolve_runtime
    from editing.noise import area_resize_std
    from tests.conftest import make_tiny_folder
    from tests.test_benchmarks_photos import make_photos

    photos = make_photos(tmp_path / "photos", size=140)
    table = noise_table(None, photos, emoji_per_style=1, crops_per_photo=1)
    names = [row[0] for row in table.rows]
    # PNG: two estimators; JPEG: those and the estimate read through the file's compression
    assert len(table.rows) == 2 * len(SIGMAS_255) + 3 * len(SIGMAS_255) * len(JPEG_QUALITIES)
    through = [row for row in table.rows if row[2] == "editing.noise, read through the JPEG"]
    assert len(through) == len(SIGMAS_255) * len(JPEG_QUALITIES) and all("JPEG" in row[0] for row in through)
    assert sorted(set(names)) == ["2 crops of the held-out photos, 128 px"] + [
        f"2 crops of the held-out photos, 128 px, as JPEG q{q}" for q in sorted(JPEG_QUALITIES)]
    teacher = load_model(make_tiny_folder(tmp_path / "edm", classes=(), boundary="edm", tiled=True),
                         resolve_runtime("cpu"))
    denoised = photo_denoise_table(teacher, "", photos, crops_per_photo=1)
    assert [row[:3] for row in denoised.rows[:4]] == [["PNG", 10, "true"], ["PNG", 10, "estimated"],
                                                      ["PNG", 25, "true"], ["PNG", 25, "estimated"]]
    jpeg_choices = ("true", "estimated", "read through the JPEG",
                    "read through, x the bootstrap's multiple (the studio's, before the jpeg_noise table)")
    jpeg = denoised.rows[4:20]
    assert [row[:3] for row in jpeg] == [[f"JPEG q{q}", sigma, choice] for q in JPEG_QUALITIES for sigma in (10, 25)
                                         for choice in jpeg_choices]
    for k in range(0, len(jpeg), 4):  # the bootstrap's multiples are at least 1
        assert jpeg[k + 3][3] >= jpeg[k + 2][3] - 1e-6
    downscaled, grey = denoised.rows[20:32], denoised.rows[32:]
    engine = "greyscale PNG, along the grey direction (the engine)"
    before = "greyscale PNG, as independent channels (before)"
    assert [row[:3] for row in grey] == [
        row for sigma in (10, 25) for row in ([before, sigma, "true"], [engine, sigma, "true"],
                                               [engine, sigma, "estimated"],
                                               [engine, sigma, "estimated, x the bootstrap's multiple (the studio)"])]
    for k in (3, 7):  # the bootstrap's multiples are at least 1
        assert grey[k][3] >= grey[k - 1][3] - 1e-6
    assert [row[:2] for row in downscaled[::3]] == [
        [f"{upload}, downscaled {DOWNSCALED_FROM} -> {CROP} px", sigma]
        for upload in ("PNG", f"JPEG q{JPEG_QUALITIES[0]}") for sigma in (10, 25)]
    left = area_resize_std((DOWNSCALED_FROM,) * 2, (CROP,) * 2)
    for k in range(0, len(downscaled), 3):  # true x left; read after the downscale: low; carried: about true
        true, after, carried = (row[3] for row in downscaled[k : k + 3])
        assert true == pytest.approx(downscaled[k][1] * left) and after < 0.75 * true
        assert abs(carried - true) < 0.15 * true
    assert denoised.rows[0][3] == pytest.approx(10) and denoised.rows[8][3] == pytest.approx(25)
    assert all(0 < row[4] < 60 for row in denoised.rows)
    assert photo_denoise_table(None, "no teacher", photos, 1).notes == ["skipped: no teacher"]


def test_benchmark_large_photo_table(tmp_path) -> None:
    """The held-out photos over SAMPLE_PIXELS, read on every square and on the sample: both near the truth."""
    from benchmarks.noise import large_photo_table
    from tests.test_benchmarks_photos import make_photos

    table = large_photo_table(make_photos(tmp_path / "photos", size=1050))
    kinds = ["none", "Gaussian", "Gaussian", "signal-dependent"]
    assert [row[:3] for row in table.rows] == [[f"p{i}", 1050 * 2100 / 1e6, kind] for i in (1, 2) for kind in kinds]
    for row in table.rows:  # one sigma cannot follow signal-dependent noise: there, only the sample vs every square
        assert row[2] == "signal-dependent" or abs(row[4] - row[3]) < 0.1 * row[3] + 0.3, row
        assert abs(row[6] - row[4]) < 0.3, row
    assert [row[3] for row in table.rows[:3]] == pytest.approx([0, 5, 15])
    assert large_photo_table(tmp_path / "none").notes == [f"skipped: no {tmp_path / 'none'}"]


def test_a_jpeg_s_noise_read_through_its_own_compression() -> None:
    """editing.noise.jpeg_noise_sigma inverts what the file's compression does to the estimate: JPEG'd noise reads
    low, and read through the same tables it is the noise before compression again."""
    import io

    from PIL import Image, JpegImagePlugin

    from editing.noise import jpeg_noise_sigma

    g = torch.Generator().manual_seed(13)
    ramp = torch.linspace(-0.6, 0.6, 160).view(1, 1, 1, 160).expand(1, 3, 160, 160)
    for quality, sigma255 in ((90, 10), (90, 25), (75, 25)):
        noisy = to_uint8(ramp + sigma255 / 127.5 * torch.randn(1, 3, 160, 160, generator=g))[0]
        buffer = io.BytesIO()
        Image.fromarray(noisy).save(buffer, "JPEG", quality=quality)
        jpeg = Image.open(buffer)
        tables, subsampling = jpeg.quantization, JpegImagePlugin.get_sampling(jpeg)
        read = float(estimate_noise_sigma(from_uint8(np.array(jpeg.convert("RGB"))[None]))[0])
        assert read * 127.5 < 0.8 * sigma255
        through = jpeg_noise_sigma(read, tables, subsampling, torch.Generator().manual_seed(0))
        assert abs(through * 127.5 - sigma255) < 0.15 * sigma255, (quality, sigma255, read * 127.5, through * 127.5)
        assert through == jpeg_noise_sigma(read, tables, subsampling, torch.Generator().manual_seed(0))  # its draw
        assert jpeg_noise_sigma(read * 1.2, tables, subsampling, torch.Generator().manual_seed(0)) > through
    assert jpeg_noise_sigma(0.0, tables, subsampling, torch.Generator().manual_seed(0)) == 0.0


@pytest.mark.parametrize("size, to", [((256, 256), (128, 128)), ((192, 160), (128, 127)), ((300, 400), (283, 377))])
def test_area_resize_std_is_the_std_of_white_noise_after_it(size: tuple[int, int], to: tuple[int, int]) -> None:
    """editing.noise.area_resize_std against white noise pushed through editing.images.area_resize; at a whole
    factor it is 1 / the factor. The estimate read after a slight downscale is far below it (the reason the studio
    reads the noise at the upload's own size and carries it through)."""
    from editing.images import area_resize
    from editing.noise import area_resize_std

    noise = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(21))
    after = area_resize(noise, *to)
    assert abs(area_resize_std(size, to) - float(after.std())) < 0.01
    if size == (256, 256):
        assert area_resize_std(size, to) == 0.5
    if size == (300, 400):
        assert float(estimate_noise_sigma(0.05 * after)[0]) / 0.05 < 0.7 * area_resize_std(size, to)
    assert area_resize_std(size, size) == 1.0


def test_a_large_image_is_read_on_squares_spread_over_it() -> None:
    """Over SAMPLE_PIXELS the estimate reads SAMPLE_GRID^2 squares, disjoint and one in each cell of the grid,
    pooled as one image (the estimate is the estimator's on the squares), which reads the noise as the whole would."""
    from editing.noise import SAMPLE_GRID, SAMPLE_PIXELS, sample_squares

    h, w = 1536, 2048
    index = torch.arange(h * w, dtype=torch.float64).view(1, 1, h, w)
    squares = sample_squares(index)
    side = squares.shape[-1]
    assert squares.shape == (1, SAMPLE_GRID**2, side, side) and side * SAMPLE_GRID <= min(h, w)
    assert squares.unique().numel() == squares.numel()  # disjoint
    rows, cols = squares // w, squares % w
    cells = (rows // (h / SAMPLE_GRID)) * SAMPLE_GRID + cols // (w / SAMPLE_GRID)
    assert cells.flatten(2).amin(2).tolist() == cells.flatten(2).amax(2).tolist() == [list(range(SAMPLE_GRID**2))]
    small = torch.zeros(1, 3, 100, SAMPLE_PIXELS // 100)
    assert sample_squares(small) is small
    g = torch.Generator().manual_seed(22)
    clean = textures(1, 256, g)
    clean = F.interpolate(clean, size=(h, w), mode="bilinear", align_corners=False)
    noisy = upload(clean, 10 / 127.5, g)
    whole = float(estimate_noise_sigma(noisy)[0])
    assert whole == float(estimate_noise_sigma(sample_squares(noisy))[0])
    assert abs(whole * 127.5 - 10) < RELATIVE_BOUND * 10


def test_a_greyscale_jpeg_s_noise_read_through_its_one_channel() -> None:
    """A greyscale JPEG (no chroma: Pillow's subsampling -1) is read through its one table, its channel decoded into
    all three as an upload is."""
    import io

    from PIL import Image

    from editing.images import jpeg_compression, load_full
    from editing.noise import jpeg_noise_sigma

    g = np.random.default_rng(14)
    ramp = np.tile(np.linspace(40, 200, 200)[None, :], (200, 1))
    for sigma255 in (10, 25):
        buffer = io.BytesIO()
        Image.fromarray(np.clip(ramp + sigma255 * g.standard_normal(ramp.shape), 0, 255).round().astype(np.uint8),
                        "L").save(buffer, "JPEG", quality=75)
        tables, subsampling = jpeg_compression(buffer.getvalue())
        assert subsampling == -1 and len(tables) == 1
        read = float(estimate_noise_sigma(load_full(buffer.getvalue()).tensor)[0])
        through = jpeg_noise_sigma(read, tables, subsampling, torch.Generator().manual_seed(0))
        error, error_before = abs(through * 127.5 - sigma255), abs(read * 127.5 - sigma255)
        assert error < 0.15 * sigma255 and error < error_before, (read, through)


def test_a_grey_image_in_a_colour_jpeg_is_read_through_grey_trial_noise() -> None:
    """A grey image saved as a colour JPEG: its noise is the same in the three channels, which chroma subsampling
    leaves whole, so the trial noise must be grey too; independent trial noise, which 4:2:0 averages down, reads
    the compression as stronger and over-inverts by half."""
    import io

    from PIL import Image

    from editing.images import jpeg_compression, load_full
    from editing.noise import is_grey, jpeg_noise_sigma

    g = np.random.default_rng(15)
    ramp = np.tile(np.linspace(40, 200, 256)[None, :], (256, 1))
    for quality, sigma255 in ((90, 10), (75, 25)):
        grey = np.clip(ramp + sigma255 * g.standard_normal(ramp.shape), 0, 255).round().astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(np.stack([grey] * 3, -1)).save(buffer, "JPEG", quality=quality)
        tables, subsampling = jpeg_compression(buffer.getvalue())
        image = load_full(buffer.getvalue()).tensor
        assert subsampling == 2 and is_grey(image)
        read = float(estimate_noise_sigma(image)[0])
        through = jpeg_noise_sigma(read, tables, subsampling, torch.Generator().manual_seed(0), grey=True)
        as_colour = jpeg_noise_sigma(read, tables, subsampling, torch.Generator().manual_seed(0))
        assert abs(through * 127.5 - sigma255) < 0.1 * sigma255 and as_colour * 127.5 > 1.3 * sigma255


def test_bootstrap_scale_finds_the_level_a_degradation_leaves() -> None:
    """The bootstrap on a case with a closed form: a white Gaussian signal of variance v, its MMSE denoiser
    x v / (v + s^2), and a degradation that adds noise up to g x sigma. The first denoise shrinks the signal to
    variance v^2 / (v + sigma^2), and the denoiser shrinks as MMSE for it at s = g sigma sqrt(1 + sigma^2 / v)."""
    from editing.noise import NoiseCurve, bootstrap_scale

    v, sigma = 0.25, 0.1
    noise = NoiseCurve.constant(sigma)
    g = torch.Generator().manual_seed(20)
    squares = v**0.5 * torch.randn(9, 3, 128, 128, generator=g)
    noisy = squares + sigma * torch.randn(squares.shape, generator=g)

    def wiener(x: torch.Tensor, multiple: float) -> torch.Tensor:
        return x * v / (v + (multiple * sigma) ** 2)

    for gain in (1.2, 1.6):
        extra = torch.Generator().manual_seed(21)

        def degrade(x: torch.Tensor) -> torch.Tensor:
            return x + sigma * (gain**2 - 1) ** 0.5 * torch.randn(x.shape, generator=extra)

        found = bootstrap_scale(wiener, noisy, noise, degrade, torch.Generator().manual_seed(22))
        assert found == pytest.approx(gain * (1 + sigma**2 / v) ** 0.5, abs=0.03), gain
    # nothing added: the least multiple
    assert bootstrap_scale(wiener, noisy, noise, lambda x: x, torch.Generator().manual_seed(22)) == 1.0
    with pytest.raises(ValueError, match="scales must rise"):
        bootstrap_scale(wiener, noisy, noise, lambda x: x, g, scales=(1.3, 1.0))


def test_bootstrap_squares_start_on_the_jpeg_grid_inside_the_image() -> None:
    from editing.noise import BOOTSTRAP_GRID, BOOTSTRAP_SIDE, JPEG_BLOCK, bootstrap_squares

    for h, w, count in ((1600, 2560, BOOTSTRAP_GRID**2), (300, 130, 8), (128, 128, 4), (70, 40, 2)):
        image = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w)
        squares, side = bootstrap_squares(image)
        assert side == min(BOOTSTRAP_SIDE, h // JPEG_BLOCK * JPEG_BLOCK, w // JPEG_BLOCK * JPEG_BLOCK)
        assert squares.shape == (count, 1, side, side)
        corners = squares[:, 0, 0, 0].long()  # the pixel's index gives where each square starts
        assert ((corners // w) % JPEG_BLOCK == 0).all() and ((corners % w) % JPEG_BLOCK == 0).all()
        assert len(set(corners.tolist())) == count  # none repeated
    assert bootstrap_squares(torch.zeros(1, 3, 10, 500))[1] == 0


def test_jpeg_roundtrip_compresses_as_the_file_was() -> None:
    """The round trip with a file's own tables and subsampling gives back the file's pixels from its source."""
    import io

    from PIL import Image

    from editing.images import jpeg_compression, load_full
    from editing.noise import jpeg_roundtrip

    g = np.random.default_rng(16)
    source = np.clip(128 + 30 * g.standard_normal((48, 64, 3)), 0, 255).round().astype(np.uint8)
    for subsampling in (0, 2):
        buffer = io.BytesIO()
        Image.fromarray(source).save(buffer, "JPEG", quality=80, subsampling=subsampling)
        tables, read = jpeg_compression(buffer.getvalue())
        assert read == subsampling
        again = jpeg_roundtrip(from_uint8(source[None]), tables, read)
        assert torch.equal(again, load_full(buffer.getvalue()).tensor)
    grey = jpeg_roundtrip(from_uint8(source[None]), {0: tables[0]}, -1)
    assert is_grey(grey) and not torch.equal(grey, from_uint8(source[None]))
