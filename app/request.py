"""One request's handling: its time limit (`Deadline`), its progress and stop callback, its folder of result
files, and the typed results the tabs show."""

from __future__ import annotations

import math
import shutil
import statistics
import threading
import time
import uuid
import zipfile
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image

from editing import images, io
from editing.samplers import Step
from editing.tiling import TileCallback, TileProgress

# (done, total[, unit]): evaluations done of those in the whole request, or on a tiled image tile batches
OnStep = Callable[..., None]
ENLARGED = 256  # side of the enlarged (nearest-neighbour) views
KEEP_REQUESTS = 256  # request folders kept on disk before the oldest are removed
GIF_FRAME_MS = 120  # the interpolation GIF's time per frame
MAX_SESSIONS = 4096  # Stop presses remembered before old ones are forgotten
FORGET_AFTER_S = 3600.0
TILE_SPEED_WINDOW = 15  # batches of tiles whose median time per tile the studio's estimates use


class Cancelled(ValueError):
    """The user pressed Stop: the request's work stops after the current network call."""


class Cancels:
    """Stop presses by browser session. A press stops that session's requests that started before it, at
    their next network call (a worker thread cannot be killed; Gradio's own cancel only drops the reply)."""

    def __init__(self) -> None:
        self._pressed: dict[str, float] = {}
        self._lock = threading.Lock()

    def press(self, session: str | None) -> None:
        if session:
            with self._lock:
                now = time.monotonic()
                if len(self._pressed) >= MAX_SESSIONS:  # presses older than any request can run are moot
                    self._pressed = {k: t for k, t in self._pressed.items() if now - t < FORGET_AFTER_S}
                self._pressed[session] = now

    def watch(self, session: str | None) -> Callable[[], bool]:
        """Whether Stop was pressed in `session` since this call (a request's start)."""
        started = time.monotonic()
        return lambda: session is not None and self._pressed.get(session, -math.inf) >= started


class RequestTimeout(ValueError):
    """A request ran past the studio's time limit; it stopped cleanly after a network evaluation."""


@dataclass(frozen=True)
class Deadline:
    """One request's time limit, checked after every network evaluation: a worker thread cannot be killed,
    but the engine's per-evaluation callback can stop the loop between evaluations and free the worker."""

    seconds: float | None
    started: float = field(default_factory=time.monotonic)

    def check(self, done: int, total: int, unit: str = "network evaluations") -> None:
        elapsed = time.monotonic() - self.started
        if self.seconds and elapsed > self.seconds:
            raise RequestTimeout(f"stopped after {elapsed:.0f} s ({done} of {total} {unit}): this "
                                 f"studio allows {self.seconds:g} s per request. Ask for fewer steps, variations "
                                 "or frames, or try again when the server is less busy.")


def step_callback(on_step: OnStep | None, deadline: Deadline, offset: int = 0,
                  total: int | None = None) -> Callable[[Step], None]:
    """Progress for the UI and the request's time limit, after every network evaluation."""

    def callback(step: Step) -> None:
        done, whole = offset + step.index + 1, total or step.total
        if on_step is not None:
            on_step(done, whole)
        deadline.check(done, whole)

    return callback


class TileSpeeds:
    """Seconds per model tile, per model: the median over the latest TILE_SPEED_WINDOW batches of tiles seen, so
    that estimates follow the machine as it is now (a measurement taken while the CPU was busy, or idle, is
    outvoted by the batches that run after it). Safe to share between request threads."""

    def __init__(self, window: int = TILE_SPEED_WINDOW):
        self._seen: dict[str, deque[float]] = {}
        self._window = window
        self._lock = threading.Lock()

    def record(self, model: str, seconds: float, tiles: int) -> None:
        if tiles > 0 and seconds > 0:
            with self._lock:
                self._seen.setdefault(model, deque(maxlen=self._window)).append(seconds / tiles)

    def seconds_per_tile(self, model: str) -> float | None:
        """The median time per tile of `model`'s latest batches, or None before any."""
        with self._lock:
            seen = self._seen.get(model)
            return statistics.median(seen) if seen else None


