"""The studio's service: finds model folders, loads and caches them, and turns UI values into engine calls.

The tabs hand it plain values (file paths, editor dicts, numbers, strings) and get back PIL images,
captions, notes and files written at model resolution and enlarged (nearest-neighbour). All the
image math lives in `editing`; conversion of uploads lives in `editing.images`. Nothing here runs at
import: `Studio.from_weights(...)` is called from `app.py` (or a test).
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from editing import images, metrics, tasks
from editing.limits import Limits, check_request
from editing.models import (ModelLoadError, Runtime, load_model, optional_schedules, read_parameterization,
                            unet_folder)
from editing.precond import Denoiser, Parameterization
from editing.samplers import Step, generators_for, randn
from editing.schedules import PRESETS, Schedule, karras_sigmas, steps_schedule, uniform

log = logging.getLogger(__name__)

OnStep = Callable[[int, int], None]  # (evaluations done, evaluations in the whole request)
DEFAULT_MODEL = "emoji32-cm"
GRID = 40  # points of the Karras grid for step counts and stroke strengths
ENLARGED = 256  # side of the enlarged (nearest-neighbour) views
MAX_BATCH = 16
MAX_FRAMES = 32
MAX_SEED = 2**32 - 1
COMPARE_STEPS = (1, 2, 3, 4, 8)
NO_STYLE = "(unconditional)"
KEEP_REQUESTS = 256  # request folders kept on disk before the oldest are removed
REQUEST_TIMEOUT = 120.0  # seconds of work one request may take (the heaviest default request takes ~5 s on CPU)
# Megapixel-evaluations (outputs x evaluations x output pixels) one request may cost, per device type: on a CPU
# 0.6 is 16 variations of the default 18-evaluation edit at 32x32 (0.3) with room, about 5 s of work.
STUDIO_MEGAPIXELS = {"cpu": 0.6, "cuda": 12.0}
NUMBER_LIST = re.compile(r"[\s\d_,.+-]+")  # text that reads as numbers (not a preset name)


class RequestTimeout(ValueError):
    """A request ran past the studio's time limit; it stopped cleanly after a network evaluation."""


@dataclass(frozen=True)
class Deadline:
    """One request's time limit, checked after every network evaluation: a worker thread cannot be killed,
    but the engine's per-evaluation callback can stop the loop between evaluations and free the worker."""

    seconds: float | None
    started: float = field(default_factory=time.monotonic)

    def check(self, done: int, total: int) -> None:
        elapsed = time.monotonic() - self.started
        if self.seconds and elapsed > self.seconds:
            raise RequestTimeout(f"stopped after {elapsed:.0f} s ({done} of {total} network evaluations): this "
                                 f"studio allows {self.seconds:g} s per request. Ask for fewer steps, variations "
                                 "or frames, or try again when the server is less busy.")


@dataclass(frozen=True)
class ModelEntry:
    """A model folder found under the weights directory (read without loading the weights)."""

    name: str
    folder: Path
    param: Parameterization
    schedules: dict[int, Schedule] = field(default_factory=dict)  # tuned ts by step count (schedules.json)

    @property
    def is_teacher(self) -> bool:
        return self.param.boundary == "edm"


@dataclass
class Result:
    """What a task returns to its tab: images at model resolution, their captions, notes and files."""

    images: list[Image.Image]
    captions: list[str]
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # model-resolution and enlarged PNGs (and GIF/strip)
    enlarged: list[str] = field(default_factory=list)  # enlarged PNG per image, for galleries
    extra: dict[str, Any] = field(default_factory=dict)

    def gallery(self) -> list[tuple[str, str]]:
        return list(zip(self.enlarged, self.captions))

    def notes_markdown(self) -> str:
        return "\n".join(f"- {note}" for note in self.notes)


def read_entry(folder: Path) -> ModelEntry:
    """A folder's name and parameterization, from its JSON files only."""
    config_path = unet_folder(folder) / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{config_path}: not readable JSON ({e})") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{config_path}: expected a JSON object")
    return ModelEntry(folder.name, folder, read_parameterization(folder, config),
                      optional_schedules(folder, log.warning))


