"""Screenshots of every tab, each after running its task, for the README (docs/screenshot-<tab>.png).

    python -m app.screenshots [--weights weights/] [--out docs/] [--device cpu] [--photo PHOTO [--only]]

Starts the studio on 127.0.0.1 in this process and drives it with headless Chromium (Debian's package at
/usr/bin/chromium, through playwright). Run it again whenever the shipped weights change.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Locator, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
EXAMPLES = Path(__file__).parent / "examples"
NOISY_PHOTO = EXAMPLES / "noisy-photos" / "moose-noise25.jpg"  # the photo Denoise's screenshot previews and denoises
NOISY_PHOTO_POINT = {"x": 150, "y": 70}  # where it clicks on the upload box to preview: the moose's head
TIMEOUT_MS = 120_000
Actions = dict[str, tuple[str, Callable[[Page, Locator], None]]]  # tab id -> (tab label, what to do in it)


def paint(page: Page, tab: Locator, strokes: list[tuple[float, float, float, float]]) -> None:
    """Drag the brush along each (x0, y0, x1, y1) stroke, in fractions of the canvas (the stroke canvas, or the
    ImageEditor's with its brush chosen)."""
    light = tab.locator("canvas.sc-paint")
    if not light.count():
        tab.get_by_role("button", name="Brush").first.click()
    box = (light if light.count() else tab.locator("canvas").last).bounding_box()
    assert box is not None, "no editor canvas"
    for x0, y0, x1, y1 in strokes:
        page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
        page.mouse.down()
        for i in range(1, 13):
            t = i / 12
            page.mouse.move(box["x"] + (x0 + t * (x1 - x0)) * box["width"], box["y"] + (y0 + t * (y1 - y0)) * box["height"])
        page.mouse.up()


def upload(tab: Locator, path: Path, index: int = 0) -> None:
    tab.locator("input[type=file]").nth(index).set_input_files(str(path))


def run_and_wait(tab: Locator, button: str, result_name: str) -> None:
    tab.get_by_role("button", name=button, exact=True).click()
    tab.locator(f"img[src*='{result_name}']").first.wait_for(state="visible", timeout=TIMEOUT_MS)


def denoise_noisy_copy(image: Path, upload_ms: int, noise_ms: int) -> Callable[[Page, Locator], None]:
    """Upload `image`, make a noisy copy with the Add noise helper, denoise the copy (waits sized to the image)."""

    def act(page: Page, tab: Locator) -> None:
        upload(tab, image)
        page.wait_for_timeout(upload_ms)
        tab.get_by_text("Add noise (to try it on a clean image)").click()
        tab.get_by_role("button", name="Make a noisy copy").click()
        page.wait_for_timeout(noise_ms)
        run_and_wait(tab, "Denoise the noisy copy", "denoise-seed")

    return act


def actions(example: Path, second: Path) -> Actions:
    """Tab id -> (tab label, what to do in it)."""

    def inpaint(page: Page, tab: Locator) -> None:
        upload(tab, example)
        page.wait_for_timeout(1500)
        paint(page, tab, [(0.3, 0.45, 0.7, 0.45), (0.3, 0.55, 0.7, 0.55)])
        run_and_wait(tab, "Inpaint", "inpaint-seed")

    def stroke(page: Page, tab: Locator) -> None:
        paint(page, tab, [(0.3, 0.3, 0.7, 0.3), (0.3, 0.5, 0.7, 0.5), (0.3, 0.7, 0.7, 0.7)])
        run_and_wait(tab, "Render", "stroke-seed")

    def interpolate(page: Page, tab: Locator) -> None:
        run_and_wait(tab, "Interpolate", "interpolate-frame")

    def simple(button: str, result: str, with_upload: bool = True) -> Callable[[Page, Locator], None]:
        def act(page: Page, tab: Locator) -> None:
            if with_upload:
                upload(tab, example)
                page.wait_for_timeout(800)
            run_and_wait(tab, button, result)

        return act

    return {
        "generate": ("Generate", simple("Generate", "generate-seed", with_upload=False)),
        "inpaint": ("Inpaint", inpaint),
        "colorize": ("Colorize", simple("Colorize", "colorize-seed")),
        "superresolve": ("Super-resolve", simple("Super-resolve", "superresolve-seed")),
        "stroke_edit": ("Stroke edit", stroke),
        "interpolate": ("Interpolate", interpolate),
        "denoise": ("Denoise", denoise_noisy_copy(example, 800, 2000)),
        "compare": ("Steps vs quality", simple("Compare", "compare-", with_upload=False)),
    }


def photo_actions(photo: Path) -> Actions:
    """Tab id -> (tab label, what to do in it) on the photo model, with a photo at its own size."""

    def choose(page: Page, tab: Locator, label: str, option: str) -> None:
        tab.get_by_label(label).first.click()
        page.get_by_role("option", name=option).click()

    def superresolve(page: Page, tab: Locator) -> None:
        tab.get_by_label("2", exact=True).check()
        choose(page, tab, "Steps", "2 steps")
        variations = tab.get_by_label("number input for Variations")
        variations.fill("1")
        variations.press("Enter")
        upload(tab, photo)
        page.wait_for_timeout(1500)
        run_and_wait(tab, "Super-resolve", "superresolve-seed")

    def inpaint(page: Page, tab: Locator) -> None:
        variations = tab.get_by_label("number input for Variations")
        variations.fill("2")
        variations.press("Enter")
        upload(tab, photo)
        page.wait_for_timeout(2500)
        paint(page, tab, [(0.46, 0.69, 0.53, 0.69)])  # over the dark object on the sand of the README's photo
        run_and_wait(tab, "Inpaint", "inpaint-seed")

    def compare(page: Page, tab: Locator) -> None:
        upload(tab, photo)
        page.wait_for_timeout(1500)
        run_and_wait(tab, "Compare", "compare-")

    def denoise(page: Page, tab: Locator) -> None:
        """A noisy held-out photo: its preview at 100% where it is clicked, then the whole photo denoised."""
        upload(tab, NOISY_PHOTO)
        notes = tab.locator("#denoise-preview-notes")
        notes.filter(has_text="Preview").wait_for(timeout=TIMEOUT_MS)
        tab.locator(".studio-upload img").first.click(position=NOISY_PHOTO_POINT)
        notes.filter(has_text="from (").filter(has_not_text="from (272,").wait_for(timeout=TIMEOUT_MS)
        run_and_wait(tab, "Denoise", "denoise-seed")

    return {"denoise": ("Denoise", denoise),
            "superresolve": ("Super-resolve", superresolve),
            "inpaint": ("Inpaint", inpaint),
            "compare": ("Steps vs quality", compare)}


def capture(url: str, out: Path, acts: Actions, *, model: str | None = None, suffix: str = "") -> list[Path]:
    """For each tab: a fresh page (on `model` when given), the tab's action, a full-page screenshot
    out/screenshot-<tab><suffix>.png."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for tab_id, (label, act) in acts.items():
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url)
                if model is not None:
                    page.get_by_label("Model").first.click()
                    page.get_by_role("option", name=model).click()
                    page.wait_for_timeout(500)
                page.get_by_role("tab", name=label).click()
                act(page, page.locator(f"#tab-{tab_id}"))
                page.wait_for_timeout(800 if model is not None else 500)
                path = out / f"screenshot-{tab_id.replace('_', '-')}{suffix}.png"
                page.screenshot(path=str(path), full_page=True)
                written.append(path)
                page.close()
        finally:
            browser.close()
    return written


def take_photo_screenshots(url: str, out: Path, photo: Path, model: str) -> list[Path]:
    """Super-resolve, Inpaint and Steps vs quality on `model` with `photo`, Denoise with NOISY_PHOTO:
    docs/screenshot-<tab>-photo.png."""
    return capture(url, out, photo_actions(photo), model=model, suffix="-photo")


def take_screenshots(url: str, out: Path, only: list[str] | None = None) -> list[Path]:
    examples = sorted(EXAMPLES.glob("*.png"))
    if len(examples) < 2:
        raise SystemExit(f"need the example images in {EXAMPLES} (python -m app.export_examples)")
    acts = {k: v for k, v in actions(examples[2 % len(examples)], examples[0]).items() if not only or k in only}
    return capture(url, out, acts)


def main() -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from app.studio import Studio
    from app.ui import build_demo, launch
    from editing.models import resolve_runtime

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=Path("weights"))
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--only", nargs="*", help="tab ids to capture (default: all)")
    parser.add_argument("--photo", type=Path, default=None,
                        help="also capture Denoise, Super-resolve, Inpaint and Steps vs quality on --photo-model "
                             "with this photo")
    parser.add_argument("--photo-model", default="photo64-cm")
    args = parser.parse_args()
    studio = Studio.from_weights(args.weights, resolve_runtime(args.device),
                                 benchmarks=Path("benchmarks") / "RESULTS.json")
    demo = build_demo(studio)
    _, url, _ = launch(demo, studio, host="127.0.0.1", port=None, prevent_thread_lock=True, quiet=True)
    try:
        shots = take_screenshots(url, args.out, args.only) if args.only != [] else []
        if args.photo is not None:
            shots += take_photo_screenshots(url, args.out, args.photo, args.photo_model)
        for path in shots:
            print(path)
    finally:
        demo.close()


if __name__ == "__main__":
    main()
