"""The studio's task runners: UI values in, engine calls, typed results out.

The tabs hand it plain values (file paths, editor dicts, numbers, strings) and get back PIL images, captions,
notes and files: an edit on a tiled model (a model of photo crops) at the upload's own size, anything else at
model resolution, small images also enlarged (nearest-neighbour). Every runner starts with the
one preparation path, `Studio.prepare` (model, style, seed, output count, deadline) and `Prepared.admit` (the
request's cost and its seed range, before any work). Model folders are `app.registry`, form values
`app.forms`, request folders and results `app.request`; all the image math lives in `editing`. Nothing here
runs at import: `Studio.from_weights(...)` is called from `app.py` (or a test).
"""

from __future__ import annotations

import math
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from app import forms
from app.benchmark_file import read_benchmarks
from app.forms import GRID, check_seed, parse_count, parse_schedule, stroke_schedule
from app.registry import ModelEntry, Registry, discover
from app.request import (Cancels, CompareResult, CompareRow, Deadline, DenoiseResult, InterpolateResult, OnStep,
                         Recent, RequestFiles, Result, SuperresolveResult, TileSpeeds, file_identity, step_callback,
                         tile_callback, write_animation)
from editing import images, metrics, noise, tasks
from editing.images import FullImage
from editing.limits import Limits, Pass, check_passes, device_limits, within
from editing.models import ModelLoadError, Runtime, edits_use_teacher
from editing.precond import Denoiser, Parameterization
from editing.operators import grayscale
from editing.samplers import Step, generators_for, randn
from editing.schedules import PRESETS, Schedule, karras_sigmas, steps_schedule
from editing.tiling import TileCallback, count_tiles, default_tiling, pad_to, padded_run

MAX_BATCH = 16
MAX_FRAMES = 32
MAX_REFINE_STEPS = 16
DENOISE_MODES = ("auto", "faithful", "sharp")  # faithful: the teacher's D(x, sigma); sharp: the CM (editing.tasks)
MAX_NOISE_SIGMA = 2.0  # the add-noise helper's largest sigma (the [-1, 1] range's width)
NOISE_KINDS = ("white", "camera")  # the add-noise helper's: the same everywhere, or a camera's (editing.noise)
COMPARE_STEPS = (1, 2, 3, 4, 8)
TEACHER_STEPS = 18  # the teacher's Heun steps in Steps vs quality (2 x 18 - 1 = 35 evaluations)
COMPARE_TILES = 4  # Steps vs quality on a photo model restores the reference's centre up to this many crops wide
REQUEST_TIMEOUT = 120.0  # seconds of work one request may take (app.py --timeout)
# Super-resolve's Auto steps on a photo model, most first (Studio.auto_schedule): where 17 evaluations over the
# upscaled photo would not fit the studio's limits, fewer keep it whole, for a little fidelity (the teacher's card).
SUPERRESOLVE_AUTO = (tasks.DEFAULT_EDIT, steps_schedule(8, {}), steps_schedule(4, {}))
FEWER_STEPS = (8, 4, 2, 1)  # the step counts a refused request is told of (the steps box's presets)
RESULT_MEGAPIXELS = 24.0  # result pixels x outputs per request (memory for the results and their files)
Passes = Callable[[int, int], Sequence[Pass]]  # an output size -> what the solver runs for it (editing.limits)


def whole_image(evaluations: int) -> Passes:
    """The passes of an edit that runs `evaluations` over its whole output."""
    return lambda height, width: [Pass(height, width, evaluations)]


def around_mask(mask: torch.Tensor, resolution: int, evaluations: int,
                passes: Callable[..., list[Pass]] = tasks.inpaint_passes) -> Passes:
    """The passes of an edit that runs around `mask` (tasks.inpaint_passes, or tasks.stroke_passes), the mask
    shrunk with the image."""
    return lambda height, width: passes(mask, resolution, evaluations, (height, width))


def colorized(resolution: int, schedule: Schedule) -> Passes:
    """The passes of Colorize: its colours at a reduced size, then one pass at full size (tasks.colorize_passes)."""
    return lambda height, width: tasks.colorize_passes(height, width, resolution, schedule)


