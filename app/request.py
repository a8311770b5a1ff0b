"""One request's handling: its time limit (`Deadline`), its progress and stop callback, its folder of result
files, and the typed results the tabs show."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from editing import images, io
from editing.samplers import Step

OnStep = Callable[[int, int], None]  # (evaluations done, evaluations in the whole request)
ENLARGED = 256  # side of the enlarged (nearest-neighbour) views
KEEP_REQUESTS = 256  # request folders kept on disk before the oldest are removed
GIF_FRAME_MS = 120  # the interpolation GIF's time per frame


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


def step_callback(on_step: OnStep | None, deadline: Deadline, offset: int = 0,
                  total: int | None = None) -> Callable[[Step], None]:
    """Progress for the UI and the request's time limit, after every network evaluation."""

    def callback(step: Step) -> None:
        done, whole = offset + step.index + 1, total or step.total
        if on_step is not None:
            on_step(done, whole)
        deadline.check(done, whole)

    return callback


@dataclass
class Result:
    """What a task returns to its tab: images at model resolution, their captions, notes and files."""

    images: list[Image.Image]
    captions: list[str]
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # model-resolution and enlarged PNGs (and GIF/strip)
    enlarged: list[str] = field(default_factory=list)  # enlarged PNG per image, for galleries

    def gallery(self) -> list[tuple[str, str]]:
        return list(zip(self.enlarged, self.captions))

    def notes_markdown(self) -> str:
        return "\n".join(f"- {note}" for note in self.notes)


@dataclass
class SuperresolveResult(Result):
    input_view: str = ""  # the enlarged low-resolution input (nearest), shown beside the results


@dataclass
class InterpolateResult(Result):
    strip: str = ""  # every frame side by side (PNG)
    gif: str = ""  # the frames forth and back, looping


@dataclass
class DenoiseResult(Result):
    before: str = ""  # the enlarged input
    estimated: float = 0.0  # the noise sigma estimated from the input
    used: float = 0.0  # the sigma denoised at (the estimate, or the override)


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
              notes: Sequence[str]) -> Result:
        """Write each image at model resolution and enlarged; return them with their captions."""
        pil = images.to_pil(tensor.detach().float().cpu())
        folder = self.folder()
        files, enlarged = [], []
        for image, name in zip(pil, names):
            small = folder / f"{task}-{name}.png"
            big = folder / f"{task}-{name}-x{max(1, ENLARGED // image.width)}.png"
            image.save(small)
            images.enlarge(image, max(ENLARGED, image.width)).save(big)
            files += [str(small), str(big)]
            enlarged.append(str(big))
        return Result(pil, list(captions), list(notes), files, enlarged)


def write_animation(frames: Result) -> tuple[str, str]:
    """The enlarged frames of a result as a strip PNG and a looping GIF that plays them forth and back, beside
    them (editing.io.save_frames writes both)."""
    folder = Path(frames.files[0]).parent
    big = images.from_uint8(np.stack([np.asarray(Image.open(path).convert("RGB")) for path in frames.enlarged]))
    strip = io.save_frames(big, folder / "interpolate-strip.png")
    forth_and_back = torch.cat([big, big.flip(0)[1:-1]])
    gif = io.save_frames(forth_and_back, folder / "interpolate.gif", duration_ms=GIF_FRAME_MS)
    return str(strip), str(gif)

