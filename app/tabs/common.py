"""Pieces every tab shares: result widgets, seed rows, step pickers, progress and error handling."""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import gradio as gr

from editing import images

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

STEP_CHOICES = ["1 step", "2", "3", "4", "8", "ImageNet64 CD 2-step", "LSUN bedroom CD 2-step",
                "editing 18", "editing 40"]
STEPS_INFO = ("a preset, a number of steps (generation: the ts tuned for the model where it has them, else even "
              "on a 40-point grid), or your own ts list like 0,22,39")
PIXELATED = "pixelated"  # CSS class: show small images big and crisp
UNDOCUMENTED = "undocumented"  # UI plumbing: callable, but kept out of the API page


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
            raise gr.Error(str(e), print_exception=False) from None
        except Exception:  # noqa: BLE001 - the user sees a message, the log keeps the trace
            log.exception("task failed")
            raise gr.Error("Something went wrong inside the studio (details are in the server log). "
                           "Try again, or change the inputs.", print_exception=False) from None

    return wrapper  # type: ignore[return-value]


def progress_callback(progress: gr.Progress, desc: str) -> Callable[[int, int], None]:
    """The service's on_step(done, total), fed to a Gradio progress bar."""

    def on_step(done: int, total: int) -> None:
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
        seed = NumberInput(label=label, value=value, precision=0, minimum=0, maximum=2**32 - 1, scale=3)
        dice = gr.Button("Random seed", scale=1, size="sm")
    dice.click(lambda: random.randrange(2**31), outputs=seed, api_name=f"{api_prefix}_random_seed",
               api_visibility=UNDOCUMENTED, queue=False, show_progress="hidden")
    return seed


def steps_picker(default: str, label: str = "Steps") -> gr.Dropdown:
    choices = STEP_CHOICES if default in STEP_CHOICES else [default, *STEP_CHOICES]
    return gr.Dropdown(choices=choices, value=default, label=label, allow_custom_value=True, info=STEPS_INFO)


def variations_slider(value: int = 4, label: str = "Variations") -> SliderInput:
    return SliderInput(1, 8, value=value, step=1, label=label)


def as_number(payload: Any, label: str | None) -> int | float:
    """A number from an API payload (see editing.images.parse_number), or a gr.Error naming the field where
    Gradio's own check failed with a generic error."""
    try:
        return images.parse_number(payload, label or "a number field")
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
        return _bounded(super().preprocess, as_number(payload, self.label), self.label)


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
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        return super().preprocess(payload)


class DrawingEditor(gr.ImageEditor):
    """A gr.ImageEditor whose unreadable layers give a clear gr.Error instead of Gradio's generic one."""

    is_template = True  # drawn by the frontend as a plain ImageEditor

    def preprocess(self, payload: Any) -> Any:
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise
        except Exception as e:  # noqa: BLE001 - PIL raises many types for unreadable files
            raise gr.Error(f"the drawing could not be read: one of its layers is not a readable image "
                           f"({type(e).__name__})", print_exception=False) from None


def image_input(label: str, height: int = 260) -> gr.Image:
    """An upload that hands the service a file path; conversion and its notes happen in editing.images."""
    return UploadImage(label=label, type="filepath", image_mode=None, sources=["upload", "clipboard"],
                       height=height, elem_classes=[PIXELATED, "studio-upload"])


def examples(paths: list[str], inputs: list[gr.components.Component], label: str = "Held-out examples") -> None:
    """Example uploads from app/examples (omitted when there are none)."""
    if paths:
        gr.Examples(examples=[[p] * len(inputs) for p in paths], inputs=inputs, label=label,
                    cache_examples=False, examples_per_page=12)
