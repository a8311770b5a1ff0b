"""The stroke canvas: a light drawing surface for the Stroke edit tab, in the browser's own 2D canvas.

Gradio's ImageEditor flattens and uploads three 512x512 PNGs per stroke (about a second in a browser without a
GPU), which made live mode anything but live. This canvas keeps the strokes as vectors (undo is a redraw) and
sends only the strokes layer, a transparent PNG, as a data URL in the request itself; the server paints it over
the picture it set (app.tabs.canvas.painted_canvas).

Value from the server: {"background": data URL or null, "token": n} (a new picture: the strokes start over).
Value from the browser: {"strokes": PNG data URL or null}.
"""

from __future__ import annotations

import base64
import binascii
import io
import itertools
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from app.tabs.canvas import CANVAS
from app.tabs.editor import check_editor_image

PNG_DATA_URL = "data:image/png;base64,"
MAX_STROKES_CHARS = 4 * 2**20  # a data URL of a 512x512 RGBA PNG is far below (the guard's body limit is lower)
DISPLAY_PNG_BYTES = 300_000  # a background PNG above this is sent as a JPEG: it is only shown, never read back
VALUE_KEYS = frozenset({"strokes", "background", "token"})

TEMPLATE = """
<div class="sc-root" tabindex="0" aria-label="{{label}}">
  <div class="sc-tools">
    {{#each palette}}<button type="button" class="sc-swatch" data-colour="{{this}}" style="background: {{this}}"
      aria-label="brush colour {{this}}" title="{{this}}"></button>{{/each}}
    <input type="color" class="sc-colour" value="{{colour}}" aria-label="Brush colour" title="Brush colour">
    <label class="sc-size-label">Brush <input type="range" class="sc-size" min="2" max="160" value="{{brush}}"
      aria-label="Brush size"></label>
    <button type="button" class="sc-undo" title="Undo (Ctrl+Z)">Undo</button>
    <button type="button" class="sc-redo" title="Redo (Ctrl+Shift+Z)">Redo</button>
    <button type="button" class="sc-clear" title="Remove every stroke">Clear strokes</button>
    <span class="sc-zoom"><button type="button" class="sc-zoom-out" aria-label="Zoom out">-</button>
      <span class="sc-zoom-level">100%</span>
      <button type="button" class="sc-zoom-in" aria-label="Zoom in">+</button></span>
  </div>
  <div class="sc-view"><canvas class="sc-paint" width="{{side}}" height="{{side}}" aria-label="{{label}}"></canvas>
    <div class="sc-ring"></div></div>
</div>
"""

CSS = """
.sc-root { outline: none; }
.sc-tools { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; margin-bottom: 6px; }
.sc-swatch { width: 22px; height: 22px; border-radius: 50%; border: 1px solid #888; padding: 0; cursor: pointer; }
.sc-colour { width: 30px; height: 24px; padding: 0; border: none; background: none; }
.sc-tools button:not(.sc-swatch) { padding: 2px 8px; border: 1px solid #bbb; border-radius: 4px; }
.sc-tools button:disabled { opacity: 0.4; }
.sc-size { vertical-align: middle; width: 90px; }
.sc-view { position: relative; overflow: auto; max-height: min(70vh, 560px); max-width: 560px;
           border: 1px solid #ccc; }
.sc-paint { display: block; width: 100%; height: auto; touch-action: none; cursor: crosshair;
            image-rendering: pixelated; }
.sc-ring { position: absolute; display: none; pointer-events: none; border-radius: 50%;
           border: 1px solid #000; box-shadow: 0 0 0 1px #fff; }
"""

JS = (Path(__file__).with_name("stroke_canvas.js")).read_text()


class StrokeCanvas(gr.HTML):
    """Painting surface of the Stroke edit tab; its value reaches the event as the strokes layer (an RGBA
    PIL image at the canvas's size) or None."""

    def __init__(self, *, label: str, palette: list[str], colour: str, brush: int, live_checkbox: str = "",
                 **kwargs: Any):
        self._tokens = itertools.count(1)
        super().__init__(value={"background": None, "token": 0}, label=label, html_template=TEMPLATE,
                         css_template=CSS, js_on_load=JS, palette=palette, colour=colour, brush=brush, side=CANVAS,
                         live_checkbox=live_checkbox, **kwargs)

    def check_api_value(self, value: Any) -> str | None:
        """Why an API value is malformed (checked by app.guard before Gradio parses it), or None."""
        name = self.label or "the canvas"
        if value is None:
            return None
        if not isinstance(value, dict) or not set(value) <= VALUE_KEYS:
            keys = f" with keys {', '.join(sorted(map(str, value)))[:80]}" if isinstance(value, dict) else ""
            return f'{name}: expected null or an object like {{"strokes": "{PNG_DATA_URL}..."}}, got ' \
                   f"{type(value).__name__}{keys}"
        strokes = value.get("strokes")
        if strokes is not None and (not isinstance(strokes, str) or not strokes.startswith(PNG_DATA_URL)):
            return f"{name}: strokes must be null or a PNG data URL ({PNG_DATA_URL}...)"
        if strokes is not None and len(strokes) > MAX_STROKES_CHARS:
            return f"{name}: the strokes are {len(strokes):,} characters; at most {MAX_STROKES_CHARS:,} are accepted"
        return None

    def preprocess(self, payload: Any) -> Image.Image | None:
        message = self.check_api_value(payload)
        if message:
            raise gr.Error(message, print_exception=False)
        strokes = (payload or {}).get("strokes")
        if strokes is None:
            return None
        try:
            data = base64.b64decode(strokes[len(PNG_DATA_URL):], validate=True)
        except (binascii.Error, ValueError):
            raise gr.Error(f"{self.label}: the strokes are not valid base64", print_exception=False) from None
        check_editor_image("strokes", data)  # readable and at most MAX_LAYER_PIXELS, from the header alone
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.format != "PNG":
                    raise ValueError("not a PNG")
                return image.convert("RGBA")
        except Exception:  # noqa: BLE001 - PIL raises many types for unreadable files
            raise gr.Error(f"{self.label}: the strokes are not a readable PNG", print_exception=False) from None

    def postprocess(self, value: Any) -> dict[str, Any]:
        """A picture to paint over (PIL) or None (a blank canvas) -> the value the browser loads."""
        if isinstance(value, dict):  # the constructor's value
            return value
        return {"background": None if value is None else display_url(value), "token": next(self._tokens)}

    def api_info(self) -> dict[str, Any]:
        return {"type": "object", "description": "the strokes painted on the canvas",
                "properties": {"strokes": {"anyOf": [{"type": "string"}, {"type": "null"}], "description":
                               f"a PNG data URL ({PNG_DATA_URL}...) of the strokes on a transparent square"}}}

    def example_payload(self) -> Any:
        return {"strokes": None}

    def example_value(self) -> Any:
        return {"strokes": None}


def display_url(picture: Image.Image) -> str:
    """A data URL of `picture` for the browser to show: PNG, or JPEG where the PNG would be large."""
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="PNG")
    if buffer.tell() > DISPLAY_PNG_BYTES:
        buffer = io.BytesIO()
        picture.convert("RGB").save(buffer, format="JPEG", quality=90)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
    return PNG_DATA_URL + base64.b64encode(buffer.getvalue()).decode()
