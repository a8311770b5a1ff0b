"""Pieces every tab shares: result widgets, seed rows, step pickers, progress and error handling."""

from __future__ import annotations

import functools
import io
import logging
import random
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import gradio as gr
from gradio.components.base import server
from gradio.components.image_editor import AcceptBlobs, EditorDataBlobs
from PIL import Image

from app import forms
from app.guard import NOT_UPLOADED, SESSION, is_uploaded
from editing import images

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

MAX_LAYERS = 4  # painted layers in one editor value (the studio's editors send one)
MAX_LAYER_PIXELS = 2048 * 2048  # per editor image (the canvases are 512x512)
MAX_BLOB_SETS = 256  # editor drawings held between their upload and their submit, all sessions together
MAX_BLOB_BYTES = 192 * 2**20  # and their bytes: past either, the oldest drawings never submitted are dropped
EDITOR_KEYS = frozenset({"background", "layers", "composite", "id"})

STEP_CHOICES = ["1 step", "2", "3", "4", "8", "ImageNet64 CD 2-step", "LSUN bedroom CD 2-step",
                "editing 18", "editing 40"]
STEPS_INFO = ("a preset, a number of steps (generation: the ts tuned for the model where it has them, else even "
              "on a 40-point grid), or your own ts list like 0,22,39")
PIXELATED = "pixelated"  # CSS class: show small images big and crisp
UNDOCUMENTED = "undocumented"  # UI plumbing: callable, but kept out of the API page
RANDOM_SEEDS = 2**31  # the dice draws below this, far under forms.MAX_SEED, so seed + batch stays in range


ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s'\"():,/]+/)*[^\s'\"():,/]*")


def without_paths(message: str) -> str:
    """A message with every absolute path cut to its last part: no server path reaches the page."""
    return ABSOLUTE_PATH.sub(lambda m: m.group().rstrip("/").rsplit("/", 1)[-1] or "/", message)


def guarded(fn: F) -> F:
    """Turn bad input (ValueError, including InputError and ModelLoadError) into a gr.Error with its message;
    anything else is logged with its traceback on the server and shown as a short message, never a trace."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except ValueError as e:
            raise gr.Error(without_paths(str(e)), print_exception=False) from None
        except Exception:  # noqa: BLE001 - the user sees a message, the log keeps the trace
            log.exception("task failed")
            raise gr.Error("Something went wrong inside the studio (details are in the server log). "
                           "Try again, or change the inputs.", print_exception=False) from None

    return wrapper  # type: ignore[return-value]


class ClientGone(ValueError):
    """The client that asked for a request went away: its work stops after the current network evaluation."""


def client_alive() -> Callable[[], bool]:
    """Whether the event now running still has a client (Gradio marks it dead when its stream disconnects)."""
    from gradio.context import LocalContext

    blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
    queue = getattr(blocks, "_queue", None)
    event = getattr(queue, "event_ids_to_events", {}).get(event_id) if event_id else None
    return (lambda: True) if event is None else (lambda: event.alive)


def progress_callback(progress: gr.Progress, desc: str) -> Callable[[int, int], None]:
    """The service's on_step(done, total), fed to a Gradio progress bar; stops work whose client went away."""
    alive = client_alive()

    def on_step(done: int, total: int) -> None:
        if not alive():
            log.info("%s stopped after %d of %d evaluations: its client went away", desc, done, total)
            raise ClientGone(f"stopped after {done} of {total} network evaluations: the client went away")
        progress((done, total), desc=desc, unit="evaluations")

    return on_step


@dataclass
class Outputs:
    """A tab's result widgets: gallery of enlarged images with captions, notes, downloads."""

    gallery: gr.Gallery
    notes: gr.Markdown
    files: gr.File

    def as_list(self) -> list[gr.components.Component]:
        return [self.gallery, self.notes, self.files]


def result_outputs(label: str = "Results", columns: int = 4) -> Outputs:
    # "fit-content": the gallery grows to show every result (Gradio's "auto" is a fixed 55vh box that scrolls).
    gallery = gr.Gallery(label=label, columns=columns, height="fit-content", object_fit="contain", format="png",
                         elem_classes=[PIXELATED], interactive=False, buttons=["download", "fullscreen"])
    notes = gr.Markdown(elem_classes=["studio-notes"])
    # A batch gives two files per image: cap the list's height (it scrolls) so it does not push the page down.
    files = gr.File(label="Downloads (PNG at model resolution, and enlarged)", file_count="multiple",
                    interactive=False, height=220)
    return Outputs(gallery, notes, files)