def thumbnail_only(fitted: tuple[int, int], height: int, width: int, resolution: int) -> bool:
    """Whether a request for height x width fits the studio's limits only smaller than the model's crops
    (`Studio.fitted_size` stopped at `fitted`): the cost stopped falling with the size (a mask's fixed margin,
    tile overlap), and a thumbnail of the request is no answer to it, so it is refused."""
    return min(fitted) < min(resolution, height, width)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of one image against another, both (3, H, W) in [-1, 1] (editing.metrics.psnr)."""
    return float(metrics.psnr(a[None].float().cpu(), b[None].float().cpu())[0])


@dataclass(frozen=True)
class Prepared:
    """What every task runner starts from: the model's entry, the class label, notes so far, the first seed and
    the number of outputs, and the request's deadline and progress hook."""

    studio: Studio
    entry: ModelEntry
    label: int | None
    notes: list[str]
    seed: int | None
    count: int
    count_name: str
    deadline: Deadline
    on_step: OnStep | None

    @property
    def resolution(self) -> int:
        return self.entry.param.resolution

    def admit(self, evaluations: int, outputs: int | None = None, size: tuple[int, int] | None = None, *,
              passes: Sequence[Pass] | None = None) -> list[int]:
        """Refuse, before any work, a request costing more than the studio's limits (editing.limits) or whose
        seeds would pass `forms.MAX_SEED`; the seeds of the outputs. `size`: the outputs' (height, width) when
        they are not the model's square; `passes`: what each output runs, when not `evaluations` over it."""
        outputs = self.count if outputs is None else outputs
        height, width = size or (self.resolution, self.resolution)
        try:
            check_passes(self.studio.limits, self.studio.runtime.device, outputs,
                         passes or [Pass(height, width, evaluations)])
        except ValueError as e:
            raise ValueError(f"too large for this studio: {e}") from None
        return [] if self.seed is None else forms.seed_range(self.seed, self.count, self.count_name)

    def callback(self, offset: int = 0, total: int | None = None) -> Callable[[Step], None]:
        return step_callback(self.on_step, self.deadline, offset, total)

    def image(self, value: Any, what: str, resolution: int | None = None) -> torch.Tensor:
        """An upload at the model's (or `resolution`) size, a tiled model's cut to its centre square (a model of
        photo crops never saw the white bars an emoji is padded with); what was done to it joins the notes."""
        x, notes = forms.load_upload(value, resolution or self.resolution, what, crop=self.entry.param.tiled)
        self.notes.extend(notes)
        return x

    def upload(self, value: Any, what: str, evaluations: int, *, factor: int = 1,
               own_size: bool | None = None) -> FullImage:
        """The image an edit of `evaluations` evaluations over the whole image runs on (its outputs `factor` x
        its size), with the request admitted. At its own size on a tiled model (`own_size` None) or when
        `own_size`, `fit` to the studio's limits. Otherwise fitted to the model's square (1 / factor of it), and
        the result is that square, without alpha."""
        tiled = self.entry.param.tiled if own_size is None else own_size
        if not tiled:
            x = self.image(value, what, self.resolution // factor)
            self.admit(evaluations, size=(x.shape[-2] * factor, x.shape[-1] * factor))
            return FullImage(x, None, [])
        return self.fit(self.full_upload(value, what), what, evaluations, whole_image(evaluations), factor=factor,
                        fewer=whole_image)

    def full_upload(self, value: Any, what: str) -> FullImage:
        """An upload at its own size, its alpha kept to put back; what was done to it joins the notes."""
        full = forms.load_upload_full(value, what)
        self.notes.extend(full.notes)
        return replace(full, notes=[])

    def fit(self, full: FullImage, what: str, evaluations: int, passes: Passes, *, factor: int = 1,
            fewer: Callable[[int], Passes] | None = None) -> FullImage:
        """`full` downscaled, with a note, to the largest size whose request (outputs `factor` x its size, each
        costing `passes(height, width)`) the studio's limits allow (Studio.fitted_size), and admitted. One that
        fits only as a thumbnail is refused (`thumbnail_only`), naming the step count that would fit where
        `fewer(evaluations)` gives the passes at another count."""
        x, alpha = full.tensor, full.alpha
        h, w = x.shape[-2:]
        out_h, out_w = self.studio.fitted_size(self.entry.name, h * factor, w * factor, self.count, passes)
        if thumbnail_only((out_h, out_w), h * factor, w * factor, self.resolution):
            raise ValueError(f"too large for this studio: {evaluations} evaluation(s) x {self.count} output(s) fit "
                             f"its limits only downscaled to {out_w}x{out_h}, smaller than the model's "
                             f"{self.resolution} px crops; ask for fewer steps or variations"
                             + self.studio.fewer_steps(self.entry.name, h * factor, w * factor, self.count,
                                                       evaluations, fewer))
        nh, nw = max(1, out_h // factor), max(1, out_w // factor)
        if (nh, nw) != (h, w):
            x = images.area_resize(x, nh, nw)
            if alpha is not None:
                alpha = images.area_resize(torch.from_numpy(alpha).float(), nh, nw).round().to(torch.uint8).numpy()
            limits = self.studio.limits
            self.notes.append(f"{what}: downscaled {w}x{h} -> {nw}x{nh}, the largest this studio takes for "
                              f"{evaluations} evaluation(s) x {self.count} output(s) on its "
                              f"{self.studio.runtime.device.type} (at most {limits.megapixels:g} megapixel-"
                              f"evaluations, {RESULT_MEGAPIXELS:g} megapixels of results and half the time limit "
                              "per request); fewer steps or variations keep more of its size")
        self.admit(evaluations, passes=passes(nh * factor, nw * factor))
        return replace(full, tensor=x, alpha=alpha, notes=[])

    def tiles(self, evaluations: int) -> TileCallback:
        """Progress per batch of tiles (and the time limit) for a run of `evaluations` on a tiled image."""
        return tile_callback(self.on_step, self.deadline, evaluations,
                             lambda seconds, tiles: self.studio.tile_speeds.record(self.entry.name, seconds, tiles))


PREVIEW_SIDE = 256  # Denoise's preview window, pixels of the result
PREVIEW_CONTEXT = 64  # what the solver sees around it (the photo model's tile): its tiles are the whole run's


@dataclass(frozen=True)
class Window:
    """A box of an image, in pixels: rows top .. top + height, columns left .. left + width."""

    top: int
    left: int
    height: int
    width: int

    @property
    def centre(self) -> tuple[float, float]:
        return self.top + self.height / 2, self.left + self.width / 2

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.top : self.top + self.height, self.left : self.left + self.width]

    def within(self, outer: Window) -> Window:
        """This box in the pixels of `outer`, a box that contains it."""
        return Window(self.top - outer.top, self.left - outer.left, self.height, self.width)


def preview_window(size: tuple[int, int], centre: tuple[float, float], side: int) -> Window:
    """The side x side box (the whole side where the image is shorter) centred on `centre` (row, column), moved
    inside an image of `size` (height, width). Two boxes on one centre, the smaller inside the larger, stay so."""
    (height, width), (row, column) = size, centre
    h, w = min(side, height), min(side, width)
    return Window(min(max(round(row - h / 2), 0), height - h), min(max(round(column - w / 2), 0), width - w), h, w)


@dataclass(frozen=True)
class DenoisePlan:
    """A Denoise request as `Studio.plan_denoise` decided it on the whole upload: the image fitted to the studio's
    limits, the denoiser, the level it runs at (the estimate at the fitted size times the bootstrap's `scale`, or
    the override), and the notes so far (in `prep`)."""

    prep: Prepared
    upload: FullImage
    header_size: tuple[int, int]  # the upload file's own (height, width), where a click on it lands
    model: Denoiser
    level: noise.NoiseCurve
    estimated: noise.NoiseCurve
    scale: float
    refine_steps: int
    grey: bool
    override: bool
    spread: bool  # noise spread over neighbouring pixels: run on the 2x2 phase sub-images (tasks.denoise)
    draws: int  # > 1, or 1 with `added`: a JPEG's noise, each evaluation the mean of `draws` under added noise
    added: float  # white noise added per draw, x the level (tasks.averaged_over_added_noise); 0: none

    @property
    def evaluations(self) -> int:
        return (1 + self.refine_steps) * self.draws + self.spread

    def run(self, x: torch.Tensor, limits: Limits) -> tuple[torch.Tensor, float]:
        """`x` (the fitted upload, or a window of it) denoised at the plan's level; and the sigma the model ran at."""
        prep = self.prep
        out, used = tasks.denoise(self.model, pad_to(x, prep.resolution, prep.resolution), sigma=self.level,
                                  refine_steps=self.refine_steps, seed=prep.seed, label=prep.label,
                                  on_tiles=prep.tiles(self.evaluations), limits=limits, grey=self.grey,
                                  spread=self.spread, added=self.added, draws=self.draws)
        return out[..., : x.shape[-2], : x.shape[-1]], used

    def describe(self, used: float) -> str:
        evaluations = f"{self.evaluations} evaluation(s)"
        if self.spread:
            evaluations = (f"on its 2x2 phase sub-images (neighbours there lie 2 px apart, where its noise is nearly "
                           f"white), then once over the whole image at {tasks.SPREAD_CLEANUP:g} x that level: "
                           f"{evaluations}")
        if self.added:
            evaluations = (f"the mean of {self.draws} denoise(s), each under white noise of {self.added:g} x that "
                           f"level added (a JPEG's noise, which its compression shaped, is then mostly the Gaussian "
                           f"noise the model was trained on): {evaluations}")
        if self.override:
            return f"used sigma = {used:.4f} (override); {evaluations}"
        if self.level.is_constant:
            return f"used sigma = {used:.4f}; {evaluations}"
        return f"denoised once on the image variance-stabilized to one level ({used:.4f}) and mapped back; {evaluations}"

    def level_to_set(self, x: torch.Tensor) -> float:
        """The one level 'Set the noise level myself' starts from: the level run at (a curve's: its mean over `x`)."""
        return self.level.sigmas[0] if self.level.is_constant else float(self.level.at(x).mean())


@dataclass(frozen=True)
class DenoisePreview:
    """Denoise on a window of the result, before and after at 100%, the sigma the model ran at, the level 'Set
    the noise level myself' starts from (`DenoisePlan.level_to_set`), the window in the result's pixels, and the
    notes."""

    before: Image.Image
    after: Image.Image
    used: float
    level: float
    window: Window
    notes: list[str]


@dataclass(frozen=True)
class Estimate:
    """A request's fitted output size and estimated seconds, and the line the tab shows ('' for none)."""

    height: int = 0
    width: int = 0
    seconds: float = 0.0
    text: str = ""
    refused: bool = False  # it fits the studio's limits only as a thumbnail, which Prepared.fit refuses

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width


class Studio(Registry):
    """The model registry (app.registry) with the studio's tasks, its limits and its request files."""

    def __init__(self, entries: Sequence[ModelEntry], runtime: Runtime, *, default: str | None = None,
                 benchmarks: Path | None = None, out_dir: Path | None = None,
                 request_timeout: float | None = REQUEST_TIMEOUT, limits: Limits | None = None):
        super().__init__(entries, runtime, default)
        self.benchmarks = benchmarks
        self.files = RequestFiles(Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="consistency-studio-")))
        if request_timeout is not None and not request_timeout > 0:
            raise ValueError(f"the request timeout must be a positive number of seconds, got {request_timeout}")
        self.request_timeout = request_timeout
        self.limits = limits or device_limits(runtime.device)  # the engine's, as for the CLI
        self.cancels = Cancels()
        self.tile_speeds = TileSpeeds()
        self.recent = Recent()  # an upload's noise reading and denoising scale, for the preview and the run after it
        self._speed_lock = threading.Lock()

    @classmethod
    def from_weights(cls, weights: str | Path, runtime: Runtime, **kwargs: Any) -> Studio:
        entries = discover(Path(weights))
        if not any(not e.is_teacher for e in entries):
            raise ModelLoadError(f"{weights}: no consistency model folder here (a folder with config.json and "
                                 "parameterization.json whose boundary is 'cm'); train one or pass --weights")
        return cls(entries, runtime, **kwargs)

    def prepare(self, model: str | None, style: str | None, seed: Any, on_step: OnStep | None = None, *,
                count: Any = 1, count_name: str = "variations", count_range: tuple[int, int] = (1, MAX_BATCH),
                seeded: bool = True, conditional: bool = True) -> Prepared:
        """The one preparation path: deadline, model, style (none when not `conditional`), seed (when `seeded`;
        else the task parses its own) and count."""
        deadline = Deadline(self.request_timeout)
        entry = self.entry(model)
        label, notes = forms.parse_style(style, entry.param.class_names) if conditional else (None, [])
        seed = check_seed(seed) if seeded else None
        count = parse_count(count, count_name, *count_range)
        return Prepared(self, entry, label, notes, seed, count, count_name, deadline, on_step)

    def edit_entry(self, name: str | None, edit_with: str | None) -> ModelEntry:
        """The model whose denoiser Algorithm 4 runs with in an edit on `name` (editing.models.edits_use_teacher):
        the consistency model itself or its diffusion teacher."""
        entry, teacher = self.entry(name), self.teacher_for(name)
        try:
            use_teacher = edits_use_teacher(edit_with, entry.param, teacher is not None)
        except ValueError as e:
            raise ValueError(f"{entry.name}: {e}") from None
        return teacher if use_teacher else entry

    def edit_model(self, prep: Prepared, edit_with: str | None) -> Denoiser:
        """`edit_entry`'s denoiser, loaded, with a note naming it."""
        entry = self.edit_entry(prep.entry.name, edit_with)
        prep.notes.append(f"the solver's denoiser: the diffusion teacher {entry.name}'s D(x, sigma)" if entry.is_teacher
                          else f"the solver's denoiser: the consistency model {entry.name}")
        return self.load(entry.name)

    def auto_schedule(self, name: str, steps: str | None, ladder: Sequence[Schedule], height: int, width: int,
                      outputs: int, passes: Callable[[int], Passes], what: str = "image") -> tuple[Schedule, str]:
        """The schedule a request runs, and a note where Auto chose it. Steps asked for run as asked (none or
        Auto: ladder[0]); Auto on a tiled model takes the first of `ladder` (most evaluations first) whose request
        keeps its output at height x width under this studio's limits (`fitted_size`), else the one that keeps most
        of it: the user's image at its own size comes before more steps. `passes(evaluations)`: one output's cost."""
        first = parse_schedule(steps, ladder[0])
        if not forms.is_auto(steps) or not self.entry(name).param.tiled or len(ladder) < 2:
            return first, ""
        kept = [self.fitted_size(name, height, width, outputs, passes(s.evaluations)) for s in ladder]
        chosen = next((i for i, size in enumerate(kept) if size == (height, width)),
                      max(range(len(ladder)), key=lambda i: (kept[i][0] * kept[i][1], -i)))
        if chosen == 0:
            return first, ""
        return ladder[chosen], (f"steps: Auto took {ladder[chosen].evaluations} evaluations, not "
                                f"{ladder[0].evaluations}: those would have downscaled the {what} to "
                                f"{kept[0][1]}x{kept[0][0]} to fit this studio's limits")

    def inpaint_steps(self, name: str, param: Parameterization, steps: str | None, fill: torch.Tensor,
                      outputs: int, passes: Callable[[int], Passes] | None = None) -> tuple[Schedule, str]:
        """Inpaint's schedule for `fill` (the mask at the upload's size): Auto is the denoiser's default
        (tasks.inpaint_schedule), or DEFAULT_EDIT where that keeps more of the image (`auto_schedule`).
        `passes(evaluations)`: what the solver runs, the box around `fill` unless given."""
        ladder = list(dict.fromkeys((tasks.inpaint_schedule(param), tasks.DEFAULT_EDIT)))
        r = self.resolution(name)
        return self.auto_schedule(name, steps, ladder, *fill.shape[-2:], outputs,
                                  passes or (lambda evaluations: around_mask(fill, r, evaluations)))

    def seconds_per_tile(self, name: str) -> float:
        """This machine's wall time per model tile at the engine's tile batch: the median of the latest batches of
        tiles run (`TileSpeeds`, every tiled request adds its own), and before any, one timed call after a
        warm-up (a few seconds on a CPU)."""
        with self._speed_lock:
            seen = self.tile_speeds.seconds_per_tile(name)
            if seen is not None:
                return seen
            model, r = self.load(name), self.resolution(name)
            tiling = default_tiling(r, self.runtime.device)
            x = torch.zeros(tiling.batch, 3, r, r, device=self.runtime.device)
            sigma = torch.full((tiling.batch,), 0.5, device=self.runtime.device)
            labels = (torch.zeros(tiling.batch, dtype=torch.long, device=self.runtime.device)
                      if model.param.class_names else None)
            with torch.inference_mode():
                model(x[:2], sigma[:2], None if labels is None else labels[:2])  # a fresh model's one-time costs
                started = time.perf_counter()
                model(x, sigma, labels)
            seconds = time.perf_counter() - started
            self.tile_speeds.record(name, seconds, tiling.batch)
            return seconds / tiling.batch

    def fitted_size(self, name: str, height: int, width: int, outputs: int, passes: Passes) -> tuple[int, int]:
        """The largest size, at the aspect of height x width (at most that), for a request of a tiled model whose
        outputs of that size each cost `passes(h, w)`, that fits the studio's megapixel-evaluation limit,
        RESULT_MEGAPIXELS of results and, at the measured time per tile, half its timeout (the CPU is shared by
        the requests running at once)."""
        scale = min(1.0, math.sqrt(RESULT_MEGAPIXELS * 1e6 / (outputs * height * width)))
        tiling = default_tiling(self.resolution(name), self.runtime.device)
        for _ in range(16):  # the cost shrinks slower than the size (tile overlap, a mask's margin): shrink again
            h, w = max(1, math.floor(height * scale)), max(1, math.floor(width * scale))
            runs = passes(h, w)
            shrink = min(1.0, math.sqrt(self.limits.megapixels / (outputs * sum(
                p.megapixel_evaluations for p in runs))))
            tiles = [count_tiles(p.height, p.width, tiling) for p in runs]
            if self.request_timeout is not None and max(tiles) > 1:
                seconds = outputs * sum(t * p.evaluations for t, p in zip(tiles, runs)) * self.seconds_per_tile(name)
                shrink = min(shrink, math.sqrt(0.5 * self.request_timeout / seconds))
            if shrink >= 1.0 or (h, w) == (1, 1):
                break
            scale *= 0.97 * shrink
        return h, w

    def fewer_steps(self, name: str, height: int, width: int, outputs: int, evaluations: int,
                    fewer: Callable[[int], Passes] | None) -> str:
        """' (N steps would fit, at WxH)' for the most of FEWER_STEPS below `evaluations` that keeps a request for
        height x width outputs, each costing `fewer(N)`, above a thumbnail (`thumbnail_only`), or ''."""
        for k in FEWER_STEPS if fewer is not None else ():
            if k >= evaluations:
                continue
            size = self.fitted_size(name, height, width, outputs, fewer(k))
            if not thumbnail_only(size, height, width, self.resolution(name)):
                return f" ({k} step{'s' if k > 1 else ''} would fit, at {size[1]}x{size[0]})"
        return ""

    def estimate(self, model: str | None, image: Any, steps: str | None, variations: Any = 1, *,
                 evaluations: int | None = None, factor: int = 1) -> str:
        """Before an edit of the whole image runs on a tiled model: its size, tiles and estimated time (tiles x
        evaluations x the measured time per tile); '' where there is nothing to estimate yet. Never raises: bad
        input is the run's to report."""
        try:
            if evaluations is None:
                evaluations = parse_schedule(steps, tasks.DEFAULT_EDIT).evaluations
        except ValueError:
            return ""
        return self._estimate(model, image, variations, whole_image(evaluations), factor,
                              fewer=(evaluations, whole_image)).text

    def denoise_estimate(self, model: str | None, image: Any, refine_steps: Any) -> str:
        """`estimate` for Denoise: what `plan_denoise` will run over the whole upload, from its noise as Denoise reads
        it (kept for the run): one evaluation more where the noise is spread over neighbouring pixels, a JPEG's draws,
        and the bootstrap's squares where it measures the level (a grey image's noise)."""
        try:
            entry = self.entry(model)
            evaluations = 1 + parse_count(refine_steps or 0, "refinement steps", 0, MAX_REFINE_STEPS)
            full = forms.load_upload_full(image, "image").tensor if entry.param.tiled and image else None
            reading = self.noise_reading(image, full) if full is not None else None
        except (ValueError, OSError):
            return ""
        if full is None or reading is None:
            return self.estimate(model, image, None, evaluations=evaluations)
        size = tuple(full.shape[-2:])
        draws = self.denoise_draws(entry.name, 1, size, evaluations) if reading.averaged else 1
        runs = evaluations * draws + reading.spread
        bootstrap = reading.bootstrapped(draws)

        def passes(height: int, width: int) -> list[Pass]:
            return [Pass(height, width, runs), *(tasks.denoise_scale_passes(height, width, evaluations)
                                                 if bootstrap else [])]

        return self._estimate(model, image, 1, passes, fewer=(runs, whole_image)).text

    def noise_reading(self, image: Any, full: torch.Tensor) -> noise.NoiseReading:
        """An upload's noise as Denoise reads it on a photo model (editing.noise.read_noise), `full` the upload at
        its own size (or as far as it was reduced as it was read), kept a while for the request that follows."""
        size = tuple(full.shape[-2:])
        jpeg = images.jpeg_compression(image) if size == images.image_size(image) else None
        key = file_identity(image)
        return self.recent.get(key and ("reading", key, size, True), lambda: noise.read_noise(full, jpeg))

    def superresolve_steps(self, name: str, steps: str | None, height: int, width: int, factor: int,
                           outputs: int) -> tuple[Schedule, str]:
        """Super-resolve's schedule for a result `factor` x a height x width image (1 in restore mode, which
        runs at the upload's size): Auto takes the most of SUPERRESOLVE_AUTO that keeps it whole (`auto_schedule`)."""
        return self.auto_schedule(name, steps, SUPERRESOLVE_AUTO, height * factor, width * factor, outputs,
                                  whole_image, "result")

    def superresolve_estimate(self, model: str | None, image: Any, steps: str | None, variations: Any,
                              factor: Any, mode: str | None) -> str:
        """`estimate` for Super-resolve: restore runs at the upload's size, upscale at `factor` x it, each with the
        steps Auto would take there (SUPERRESOLVE_AUTO, `auto_schedule`)."""
        if not image:
            return ""
        try:
            factor = 1 if (mode or "upscale").lower() == "restore" else int(str(factor).lower().rstrip("x"))
            outputs = parse_count(variations, "variations", 1, MAX_BATCH)
            schedule, _ = self.superresolve_steps(self.entry(model).name, steps, *images.image_size(image), factor,
                                                  outputs)
        except (ValueError, OSError):
            return ""
        return self.estimate(model, image, steps, variations, evaluations=schedule.evaluations, factor=factor)

    def colorize_estimate(self, model: str | None, image: Any, steps: str | None, variations: Any = 1) -> str:
        """`estimate` for Colorize: its colours solved at a reduced size, then one pass at full size."""
        try:
            schedule, r = parse_schedule(steps, tasks.DEFAULT_EDIT), self.resolution(model)
        except ValueError:
            return ""
        return self._estimate(model, image, variations, colorized(r, schedule),
                              fewer=(schedule.evaluations, lambda k: colorized(r, steps_schedule(k, {})))).text

    def inpaint_estimate(self, model: str | None, image: Any, mask: Any, steps: str | None,
                         variations: Any = 1, edit_with: str | None = "auto") -> str:
        """`estimate` for Inpaint, whose solver runs on the box around the mask (tasks.inpaint): for the uploaded
        mask; without one (a mask painted in the editor), from a small mask's box to the whole image at full size
        (thin strokes across it: a large hole is solved at a reduced scale, tasks.inpaint_plan), each with the
        steps Auto would take for it."""
        if not image:
            return ""
        try:
            name, param, r = self.entry(model).name, self.edit_entry(model, edit_with).param, self.resolution(model)
            outputs = parse_count(variations, "variations", 1, MAX_BATCH)
            size = images.image_size(image)
            fill = images.load_mask_full(mask, *size).mask if mask else None
            if fill is None:
                fill = torch.zeros(1, 1, *size, dtype=torch.bool)
                fill[..., size[0] // 2, size[1] // 2] = True  # the smallest mask: its box is the margin's
            evaluations = self.inpaint_steps(name, param, steps, fill, outputs)[0].evaluations
            across = self.inpaint_steps(name, param, steps, fill, outputs, whole_image)[0].evaluations
        except (ValueError, OSError):
            return ""
        small = self._estimate(model, image, variations, around_mask(fill, r, evaluations),
                               fewer=(evaluations, lambda k: around_mask(fill, r, k)))
        if mask:
            return small.text
        whole = self._estimate(model, image, variations, whole_image(across))
        if not small.text or small.refused:
            return small.text
        if whole.refused:
            return (f"{small.text} for a small mask; thin strokes across the whole image would be too large for this "
                    "studio at these steps and variations")
        shrunk = f", downscaled to {whole.width}x{whole.height}" if whole.size != small.size else ""
        low, high = sorted((small.seconds, whole.seconds))
        return (f"**About {low:.0f} to {high:.0f} s** on this {self.runtime.device.type}: {small.width}x{small.height} "
                f"output, the fill solved on the box around the mask ({r} px beyond it): {small.seconds:.0f} s for a "
                f"small mask ({evaluations} evaluations per image), {whole.seconds:.0f} s for thin strokes across the "
                f"whole image ({across}{shrunk})")

    def _estimate(self, model: str | None, image: Any, variations: Any, passes: Passes, factor: int = 1, *,
                  fewer: tuple[int, Callable[[int], Passes]] | None = None) -> Estimate:
        """`fewer`: (the request's evaluations, their passes at another count), to name the steps that would fit
        where this request would be refused (`fewer_steps`)."""
        try:
            entry = self.entry(model)
            if not entry.param.tiled or image is None or (isinstance(image, str) and not image):
                return Estimate()
            outputs = parse_count(variations, "variations", 1, MAX_BATCH)
            size = images.image_size(image)
        except (ValueError, OSError):
            return Estimate()
        h, w = self.fitted_size(entry.name, size[0] * factor, size[1] * factor, outputs, passes)
        r = entry.param.resolution
        if thumbnail_only((h, w), size[0] * factor, size[1] * factor, r):  # Prepared.fit refuses it
            hint = self.fewer_steps(entry.name, size[0] * factor, size[1] * factor, outputs, *fewer) if fewer else ""
            return Estimate(h, w, 0.0, f"**Too large for this studio** at these steps and variations: it fits only "
                                       f"downscaled to {w}x{h}, smaller than the model's {r} px crops; ask for "
                                       f"fewer{hint}", refused=True)
        tiling = default_tiling(r, self.runtime.device)
        runs = passes(h, w)
        per_tile = self.seconds_per_tile(entry.name)
        seconds = outputs * sum(count_tiles(p.height, p.width, tiling) * p.evaluations for p in runs) * per_tile
        shrunk = " (downscaled to fit this studio's limits)" if (h, w) != (size[0] * factor, size[1] * factor) else ""
        counts = Counter((count_tiles(p.height, p.width, tiling), p.evaluations) for p in runs)  # in order
        work = " + ".join(f"{f'{n} x ' if n > 1 else ''}{tiles} tiles x {evaluations} evaluation(s)"
                          for (tiles, evaluations), n in counts.items())
        return Estimate(h, w, seconds, f"**About {seconds:.0f} s** on this {self.runtime.device.type}: {w}x{h} "
                                       f"output{shrunk}, {work} x {outputs} output(s) at {1e3 * per_tile:.0f} ms "
                                       "per tile")

    def benchmark_rows(self) -> tuple[list[dict[str, Any]], str]:
        if self.benchmarks is None:
            return [], "No benchmark results file configured."
        return read_benchmarks(self.benchmarks)

    def _outputs(self, task: str, prep: Prepared, out: torch.Tensor, seeds: Sequence[int],
                 upload: FullImage | None = None, before: torch.Tensor | None = None) -> Result:
        """Outputs captioned and named by their seeds; an edit's with its upload's alpha and its input (or
        `before`) as the before/after slider's left side."""
        if upload is None:
            return self.files.write(task, out, [f"seed {s}" for s in seeds], [f"seed{s}" for s in seeds], prep.notes)
        return self.files.write(task, out, [f"seed {s}" for s in seeds], [f"seed{s}" for s in seeds], prep.notes,
                                alpha=upload.alpha, before=upload.tensor if before is None else before,
                                exif=upload.exif)

    # -- tasks ------------------------------------------------------------------------------------

    def generate(self, model: str | None, style: str | None, seed: float, batch: float, steps: str | None,
                 on_step: OnStep | None = None) -> Result:
        prep = self.prepare(model, style, seed, on_step, count=batch, count_name="batch size")
        schedule = parse_schedule(steps, PRESETS["1 step"], prep.entry.schedules)
        seeds = prep.admit(schedule.evaluations)
        out = tasks.generate(self.load(prep.entry.name), seeds, schedule=schedule, label=prep.label,
                             callback=prep.callback())
        tuned = " (tuned for this model)" if schedule in prep.entry.schedules.values() else ""
        prep.notes.append(f"{schedule.evaluations} evaluation(s), ts = {list(schedule.ts)} on a {schedule.n}-point "
                          f"grid{tuned}")
        return self._outputs("generate", prep, out, seeds)

    def inpaint(self, model: str | None, style: str | None, image: Any, mask: Any, editor: Any, steps: str | None,
                seed: float, variations: float, on_step: OnStep | None = None, *, edit_with: str | None = "auto"
                ) -> Result:
        prep = self.prepare(model, style, seed, on_step, count=variations)
        r = prep.resolution
        model_ = self.edit_model(prep, edit_with)
        schedule = parse_schedule(steps, tasks.inpaint_schedule(model_.param))
        seeds = prep.admit(schedule.evaluations)
        if image is None and isinstance(editor, dict) and editor.get("background") is not None:
            image = editor["background"]
        tiled = prep.entry.param.tiled
        # On a tiled model the upload is fitted by what the solver runs on, the box around the mask: the mask first.
        upload = prep.full_upload(image, "image") if tiled else prep.upload(image, "image", schedule.evaluations)
        h, w = upload.tensor.shape[-2:]
        if mask is not None and not (isinstance(mask, str) and not mask):
            converted = images.load_mask_full(mask, h, w) if tiled else images.load_mask(mask, r)
        elif isinstance(editor, dict):
            converted = forms.mask_from_editor(editor, r, shape=(h, w) if tiled else None)
        else:
            raise ValueError("no mask: paint over the image with the brush, or upload a mask (white = fill)")
        prep.notes.extend(f"mask: {n}" for n in converted.notes)
        fill = converted.mask
        if images.is_empty(fill):
            prep.notes.append("the mask is empty: nothing to fill, so the input is returned unchanged")
            return self.files.write("inpaint", upload.tensor, ["input (empty mask)"], ["input"], prep.notes,
                                    alpha=upload.alpha)
        if tiled:
            schedule, auto_note = self.inpaint_steps(prep.entry.name, model_.param, steps, fill, prep.count)
            prep.notes.extend([auto_note] if auto_note else [])
            upload = prep.fit(upload, "image", schedule.evaluations, around_mask(fill, r, schedule.evaluations),
                              fewer=lambda k: around_mask(fill, r, k))
            h, w = upload.tensor.shape[-2:]
            fill = images.resize_mask(fill, h, w)  # as it is, unless the upload was downscaled
        x = upload.tensor
        if images.is_full(fill) and (h, w) == (r, r):
            prep.notes.append("the mask covers the whole image: this is generation from noise, not an edit")
            out = tasks.generate(model_, seeds, schedule=schedule, label=prep.label, callback=prep.callback())
        else:
            out = padded_run(lambda padded: tasks.inpaint(
                model_, padded, pad_to(fill, r, r), seeds, schedule=schedule, label=prep.label,
                on_tiles=prep.tiles(schedule.evaluations), limits=self.limits), x, r)
            prep.notes.append(f"filled {int(fill.sum())} of {h * w} pixels; the others are kept exactly")
        prep.notes.append(f"{schedule.evaluations} evaluations per image")
        return self._outputs("inpaint", prep, out, seeds, upload)

    def colorize(self, model: str | None, style: str | None, image: Any, steps: str | None, seed: float,
                 variations: float, on_step: OnStep | None = None, *, edit_with: str | None = "auto") -> Result:
        prep = self.prepare(model, style, seed, on_step, count=variations)
        schedule = parse_schedule(steps, tasks.DEFAULT_EDIT)
        seeds = prep.admit(schedule.evaluations)
        evaluations = schedule.evaluations + tasks.COLOR_REFINE.evaluations
        if prep.entry.param.tiled:  # colours chosen at a reduced size, then one pass at full size
            r = prep.resolution
            upload = prep.fit(prep.full_upload(image, "image"), "image", evaluations, colorized(r, schedule),
                              fewer=lambda k: colorized(r, steps_schedule(k, {})))
        else:
            upload = prep.upload(image, "image", evaluations)
        prep.notes.append("only the luma (BT.601) of the input is kept; colour comes from the model")
        model_, r = self.edit_model(prep, edit_with), prep.resolution
        out = padded_run(lambda padded: tasks.colorize(
            model_, padded, seeds, schedule=schedule, label=prep.label,
            on_tiles=prep.tiles(evaluations), limits=self.limits), upload.tensor, r)
        return self._outputs("colorize", prep, out, seeds, upload, before=grayscale(upload.tensor))

    def superresolve(self, model: str | None, style: str | None, image: Any, factor: float | str, mode: str | None,
                     steps: str | None, seed: float, variations: float,
                     on_step: OnStep | None = None, *, edit_with: str | None = "auto") -> SuperresolveResult:
        """mode 'upscale': the upload is the small image; 'restore': it is shrunk by `factor` first (block means)
        and the result compared with it."""
        prep = self.prepare(model, style, seed, on_step, count=variations)
        r = prep.resolution
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
        seeds = prep.admit(schedule.evaluations)  # at the model's square, before decoding; the upload at its size
        reference = None
        if mode == "upscale":  # the upload at its own size, whatever the model
            full = prep.full_upload(image, "small image")
            schedule, auto_note = self.superresolve_steps(prep.entry.name, steps, *full.tensor.shape[-2:], factor,
                                                          prep.count)
            prep.notes.extend([auto_note] if auto_note else [])
            upload = prep.fit(full, "small image", schedule.evaluations, whole_image(schedule.evaluations),
                              factor=factor, fewer=whole_image)
            low, alpha = upload.tensor, upload.alpha
            if alpha is not None:
                alpha = alpha.repeat(factor, 0).repeat(factor, 1)
        else:
            if prep.entry.param.tiled:  # restored at the original's size: Auto keeps it whole, as when upscaling
                full = prep.full_upload(image, "original")
                schedule, auto_note = self.superresolve_steps(prep.entry.name, steps, *full.tensor.shape[-2:], 1,
                                                              prep.count)
                prep.notes.extend([auto_note] if auto_note else [])
                upload = prep.fit(full, "original", schedule.evaluations, whole_image(schedule.evaluations),
                                  fewer=whole_image)
            else:
                upload = prep.upload(image, "original", schedule.evaluations)
            h, w = (d - d % factor for d in upload.tensor.shape[-2:])  # whole blocks only
            if min(h, w) < factor:
                raise ValueError(f"original: {upload.tensor.shape[-1]}x{upload.tensor.shape[-2]} is too small to "
                                 f"shrink by {factor} (it needs {factor} px on each side)")
            reference, alpha = upload.tensor[..., :h, :w], None if upload.alpha is None else upload.alpha[:h, :w]
            low = F.avg_pool2d(reference, factor)  # the block means, the measured part (A y)
        model_ = self.edit_model(prep, edit_with)
        out = padded_run(lambda padded: tasks.superresolve(
            model_, padded, factor, seeds, schedule=schedule, label=prep.label,
            on_tiles=prep.tiles(schedule.evaluations), limits=self.limits), low, -(-r // factor), factor)
        captions = [f"seed {s}" for s in seeds]
        if reference is not None:
            captions = [f"{c} · PSNR {psnr(o, reference[0]):.1f} dB" for c, o in zip(captions, out)]
        h, w = low.shape[-2:]
        prep.notes.append(f"{w}x{h} -> {w * factor}x{h * factor} (x{factor}); every {factor}x{factor} block mean "
                          "is kept")
        nearest = tasks.upsample_nearest(low, factor)
        result = self.files.write("superresolve", out, captions, [f"seed{s}" for s in seeds], prep.notes,
                                  alpha=alpha, before=nearest, exif=upload.exif)
        if reference is not None:
            result.files += self.files.write("superresolve", reference, ["original"], ["original"], [],
                                             alpha=alpha).files
        return SuperresolveResult(**vars(result), input_view=result.before)

    def stroke_edit(self, model: str | None, style: str | None, start_image: Any, editor: Any, strength: float,
                    steps: float, seed: float, variations: float, on_step: OnStep | None = None) -> Result:
        """The painting is the editor's composite when there is one, else `start_image`."""
        prep = self.prepare(model, style, seed, on_step, count=variations)
        strength = parse_count(strength, "strength", 1, GRID - 1)
        schedule = stroke_schedule(forms.stroke_start(strength), parse_count(steps, "steps", 1, GRID - 1))
        seeds = prep.admit(schedule.evaluations)
        painting = editor.get("composite") if isinstance(editor, dict) else None
        full_size = prep.entry.param.tiled and start_image is not None and not (isinstance(start_image, str)
                                                                               and not start_image)
        if painting is None or full_size:
            painting = start_image
        if painting is None:
            raise ValueError("nothing to edit: paint on the canvas or give a start image")
        r, evaluations, strokes = prep.resolution, schedule.evaluations, None
        if full_size:  # the strokes, painted on the fitted canvas, over the photo at full size
            upload = prep.full_upload(painting, "painting")
            if isinstance(editor, dict):
                painted, converted = forms.strokes_over(upload.tensor, editor, r)
                upload = replace(upload, tensor=painted)
                prep.notes.extend(f"strokes: {n}" for n in converted.notes)
                strokes = None if images.is_empty(converted.mask) else converted.mask
            passes_for = (whole_image if strokes is None
                          else lambda k: around_mask(strokes, r, k, tasks.stroke_passes))
            upload = prep.fit(upload, "painting", evaluations, passes_for(evaluations), fewer=passes_for)
            if strokes is not None:  # as they are, unless the upload was downscaled
                strokes = images.resize_mask(strokes, *upload.tensor.shape[-2:])
        else:
            upload = prep.upload(painting, "painting", evaluations)
        model_ = self.load(prep.entry.name)
        out = padded_run(lambda padded: tasks.stroke_edit(
            model_, padded, seeds, schedule=schedule, label=prep.label, on_tiles=prep.tiles(evaluations),
            limits=self.limits, strokes=None if strokes is None else pad_to(strokes, r, r)), upload.tensor, r)
        prep.notes.append(f"strength {strength}: {self.stroke_start_text(prep.entry.name, strength)}; "
                          f"{evaluations} evaluation(s), ts = {list(schedule.ts)}")
        if strokes is not None:
            prep.notes.append(f"only the strokes and {r // 2} px around them change; every other pixel of the photo "
                              "is kept exactly")
        elif full_size:
            prep.notes.append("no strokes on the canvas: the whole photo was re-imagined at this strength (paint "
                              "strokes to change only them)")
        return self._outputs("stroke", prep, out, seeds, upload)

    def stroke_start_text(self, model: str | None, strength: Any) -> str:
        """Where a stroke edit of `strength` starts, in technical terms: its noise level and grid index."""
        p = self.entry(model).param
        start = forms.stroke_start(parse_count(strength, "strength", 1, GRID - 1))
        sigma0 = float(karras_sigmas(GRID, p.sigma_min, p.sigma_max, p.rho)[start])
        return f"starts at sigma = {sigma0:.3g} (index {start} of the {GRID}-point grid)"

    def interpolate(self, model: str | None, style: str | None, mode: str | None, seed_a: float, seed_b: float,
                    image_a: Any, image_b: Any, frames: float, steps: str | None, seed: float,
                    on_step: OnStep | None = None) -> InterpolateResult:
        """Frames between two seeds (slerp of noises) or two images; adds a strip PNG and an animated GIF."""
        prep = self.prepare(model, style, None, on_step, count=frames, count_name="frames",
                            count_range=(2, MAX_FRAMES), seeded=False)
        frames = prep.count
        mode = (mode or "seeds").lower()
        model_ = self.load(prep.entry.name)
        if mode == "seeds":
            seed_a, seed_b = check_seed(seed_a, "first seed"), check_seed(seed_b, "second seed")
            schedule = parse_schedule(steps, PRESETS["1 step"], prep.entry.schedules)
            prep.admit(schedule.evaluations)
            out = tasks.interpolate_seeds(model_, seed_a, seed_b, frames, schedule=schedule, label=prep.label,
                                          callback=prep.callback())
            prep.notes.append(f"seed {seed_a} -> seed {seed_b}: slerp of the two noises, {schedule.evaluations} "
                              "evaluation(s) per frame")
        elif mode == "images":
            seed = check_seed(seed)
            a, b = prep.image(image_a, "first image"), prep.image(image_b, "second image")
            schedule = parse_schedule(steps, PRESETS["strokes"])
            prep.admit(schedule.evaluations)
            out = tasks.interpolate_images(model_, a, b, frames, seed, schedule=schedule, label=prep.label,
                                           callback=prep.callback())
            prep.notes.append(f"both images noised to index {schedule.ts[0]} with seed {seed}, blended, then denoised")
        else:
            raise ValueError(f"mode must be 'seeds' or 'images', got {mode!r}")
        captions = [f"frame {i + 1}/{frames}" for i in range(frames)]
        result = self.files.write("interpolate", out, captions, [f"frame{i + 1:02d}" for i in range(frames)],
                                  prep.notes)
        strip, gif = write_animation(result)
        result.files = [gif, strip] + result.files
        return InterpolateResult(**vars(result), strip=strip, gif=gif)

    def add_noise(self, model: str | None, image: Any, sigma: float, seed: float,
                  kind: str | None = "white") -> tuple[str, list[str]]:
        """The upload plus noise of std sigma (on the [-1, 1] scale), saved as the model takes it: white Gaussian
        noise, or (`kind` "camera") a camera's, whose std is sigma at mid grey and larger in the shadows
        (editing.noise.add_camera_noise)."""
        prep = self.prepare(model, None, None, seeded=False, conditional=False)
        if sigma is None or not math.isfinite(float(sigma)) or not 0 <= float(sigma) <= MAX_NOISE_SIGMA:
            raise ValueError(f"noise level must be between 0 and {MAX_NOISE_SIGMA:g}, got {sigma}")
        kind = (kind or "white").lower()
        if kind not in NOISE_KINDS:
            raise ValueError(f"kind of noise must be one of {', '.join(NOISE_KINDS)}, got {kind!r}")
        seed = check_seed(seed)
        upload = prep.upload(image, "image", 1)
        x = upload.tensor
        if kind == "camera":
            a, b = noise.camera_at_mid_grey(float(sigma))
            noisy = noise.add_camera_noise(x, a, b, generators_for([seed])[0])
            curve = noise.camera_curve(a, b).at(torch.tensor([-0.8, 0.8], dtype=torch.float64)).tolist()
            added = (f"added a camera's noise (variance {a:.3g} L + {b:.3g} in linear light, written as sRGB): sigma "
                     f"{float(sigma):.3g} at mid grey, {curve[0]:.3g} in the shadows, {curve[1]:.3g} in the highlights, "
                     f"seed {seed}")
        else:
            noisy = x + float(sigma) * randn(x.shape, generators_for([seed]))
            added = f"added Gaussian noise, sigma = {float(sigma):.3g}, seed {seed} (clipped to the image range)"
        name = f"{'camera-' if kind == 'camera' else ''}sigma{float(sigma):.3g}-seed{seed}"
        result = self.files.write("noisy", noisy, [f"sigma {float(sigma):.3g}"], [name], prep.notes,
                                  alpha=upload.alpha)
        prep.notes.append(added)
        return result.files[0], prep.notes

    def keeps_size(self, name: str, outputs: int, size: tuple[int, int] | None, passes: list[Pass]) -> bool:
        """Whether a request of `outputs` x `passes` on model `name` fits this studio's limits, and, for a `size` (a
        tiled model's upload), at that size: not downscaled by the budget or by the time per tile."""
        if not within(self.limits, self.runtime.device, outputs, passes):
            return False
        return size is None or self.fitted_size(name, *size, outputs, lambda h, w: passes) == size

    def denoise_draws(self, name: str, outputs: int, size: tuple[int, int], evaluations: int) -> int:
        """How many draws a JPEG's averaged denoise (tasks.averaged_over_added_noise) of `evaluations` each takes on
        an upload of `size`: the most, up to AVERAGED_DRAWS, that keep it at that size; 1 where two do not."""
        return tasks.averaged_draws(lambda k: self.keeps_size(name, outputs, size, [Pass(*size, k * evaluations)]))

    def plan_denoise(self, model: str | None, style: str | None, image: Any, sigma: float | None,
                     refine_steps: float, seed: float, on_step: OnStep | None = None, *,
                     mode: str | None = "auto") -> DenoisePlan:
        """What a Denoise request runs, decided on the whole upload: its size fitted to the studio's limits, its
        noise read, the denoiser, and the level it runs at (for a JPEG's or a grey image's noise, measured by the
        bootstrap). `denoise` runs it on the whole image, `denoise_preview` on a window of it."""
        prep = self.prepare(model, style, seed, on_step)
        refine_steps = parse_count(refine_steps, "refinement steps", 0, MAX_REFINE_STEPS)
        evaluations = 1 + refine_steps
        prep.admit(evaluations)
        # The noise is estimated on the upload at its own size: a downscale averages it down and, where it shares a
        # source pixel between two outputs, correlates neighbours, which the estimate reads low (editing.noise).
        tiled = prep.entry.param.tiled
        full = prep.full_upload(image, "image") if tiled else prep.upload(image, "image", evaluations)
        size = tuple(full.tensor.shape[-2:])
        header_size = images.image_size(image)  # (height, width) of the file; `size` is smaller where it was reduced
        own_size = size == header_size
        # A photo's noise is read as a curve against the value where it has one (a camera's, larger in the
        # shadows), a JPEG's through its own compression (editing.noise.read_noise); the emoji square as one level.
        jpeg = images.jpeg_compression(image)
        upload_key = file_identity(image)
        reading = self.noise_reading(image, full.tensor) if tiled else noise.read_noise(
            full.tensor, jpeg if own_size else None, as_curve=False)
        override = float(sigma) if sigma is not None and float(sigma) >= 0 else None
        # Noise spread over neighbouring pixels is denoised on the image's phase sub-images, at half the photo's scale
        # (a photo model's crops include such), plus a pass over the whole image: one evaluation more.
        spread = reading.spread and tiled
        # A colour JPEG's noise is denoised under more white noise, the mean of up to AVERAGED_DRAWS draws: as many as
        # keep the image at its own size within the studio's limits; where not even two do, at the bootstrap's
        # multiple of its level, which one draw does not beat (`--sections jpeg_noise`).
        draws = self.denoise_draws(prep.entry.name, prep.count, size, evaluations) if reading.averaged and tiled else 1
        added = tasks.AVERAGED_ADDED if draws > 1 else 0.0
        if reading.averaged and tiled and draws < tasks.AVERAGED_DRAWS and (draws > 1 or override is None):
            prep.notes.append(f"{reading.kind}: denoised as the mean of {draws} draws, not {tasks.AVERAGED_DRAWS}: "
                              "more would not fit this studio's limits at its own size" if draws > 1 else
                              f"{reading.kind}: too large for the mean of 2 draws at its own size within this studio's "
                              "limits: denoised at the multiple of its level the bootstrap measures")
        evaluations = evaluations * draws + spread
        # A grey image's noise (a grey JPEG's too) is not the white noise the models were trained on, and is best
        # denoised at a multiple of its level (tasks.denoise_scale), measured on squares of the upload re-noised and
        # saved as the file was: when the studio's limits take it beside the image at its own size, never at the cost
        # of the image's size. A JPEG downscaled here no longer carries its compression: not measured.
        bootstrap: list[Pass] = []
        if override is None and reading.bootstrapped(draws) and (own_size or jpeg is None):
            bootstrap = tasks.denoise_scale_passes(*size, evaluations)
            room = self.keeps_size(prep.entry.name, prep.count, size if tiled else None,
                                   [Pass(*size, evaluations), *bootstrap])
            if not room:
                prep.notes.append(f"{reading.kind}: the level its noise is best denoised at was not measured (this "
                                  "studio's limits leave no room for it beside the image at its own size); denoised at "
                                  "the noise's level")
                bootstrap = []
        upload = prep.fit(full, "image", evaluations, lambda h, w: [Pass(h, w, evaluations), *bootstrap]) if tiled \
            else full
        x = upload.tensor
        downscaled = x.shape != full.tensor.shape
        estimated = reading.level.scaled(noise.area_resize_std(size, tuple(x.shape[-2:])) if downscaled else 1.0)
        mode = (mode or "auto").lower()
        if mode not in DENOISE_MODES:
            raise ValueError(f"mode must be one of {', '.join(DENOISE_MODES)}, got {mode!r}")
        teacher = self.teacher_for(prep.entry.name)
        faithful = mode == "faithful" or (mode == "auto" and teacher is not None and refine_steps == 0)
        if faithful and teacher is None:
            raise ValueError(f"faithful mode needs a diffusion teacher beside {prep.entry.name}; use sharp")
        if faithful and refine_steps:
            raise ValueError("refinement steps need the sharp mode (the consistency model)")
        model_name = teacher.name if faithful else prep.entry.name
        model_ = self.load(model_name)
        prep.notes.append(f"faithful: the teacher {teacher.name}'s D(x, sigma), the MMSE estimate" if faithful
                          else "sharp: the consistency model")
        scale = 1.0
        if bootstrap:
            scale = self.recent.get(
                upload_key and ("scale", upload_key, tuple(x.shape), model_name, refine_steps, prep.seed, prep.label),
                lambda: tasks.denoise_scale(
                    model_, x, reading.level, reading.compression, refine_steps=refine_steps, seed=prep.seed,
                    label=prep.label, grey=reading.grey, limits=self.limits,
                    on_tiles=prep.tiles(evaluations * (1 + len(noise.BOOTSTRAP_SCALES)))))
        prep.notes.extend(reading.notes())
        if scale != 1.0:
            prep.notes.append(reading.scale_note(scale))
        describe = noise.describe_level
        if downscaled and max(estimated.sigmas) > 0:
            prep.notes.append(f"the noise was estimated at the upload's own size ({describe(reading.level)}); the "
                              f"downscale averages it down to {describe(estimated)}")
        elif not own_size and override is None and jpeg is not None and max(estimated.sigmas) > 0:  # a clean JPEG: 0
            prep.notes.append("a JPEG, downscaled before denoising: its compression removed the noise's finest "
                              "grain, which is what the estimate reads, so it may read low; if grain is left, tick "
                              "'Set the noise level myself' and raise the level")
        # The estimate shown is the one used: denoise is handed it rather than estimating it again.
        level = estimated.scaled(scale) if override is None else noise.NoiseCurve.constant(override)
        return DenoisePlan(prep, upload, header_size, model_, level, estimated, scale, refine_steps, reading.grey,
                           override is not None, spread, draws, added)

    def denoise(self, model: str | None, style: str | None, image: Any, sigma: float | None, refine_steps: float,
                seed: float, on_step: OnStep | None = None, *, mode: str | None = "auto") -> DenoiseResult:
        """sigma None (or < 0): estimated from the image. The result carries the before/after enlarged views."""
        plan = self.plan_denoise(model, style, image, sigma, refine_steps, seed, on_step, mode=mode)
        prep, x = plan.prep, plan.upload.tensor
        out, used = plan.run(x, self.limits)
        prep.notes.append(plan.describe(used))
        result = self.files.write("denoise", out, [f"denoised (sigma {used:.3g})"], [f"seed{prep.seed}"], prep.notes,
                                  alpha=plan.upload.alpha, before=x, exif=plan.upload.exif)
        curve = () if plan.estimated.is_constant else tuple(zip(plan.estimated.levels, plan.estimated.sigmas))
        return DenoiseResult(**vars(result), estimated=float(plan.estimated.at(x).mean()), used=used,
                             scale=plan.scale, curve=curve, level=plan.level_to_set(x))

    def denoise_preview(self, model: str | None, style: str | None, image: Any, sigma: float | None,
                        refine_steps: float, seed: float, point: Any = None, *,
                        mode: str | None = "auto") -> DenoisePreview:
        """Denoise as `denoise` would, on a PREVIEW_SIDE window of the result around `point` ((x, y) in the
        upload's own pixels; None: its centre): the window before and after, at 100% of the result, and the level
        used. The solver sees PREVIEW_CONTEXT more on each side, so the window's tiles are those of the whole image's
        run in all but their grid's random offset. Nothing is written: a preview is redrawn at every change."""
        plan = self.plan_denoise(model, style, image, sigma, refine_steps, seed, mode=mode)
        x = plan.upload.tensor
        height, width = x.shape[-2:]
        own_h, own_w = plan.header_size
        px, py = (own_w / 2, own_h / 2) if point is None else forms.parse_point(point, "the preview's point")
        window = preview_window((height, width), (py * height / own_h, px * width / own_w), PREVIEW_SIDE)
        context = preview_window((height, width), window.centre, PREVIEW_SIDE + 2 * PREVIEW_CONTEXT)
        out, used = plan.run(context.crop(x), self.limits)
        inner = window.within(context)
        return DenoisePreview(images.to_pil(window.crop(x))[0], images.to_pil(inner.crop(out))[0], used,
                              plan.level_to_set(x), window, [*plan.prep.notes, plan.describe(used)])

    def compare(self, model: str | None, style: str | None, seed: float, reference: Any,
                on_step: OnStep | None = None) -> CompareResult:
        """1, 2, 3, 4 and 8 steps (and the teacher's Heun 18 when generating), with evaluations, ms and PSNR.

        Without a reference image: generation from `seed`; PSNR against the teacher's sample from the same
        noise. With one: restoring it from a 4x (or 2x) downsample; PSNR against the reference.
        """
        prep = self.prepare(model, style, seed, on_step)
        entry, r, label, seed = prep.entry, prep.resolution, prep.label, prep.seed
        model_ = self.load(entry.name)
        teacher = self.teacher_for(entry.name)
        generating = reference is None or (isinstance(reference, str) and not reference)
        # Generation takes the ts tuned for this model (schedules.json); restoring a reference, even ones.
        tuned = entry.schedules if generating else {}
        schedules = [PRESETS["1 step"]] + [steps_schedule(k, tuned) for k in COMPARE_STEPS[1:]]
        teacher_evaluations = 2 * TEACHER_STEPS - 1
        total = sum(s.evaluations for s in schedules)
        prep.admit(total + 2 * TEACHER_STEPS)
        ref_tensor, factor, low = None, 4 if r % 4 == 0 else 2, None
        side = 0
        if not generating and entry.param.tiled:
            try:
                side = min(COMPARE_TILES * r, *images.image_size(reference)) // r * r
            except (ValueError, OSError):
                pass  # the model's square below says what is wrong with it
        edit_teacher = None
        if side:
            # A photo model works at the photo's own scale: its centre, several crops wide, from its block means
            # (A y, as Super-resolve's restore mode), not the whole photo shrunk to one crop; beside the steps,
            # Super-resolve's default there, Algorithm 4 with the teacher's D.
            edit_teacher = teacher
            total += tasks.DEFAULT_EDIT.evaluations if teacher is not None else 0
            prep.admit(total, size=(side, side))
            full = prep.full_upload(reference, "reference")
            h, w = full.tensor.shape[-2:]
            ref_tensor = full.tensor[..., (h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2]
            low = F.avg_pool2d(ref_tensor, factor)
            prep.notes.append(f"task: restore the reference's centre {side}x{side} (of {w}x{h}, at its own scale) "
                              f"from its {side // factor}x{side // factor} block means (x{factor})")
            teacher = None
        elif not generating:
            ref_tensor = prep.image(reference, "reference")
            low, _ = forms.load_upload(reference, r // factor, "downsampled")
            prep.notes.append(f"task: restore the reference from a {r // factor}x{r // factor} downsample (x{factor})")
            teacher = None
        else:
            prep.notes.append(f"task: generate seed {seed}")
            if teacher is not None:
                total += teacher_evaluations
        runs: list[tuple[str, torch.Tensor, int, float]] = []
        # Warm-up (not timed): the first call pays for kernel selection and allocation.
        tasks.generate(model_, [seed], schedule=PRESETS["1 step"], label=label)
        done = 0
        for schedule in schedules:
            callback = prep.callback(done, total)
            start = time.perf_counter()
            if low is None:
                out = tasks.generate(model_, [seed], schedule=schedule, label=label, callback=callback)
            else:
                out = tasks.superresolve(model_, low, factor, [seed], schedule=schedule, label=label, callback=callback)
            out = out.cpu()
            k = schedule.evaluations
            runs.append((f"{k} step{'s' if k > 1 else ''}", out, k, 1000 * (time.perf_counter() - start)))
            done += k
        if edit_teacher is not None:
            teacher_model, k = self.load(edit_teacher.name), tasks.DEFAULT_EDIT.evaluations
            tasks.generate(teacher_model, [seed], schedule=PRESETS["1 step"], label=label)  # warm-up, as the CM's
            start = time.perf_counter()
            out = tasks.superresolve(teacher_model, low, factor, [seed], schedule=tasks.DEFAULT_EDIT, label=label,
                                     callback=prep.callback(done, total)).cpu()
            runs.append((f"teacher's D ({edit_teacher.name})", out, k, 1000 * (time.perf_counter() - start)))
        if teacher is not None:
            teacher_model = self.load(teacher.name)
            tasks.heun_baseline(teacher_model, [seed], steps=2, label=label)  # warm-up
            start = time.perf_counter()
            out = tasks.heun_baseline(teacher_model, [seed], steps=TEACHER_STEPS, label=label,
                                      callback=prep.callback(done, total)).cpu()
            runs.append((f"teacher Heun {TEACHER_STEPS} ({teacher.name})", out, teacher_evaluations,
                         1000 * (time.perf_counter() - start)))
            ref_tensor = out
            prep.notes.append("PSNR is against the teacher's sample from the same noise")
        elif ref_tensor is None:
            prep.notes.append("no diffusion teacher found: no reference, so no PSNR")
        prep.notes.append(("ts tuned for this model: " if tuned else "ts: ")
                          + "; ".join(f"{s.evaluations} -> {list(s.ts)}" for s in schedules[1:]))
        captions, file_names, rows = [], [], []
        for name, out, evals, ms in runs:
            value = psnr(out[0], ref_tensor[0]) if ref_tensor is not None else None
            is_ref = ref_tensor is out
            # The teacher's folder name is in the table; captions and file names go without it (a caption must
            # fit under a third of the gallery).
            short = name.split(" (")[0]
            file_names.append(re.sub(r"[^A-Za-z0-9]+", "-", short))
            # PSNR right after the name: a caption cut to the gallery's width keeps it (the table has the rest)
            measured = f" · PSNR {value:.1f} dB" if value is not None and not is_ref else ""
            captions.append(f"{short}{measured} · {evals} eval{'s' if evals > 1 else ''} · {ms:.0f} ms")
            rows.append(CompareRow(name, evals, round(ms, 1), None if value is None or is_ref else round(value, 2)))
        result = self.files.write("compare", torch.cat([o for _, o, _, _ in runs]), captions, file_names, prep.notes)
        shown = None
        if not generating:
            shown = self.files.write("compare-reference", ref_tensor, ["reference"], ["reference"], []).enlarged[0]
        return CompareResult(**vars(result), rows=rows, reference=shown)
