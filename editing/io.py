"""PNG <-> tensor at the edges of the engine, for the command line: images in [-1, 1], masks boolean.

Uploads are prepared the way the training data was (training/data.py): composited onto white,
centre-padded to a square, area-resized (BOX) to the model resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps


def open_image(path: str | Path) -> Image.Image:
    """Open an image file fully (so a truncated or non-image file fails here, naming the path)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError) as e:  # PIL's UnidentifiedImageError is an OSError
        raise ValueError(f"{path}: not a readable image ({e})") from None


def square_rgb(image: Image.Image, size: int) -> Image.Image:
    """Composite onto white, centre-pad to a square, area-resize to size x size."""
    rgba = image.convert("RGBA")
    rgb = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    side = max(rgb.size)
    if rgb.size != (side, side):
        square = Image.new("RGB", (side, side), (255, 255, 255))
        square.paste(rgb, ((side - rgb.width) // 2, (side - rgb.height) // 2))
        rgb = square
    return rgb if side == size else rgb.resize((size, size), Image.Resampling.BOX)


def load_image(path: str | Path, size: int) -> torch.Tensor:
    """A (1, 3, size, size) float32 tensor in [-1, 1] from an image file."""
    array = np.asarray(square_rgb(open_image(path), size), dtype=np.float32)
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0) / 127.5 - 1.0


def load_mask(path: str | Path, size: int) -> torch.Tensor:
    """A (1, 1, size, size) boolean mask from an image file: True (white, or opaque in an alpha-only
    drawing) where the model fills in."""
    image = open_image(path)
    if image.mode in ("RGBA", "LA") and image.getextrema()[-1][0] < 255:
        gray = image.getchannel("A")  # a transparent canvas with strokes painted on it
    else:
        gray = image.convert("L")
    side = max(gray.size)
    if gray.size != (side, side):
        square = Image.new("L", (side, side), 0)
        square.paste(gray, ((side - gray.width) // 2, (side - gray.height) // 2))
        gray = square
    gray = gray.resize((size, size), Image.Resampling.NEAREST)
    return torch.from_numpy(np.asarray(gray) >= 128).view(1, 1, size, size)


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """(B, 3, H, W) in [-1, 1] -> B RGB images (clamped, rounded)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
    array = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [Image.fromarray(a.permute(1, 2, 0).numpy(), "RGB") for a in array]


def save_images(images: torch.Tensor, out: str | Path) -> list[Path]:
    """Write one PNG for one image to `out`, or `<stem>_<i><suffix>` for several; returns the paths."""
    out = Path(out)
    pictures = to_pil(images)
    paths = [out] if len(pictures) == 1 else [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(len(pictures))]
    for picture, path in zip(pictures, paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        picture.save(path)
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


__all__: Sequence[str] = ["load_image", "load_mask", "open_image", "save_frames", "save_images", "square_rgb", "to_pil"]
