"""editing.images: every malformed or unusual upload gives a clear InputError or a correct conversion with a note.

All inputs are generated here (no binary fixtures); PNG headers that Pillow will not write are built by hand.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from editing import images
from editing.images import InputError, load_image, load_mask

R = 16


# -- builders ---------------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_by_hand(width: int, height: int, bit_depth: int, colour_type: int, raw: bytes | None) -> bytes:
    """A PNG from its chunks; `raw` is the filtered scanlines (None: a tiny IDAT that does not match the size)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    idat = zlib.compress(raw if raw is not None else b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def encode(image: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def rgb_of(converted: images.Converted, y: int, x: int) -> list[float]:
    """The pixel at (y, x) as 0-255 values."""
    return [round(float(v), 1) for v in (converted.tensor[0, :, y, x] + 1) * 127.5]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def solid(colour: Any, size: tuple[int, int] = (R, R), mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def check_tensor(converted: images.Converted) -> None:
    t = converted.tensor
    assert t.shape == (1, 3, R, R) and t.dtype == torch.float32
    assert torch.isfinite(t).all() and t.min() >= -1 and t.max() <= 1


# -- refused inputs: each case is (description, input builder, expected words in the message) ---------

def _truncated_png() -> bytes:
    data = encode(Image.fromarray(np.random.RandomState(0).randint(0, 256, (64, 64, 3), np.uint8)), "PNG")
    return data[: len(data) // 2]


def _truncated_jpeg() -> bytes:
    data = encode(Image.fromarray(np.random.RandomState(0).randint(0, 256, (64, 64, 3), np.uint8)), "JPEG")
    return data[: len(data) // 2]


REFUSED: list[tuple[str, Any, str]] = [
    ("zero-byte file", lambda p: write(p, "empty.png", b""), "empty"),
    ("empty bytes", lambda p: b"", "empty"),
    ("truncated PNG", lambda p: write(p, "cut.png", _truncated_png()), "truncated"),
    ("truncated JPEG", lambda p: write(p, "cut.jpg", _truncated_jpeg()), "truncated"),
    ("truncated AVIF", lambda p: encode(solid("red", (64, 64)), "AVIF")[:100], "starts like an AVIF file"),
    ("PNG signature only", lambda p: b"\x89PNG\r\n\x1a\n", "corrupt"),
    ("text renamed .png", lambda p: write(p, "notes.png", b"hello, this is not a picture\n" * 20), "text file"),
    ("random bytes renamed .jpg", lambda p: write(p, "noise.jpg", bytes(np.random.RandomState(1).randint(
        0, 256, 2000, np.uint8))), "not an image"),
    ("EPS (would run Ghostscript)", lambda p: write(p, "x.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n"),
     "not an image"),
    ("SVG", lambda p: write(p, "x.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>'),
     "not an image"),
    ("PNG header claiming 100000x100000 (decompression bomb)",
     lambda p: write(p, "bomb.png", png_by_hand(100_000, 100_000, 8, 2, None)), "too large"),
    ("PNG header claiming 10000x8500 (over the pixel limit, checked before decoding)",
     lambda p: png_by_hand(10_000, 8_500, 8, 2, None), "85,000,000 pixels, more than the 80,000,000"),
    ("1x1000 image (aspect 1000:1)", lambda p: np.zeros((1000, 1), np.uint8), "aspect ratio of 1000:1"),
    ("1000x30 image (aspect 33:1)", lambda p: solid("red", (1000, 30)), "crop it"),
    ("NaN in an array", lambda p: np.full((8, 8, 3), np.nan, np.float32), "NaN"),
    ("inf in an array", lambda p: np.where(np.eye(8, dtype=bool)[:, :, None], np.inf,
                                           np.zeros((8, 8, 3))).astype(np.float32), "infinite"),
    ("float array far outside [0, 1]", lambda p: np.full((8, 8), 1000.0), "float values"),
    ("negative integers", lambda p: np.full((8, 8), -5, np.int32), "integer values"),
    ("32-bit mode I beyond 16 bits", lambda p: Image.fromarray(np.full((8, 8), 70000, np.int32)), "integer values"),
    ("channels-first array (3, H, W)", lambda p: np.zeros((3, 16, 16), np.uint8), "channels last"),
    ("five channels", lambda p: np.zeros((8, 8, 5), np.uint8), "shape"),
    ("zero-size array", lambda p: np.zeros((0, 8, 3), np.uint8), "shape"),
    ("1-D array", lambda p: np.zeros(64, np.uint8), "shape"),
    ("complex array", lambda p: np.zeros((8, 8), np.complex64), "dtype"),
    ("object array", lambda p: np.full((8, 8), None, object), "dtype"),
    ("no image (None)", lambda p: None, "no image"),
    ("empty path string", lambda p: "", "no image"),
    ("missing file", lambda p: p / "missing.png", "not found"),
    ("a directory", lambda p: p, "not found"),
    ("unsupported type", lambda p: 12345, "got int"),
]


@pytest.mark.parametrize("description,build,words", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_with_a_clear_message(tmp_path: Path, description: str, build: Any, words: str) -> None:
    with pytest.raises(InputError, match=words) as info:
        load_image(build(tmp_path), R)
    message = str(info.value)
    assert "Traceback" not in message and len(message) < 300


def test_file_over_the_byte_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "big.png", encode(solid("red", (64, 64)), "PNG", compress_level=0))
    with pytest.raises(InputError, match="MiB"):
        load_image(path, R, max_bytes=1000)
    with pytest.raises(InputError, match="MiB"):
        load_image(path.read_bytes(), R, max_bytes=1000)


def test_pixel_limit_is_per_call_and_global_pil_state_untouched() -> None:
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(InputError, match="4,096 pixels"):
        load_image(encode(solid("red", (64, 64)), "PNG"), R, max_pixels=4000)
    assert load_image(encode(solid("red", (64, 64)), "PNG"), R).tensor.shape == (1, 3, R, R)
    assert Image.MAX_IMAGE_PIXELS == before


# -- accepted inputs, converted correctly with a note ----------------------------------------------------

def test_animated_gif_uses_the_first_frame() -> None:
    frames = [solid(c, (8, 8)) for c in ("red", "lime", "blue")]
    out = load_image(encode(frames[0], "GIF", save_all=True, append_images=frames[1:]), R)
    check_tensor(out)
    assert "animated GIF: used the first of 3 frames" in out.notes
    assert rgb_of(out, 5, 5) == [255, 0, 0]


@pytest.mark.parametrize("fmt,kind", [("PNG", "animated PNG"), ("WEBP", "animated WebP"),
                                      ("TIFF", "multi-page TIFF")])
def test_other_animations_use_the_first_frame(fmt: str, kind: str) -> None:
    frames = [solid(c, (8, 8)) for c in ("blue", "red")]
    out = load_image(encode(frames[0], fmt, save_all=True, append_images=frames[1:], lossless=True), R)
    assert f"{kind}: used the first of 2 frames" in out.notes
    assert rgb_of(out, 3, 3) == [0, 0, 255]


def test_a_phone_s_jpeg_with_a_gain_map_gives_the_photo() -> None:
    """An MPO (an Ultra HDR photo's gain map, a portrait's depth map, after the photo): the photo, said plainly."""
    data = encode(solid((200, 30, 20), (80, 60)), "MPO", save_all=True, append_images=[solid((128, 128, 128))])
    full = images.load_full(data)
    assert full.tensor.shape[-2:] == (60, 80) and abs(rgb_of(full, 30, 40)[0] - 200) <= 2
    assert full.notes == ["a phone's JPEG with 1 more image(s) beside the photo (an HDR gain map, a depth map): used "
                          "the photo"]


def test_16_bit_grayscale_png_is_scaled() -> None:
    data = encode(Image.fromarray(np.full((8, 8), 32896, np.uint16)), "PNG")  # 32896 / 65535 = 128 / 255
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    out = load_image(data, R)
    assert any("16-bit" in n for n in out.notes)
    assert rgb_of(out, 0, 0) == [128.0] * 3


def test_48_bit_rgb_png_by_hand() -> None:
    pixel = struct.pack(">HHH", 65535, 32896, 0)
    raw = b"".join(b"\x00" + pixel * 4 for _ in range(4))
    out = load_image(png_by_hand(4, 4, 16, 2, raw), R)
    assert rgb_of(out, 7, 7) == [255, 128, 0]


def test_16_bit_rgb_array() -> None:
    array = np.zeros((8, 8, 3), np.uint16)
    array[..., 0], array[..., 2] = 65535, 32896
    out = load_image(array, R)
    assert "16-bit image: values scaled from 0-65535" in out.notes
    assert rgb_of(out, 1, 1) == [255, 0, 128]


def test_float_tiff() -> None:
    data = encode(Image.fromarray(np.full((8, 8), 0.25, np.float32)), "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "F"
    out = load_image(data, R)
    assert rgb_of(out, 0, 0) == [63.8] * 3


@pytest.mark.parametrize("array,note,value", [
    (np.full((8, 8, 3), 0.5, np.float64), None, 127.5),
    (np.full((8, 8, 3), -0.5, np.float32), "[-1, 1]", 63.8),
    (np.full((8, 8, 3), 51.0, np.float32), "[0, 255]", 51.0),
    (np.full((8, 8), True), None, 255.0),
    (np.full((8, 8, 1), 200, np.int64), "read as 8-bit", 200.0),
])
def test_array_ranges(array: np.ndarray, note: str | None, value: float) -> None:
    out = load_image(array, R)
    check_tensor(out)
    assert rgb_of(out, 4, 4) == [value] * 3
    if note:
        assert any(note in n for n in out.notes)


def test_cmyk_jpeg() -> None:
    data = encode(solid((0, 255, 255, 0), (16, 16), "CMYK"), "JPEG", quality=95)  # cyan 0, magenta, yellow: red
    out = load_image(data, R)
    assert "converted CMYK to RGB" in out.notes
    r, g, b = rgb_of(out, 8, 8)
    assert r > 230 and g < 30 and b < 30


def test_palette_with_transparency_becomes_white() -> None:
    image = Image.new("P", (16, 16), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 8, 16))  # left half red, right half palette index 0 = transparent black
    out = load_image(encode(image, "PNG", transparency=0), R)
    assert "palette image with transparency: converted to RGBA" in out.notes
    assert any("composited on white" in n for n in out.notes)
    assert rgb_of(out, 4, 2) == [255, 0, 0] and rgb_of(out, 4, 12) == [255, 255, 255]


def test_la_composited_on_white() -> None:
    array = np.zeros((16, 16, 2), np.uint8)
    array[:, :8, 1] = 255  # left opaque black, right fully transparent black
    array[:, 8:, 1] = 0
    out = load_image(encode(Image.fromarray(array, "LA"), "PNG"), R)
    assert rgb_of(out, 0, 0) == [0, 0, 0] and rgb_of(out, 0, 15) == [255, 255, 255]


def test_half_transparent_rgba_blends_with_white() -> None:
    array = np.zeros((8, 8, 4), np.uint8)
    array[..., 3] = 128  # black at alpha 128/255
    out = load_image(array, R)
    assert rgb_of(out, 0, 0) == [pytest.approx(127.0, abs=0.1)] * 3


def test_opaque_alpha_gives_no_note() -> None:
    out = load_image(solid((10, 20, 30, 255), (16, 16), "RGBA"), R)
    assert out.notes == [] and rgb_of(out, 0, 0) == [10, 20, 30]


def test_exif_rotated_jpeg_is_rotated() -> None:
    # Stored 32 wide x 16 high: left half red, right half blue. Orientation 6 = display rotated 90° clockwise,
    # so the viewer sees 16 wide x 32 high with red on top.
    image = Image.new("RGB", (32, 16), "blue")
    image.paste((255, 0, 0), (0, 0, 16, 16))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = load_image(encode(image, "JPEG", exif=exif, quality=95), R)
    assert "rotated per EXIF orientation 6 (rotated 90° clockwise)" in out.notes
    assert "resized 16x32 -> 16x16 after padding to 32x32 with white" in out.notes
    top, bottom = rgb_of(out, 3, 8), rgb_of(out, 12, 8)
    assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60
    assert rgb_of(out, 8, 0) == [255, 255, 255] and rgb_of(out, 8, 15) == [255, 255, 255]  # padding at the sides


def test_one_by_one_is_enlarged() -> None:
    out = load_image(solid((1, 2, 3), (1, 1)), R)
    check_tensor(out)
    assert out.notes == [f"resized 1x1 -> {R}x{R} (enlarged x{R}: each pixel became a {R}x{R} block)"]
    assert torch.equal(out.tensor, out.tensor[:, :, :1, :1].expand(1, 3, R, R))


def test_twenty_to_one_is_padded_not_refused() -> None:
    out = load_image(solid("black", (400, 20)), R)
    assert "resized 400x20 -> 16x16 after padding to 400x400 with white" in out.notes
    assert rgb_of(out, 0, 0) == [255] * 3 and rgb_of(out, 8, 8)[0] < 255


def test_non_square_downsample_note_and_exact_area_average() -> None:
    array = np.random.RandomState(3).randint(0, 256, (300, 512, 3), np.uint8)
    out = load_image(array, 32)
    assert out.notes == ["resized 512x300 -> 32x32 after padding to 512x512 with white"]
    padded = np.full((512, 512, 3), 255.0)
    padded[106:406] = array
    expected = padded.reshape(32, 16, 32, 16, 3).mean(axis=(1, 3)) / 127.5 - 1
    assert np.abs(out.tensor[0].permute(1, 2, 0).numpy() - expected).max() < 1e-5


def test_odd_ratio_preserves_the_mean() -> None:
    array = np.random.RandomState(4).randint(0, 256, (37, 101, 3), np.uint8)
    out = load_image(array, 13)
    padded = np.full((101, 101, 3), 255.0)
    padded[32:69] = array
    assert float((out.tensor + 1).mul(127.5).mean()) == pytest.approx(padded.mean(), abs=1e-3)


def test_whole_factor_enlargement_keeps_blocks() -> None:
    small = np.random.RandomState(5).randint(0, 256, (4, 4, 3), np.uint8)
    out = load_image(small, R)
    expected = small.repeat(4, 0).repeat(4, 1) / 127.5 - 1
    assert np.abs(out.tensor[0].permute(1, 2, 0).numpy() - expected).max() < 1e-6


def test_sources_agree(tmp_path: Path) -> None:
    array = np.random.RandomState(6).randint(0, 256, (24, 24, 3), np.uint8)
    data = encode(Image.fromarray(array), "PNG")
    path = write(tmp_path, "a.png", data)
    results = [load_image(v, R).tensor for v in (array, Image.fromarray(array), data, path, str(path),
                                                  {"path": str(path)})]
    for t in results[1:]:
        assert torch.equal(t, results[0])


def test_input_array_and_image_are_not_modified() -> None:
    array = np.random.RandomState(7).randint(0, 256, (20, 10, 4), np.uint8)
    copy = array.copy()
    load_image(array, R)
    assert np.array_equal(array, copy)


def test_one_bit_and_grayscale() -> None:
    out = load_image(Image.new("1", (8, 8), 1), R)
    assert "1-bit image: converted to grayscale" in out.notes and rgb_of(out, 0, 0) == [255] * 3


# -- masks ----------------------------------------------------------------------------------------------

def test_thin_stroke_survives_downsampling() -> None:
    mask = np.zeros((512, 512), np.uint8)
    mask[:, 200] = 255  # one pixel wide
    out = load_mask(mask, R)
    assert out.mask.shape == (1, 1, R, R) and out.mask.dtype == torch.bool
    assert out.mask[0, 0, :, 200 * R // 512].all() and int(out.mask.sum()) == R
    assert any("a cell is filled if any pixel in it is" in n for n in out.notes)


def test_mask_sources_and_semantics(tmp_path: Path) -> None:
    m = np.zeros((R, R), bool)
    m[2:5, 3:9] = True
    expected = torch.from_numpy(m)[None, None]
    for value in (m, m.astype(np.uint8), (m * 255).astype(np.uint8), m.astype(np.float32),
                  encode(Image.fromarray((m * 255).astype(np.uint8)), "PNG"),
                  np.stack([m * 255] * 3, axis=2).astype(np.uint8)):
        assert torch.equal(load_mask(value, R).mask, expected)
    rgba = np.zeros((R, R, 4), np.uint8)
    rgba[..., 3] = m * 255  # white-on-transparent and black-on-transparent both count by opacity
    out = load_mask(encode(Image.fromarray(rgba), "PNG"), R)
    assert torch.equal(out.mask, expected) and any("transparency" in n for n in out.notes)


def test_jpeg_noise_in_a_mask_is_not_filled() -> None:
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    out = load_mask(encode(Image.fromarray(mask), "JPEG", quality=60), 32)
    assert not out.mask[0, 0, :4, :4].any() and out.mask[0, 0, 10:22, 10:22].all()


def test_mask_padding_is_not_filled() -> None:
    out = load_mask(np.ones((10, 40), bool), R)
    assert out.mask[0, 0, 8].all() and not out.mask[0, 0, 0].any()


def test_empty_and_full_masks_are_valid() -> None:
    empty, full = load_mask(np.zeros((8, 8), bool), R).mask, load_mask(np.ones((8, 8), bool), R).mask
    assert images.is_empty(empty) and not images.is_full(empty)
    assert images.is_full(full) and not images.is_empty(full)


@pytest.mark.parametrize("value,words", [
    (np.full((8, 8), np.nan), "NaN"),
    (np.zeros((8, 8, 5)), "shape"),
    (b"not a mask at all", "not an image"),
    (None, "no image"),
])
def test_bad_masks(value: Any, words: str) -> None:
    with pytest.raises(InputError, match=words):
        load_mask(value, R)


# -- outputs --------------------------------------------------------------------------------------------

def test_to_pil_rounds_and_clips() -> None:
    x = torch.tensor([-1.0, -0.5, 0.0, 1.0, 3.0, float("nan")]).view(1, 1, 1, 6).expand(2, 3, 1, 6)
    pils = images.to_pil(x)
    assert len(pils) == 2 and pils[0].mode == "RGB"
    assert list(np.asarray(pils[0])[0, :, 0]) == [0, 64, 128, 255, 255, 0]
    with pytest.raises(ValueError, match="B, 3, H, W"):
        images.to_pil(torch.zeros(3, 4, 4))


def test_round_trip_is_exact_for_8_bit() -> None:
    array = np.random.RandomState(8).randint(0, 256, (R, R, 3), np.uint8)
    assert np.array_equal(np.asarray(images.to_pil(load_image(array, R).tensor)[0]), array)


def test_uint8_conversions_invert_each_other() -> None:
    # Every 8-bit value survives uint8 -> float -> uint8, and a float comes back within half a level.
    levels = np.arange(256, dtype=np.uint8)
    array = np.stack([levels, levels[::-1], levels], -1).reshape(1, 16, 16, 3)
    assert np.array_equal(images.to_uint8(images.from_uint8(array)), array)
    x = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(3)) * 2 - 1
    assert (images.from_uint8(images.to_uint8(x)) - x).abs().max() <= 0.5 / 127.5 + 1e-6
    assert images.from_uint8(array).shape == (1, 3, 16, 16)


def test_enlarge_is_nearest() -> None:
    small = Image.fromarray(np.random.RandomState(9).randint(0, 256, (4, 4, 3), np.uint8))
    big = images.enlarge(small, 32)
    assert big.size == (32, 32)
    assert np.array_equal(np.asarray(big), np.asarray(small).repeat(8, 0).repeat(8, 1))


# -- full size (issue 31) -----------------------------------------------------------------------------


def test_load_full_keeps_size_and_alpha() -> None:
    rgba = np.zeros((17, 300, 4), np.uint8)  # a 300x17 strip: no aspect limit at full size
    rgba[..., 0] = 200
    rgba[..., 3] = (np.arange(300) % 256).astype(np.uint8)[None, :]
    full = images.load_full(rgba)
    assert full.tensor.shape == (1, 3, 17, 300) and (full.alpha == rgba[..., 3]).all()
    # Composited on white for the model: a transparent pixel is white, an opaque one its colour.
    assert full.tensor[0, :, 0, 0].tolist() == [1.0, 1.0, 1.0]
    torch.testing.assert_close(full.tensor[0, 0, 0, 255], torch.tensor(200 / 127.5 - 1))
    assert any("keeps the upload's alpha" in n for n in full.notes)
    opaque = images.load_full(np.full((20, 30, 4), 255, np.uint8))
    assert opaque.alpha is None and opaque.tensor.shape == (1, 3, 20, 30)
    grey16 = images.load_full(Image.fromarray(np.full((18, 19), 65535, np.uint16)))
    assert grey16.tensor.shape == (1, 3, 18, 19) and bool((grey16.tensor == 1).all())


def test_load_full_is_exact_for_8_bit_and_refuses_like_load_image(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (33, 47, 3), dtype=np.uint8)
    path = tmp_path / "p.png"
    Image.fromarray(pixels).save(path)
    assert (images.to_uint8(images.load_full(path).tensor)[0] == pixels).all()
    with pytest.raises(InputError, match="file not found"):
        images.load_full(tmp_path / "missing.png")


def test_load_mask_full_matches_the_image_size() -> None:
    mask = np.zeros((10, 10), np.uint8)
    mask[4, 4] = 255  # one pixel survives shrinking ("any"), and becomes a block when enlarging
    small = images.load_mask_full(mask, 5, 5)
    assert small.mask.shape == (1, 1, 5, 5) and int(small.mask.sum()) == 1 and small.notes
    big = images.load_mask_full(mask, 20, 20)
    assert int(big.mask.sum()) == 4
    same = images.load_mask_full(mask, 10, 10)
    assert same.notes == [] and int(same.mask.sum()) == 1


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_image_size_reads_the_header_as_load_full_would_decode(orientation: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    jpeg = tmp_path / "photo.jpg"
    jpeg.write_bytes(encode(Image.fromarray(rng.integers(0, 256, (30, 70, 3), dtype=np.uint8)), "JPEG", exif=exif))
    rgba = Image.fromarray(rng.integers(0, 256, (9, 41, 4), dtype=np.uint8), "RGBA")
    for value in (str(jpeg), encode(rgba, "PNG"), np.zeros((5, 12, 3), np.uint8)):
        assert images.image_size(value) == tuple(images.load_full(value).tensor.shape[-2:])
    assert images.image_size(str(jpeg)) == ((70, 30) if orientation in (6, 8) else (30, 70))
    with pytest.raises(InputError, match="not an image"):
        images.image_size(b"hello, this is text")


def test_crop_cuts_the_centre_square_instead_of_padding_with_white() -> None:
    rng = np.random.default_rng(3)
    wide = rng.integers(0, 256, (20, 40, 3), dtype=np.uint8)
    cropped = load_image(encode(Image.fromarray(wide), "PNG"), R, crop=True)
    centre = load_image(encode(Image.fromarray(wide[:, 10:30]), "PNG"), R)
    torch.testing.assert_close(cropped.tensor, centre.tensor, rtol=0, atol=0)
    assert cropped.notes[0] == "cut 40x20 to its centre 20x20 square"
    padded = load_image(encode(Image.fromarray(wide), "PNG"), R)
    assert "with white" in padded.notes[-1] and not torch.equal(padded.tensor, cropped.tensor)
    square = load_image(encode(Image.fromarray(wide[:, :20]), "PNG"), R, crop=True)
    assert not any("centre" in n for n in square.notes)  # a square is kept whole


@pytest.mark.parametrize("size, to", [((64, 48), (32, 24)), ((45, 70), (44, 67)), ((50, 37), (13, 29)),
                                      ((9, 9), (9, 9))])
def test_area_resize_is_the_exact_area_mean(size: tuple[int, int], to: tuple[int, int]) -> None:
    """images.area_resize against an independent exact form: each source pixel repeated `to` times along each axis
    puts every output's area on whole pixels, so a plain block mean of them is the area mean."""
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = images.area_resize(x, *to)
    fine = x.repeat_interleave(to[0], -2).repeat_interleave(to[1], -1)
    expected = torch.nn.functional.avg_pool2d(fine, kernel_size=size)
    assert out.shape == (2, 3, *to)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.mean((-2, -1)), x.mean((-2, -1)), rtol=0, atol=1e-12)  # the mean is kept


def test_a_slight_area_downscale_stays_sharp() -> None:
    """Adaptive pooling (F.interpolate's 'area') averages two or three whole columns for every output at 70 -> 67,
    so a one-pixel line keeps half its contrast at most; the exact area resize splits it by its overlaps only."""
    lines = torch.eye(70, dtype=torch.float64).view(70, 1, 1, 70).expand(70, 1, 4, 70)  # a line at each column
    exact = images.area_resize(lines, 4, 67).amax((-3, -2, -1))
    pooled = torch.nn.functional.interpolate(lines, size=(4, 67), mode="area").amax((-3, -2, -1))
    assert float(exact.min()) > 0.48 and float(exact.mean()) > 0.7 and float(exact.max()) > 0.95
    assert float(pooled.max()) == 0.5


# -- a phone's HEIC (pillow-heif) -------------------------------------------------------------------------


def heic(image: Image.Image, **kwargs: Any) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()  # its writer, for the test's files (the studio only reads)
    return encode(image, "HEIF", quality=95, **kwargs)


def smooth_rgb(height: int, width: int) -> np.ndarray:
    """A smooth colour picture, which HEVC at quality 95 keeps within a few levels."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([128 + 90 * np.sin(xx / 17), 128 + 90 * np.cos(yy / 13),
                     128 + 60 * np.sin((xx + yy) / 21)], -1).astype(np.uint8)


def test_a_heic_reads_as_the_picture_it_holds(tmp_path: Path) -> None:
    pixels = smooth_rgb(120, 160)
    path = write(tmp_path, "IMG_0001.HEIC", heic(Image.fromarray(pixels)))
    full = images.load_full(path)
    assert full.tensor.shape == (1, 3, 120, 160) and full.notes == []
    error = np.abs(images.to_uint8(full.tensor)[0].astype(int) - pixels)
    assert error.mean() < 3 and np.percentile(error, 99) < 12, (error.mean(), np.percentile(error, 99))
    assert images.image_size(path) == (120, 160)


def test_a_heic_is_turned_as_a_jpeg_with_the_same_orientation() -> None:
    # Stored 160 wide x 120 high; orientation 6 = shown rotated 90° clockwise, 120 wide x 160 high, as for a JPEG.
    # pillow-heif writes it as the HEIF 'irot' a phone writes; libheif turns the picture, and EXIF then says 1.
    exif = Image.Exif()
    exif[0x0112] = 6
    picture = Image.fromarray(smooth_rgb(120, 160))
    jpeg = images.load_full(encode(picture, "JPEG", quality=95, exif=exif))
    phone = heic(picture, exif=exif.tobytes())
    turned = images.load_full(phone)
    assert turned.tensor.shape == jpeg.tensor.shape == (1, 3, 160, 120)
    assert float((turned.tensor - jpeg.tensor).abs().mean()) * 127.5 < 3  # the same picture, turned once
    assert images.image_size(phone) == (160, 120)


def test_a_heic_with_several_images_gives_its_primary_one() -> None:
    first, primary = smooth_rgb(64, 64), 255 - smooth_rgb(64, 64)
    data = heic(Image.fromarray(first), append_images=[Image.fromarray(primary)], primary_index=1)
    full = images.load_full(data)
    assert "HEIC with 2 images: used its primary image" in full.notes
    assert np.abs(images.to_uint8(full.tensor)[0].astype(int) - primary).mean() < 3


def test_a_cut_heic_and_a_heic_without_pillow_heif_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    data = heic(Image.fromarray(smooth_rgb(64, 64)))
    with pytest.raises(InputError, match="starts like a HEIC file but is corrupt or truncated"):
        images.load_full(data[:200])
    monkeypatch.setattr(images, "_register_heif", lambda: False)
    monkeypatch.setattr(images, "FORMATS", tuple(f for f in images.FORMATS if f != "HEIF"))
    with pytest.raises(InputError, match="HEIC file, which needs the pillow-heif package"):
        images.load_full(data)


# -- larger than is edited at full size -------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(97, 131, 4), (131, 97, 3), (300, 7, 1)])
def test_load_full_reduces_a_larger_image_by_exact_area_averaging(shape: tuple[int, int, int]) -> None:
    """Reduced as it is read (OpenCV's INTER_AREA), it is what `area_resize` makes of the whole image: its colours
    composited on white first, its alpha averaged the same way."""
    rng = np.random.default_rng(sum(shape))
    array = rng.integers(0, 256, shape, dtype=np.uint8)
    if shape[2] == 4:
        array[: shape[0] // 3, :, 3] = 255  # opaque rows above partly transparent ones
    limit = shape[0] * shape[1] // 3
    full = images.load_full(array, max_full_pixels=limit)
    height, width = full.tensor.shape[-2:]
    assert height * width <= limit < (height + 1) * (width + 1) and abs(width / height - shape[1] / shape[0]) < 0.2
    assert any(f"reduced {shape[1]}x{shape[0]} -> {width}x{height} as it was read" in n for n in full.notes)
    whole = images.load_full(array)  # composited on white at full size
    # An opaque 8-bit image's means are rounded to 8 bits: half a level is 1 / 255 on [-1, 1].
    tolerance = 2e-6 if shape[2] == 4 else 1 / 255 + 2e-6
    torch.testing.assert_close(full.tensor, images.area_resize(whole.tensor, height, width), atol=tolerance, rtol=0)
    if shape[2] == 4:
        expected = images.area_resize(torch.from_numpy(whole.alpha).double(), height, width)
        assert np.abs(full.alpha.astype(int) - expected.round().numpy()).max() <= 1
    else:
        assert full.alpha is None


def test_a_48_megapixel_phone_photo_is_read_reduced_to_what_is_edited() -> None:
    height, width = 6048, 8064  # a 48 MP phone's, over MAX_FULL_PIXELS and within MAX_PIXELS
    ramp = np.broadcast_to(np.linspace(0, 255, width).astype(np.uint8), (height, width))
    full = images.load_full(ramp)
    assert full.tensor.shape[-2:] == (5477, 7302) and 5477 * 7302 <= images.MAX_FULL_PIXELS
    assert abs(float(full.tensor.mean()) - float(ramp[0].mean() / 127.5 - 1)) < 1e-3
    assert any("at most 40,000,000 pixels are edited at full size" in n for n in full.notes)


# -- the upload's EXIF, as its results carry it ------------------------------------------------------------


def exif_with_thumbnail(make: str, thumbnail: bytes) -> bytes:
    """An EXIF block as a phone writes one (Pillow writes no thumbnail): IFD0 (Make, Orientation 6) pointing to
    IFD1, a JPEG thumbnail of the picture as it was taken."""
    name = make.encode() + b"\0"
    ifd0, ifd1 = 8, 8 + 2 + 2 * 12 + 4
    data = ifd1 + 2 + 2 * 12 + 4
    tiff = b"MM\0*" + struct.pack(">I", ifd0)
    tiff += struct.pack(">H", 2) + struct.pack(">HHII", 0x010F, 2, len(name), data)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack(">I", ifd1)
    tiff += struct.pack(">H", 2) + struct.pack(">HHII", 0x0201, 4, 1, data + len(name))
    tiff += struct.pack(">HHII", 0x0202, 4, 1, len(thumbnail)) + struct.pack(">I", 0)
    return b"Exif\0\0" + tiff + name + thumbnail


def read_exif(data: bytes) -> Image.Exif:
    exif = Image.Exif()
    exif.load(data)
    return exif


def test_results_keep_when_and_with_what_a_photo_was_taken() -> None:
    from PIL import ExifTags

    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112], exif[0x0132] = "Phone Maker", "Phone 15", 6, "2026:12:01 10:00:00"
    details = exif.get_ifd(ExifTags.IFD.Exif)
    details[0x9003], details[0x829A], details[0xA434] = "2026:12:01 10:00:00", 0.01, "back camera 6.9mm f/1.8"
    details[0xA002], details[0xA003], details[0x927C], details[0xA001] = 80, 60, b"maker's own" * 10, 0xFFFF
    exif.get_ifd(ExifTags.IFD.GPSInfo)[1] = "N"
    full = images.load_full(encode(Image.fromarray(smooth_rgb(60, 80)), "JPEG", exif=exif.tobytes()))
    assert full.tensor.shape[-2:] == (80, 60)  # turned, so its orientation is 1 from now on
    kept = read_exif(full.exif)
    assert (kept[0x010F], kept[0x0110], kept[0x0132], kept[0x0112]) == ("Phone Maker", "Phone 15",
                                                                         "2026:12:01 10:00:00", 1)
    taken = kept.get_ifd(ExifTags.IFD.Exif)
    assert taken[0x9003] == "2026:12:01 10:00:00" and taken[0xA434] == "back camera 6.9mm f/1.8"
    assert taken[0xA001] == 1 and not {0xA002, 0xA003, 0x927C} & set(taken)  # sRGB; no size, no maker's block
    assert kept.get_ifd(ExifTags.IFD.GPSInfo)[1] == "N"
    assert images.load_full(smooth_rgb(8, 8)).exif is None and images.load_full(encode(solid("red"), "PNG")).exif is None


def test_results_do_not_carry_the_upload_s_thumbnail() -> None:
    from PIL import ExifTags

    thumbnail = encode(solid("red", (8, 8)), "JPEG")
    upload = encode(Image.fromarray(smooth_rgb(60, 80)), "JPEG", exif=exif_with_thumbnail("Phone Maker", thumbnail))
    assert thumbnail in upload and Image.open(io.BytesIO(upload)).getexif().get_ifd(ExifTags.IFD.IFD1)
    full = images.load_full(upload)
    kept = read_exif(full.exif)
    assert kept[0x010F] == "Phone Maker" and kept[0x0112] == 1 and thumbnail not in full.exif
    assert not kept.get_ifd(ExifTags.IFD.IFD1)


def test_a_heic_in_display_p3_described_by_code_points_is_converted() -> None:
    """A phone's HEIC may name its colour by H.273 code points (nclx) instead of a profile: Display P3 (12) with
    sRGB's curve. Checked against the colorimetry done again here (linear light, P3 -> XYZ -> sRGB, both D65)."""
    from tests.test_colour_profiles import SRGB_PRIMARIES, rgb_to_xyz_d50, srgb_encode

    p3_primaries = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))
    pixels = smooth_rgb(64, 96)
    p3 = {"color_primaries": 12, "transfer_characteristics": 13, "matrix_coefficients": 6, "full_range_flag": 1}
    full = images.load_full(heic(Image.fromarray(pixels), nclx_profile=p3))
    got = np.round((full.tensor[0].permute(1, 2, 0).numpy() + 1) * 127.5)
    unit = pixels / 255.0
    linear = np.where(unit <= 0.04045, unit / 12.92, ((unit + 0.055) / 1.055) ** 2.4)
    # The D50 adaptation of both matrices cancels: P3 -> sRGB is the same from D65 or D50 colorants.
    expected = 255.0 * srgb_encode(linear @ (np.linalg.inv(rgb_to_xyz_d50(SRGB_PRIMARIES)) @ rgb_to_xyz_d50(p3_primaries)).T)
    converted, unconverted = (float(np.abs(got - e).mean()) for e in (expected, pixels))
    assert converted < 2.5 and unconverted > 3 * converted, (converted, unconverted)
    assert any("Display P3" in n and "sRGB" in n for n in full.notes), full.notes


@pytest.mark.parametrize("nclx, words", [
    ({"color_primaries": 9, "transfer_characteristics": 16}, "HDR"),  # BT.2020 PQ
    ({"color_primaries": 8, "transfer_characteristics": 13}, "not ones this studio knows"),  # generic film
])
def test_a_heic_whose_colour_cannot_be_converted_says_so(nclx: dict, words: str) -> None:
    pixels = smooth_rgb(48, 48)
    full = images.load_full(heic(Image.fromarray(pixels), nclx_profile={"matrix_coefficients": 6,
                                                                         "full_range_flag": 1, **nclx}))
    assert any(words in n and "read as sRGB" in n for n in full.notes), full.notes
    got = np.round((full.tensor[0].permute(1, 2, 0).numpy() + 1) * 127.5)
    assert np.abs(got - pixels).mean() < 2.5  # as it was, within HEVC's loss


def test_an_avif_in_display_p3_described_by_code_points_is_converted() -> None:
    """Pillow's AVIF plugin does not pass on the file's nclx box: it is read from the file. An AVIF written with
    sRGB's code points (1, 13, 6) and the same file saying Display P3 (12): only the second is converted."""
    buffer = io.BytesIO()
    Image.fromarray(smooth_rgb(48, 64)).save(buffer, "AVIF", quality=100)
    srgb_file = buffer.getvalue()
    at = srgb_file.find(b"colrnclx")
    assert at > 0 and srgb_file[at + 8:at + 10] == b"\x00\x01"
    p3_file = srgb_file[:at + 8] + b"\x00\x0c" + srgb_file[at + 10:]
    as_srgb, as_p3 = images.load_full(srgb_file), images.load_full(p3_file)
    assert not any("primaries" in n for n in as_srgb.notes)
    assert any("Display P3" in n and "sRGB" in n for n in as_p3.notes), as_p3.notes
    # P3's red and green reach beyond sRGB's: converted, the reds grow more saturated (larger R - G)
    before, after = (images.to_uint8(x.tensor)[0].astype(int) for x in (as_srgb, as_p3))
    assert (after[..., 0] - after[..., 1]).mean() > (before[..., 0] - before[..., 1]).mean() + 3