def seed_row(api_prefix: str, label: str = "Seed", value: int = 0) -> NumberInput:
    """A seed box with a randomize button (the seed used is what the box shows)."""
    with gr.Row(equal_height=True):
        seed = NumberInput(label=label, value=value, precision=0, minimum=0, maximum=forms.MAX_SEED, scale=3)
        dice = gr.Button("Random seed", scale=1, size="sm")
    dice.click(lambda: random.randrange(RANDOM_SEEDS), outputs=seed, api_name=f"{api_prefix}_random_seed",
               api_visibility=UNDOCUMENTED, queue=False, show_progress="hidden")
    return seed


def steps_picker(default: str, label: str = "Steps") -> gr.Dropdown:
    choices = STEP_CHOICES if default in STEP_CHOICES else [default, *STEP_CHOICES]
    return gr.Dropdown(choices=choices, value=default, label=label, allow_custom_value=True, info=STEPS_INFO)


def variations_slider(value: int = 4, label: str = "Variations") -> SliderInput:
    return SliderInput(1, 8, value=value, step=1, label=label)


def as_number(payload: Any, label: str | None) -> int | float:
    """A number from an API payload (see app.forms.parse_number), or a gr.Error naming the field where
    Gradio's own check failed with a generic error."""
    try:
        return forms.parse_number(payload, label or "a number field")
    except images.InputError as e:
        raise gr.Error(str(e), print_exception=False) from None


def _bounded(preprocess: Callable[[Any], Any], value: int | float, label: str | None) -> Any:
    """Gradio's own range check and rounding, with the field's name in front of its message."""
    try:
        return preprocess(value)
    except gr.Error as e:
        raise gr.Error(f"{label or 'a number field'}: {e.message}", print_exception=False) from None


class NumberInput(gr.Number):
    """A gr.Number whose API payload of the wrong type gets a clear message (see `as_number`)."""

    is_template = True  # drawn by the frontend as a plain Number

    def preprocess(self, payload: Any) -> Any:
        if payload is None:
            return None
        number = as_number(payload, self.label)
        if self.precision == 0 and isinstance(number, float) and not number.is_integer():
            raise gr.Error(f"{self.label or 'a number field'}: expected a whole number, got {number:g}",
                           print_exception=False)
        return _bounded(super().preprocess, number, self.label)


class SliderInput(gr.Slider):
    """A gr.Slider whose API payload of the wrong type gets a clear message (see `as_number`)."""

    is_template = True  # drawn by the frontend as a plain Slider

    def preprocess(self, payload: Any) -> Any:
        return _bounded(super().preprocess, as_number(payload, self.label), self.label)


class CheckboxInput(gr.Checkbox):
    """A gr.Checkbox that refuses anything but true/false from the API (Gradio passes any value through,
    and the string "false" would read as true)."""

    is_template = True  # drawn by the frontend as a plain Checkbox

    def preprocess(self, payload: Any) -> Any:
        if payload is None or isinstance(payload, bool):
            return payload
        raise gr.Error(f"{self.label or 'a checkbox'}: expected true or false, got "
                       f"{type(payload).__name__} {str(payload)[:40]!r}", print_exception=False)


class UploadImage(gr.Image):
    """A gr.Image whose uploaded file reaches editing.images unopened. Gradio's own preprocess opens it with PIL
    first, so an empty, corrupt, non-image or decompression-bomb file failed there with a generic error."""

    is_template = True  # drawn by the frontend as a plain Image

    def preprocess(self, payload: Any) -> Any:
        if payload is None:
            return None
        if not is_uploaded(payload.path):  # only Gradio's uploads are read, whatever the payload claims
            raise gr.Error(NOT_UPLOADED, print_exception=False)
        return str(payload.path)


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
            _check_editor_image(what, source)
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


def _check_editor_image(what: str, source: Any) -> None:
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


def image_input(label: str, height: int = 260) -> gr.Image:
    """An upload that hands the service a file path; conversion and its notes happen in editing.images."""
    return UploadImage(label=label, type="filepath", image_mode=None, sources=["upload", "clipboard"],
                       height=height, elem_classes=[PIXELATED, "studio-upload"])


def examples(paths: list[str], inputs: list[gr.components.Component], label: str = "Held-out examples") -> None:
    """Example uploads from app/examples (omitted when there are none)."""
    if paths:
        gr.Examples(examples=[[p] * len(inputs) for p in paths], inputs=inputs, label=label,
                    cache_examples=False, examples_per_page=12)