def discover(weights: Path) -> list[ModelEntry]:
    """Every model folder in `weights` (or `weights` itself when it is one), sorted by name.

    Folders without a config are not models and are passed over; a folder that looks like a model
    but whose JSON is broken is reported in the log and passed over (the default one fails loudly later).
    """
    weights = Path(weights)
    if not weights.is_dir():
        raise ModelLoadError(f"{weights}: weights folder not found")
    candidates = [weights] if (weights / "config.json").is_file() or (weights / "unet" / "config.json").is_file() \
        else sorted(p for p in weights.iterdir() if p.is_dir())
    entries = []
    for folder in candidates:
        try:
            entries.append(read_entry(folder))
        except ModelLoadError as e:
            if (folder / "config.json").exists() or (folder / "unet").exists():
                log.warning("skipping %s", e)
    return entries


def check_number_text(value: Any, what: str) -> None:
    """Text that reads as numbers must be ASCII whole numbers between single commas, ascending when a list: no
    silent coercion of "1_0", "²", "0,,39" or "39,0" (which the parser would take or misreport)."""
    if not isinstance(value, str) or not NUMBER_LIST.fullmatch(value) or not value.strip():
        return
    entries = [entry.strip() for entry in value.strip().split(",")]
    for position, entry in enumerate(entries, 1):
        if not entry:
            raise ValueError(f"{what}: entry {position} of {images._echo(value)} is empty (two commas in a row, "
                             "or a comma at an end); write whole numbers like 0,22,39")
        if not (entry.isascii() and entry.isdigit()):
            raise ValueError(f"{what}: {images._echo(entry)} is not a whole number written with the digits 0-9")
    numbers = [int(entry) for entry in entries if len(entry) <= 9]
    if len(numbers) == len(entries) > 1 and any(b <= a for a, b in zip(numbers, numbers[1:])):
        raise ValueError(f"{what}: a ts list must be strictly ascending indices like 0,22,39, got {images._echo(value)}")


def parse_schedule(text: str | None, default: Schedule, tuned: dict[int, Schedule] | None = None) -> Schedule:
    """A preset name, a number of steps ("4": the model's `tuned` ts for 4 if any, else even on a 40-point
    grid) or a ts list ("0,22,39", its own grid)."""
    if isinstance(text, str) and any(c.isdigit() and not c.isascii() for c in text):
        raise ValueError(f"steps: {images._echo(text)} has a character that is not one of the digits 0-9")
    check_number_text(text, "steps")
    return images.parse_steps_or_ts(text, None, default=default, tuned=tuned)


def stroke_schedule(start: int, steps: int) -> Schedule:
    """`steps` evaluations from index `start` of the 40-point grid down to its end (SDEdit strength)."""
    start, steps = int(start), int(steps)
    if not 0 <= start <= GRID - 2:
        raise ValueError(f"strength (the starting index) must be between 0 and {GRID - 2}, got {start}")
    if not 1 <= steps <= GRID - 1 - start:
        raise ValueError(f"steps must be between 1 and {GRID - 1 - start} when starting at index {start}, got {steps}")
    return uniform(steps, GRID, start)


def check_seed(seed: Any, name: str = "seed") -> int:
    try:
        return images.parse_seed(seed, maximum=MAX_SEED)
    except ValueError as e:
        raise type(e)(f"{name}: {e}") from None


