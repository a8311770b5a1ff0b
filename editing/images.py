"""Convert user uploads into model-resolution tensors and masks, with a note for every step taken.

The one place where files, bytes, PIL images and arrays from users become engine inputs. Every
problem a user can cause comes out as an `InputError` (a `ValueError`) with a message fit to show.

Rules, in order:
1. Sources: a path, bytes, a PIL image, a numpy array (or a Gradio file dict with a "path"). Files are
   limited in bytes, and decoded only from a short list of formats (no EPS, which would run Ghostscript); a
   phone's HEIC through pillow-heif's Pillow plugin (libheif), where it is installed.
2. The size in the header is checked before any pixel is decoded: at most `max_pixels` pixels and an
   aspect ratio of at most 20:1 (a thinner image would shrink to a line; we refuse and say to crop it
   rather than pad it into an unreadable sliver). No global PIL setting is changed. At full size (`load_full`),
   an image over `max_full_pixels` (a 48-megapixel phone photo) is reduced to it while it is converted.
3. Animated or multi-page files give their first frame; EXIF orientation is applied.
4. Every mode becomes RGB in [0, 1]: 16-bit and float images keep their precision, CMYK/palette/LA are
   converted, and transparency is composited on white, like the training data. Pixels under an embedded colour
   profile other than sRGB (a phone's Display P3, a camera's Adobe RGB, a print's CMYK) or, in a HEIC or AVIF,
   described by other H.273 primaries are converted to sRGB, the colour space of the training photos and of every
   file written back (which carries no profile, so is read as sRGB).
5. The image is centre-padded with white to a square and resized to R x R by exact area averaging
   (source pixels weighted by their overlap with each output pixel): a box filter when shrinking, and when
   enlarging by a whole factor every source pixel becomes a crisp block (nothing overshoots, no ringing).
   Padding is never materialised, so thin, huge images cost no extra memory.
Masks follow the same geometry, but a cell is filled when any source pixel in it is, so thin strokes survive.
"""

from __future__ import annotations

import functools
import io
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import ExifTags, Image, ImageCms, ImageOps, JpegImagePlugin, UnidentifiedImageError

MAX_PIXELS = 80_000_000  # decoded at most (a 64-megapixel phone's photo, 9248x6936, is 64.1M)
MAX_FULL_PIXELS = 40_000_000  # edited at full size at most: load_full reduces a larger image to it
MAX_BYTES = 50 * 2**20
MAX_ASPECT = 20.0
# Formats decoded from uploads (Pillow's pure decoders or its bundled codecs; MPO is a phone JPEG; HEIF, a
# phone's HEIC, is pillow-heif's plugin).
FORMATS = ("PNG", "JPEG", "MPO", "HEIF", "GIF", "WEBP", "BMP", "TIFF", "PPM", "AVIF")
READABLE = "PNG, JPEG, HEIC, WebP, AVIF, GIF, BMP or TIFF"  # what messages offer
_CHUNK_VALUES = 1 << 22  # floats converted at once while resizing (16 MiB)
_EXIF_ORIENTATION = 0x0112
# Exif-IFD tags a result does not keep: the upload's size (a result has its own), the camera maker's private block
# (offsets into the original file, previews of the unedited picture); its colour space becomes sRGB's (1).
_EXIF_DROPPED = (0xA002, 0xA003, 0x927C)
_EXIF_COLOR_SPACE = 0xA001
_EXIF_MOST = 60_000  # bytes: a JPEG's EXIF segment holds at most 65,533
_SIGNATURES = {b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"BM": "BMP", b"II*\x00": "TIFF",
               b"MM\x00*": "TIFF"}
# ISO base media files (HEIF, AVIF) say what they are in their first box: 'ftyp' and a brand at bytes 4-12.
_HEIF_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"heim": "HEIC", b"heis": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF",
                b"avif": "AVIF", b"avis": "AVIF"}
# A profile whose conversion moves no colour of an 8-bit grid by more than this many levels is sRGB under another
# name (camera makers', GIMP's, the compact "c2"): left alone, as converting it would only re-round the pixels.
SRGB_TOLERANCE = 1
# What LittleCMS converts here, by profile space.
_PROFILE_MODES = {"RGB": ("RGB", "RGBA"), "GRAY": ("L", "LA"), "CMYK": ("CMYK",)}
# ITU-T H.273 colour primaries a HEIC or AVIF may name instead of carrying a profile: the (x, y) chromaticities of
# red, green, blue and white, with a name for the notes. 1 (BT.709) is sRGB's; 2 is "unspecified", read as sRGB.
_D65 = (0.3127, 0.3290)
_H273_PRIMARIES = {
    4: ("BT.470 System M", ((0.67, 0.33), (0.21, 0.71), (0.14, 0.08)), (0.310, 0.316)),
    5: ("BT.601 (625 lines)", ((0.64, 0.33), (0.29, 0.60), (0.15, 0.06)), _D65),
    6: ("BT.601 (525 lines)", ((0.630, 0.340), (0.310, 0.595), (0.155, 0.070)), _D65),
    7: ("SMPTE 240M", ((0.630, 0.340), (0.310, 0.595), (0.155, 0.070)), _D65),
    9: ("BT.2020", ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)), _D65),
    11: ("DCI-P3", ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), (0.314, 0.351)),
    12: ("Display P3", ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), _D65),
    22: ("EBU 3213", ((0.630, 0.340), (0.295, 0.605), (0.155, 0.077)), _D65),
}
_SRGB_PRIMARIES = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
# H.273 transfer characteristics: the SDR curves (BT.709's family, sRGB's, unspecified) are read with sRGB's, as the
# pixels of such a file with sRGB's primaries are; pure powers as they are. PQ and HLG (HDR) need tone mapping.
_H273_SRGB_CURVES = (1, 2, 6, 13, 14, 15)
_H273_GAMMAS = {4: 2.2, 5: 2.8, 8: 1.0}
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
_ORIENTATIONS = {2: "mirrored", 3: "rotated 180°", 4: "flipped", 5: "transposed", 6: "rotated 90° clockwise",
                 7: "transversed", 8: "rotated 90° counter-clockwise"}


