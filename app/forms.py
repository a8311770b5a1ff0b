"""The studio's form values -> engine arguments, one parser per concept, each with a message fit to show.

Class labels (`parse_class`, and `parse_style` for the studio's style box), numbers (`parse_number`), seeds
(`parse_seed`, `seed_range`: one limit, `MAX_SEED`, and seed + count checked for every task), counts
(`parse_count`), schedules (`parse_schedule` over `parse_steps_or_ts`; `stroke_schedule`) and the editor's painted
mask (`mask_from_editor`). Every problem is an `InputError` (a `ValueError`) from `editing.images`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from editing.images import (MAX_BYTES, MAX_PIXELS, ConvertedMask, FullImage, InputError, _any_resize,
                            _check_resolution, _resize_note, _source_pixels, load_full, load_image)
from editing.schedules import PRESETS, Schedule, parse_ts, steps_schedule, uniform

GRID = 40  # points of the Karras grid for step counts and stroke strengths (the OpenAI convention)
MAX_SEED = 2**32 - 1  # the one seed limit: the seed boxes' maximum, and every seed + count - 1
MAX_EVALUATIONS = 64  # network evaluations per image in one request
MAX_GRID = 1000  # points of a sigma grid implied by a ts list
NO_STYLE = "(unconditional)"
UNCONDITIONAL = ("", NO_STYLE, "unconditional", "none")
NUMBER_LIST = re.compile(r"[\s\d_,.+-]+")  # text that reads as numbers (not a preset name)


# -- class labels ------------------------------------------------------------------------------------


def _names_no_class(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in UNCONDITIONAL)


def parse_class(value: Any, class_names: Sequence[str]) -> int | None:
    """A class name (case-insensitive) or index -> its index; None/"" (or "(unconditional)") -> None."""
    if _names_no_class(value):
        return None
    if not class_names:
        raise InputError(f"this model is unconditional: it takes no class (got {_echo(value)})")
    shown = ", ".join(class_names[:20]) + (f", ... ({len(class_names)} in all)" if len(class_names) > 20 else "")
    if isinstance(value, bool):
        raise InputError(f"unknown class {_echo(value)}; choose one of {shown}")
    if isinstance(value, (int, np.integer)) or (isinstance(value, str) and value.strip().isdigit()):
        if isinstance(value, str) and value.strip() in class_names:
            return list(class_names).index(value.strip())
        index = int(value)
        if not 0 <= index < len(class_names):
            raise InputError(f"class index {index} is out of range 0-{len(class_names) - 1}; choose one of {shown}")
        return index
    if isinstance(value, str):
        wanted = value.strip().casefold()
        for index, class_name in enumerate(class_names):
            if class_name.casefold() == wanted:
                return index
    raise InputError(f"unknown class {_echo(value)}; choose one of {shown}")


def parse_style(style: Any, class_names: Sequence[str]) -> tuple[int | None, list[str]]:
    """The studio's style box: the class index (`parse_class`; the first style when none is given), and a note
    if defaulted. A digit outside ASCII ("²") is an unknown style, not a number. The box is shared by every
    model, and the API's default is the first model's first style, so a model without styles ignores it, with
    a note."""
    if not class_names:
        return None, [] if _names_no_class(style) else [f"this model has no styles: {_echo(style)} ignored"]
    if isinstance(style, str) and any(c.isdigit() and not c.isascii() for c in style):
        raise InputError(f"unknown style {_echo(style)}; choose one of {', '.join(class_names)}")
    label = parse_class(style, class_names)
    if label is None:
        return 0, [f"no style given: using {class_names[0]!r}"]
    return label, []


# -- numbers and seeds -------------------------------------------------------------------------------


def parse_number(value: Any, what: str = "a number field") -> int | float:
    """A finite number from a JSON number or a numeric string ("7", "0.25"); anything else (a word, a list,
    true/false, nothing, NaN) is an InputError naming the field."""
    number = value
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = None
    if isinstance(number, bool) or not isinstance(number, (int, float, np.integer, np.floating)):
        shown = "nothing" if value is None else f"{type(value).__name__} {_echo(value)}"
        raise InputError(f"{what}: expected a number, got {shown}")
    if not math.isfinite(number):
        raise InputError(f"{what}: expected a finite number, got {number}")
    return number


def parse_point(value: Any, what: str) -> tuple[float, float]:
    """(x, y) from a pair of numbers (a click on an image: its pixel); anything else is an InputError."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        shown = "nothing" if value is None else f"{type(value).__name__} {_echo(value)}"
        raise InputError(f"{what}: expected two numbers (x, y), got {shown}")
    return float(parse_number(value[0], what)), float(parse_number(value[1], what))


