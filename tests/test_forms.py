"""app.forms: the studio's form values (class labels, numbers, seeds, schedules, the editor's mask) parsed with
a clear InputError, one parser per concept."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from app import forms
from app.forms import MAX_SEED, mask_from_editor
from editing import images
from editing.images import InputError
from editing.schedules import PRESETS
from tests.test_images import R, encode, write


# -- the editor's mask ----------------------------------------------------------------------------------


def test_mask_from_editor(tmp_path: Path) -> None:
    background = Image.new("RGB", (64, 64), "white")
    layer = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    layer.paste((255, 0, 0, 255), (0, 0, 4, 4))  # the top-left 4x4 of 64x64 -> the top-left cell of 16x16
    layer_path = write(tmp_path, "layer.png", encode(layer, "PNG"))
    other = np.zeros((64, 64, 4), np.uint8)
    other[60:, 60:, 3] = 1  # a faint stroke still counts
    out = mask_from_editor({"background": background, "layers": [str(layer_path), other],
                            "composite": background}, R)
    assert out.mask.shape == (1, 1, R, R)
    assert out.mask[0, 0, 0, 0] and out.mask[0, 0, -1, -1] and int(out.mask.sum()) == 2
    nothing = mask_from_editor({"background": background, "layers": [], "composite": background}, R)
    assert images.is_empty(nothing.mask) and nothing.notes == ["nothing was painted"]


@pytest.mark.parametrize("value,words", [
    (None, "no drawing"),
    ({"layers": "oops"}, "malformed"),
    ({"layers": [Image.new("RGB", (8, 8))]}, "no transparency"),
    ({"layers": [np.zeros((8, 8, 3), np.uint8)]}, "RGBA"),
    ({"layers": [b""]}, "empty"),
])
def test_bad_editor_values(value: Any, words: str) -> None:
    with pytest.raises(InputError, match=words):
        mask_from_editor(value, R)


# -- form values ----------------------------------------------------------------------------------------


CLASSES = ("twemoji", "noto", "fluent3d")


@pytest.mark.parametrize("value,expected", [("noto", 1), ("  Fluent3D ", 2), (0, 0), ("2", 2), (np.int64(1), 1),
                                            (None, None), ("", None), ("(unconditional)", None)])
def test_parse_class(value: Any, expected: int | None) -> None:
    assert forms.parse_class(value, CLASSES) == expected


@pytest.mark.parametrize("value,words", [("emoji", "unknown class 'emoji'; choose one of twemoji, noto, fluent3d"),
                                         (3, "out of range 0-2"), (-1, "out of range"), (True, "unknown class"),
                                         (1.5, "unknown class")])
def test_parse_class_errors(value: Any, words: str) -> None:
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        forms.parse_class(value, CLASSES)


def test_parse_class_unconditional_model_and_long_lists() -> None:
    with pytest.raises(InputError, match="unconditional"):
        forms.parse_class("noto", ())
    with pytest.raises(InputError, match=r"\(1000 in all\)"):
        forms.parse_class("zebra crossing", [f"class {i}" for i in range(1000)])



def test_parse_style_defaults_and_a_model_without_styles() -> None:
    assert forms.parse_style(None, CLASSES) == (0, ["no style given: using 'twemoji'"])
    assert forms.parse_style("noto", CLASSES) == (1, [])
    # the box is shared by every model: another model's style is ignored by a model without styles, and said so
    assert forms.parse_style("twemoji", ()) == (None, ["this model has no styles: 'twemoji' ignored"])
    assert forms.parse_style("(unconditional)", ()) == (None, []) and forms.parse_style(None, ()) == (None, [])
    with pytest.raises(InputError, match="'emoji'; choose one of twemoji"):
        forms.parse_style("emoji", CLASSES)


@pytest.mark.parametrize("value,expected", [(0, 0), (42, 42), (42.0, 42), (" 7 ", 7), ("9e3", 9000),
                                            (MAX_SEED, MAX_SEED), (np.int32(5), 5)])
def test_parse_seed(value: Any, expected: int) -> None:
    assert forms.parse_seed(value) == expected


@pytest.mark.parametrize("value", [-1, MAX_SEED + 1, 1.5, float("nan"), float("inf"), "abc", "", True, None, [1]])
def test_parse_seed_errors(value: Any) -> None:
    with pytest.raises(InputError, match=f"whole number from 0 to {MAX_SEED}"):
        forms.parse_seed(value)


@pytest.mark.parametrize("value,expected", [(3, 3), (0.25, 0.25), (" 7 ", 7), ("-2.5", -2.5), (np.float32(1.5), 1.5)])
def test_parse_number(value: Any, expected: float) -> None:
    number = forms.parse_number(value, "Frames")
    assert number == expected and type(number) is type(expected) or isinstance(value, np.floating)


@pytest.mark.parametrize("value,message", [("lucky", "expected a number, got str 'lucky'"), ([4], "got list"),
                                           (True, "got bool"), ({"n": 3}, "got dict"), (None, "got nothing"),
                                           (float("nan"), "finite"), ("inf", "finite")])
def test_parse_number_errors(value: Any, message: str) -> None:
    with pytest.raises(InputError, match=f"^Frames: .*{re.escape(message)}"):
        forms.parse_number(value, "Frames")


def test_parse_steps_or_ts() -> None:
    assert forms.parse_steps_or_ts("4").evaluations == 4
    assert forms.parse_steps_or_ts(2.0).ts == (0, 20, 39)
    assert forms.parse_steps_or_ts("0, 22, 39").ts == (0, 22, 39)
    assert forms.parse_steps_or_ts([0, 22, 39]).ts == (0, 22, 39)
    assert forms.parse_steps_or_ts("0,10,17", n=None).n == 18
    assert forms.parse_steps_or_ts("1 step") == PRESETS["1 step"]
    assert forms.parse_steps_or_ts(None, default=PRESETS["strokes"]) == PRESETS["strokes"]


@pytest.mark.parametrize("value,words", [
    ("0,22", "must end at n-1 = 39"), ("39,0", "must end at n-1|ascending"), ("0,22,22,39", "strictly ascending"),
    ("0,a,39", "comma-separated integers"), ("-3,39", ">= 0"), (0, "between 1 and 39"), ("100", "between 1 and 39"),
    (2.5, "whole number"), ("lots", "a preset"), (None, "missing"), (True, "number or a ts list"),
])
def test_parse_steps_or_ts_errors(value: Any, words: str) -> None:
    with pytest.raises(InputError, match=words):
        forms.parse_steps_or_ts(value)


def test_parse_steps_or_ts_bounds_the_work_and_the_message() -> None:
    with pytest.raises(InputError, match="more than the 64 allowed"):
        forms.parse_steps_or_ts(",".join(str(i) for i in range(100)), n=None)
    with pytest.raises(InputError, match="at most 1000 points"):
        forms.parse_steps_or_ts("0,999999999", n=None)
    assert forms.parse_steps_or_ts("39", n=None).evaluations == 39
    for huge in ("x" * 100_000, "9" * 100_000, ",".join(["0"] * 3000), "0," + "1" * 5000):
        with pytest.raises(InputError) as info:
            forms.parse_steps_or_ts(huge, n=None)
        assert len(str(info.value)) < 400
    with pytest.raises(InputError) as info:
        forms.parse_class("q" * 10_000, CLASSES)
    assert len(str(info.value)) < 400
