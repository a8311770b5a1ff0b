"""Writing results at the edge of the engine, for the command line: images in [-1, 1] to PNG/JPEG files and GIFs.

Reading goes through `editing.images` (the one hardened converter that the studio uses too).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from editing.images import to_pil


JPEG_SUFFIXES = (".jpg", ".jpeg")
JPEG_QUALITY = 95
PNG_COMPRESSION = 3  # zlib level: a 6-megapixel photo in 0.35 s at 6% more bytes than Pillow's default 6 (0.97 s)


def save_images(images: torch.Tensor, out: str | Path, alpha: np.ndarray | None = None,
                exif: bytes | None = None) -> list[Path]:
    """Write one image to `out`, or `<stem>_<i><suffix>` for several; returns the paths.

    The format follows the suffix (PNG, or JPEG for .jpg/.jpeg); `alpha` ((H, W) uint8, the upload's) is
    put back as the PNG's alpha channel (JPEG has none: it is left out); `exif` (the upload's,
    `editing.images.result_exif`) goes into every file.
    """
    out = Path(out)
    pictures = to_pil(images)
    paths = [out] if len(pictures) == 1 else [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(len(pictures))]
    jpeg = out.suffix.lower() in JPEG_SUFFIXES
    for picture, path in zip(pictures, paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        if alpha is not None and not jpeg:
            if alpha.shape != (picture.height, picture.width):
                raise ValueError(f"alpha is {alpha.shape[1]}x{alpha.shape[0]} but the image is "
                                 f"{picture.width}x{picture.height}")
            picture = picture.copy()
            picture.putalpha(Image.fromarray(np.ascontiguousarray(alpha), "L"))
        options = {"quality": JPEG_QUALITY} if jpeg else {"compress_level": PNG_COMPRESSION}
        picture.save(path, **options, **({"exif": exif} if exif else {}))
    return paths


def save_frames(frames: torch.Tensor, out: str | Path, duration_ms: int = 120) -> Path:
    """Frames as an animated GIF (`.gif`, looping) or else a horizontal strip in one image."""
    out = Path(out)
    pictures = to_pil(frames)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".gif":
        pictures[0].save(out, save_all=True, append_images=pictures[1:], duration=duration_ms, loop=0)
    else:
        w, h = pictures[0].size
        strip = Image.new("RGB", (w * len(pictures), h))
        for i, picture in enumerate(pictures):
            strip.paste(picture, (i * w, 0))
        strip.save(out)
    return out


__all__: Sequence[str] = ["save_frames", "save_images"]
