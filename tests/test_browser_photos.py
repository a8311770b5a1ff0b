"""The studio on your own photo, in headless Chromium (as tests/test_browser.py): a 2-megapixel photo denoised
and super-resolved with full-size downloads, inpainted and stroke-edited only where painted, a transparent PNG that
comes back transparent, Denoise's preview at 100% where the photo is clicked, and Stop."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from app.tabs.examples import ExampleSets
from tests.conftest import make_tiny_folder
from tests.test_images import heic
# browser and page come from the studio tests' own fixtures, on this module's studio_url
from tests.test_browser import CHROMIUM, browser, page, preview_shown  # noqa: F401

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")

WIDTH, HEIGHT = 1700, 1200  # 2.04 megapixels


@pytest.fixture(scope="module")
def studio_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.app_server import start_app, write_quality_results

    weights = tmp_path_factory.mktemp("photo-browser") / "weights"
    make_tiny_folder(weights / "tiny-photo-cm", resolution=16, classes=(), tiled=True)
    make_tiny_folder(weights / "tiny-photo-edm", resolution=16, classes=(), boundary="edm", tiled=True)
    make_tiny_folder(weights / "tiny-cm", resolution=16)
    write_quality_results(weights, [["tiny-cm", "1 step", 1, 69.7, 2.9], ["tiny-cm", "2 steps", 2, 56.0, 5.8]])
    # No time limit: the size a request keeps then depends on the megapixel limit only, not on this CPU's speed.
    demo, url = start_app(weights, examples=ExampleSets.from_folder(), default="tiny-photo-cm",
                          request_timeout=None)  # the shipped examples
    try:
        yield url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("photos")
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    rgb = np.stack([128 + 90 * np.sin(xx / 37), 128 + 90 * np.cos(yy / 23), 128 + 60 * np.sin((xx + yy) / 51)], -1)
    noisy = rgb + np.random.default_rng(0).normal(0, 25, rgb.shape)
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(folder / "photo.png")
    rgba = np.dstack([rgb[:90, :120], np.where(xx[:90, :120] < 40, 0, 255)]).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(folder / "transparent.png")
    (folder / "phone.heic").write_bytes(heic(Image.fromarray(np.clip(noisy[:300, :400], 0, 255).astype(np.uint8))))
    return {"photo": folder / "photo.png", "transparent": folder / "transparent.png", "heic": folder / "phone.heic"}


def run_tab(page: Any, tab_name: str, tab_id: str, upload: Path, button: str, timeout_s: float = 240) -> Any:
    page.get_by_role("tab", name=tab_name).click()
    tab = page.locator(f"#tab-{tab_id}")
    tab.locator("input[type=file]").first.set_input_files(str(upload))
    tab.locator(f"#{tab_id}-estimate", has_text="About").wait_for(timeout=60_000)  # the estimate comes first
    tab.get_by_role("button", name=button, exact=True).click()
    return tab


def downloaded(page: Any, tab: Any, suffix: str, timeout_s: float = 240) -> Image.Image:
    """The file of the tab's download list whose name ends with `suffix`, fetched through its link."""
    link = tab.locator(f"a[href$='{suffix}']").first
    link.wait_for(state="attached", timeout=timeout_s * 1000)
    response = page.request.get(link.get_attribute("href"))
    assert response.ok
    return Image.open(io.BytesIO(response.body()))


def test_a_2_megapixel_photo_is_denoised_at_full_size(page: Any, photos: dict[str, Path]) -> None:
    started = time.monotonic()
    tab = run_tab(page, "Denoise", "denoise", photos["photo"], "Denoise")
    result = downloaded(page, tab, "denoise-seed0.png")
    assert result.size == (WIDTH, HEIGHT)
    assert downloaded(page, tab, "denoise-seed0.jpg").size == (WIDTH, HEIGHT)
    slider = tab.locator("#denoise-slider img")
    slider.nth(1).wait_for(state="visible", timeout=30_000)
    # Shown smaller than its size, a photo is scaled smoothly: nearest-neighbour would alias its grain.
    page.wait_for_function("""() => {
        const shown = [...document.querySelectorAll('#denoise-slider img')];
        return shown.length === 2 && shown.every((img) => img.complete && img.naturalWidth === %d);
    }""" % WIDTH, timeout=30_000)
    assert slider.evaluate_all("all => all.map((img) => getComputedStyle(img).imageRendering)") == ["auto", "auto"]
    print(f"2 MP denoise in the browser: {time.monotonic() - started:.1f} s")


