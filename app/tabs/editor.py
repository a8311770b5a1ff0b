"""The drawing editor: its value is checked before anything is decoded, its drawings (blobs) kept per session
and bounded in number and bytes."""

from __future__ import annotations

import io
import warnings
from typing import Any

import gradio as gr
from gradio.components.base import server
from gradio.components.image_editor import AcceptBlobs, EditorDataBlobs
from PIL import Image

from app.guard import NOT_UPLOADED, SESSION, is_uploaded

MAX_LAYERS = 4  # painted layers in one editor value (the studio's editors send one)
MAX_LAYER_PIXELS = 2048 * 2048  # per editor image (the canvases are 512x512)
MAX_BLOB_SETS = 256  # editor drawings held between their upload and their submit, all sessions together
MAX_BLOB_BYTES = 192 * 2**20  # and their bytes: past either, the oldest drawings never submitted are dropped
EDITOR_KEYS = frozenset({"background", "layers", "composite", "id"})


class DrawingEditor(gr.ImageEditor):
    """A gr.ImageEditor that checks its value before anything is decoded: at most MAX_LAYERS layers, each image
    an upload (or a blob its own session sent) of at most MAX_LAYER_PIXELS; drawings (blobs) are kept per session,
    and an unreadable layer gives a clear gr.Error naming it instead of Gradio's generic one."""

    is_template = True  # drawn by the frontend as a plain ImageEditor

    def check_api_value(self, value: Any) -> str | None:
        """Why an API value is malformed (checked by app.guard before Gradio parses it), or None."""
        name = self.label or "the editor"
        if value is None:
            return None
        if not isinstance(value, dict) or not set(value) <= EDITOR_KEYS:
            return (f"{name}: expected null or an object with keys background, layers, composite (or an id), got "
                    f"{type(value).__name__}{' with keys ' + ', '.join(sorted(map(str, value)))[:80] if isinstance(value, dict) else ''}")
        layers = value.get("layers")
        if layers is not None and not isinstance(layers, list):
            return f"{name}: layers must be a list of images, got {type(layers).__name__}"
        if layers and len(layers) > MAX_LAYERS:
            return f"{name}: {len(layers)} layers; at most {MAX_LAYERS} are accepted"
        for key in ("background", "composite"):
            if value.get(key) is not None and not isinstance(value[key], dict):
                return f"{name}: {key} must be an uploaded image or null, got {type(value[key]).__name__}"
        for index, layer in enumerate(layers or []):
            if layer is not None and not isinstance(layer, dict):
                return f"{name}: layer {index + 1} must be an uploaded image or null, got {type(layer).__name__}"
        if value.get("id") is not None and not isinstance(value["id"], str):
            return f"{name}: id must be a string"
        return None

    def _owned(self, blob_id: str) -> EditorDataBlobs | None:
        """The drawing `blob_id` if this event's session sent it (removed: a drawing is submitted once)."""
        return self.blob_storage.pop((SESSION.get(), blob_id), None)

    def preprocess(self, payload: Any) -> Any:
        if payload is None:
            return None
        if payload.id is not None:
            blobs = self._owned(payload.id)
            if blobs is None:
                raise gr.Error("the drawing was not received by this session: paint again, then submit",
                               print_exception=False)
            sources = [("background", blobs.background), ("composite", blobs.composite)] + [
                (f"layer {i + 1}", layer) for i, layer in enumerate(blobs.layers)]
        else:
            sources = [("background", payload.background), ("composite", payload.composite)] + [
                (f"layer {i + 1}", layer) for i, layer in enumerate(payload.layers)]
        if len(sources) - 2 > MAX_LAYERS:
            raise gr.Error(f"the drawing has {len(sources) - 2} layers; at most {MAX_LAYERS} are accepted",
                           print_exception=False)
        for what, source in sources:
            check_editor_image(what, source)
        source = blobs if payload.id is not None else payload
        try:  # Gradio's own preprocess, on the checked images
            background = self.convert_and_format_image(source.background, flatten_on_white=True)
            layers = [self.convert_and_format_image(layer) for layer in source.layers or []]
            composite = self.convert_and_format_image(source.composite, flatten_on_white=True)
        except Exception as e:  # noqa: BLE001 - PIL raises many types for unreadable files
            raise gr.Error(f"the drawing could not be read: one of its layers is not a readable image "
                           f"({type(e).__name__})", print_exception=False) from None
        return {"background": background, "layers": [x for x in layers if x is not None], "composite": composite}

    @server
    def accept_blobs(self, data: AcceptBlobs) -> None:
        """One image of a drawing from the browser, kept under (session, id); bounded index, count and size."""
        from fastapi import HTTPException

        fields, files = data.data, data.files
        kind, index, blob_id = fields.get("type"), fields.get("index"), fields.get("id")
        session = fields.get("session_hash")
        if kind not in ("layer", "background", "composite"):
            raise HTTPException(400, "type must be 'layer', 'background' or 'composite'")
        if not isinstance(blob_id, str) or not 0 < len(blob_id) <= 100 or not isinstance(session, str):
            raise HTTPException(400, "a drawing blob needs an id and a session_hash")
        if len(files) != 1:
            raise HTTPException(400, f"a drawing blob carries one file, got {len(files)}")
        if kind == "layer":
            text = str(index).strip()
            if not text.isascii() or not text.isdigit() or int(text) >= MAX_LAYERS:
                raise HTTPException(400, f"a layer index must be a whole number from 0 to {MAX_LAYERS - 1}, "
                                         f"got {text[:20]!r}")
            index = int(text)
        key, file = (session, blob_id), files[0][1]
        while self.blob_storage and (len(self.blob_storage) >= MAX_BLOB_SETS or
                                     sum(map(_blob_bytes, self.blob_storage.values())) + len(file) > MAX_BLOB_BYTES):
            self.blob_storage.pop(next(iter(self.blob_storage)))  # the oldest drawing never submitted
        current = self.blob_storage.setdefault(key, EditorDataBlobs(background=None, layers=[], composite=None))
        if kind == "layer":
            current.layers.extend([None] * (index + 1 - len(current.layers)))
            current.layers[index] = file
        else:
            setattr(current, kind, file)


def _blob_bytes(blobs: EditorDataBlobs) -> int:
    return sum(len(b) for b in (blobs.background, blobs.composite, *blobs.layers) if b is not None)


def check_editor_image(what: str, source: Any) -> None:
    """An editor image (an upload's FileData or a blob's bytes) is readable without decoding and not too big."""
    if source is None:
        return
    if isinstance(source, (bytes, bytearray)):
        opened: Any = io.BytesIO(source)
    else:
        if not is_uploaded(source.path):
            raise gr.Error(f"{what}: {NOT_UPLOADED}", print_exception=False)
        opened = source.path
    try:
        with warnings.catch_warnings():  # a bomb's size is refused below, not warned about
            warnings.simplefilter("ignore")
            with Image.open(opened) as image:  # reads the header only
                width, height = image.size
    except Exception:  # noqa: BLE001 - PIL raises many types for unreadable files
        raise gr.Error(f"the drawing's {what} is not a readable image", print_exception=False) from None
    if width * height > MAX_LAYER_PIXELS:
        raise gr.Error(f"the drawing's {what} is {width}x{height} = {width * height:,} pixels; at most "
                       f"{MAX_LAYER_PIXELS:,} are accepted", print_exception=False)