def parse_seed(value: Any, *, maximum: int = MAX_SEED) -> int:
    """A seed from a number box or text: a whole number from 0 to `maximum` (`MAX_SEED`)."""
    expected = f"a seed must be a whole number from 0 to {maximum}"
    try:
        number = parse_number(value, "seed")
    except InputError:
        raise InputError(f"{expected}, got {_echo(value)}") from None
    if isinstance(number, (float, np.floating)) and not float(number).is_integer():
        raise InputError(f"{expected}, got {_echo(value)}")
    number = int(number)
    if not 0 <= number <= maximum:
        raise InputError(f"{expected}, got {number}")
    return number


def check_seed(seed: Any, name: str = "seed") -> int:
    """`parse_seed` with the field's name in front of its message."""
    try:
        return parse_seed(seed)
    except ValueError as e:
        raise type(e)(f"{name}: {e}") from None


def seed_range(seed: int, count: int, what: str) -> list[int]:
    """The seeds of `count` outputs, `seed` to `seed + count - 1`, all within `MAX_SEED`."""
    if seed + count - 1 > MAX_SEED:
        raise InputError(f"seed + {what} must stay below {MAX_SEED}")
    return [seed + i for i in range(count)]


def parse_count(value: float | int | None, name: str, low: int, high: int) -> int:
    """A whole number of things (batch, variations, frames, steps) from `low` to `high`."""
    if value is None or (isinstance(value, float) and (not math.isfinite(value) or value != int(value))):
        raise ValueError(f"{name} must be a whole number between {low} and {high}, got {value}")
    value = int(value)
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _echo(value: Any, limit: int = 60) -> str:
    """A user's value for an error message, shortened so a huge input is not sent back whole."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'" + f" ({len(str(value)):,} characters)"


# -- schedules ----------------------------------------------------------------------------------------


def check_number_text(value: Any, what: str) -> None:
    """Text that reads as numbers must be ASCII whole numbers between single commas, ascending when a list: no
    silent coercion of "1_0", "²", "0,,39" or "39,0" (which the parser would take or misreport)."""
    if not isinstance(value, str) or not NUMBER_LIST.fullmatch(value) or not value.strip():
        return
    entries = [entry.strip() for entry in value.strip().split(",")]
    for position, entry in enumerate(entries, 1):
        if not entry:
            raise ValueError(f"{what}: entry {position} of {_echo(value)} is empty (two commas in a row, "
                             "or a comma at an end); write whole numbers like 0,22,39")
        if not (entry.isascii() and entry.isdigit()):
            raise ValueError(f"{what}: {_echo(entry)} is not a whole number written with the digits 0-9")
    numbers = [int(entry) for entry in entries if len(entry) <= 9]
    if len(numbers) == len(entries) > 1 and any(b <= a for a, b in zip(numbers, numbers[1:])):
        raise ValueError(f"{what}: a ts list must be strictly ascending indices like 0,22,39, got {_echo(value)}")


def parse_schedule(text: str | None, default: Schedule, tuned: dict[int, Schedule] | None = None) -> Schedule:
    """The studio's steps box: a preset name, a number of steps ("4": the model's `tuned` ts for 4 if any, else
    even on a 40-point grid) or a ts list ("0,22,39", its own grid), strictly (`check_number_text`)."""
    if isinstance(text, str) and any(c.isdigit() and not c.isascii() for c in text):
        raise ValueError(f"steps: {_echo(text)} has a character that is not one of the digits 0-9")
    check_number_text(text, "steps")
    return parse_steps_or_ts(text, None, default=default, tuned=tuned)


STROKE_STRENGTH = 15  # the default: starts at index 24 (sigma 0.82 on the shipped grid), the subject is kept


def stroke_start(strength: int) -> int:
    """The stroke edit's plain-language strength (how much may change: 1 a touch-up, GRID - 1 a new image from
    pure noise) -> the starting index into the GRID-point sigma grid (SDEdit: a later index keeps more)."""
    strength = int(strength)
    if not 1 <= strength <= GRID - 1:
        raise ValueError(f"strength must be between 1 and {GRID - 1}, got {strength}")
    return GRID - 1 - strength


def stroke_schedule(start: int, steps: int) -> Schedule:
    """`steps` evaluations from index `start` of the 40-point grid down to its end (SDEdit strength)."""
    start, steps = int(start), int(steps)
    if not 0 <= start <= GRID - 2:
        raise ValueError(f"strength (the starting index) must be between 0 and {GRID - 2}, got {start}")
    if not 1 <= steps <= GRID - 1 - start:
        raise ValueError(f"steps must be between 1 and {GRID - 1 - start} at strength {GRID - 1 - start} (it starts "
                         f"at index {start}), got {steps}")
    return uniform(steps, GRID, start)


AUTO_STEPS = "auto"  # the steps box's "the task's default for its denoiser" (tasks.inpaint_schedule)


def is_auto(value: Any) -> bool:
    """Whether a steps value asks for the task's default: none, empty or AUTO_STEPS."""
    return value is None or (isinstance(value, str) and value.strip().lower() in ("", AUTO_STEPS))