class InputError(ValueError):
    """Bad user input; the message is meant for the user and names what to change."""


@dataclass(frozen=True)
class Converted:
    """An image ready for the engine: (1, 3, R, R) float32 in [-1, 1], and what was done to it."""

    tensor: torch.Tensor
    notes: list[str]


@dataclass(frozen=True)
class ConvertedMask:
    """A mask ready for the engine: (1, 1, R, R) bool, True = pixels to fill, and what was done to it."""

    mask: torch.Tensor
    notes: list[str]


@dataclass(frozen=True)
class _Raster:
    """Decoded pixels (H, W, C) in their own dtype; value / scale is in [0, 1]; the last channel may be alpha."""

    array: np.ndarray
    scale: float
    has_alpha: bool

    @property
    def colours(self) -> int:
        return self.array.shape[2] - int(self.has_alpha)


# -- sources ----------------------------------------------------------------------------------------


def _read_source(value: Any, max_bytes: int) -> tuple[Image.Image | np.ndarray, str]:
    """Open `value` lazily (PIL reads only the header); returns it with a name for messages."""
    if isinstance(value, dict) and value.get("path"):  # a Gradio FileData dict
        value = value["path"]
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InputError("no image was given: upload one")
    if isinstance(value, Image.Image):
        return value, "the image"
    if isinstance(value, np.ndarray):
        return value, "the array"
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        name = f"'{path.name}'"
        if not path.is_file():
            raise InputError(f"{name}: file not found")
        size = path.stat().st_size
        if size == 0:
            raise InputError(f"{name} is empty (0 bytes): upload the image again")
        if size > max_bytes:
            raise InputError(f"{name} is {size / 2**20:.1f} MiB, more than the {max_bytes / 2**20:.0f} MiB accepted")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise InputError(f"{name} could not be read ({e.strerror or e})") from None
        return _open_bytes(data, name), name
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if not data:
            raise InputError("the upload is empty (0 bytes)")
        if len(data) > max_bytes:
            raise InputError(f"the upload is {len(data) / 2**20:.1f} MiB, more than the "
                             f"{max_bytes / 2**20:.0f} MiB accepted")
        return _open_bytes(data, "the upload"), "the upload"
    raise InputError(f"expected an image file, bytes, a PIL image or a numpy array, got {type(value).__name__}")


def _looks_like_text(data: bytes) -> bool:
    head = data[:512]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in text)


