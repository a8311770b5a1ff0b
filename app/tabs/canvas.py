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
    """The upload as an editor's background: for a tiled model (edits at the upload's size) the whole image
    centred on a white square, fitted to CANVAS (app.forms.full_size_mask maps the painting back); otherwise
    converted to the model's resolution and enlarged."""
    if not studio.entry(model_name).param.tiled:
        converted = images.load_image(image_path, studio.resolution(model_name))
        return editor_value(images.enlarge(images.to_pil(converted.tensor)[0], CANVAS))
    picture = images.to_pil(images.load_full(image_path).tensor)[0]
    side = max(picture.size)
    square = Image.new("RGB", (side, side), "white")
    square.paste(picture, ((side - picture.width) // 2, (side - picture.height) // 2))
    if side <= CANVAS:
        return editor_value(images.enlarge(square, CANVAS))
    return editor_value(square.resize((CANVAS, CANVAS), Image.Resampling.LANCZOS))
