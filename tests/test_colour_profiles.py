"""editing.images: pixels under an embedded ICC profile other than sRGB arrive in sRGB.

The profiles are written here (ICC v2 matrix/TRC and grey TRC profiles, built from chromaticities), and the
conversion LittleCMS makes is checked against the colorimetry done again in numpy: decode the TRC, the profile's
matrix to the D50 connection space, the inverse of sRGB's (Bradford-adapted from D65, as ICC sRGB profiles are),
encode with sRGB's curve.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image, ImageCms

from editing.images import load_full, load_image

D50 = np.array([0.9642, 1.0, 0.8249])
D65_XY = (0.3127, 0.3290)
SRGB_PRIMARIES = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
ADOBE_PRIMARIES = ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06))  # Adobe RGB (1998), gamma 563/256
ADOBE_GAMMA = 563 / 256
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])


# -- colorimetry --------------------------------------------------------------------------------------


def xyz_of(xy: tuple[float, float]) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def rgb_to_xyz_d50(primaries: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Linear RGB -> XYZ under D50 (columns: the colorants an ICC profile stores), white D65 adapted by Bradford."""
    columns = np.stack([xyz_of(p) for p in primaries], axis=1)
    matrix = columns * np.linalg.solve(columns, xyz_of(D65_XY))
    cone_d65, cone_d50 = BRADFORD @ xyz_of(D65_XY), BRADFORD @ D50
    adapt = np.linalg.inv(BRADFORD) @ np.diag(cone_d50 / cone_d65) @ BRADFORD
    return adapt @ matrix


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def adobe_to_srgb(pixels: np.ndarray) -> np.ndarray:
    """8-bit Adobe RGB -> sRGB in [0, 255] (float), relative colorimetric: out-of-gamut channels clip."""
    linear = (pixels.astype(np.float64) / 255.0) ** ADOBE_GAMMA
    xyz = linear @ rgb_to_xyz_d50(ADOBE_PRIMARIES).T
    return 255.0 * srgb_encode(xyz @ np.linalg.inv(rgb_to_xyz_d50(SRGB_PRIMARIES)).T)


# -- ICC v2 profiles ----------------------------------------------------------------------------------


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz_tag(xyz: np.ndarray) -> bytes:
    return b"XYZ " + bytes(4) + b"".join(_s15(v) for v in xyz)


def _gamma_tag(gamma: float) -> bytes:
    return b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)


def _description_tag(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_)) + ascii_ + bytes(8) + bytes(3) + bytes(67)


def icc_profile(space: bytes, name: str, tags: list[tuple[bytes, bytes]]) -> bytes:
    """An ICC v2 display profile: the 128-byte header, the tag table, the tags (4-byte aligned)."""
    tags = [(b"desc", _description_tag(name)), (b"cprt", b"text" + bytes(4) + b"none\0"),
            (b"wtpt", _xyz_tag(D50)), *tags]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for signature, body in tags:
        body += bytes(-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + bytes(4) + struct.pack(">I", 0x02100000) + b"mntr" + space
              + b"XYZ " + bytes(12) + b"acsp" + bytes(28) + b"".join(_s15(v) for v in D50) + bytes(48))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def rgb_profile(name: str, primaries: tuple[tuple[float, float], ...], gamma: float) -> bytes:
    colorants = rgb_to_xyz_d50(primaries).T
    return icc_profile(b"RGB ", name, [(b"rXYZ", _xyz_tag(colorants[0])), (b"gXYZ", _xyz_tag(colorants[1])),
                                       (b"bXYZ", _xyz_tag(colorants[2])), (b"rTRC", _gamma_tag(gamma)),
                                       (b"gTRC", _gamma_tag(gamma)), (b"bTRC", _gamma_tag(gamma))])


def grey_profile(name: str, gamma: float) -> bytes:
    return icc_profile(b"GRAY", name, [(b"kTRC", _gamma_tag(gamma))])


def png(image: Image.Image, profile: bytes | None) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **({"icc_profile": profile} if profile else {}))
    return buffer.getvalue()


def every_colour_grid() -> np.ndarray:
    """(32, 32 * 32, 3) uint8: every 8th level of each channel, with 255."""
    levels = np.append(np.arange(0, 256, 8), 255)[1:].astype(np.uint8)
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    return np.stack([r, g, b], -1).reshape(len(levels), -1, 3)


def as_uint8(tensor) -> np.ndarray:
    return np.round((tensor[0].permute(1, 2, 0).numpy() + 1) * 127.5)