RECENT = 16  # values a Recent keeps
T = TypeVar("T")


class Recent:
    """The values last computed for a few keys (an upload's noise reading, its denoising scale): Denoise's preview
    and the run that follows it read an upload once. Safe to share between request threads; two requests that miss
    together both compute, and the later result is kept."""

    def __init__(self, size: int = RECENT):
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Hashable | None, compute: Callable[[], T]) -> T:
        """The value kept for `key`, else `compute()` kept for it (a None key: computed, never kept)."""
        if key is None:
            return compute()
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


def file_identity(value: Any) -> tuple[str, int, int] | None:
    """An uploaded file's path, size and modification time, a key that changes with its contents; None for a value
    that is not a file's path (an array, an editor's dict)."""
    if not isinstance(value, (str, Path)):
        return None
    try:
        stat = Path(value).stat()
    except OSError:
        return None
    return str(value), stat.st_size, stat.st_mtime_ns


def tile_callback(on_step: OnStep | None, deadline: Deadline, evaluations: int,
                  timed: Callable[[float, int], None] | None = None) -> TileCallback:
    """Progress in batches of tiles over the whole request, and its time limit, after every batch of tiles:
    on a large image one evaluation is many network calls, and the request can stop between any two.
    `timed(seconds, tiles)`: each batch's wall time (from the batch before it: the first of a run has none)."""
    state = {"evaluation": -1, "last": None}  # the evaluation now running (0-based): each starts again at batch 1

    def callback(tiles: TileProgress) -> None:
        now = time.perf_counter()
        if timed is not None and state["last"] is not None:
            timed(now - state["last"], tiles.tiles)
        state["last"] = now
        if tiles.done == 1:
            state["evaluation"] = min(state["evaluation"] + 1, evaluations - 1)
        done, whole = state["evaluation"] * tiles.total + tiles.done, evaluations * tiles.total
        if on_step is not None:
            on_step(done, whole, "tile batches")
        deadline.check(done, whole, "tile batches")

    return callback


@dataclass
class Result:
    """What a task returns to its tab: the images, their captions, notes and files."""

    images: list[Image.Image]
    captions: list[str]
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # full-size PNGs (and JPEGs, views, a zip of all, GIF/strip)
    enlarged: list[str] = field(default_factory=list)  # per image, its gallery view (enlarged when small)
    before: str = ""  # the input at the results' size (enlarged like them), the before/after slider's left side

    def gallery(self) -> list[tuple[str, str]]:
        return list(zip(self.enlarged, self.captions))

    def notes_markdown(self) -> str:
        return "\n".join(f"- {note}" for note in self.notes)

    def before_after(self) -> tuple[str, str] | None:
        """(before, first result) for an image slider, or None when the task has no input image."""
        return (self.before, self.enlarged[0]) if self.before and self.enlarged else None


@dataclass
class SuperresolveResult(Result):
    input_view: str = ""  # the enlarged low-resolution input (nearest), shown beside the results


@dataclass
class InterpolateResult(Result):
    strip: str = ""  # every frame side by side (PNG)
    gif: str = ""  # the frames forth and back, looping


@dataclass
class DenoiseResult(Result):
    estimated: float = 0.0  # the noise sigma estimated from the input (a curve's: its mean over the image)
    used: float = 0.0  # the sigma denoised at (the estimate, or the override)
    scale: float = 1.0  # the multiple of the estimate a JPEG's or a grey image's noise was measured best at
    curve: tuple[tuple[float, float], ...] = ()  # (value, std) where the noise's level depends on the value
    level: float = 0.0  # the one level 'Set the noise level myself' starts from (the studio's DenoisePlan)


@dataclass(frozen=True)
class CompareRow:
    method: str
    evaluations: int
    ms: float
    psnr_db: float | None


