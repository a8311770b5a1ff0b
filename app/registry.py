"""The studio's model registry: model folders under the weights directory, read without loading the weights,
loaded once each on first use, and the diffusion teacher that goes with a consistency model."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.forms import NO_STYLE
from editing.models import (ModelLoadError, Runtime, load_model, optional_schedules, read_parameterization,
                            unet_folder)
from editing.precond import Denoiser, Parameterization
from editing.schedules import Schedule

log = logging.getLogger(__name__)

DEFAULT_MODEL = "emoji32-cm"


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


class Registry:
    """Model folders by name and a cache of loaded models (one per folder)."""

    def __init__(self, entries: Sequence[ModelEntry], runtime: Runtime, default: str | None = None):
        self.entries = {e.name: e for e in entries}
        self.runtime = runtime
        if not self.model_names:
            raise ModelLoadError("no consistency model folder found (a folder with config.json and "
                                 "parameterization.json whose boundary is 'cm')")
        if default is not None and default not in self.model_names:
            raise ModelLoadError(f"default model {default!r} is not one of {self.model_names}")
        self.default_model = default or (DEFAULT_MODEL if DEFAULT_MODEL in self.model_names else self.model_names[0])
        self._models: dict[str, Denoiser] = {}
        self._lock = threading.Lock()

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
        size = (f"edits your image at its own size (tiles of {p.resolution} px)" if p.tiled else
                f"works on a {p.resolution}x{p.resolution} square (uploads are fitted to it)")
        return f"`{entry.name}`: {size}, {styles}, {teacher_text}, on {self.runtime.device}"