def test_a_phone_s_heic_says_the_browser_cannot_show_it_and_is_denoised(page: Any, photos: dict[str, Path]) -> None:
    """Chromium draws no HEIC: its box says so (no broken image), and the studio reads it all the same."""
    tab = run_tab(page, "Denoise", "denoise", photos["heic"], "Denoise")
    box = tab.locator(".studio-upload .unviewable")
    box.wait_for(state="attached", timeout=30_000)
    assert "cannot show this file" in box.evaluate("el => getComputedStyle(el, '::after').content")
    assert downloaded(page, tab, "denoise-seed0.png").size == (400, 300)


def test_a_2_megapixel_photo_is_super_resolved_at_full_size(page: Any, photos: dict[str, Path]) -> None:
    page.get_by_role("tab", name="Super-resolve").click()
    tab = page.locator("#tab-superresolve")
    tab.get_by_label("2", exact=True).check()
    steps = tab.get_by_label("Steps")
    steps.click()
    page.get_by_role("option", name="1 step (fastest)").click()
    variations = tab.get_by_label("number input for Variations")
    variations.fill("1")
    variations.press("Enter")
    started = time.monotonic()
    run_tab(page, "Super-resolve", "superresolve", photos["photo"], "Super-resolve")
    result = downloaded(page, tab, "superresolve-seed0.png")
    assert result.size == (WIDTH, HEIGHT)  # restore mode: shrunk by 2, brought back to the photo's size
    print(f"2 MP x2 super-resolve (1 evaluation) in the browser: {time.monotonic() - started:.1f} s")


def test_a_transparent_png_comes_back_transparent(page: Any, photos: dict[str, Path]) -> None:
    tab = run_tab(page, "Colorize", "colorize", photos["transparent"], "Colorize")
    result = downloaded(page, tab, "colorize-seed0.png")
    assert result.size == (120, 90) and result.mode == "RGBA"
    alpha = np.asarray(result.getchannel("A"))
    assert (alpha[:, :40] == 0).all() and (alpha[:, 40:] == 255).all()


def test_stop_ends_a_running_request(page: Any, photos: dict[str, Path], caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="app.progress")
    tab = run_tab(page, "Super-resolve", "superresolve", photos["photo"], "Super-resolve")  # 18 steps: a minute
    tab.locator(".progress-text, .eta-bar, .progress-level").first.wait_for(state="attached", timeout=30_000)
    tab.get_by_role("button", name="Stop", exact=True).click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any("cancelled" in r.getMessage() for r in caplog.records):
        time.sleep(0.2)
    stopped = [r.getMessage() for r in caplog.records if "cancelled" in r.getMessage()]
    assert stopped and "super-resolving stopped after" in stopped[0], [r.getMessage() for r in caplog.records]
    # and the studio serves this session again
    tab2 = run_tab(page, "Colorize", "colorize", photos["transparent"], "Colorize")
    downloaded(page, tab2, "colorize-seed0.png", timeout_s=60)


def test_a_mask_painted_on_a_2_megapixel_photo_inpaints_only_there(page: Any, photos: dict[str, Path]) -> None:
    """The whole photo is fitted to the mask editor (1700x1200 centred on a white square); the mask painted there
    is mapped back to full size: the full-size result changes near the stroke and nowhere else."""
    from app.screenshots import paint

    page.get_by_role("tab", name="Inpaint").click()
    tab = page.locator("#tab-inpaint")
    tab.get_by_label("Steps").click()
    page.get_by_role("option", name="1 step (fastest)").click()
    variations = tab.get_by_label("number input for Variations")
    variations.fill("1")
    variations.press("Enter")
    tab.locator("input[type=file]").first.set_input_files(str(photos["photo"]))
    tab.locator("#inpaint-estimate", has_text="About").wait_for(timeout=60_000)
    page.wait_for_timeout(1500)  # the editor loads the fitted photo
    paint(page, tab, [(0.3, 0.35, 0.7, 0.35)])  # in fractions of the editor's canvas (a margin around the photo)
    tab.get_by_role("button", name="Inpaint", exact=True).click()
    result = np.asarray(downloaded(page, tab, "inpaint-seed0.png").convert("RGB")).astype(int)
    assert result.shape == (HEIGHT, WIDTH, 3)
    before = np.asarray(Image.open(photos["photo"]).convert("RGB")).astype(int)
    changed = (result != before).any(-1)
    rows, cols = np.nonzero(changed)
    side, top = WIDTH, (WIDTH - HEIGHT) // 2  # the square's side and the photo's top margin on it
    brush = side * 48 / 512  # the editor's default brush, 48 of the canvas's 512 px, at full size
    assert changed.any()
    assert abs(rows.mean() - (0.35 * side - top)) < 0.5 * brush, rows.mean()  # (the mapping itself, exactly:
    # tests/test_app_full_size.py)
    assert rows.min() > 0.35 * side - top - 2 * brush and rows.max() < 0.35 * side - top + 2 * brush
    assert cols.min() > 0.3 * side - 2 * brush and cols.max() < 0.7 * side + 2 * brush


