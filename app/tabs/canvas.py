"""The editors' canvas: an upload at the model's resolution, enlarged (nearest) to CANVAS so the brush is precise;
or, for a tiled model, the whole upload fitted to CANVAS."""

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


def load_canvas(studio: Studio, image_path: str, model_name: str) -> dict[str, Any]:
    """The upload as an editor's value, its background `canvas_background`."""
    return editor_value(canvas_background(studio, image_path, model_name))


def canvas_background(studio: Studio, image_path: str, model_name: str) -> Image.Image:
    """The upload as a CANVAS-square background: for a tiled model (edits at the upload's size) the whole image
    centred on a white square, fitted to CANVAS (app.forms.full_size_mask maps the painting back); otherwise
    converted to the model's resolution and enlarged."""
    if not studio.entry(model_name).param.tiled:
        converted = images.load_image(image_path, studio.resolution(model_name))
        return images.enlarge(images.to_pil(converted.tensor)[0], CANVAS)
    picture = images.to_pil(images.load_full(image_path).tensor)[0]
    side = max(picture.size)
    square = Image.new("RGB", (side, side), "white")
    square.paste(picture, ((side - picture.width) // 2, (side - picture.height) // 2))
    if side <= CANVAS:
        return images.enlarge(square, CANVAS)
    return square.resize((CANVAS, CANVAS), Image.Resampling.LANCZOS)


def painted_canvas(studio: Studio, image_path: str | None, model_name: str,
                   strokes: Image.Image | None) -> dict[str, Any] | None:
    """The stroke canvas's strokes layer (RGBA, app.tabs.stroke_canvas) over the background the browser showed
    (the upload's `canvas_background`, or white): an editor value like gr.ImageEditor's, or None without strokes."""
    if strokes is None:
        return None
    background = canvas_background(studio, image_path, model_name) if image_path else Image.new(
        "RGB", (CANVAS, CANVAS), "white")
    if strokes.size != background.size:
        strokes = strokes.resize(background.size, Image.Resampling.NEAREST)
    composite = Image.alpha_composite(background.convert("RGBA"), strokes).convert("RGB")
    return {"background": background, "layers": [strokes], "composite": composite}
