"""Test helpers for the studio: tiny model folders and the app served in a background thread."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import torch

from tests.conftest import make_tiny_folder

RESOLUTION = 16


def make_weights(folder: Path) -> Path:
    """A weights folder with a tiny class-conditional CM and its 'teacher' (the same net, boundary edm)."""
    make_tiny_folder(folder / "tiny-cm", resolution=RESOLUTION)
    make_tiny_folder(folder / "tiny-edm", resolution=RESOLUTION, boundary="edm")
    (folder / "not-a-model").mkdir()
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(weights: Path, example_paths: list[str] | None = None, **studio_options: Any) -> tuple[Any, str]:
    """Serve the studio on 127.0.0.1 in a background thread; returns (demo, url)."""
    from app.studio import Studio
    from app.ui import build_demo, launch
    from editing.models import Runtime

    studio = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None),
                                 benchmarks=weights / "RESULTS.json", **studio_options)
    demo = build_demo(studio, example_paths)
    _, url, _ = launch(demo, studio, host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True)
    return demo, url
