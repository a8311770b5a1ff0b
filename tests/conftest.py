"""Shared fixtures: tiny random UNets saved as real model folders, so every layer is exercised fast."""

from __future__ import annotations

import os
import tempfile

# Tiny models gain nothing from threads, and OpenMP threads that spin while another process holds the
# cores slow everything many-fold: one passive thread per test process (inherited by subprocesses).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from editing.models import Runtime, load_model, save_model  # noqa: E402
from editing.precond import Denoiser, Parameterization  # noqa: E402
from training.nets import random_unet  # noqa: E402

CLASSES = ("twemoji", "noto", "fluent3d")
# XDG_CACHE_HOME of the CLI and studio processes the tests start: their converted UNet (the default backend),
# converted once for all tests and kept out of the user's cache.
TEST_CACHE_HOME = Path(tempfile.gettempdir()) / "cs-test-cache"


def make_tiny_folder(folder: Path, resolution: int = 16, classes: tuple[str, ...] = CLASSES,
                     boundary: str = "cm", seed: int = 0, tiled: bool = False) -> Path:
    """A random tiny UNet saved like a shipped model (fp32, so comparisons are exact); `tiled`: a model of
    photo crops, which the studio runs at an upload's own size, on 2x2 pixel blocks as the shipped photo model (five
    times fewer seconds per megapixel than on pixels, which the photo tests' thousands of tiles add up)."""
    unet, unshuffle = random_unet("tiny", resolution, len(classes), seed, perturb=0.05,
                                  pixel_unshuffle=2 if tiled else None)
    param = Parameterization(boundary=boundary, resolution=resolution, pixel_unshuffle=unshuffle,
                             class_names=classes, tiled=tiled)
    save_model(folder, unet, param, dtype=torch.float32)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_folder(tmp_path_factory.mktemp("models") / "tiny-cm")


@pytest.fixture(scope="session")
def cpu_runtime() -> Runtime:
    return Runtime(torch.device("cpu"), torch.float32, None)


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path, cpu_runtime: Runtime) -> Denoiser:
    return load_model(tiny_model_dir, cpu_runtime)
