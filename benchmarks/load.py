"""The load section: the studio (python app.py, a subprocess) under many clients, and its fairness to a light user.

32 clients x 10 mixed requests (generate, colorize, inpaint, super-resolve), each client its own gradio_client
session and inputs: failures, p50/p95 latency, the server's resident memory before and after, and every result
compared with the same request sent alone afterwards (bit-identical PNG pixels). Then a fairness run: one client
floods with heavy requests (batch 16 x 18 evaluations) while another's 1-step generate is timed, against the same
timing on an idle server. The server runs with --per-address 64 (all clients are on loopback); its other limits
are the defaults.
"""

from __future__ import annotations

import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.common import Table
from tests.app_server import AppProcess, rss_mib, run_clients

CLIENTS, REQUESTS = 32, 10
TASKS = ("generate", "colorize", "inpaint", "superresolve")
MODEL, STYLE = "emoji32-cm", "noto"


def _request(task: str, seed: int, image: Path, small: Path, mask: Path) -> dict[str, Any]:
    from gradio_client import handle_file

    common = dict(model_name=MODEL, style_name=STYLE)
    if task == "generate":
        return dict(seed=seed, batch=1, steps="2", **common)
    if task == "colorize":
        return dict(image=handle_file(str(image)), steps="2", seed=seed, variations=1, **common)
    if task == "inpaint":
        return dict(image=handle_file(str(image)), editor=None, mask=handle_file(str(mask)), steps="2", seed=seed,
                    variations=1, **common)
    return dict(image=handle_file(str(small)), factor=4, mode="upscale", steps="2", seed=seed, variations=1,
                **common)


def _pixels(task: str, result: tuple) -> np.ndarray:
    """The model-resolution PNG among a result's downloads, as pixels."""
    paths = [p for out in result if isinstance(out, list) for p in out if isinstance(p, str)]
    found = [p for p in paths if re.search(rf"{task}-seed\d+\.png$", p)]
    return np.asarray(Image.open(found[0]).convert("RGB"))


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def load_tables(weights: Path) -> list[Table]:
    from gradio_client import Client

    work = Path(tempfile.mkdtemp(prefix="studio-load-"))
    rng = np.random.default_rng(0)
    inputs = {}
    for c in range(CLIENTS):
        inputs[c] = (work / f"image{c}.png", work / f"small{c}.png")
        Image.fromarray(rng.integers(40, 216, (32, 32, 3), dtype=np.uint8)).save(inputs[c][0])
        Image.fromarray(rng.integers(40, 216, (8, 8, 3), dtype=np.uint8)).save(inputs[c][1])
    mask = work / "mask.png"
    m = np.zeros((32, 32), np.uint8)
    m[8:24, 8:24] = 255
    Image.fromarray(m).save(mask)
    jobs = [(c, i, TASKS[(c + i) % len(TASKS)], 10_000 + 100 * c + i) for c in range(CLIENTS) for i in range(REQUESTS)]

    server = AppProcess(weights, work, ("--per-address", "64"))
    try:
        first = Client(server.url, verbose=False, download_files=str(work / "warm"))
        first.predict(seed=0, batch=1, steps="2", model_name=MODEL, style_name=STYLE, api_name="/generate")
        rss_before = rss_mib(server.pid)

        outcomes, seconds = run_clients(
            server.url, work, CLIENTS, jobs, lambda job: job[0],
            lambda own, job: _pixels(job[2], own.predict(**_request(job[2], job[3], *inputs[job[0]], mask),
                                                         api_name=f"/{job[2]}")))
        rss_after = rss_mib(server.pid)
        failures = [o for o in outcomes if isinstance(o[1], Exception)]
        identical = 0
        alone = Client(server.url, verbose=False, download_files=str(work / "alone"))
        for job, out, _ in outcomes:
            if isinstance(out, Exception):
                continue
            reference = _pixels(job[2], alone.predict(**_request(job[2], job[3], *inputs[job[0]], mask),
                                                      api_name=f"/{job[2]}"))
            identical += int(np.array_equal(reference, out))
        latencies = [t for _, out, t in outcomes if not isinstance(out, Exception)]
        load = Table("load", f"The studio under load: {CLIENTS} clients x {REQUESTS} mixed requests",
                     ["requests", "failures", "wall s", "p50 s", "p95 s", "bit-identical to alone",
                      "RSS before MiB", "RSS after MiB"])
        load.add(len(outcomes), len(failures), round(seconds, 1), round(_percentile(latencies, 50), 3),
                 round(_percentile(latencies, 95), 3), f"{identical}/{len(outcomes) - len(failures)}",
                 round(rss_before), round(rss_after))
        load.notes.append(f"tasks {', '.join(TASKS)} at 2 evaluations on {MODEL}, each request its own seed; server "
                          "python app.py --per-address 64, otherwise default limits (2 requests at once on a CPU)")
        if failures:
            load.notes.append(f"first failure: {type(failures[0][1]).__name__}: {str(failures[0][1])[:200]}")
        fairness = _fairness(server, work)
    finally:
        server.stop()
    return [load, fairness]


def _timed_generates(url: str, folder: Path, n: int = 20) -> list[float]:
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=str(folder))
    times = []
    for seed in range(n):
        start = time.perf_counter()
        client.predict(seed=seed, batch=1, steps="1 step", model_name=MODEL, style_name=STYLE, api_name="/generate")
        times.append(time.perf_counter() - start)
    return times


def _fairness(server: AppProcess, work: Path) -> Table:
    from gradio_client import Client

    idle = _timed_generates(server.url, work / "idle")
    stop, counts = threading.Event(), {"done": 0, "busy": 0}

    def flood() -> None:
        flooder = Client(server.url, verbose=False, download_files=str(work / "flood"))
        while not stop.is_set():
            jobs = [flooder.submit(seed=0, batch=16, steps="editing 18", model_name=MODEL, style_name=STYLE,
                                   api_name="/generate") for _ in range(8)]
            for job in jobs:
                try:
                    job.result()
                    counts["done"] += 1
                except Exception:  # noqa: BLE001 - refused as busy (or failed): counted
                    counts["busy"] += 1

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    time.sleep(2)
    flooded = _timed_generates(server.url, work / "timed")
    stop.set()
    thread.join(timeout=120)
    table = Table("load_fairness", "Fairness: a 1-step generate while another client floods heavy requests",
                  ["server", "requests timed", "p50 s", "p95 s", "max s"])
    for name, times in (("idle", idle), ("flooded", flooded)):
        table.add(name, len(times), round(_percentile(times, 50), 3), round(_percentile(times, 95), 3),
                  round(max(times), 3))
    table.notes.append(f"the flooding client (one session) sent 8 batch-16 x 18-evaluation generates at a time: "
                       f"{counts['done']} ran, {counts['busy']} refused as busy (1 task per session at most)")
    return table
