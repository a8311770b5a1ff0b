"""The browser section: the studio (python app.py on a weights folder, a subprocess) in headless Chromium
(Debian's), timed as its user sees it.

- Live stroke mode on the emoji model: from lifting the pen to the rendered result loaded in the page, over
  STROKES strokes (the first one on a fresh canvas separately).
- On the photo models, a held-out photo cropped to 1700x1200 (2.04 megapixels): denoised (noise 25/255 added
  here) and super-resolved x2 (restore mode: shrunk by 2, brought back to its size, one evaluation per step),
  each from the button's click to the full-size PNG's download link in the page.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from app.screenshots import CHROMIUM_ARGS
from app.screenshots import CHROMIUM as CHROMIUM_PATH
from benchmarks.common import Table
from tests.app_server import AppProcess

CHROMIUM = Path(CHROMIUM_PATH)
STROKES = 12
PHOTO_SIZE = (1700, 1200)
RESULTS = "#tab-stroke_edit img[src*='stroke-seed']"
LOADED = ("([sel, before]) => { const im = [...document.querySelectorAll(sel)]; return im.length > 0 && "
          "im.map(e => e.src).join('|') !== before && im.every(e => e.complete && e.naturalWidth > 0); }")


def browser_tables(weights: Path, photo_data: Path) -> list[Table]:
    live = Table("browser_live", "Live stroke mode in the browser: pen up to the result shown (emoji model)",
                 ["model", "steps", "strokes", "first stroke s", "p50 s", "max s"])
    photo = Table("browser_photo", "A 2-megapixel photo in the browser: click to the full-size download",
                  ["task", "size", "model", "seconds"])
    if not CHROMIUM.exists():
        for table in (live, photo):
            table.notes.append("skipped: needs Debian's chromium at /usr/bin/chromium")
        return [live, photo]
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="studio-browser-"))
    server = AppProcess(weights, work)
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            try:
                page = chromium.new_page(viewport={"width": 1400, "height": 1100})
                page.goto(server.url)
                _live_strokes(page, live)
                page.close()
                names = sorted(p.name for p in weights.iterdir() if (p / "config.json").is_file())
                photo_models = [n for n in names if n.startswith("photo")]
                heldout = _heldout_photo(photo_data, work)
                if not photo_models or heldout is None:
                    photo.notes.append("skipped: " + ("no photo model in " + str(weights) if not photo_models
                                                      else f"no held-out photos in {photo_data}"))
                else:
                    page = chromium.new_page(viewport={"width": 1400, "height": 1100})
                    page.goto(server.url)
                    _photo_tasks(page, photo, heldout, photo_models[0])
            finally:
                chromium.close()
    finally:
        server.stop()
    live.notes.append("headless Chromium without a GPU (--disable-gpu), server and browser on the same machine; "
                      "a stroke = 8 pointer moves, live mode on, 1 variation, the tab's default strength")
    return [live, photo]


def _live_strokes(page: Any, table: Table) -> None:
    page.get_by_role("tab", name="Stroke edit").click()
    page.get_by_label("Live mode").check()
    canvas = page.locator("#stroke-canvas canvas")
    canvas.scroll_into_view_if_needed()
    steps = page.locator("#tab-stroke_edit").get_by_label("number input for Steps").input_value()
    times = []
    before = ""
    for k in range(STROKES):
        box = canvas.bounding_box()
        x = box["x"] + box["width"] * (0.15 + 0.05 * (k % 8))
        y = box["y"] + box["height"] * (0.15 + 0.3 * (k // 8))
        page.mouse.move(x, y)
        page.mouse.down()
        for i in range(1, 8):
            page.mouse.move(x + 6 * i, y + 8 * i)
        started = time.monotonic()
        page.mouse.up()
        page.wait_for_function(LOADED, arg=[RESULTS, before], timeout=60_000, polling=10)
        times.append(time.monotonic() - started)
        before = page.locator(RESULTS).evaluate_all("els => els.map(e => e.src).join('|')")
        page.wait_for_timeout(300)
    table.add(page.get_by_label("Model", exact=True).input_value(), steps, STROKES, round(times[0], 3),
              round(float(np.median(times)), 3), round(max(times), 3))


def _heldout_photo(folder: Path, work: Path) -> dict[str, Path] | None:
    """The largest held-out photo, centre-cropped to PHOTO_SIZE: clean and with noise 25/255 (fixed seed)."""
    from training.photos import load_heldout

    if not (folder / "manifest.jsonl").is_file():
        return None
    photos = [(rgb.shape[0] * rgb.shape[1], key, rgb) for key, rgb in load_heldout(folder)
              if rgb.shape[1] >= PHOTO_SIZE[0] and rgb.shape[0] >= PHOTO_SIZE[1]]
    if not photos:
        return None
    _, key, rgb = max(photos, key=lambda p: p[0])
    (w, h), (height, width) = PHOTO_SIZE, rgb.shape[:2]
    crop = rgb[(height - h) // 2:(height - h) // 2 + h, (width - w) // 2:(width - w) // 2 + w]
    noisy = crop + np.random.default_rng(0).normal(0, 25, crop.shape)
    paths = {"clean": work / f"{key}.png", "noisy": work / f"{key}-noisy25.png", "id": Path(key)}
    Image.fromarray(crop).save(paths["clean"])
    Image.fromarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8)).save(paths["noisy"])
    return paths


def _photo_tasks(page: Any, table: Table, photo: dict[str, Path], model: str) -> None:
    page.get_by_label("Model", exact=True).click()
    page.get_by_role("option", name=model, exact=True).click()
    page.wait_for_timeout(1000)
    size = f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}"
    seconds = _timed_tab(page, "Denoise", "denoise", photo["noisy"], "Denoise", "denoise-seed0.png")
    table.add("denoise (noise 25/255, the default: the teacher's one evaluation)", size, model, round(seconds, 1))
    page.get_by_role("tab", name="Super-resolve").click()
    tab = page.locator("#tab-superresolve")
    tab.get_by_label("2", exact=True).check()
    tab.get_by_label("Steps").click()
    page.get_by_role("option", name="1 step (fastest)").click()
    variations = tab.get_by_label("number input for Variations")
    variations.fill("1")
    variations.press("Enter")
    seconds = _timed_tab(page, "Super-resolve", "superresolve", photo["clean"], "Super-resolve",
                         "superresolve-seed0.png")
    table.add("super-resolve x2 (restore: shrunk by 2, brought back; 1 step)", size, model, round(seconds, 1))
    table.notes.append(f"held-out photo {photo['id']} (never trained on), centre crop; one variation each")


def _timed_tab(page: Any, tab_name: str, tab_id: str, upload: Path, button: str, result: str) -> float:
    page.get_by_role("tab", name=tab_name).click()
    tab = page.locator(f"#tab-{tab_id}")
    tab.locator("input[type=file]").first.set_input_files(str(upload))
    tab.locator(f"#{tab_id}-estimate", has_text="About").wait_for(timeout=60_000)  # the estimate comes first
    started = time.monotonic()
    tab.get_by_role("button", name=button, exact=True).click()
    tab.locator(f"a[href$='{result}']").first.wait_for(state="attached", timeout=600_000)
    return time.monotonic() - started
