"""Input widgets that check their API payloads (a clear message naming the field, never Gradio's generic one),
and the shared seed row, step picker, variations slider and image upload built from them."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import gradio as gr

from app import forms
from app.guard import NOT_UPLOADED, is_uploaded
from app.tabs.outputs import PIXELATED
from editing import images

# (label, value): plain labels in the page; the values are what the API takes (app.forms.parse_schedule).
STEP_CHOICES = [("1 step (fastest)", "1 step"), ("2 steps", "2"), ("3 steps", "3"), ("4 steps", "4"),
                ("8 steps", "8"), ("18 steps", "editing 18"), ("40 steps (slowest)", "editing 40")]
STEPS_INFO = ("more steps: slower, and usually more detail. Technical: network evaluations, spread over a "
              "40-point noise grid (tuned for the model where it has them); or type grid indices like 0,22,39")
UNDOCUMENTED = "undocumented"  # UI plumbing: callable, but kept out of the API page
RANDOM_SEEDS = 2**31  # the dice draws below this, far under forms.MAX_SEED, so seed + batch stays in range


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


def image_input(label: str, height: int = 260) -> gr.Image:
    """An upload that hands the service a file path; conversion and its notes happen in editing.images."""
    return UploadImage(label=label, type="filepath", image_mode=None, sources=["upload", "clipboard"],
                       height=height, elem_classes=[PIXELATED, "studio-upload"])


def seed_row(api_prefix: str, label: str = "Seed", value: int = 0) -> NumberInput:
    """A seed box with a randomize button (the seed used is what the box shows)."""
    with gr.Row(equal_height=True):
        seed = NumberInput(label=label, value=value, precision=0, minimum=0, maximum=forms.MAX_SEED, scale=3)
        dice = gr.Button("Random seed", scale=1, size="sm")
    dice.click(lambda: random.randrange(RANDOM_SEEDS), outputs=seed, api_name=f"{api_prefix}_random_seed",
               api_visibility=UNDOCUMENTED, show_progress="hidden")
    return seed


def steps_picker(default: str, label: str = "Steps", info: str = STEPS_INFO, auto: str = "Auto") -> gr.Dropdown:
    """The steps box: the choices of STEP_CHOICES (with `default` first when it is not one of them; AUTO_STEPS,
    the task's own choice, under the label `auto`)."""
    return gr.Dropdown(choices=step_choices(default, auto), value=default, label=label, allow_custom_value=True,
                       info=info)


def step_choices(value: str, auto: str = "Auto") -> list[tuple[str, str]]:
    """STEP_CHOICES, with `value` first when it is not one of them (AUTO_STEPS under the label `auto`). (Not a
    component: one built while the page is laid out would be drawn as a stray box.)"""
    if value in [v for _, v in STEP_CHOICES]:
        return STEP_CHOICES
    return [(auto, value) if value == forms.AUTO_STEPS else (value, value), *STEP_CHOICES]


def steps_picker_update(value: str) -> gr.Dropdown:
    """A steps box set to `value` (added to its choices when it is not one of them), for an event's reply."""
    return gr.Dropdown(choices=step_choices(value), value=value)


def variations_slider(value: int = 4, label: str = "Variations") -> SliderInput:
    return SliderInput(1, 8, value=value, step=1, label=label)


EDIT_WITH_CHOICES = [("Auto (the teacher on a photo model)", "auto"), ("Diffusion teacher", "teacher"),
                     ("Consistency model", "cm")]


def edit_with_radio() -> gr.Radio:
    """Which denoiser the edit's solver runs with (app.studio.Studio.edit_model)."""
    return gr.Radio(EDIT_WITH_CHOICES, value="auto", label="Denoiser",
                    info="teacher: closest to your image (higher PSNR on photos); consistency model: crisper, "
                    "invents more detail. Technical: the denoiser inside Algorithm 4")
