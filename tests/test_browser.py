"""End to end in a real browser: headless Chromium (Debian's package) opens the studio, uploads an image,
paints a mask with the mouse, runs the inpainting and waits for the result; and the layout shows every
result whole (galleries, the before/after slider, the benchmark plot's legend).

The screenshot goes to the test's temporary folder (or to $BROWSER_TEST_SCREENSHOT_DIR, to look at it), never
into the tree: the README's screenshots come from `python -m app.screenshots` on the shipped model.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from app.request import ENLARGED
from app.screenshots import CHROMIUM_ARGS
from app.screenshots import CHROMIUM as CHROMIUM_PATH

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CHROMIUM = Path(CHROMIUM_PATH)
ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                               "(apt-get install -y chromium)")


@pytest.fixture(scope="module")
def studio_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.app_server import make_weights, start_app, write_quality_results

    weights = make_weights(tmp_path_factory.mktemp("browser") / "weights")
    write_quality_results(weights, [["tiny-cm", "1 step", 1, 69.7, 2.9],
                                    ["tiny-cm", "2 steps, tuned ts [0, 20, 39]", 2, 56.0, 5.8],
                                    ["tiny-edm", "Heun 18 steps", 35, 51.9, 97.6]])
    demo, url = start_app(weights)
    try:
        yield url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, studio_url: str) -> Iterator[Any]:
    """A fresh page on the studio, 1400x1100."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(studio_url)
    try:
        yield page
    finally:
        page.close()


@pytest.fixture(scope="module")
def example_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shipped held-out example when there is one, else a drawn test image."""
    shipped = sorted((ROOT / "app" / "examples").glob("*.png"))
    if shipped:
        return shipped[0]
    from PIL import Image, ImageDraw

    path = tmp_path_factory.mktemp("browser-png") / "disc.png"
    image = Image.new("RGB", (32, 32), "white")
    ImageDraw.Draw(image).ellipse((4, 4, 27, 27), fill=(230, 180, 40))
    image.save(path)
    return path


def assert_inside(box: dict | None, frame: dict | None, what: str, slack: float = 1.0) -> None:
    """`box` (a Playwright bounding box) lies within `frame` on all four sides, up to `slack` pixels."""
    assert box is not None and frame is not None, f"{what} is not shown"
    inside = (frame["x"] - slack <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"] + slack
              and frame["y"] - slack <= box["y"] and box["y"] + box["height"] <= frame["y"] + frame["height"] + slack)
    assert inside, f"{what} is cut off: {box} in {frame}"


def test_inpaint_in_the_browser(page: Any, example_png: Path, tmp_path: Path) -> None:
    page.get_by_role("tab", name="Inpaint").click()
    tab = page.locator("#tab-inpaint")
    # 1. Upload: the image appears, enlarged, as the mask editor's background.
    tab.locator("input[type=file]").first.set_input_files(str(example_png))
    canvas = tab.locator("canvas").last
    page.wait_for_timeout(1500)
    # 2. Paint a stroke across the middle with the brush.
    tab.get_by_role("button", name="Brush").first.click()
    box = canvas.bounding_box()
    assert box is not None, "the mask editor's canvas is not shown"
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - box["width"] * 0.25, cy)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(cx - box["width"] * 0.25 + i * box["width"] * 0.05, cy + (i % 2) * 4)
    page.mouse.up()
    # 3. Run it and wait for the result gallery and the notes.
    tab.get_by_role("button", name="Inpaint", exact=True).click()
    result = tab.locator(".pixelated img[src*='inpaint-seed']").first
    result.wait_for(state="visible", timeout=60_000)
    notes = tab.locator(".studio-notes").first.inner_text()
    assert "filled" in notes, f"the painted mask did not reach the server: {notes!r}"
    shots = Path(os.environ.get("BROWSER_TEST_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "browser-test-inpaint.png"), full_page=True)


def test_the_benchmark_plot_shows_every_series_in_its_legend(page: Any) -> None:
    """The legend names each colour; a chart given a fixed height once clipped it away."""
    page.get_by_role("tab", name="Steps vs quality").click()
    plot = page.locator("#benchmark-plot")
    plot.locator("svg").first.wait_for(state="visible", timeout=30_000)
    for series in ("tiny-cm", "tiny-cm, tuned ts", "tiny-edm"):
        entries = [t for t in plot.locator("svg text").all() if t.text_content() == series]
        assert entries, f"no legend entry {series!r}"
        assert_inside(entries[0].bounding_box(), plot.bounding_box(), f"the legend entry {series!r}", slack=0)


def test_a_full_batch_is_shown_whole_in_the_gallery(page: Any) -> None:
    """16 samples in 4 columns need more height than Gradio's default gallery box (55% of the window, then a
    scrollbar): every image must lie inside the gallery, none hidden below its fold."""
    tab = page.locator("#tab-generate")
    batch = tab.get_by_label("Batch size", exact=False).locator("xpath=..").locator("input[type=number]").first
    batch.fill("16")
    batch.press("Enter")
    tab.get_by_role("button", name="Generate", exact=True).click()
    images = tab.locator(".pixelated img[src*='generate-seed']")
    images.nth(15).wait_for(state="attached", timeout=60_000)
    assert images.count() == 16
    gallery = tab.locator(".pixelated").first.bounding_box()
    for i in range(16):
        assert_inside(images.nth(i).bounding_box(), gallery, f"sample {i}")


def test_small_results_are_shown_crisp(page: Any) -> None:
    """The model's 16 px samples, in their enlarged views, keep their pixels (nearest-neighbour) once loaded."""
    tab = page.locator("#tab-generate")
    tab.get_by_role("button", name="Generate", exact=True).click()
    tab.locator(".pixelated img[src*='generate-seed']").first.wait_for(state="attached", timeout=60_000)
    page.wait_for_function("""() => {
        const shown = [...document.querySelectorAll("#tab-generate .pixelated img[src*='generate-seed']")];
        return shown.length > 0 && shown.every((img) => img.complete && img.naturalWidth === %d
                                                       && getComputedStyle(img).imageRendering !== 'auto');
    }""" % ENLARGED, timeout=30_000)