def test_strokes_painted_over_a_2_megapixel_photo_change_only_their_surroundings(page: Any,
                                                                                 photos: dict[str, Path]) -> None:
    """The stroke canvas over a start photo: the full-size result changes where the stroke was drawn and keeps
    every other pixel of the photo (tasks.stroke_edit with strokes: only they and R / 2 around them)."""
    from tests.test_browser import drag

    page.get_by_role("tab", name="Stroke edit").click()
    tab = page.locator("#tab-stroke_edit")
    tab.get_by_text("Start from an image").click()
    tab.locator("input[type=file]").first.set_input_files(str(photos["photo"]))
    page.wait_for_timeout(2000)  # the canvas shows the fitted photo
    variations = tab.get_by_label("number input for Variations")
    variations.fill("1")
    variations.press("Enter")
    drag(page, page.locator("#stroke-canvas canvas"), 0.45, 0.45)  # 8 moves of (8, 5) screen px from the centre
    tab.get_by_role("button", name="Render", exact=True).click()
    result = np.asarray(downloaded(page, tab, "stroke-seed0.png").convert("RGB")).astype(int)
    assert result.shape == (HEIGHT, WIDTH, 3)
    before = np.asarray(Image.open(photos["photo"]).convert("RGB")).astype(int)
    rows, cols = np.nonzero((result != before).any(-1))
    side, top = WIDTH, (WIDTH - HEIGHT) // 2  # the canvas square's side and the photo's top margin on it
    assert len(rows) > 0
    assert abs(rows.mean() - (0.45 * side - top)) < 0.15 * side and abs(cols.mean() - 0.45 * side) < 0.15 * side
    # everything the stroke (a 40 px brush on the 512 px canvas, a short drag) cannot reach is the photo's
    reach = 0.25 * side
    assert rows.min() > 0.45 * side - top - reach and rows.max() < 0.45 * side - top + reach
    assert cols.min() > 0.45 * side - reach and cols.max() < 0.45 * side + reach


def choose_model(page: Any, name: str) -> None:
    box = page.get_by_label("Model", exact=True)
    box.click()
    page.get_by_role("option", name=name, exact=True).click()


def test_the_examples_follow_the_chosen_model_s_kind(page: Any) -> None:
    """A photo model offers held-out photographs (on Denoise, noisy ones first) and no emoji; a square model its
    emoji and no photographs; clicking an example uploads it."""
    sets = ExampleSets.from_folder()
    assert sets.emoji and sets.photos and sets.noisy_photos
    page.get_by_role("tab", name="Denoise").click()
    tab = page.locator("#tab-denoise")

    def shown(path: str) -> Any:
        return tab.locator(f"img[src*='{Path(path).stem}']")

    noisy = shown(sets.noisy_photos[0])
    noisy.first.wait_for(state="visible", timeout=10_000)
    shown(sets.photos[0]).first.wait_for(state="visible", timeout=10_000)  # its own gallery may render a beat later
    assert not shown(sets.emoji[0]).first.is_visible()
    choose_model(page, "tiny-cm")
    shown(sets.emoji[0]).first.wait_for(state="visible", timeout=10_000)
    noisy.first.wait_for(state="hidden", timeout=10_000)
    choose_model(page, "tiny-photo-cm")
    noisy.first.wait_for(state="visible", timeout=10_000)
    assert not shown(sets.emoji[0]).first.is_visible()
    noisy.first.click()
    upload = tab.locator(".studio-upload img").first
    upload.wait_for(state="visible", timeout=10_000)
    width, height = Image.open(sets.noisy_photos[0]).size
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=upload.element_handle())
    assert upload.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [width, height]


