"""Test helpers for the studio: tiny model folders and the app served in a background thread.

If `app/images.py` (upload conversion, written separately) is not there yet, a minimal private stand-in
is installed for these tests only, so the UI can still be exercised end to end.
"""

from __future__ import annotations

import socket
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from tests.conftest import make_tiny_folder

RESOLUTION = 16


def _install_images_stand_in() -> None:
    """A bare-bones `app.images` with the agreed interface (tests only; never shipped)."""
    module = types.ModuleType("app.images")

    class InputError(ValueError):
        pass

    @dataclass
    class Converted:
        tensor: torch.Tensor
        notes: list[str] = field(default_factory=list)

    @dataclass
    class ConvertedMask:
        mask: torch.Tensor
        notes: list[str] = field(default_factory=list)

    def _open(value: Any) -> Image.Image:
        if isinstance(value, Image.Image):
            return value
        if isinstance(value, np.ndarray):
            return Image.fromarray(value)
        try:
            return Image.open(value)
        except Exception as e:  # noqa: BLE001
            raise InputError(f"not an image: {e}") from None

    def load_image(value: Any, resolution: int) -> Converted:
        image = _open(value).convert("RGBA")
        white = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(white, image).convert("RGB")
        notes = []
        if image.size != (resolution, resolution):
            notes.append(f"resized {image.width}x{image.height} -> {resolution}x{resolution}")
            image = image.resize((resolution, resolution), Image.BILINEAR)
        array = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
        return Converted(array.contiguous(), notes)

    def load_mask(value: Any, resolution: int) -> ConvertedMask:
        image = _open(value).convert("L").resize((resolution, resolution), Image.NEAREST)
        return ConvertedMask(torch.from_numpy(np.asarray(image) > 127)[None, None], [])

    def mask_from_editor(editor: dict, resolution: int) -> ConvertedMask:
        painted = np.zeros((resolution, resolution), dtype=bool)
        for layer in editor.get("layers") or []:
            alpha = _open(layer).convert("RGBA").getchannel("A").resize((resolution, resolution), Image.BOX)
            painted |= np.asarray(alpha) > 0
        return ConvertedMask(torch.from_numpy(painted)[None, None], [])

    def to_pil(tensor: torch.Tensor) -> list[Image.Image]:
        array = ((tensor.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        return [Image.fromarray(a) for a in array]

    def enlarge(image: Image.Image, size: int) -> Image.Image:
        return image.resize((size, size), Image.NEAREST)

    for name, value in dict(InputError=InputError, Converted=Converted, ConvertedMask=ConvertedMask,
                            load_image=load_image, load_mask=load_mask, mask_from_editor=mask_from_editor,
                            to_pil=to_pil, enlarge=enlarge).items():
        setattr(module, name, value)
    sys.modules["app.images"] = module
    import app

    app.images = module  # type: ignore[attr-defined]


def ensure_images_module() -> bool:
    """True when the real app.images is used, False when the stand-in had to be installed."""
    try:
        import app.images  # noqa: F401
        return True
    except ModuleNotFoundError:
        _install_images_stand_in()
        return False


def make_weights(folder: Path) -> Path:
    """A weights folder with a tiny class-conditional CM and its 'teacher' (the same net, boundary edm)."""
    make_tiny_folder(folder / "tiny-cm", resolution=RESOLUTION)
    make_tiny_folder(folder / "tiny-edm", resolution=RESOLUTION, boundary="edm")
    (folder / "not-a-model").mkdir()
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(weights: Path, example_paths: list[str] | None = None) -> tuple[Any, str]:
    """Serve the studio on 127.0.0.1 in a background thread; returns (demo, url)."""
    ensure_images_module()
    from app.studio import Studio
    from app.ui import build_demo, launch
    from editing.models import Runtime

    studio = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None),
                                 benchmarks=weights / "RESULTS.json")
    demo = build_demo(studio, example_paths)
    _, url, _ = launch(demo, studio, host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True)
    return demo, url