@functools.cache
def _register_heif() -> bool:
    """Register pillow-heif's HEIF opener with Pillow, once; False where pillow-heif is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener(thumbnails=False)  # the primary image only; its thumbnails are never read
    return True


def _signature(data: bytes) -> str | None:
    """The format `data` says it is in its first bytes, for a message about a file that did not open."""
    if data[4:8] == b"ftyp":
        return _HEIF_BRANDS.get(data[8:12])
    return next((fmt for magic, fmt in _SIGNATURES.items() if data.startswith(magic)), None)


def _open_bytes(data: bytes, name: str) -> Image.Image:
    heif = _register_heif()
    Image.init()  # register Pillow's plugins (what Image.open does itself) so FORMATS can be checked
    formats = [f for f in FORMATS if f in Image.OPEN]
    try:
        image = Image.open(io.BytesIO(data), formats=formats)
        if image.format == "AVIF" and "nclx_profile" not in image.info:  # Pillow's AVIF plugin does not say
            image.info["nclx_profile"] = _nclx_box(data)
        return image
    except Image.DecompressionBombError:
        raise InputError(f"{name} claims to be far too large to decode safely; scale it down first") from None
    except UnidentifiedImageError:
        signature = _signature(data)
        if signature in ("HEIC", "HEIF") and not heif:
            raise InputError(f"{name} is a {signature} file, which needs the pillow-heif package (in "
                             "requirements.txt); or save it as JPEG or PNG") from None
        if signature:
            article = "an" if signature.startswith("A") else "a"
            raise InputError(f"{name} starts like {article} {signature} file but is corrupt or truncated") from None
        kind = " (it looks like a text file)" if _looks_like_text(data) else ""
        raise InputError(f"{name} is not an image this studio can read{kind}; use {READABLE}") from None
    except Exception as e:  # noqa: BLE001 - Pillow's header parsers raise many types on corrupt files
        raise InputError(f"{name} is corrupt: its header could not be read ({_short(e)})") from None


def _nclx_box(data: bytes) -> dict[str, int]:
    """The H.273 code points of an ISO base media file's first 'colr' box of type 'nclx' (ISO/IEC 23008-12:
    primaries, transfer and matrix as 16-bit integers, then the full-range bit); {} where there is none."""
    at = data.find(b"colrnclx", 0, 1 << 16)  # in the 'meta' box, which leads the file
    if at < 0 or at + 15 > len(data):
        return {}
    primaries, transfer, matrix = (int.from_bytes(data[at + 8 + 2 * i:at + 10 + 2 * i], "big") for i in range(3))
    return {"color_primaries": primaries, "transfer_characteristics": transfer, "matrix_coefficients": matrix,
            "full_range_flag": data[at + 14] >> 7}


def _short(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _check_geometry(width: int, height: int, name: str, max_pixels: int, max_aspect: float = MAX_ASPECT) -> None:
    if width < 1 or height < 1:
        raise InputError(f"{name} has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise InputError(f"{name} is {width}x{height} = {width * height:,} pixels, more than the "
                         f"{max_pixels:,} accepted; scale it down first")
    ratio = max(width, height) / min(width, height)
    if ratio > max_aspect:
        raise InputError(f"{name} is {width}x{height}: an aspect ratio of {ratio:.0f}:1 is beyond the "
                         f"{MAX_ASPECT:.0f}:1 accepted; crop it closer to a square first")


def _decode(image: Image.Image, name: str, resolution: int | None, max_pixels: int, notes: list[str],
            owned: bool, max_aspect: float = MAX_ASPECT) -> Image.Image:
    """Check the header size, take the first frame, decode (JPEGs at a reduced scale when possible, unless
    `resolution` is None: full size), apply EXIF."""
    _check_geometry(image.width, image.height, name, max_pixels, max_aspect)
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and image.format == "HEIF":  # opened at its primary image, the one a phone shows
        notes.append(f"HEIC with {frames} images: used its primary image")
    elif frames > 1 and image.format == "MPO":  # the first image is the photo; the others, a phone's extras
        notes.append(f"a phone's JPEG with {frames - 1} more image(s) beside the photo (an HDR gain map, a depth "
                     "map): used the photo")
    elif frames > 1:
        kind = {"GIF": "animated GIF", "PNG": "animated PNG", "WEBP": "animated WebP", "TIFF": "multi-page TIFF"}
        notes.append(f"{kind.get(image.format or '', 'multi-frame image')}: used the first of {frames} frames")
        try:
            image.seek(0)
        except (EOFError, OSError, ValueError) as e:
            raise InputError(f"{name} is corrupt: its first frame could not be read ({_short(e)})") from None
    if owned and resolution is not None and image.format in ("JPEG", "MPO") and image.mode in ("RGB", "L", "CMYK"):
        before = image.size
        image.draft(image.mode, (resolution, resolution))  # DCT scaling: 1/2, 1/4 or 1/8, never below R
        if image.size != before:
            notes.append(f"decoded the JPEG at reduced scale ({before[0]}x{before[1]} -> "
                         f"{image.width}x{image.height})")
    try:
        image.load()
    except Exception as e:  # noqa: BLE001 - truncated data surfaces as OSError, SyntaxError, zlib errors...
        raise InputError(f"{name} is corrupt or truncated: its pixels could not be decoded ({_short(e)})") from None
    try:
        orientation = int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block is not worth refusing the image for
        orientation = 1
        notes.append("the EXIF data is unreadable and was ignored")
    if orientation in _ORIENTATIONS:
        try:
            image = ImageOps.exif_transpose(image)
            notes.append(f"rotated per EXIF orientation {orientation} ({_ORIENTATIONS[orientation]})")
        except Exception:  # noqa: BLE001
            notes.append(f"the EXIF orientation {orientation} could not be applied and was ignored")
    return image


# -- pixels -----------------------------------------------------------------------------------------


def _float_to_unit(array: np.ndarray, name: str, notes: list[str]) -> np.ndarray:
    """Float pixels in [0, 1], [-1, 1] or [0, 255] -> float32 in [0, 1]; NaN/inf and other ranges refused."""
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise InputError(f"{name} contains NaN or infinite values")
    low, high = float(array.min()), float(array.max())
    if low >= 0 and high <= 1:
        return array
    if low >= -1 and high <= 1:
        notes.append("float values in [-1, 1]: mapped to [0, 1]")
        return (array + 1) / 2
    if low >= 0 and high <= 255:
        notes.append("float values in [0, 255]: divided by 255")
        return array / 255
    raise InputError(f"{name} has float values from {low:g} to {high:g}; expected [0, 1] (or [-1, 1], [0, 255])")


def _int_raster(array: np.ndarray, name: str, notes: list[str], has_alpha: bool) -> _Raster:
    """Integer pixels: uint8 as is, uint16 over 65535; wider integer types by the range their values use."""
    if array.dtype == np.uint8:
        return _Raster(array, 255.0, has_alpha)
    if array.dtype == np.uint16 or array.dtype == np.dtype(">u2"):
        notes.append("16-bit image: values scaled from 0-65535")
        return _Raster(array.astype(np.uint16, copy=False), 65535.0, has_alpha)
    low, high = int(array.min()), int(array.max())
    if low < 0 or high > 65535:
        raise InputError(f"{name} has integer values from {low} to {high}; expected 0-255 or 0-65535")
    if high <= 255:
        notes.append(f"{array.dtype} values within 0-255: read as 8-bit")
        return _Raster(array.astype(np.uint8), 255.0, has_alpha)
    notes.append(f"{array.dtype} values within 0-65535: read as 16-bit")
    return _Raster(array.astype(np.uint16), 65535.0, has_alpha)


def _array_raster(array: np.ndarray, name: str, notes: list[str]) -> _Raster:
    """A user's array: HxW, HxWx1, HxWx2 (LA), HxWx3 or HxWx4 of bool, int, uint or float."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise InputError(f"{name} has shape {tuple(array.shape)}; expected HxW, HxWx3 or HxWx4 (channels last)")
    has_alpha = array.shape[2] in (2, 4)
    if array.dtype == np.bool_:
        return _Raster(array.astype(np.uint8) * 255, 255.0, has_alpha)
    if np.issubdtype(array.dtype, np.floating):
        return _Raster(_float_to_unit(array, name, notes), 1.0, has_alpha)
    if np.issubdtype(array.dtype, np.integer):
        return _int_raster(array, name, notes, has_alpha)
    raise InputError(f"{name} has dtype {array.dtype}; expected uint8, uint16 or float pixels")


