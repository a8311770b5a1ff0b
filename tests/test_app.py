"""The studio through its HTTP API: every api_name called with real PNGs (gradio_client), outputs checked.

The app runs in a background thread on 127.0.0.1 with a tiny class-conditional 16x16 model and a copy
of it as the diffusion teacher, so the whole module takes well under a minute on a CPU.
"""

from __future__ import annotations

import json

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from app.tabs.examples import ExampleSets  # noqa: E402
from tests.app_server import RESOLUTION, make_weights, start_app  # noqa: E402

R = RESOLUTION
TASKS = ("generate", "inpaint", "colorize", "superresolve", "stroke_edit", "interpolate", "add_noise", "denoise",
         "compare")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    weights = make_weights(tmp_path_factory.mktemp("studio") / "weights")
    demo, url = start_app(weights, examples=ExampleSets())
    try:
        yield Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))
    finally:
        demo.close()


@pytest.fixture(scope="module")
def pngs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real PNG files: a mid-range colour image, masks, a small image and a grayscale one."""
    folder = tmp_path_factory.mktemp("pngs")
    rng = np.random.default_rng(0)
    files = {}

    def save(name: str, array: np.ndarray, mode: str | None = None) -> None:
        files[name] = folder / f"{name}.png"
        Image.fromarray(array, mode).save(files[name])

    save("image", rng.integers(48, 208, (R, R, 3), dtype=np.uint8))
    save("image_b", rng.integers(48, 208, (R, R, 3), dtype=np.uint8))
    mask = np.zeros((R, R), dtype=np.uint8)
    mask[4:12, 4:12] = 255
    save("mask", mask)
    save("empty_mask", np.zeros((R, R), dtype=np.uint8))
    save("full_mask", np.full((R, R), 255, dtype=np.uint8))
    save("small", rng.integers(64, 192, (R // 4, R // 4, 3), dtype=np.uint8))
    save("gray", rng.integers(48, 208, (R, R), dtype=np.uint8))
    layer = np.zeros((R, R, 4), dtype=np.uint8)
    layer[0:8, 0:8] = (255, 0, 255, 255)
    save("layer", layer, "RGBA")
    return files


def pixels(path: str | Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def model_res(files: list[str]) -> list[str]:
    """The downloads at model resolution (the enlarged ones carry an -xN suffix)."""
    return [f for f in files if not re.search(r"-x\d+\.png$", f) and f.endswith(".png")]


def call(client: Client, api_name: str, **kwargs: Any) -> Any:
    return client.predict(api_name=f"/{api_name}", **kwargs)


COMMON = dict(model_name="tiny-cm", style_name="noto")


def test_every_task_has_an_api_name(client: Client) -> None:
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert set(f"/{t}" for t in TASKS) <= set(endpoints)
    # every value a task returns is named for what it is on the API page (an unlabelled one reads 'value_23')
    returns = [r["label"] for t in TASKS for r in endpoints[f"/{t}"]["returns"]]
    assert "notes" in returns and not [r for r in returns if re.fullmatch(r"value_\d+", str(r))], returns


def test_every_choice_the_api_page_lists_is_accepted(client: Client) -> None:
    """The API page lists every Radio's and Dropdown's choices as strings (Literal['2', '4']), and Gradio accepts
    only the choices' own values, so each must be that string: an integer choice was refused as the page gave it."""
    choosers = [c["props"] for c in client.config["components"]
                if c["type"] in ("radio", "dropdown") and c["props"].get("choices")]
    choices = [(props.get("label"), value) for props in choosers for _, value in props["choices"]]
    assert ("Factor", "4") in choices
    assert [(label, value) for label, value in choices if not isinstance(value, str)] == []


def test_generate_shapes_captions_and_reproducible_seeds(client: Client) -> None:
    gallery, notes, files = call(client, "generate", seed=5, batch=3, steps="2", **COMMON)
    assert [item["caption"] for item in gallery] == ["seed 5", "seed 6", "seed 7"]
    small = model_res(files)
    assert len(small) == 3 and all(Image.open(f).size == (R, R) for f in small)
    assert Image.open(gallery[0]["image"]).size[0] >= 256  # the enlarged view
    assert "2 evaluation" in notes
    # Same seed -> same image, whatever the batch it was drawn in.
    _, _, again = call(client, "generate", seed=6, batch=1, steps="2", **COMMON)
    np.testing.assert_array_equal(pixels(model_res(again)[0]), pixels(small[1]))