def parse_steps_or_ts(value: Any, n: int | None = GRID, *, default: Schedule | None = None,
                      max_evaluations: int = MAX_EVALUATIONS, max_grid: int = MAX_GRID,
                      tuned: Mapping[int, Schedule] | None = None) -> Schedule:
    """A preset name, a step count or a ts list "0,22,39" -> Schedule; `default` for none or AUTO_STEPS.

    A step count k takes the model's tuned ts for k (`tuned`, from its schedules.json) where it has one,
    else k indices spread evenly on an n-point grid.

    For a ts list, `n=None` takes the grid from the list (its last index + 1, at most `max_grid` points).
    At most `max_evaluations` network evaluations, so one request cannot occupy the device for long.
    """
    if is_auto(value):
        if default is None:
            raise InputError("steps are missing: give a number of steps like 4, or a ts list like 0,22,39")
        return default
    try:
        schedule = _parse_schedule(value, n, max_grid, tuned or {})
    except InputError:
        raise
    except ValueError as e:
        message = str(e)
        raise InputError(message if len(message) <= 300 else message[:290] + "...]") from None
    if schedule.evaluations > max_evaluations:
        raise InputError(f"{schedule.evaluations} steps is more than the {max_evaluations} allowed per request")
    return schedule


def _parse_schedule(value: Any, n: int | None, max_grid: int, tuned: Mapping[int, Schedule]) -> Schedule:
    if isinstance(value, bool):
        raise ValueError(f"steps must be a number or a ts list, got {value!r}")
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or not float(value).is_integer():
            raise ValueError(f"steps must be a whole number, got {value!r}")
        value = int(value)
    if isinstance(value, (int, np.integer)):
        return steps_schedule(int(value), tuned, n)
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    if not isinstance(value, str):
        raise ValueError(f"steps must be a number or a ts list, got {type(value).__name__}")
    text = value.strip()
    if text in PRESETS:
        return PRESETS[text]
    if text.isdigit():
        if len(text) > 6:
            raise ValueError(f"steps must be between 1 and {(n or GRID) - 1}, got {_echo(text)}")
        return steps_schedule(int(text), tuned, n)
    if "," in text:
        if len(text) > 8 * max_grid:
            raise ValueError(f"the ts list is too long ({len(text):,} characters)")
        if n is None:
            last = text.rstrip(", ").rsplit(",", 1)[-1].strip()
            if not last.lstrip("-").isdigit() or len(last) > 9:
                raise ValueError(f"ts must be comma-separated integers like '0,22,39', got {_echo(text)}")
            n = int(last) + 1
            if n > max_grid:
                raise ValueError(f"ts must stay below index {max_grid} (a grid of at most {max_grid} points), "
                                 f"got {int(last)}")
        try:
            return parse_ts(text, n)
        except ValueError as e:
            if "comma-separated" in str(e):
                raise ValueError(f"ts must be comma-separated integers like '0,22,39', got {_echo(text)}") from None
            raise
    raise ValueError(f"steps must be a preset from the list, a number of steps like 4, "
                     f"or grid indices like 0,22,39; got {_echo(text)}")


# -- images ---------------------------------------------------------------------------------------------


def load_upload(value: Any, resolution: int, what: str, *, crop: bool = False) -> tuple[torch.Tensor, list[str]]:
    """An image field's upload at `resolution` (editing.images.load_image, `crop` as there), its notes prefixed
    with `what`."""
    if value is None or (isinstance(value, str) and not value):
        raise ValueError(f"{what}: no image given; upload one (or pick an example)")
    converted = load_image(value, resolution, crop=crop)
    return converted.tensor, [f"{what}: {n}" for n in converted.notes]


def load_upload_full(value: Any, what: str) -> FullImage:
    """An image field's upload at its own size (editing.images.load_full: transparency on white, its alpha
    kept to put back), its notes prefixed with `what`."""
    if value is None or (isinstance(value, str) and not value):
        raise ValueError(f"{what}: no image given; upload one (or pick an example)")
    converted = load_full(value)
    return FullImage(converted.tensor, converted.alpha, [f"{what}: {n}" for n in converted.notes], converted.exif)


# -- the editor's mask ---------------------------------------------------------------------------------