ADOBE = rgb_profile("Adobe RGB (1998) built here", ADOBE_PRIMARIES, ADOBE_GAMMA)


# -- tests ---------------------------------------------------------------------------------------------


def test_the_profiles_written_here_read_as_written() -> None:
    profile = ImageCms.ImageCmsProfile(io.BytesIO(ADOBE))
    assert ImageCms.getProfileDescription(profile).strip() == "Adobe RGB (1998) built here"
    assert profile.profile.xcolor_space.strip() == "RGB"
    srgb_red = rgb_to_xyz_d50(SRGB_PRIMARIES)[:, 0]  # sRGB's colorants under D50, as published (IEC 61966-2-1)
    np.testing.assert_allclose(srgb_red, [0.4361, 0.2225, 0.0139], atol=2e-4)


def test_adobe_rgb_is_converted_to_srgb_as_the_colorimetry_says() -> None:
    grid = every_colour_grid()
    loaded = load_full(png(Image.fromarray(grid), ADOBE))
    got, expected = as_uint8(loaded.tensor), adobe_to_srgb(grid)
    error = np.abs(got - expected)
    assert error.max() <= 2.0 and error.mean() < 0.6, (error.max(), error.mean())
    assert np.abs(got - grid).max() > 40  # not left as it was: Adobe RGB's greens are far outside sRGB's
    assert any("Adobe RGB (1998) built here" in n and "sRGB" in n for n in loaded.notes), loaded.notes


def test_the_square_path_converts_too() -> None:
    grid = every_colour_grid()[:, :32]  # 32 x 32
    converted = load_image(png(Image.fromarray(grid), ADOBE), 32)
    assert np.abs(as_uint8(converted.tensor) - adobe_to_srgb(grid)).max() <= 2.0
    assert any("converted from its colour profile" in n for n in converted.notes)


def test_an_srgb_profile_leaves_the_pixels_exactly() -> None:
    grid = every_colour_grid()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    plain, profiled = load_full(png(Image.fromarray(grid), None)), load_full(png(Image.fromarray(grid), srgb))
    assert np.array_equal(as_uint8(profiled.tensor), grid)
    assert np.array_equal(plain.tensor.numpy(), profiled.tensor.numpy())
    assert profiled.notes == []


def test_alpha_is_kept_through_the_conversion() -> None:
    rng = np.random.default_rng(0)
    rgba = np.concatenate([rng.integers(0, 256, (24, 40, 3)), rng.integers(1, 255, (24, 40, 1))], -1)
    loaded = load_full(png(Image.fromarray(rgba.astype(np.uint8), "RGBA"), ADOBE))
    assert loaded.alpha is not None and np.array_equal(loaded.alpha, rgba[..., 3])
    assert any("sRGB" in n for n in loaded.notes)


def test_a_grey_profile_keeps_a_grey_image_grey() -> None:
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    loaded = load_full(png(Image.fromarray(levels, "L"), grey_profile("Gray gamma 1.8 built here", 1.8)))
    got = as_uint8(loaded.tensor)
    assert np.array_equal(got[..., 0], got[..., 1]) and np.array_equal(got[..., 0], got[..., 2])
    expected = 255.0 * srgb_encode((levels / 255.0) ** 1.8)  # a neutral's luminance is its linear value
    assert np.abs(got[..., 0] - expected).max() <= 1.5
    assert any("Gray gamma 1.8 built here" in n for n in loaded.notes)


@pytest.mark.parametrize("profile, words", [
    (b"not a profile at all" * 8, "could not be read"),
    (grey_profile("a grey profile", 2.2), "does not fit its RGB pixels"),
])
def test_a_profile_that_cannot_apply_is_ignored_with_a_note(profile: bytes, words: str) -> None:
    grid = every_colour_grid()[:, :40]
    loaded = load_full(png(Image.fromarray(grid), profile))
    assert np.array_equal(as_uint8(loaded.tensor), grid)
    assert any(words in n and "read as sRGB" in n for n in loaded.notes), loaded.notes


def test_a_jpeg_with_a_profile_is_converted() -> None:
    grid = every_colour_grid()[:, :64]
    buffer = io.BytesIO()
    Image.fromarray(grid).save(buffer, "JPEG", quality=100, subsampling=0, icc_profile=ADOBE)
    loaded = load_full(buffer.getvalue())
    assert np.abs(as_uint8(loaded.tensor) - adobe_to_srgb(grid)).mean() < 2.0
    assert any("converted from its colour profile" in n for n in loaded.notes)