def check_count(value: float | int | None, name: str, low: int, high: int) -> int:
    if value is None or (isinstance(value, float) and (not math.isfinite(value) or value != int(value))):
        raise ValueError(f"{name} must be a whole number between {low} and {high}, got {value}")
    value = int(value)
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of one image against another, both (3, H, W) in [-1, 1] (editing.metrics.psnr)."""
    return float(metrics.psnr(a[None].float().cpu(), b[None].float().cpu())[0])


def read_benchmarks(path: Path) -> tuple[list[dict[str, Any]], str]:
    """Rows {model, series, method, ms, quality, metric} of the sample-quality table in benchmarks/RESULTS.json
    (written by `python -m benchmarks`: {"tables": {"quality": {"columns": [...], "rows": [[...], ...]}}}), and a
    sentence saying what was found."""
    shown = f"benchmarks/{path.name}"  # never the server's absolute path: the message is shown in the page
    if not path.is_file():
        return [], f"No benchmark results yet ({shown} not found): run `python -m benchmarks` to make the plot."
    try:
        table = json.loads(path.read_text())["tables"]["quality"]
        columns = table["columns"]
        model, sampler = columns.index("model"), columns.index("sampler")
        metric = "SWD mean"
        quality, ms = columns.index(metric), columns.index("ms / image")
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        return [], f"{shown} has no sample-quality table ({type(e).__name__})."
    rows = []
    for row in table["rows"]:
        if not (isinstance(row[ms], (int, float)) and isinstance(row[quality], (int, float))):
            continue
        # Samplers on a model's tuned ts get a colour of their own, to compare with its even ts.
        series = f"{row[model]}, tuned ts" if "tuned" in str(row[sampler]) else str(row[model])
        rows.append({"model": str(row[model]), "series": series, "method": f"{row[model]} {row[sampler]}",
                     "ms": float(row[ms]), "quality": float(row[quality]),
                     "metric": f"{metric} (x1e3, lower is better)"})
    if not rows:
        return [], f"{shown} has no rows with a time and a quality number."
    return rows, f"Sample quality against time per image from `{shown}` ({len(rows)} rows; {metric}, lower is better)."


class Studio:
    """Model folders, a cache of loaded models (one per folder) and the studio's tasks."""

    def __init__(self, entries: Sequence[ModelEntry], runtime: Runtime, *, default: str | None = None,
                 benchmarks: Path | None = None, out_dir: Path | None = None,
                 request_timeout: float | None = REQUEST_TIMEOUT, limits: Limits | None = None):
        self.entries = {e.name: e for e in entries}
        self.runtime = runtime
        if not self.model_names:
            raise ModelLoadError("no consistency model folder found (a folder with config.json and "
                                 "parameterization.json whose boundary is 'cm')")
        if default is not None and default not in self.model_names:
            raise ModelLoadError(f"default model {default!r} is not one of {self.model_names}")
        self.default_model = default or (DEFAULT_MODEL if DEFAULT_MODEL in self.model_names else self.model_names[0])
        self.benchmarks = benchmarks
        self.out_dir = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="consistency-studio-"))
        if request_timeout is not None and not request_timeout > 0:
            raise ValueError(f"the request timeout must be a positive number of seconds, got {request_timeout}")
        self.request_timeout = request_timeout
        self.limits = limits or Limits(STUDIO_MEGAPIXELS.get(runtime.device.type, STUDIO_MEGAPIXELS["cpu"]))
        self._models: dict[str, Denoiser] = {}
        self._lock = threading.Lock()
        self._dir_lock = threading.Lock()

    @classmethod
    def from_weights(cls, weights: str | Path, runtime: Runtime, **kwargs: Any) -> Studio:
        entries = discover(Path(weights))
        if not any(not e.is_teacher for e in entries):
            raise ModelLoadError(f"{weights}: no consistency model folder here (a folder with config.json and "
                                 "parameterization.json whose boundary is 'cm'); train one or pass --weights")
        return cls(entries, runtime, **kwargs)

    # -- models -----------------------------------------------------------------------------------

    @property
    def model_names(self) -> list[str]:
        return [name for name, e in self.entries.items() if not e.is_teacher]

    def entry(self, name: str | None) -> ModelEntry:
        name = name or self.default_model
        if name not in self.entries or self.entries[name].is_teacher:
            raise ValueError(f"unknown model {name!r}; choose one of {', '.join(self.model_names)}")
        return self.entries[name]

    def teacher_for(self, name: str | None) -> ModelEntry | None:
        """The diffusion teacher (boundary 'edm') with the same resolution and classes, if any."""
        param = self.entry(name).param
        for e in self.entries.values():
            if e.is_teacher and e.param.resolution == param.resolution and e.param.class_names == param.class_names:
                return e
        return None

    def styles(self, name: str | None) -> list[str]:
        return list(self.entry(name).param.class_names) or [NO_STYLE]

    def resolution(self, name: str | None) -> int:
        return self.entry(name).param.resolution

    def load(self, name: str) -> Denoiser:
        """The loaded model for a folder name (cached; loading errors name the file)."""
        with self._lock:
            if name not in self._models:
                self._models[name] = load_model(self.entries[name].folder, self.runtime)
            return self._models[name]

    def describe(self, name: str | None) -> str:
        entry = self.entry(name)
        p, teacher = entry.param, self.teacher_for(name)
        styles = f"{len(p.class_names)} styles" if p.class_names else "unconditional"
        teacher_text = f"teacher `{teacher.name}` (Heun)" if teacher else "no diffusion teacher found"
        return f"`{entry.name}`: {p.resolution}x{p.resolution}, {styles}, {teacher_text}, on {self.runtime.device}"

    def label(self, name: str | None, style: str | None) -> tuple[int | None, list[str]]:
        """The class index for a style name (the first style when none is given), and a note if defaulted."""
        names = self.entry(name).param.class_names
        if isinstance(style, str) and any(c.isdigit() and not c.isascii() for c in style):
            raise ValueError(f"unknown style {images._echo(style)}; choose one of {', '.join(names) or NO_STYLE}")
        label = images.parse_class(style, names)
        if label is None and names:
            return 0, [f"no style given: using {names[0]!r}"]
        return label, []

    # -- helpers ----------------------------------------------------------------------------------

    def _deadline(self) -> Deadline:
        return Deadline(self.request_timeout)

    def _admit(self, outputs: int, evaluations: int, side: int) -> None:
        """Refuse, before any work, a request costing more than `self.limits` (editing.limits.check_request)."""
        try:
            check_request(self.limits, self.runtime.device, outputs, side, side, evaluations)
        except ValueError as e:
            raise ValueError(f"too large for this studio: {e}") from None

    @staticmethod
    def _callback(on_step: OnStep | None, deadline: Deadline, offset: int = 0,
                  total: int | None = None) -> Callable[[Step], None]:
        """Progress for the UI and the request's time limit, after every network evaluation."""

        def callback(step: Step) -> None:
            done, whole = offset + step.index + 1, total or step.total
            if on_step is not None:
                on_step(done, whole)
            deadline.check(done, whole)

        return callback

    def _request_dir(self) -> Path:
        """A fresh folder for one request's files; the oldest folders are removed beyond KEEP_REQUESTS."""
        with self._dir_lock:  # requests run concurrently: one prunes at a time, and folders may vanish meanwhile
            self.out_dir.mkdir(parents=True, exist_ok=True)
            existing = []
            for path in self.out_dir.iterdir():
                try:
                    existing.append((path.stat().st_mtime, path.name, path))
                except FileNotFoundError:
                    continue
            existing.sort()
            for *_, old in existing[: max(0, len(existing) - KEEP_REQUESTS + 1)]:
                shutil.rmtree(old, ignore_errors=True)
            folder = self.out_dir / uuid.uuid4().hex
            folder.mkdir()
        return folder

    def _result(self, task: str, tensor: torch.Tensor, captions: Sequence[str], names: Sequence[str],
                notes: Sequence[str]) -> Result:
        """Write each image at model resolution and enlarged; return them with their captions."""
        pil = images.to_pil(tensor.detach().float().cpu())
        folder = self._request_dir()
        files, enlarged = [], []
        for image, name in zip(pil, names):
            small = folder / f"{task}-{name}.png"
            big = folder / f"{task}-{name}-x{max(1, ENLARGED // image.width)}.png"
            image.save(small)
            images.enlarge(image, max(ENLARGED, image.width)).save(big)
            files += [str(small), str(big)]
            enlarged.append(str(big))
        return Result(pil, list(captions), list(notes), files, enlarged)

    def _image(self, value: Any, resolution: int, what: str) -> tuple[torch.Tensor, list[str]]:
        if value is None or (isinstance(value, str) and not value):
            raise ValueError(f"{what}: no image given; upload one (or pick an example)")
        converted = images.load_image(value, resolution)
        return converted.tensor, [f"{what}: {n}" for n in converted.notes]

    # -- tasks ------------------------------------------------------------------------------------

    def generate(self, model: str | None, style: str | None, seed: float, batch: float, steps: str | None,
                 on_step: OnStep | None = None) -> Result:
        deadline = self._deadline()
        entry = self.entry(model)
        label, notes = self.label(model, style)
        seed, batch = check_seed(seed), check_count(batch, "batch size", 1, MAX_BATCH)
        schedule = parse_schedule(steps, PRESETS["1 step"], entry.schedules)
        self._admit(batch, schedule.evaluations, entry.param.resolution)
        seeds = [seed + i for i in range(batch)]
        if seeds[-1] > MAX_SEED:
            raise ValueError(f"seed + batch size must stay below {MAX_SEED}")
        out = tasks.generate(self.load(entry.name), seeds, schedule=schedule, label=label,
                             callback=self._callback(on_step, deadline))
        tuned = " (tuned for this model)" if schedule in entry.schedules.values() else ""
        notes.append(f"{schedule.evaluations} evaluation(s), ts = {list(schedule.ts)} on a {schedule.n}-point grid{tuned}")
        return self._result("generate", out, [f"seed {s}" for s in seeds], [f"seed{s}" for s in seeds], notes)

    def inpaint(self, model: str | None, style: str | None, image: Any, mask: Any, editor: Any, steps: str | None,
                seed: float, variations: float, on_step: OnStep | None = None) -> Result:
        deadline = self._deadline()
        entry = self.entry(model)
        r = entry.param.resolution
        label, notes = self.label(model, style)
        seed, variations = check_seed(seed), check_count(variations, "variations", 1, MAX_BATCH)
        schedule = parse_schedule(steps, tasks.DEFAULT_EDIT)
        self._admit(variations, schedule.evaluations, r)
        if image is None and isinstance(editor, dict) and editor.get("background") is not None:
            image = editor["background"]
        x, image_notes = self._image(image, r, "image")
        notes += image_notes
        if mask is not None and not (isinstance(mask, str) and not mask):
            converted = images.load_mask(mask, r)
            notes += [f"mask: {n}" for n in converted.notes]
        elif isinstance(editor, dict):
            converted = images.mask_from_editor(editor, r)
            notes += [f"mask: {n}" for n in converted.notes]
        else:
            raise ValueError("no mask: paint over the image with the brush, or upload a mask (white = fill)")
        fill = converted.mask
        seeds = [seed + i for i in range(variations)]
        if images.is_empty(fill):
            notes.append("the mask is empty: nothing to fill, so the input is returned unchanged")
            return self._result("inpaint", x, ["input (empty mask)"], ["input"], notes)
        model_ = self.load(entry.name)
        if images.is_full(fill):
            notes.append("the mask covers the whole image: this is generation from noise, not an edit")
            out = tasks.generate(model_, seeds, schedule=schedule, label=label,
                                 callback=self._callback(on_step, deadline))
        else:
            out = tasks.inpaint(model_, x, fill, seeds, schedule=schedule, label=label,
                                callback=self._callback(on_step, deadline))
            notes.append(f"filled {int(fill.sum())} of {r * r} pixels; the others are kept exactly")
        notes.append(f"{schedule.evaluations} evaluations per image")
        return self._result("inpaint", out, [f"seed {s}" for s in seeds], [f"seed{s}" for s in seeds], notes)

    def colorize(self, model: str | None, style: str | None, image: Any, steps: str | None, seed: float,
                 variations: float, on_step: OnStep | None = None) -> Result:
        deadline = self._deadline()
        entry = self.entry(model)
        label, notes = self.label(model, style)
        seed, variations = check_seed(seed), check_count(variations, "variations", 1, MAX_BATCH)
        schedule = parse_schedule(steps, tasks.DEFAULT_EDIT)
        self._admit(variations, schedule.evaluations, entry.param.resolution)
        x, image_notes = self._image(image, entry.param.resolution, "image")
        notes += image_notes + ["only the luma (BT.601) of the input is kept; colour comes from the model"]
        seeds = [seed + i for i in range(variations)]
        out = tasks.colorize(self.load(entry.name), x, seeds, schedule=schedule, label=label,
                             callback=self._callback(on_step, deadline))
        return self._result("colorize", out, [f"seed {s}" for s in seeds], [f"seed{s}" for s in seeds], notes)

    def superresolve(self, model: str | None, style: str | None, image: Any, factor: float | str, mode: str | None,
                     steps: str | None, seed: float, variations: float, on_step: OnStep | None = None) -> Result:
        """mode 'upscale': the upload is the small image; 'restore': it is shrunk by `factor` first."""
        deadline = self._deadline()
        entry = self.entry(model)
        r = entry.param.resolution
        label, notes = self.label(model, style)
        seed, variations = check_seed(seed), check_count(variations, "variations", 1, MAX_BATCH)
        try:
            factor = int(str(factor).lower().rstrip("x"))
        except ValueError:
            raise ValueError(f"factor must be 2 or 4, got {factor!r}") from None
        if factor < 2 or r % factor:
            raise ValueError(f"factor {factor} must be at least 2 and divide the model resolution {r}")
        mode = (mode or "upscale").lower()
        if mode not in ("upscale", "restore"):
            raise ValueError(f"mode must be 'upscale' or 'restore', got {mode!r}")
        schedule = parse_schedule(steps, tasks.DEFAULT_EDIT)
        self._admit(variations, schedule.evaluations, r)
        low, low_notes = self._image(image, r // factor, "small image" if mode == "upscale" else "downsampled")
        notes += low_notes
        reference = None
        if mode == "restore":
            reference, ref_notes = self._image(image, r, "original")
            notes += ref_notes
        seeds = [seed + i for i in range(variations)]
        out = tasks.superresolve(self.load(entry.name), low, factor, seeds, schedule=schedule, label=label,
                                 callback=self._callback(on_step, deadline))
        captions = [f"seed {s}" for s in seeds]
        if reference is not None:
            captions = [f"{c} · PSNR {psnr(o, reference[0]):.1f} dB" for c, o in zip(captions, out)]
        notes.append(f"{r // factor}x{r // factor} -> {r}x{r} (x{factor}); every {factor}x{factor} block mean is kept")
        result = self._result("superresolve", out, captions, [f"seed{s}" for s in seeds], notes)
        views = [tasks.upsample_nearest(low, factor)] + ([reference] if reference is not None else [])
        view_result = self._result("superresolve-input", torch.cat(views), ["input", "original"][: len(views)],
                                   ["low-nearest", "original"][: len(views)], [])
        result.extra["input_view"] = view_result.enlarged[0]
        result.files += view_result.files
        return result

    def stroke_edit(self, model: str | None, style: str | None, start_image: Any, editor: Any, strength: float,
                    steps: float, seed: float, variations: float, on_step: OnStep | None = None) -> Result:
        """The painting is the editor's composite when there is one, else `start_image`."""
        deadline = self._deadline()
        entry = self.entry(model)
        label, notes = self.label(model, style)
        seed, variations = check_seed(seed), check_count(variations, "variations", 1, MAX_BATCH)
        schedule = stroke_schedule(check_count(strength, "strength", 0, GRID - 2), check_count(steps, "steps", 1, GRID - 1))
        self._admit(variations, schedule.evaluations, entry.param.resolution)
        painting = editor.get("composite") if isinstance(editor, dict) else None
        if painting is None:
            painting = start_image
        if painting is None:
            raise ValueError("nothing to edit: paint on the canvas or give a start image")
        x, image_notes = self._image(painting, entry.param.resolution, "painting")
        notes += image_notes
        seeds = [seed + i for i in range(variations)]
        out = tasks.stroke_edit(self.load(entry.name), x, seeds, schedule=schedule, label=label,
                                callback=self._callback(on_step, deadline))
        p = entry.param
        sigma0 = float(karras_sigmas(GRID, p.sigma_min, p.sigma_max, p.rho)[schedule.ts[0]])
        notes.append(f"starts at sigma = {sigma0:.3g} (index {schedule.ts[0]} of {GRID}); "
                     f"{schedule.evaluations} evaluation(s), ts = {list(schedule.ts)}")
        return self._result("stroke", out, [f"seed {s}" for s in seeds], [f"seed{s}" for s in seeds], notes)

    def interpolate(self, model: str | None, style: str | None, mode: str | None, seed_a: float, seed_b: float,
                    image_a: Any, image_b: Any, frames: float, steps: str | None, seed: float,
                    on_step: OnStep | None = None) -> Result:
        """Frames between two seeds (slerp of noises) or two images; adds a strip PNG and an animated GIF."""
        deadline = self._deadline()
        entry = self.entry(model)
        label, notes = self.label(model, style)
        frames = check_count(frames, "frames", 2, MAX_FRAMES)
        mode = (mode or "seeds").lower()
        model_ = self.load(entry.name)
        if mode == "seeds":
            seed_a, seed_b = check_seed(seed_a, "first seed"), check_seed(seed_b, "second seed")
            schedule = parse_schedule(steps, PRESETS["1 step"], entry.schedules)
            self._admit(frames, schedule.evaluations, entry.param.resolution)
            out = tasks.interpolate_seeds(model_, seed_a, seed_b, frames, schedule=schedule, label=label,
                                          callback=self._callback(on_step, deadline))
            notes.append(f"seed {seed_a} -> seed {seed_b}: slerp of the two noises, {schedule.evaluations} evaluation(s) per frame")
        elif mode == "images":
            seed = check_seed(seed)
            r = entry.param.resolution
            a, notes_a = self._image(image_a, r, "first image")
            b, notes_b = self._image(image_b, r, "second image")
            notes += notes_a + notes_b
            schedule = parse_schedule(steps, Schedule((16, 20, 39), GRID))
            self._admit(frames, schedule.evaluations, r)
            out = tasks.interpolate_images(model_, a, b, frames, seed, schedule=schedule, label=label,
                                           callback=self._callback(on_step, deadline))
            notes.append(f"both images noised to index {schedule.ts[0]} with seed {seed}, blended, then denoised")
        else:
            raise ValueError(f"mode must be 'seeds' or 'images', got {mode!r}")
        captions = [f"frame {i + 1}/{frames}" for i in range(frames)]
        result = self._result("interpolate", out, captions, [f"frame{i + 1:02d}" for i in range(frames)], notes)
        folder = Path(result.files[0]).parent
        big = [Image.open(p).convert("RGB") for p in result.enlarged]
        strip = Image.new("RGB", (sum(im.width for im in big), big[0].height), "white")
        for i, im in enumerate(big):
            strip.paste(im, (i * im.width, 0))
        strip_path, gif_path = folder / "interpolate-strip.png", folder / "interpolate.gif"
        strip.save(strip_path)
        big[0].save(gif_path, save_all=True, append_images=big[1:] + big[-2:0:-1], duration=120, loop=0)
        result.extra.update(strip=str(strip_path), gif=str(gif_path))
        result.files = [str(gif_path), str(strip_path)] + result.files
        return result

    def add_noise(self, model: str | None, image: Any, sigma: float, seed: float) -> tuple[str, list[str]]:
        """The upload plus Gaussian noise of std sigma (on the [-1, 1] scale), saved at model resolution."""
        entry = self.entry(model)
        if sigma is None or not math.isfinite(float(sigma)) or not 0 <= float(sigma) <= 2:
            raise ValueError(f"noise level must be between 0 and 2, got {sigma}")
        seed = check_seed(seed)
        x, notes = self._image(image, entry.param.resolution, "image")
        noisy = x + float(sigma) * randn(x.shape, generators_for([seed]))
        result = self._result("noisy", noisy, [f"sigma {float(sigma):.3g}"], [f"sigma{float(sigma):.3g}-seed{seed}"], notes)
        notes.append(f"added Gaussian noise, sigma = {float(sigma):.3g}, seed {seed} (clipped to the image range)")
        return result.files[0], notes

    def denoise(self, model: str | None, style: str | None, image: Any, sigma: float | None, refine_steps: float,
                seed: float, on_step: OnStep | None = None) -> Result:
        """sigma None (or < 0): estimated from the image. The result carries the before/after enlarged views."""
        deadline = self._deadline()
        entry = self.entry(model)
        label, notes = self.label(model, style)
        seed = check_seed(seed)
        refine_steps = check_count(refine_steps, "refinement steps", 0, 16)
        self._admit(1, 1 + refine_steps, entry.param.resolution)
        x, image_notes = self._image(image, entry.param.resolution, "image")
        notes += image_notes
        estimated = float(tasks.estimate_noise_sigma(x).mean())
        override = sigma is not None and float(sigma) >= 0
        # The estimate shown is the one used: denoise is handed it rather than estimating it again.
        out, used = tasks.denoise(self.load(entry.name), x, sigma=float(sigma) if override else estimated,
                                  refine_steps=refine_steps, seed=seed, label=label,
                                  callback=self._callback(on_step, deadline))
        notes.append(f"estimated noise sigma = {estimated:.4f} (on the [-1, 1] scale); "
                     f"used sigma = {used:.4f}{' (override)' if override else ''}; {1 + refine_steps} evaluation(s)")
        result = self._result("denoise", out, [f"denoised (sigma {used:.3g})"], [f"seed{seed}"], notes)
        before = self._result("denoise-input", x, ["before"], ["before"], [])
        result.extra.update(before=before.enlarged[0], estimated=estimated, used=used)
        return result

    def compare(self, model: str | None, style: str | None, seed: float, reference: Any,
                on_step: OnStep | None = None) -> Result:
        """1, 2, 3, 4 and 8 steps (and the teacher's Heun 18 when generating), with evaluations, ms and PSNR.

        Without a reference image: generation from `seed`; PSNR against the teacher's sample from the same
        noise. With one: restoring it from a 4x (or 2x) downsample; PSNR against the reference.
        """
        deadline = self._deadline()
        entry = self.entry(model)
        r = entry.param.resolution
        label, notes = self.label(model, style)
        seed = check_seed(seed)
        model_ = self.load(entry.name)
        teacher = self.teacher_for(entry.name)
        generating = reference is None or (isinstance(reference, str) and not reference)
        # Generation takes the ts tuned for this model (schedules.json); restoring a reference, even ones.
        tuned = entry.schedules if generating else {}
        schedules = [PRESETS["1 step"]] + [steps_schedule(k, tuned) for k in COMPARE_STEPS[1:]]
        total = sum(s.evaluations for s in schedules)
        self._admit(1, total + 2 * 18, r)
        ref_tensor, factor, low = None, 4 if r % 4 == 0 else 2, None
        if not generating:
            ref_tensor, ref_notes = self._image(reference, r, "reference")
            low, _ = self._image(reference, r // factor, "downsampled")
            notes += ref_notes + [f"task: restore the reference from a {r // factor}x{r // factor} downsample (x{factor})"]
            teacher = None
        else:
            notes.append(f"task: generate seed {seed}")
            if teacher is not None:
                total += 2 * 18 - 1
        runs: list[tuple[str, torch.Tensor, int, float]] = []
        # Warm-up (not timed): the first call pays for kernel selection and allocation.
        tasks.generate(model_, [seed], schedule=PRESETS["1 step"], label=label)
        done = 0
        for schedule in schedules:
            callback = self._callback(on_step, deadline, done, total)
            start = time.perf_counter()
            if low is None:
                out = tasks.generate(model_, [seed], schedule=schedule, label=label, callback=callback)
            else:
                out = tasks.superresolve(model_, low, factor, [seed], schedule=schedule, label=label, callback=callback)
            out = out.cpu()
            k = schedule.evaluations
            runs.append((f"{k} step{'s' if k > 1 else ''}", out, k, 1000 * (time.perf_counter() - start)))
            done += k
        if teacher is not None:
            teacher_model = self.load(teacher.name)
            tasks.heun_baseline(teacher_model, [seed], steps=2, label=label)  # warm-up
            start = time.perf_counter()
            out = tasks.heun_baseline(teacher_model, [seed], steps=18, label=label,
                                      callback=self._callback(on_step, deadline, done, total)).cpu()
            runs.append((f"teacher Heun 18 ({teacher.name})", out, 35, 1000 * (time.perf_counter() - start)))
            ref_tensor = out
            notes.append("PSNR is against the teacher's sample from the same noise")
        elif ref_tensor is None:
            notes.append("no diffusion teacher found: no reference, so no PSNR")
        notes.append(("ts tuned for this model: " if tuned else "ts: ")
                     + "; ".join(f"{s.evaluations} -> {list(s.ts)}" for s in schedules[1:]))
        captions, file_names, rows = [], [], []
        for name, out, evals, ms in runs:
            value = psnr(out[0], ref_tensor[0]) if ref_tensor is not None else None
            is_ref = ref_tensor is out
            # The teacher's folder name is in the table; captions and file names go without it (a caption must
            # fit under a third of the gallery).
            short = name.split(" (")[0]
            file_names.append(short.replace(" ", "-"))
            text = f"{short} · {evals} eval{'s' if evals > 1 else ''} · {ms:.0f} ms"
            if value is not None and not is_ref:
                text += f" · PSNR {value:.1f} dB"
            captions.append(text)
            rows.append({"method": name, "evaluations": evals, "ms": round(ms, 1),
                         "psnr_db": None if value is None or is_ref else round(value, 2)})
        result = self._result("compare", torch.cat([o for _, o, _, _ in runs]), captions, file_names, notes)
        result.extra["rows"] = rows
        return result

    def benchmark_rows(self) -> tuple[list[dict[str, Any]], str]:
        if self.benchmarks is None:
            return [], "No benchmark results file configured."
        return read_benchmarks(self.benchmarks)