def full_size_mask(painted: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A painted layer -> a (height, width) mask of the image. A square layer of another size is the square
    canvas (app.tabs.canvas.load_canvas: the image centred on it), so the image's part is cut out of it;
    any other layer is stretched. A pixel is filled if any painted pixel falls in it."""
    height, width = shape
    if painted.shape == shape:
        return painted
    layer = torch.from_numpy(np.ascontiguousarray(painted))[None].float()
    if painted.shape[0] != painted.shape[1]:
        return torch.nn.functional.adaptive_max_pool2d(layer, shape)[0].numpy() > 0
    side = max(height, width)
    square = torch.nn.functional.adaptive_max_pool2d(layer, (side, side))[0].numpy() > 0
    top, left = (side - height) // 2, (side - width) // 2
    return square[top:top + height, left:left + width]


def strokes_over(image: torch.Tensor, editor_value: dict, resolution: int) -> tuple[torch.Tensor, ConvertedMask]:
    """The editor's strokes painted over the full-size image (1, 3, H, W): where a layer is painted, the
    composite's colour there (mapped back like `full_size_mask`), elsewhere the image's own pixels; and the
    painted pixels, (1, 1, H, W)."""
    height, width = image.shape[-2:]
    converted = mask_from_editor(editor_value, resolution, shape=(height, width))
    painted = converted.mask[0, 0]
    if not painted.any():
        return image, converted
    if editor_value.get("composite") is None:
        raise InputError("the editor sent no composite image: paint on the canvas again")
    colours = load_full(editor_value["composite"]).tensor
    side = max(height, width)
    if colours.shape[-2] == colours.shape[-1] and (height, width) != tuple(colours.shape[-2:]):
        top, left = (side - height) // 2, (side - width) // 2
        colours = torch.nn.functional.interpolate(colours, size=(side, side), mode="nearest")
        colours = colours[..., top:top + height, left:left + width]
    else:
        colours = torch.nn.functional.interpolate(colours, size=(height, width), mode="nearest")
    return torch.where(painted, colours, image), converted


def mask_from_editor(editor_value: dict, resolution: int, *, shape: tuple[int, int] | None = None,
                     max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> ConvertedMask:
    """A gr.ImageEditor value {"background", "layers", "composite"} -> the painted pixels (alpha > 0) as an
    R x R mask, or with `shape` (height, width) as a mask of that size (the full-size image's); a cell is
    filled if any painted pixel falls in it."""
    _check_resolution(resolution)
    height_out, width_out = shape or (resolution, resolution)
    if not isinstance(editor_value, dict):
        raise InputError("no drawing was received: paint the mask over the image with the brush")
    layers = editor_value.get("layers") or []
    if not isinstance(layers, (list, tuple)):
        raise InputError("the editor's layers are malformed: expected a list of images")
    out = np.zeros((height_out, width_out), bool)
    notes: list[str] = []
    for index, layer in enumerate(layers):
        if layer is None:
            continue
        layer_notes: list[str] = []
        source, name = _source_pixels(layer, resolution, max_pixels, max_bytes, layer_notes)
        name = f"layer {index + 1}"
        if isinstance(source, Image.Image):
            if source.mode not in ("RGBA", "LA", "PA") and "transparency" not in source.info:
                raise InputError(f"{name} has no transparency ({source.mode}); painted layers must be RGBA")
            painted = np.asarray(source.convert("RGBA").getchannel("A")) > 0
        else:
            if source.ndim != 3 or source.shape[2] not in (2, 4):
                raise InputError(f"{name} has shape {tuple(source.shape)}; painted layers must be HxWx4 (RGBA)")
            painted = source[:, :, -1] > 0
        height, width = painted.shape
        if shape is None:
            out |= _any_resize(painted, resolution)
            note = _resize_note(width, height, resolution, f"layer {index + 1} resized")
        else:
            out |= full_size_mask(painted, shape)
            if painted.shape == shape:
                note = None
            elif height == width:  # the square canvas: the image's part of it, as full_size_mask cuts it
                on_canvas = (round(width_out * width / max(shape)), round(height_out * height / max(shape)))
                note = (f"layer {index + 1}: the image's {on_canvas[0]}x{on_canvas[1]} on the {width}x{height} canvas "
                        f"mapped to {width_out}x{height_out}")
            else:
                note = f"layer {index + 1} resized {width}x{height} -> {width_out}x{height_out}"
        if note and not notes:
            notes.append(note + " (a cell is filled if any painted pixel is in it)")
    if not any(layer is not None for layer in layers):
        notes.append("nothing was painted")
    return ConvertedMask(torch.from_numpy(out)[None, None].contiguous(), notes)