def test_generate_with_a_custom_ts_list(client: Client) -> None:
    _, notes, files = call(client, "generate", seed=1, batch=1, steps="0,22,39", **COMMON)
    assert "ts = [0, 22, 39]" in notes and len(model_res(files)) == 1


def test_inpaint_keeps_the_unmasked_pixels(client: Client, pngs: dict[str, Path]) -> None:
    gallery, notes, files, _ = call(client, "inpaint", image=handle_file(pngs["image"]), editor=None,
                                 mask=handle_file(pngs["mask"]), steps="4", seed=3, variations=2, **COMMON)
    assert [g["caption"] for g in gallery] == ["seed 3", "seed 4"]
    source = pixels(pngs["image"])
    keep = np.asarray(Image.open(pngs["mask"])) == 0
    outputs = [pixels(f) for f in model_res(files)]
    assert len(outputs) == 2
    for out in outputs:
        assert out.shape == (R, R, 3)
        assert np.abs(out[keep] - source[keep]).max() <= 1.0  # within 1/255 after the PNG round trip
        assert np.abs(out[~keep] - source[~keep]).max() > 1.0  # the hole was filled, not copied
    _, _, again, _ = call(client, "inpaint", image=handle_file(pngs["image"]), editor=None,
                       mask=handle_file(pngs["mask"]), steps="4", seed=3, variations=1, **COMMON)
    np.testing.assert_array_equal(pixels(model_res(again)[0]), outputs[0])


def test_inpaint_with_a_brush_layer_from_the_editor(client: Client, pngs: dict[str, Path]) -> None:
    editor = {"background": handle_file(pngs["image"]), "layers": [handle_file(pngs["layer"])],
              "composite": handle_file(pngs["image"])}
    _, _, files, _ = call(client, "inpaint", image=handle_file(pngs["image"]), editor=editor, mask=None,
                       steps="2", seed=0, variations=1, **COMMON)
    out, source = pixels(model_res(files)[0]), pixels(pngs["image"])
    assert np.abs(out[8:, 8:] - source[8:, 8:]).max() <= 1.0  # the unpainted quarter is kept


def test_inpaint_empty_mask_returns_the_input_and_full_mask_generates(client: Client, pngs: dict[str, Path]) -> None:
    gallery, notes, files, _ = call(client, "inpaint", image=handle_file(pngs["image"]), editor=None,
                                 mask=handle_file(pngs["empty_mask"]), steps="2", seed=0, variations=3, **COMMON)
    assert "empty" in notes and len(gallery) == 1
    assert np.abs(pixels(model_res(files)[0]) - pixels(pngs["image"])).max() <= 1.0
    _, notes, files, _ = call(client, "inpaint", image=handle_file(pngs["image"]), editor=None,
                           mask=handle_file(pngs["full_mask"]), steps="2", seed=0, variations=1, **COMMON)
    assert "generation" in notes and len(model_res(files)) == 1


def test_colorize_keeps_the_luma(client: Client, pngs: dict[str, Path]) -> None:
    gallery, notes, files, _ = call(client, "colorize", image=handle_file(pngs["gray"]), steps="4", seed=2,
                                 variations=2, **COMMON)
    gray = np.asarray(Image.open(pngs["gray"]), dtype=np.float64)
    for f in model_res(files):
        out = pixels(f)
        luma = out @ np.array([0.2989, 0.5870, 0.1140])
        assert out.shape == (R, R, 3)
        # Kept exactly, except where the model's colour left the gamut and a channel was clipped on saving.
        in_gamut = ((out > 0) & (out < 255)).all(axis=-1)
        assert in_gamut.mean() > 0.5
        assert np.abs(luma - gray * 0.9999)[in_gamut].max() <= 1.5