def test_the_denoise_before_after_view_shows_the_whole_image(page: Any, example_png: Path) -> None:
    """Both images of the before/after slider fit inside it (a fixed height once zoomed and cropped them)."""
    page.get_by_role("tab", name="Denoise").click()
    tab = page.locator("#tab-denoise")
    tab.locator("input[type=file]").first.set_input_files(str(example_png))
    page.wait_for_timeout(1000)
    tab.get_by_role("button", name="Denoise", exact=True).click()
    slider = page.locator("#denoise-slider")
    images = slider.locator("img")
    images.nth(1).wait_for(state="visible", timeout=60_000)
    page.wait_for_timeout(500)
    for i in range(images.count()):
        box = images.nth(i).bounding_box()
        assert box is not None and box["width"] > 50
        assert_inside(box, slider.bounding_box(), f"image {i} of the slider")


def test_a_phone_sized_window_keeps_every_result_and_the_model_note_readable(browser: Any, studio_url: str) -> None:
    """At 420 px, Gradio's 100 px minimum per gallery column pushed the fourth sample off screen, and the model
    note beside the dropdowns was squeezed to a few letters per line."""
    page = browser.new_page(viewport={"width": 420, "height": 900})
    try:
        page.goto(studio_url)
        note = page.locator("p", has_text="tiny-edm").first
        note.wait_for(state="visible", timeout=30_000)
        width = note.bounding_box()["width"]
        assert width >= 200, f"the model note is squeezed into {width:.0f} px"
        tab = page.locator("#tab-generate")
        tab.get_by_role("button", name="Generate", exact=True).click()
        images = tab.locator(".pixelated img[src*='generate-seed']")
        images.nth(7).wait_for(state="attached", timeout=60_000)
        gallery = tab.locator(".pixelated").first.bounding_box()
        for i in range(images.count()):
            assert_inside(images.nth(i).bounding_box(), gallery, f"sample {i}")
    finally:
        page.close()


# -- fixes from the walk (issue 32) ------------------------------------------------------------------------------


def preview_shown(page: Any) -> list[Image.Image]:
    """The two images of Denoise's preview slider, fetched as the page shows them."""
    sources = page.locator("#denoise-preview img").evaluate_all("all => all.map((img) => img.src)")
    return [Image.open(io.BytesIO(page.request.get(src).body())) for src in sources]