def test_the_benchmark_plot_shows_only_for_the_models_it_plots(page: Any) -> None:
    """The plot of sample quality against time covers the models the benchmarks sampled: a photo model has no
    points on it, so it is hidden while one is chosen, and back for the square model."""
    page.get_by_role("tab", name="Steps vs quality").click()
    plot = page.locator("#benchmark-plot")
    page.locator("#tab-compare").get_by_role("button", name="Compare").wait_for(state="visible", timeout=10_000)
    assert not plot.is_visible()
    choose_model(page, "tiny-cm")
    plot.locator("svg").first.wait_for(state="visible", timeout=30_000)
    choose_model(page, "tiny-photo-cm")
    plot.wait_for(state="hidden", timeout=10_000)


def test_denoise_previews_the_level_at_100_percent_where_the_photo_is_clicked(page: Any,
                                                                             photos: dict[str, Path]) -> None:
    """The preview follows the upload, a click on it, and the level set by hand; the slider starts at the level
    the estimate used."""
    page.get_by_role("tab", name="Denoise").click()
    tab = page.locator("#tab-denoise")
    tab.locator("input[type=file]").first.set_input_files(str(photos["photo"]))
    notes = tab.locator("#denoise-preview-notes")
    notes.filter(has_text="from (722, 472)").wait_for(timeout=60_000)  # the centre: (1700 - 256) / 2, (1200 - 256) / 2
    before, after = preview_shown(page)
    assert before.size == after.size == (256, 256)
    photo = np.asarray(Image.open(photos["photo"]).convert("RGB"))
    np.testing.assert_array_equal(np.asarray(before.convert("RGB")), photo[472:728, 722:978])  # the upload at 100%
    assert np.abs(np.asarray(after, dtype=float) - np.asarray(before, dtype=float)).mean() > 1  # denoised
    estimated = float(tab.locator("#denoise-sigma input[type=number]").input_value())
    assert estimated > 0.05  # the slider followed the estimate (25/255 of noise is 0.196 on [-1, 1])
    # A click near the top left corner of the upload moves the window there.
    tab.locator(".studio-upload img").first.click(position={"x": 2, "y": 2})
    notes.filter(has_text="from (0, 0)").wait_for(timeout=60_000)
    np.testing.assert_array_equal(np.asarray(preview_shown(page)[0].convert("RGB")), photo[:256, :256])
    # Ticking the box and setting a level by hand redraws it at that level.
    tab.get_by_label("Set the noise level myself").check()
    level = tab.locator("#denoise-sigma input[type=number]")
    level.fill("0.6")
    level.press("Tab")  # leaving the box releases the slider, as lifting the pointer from its handle does
    notes.filter(has_text="sigma 0.6000 (yours)").wait_for(timeout=60_000)


def test_a_clean_upload_s_preview_starts_the_level_slider_within_its_range(page: Any, tmp_path: Path) -> None:
    """A clean image reads no noise (level 0, under the slider's least): the slider starts at its least, and
    ticking the box previews at it instead of failing on the slider's range."""
    clean = tmp_path / "clean.png"
    yy, xx = np.mgrid[0:200, 0:300]
    Image.fromarray(np.stack([xx * 0.8, yy, 0 * xx + 90], -1).astype(np.uint8)).save(clean)
    page.get_by_role("tab", name="Denoise").click()
    tab = page.locator("#tab-denoise")
    tab.locator("input[type=file]").first.set_input_files(str(clean))
    notes = tab.locator("#denoise-preview-notes")
    notes.filter(has_text="at sigma").wait_for(timeout=60_000)
    assert float(tab.locator("#denoise-sigma input[type=number]").input_value()) == 0.002
    tab.get_by_label("Set the noise level myself").check()
    notes.filter(has_text="(yours)").wait_for(timeout=60_000)
    assert not page.locator(".toast-body").count()