def test_superresolve_keeps_block_means(client: Client, pngs: dict[str, Path]) -> None:
    low_view, gallery, notes, files, _ = call(client, "superresolve", image=handle_file(pngs["small"]), factor="4",
                                           mode="upscale", steps="4", seed=0, variations=2, **COMMON)
    low = pixels(pngs["small"])
    outputs = [f for f in model_res(files) if "superresolve-seed" in f]
    assert len(outputs) == 2 and Path(low_view).is_file()
    for f in outputs:
        out = pixels(f)
        assert out.shape == (R, R, 3)
        blocks = out.reshape(R // 4, 4, R // 4, 4, 3)
        # Kept exactly, except in blocks where a pixel left [0, 255] and was clipped on saving.
        unclipped = ((blocks > 0) & (blocks < 255)).all(axis=(1, 3))
        assert unclipped.mean() > 0.5
        assert np.abs(blocks.mean(axis=(1, 3)) - low)[unclipped].max() <= 1.0


def test_superresolve_restore_reports_psnr(client: Client, pngs: dict[str, Path]) -> None:
    _, gallery, _, files, _ = call(client, "superresolve", image=handle_file(pngs["image"]), factor="2", mode="restore",
                                steps="2", seed=0, variations=1, **COMMON)
    assert "PSNR" in gallery[0]["caption"]
    names = sorted(Path(f["path"] if isinstance(f, dict) else f).name for f in files)
    assert "superresolve-original.png" in names and "superresolve-seed0.png" in names, names


def test_stroke_edit_from_a_painting_file(client: Client, pngs: dict[str, Path]) -> None:
    kwargs = dict(start_image=handle_file(pngs["image"]), canvas=None, strength=19, steps=2, seed=9, variations=2,
                  **COMMON)
    gallery, notes, files, _ = call(client, "stroke_edit", **kwargs)
    first = [pixels(f) for f in model_res(files)]
    assert len(first) == 2 and first[0].shape == (R, R, 3) and "index 20" in notes
    _, _, again, _ = call(client, "stroke_edit", **kwargs)
    np.testing.assert_array_equal(pixels(model_res(again)[0]), first[0])


def strokes_url(layer: np.ndarray) -> str:
    """An RGBA strokes layer as the stroke canvas sends it: a PNG data URL."""
    import base64
    import io

    buffer = io.BytesIO()
    Image.fromarray(layer, "RGBA").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_the_stroke_canvas_paints_its_strokes_over_the_start_image(client: Client, pngs: dict[str, Path]) -> None:
    """The canvas sends only its strokes (a transparent PNG at 512 px); the server paints them over the start
    image as the browser showed it: the edit's input ("before") is the start image with the strokes' colour
    exactly where they are, and the strokes change the result."""
    from app.tabs.canvas import CANVAS

    layer = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    layer[: CANVAS // 2, : CANVAS // 2] = (0, 0, 255, 255)  # the top-left quadrant, opaque blue
    kwargs = dict(start_image=handle_file(pngs["image"]), strength=1, steps=1, seed=3, variations=1, **COMMON)
    outputs = {name: call(client, "stroke_edit", canvas=canvas, **kwargs) for name, canvas in
               [("strokes", {"strokes": strokes_url(layer)}), ("none", {"strokes": None}), ("null", None)]}
    before = {}
    for name, result in outputs.items():
        shown = pixels(result[3][0])  # the before/after slider's "before", enlarged (nearest) for display
        before[name] = shown[:: shown.shape[0] // R, :: shown.shape[1] // R]
    start = pixels(pngs["image"])
    np.testing.assert_array_equal(before["none"], start)
    np.testing.assert_array_equal(before["null"], start)
    expected = start.copy()
    expected[: R // 2, : R // 2] = (0, 0, 255)
    np.testing.assert_array_equal(before["strokes"], expected)
    results = {name: pixels(model_res(result[2])[0]) for name, result in outputs.items()}
    assert np.abs(results["strokes"] - results["none"])[: R // 2, : R // 2].mean() > 20


def test_stroke_edit_live_mode_renders_one_variation_only_when_on(client: Client, pngs: dict[str, Path]) -> None:
    """Live mode (re-render on every canvas or slider change) gives the first variation of a normal render."""
    painting = handle_file(pngs["image"])
    _, _, files, _ = call(client, "stroke_edit", start_image=painting, canvas=None, strength=19, steps=2, seed=9,
                       variations=2, **COMMON)
    gallery, notes, live_files, _ = client.predict(True, painting, None, 19, 2, 9, COMMON["model_name"],
                                                   COMMON["style_name"], api_name="/stroke_edit_live")
    assert len(gallery) == 1 and "index 20" in notes
    np.testing.assert_array_equal(pixels(model_res(live_files)[0]), pixels(model_res(files)[0]))
    off = client.predict(False, painting, None, 19, 2, 9, COMMON["model_name"], COMMON["style_name"],
                         api_name="/stroke_edit_live")
    assert not any(isinstance(v, list) and v for v in off), off  # live mode off: nothing is rendered


def test_interpolate_seeds_and_images(client: Client, pngs: dict[str, Path]) -> None:
    strip, gif, gallery, notes, files = call(
        client, "interpolate", mode_name="seeds", seed_a=1, seed_b=2, image_a=None, image_b=None, frames=5,
        steps="1 step", seed=0, **COMMON)
    assert len(gallery) == 5
    assert Image.open(strip).size[0] == 5 * Image.open(strip).size[1]
    assert any(f.endswith(".gif") for f in files) and Image.open(gif).n_frames >= 5
    frames = [pixels(f) for f in model_res(files) if "frame" in f]
    _, _, gallery, _, files = call(
        client, "interpolate", mode_name="images", seed_a=0, seed_b=0, image_a=handle_file(pngs["image"]),
        image_b=handle_file(pngs["image_b"]), frames=3, steps="1 step", seed=4, **COMMON)
    assert len(gallery) == 3 and len(frames) == 5


def test_add_noise_then_denoise(client: Client, pngs: dict[str, Path]) -> None:
    noisy, note = call(client, "add_noise", image=handle_file(pngs["image"]), noise_sigma=0.3, noise_seed=1,
                       model_name="tiny-cm")
    assert Image.open(noisy).size == (R, R)
    summary, gallery, notes, files, before_after = call(
        client, "denoise", image=handle_file(noisy), use_override=False, sigma=0.2, refine=1, seed=0, **COMMON)
    estimated = float(re.search(r"Estimated noise sigma: ([0-9.]+)", summary).group(1))
    assert 0.05 < estimated < 1.0
    assert len(before_after) == 2 and Image.open(model_res(files)[0]).size == (R, R)
    summary, _, notes, _, _ = call(client, "denoise", image=handle_file(noisy), use_override=True, sigma=0.5,
                                   refine=0, seed=0, **COMMON)
    assert "used: 0.5000" in summary
    assert "faithful: the teacher tiny-edm's D(x, sigma), the MMSE estimate" in notes  # auto: a teacher, no refining
    _, _, notes, _, _ = call(client, "denoise", image=handle_file(noisy), use_override=True, sigma=0.5, refine=0,
                             seed=0, mode="sharp", **COMMON)
    assert "sharp: the consistency model" in notes


def test_compare_steps_and_teacher(client: Client, pngs: dict[str, Path]) -> None:
    gallery, notes, files, table, reference = call(client, "compare", seed=3, reference=None, **COMMON)
    assert reference is None  # generating: no reference to show
    captions = [g["caption"] for g in gallery]
    assert len(captions) == 6 and captions[-1].startswith("teacher Heun 18")
    assert "tiny-edm" not in captions[-1] and "teacher Heun 18 (tiny-edm)" in str(table)  # short caption, full table
    assert table["headers"] == ["method", "evaluations", "ms", "PSNR (dB)"], table["headers"]
    assert all(re.search(r"\d+ evals? · \d+ ms", c) for c in captions)
    assert all(re.match(r"\d+ steps? · PSNR \d+\.\d dB · ", c) for c in captions[:5]), captions
    gallery, *_, reference = call(client, "compare", seed=3, reference=handle_file(pngs["image"]), **COMMON)
    assert len(gallery) == 5 and all("PSNR" in g["caption"] for g in gallery)
    # The reference is shown beside the results, as the model saw it.
    assert Image.open(reference).size == Image.open(gallery[0]["image"]).size


@pytest.mark.parametrize("api_name, kwargs, message", [
    ("generate", dict(seed=0, batch=1, steps="fast please"), "steps must be"),
    ("generate", dict(seed=0, batch=1, steps="0,5,3"), "ascending"),
    ("generate", dict(seed=-4, batch=1, steps="1 step"), "minimum value 0"),
    ("colorize", dict(image=None, steps="2", seed=0, variations=1), "no image"),
    ("inpaint", dict(image=None, editor=None, mask=None, steps="2", seed=0, variations=1), "no image"),
    ("superresolve", dict(image=None, factor=3, mode="upscale", steps="2", seed=0, variations=1), "not in the list of choices"),
])
def test_bad_input_gives_a_clear_error(client: Client, api_name: str, kwargs: dict, message: str) -> None:
    with pytest.raises(Exception, match=message):
        call(client, api_name, **kwargs, **COMMON)


def test_unknown_style_and_model_are_refused_and_the_server_still_answers(client: Client) -> None:
    with pytest.raises(Exception, match="unknown class"):
        call(client, "generate", seed=0, batch=1, steps="1 step", model_name="tiny-cm", style_name="van gogh")
    with pytest.raises(Exception, match="unknown model"):
        call(client, "generate", seed=0, batch=1, steps="1 step", model_name="tiny-edm", style_name="noto")
    gallery, _, _ = call(client, "generate", seed=0, batch=1, steps="1 step", **COMMON)
    assert len(gallery) == 1


def test_benchmark_results_are_read_for_the_plot(tmp_path: Path) -> None:
    from app.benchmark_file import read_benchmarks

    rows, note = read_benchmarks(tmp_path / "RESULTS.json")
    assert rows == [] and "not found" in note
    (tmp_path / "RESULTS.json").write_text(json.dumps({"tables": {"quality": {
        "columns": ["model", "sampler", "evaluations", "SWD mean", "ms / image"],
        "rows": [["real held-out images", "-", 0, 49.9, None], ["cm", "1 step", 1, 69.7, 2.9],
                 ["cm", "2 steps, tuned ts [0, 20, 39]", 2, 56.0, 5.8], ["edm", "Heun 18 steps", 35, 51.9, 97.6]]}}}))
    rows, note = read_benchmarks(tmp_path / "RESULTS.json")
    assert [r["method"] for r in rows] == ["cm 1 step", "cm 2 steps, tuned ts [0, 20, 39]", "edm Heun 18 steps"]
    assert rows[0]["ms"] == 2.9 and rows[2]["quality"] == 51.9 and "SWD" in rows[0]["metric"]
    assert [r["model"] for r in rows] == ["cm", "cm", "edm"]
    assert [r["series"] for r in rows] == ["cm", "cm, tuned ts", "edm"]  # the plot's colours (legend)
    (tmp_path / "RESULTS.json").write_text('{"tables": {}}')
    assert read_benchmarks(tmp_path / "RESULTS.json")[0] == []


def test_requests_past_the_time_limit_stop_between_evaluations(tmp_path: Path) -> None:
    """The limit is checked after every network evaluation: a 39-step request stops after its first one, says
    why, and the same studio serves the next request (nothing is left running)."""
    from app.request import RequestTimeout
    from app.studio import COMPARE_STEPS, Studio
    from editing.models import Runtime

    weights = make_weights(tmp_path / "weights")
    runtime = Runtime(torch.device("cpu"), torch.float32, None)
    done: list[tuple[int, int]] = []
    hurried = Studio.from_weights(weights, runtime, out_dir=tmp_path / "out", request_timeout=1e-9)
    with pytest.raises(RequestTimeout, match=r"stopped after .* \(1 of 39 network evaluations\).*1e-09 s per request"):
        hurried.generate("tiny-cm", "noto", 0, 2, "39", on_step=lambda d, t: done.append((d, t)))
    assert done == [(1, 39)]
    whole = sum(COMPARE_STEPS) + 2 * 18 - 1  # compare counts its whole request: CM steps and the teacher's Heun
    with pytest.raises(RequestTimeout, match=f"of {whole} network evaluations"):
        hurried.compare("tiny-cm", "noto", 0, None)
    relaxed = Studio.from_weights(weights, runtime, out_dir=tmp_path / "out", request_timeout=60)
    assert len(relaxed.generate("tiny-cm", "noto", 0, 2, "39").images) == 2
    with pytest.raises(ValueError, match="positive"):
        Studio.from_weights(weights, runtime, request_timeout=0)


def test_a_timed_out_request_is_a_clear_api_error(tmp_path: Path) -> None:
    demo, url = start_app(make_weights(tmp_path / "weights"), examples=ExampleSets(), request_timeout=1e-9)
    try:
        client = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))
        for _ in range(2):  # the worker is free again after the first time-out
            with pytest.raises(Exception, match="per request. Ask for fewer steps") as info:
                call(client, "generate", seed=0, batch=1, steps="4", **COMMON)
            assert "Traceback" not in str(info.value)
    finally:
        demo.close()


def test_app_takes_a_timeout_flag() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("studio_main", Path(__file__).resolve().parent.parent / "app.py")
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    assert main.parse_args([]).timeout == main.REQUEST_TIMEOUT > 0
    assert main.parse_args(["--timeout", "7.5"]).timeout == 7.5


# -- fixes from the walk (issue 32) ------------------------------------------------------------------------------


def component(client: Client, elem_id: str | None = None, label: str | None = None) -> dict:
    """A component's props in the page's config, found by its elem_id or its label."""
    for c in client.config["components"]:
        props = c.get("props", {})
        if (elem_id and props.get("elem_id") == elem_id) or (label and props.get("label") == label):
            return c
    raise AssertionError(f"no component {elem_id or label!r}")


def dependency(client: Client, api_name: str) -> dict:
    return next(d for d in client.config["dependencies"] if d.get("api_name") == api_name)


def test_add_noise_keeps_the_upload_and_the_level_slider_is_inactive_until_chosen(client: Client) -> None:
    upload = component(client, label="Noisy image")["id"]
    add = dependency(client, "add_noise")
    assert upload not in add["outputs"], "add noise replaced the user's upload"
    assert component(client, elem_id="denoise-noisy-copy")["id"] in add["outputs"]
    sigma = component(client, elem_id="denoise-sigma")
    assert sigma["props"]["interactive"] is False  # the estimate is used until the box is ticked
    assert client.predict(True, api_name="/denoise_override")["interactive"] is True
    assert client.predict(False, api_name="/denoise_override")["interactive"] is False


def test_stroke_strength_is_how_much_may_change(client: Client, pngs: dict[str, Path]) -> None:
    strength = component(client, elem_id="stroke-strength")["props"]
    assert strength["label"] == "Strength: how much may change" and "index" not in strength["label"]
    assert "Technical: starts at sigma" in strength["info"] and "index 24" in strength["info"]
    assert strength["value"] == 15 and strength["maximum"] == 39
    painting = handle_file(pngs["image"])
    changed = []
    for value in (2, 30):  # higher strength: further from the painting
        _, notes, files, _ = call(client, "stroke_edit", start_image=painting, canvas=None, strength=value, steps=1,
                               seed=0, variations=1, **COMMON)
        assert f"index {39 - value} of the 40-point grid" in notes
        changed.append(np.abs(pixels(model_res(files)[0]) - pixels(pngs["image"])).mean())
    assert changed[0] < changed[1], changed
    with pytest.raises(Exception, match="steps must be between 1 and 2 at strength 2"):
        call(client, "stroke_edit", start_image=painting, canvas=None, strength=2, steps=3, seed=0, variations=1,
             **COMMON)


def test_interpolate_shows_one_mode_s_fields_and_the_steps_that_run(client: Client) -> None:
    seed_fields = component(client, elem_id="interpolate-seed-fields")
    image_fields = component(client, elem_id="interpolate-image-fields")
    assert seed_fields["props"]["visible"] is True and image_fields["props"]["visible"] is False
    switch = dependency(client, "interpolate_mode")
    assert {seed_fields["id"], image_fields["id"]} <= set(switch["outputs"])  # shown and hidden by the mode
    # The steps box shows what runs: one step between seeds, the part-way schedule between images.
    assert client.predict("seeds", api_name="/interpolate_mode")["value"] == "1 step"
    assert client.predict("images", api_name="/interpolate_mode")["value"] == "16,20,39"


def test_upscale_keeps_the_upload_s_size(client: Client, tmp_path: Path) -> None:
    """A 2R x R upload is not shrunk to R/factor first: the output is factor x the upload."""
    rng = np.random.default_rng(1)
    upload = tmp_path / "wide.png"
    Image.fromarray(rng.integers(64, 192, (R, 2 * R, 3), dtype=np.uint8)).save(upload)
    _, gallery, notes, files, _ = call(client, "superresolve", image=handle_file(upload), factor="2", mode="upscale",
                                    steps="2", seed=0, variations=1, **COMMON)
    out = [f for f in model_res(files) if "superresolve-seed" in f]
    assert Image.open(out[0]).size == (4 * R, 2 * R), notes
    assert f"{2 * R}x{R} -> {4 * R}x{2 * R}" in notes


def test_an_unknown_model_name_is_a_note_not_an_error(client: Client) -> None:
    style, note = client.predict("gpt-image", api_name="/select_model")
    assert "No model named 'gpt-image'" in note and "tiny-cm" in note
    style, note = client.predict("tiny-cm", api_name="/select_model")
    assert "tiny-cm" in note and "No model" not in note


def test_the_steps_box_speaks_plainly(client: Client) -> None:
    steps = component(client, label="Steps")["props"]
    labels = [choice[0] for choice in steps["choices"]]
    assert not any("ImageNet" in c or "LSUN" in c or "ts" in c.split() for c in labels), labels
    assert "Technical:" in steps["info"]
    with pytest.raises(Exception) as info:
        call(client, "generate", seed=0, batch=1, steps="fast please", **COMMON)
    assert "strokes" not in str(info.value) and "preset from the list" in str(info.value)
    noise = component(client, label="Noise level to use")["props"]
    assert "[-1, 1]" not in noise["label"] and "Technical:" in noise["info"]


def test_the_benchmark_note_names_no_path(tmp_path: Path) -> None:
    from app.benchmark_file import read_benchmarks

    for text in (None, "{}", json.dumps({"tables": {"quality": {"columns": ["model", "sampler", "SWD mean",
                                                                          "ms / image"], "rows": [["m", "1", 1, 2]]}}})):
        if text is not None:
            (tmp_path / "RESULTS.json").write_text(text)
        _, note = read_benchmarks(tmp_path / "RESULTS.json")
        assert "/" not in note.replace("python -m", ""), note


def test_every_input_box_on_the_page_has_a_label(client: Client) -> None:
    """A component built while the page was laid out (a steps box made only for its choices) was drawn as a
    stray unlabelled 'Dropdown' under every steps box."""
    unlabelled = [c["id"] for c in client.config["components"]
                  if c.get("type") in ("dropdown", "slider", "number", "textbox", "radio")
                  and not c.get("props", {}).get("label")]
    assert not unlabelled, unlabelled


def test_the_stroke_canvas_decodes_only_bounded_pngs() -> None:
    import gradio as gr

    from app.tabs.stroke_canvas import StrokeCanvas

    canvas = StrokeCanvas(label="Canvas", palette=["#000000"], colour="#000000", brush=10, render=False)
    small = np.zeros((8, 12, 4), np.uint8)
    small[2:4, 3:9] = (10, 20, 30, 255)
    layer = canvas.preprocess({"strokes": strokes_url(small)})
    assert layer.mode == "RGBA" and np.array_equal(np.asarray(layer), small)
    assert canvas.preprocess({"strokes": None}) is None and canvas.preprocess(None) is None
    with pytest.raises(gr.Error, match="at most 4,194,304 are accepted"):
        canvas.preprocess({"strokes": strokes_url(np.zeros((2049, 2048, 4), np.uint8))})
    shown = canvas.postprocess(Image.new("RGB", (4, 4), "red"))
    assert shown["background"].startswith("data:image/png;base64,")
    assert shown["token"] != canvas.postprocess(None)["token"]  # every picture set reloads the canvas