def test_add_noise_keeps_the_upload_and_the_level_slider_waits_for_its_box(page: Any, example_png: Path) -> None:
    """The noisy copy appears beside the upload (which stays as it was), is what the preview shows until the upload
    is clicked, and can be denoised; the noise level slider is inactive until "Set the noise level myself" is
    ticked."""
    page.get_by_role("tab", name="Denoise").click()
    tab = page.locator("#tab-denoise")
    tab.locator("input[type=file]").first.set_input_files(str(example_png))
    upload = tab.locator(".studio-upload img").first
    upload.wait_for(state="visible", timeout=30_000)
    before = upload.get_attribute("src")
    sigma = page.locator("#denoise-sigma input[type=range]")
    assert sigma.is_disabled(), "the noise level slider looks active while the estimate is used"
    tab.get_by_label("Set the noise level myself").check()
    page.wait_for_function("() => !document.querySelector('#denoise-sigma input[type=range]').disabled",
                           timeout=10_000)
    tab.get_by_text("Add noise (to try it on a clean image)").click()
    tab.get_by_role("button", name="Make a noisy copy").click()
    noisy = page.locator("#denoise-noisy-copy img")
    noisy.wait_for(state="visible", timeout=30_000)
    assert "noisy" in (noisy.get_attribute("src") or "")
    assert upload.get_attribute("src") == before, "the upload was replaced"
    notes = tab.locator("#denoise-preview-notes")
    notes.filter(has_text="Preview of the noisy copy").wait_for(timeout=60_000)
    copy = np.asarray(Image.open(io.BytesIO(page.request.get(noisy.get_attribute("src")).body())).convert("RGB"))
    np.testing.assert_array_equal(np.asarray(preview_shown(page)[0].convert("RGB")), copy)  # all of it: 32 px
    upload.click()
    notes.filter(has_text="Preview of the upload").wait_for(timeout=60_000)
    assert not np.array_equal(np.asarray(preview_shown(page)[0].convert("RGB")), copy)
    tab.get_by_label("Set the noise level myself").uncheck()
    tab.get_by_role("button", name="Denoise the noisy copy").click()
    page.locator("#denoise-slider img").nth(1).wait_for(state="visible", timeout=60_000)
    assert "Estimated noise sigma" in tab.locator("#denoise-noise-estimate").inner_text()


def test_interpolate_shows_only_the_chosen_mode_s_fields(page: Any) -> None:
    page.get_by_role("tab", name="Interpolate").click()
    tab = page.locator("#tab-interpolate")
    seeds, images = page.locator("#interpolate-seed-fields"), page.locator("#interpolate-image-fields")
    steps = tab.get_by_label("Steps", exact=True)
    assert seeds.is_visible() and not images.is_visible()
    assert steps.input_value() == "1 step (fastest)"
    tab.get_by_label("Two images").check()
    images.wait_for(state="visible", timeout=10_000)
    assert not seeds.is_visible()
    page.wait_for_function("() => [...document.querySelectorAll('#tab-interpolate input')]"
                           ".some(i => i.value === '16,20,39')", timeout=10_000)


def test_stroke_strength_reads_as_how_much_may_change(page: Any) -> None:
    page.get_by_role("tab", name="Stroke edit").click()
    strength = page.locator("#stroke-strength")
    strength.wait_for(state="visible", timeout=10_000)
    text = strength.inner_text()
    assert "how much may change" in text and "Technical: starts at sigma" in text, text
    assert strength.locator("input[type=number]").input_value() == "15"


STROKE_RESULTS = "#tab-stroke_edit img[src*='stroke-seed']"
COUNT_PAINTED = ("c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; "
                 "for (let i = 0; i < d.length; i += 4) n += d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250; "
                 "return n; }")


def stroke_results(page: Any) -> str:
    return page.locator(STROKE_RESULTS).evaluate_all("els => els.map(e => e.src).join('|')")


def drag(page: Any, canvas: Any, x0: float, y0: float, moves: int = 8) -> None:
    """A stroke from (x0, y0), in fractions of the canvas, down and to the right (scrolled into view first: the
    mouse acts inside the window only)."""
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None, "the stroke canvas is not shown"
    x, y = box["x"] + box["width"] * x0, box["y"] + box["height"] * y0
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, moves):
        page.mouse.move(x + 8 * i, y + 5 * i)
    page.mouse.up()


def wait_for_new_result(page: Any, before: str) -> None:
    """Until the shown results differ from `before` and have loaded (the served path is a digest of the file:
    a new one means new pixels)."""
    page.wait_for_function("([sel, before]) => { const im = [...document.querySelectorAll(sel)]; "
                           "return im.length > 0 && im.map(e => e.src).join('|') !== before && "
                           "im.every(e => e.complete && e.naturalWidth > 0); }",
                           arg=[STROKE_RESULTS, before], timeout=20_000)