def test_a_heic_with_a_profile_is_converted() -> None:
    """A phone's HEIC carries its profile (an iPhone's Display P3) as a JPEG does: converted the same way."""
    from tests.test_images import heic

    grid = every_colour_grid()[:, :64]
    loaded = load_full(heic(Image.fromarray(grid), icc_profile=ADOBE))
    converted, unconverted = (float(np.abs(as_uint8(loaded.tensor) - g).mean()) for g in (adobe_to_srgb(grid), grid))
    assert converted < 3.0 and unconverted > 3 * converted, (converted, unconverted)
    assert any("converted from its colour profile" in n for n in loaded.notes)


# -- CMYK ----------------------------------------------------------------------------------------------


def cmyk_profile(name: str, points: int = 17) -> bytes:
    """A CMYK print profile (A2B0, lut16 to XYZ on a `points`^4 grid) of a press whose inks filter linear light:
    r = (1 - c)(1 - k), g = (1 - m)(1 - k), b = (1 - y)(1 - k) in sRGB's primaries. LittleCMS interpolates a 4-input
    grid linearly in the first and tetrahedrally in the rest, where the products of m or y with k bend: off the grid
    points it is within a level or two of the formula."""
    axis = np.linspace(0.0, 1.0, points)
    nodes = np.stack(np.meshgrid(axis, axis, axis, axis, indexing="ij"), -1).reshape(-1, 4)  # c varies slowest
    xyz = (1 - nodes[:, :3]) * (1 - nodes[:, 3:]) @ rgb_to_xyz_d50(SRGB_PRIMARIES).T
    identity = b"".join(_s15(v) for v in np.eye(3).ravel())
    lut = (b"mft2" + bytes(4) + bytes([4, 3, points, 0]) + identity + struct.pack(">HH", 2, 2)
           + struct.pack(">8H", *[0, 65535] * 4) + np.round(xyz * 32768).astype(">u2").tobytes()  # u1.15 XYZ
           + struct.pack(">6H", *[0, 65535] * 3))
    profile = bytearray(icc_profile(b"CMYK", name, [(b"A2B0", lut)]))
    profile[12:16] = b"prtr"  # an output device's profile, as a print profile is
    return bytes(profile)


def cmyk_to_srgb(cmyk: np.ndarray) -> np.ndarray:
    """8-bit CMYK under cmyk_profile -> sRGB in [0, 255] (float)."""
    ink = cmyk.astype(np.float64) / 255.0
    return 255.0 * srgb_encode((1 - ink[..., :3]) * (1 - ink[..., 3:]))


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk_is_converted_under_its_own_profile(fmt: str) -> None:
    """Not Pillow's formula (255 - c - k): the press's colours, from the profile, as LittleCMS converts them."""
    levels = np.arange(0, 256, 51, dtype=np.uint8)
    grid = np.stack(np.meshgrid(levels, levels, levels, levels, indexing="ij"), -1).reshape(36, 36, 4)
    buffer = io.BytesIO()
    Image.fromarray(grid, "CMYK").save(buffer, fmt, icc_profile=cmyk_profile("a press built here"),
                                       **({"quality": 100} if fmt == "JPEG" else {}))
    loaded = load_full(buffer.getvalue())
    got, expected = as_uint8(loaded.tensor), cmyk_to_srgb(grid)
    formula = np.asarray(Image.fromarray(grid, "CMYK").convert("RGB"), dtype=np.float64)
    error = np.abs(got - expected)
    assert error.mean() < (0.8 if fmt == "TIFF" else 2.0) and error.max() <= 8, (error.mean(), error.max())  # JPEG: lossy
    assert np.abs(got - formula).mean() > 20  # what the upload used to get
    assert any("a press built here" in n and "sRGB" in n for n in loaded.notes), loaded.notes
    assert not any("plain formula" in n for n in loaded.notes)


def test_cmyk_without_a_profile_keeps_the_formula() -> None:
    buffer = io.BytesIO()
    grid = np.random.default_rng(1).integers(0, 256, (16, 16, 4)).astype(np.uint8)
    Image.fromarray(grid, "CMYK").save(buffer, "TIFF")
    loaded = load_full(buffer.getvalue())
    assert np.array_equal(as_uint8(loaded.tensor), np.asarray(Image.fromarray(grid, "CMYK").convert("RGB")))
    assert "converted CMYK to RGB" in loaded.notes