@dataclass
class CompareResult(Result):
    rows: list[CompareRow] = field(default_factory=list)
    reference: str | None = None  # the enlarged reference image, shown beside the results (None: generating)


class RequestFiles:
    """A fresh folder per request under `out_dir` (the oldest removed beyond `keep`), and the files written."""

    def __init__(self, out_dir: Path, keep: int = KEEP_REQUESTS):
        self.out_dir, self.keep = Path(out_dir), keep
        self._lock = threading.Lock()

    def folder(self) -> Path:
        with self._lock:  # requests run concurrently: one prunes at a time, and folders may vanish meanwhile
            self.out_dir.mkdir(parents=True, exist_ok=True)
            existing = []
            for path in self.out_dir.iterdir():
                try:
                    existing.append((path.stat().st_mtime, path.name, path))
                except FileNotFoundError:
                    continue
            existing.sort()
            for *_, old in existing[: max(0, len(existing) - self.keep + 1)]:
                shutil.rmtree(old, ignore_errors=True)
            folder = self.out_dir / uuid.uuid4().hex
            folder.mkdir()
        return folder

    def write(self, task: str, tensor: torch.Tensor, captions: Sequence[str], names: Sequence[str],
              notes: Sequence[str], *, alpha: np.ndarray | None = None, before: torch.Tensor | None = None,
              exif: bytes | None = None) -> Result:
        """Write each image at its own size: a PNG (with `alpha`, the upload's, put back) and, for an opaque
        photo-sized image, a JPEG, both with `exif` (the upload's, editing.images.result_exif); a small image also
        gets a nearest-enlarged view for the gallery. `before` (1, 3, H, W), the input at the results' size, is
        written the same way for the before/after slider. Several images also get one zip of every file
        ("download all")."""
        tensor = tensor.detach().float().cpu()
        folder = self.folder()
        files, views = [], []
        for one, name in zip(tensor, names):
            png = io.save_images(one[None], folder / f"{task}-{name}.png", alpha, exif)[0]
            files.append(str(png))
            if alpha is None and min(one.shape[-2:]) >= ENLARGED:
                files += [str(p) for p in io.save_images(one[None], png.with_suffix(".jpg"), exif=exif)]
            view = self._view(png)
            if view != str(png):
                files.append(view)
            views.append(view)
        before_view = ""
        if before is not None:
            before_view = self._view(io.save_images(before.detach().float().cpu()[:1], folder / f"{task}-before.png",
                                                    alpha)[0])
        if len(views) > 1:
            archive = folder / f"{task}-all.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:  # PNG and JPEG are compressed already
                for path in files:
                    z.write(path, Path(path).name)
            files.insert(0, str(archive))
        return Result(images.to_pil(tensor), list(captions), list(notes), files, views, before_view)

    @staticmethod
    def _view(png: Path) -> str:
        """The gallery's view of a written PNG: itself, or enlarged (nearest) to ENLARGED when smaller."""
        image = Image.open(png)
        if max(image.size) >= ENLARGED:
            return str(png)
        big = png.with_name(f"{png.stem}-x{max(1, ENLARGED // image.width)}.png")
        images.enlarge(image, ENLARGED).save(big)
        return str(big)


def write_animation(frames: Result) -> tuple[str, str]:
    """The enlarged frames of a result as a strip PNG and a looping GIF that plays them forth and back, beside
    them (editing.io.save_frames writes both)."""
    folder = Path(frames.files[0]).parent
    big = images.from_uint8(np.stack([np.asarray(Image.open(path).convert("RGB")) for path in frames.enlarged]))
    strip = io.save_frames(big, folder / "interpolate-strip.png")
    forth_and_back = torch.cat([big, big.flip(0)[1:-1]])
    gif = io.save_frames(forth_and_back, folder / "interpolate.gif", duration_ms=GIF_FRAME_MS)
    return str(strip), str(gif)

