"""The editors' canvas: an upload at the model's resolution, enlarged (nearest) to CANVAS so the brush is precise."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

from editing import images

if TYPE_CHECKING:
    from app.studio import Studio

CANVAS = 512  # side of the editors' canvas in pixels
EDITOR_HEIGHT = CANVAS + 80  # the canvas and the editor's toolbar


def editor_value(background: Image.Image) -> dict[str, Any]:
    return {"background": background, "layers": [], "composite": background}


def blank_canvas() -> dict[str, Any]:
    return editor_value(Image.new("RGB", (CANVAS, CANVAS), "white"))


def load_canvas(studio: Studio, image_path: str, model_name: str) -> dict[str, Any]:
    """The upload converted to the model's resolution and enlarged, as an editor's background."""
    converted = images.load_image(image_path, studio.resolution(model_name))
    return editor_value(images.enlarge(images.to_pil(converted.tensor)[0], CANVAS))
