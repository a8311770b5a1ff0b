"""Test helpers for the studio: tiny model folders and the app served in a background thread."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import torch

from app.tabs.examples import ExampleSets
from tests.conftest import TEST_CACHE_HOME, make_tiny_folder

RESOLUTION = 16


def make_weights(folder: Path) -> Path:
    """A weights folder with a tiny class-conditional CM and its 'teacher' (the same net, boundary edm)."""
    make_tiny_folder(folder / "tiny-cm", resolution=RESOLUTION)
    make_tiny_folder(folder / "tiny-edm", resolution=RESOLUTION, boundary="edm")
    (folder / "not-a-model").mkdir()
    return folder


def write_quality_results(weights: Path, rows: list[list[Any]]) -> None:
    """weights/RESULTS.json (start_app's benchmark file) with a sample-quality table of `rows` (model, sampler,
    evaluations, SWD mean, ms / image), which the Steps vs quality plot reads."""
    (weights / "RESULTS.json").write_text(json.dumps({"tables": {"quality": {
        "columns": ["model", "sampler", "evaluations", "SWD mean", "ms / image"], "rows": rows}}}))


def rss_mib(pid: int) -> float:
    """Resident memory of a process from /proc (psutil is not installed)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


Job = TypeVar("Job")


def run_clients(url: str, folder: Path, clients: int, jobs: Sequence[Job], client_of: Callable[[Job], int],
                send: Callable[[Any, Job], Any]) -> tuple[list[tuple[Job, Any, float]], float]:
    """`clients` gradio clients at once, each sending its jobs (client_of(job) == c) in order with send(client, job):
    (job, result or the exception it raised, seconds) in client order, and the wall-clock seconds for all."""
    from gradio_client import Client

    def run_client(c: int) -> list[tuple[Job, Any, float]]:
        own = Client(url, verbose=False, download_files=str(folder / f"client{c}"))
        done = []
        for job in (j for j in jobs if client_of(j) == c):
            start = time.perf_counter()
            try:
                out = send(own, job)
            except Exception as e:  # noqa: BLE001 - returned for the caller to count as a failure
                out = e
            done.append((job, out, time.perf_counter() - start))
        return done

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        outcomes = [o for part in pool.map(run_client, range(clients)) for o in part]
    return outcomes, time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(weights: Path, examples: ExampleSets | None = None, **studio_options: Any) -> tuple[Any, str]:
    """Serve the studio on 127.0.0.1 in a background thread; returns (demo, url)."""
    from app.studio import Studio
    from app.ui import build_demo, launch
    from editing.models import Runtime

    studio = Studio.from_weights(weights, Runtime(torch.device("cpu"), torch.float32, None),
                                 benchmarks=weights / "RESULTS.json", **studio_options)
    demo = build_demo(studio, examples)
    _, url, _ = launch(demo, studio, host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True)
    return demo, url


class AppProcess:
    """`python app.py` in a subprocess on loopback (its default host), answered once started; stop() ends it."""

    def __init__(self, weights: Path, folder: Path, args: tuple[str, ...] = (), env: dict[str, str] | None = None,
                 memory_bytes: int | None = None, clean_env: bool = False):
        import os
        import subprocess
        import sys
        import time
        import urllib.request

        root = Path(__file__).resolve().parent.parent
        self.port, self.log = free_port(), folder / "server.log"
        self.url = f"http://127.0.0.1:{self.port}/"
        full_env = {**({} if clean_env else os.environ), "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
                    "GRADIO_TEMP_DIR": str(folder / "gradio-tmp"),
                    "XDG_CACHE_HOME": str(TEST_CACHE_HOME), **(env or {})}

        def bound() -> None:  # in the child: its address space held to memory_bytes
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(root / "app.py"), "--weights", str(weights), "--device", "cpu",
                 "--port", str(self.port), *args], cwd=root, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=bound if memory_bytes else None)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(self.url, timeout=2).read()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"app.py did not answer within 120 s:\n{self.log.read_text()[-3000:]}")
                time.sleep(0.3)

    def stop(self) -> None:
        import subprocess

        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