def _pil_raster(image: Image.Image, name: str, notes: list[str]) -> _Raster:
    """Any PIL mode -> a raster of grey or RGB, with alpha when the image has any transparency."""
    mode = image.mode
    if mode.startswith("I;16"):
        notes.append("16-bit grayscale: values scaled from 0-65535")
        return _Raster(np.asarray(image).astype(np.uint16)[:, :, None], 65535.0, False)
    if mode == "I":
        return _int_raster(np.asarray(image)[:, :, None], name, notes, False)
    if mode == "F":
        return _Raster(_float_to_unit(np.asarray(image), name, notes)[:, :, None], 1.0, False)
    if mode == "P":
        transparent = "transparency" in image.info
        image = image.convert("RGBA" if transparent else "RGB")
        notes.append("palette image with transparency: converted to RGBA" if transparent
                     else "palette image: converted to RGB")
    elif mode in ("PA", "RGBa", "La", "RGBX"):
        image = image.convert("RGB" if mode == "RGBX" else "RGBA")
    elif mode == "1":
        image = image.convert("L")
        notes.append("1-bit image: converted to grayscale")
    elif mode == "CMYK" and _profile_space(image) == "CMYK":
        pass  # converted by LittleCMS under its own profile (_to_srgb): a print profile is not Pillow's formula
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
        notes.append(f"converted {mode} to RGB")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        try:
            image = image.convert("RGBA")
        except (ValueError, OSError) as e:
            raise InputError(f"{name} has an unsupported image mode {mode!r} ({_short(e)})") from None
        notes.append(f"converted {mode} to RGBA")
    image = _to_srgb(image, notes)
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    return _Raster(array, 255.0, image.mode in ("LA", "RGBA"))


def _profile_grid(space: str) -> Image.Image:
    """Colours to compare a profile's conversion with sRGB on: a 17^3 grid of RGB, or all 256 greys."""
    if space == "GRAY":
        return Image.fromarray(np.arange(256, dtype=np.uint8)[None], "L")
    levels = np.linspace(0, 255, 17).round().astype(np.uint8)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(1, -1, 3)
    return Image.fromarray(grid, "RGB")


def _profile_space(image: Image.Image) -> str | None:
    """The colour space of `image`'s embedded ICC profile ("RGB", "GRAY", "CMYK", ...); None without a readable one."""
    icc = image.info.get("icc_profile")
    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile.xcolor_space.strip() if icc else None
    except Exception:  # noqa: BLE001 - as in _to_srgb, which says so in a note
        return None


def _to_srgb(image: Image.Image, notes: list[str]) -> Image.Image:
    """`image` (RGB, RGBA, L or LA; CMYK under a CMYK profile) under its embedded ICC profile -> its pixels in sRGB,
    without the profile. LittleCMS, relative colorimetric with black-point compensation (what an editor's "convert to
    sRGB" does): colours inside sRGB keep their appearance, those outside it clip to its gamut. An sRGB profile under
    another name is left alone (SRGB_TOLERANCE); one that cannot be read or applied is ignored with a note."""
    icc = image.info.get("icc_profile")
    if not icc:  # a HEIC's or AVIF's colour may be described by code points (ITU-T H.273, 'nclx') instead
        return _h273_to_srgb(image, image.info.get("nclx_profile") or {}, notes)
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space.strip()
        name = ImageCms.getProfileDescription(profile).strip() or "unnamed"
    except Exception as e:  # noqa: BLE001 - LittleCMS raises OSError, PyCMSError or TypeError on corrupt profiles
        notes.append(f"its embedded colour profile could not be read ({_short(e)}) and was ignored: read as sRGB")
        return image
    if space == "CMYK" and image.mode != "CMYK":  # CMYK pixels converted before, by Pillow's formula (_pil_raster)
        notes.append(f"its CMYK colour profile ({name}) was not applied: CMYK is converted by a plain formula")
        return image
    if image.mode not in _PROFILE_MODES.get(space, ()):
        notes.append(f"its {space or 'unknown'} colour profile ({name}) does not fit its {image.mode} pixels and "
                     "was ignored: read as sRGB")
        return image
    srgb = ImageCms.createProfile("sRGB")

    def convert(pixels: Image.Image) -> Image.Image:
        return ImageCms.profileToProfile(pixels, profile, srgb, renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
                                         outputMode="RGB" if pixels.mode in ("L", "CMYK") else pixels.mode,
                                         flags=ImageCms.Flags.BLACKPOINTCOMPENSATION)

    try:
        grid = _profile_grid(space) if space != "CMYK" else None  # no CMYK profile is sRGB under another name
        if grid is not None and np.abs(np.asarray(convert(grid).convert(grid.mode), dtype=np.int16)
                                       - np.asarray(grid)).max() <= SRGB_TOLERANCE:
            return image
        if image.mode in ("L", "LA"):  # a grey profile maps greys to neutral sRGB: channels equal, kept as grey
            converted = convert(image.getchannel("L")).convert("L")
            if image.mode == "LA":
                converted = Image.merge("LA", (converted, image.getchannel("A")))
        else:
            converted = convert(image)
    except Exception as e:  # noqa: BLE001 - as above, for profiles LittleCMS reads but cannot build a transform from
        if image.mode == "CMYK":
            notes.append(f"its CMYK colour profile ({name}) could not be applied ({_short(e)}): converted CMYK to RGB "
                         "by a plain formula")
            return image.convert("RGB")
        notes.append(f"its colour profile ({name}) could not be applied ({_short(e)}) and was ignored: read as sRGB")
        return image
    converted.info.pop("icc_profile", None)
    notes.append(f"converted from its colour profile ({name}) to sRGB, the model's colour space (colours beyond "
                 "sRGB clip to it)")
    return converted


def _xyz(xy: tuple[float, float]) -> np.ndarray:
    return np.array([xy[0] / xy[1], 1.0, (1 - xy[0] - xy[1]) / xy[1]])


def _rgb_to_xyz(primaries: tuple[tuple[float, float], ...], white: tuple[float, float]) -> np.ndarray:
    """Linear RGB -> XYZ: the primaries' XYZ as columns, scaled so that RGB (1, 1, 1) is the white."""
    columns = np.stack([_xyz(p) for p in primaries], axis=1)
    return columns * np.linalg.solve(columns, _xyz(white))