def test_live_mode_renders_the_first_stroke_on_a_fresh_canvas(page: Any) -> None:
    """The first stroke on a fresh canvas renders (it never did on gr.ImageEditor: 3 of 3 in the walk), and
    so does undo (Ctrl+Z), which re-renders what is left."""
    page.get_by_role("tab", name="Stroke edit").click()
    tab = page.locator("#tab-stroke_edit")
    tab.get_by_label("Live mode").check()
    page.wait_for_timeout(500)
    assert stroke_results(page) == "", "live mode rendered a blank canvas, with nothing painted"
    canvas = page.locator("#stroke-canvas canvas")
    drag(page, canvas, 0.3, 0.5)
    wait_for_new_result(page, "")
    first = stroke_results(page)
    drag(page, canvas, 0.5, 0.2)
    wait_for_new_result(page, first)
    second = stroke_results(page)
    painted = canvas.evaluate(COUNT_PAINTED)
    page.keyboard.press("Control+z")
    wait_for_new_result(page, second)
    assert 0 < canvas.evaluate(COUNT_PAINTED) < painted
    assert stroke_results(page).split("|")[0] == first.split("|")[0]  # the same pixels as after the first stroke


def test_the_stroke_canvas_has_brush_size_undo_clear_and_zoom_and_sends_nothing_when_live_is_off(page: Any) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if r.method == "POST" else None)
    page.get_by_role("tab", name="Stroke edit").click()
    canvas = page.locator("#stroke-canvas canvas")
    tools = page.locator("#stroke-canvas")
    tools.get_by_label("Brush size").fill("10")
    drag(page, canvas, 0.2, 0.2)
    thin = canvas.evaluate(COUNT_PAINTED)
    tools.get_by_label("Brush size").fill("60")
    drag(page, canvas, 0.2, 0.6)
    two = canvas.evaluate(COUNT_PAINTED)
    assert two - thin > 3 * thin  # the same path, a wider brush
    page.wait_for_timeout(300)
    assert not any("queue/join" in url for url in requests), requests  # live mode off: strokes stay in the page
    width = canvas.bounding_box()["width"]
    tools.get_by_role("button", name="Zoom in").click()
    assert canvas.bounding_box()["width"] == pytest.approx(2 * width, rel=0.01)
    under = "c => c.getContext('2d').getImageData(Math.round(c.width * 0.1), Math.round(c.height * 0.1), 1, 1).data[0]"
    assert canvas.evaluate(under) == 255
    drag(page, canvas, 0.1, 0.1)  # zoomed, a stroke still lands under the pointer
    assert canvas.evaluate(under) < 250 and canvas.evaluate(COUNT_PAINTED) > two
    tools.get_by_role("button", name="Zoom out").click()
    tools.get_by_role("button", name="Undo").click()
    assert canvas.evaluate(COUNT_PAINTED) == two
    tools.get_by_role("button", name="Clear strokes").click()
    assert canvas.evaluate(COUNT_PAINTED) == 0
    tools.get_by_role("button", name="Undo").click()  # a clear is undone like a stroke
    assert canvas.evaluate(COUNT_PAINTED) == two


def test_an_unknown_model_name_shows_a_note_and_no_error(page: Any) -> None:
    errors: list[str] = []
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    box = page.get_by_label("Model", exact=True)
    box.fill("gpt-image")
    box.press("Enter")
    page.get_by_text("No model named 'gpt-image'").wait_for(state="visible", timeout=10_000)
    assert not errors, errors
    assert page.locator(".toast-body.error, .error-badge").count() == 0


def test_on_a_narrow_window_the_live_result_is_right_under_the_canvas(browser: Any, studio_url: str) -> None:
    """At 420 px the live result was ~900 px below the canvas (the walk): now the buttons and the result come
    straight after the canvas, the settings after them."""
    page = browser.new_page(viewport={"width": 420, "height": 900})
    try:
        page.goto(studio_url)
        page.get_by_label("More tabs").click()  # at 420 px the later tabs sit in the overflow menu
        page.locator(".overflow-dropdown button", has_text="Stroke edit").click()
        canvas = page.locator("#stroke-canvas canvas")
        canvas.wait_for(state="visible", timeout=10_000)
        page.get_by_label("Live mode").check()
        canvas.scroll_into_view_if_needed()
        drag(page, canvas, 0.3, 0.4)
        wait_for_new_result(page, "")
        bottom = canvas.bounding_box()["y"] + canvas.bounding_box()["height"]
        live = page.locator("#stroke-live").bounding_box()
        result = page.locator("#stroke_edit-slider").bounding_box()
        strength = page.locator("#stroke-strength").bounding_box()
        assert 0 <= live["y"] - bottom < 150, (bottom, live)
        assert 0 <= result["y"] - bottom < 300, (bottom, result)
        assert strength["y"] > result["y"]
    finally:
        page.close()