def srgb_to_linear(unit: torch.Tensor) -> torch.Tensor:
    """sRGB values in [0, 1] -> linear light (IEC 61966-2-1)."""
    return torch.where(unit <= 0.04045, unit / 12.92, ((unit + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    """Linear light, clipped to [0, 1] -> sRGB values in [0, 1]."""
    linear = linear.clamp(0.0, 1.0)
    return torch.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def _h273_to_srgb(image: Image.Image, nclx: dict, notes: list[str]) -> Image.Image:
    """`image` (8-bit) in the H.273 colour primaries and transfer of its `nclx` description -> sRGB, relative
    colorimetric: linear light through the primaries' matrices (a white other than D65 adapted by Bradford, as
    ICC profiles are), colours outside sRGB clipped to it. sRGB's primaries, and grey images, are left alone."""
    code, transfer = int(nclx.get("color_primaries", 1)), int(nclx.get("transfer_characteristics", 2))
    if code in (1, 2) or image.mode not in ("RGB", "RGBA"):
        return image
    if code not in _H273_PRIMARIES:
        notes.append(f"its colour primaries (H.273 code {code}) are not ones this studio knows: read as sRGB")
        return image
    name, primaries, white = _H273_PRIMARIES[code]
    if transfer not in _H273_SRGB_CURVES and transfer not in _H273_GAMMAS:
        notes.append(f"its colours ({name} primaries, H.273 transfer {transfer}: HDR, which needs tone mapping) were "
                     "not converted: read as sRGB")
        return image
    adapt = np.linalg.inv(_BRADFORD) @ np.diag(_BRADFORD @ _xyz(_D65) / (_BRADFORD @ _xyz(white))) @ _BRADFORD
    matrix = np.linalg.inv(_rgb_to_xyz(_SRGB_PRIMARIES, _D65)) @ adapt @ _rgb_to_xyz(primaries, white)
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    decode = (levels ** _H273_GAMMAS[transfer] if transfer in _H273_GAMMAS else srgb_to_linear(levels)).float()
    to_srgb = torch.from_numpy(matrix.T).float()
    pixels = np.array(image)  # a writable copy, converted in place a band of rows at a time
    rows = max(1, _CHUNK_VALUES // (3 * pixels.shape[1]))
    for top in range(0, pixels.shape[0], rows):
        band = pixels[top:top + rows, :, :3]
        linear = decode[torch.from_numpy(band).long()] @ to_srgb
        band[...] = (255.0 * linear_to_srgb(linear)).round().to(torch.uint8).numpy()
    notes.append(f"converted from its colour primaries ({name}, H.273 code {code}) to sRGB, the model's colour space "
                 "(colours beyond sRGB clip to it)")
    return Image.fromarray(pixels, image.mode)


def _drop_opaque_alpha(raster: _Raster, notes: list[str]) -> _Raster:
    """Alpha that is opaque everywhere is dropped; otherwise say that transparency becomes white."""
    if not raster.has_alpha:
        return raster
    alpha = raster.array[:, :, -1]
    if float(alpha.min()) >= raster.scale:
        return _Raster(raster.array[:, :, :-1], raster.scale, False)
    notes.append("transparent pixels composited on white (as in the training data)")
    return raster


def _unit(block: np.ndarray, raster: _Raster) -> np.ndarray:
    """A block of rows as float32 colours in [0, 1], composited on white."""
    values = block.astype(np.float32)
    if raster.scale != 1.0:
        values /= raster.scale
    if raster.has_alpha:
        alpha = values[:, :, -1:]
        values = values[:, :, :-1] * alpha + (1.0 - alpha)
    return values


def _spans(padded: int, resolution: int) -> list[tuple[int, int, np.ndarray]]:
    """For each output pixel: the padded source pixels [start, stop) it overlaps and their area weights (sum 1).

    Output pixel i covers [i*S/R, (i+1)*S/R); in units of 1/R every bound is an integer, so weights are exact.
    """
    spans = []
    for i in range(resolution):
        lo, hi = i * padded, (i + 1) * padded
        start, stop = lo // resolution, -(-hi // resolution)
        j = np.arange(start, stop)
        overlap = np.minimum(hi, (j + 1) * resolution) - np.maximum(lo, j * resolution)
        spans.append((start, stop, overlap / padded))
    return spans


def _area_resize(raster: _Raster, resolution: int) -> np.ndarray:
    """Pad to a white square, then resize by exact area weights: (R, R, 3) float32 in [0, 1].

    Separable: rows first (in chunks, composited on white as they are converted), then columns.
    """
    height, width = raster.array.shape[:2]
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    colours = raster.colours
    rows = np.empty((resolution, width, colours), np.float32)
    chunk = max(1, _CHUNK_VALUES // max(1, width * raster.array.shape[2]))
    for i, (start, stop, weights) in enumerate(_spans(side, resolution)):
        lo, hi = max(start, top), min(stop, top + height)
        acc = np.zeros((width, colours), np.float32)
        content_weight = 0.0
        for a in range(lo, hi, chunk):
            b = min(hi, a + chunk)
            w = weights[a - start:b - start].astype(np.float32)
            acc += np.tensordot(w, _unit(raster.array[a - top:b - top], raster), axes=1)
            content_weight += float(w.sum())
        rows[i] = acc + (1.0 - content_weight)  # the padding rows are white
    columns = np.zeros((resolution, width), np.float32)
    white = np.ones(resolution, np.float32)
    for k, (start, stop, weights) in enumerate(_spans(side, resolution)):
        lo, hi = max(start, left), min(stop, left + width)
        if lo < hi:
            columns[k, lo - left:hi - left] = weights[lo - start:hi - start]
            white[k] = 1.0 - float(weights[lo - start:hi - start].sum())
    out = np.matmul(rows.transpose(0, 2, 1), columns.T).transpose(0, 2, 1) + white[None, :, None]
    out = np.clip(out, 0.0, 1.0)
    return np.repeat(out, 3, axis=2) if colours == 1 else out


def _area_reduce(raster: _Raster, height: int, width: int) -> _Raster:
    """The raster reduced to height x width by exact area averaging (OpenCV's INTER_AREA: each output pixel the
    overlap-weighted mean of the source pixels it covers, as `area_resize`). Colours are averaged weighted by their
    alpha, so that the result composited on white is the mean of the upload composited on white. An opaque 8-bit
    raster stays 8-bit (its means rounded, at most half a level, without a float copy of the upload)."""
    import cv2  # only for an image larger than is edited at full size

    if raster.array.dtype == np.uint8 and not raster.has_alpha:
        reduced = cv2.resize(raster.array, (width, height), interpolation=cv2.INTER_AREA)
        return _Raster(reduced.reshape(height, width, raster.colours), raster.scale, False)
    values = raster.array.astype(np.float32) / np.float32(raster.scale)
    if raster.has_alpha:
        values[:, :, :-1] *= values[:, :, -1:]
    reduced = cv2.resize(values, (width, height), interpolation=cv2.INTER_AREA).reshape(height, width, -1)
    if raster.has_alpha:
        alpha = reduced[:, :, -1:]
        reduced[:, :, :-1] = np.divide(reduced[:, :, :-1], alpha, out=np.zeros_like(reduced[:, :, :-1]),
                                       where=alpha > 0)
    return _Raster(np.clip(reduced, 0.0, 1.0), 1.0, raster.has_alpha)


def _channels_first(pixels: np.ndarray, scale: float) -> torch.Tensor:
    """(H, W, 1 or 3) values in [0, scale] -> (1, 3, H, W) float32 in [-1, 1], made in one allocation (a 40 MP
    image's floats are 480 MB)."""
    out = np.empty((3, *pixels.shape[:2]), np.float32)
    np.copyto(out, pixels.transpose(2, 0, 1))  # a grey image's one channel into all three
    return torch.from_numpy(out)[None].div_(scale / 2.0).sub_(1.0)  # 8-bit: v / 127.5 - 1, as from_uint8


def _any_resize(mask: np.ndarray, resolution: int) -> np.ndarray:
    """Pad with False to a square, then a cell of the R x R grid is True if any source pixel overlapping it is."""
    height, width = mask.shape
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    spans = _spans(side, resolution)
    rows = np.zeros((resolution, width), bool)
    for i, (start, stop, _) in enumerate(spans):
        lo, hi = max(start, top), min(stop, top + height)
        if lo < hi:
            rows[i] = mask[lo - top:hi - top].any(axis=0)
    out = np.zeros((resolution, resolution), bool)
    for k, (start, stop, _) in enumerate(spans):
        lo, hi = max(start, left), min(stop, left + width)
        if lo < hi:
            out[:, k] = rows[:, lo - left:hi - left].any(axis=1)
    return out


def _resize_note(width: int, height: int, resolution: int, what: str = "resized") -> str | None:
    side = max(width, height)
    if (width, height) == (resolution, resolution):
        return None
    note = f"{what} {width}x{height} -> {resolution}x{resolution}"
    if width != height:
        note += f" after padding to {side}x{side} with white" if what == "resized" else f" after padding to {side}x{side}"
    if side < resolution:
        factor = resolution / side
        note += (f" (enlarged x{factor:.0f}: each pixel became a {factor:.0f}x{factor:.0f} block)"
                 if factor.is_integer() else " (enlarged by area weights)")
    return note


def _check_resolution(resolution: int) -> None:
    if not isinstance(resolution, int) or isinstance(resolution, bool) or resolution < 1:
        raise ValueError(f"resolution must be a positive integer, got {resolution!r}")


def _source_pixels(value: Any, resolution: int | None, max_pixels: int, max_bytes: int,
                   notes: list[str], max_aspect: float = MAX_ASPECT) -> tuple[Image.Image | np.ndarray, str]:
    """The decoded first frame (PIL) or the user's array, size-checked, EXIF applied (resolution None: full size)."""
    source, name = _read_source(value, max_bytes)
    if isinstance(source, np.ndarray):
        if source.ndim < 2 or source.size == 0:
            raise InputError(f"{name} has shape {tuple(source.shape)}; expected HxW, HxWx3 or HxWx4")
        _check_geometry(int(source.shape[1]), int(source.shape[0]), name, max_pixels, max_aspect)
        return source, name
    owned = not isinstance(value, Image.Image)
    return _decode(source, name, resolution, max_pixels, notes, owned, max_aspect), name


# -- public -----------------------------------------------------------------------------------------


def load_image(value: Any, resolution: int, *, crop: bool = False, max_pixels: int = MAX_PIXELS,
               max_bytes: int = MAX_BYTES) -> Converted:
    """An upload (path, bytes, PIL image or array) -> (1, 3, R, R) float32 in [-1, 1] with notes; or InputError.
    `crop`: a non-square image is cut to its centre square rather than padded with white (for a model of photo
    crops, which never saw white bars)."""
    _check_resolution(resolution)
    notes: list[str] = []
    source, name = _source_pixels(value, resolution, max_pixels, max_bytes, notes)
    if isinstance(source, np.ndarray):
        raster = _array_raster(source, name, notes)
    else:
        raster = _pil_raster(source, name, notes)
    raster = _drop_opaque_alpha(raster, notes)
    height, width = raster.array.shape[:2]
    if crop and height != width:
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        raster = replace(raster, array=raster.array[top:top + side, left:left + side])
        notes.append(f"cut {width}x{height} to its centre {side}x{side} square")
        height = width = side
    pixels = _area_resize(raster, resolution)
    note = _resize_note(width, height, resolution)
    if note:
        notes.append(note)
    tensor = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))[None] * 2.0 - 1.0
    return Converted(tensor.float().contiguous(), notes)


@dataclass(frozen=True)
class FullImage:
    """An upload at its own size: (1, 3, H, W) float32 in [-1, 1] (transparency composited on white, as the
    model was trained), the upload's alpha ((H, W) uint8, None when opaque) to put back, notes, and the upload's
    EXIF for its results (`result_exif`; None without)."""

    tensor: torch.Tensor
    alpha: np.ndarray | None
    notes: list[str]
    exif: bytes | None = None


def result_exif(image: Image.Image) -> bytes | None:
    """A decoded upload's EXIF as its edited results carry it: when and with what it was taken (date, camera,
    lens, exposure, place) kept; its orientation 1 (applied when it was read), its colour space sRGB, and neither
    its size, its thumbnail (a preview of the unedited picture) nor the maker's private block. None without EXIF
    or where it cannot be read."""
    try:
        exif = image.getexif()
        if not exif:
            return None
        exif[_EXIF_ORIENTATION] = 1
        details = exif.get_ifd(ExifTags.IFD.Exif) if ExifTags.IFD.Exif in exif else {}
        for tag in _EXIF_DROPPED:
            details.pop(tag, None)
        if _EXIF_COLOR_SPACE in details:
            details[_EXIF_COLOR_SPACE] = 1
        kept = exif.tobytes()  # IFD0 and the IFDs it points to: not IFD1, the thumbnail's
        return kept if len(kept) <= _EXIF_MOST else None
    except Exception:  # noqa: BLE001 - a broken EXIF block is left out, as load_full ignores it
        return None


def image_size(value: Any, *, max_bytes: int = MAX_BYTES) -> tuple[int, int]:
    """(height, width) of an upload as `load_full` gives it (EXIF orientation applied), from its header only:
    nothing is decoded, so a size can be shown before the work starts. InputError as `load_full`."""
    source, _ = _read_source(value, max_bytes)
    if isinstance(source, np.ndarray):
        return int(source.shape[0]), int(source.shape[1])
    width, height = source.size
    try:
        orientation = int(source.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - load_full ignores a broken EXIF block too
        orientation = 1
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)  # a quarter turn swaps the sides


def jpeg_compression(value: Any, *, max_bytes: int = MAX_BYTES) -> tuple[dict[int, list[int]], int] | None:
    """A JPEG upload's quantization tables and chroma subsampling (Pillow's 0, 1, 2 for 4:4:4, 4:2:2, 4:2:0; its -1
    for a greyscale JPEG, which has no chroma), from its header only; None for other files and for a subsampling
    Pillow cannot write (CMYK). InputError as `load_full`."""
    source, _ = _read_source(value, max_bytes)
    if not isinstance(source, Image.Image) or source.format not in ("JPEG", "MPO"):
        return None
    subsampling = -1 if source.mode == "L" else JpegImagePlugin.get_sampling(source)
    tables = getattr(source, "quantization", None)
    if subsampling not in (-1, 0, 1, 2) or not tables:
        return None
    return {k: list(v) for k, v in tables.items()}, subsampling


def load_full(value: Any, *, max_pixels: int = MAX_PIXELS, max_full_pixels: int = MAX_FULL_PIXELS,
              max_bytes: int = MAX_BYTES) -> FullImage:
    """An upload (path, bytes, PIL image or array) at full size, for edits that keep the user's size; or
    InputError. Sources, formats, modes and EXIF as `load_image`; any aspect ratio (nothing is padded). One
    over `max_full_pixels` is reduced, with a note, to the largest size of its aspect within them (exact area
    averaging)."""
    notes: list[str] = []
    source, name = _source_pixels(value, None, max_pixels, max_bytes, notes, math.inf)
    exif = None if isinstance(source, np.ndarray) else result_exif(source)
    raster = _array_raster(source, name, notes) if isinstance(source, np.ndarray) else _pil_raster(source, name, notes)
    raster = _drop_opaque_alpha(raster, notes)
    if raster.has_alpha:
        notes[-1] = "transparent pixels composited on white for the model; the result keeps the upload's alpha"
    height, width = raster.array.shape[:2]
    if height * width > max_full_pixels:
        shrink = math.sqrt(max_full_pixels / (height * width))
        to_height, to_width = max(1, math.floor(height * shrink)), max(1, math.floor(width * shrink))
        raster = _area_reduce(raster, to_height, to_width)
        notes.append(f"reduced {width}x{height} -> {to_width}x{to_height} as it was read (exact area averaging): "
                     f"at most {max_full_pixels:,} pixels are edited at full size")
    if not raster.has_alpha:
        return FullImage(_channels_first(raster.array, raster.scale), None, notes, exif)
    alpha = np.round(raster.array[:, :, -1].astype(np.float32) * (255.0 / raster.scale)).astype(np.uint8)
    return FullImage(_channels_first(_unit(raster.array, raster), 1.0), alpha, notes, exif)


def load_mask_full(value: Any, height: int, width: int, *, max_pixels: int = MAX_PIXELS,
                   max_bytes: int = MAX_BYTES) -> ConvertedMask:
    """A mask upload -> (1, 1, height, width) bool, True = fill (which pixels: as `load_mask`). A mask of
    another size is stretched to the image's; shrinking, a pixel is filled if any source pixel in it is."""
    notes: list[str] = []
    source, name = _source_pixels(value, None, max_pixels, max_bytes, notes, math.inf)
    fill = torch.from_numpy(np.ascontiguousarray(_mask_raster(source, name, notes)))[None, None]
    if fill.shape[-2:] != (height, width):
        notes.append(f"mask resized {fill.shape[-1]}x{fill.shape[-2]} -> {width}x{height} to match the image "
                     "(a pixel is filled if any mask pixel in it is)")
        fill = resize_mask(fill, height, width)
    return ConvertedMask(fill.contiguous(), notes)


def resize_mask(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """A (B, 1, H, W) bool mask at height x width (itself when it is that size already); shrinking, a pixel is
    filled if any mask pixel in it is."""
    if tuple(mask.shape[-2:]) == (height, width):
        return mask
    return torch.nn.functional.adaptive_max_pool2d(mask.float(), (height, width)) > 0


def area_weights(size: int, to: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact area weights resizing an axis of `size` pixels to `to` (`_spans`): (indices, weights), each (to, k);
    output i is sum_t weights[i, t] * input[indices[i, t]], its weights the overlaps with [i size / to, (i + 1)
    size / to) over its length (they sum to 1; a row's unused places have weight 0)."""
    spans = _spans(size, to)
    k = max(stop - start for start, stop, _ in spans)
    indices, weights = torch.zeros(to, k, dtype=torch.long), torch.zeros(to, k, dtype=torch.float64)
    for i, (start, stop, overlap) in enumerate(spans):
        indices[i, : stop - start] = torch.arange(start, stop)
        weights[i, : stop - start] = torch.from_numpy(overlap)
    return indices, weights


def area_resize(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(..., H, W) at height x width by exact area weights: each output pixel the mean of the source area it
    covers, a source pixel cut by its border weighted by its overlap (as the model's square is made). Unlike
    F.interpolate's "area" (adaptive pooling: whole pixels in windows that overlap at a factor that is not an
    integer), a slight downscale stays sharp: 2560 -> 2422 columns mostly copies a column, where pooling would
    average two. Separable: rows, then columns."""
    for dim, to in ((-2, height), (-1, width)):
        if images.shape[dim] == to:
            continue
        indices, weights = area_weights(images.shape[dim], to)
        weights = (weights.to(images.dtype).T[..., None] if dim == -2 else weights.to(images.dtype).T[:, None])
        images = sum(images.index_select(dim, indices[:, t]) * weights[t] for t in range(indices.shape[1]))
    return images


def _fill_from_array(array: np.ndarray, name: str, notes: list[str]) -> np.ndarray:
    """Which pixels of a mask array are to be filled: see `load_mask`."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (2, 3, 4)):
        raise InputError(f"{name} has shape {tuple(array.shape)}; a mask must be HxW, HxWx3 or HxWx4")
    if array.dtype == np.bool_:
        return array if array.ndim == 2 else array.any(axis=2)
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise InputError(f"{name} contains NaN or infinite values")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise InputError(f"{name} has dtype {array.dtype}; a mask must be bool, integer or float")
    if array.ndim == 3 and array.shape[2] in (2, 4):
        alpha, colour = array[:, :, -1], array[:, :, :-1]
        if float(alpha.min()) < float(alpha.max()) or float(alpha.max()) == 0:
            notes.append("mask read from transparency: every non-transparent pixel is filled")
            return alpha > 0
        array = colour
    value = array.max(axis=2) if array.ndim == 3 else array
    high = float(value.max()) if value.size else 0.0
    if np.issubdtype(value.dtype, np.integer) and high <= 1:
        return value > 0  # a 0/1 mask
    if np.issubdtype(value.dtype, np.floating):
        return value > (127.5 if high > 1 else 0.5)
    if value.dtype == np.uint8 or high <= 255:
        return value > 127
    return value > 32767


def _mask_raster(source: Image.Image | np.ndarray, name: str, notes: list[str]) -> np.ndarray:
    if isinstance(source, np.ndarray):
        return _fill_from_array(source, name, notes)
    image = source
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("PA", "La", "RGBa"):
        image = image.convert("RGBA")
    elif image.mode in ("1", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        image = image.convert("L")
    elif not (image.mode in ("L", "LA", "RGB", "RGBA", "I", "F") or image.mode.startswith("I;16")):
        image = image.convert("RGBA")
    array = np.asarray(image)
    if image.mode.startswith("I;16"):
        array = array.astype(np.uint16)
    return _fill_from_array(array, name, notes)


def load_mask(value: Any, resolution: int, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES
              ) -> ConvertedMask:
    """A mask upload -> (1, 1, R, R) bool, True = fill.

    Filled: pixels that are not transparent when the mask has transparency; otherwise bright pixels
    (over half the range in any channel), or any nonzero pixel of a 0/1 or bool array. Padding is not filled.
    A cell of the R x R grid is filled if any source pixel in it is, so thin strokes survive shrinking.
    Empty and full masks are returned as they are (see `is_empty`, `is_full`).
    """
    _check_resolution(resolution)
    notes: list[str] = []
    source, name = _source_pixels(value, resolution, max_pixels, max_bytes, notes)
    fill = _mask_raster(source, name, notes)
    height, width = fill.shape
    out = _any_resize(fill, resolution)
    note = _resize_note(width, height, resolution, "mask resized")
    if note:
        notes.append(note + " (a cell is filled if any pixel in it is)")
    return ConvertedMask(torch.from_numpy(out)[None, None].contiguous(), notes)


def is_empty(mask: torch.Tensor) -> bool:
    """True when no pixel is to be filled."""
    return not bool(mask.any())


def is_full(mask: torch.Tensor) -> bool:
    """True when every pixel is to be filled (inpainting becomes generation)."""
    return bool(mask.all())


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8 (rounded; out-of-range values clipped, NaN as black)."""
    if tensor.ndim != 4 or tensor.shape[1] != 3:
        raise ValueError(f"expected a (B, 3, H, W) tensor, got shape {tuple(tensor.shape)}")
    x = torch.nan_to_num(tensor.detach().float().cpu(), nan=-1.0).clamp(-1, 1)
    return ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32 in [-1, 1]; the inverse of to_uint8 on 8-bit values."""
    return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_pil(tensor: torch.Tensor) -> list[Image.Image]:
    """(B, 3, H, W) in [-1, 1] -> RGB uint8 images (as to_uint8)."""
    return [Image.fromarray(np.ascontiguousarray(a), "RGB") for a in to_uint8(tensor)]


def enlarge(image: Image.Image, size: int) -> Image.Image:
    """Nearest-neighbour enlargement so the longer side is `size` (pixels stay crisp blocks)."""
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    scale = size / max(image.width, image.height)
    new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(new, Image.Resampling.NEAREST)
