"""Reliability of the running studio: malformed input through the public API, and many users at once.

`python app.py` runs in a subprocess on a tiny 16x16 model, bound to its default host (loopback), so its
resident memory can be read from /proc. Every malformed input must come back as a clear error message and
leave the server answering; 16 concurrent clients x 10 mixed requests must all succeed, each with its own result.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from editing.images import MAX_BYTES
from tests.app_server import RESOLUTION, AppProcess, make_weights, rss_mib, run_clients  # noqa: E402
from tests.test_images import png_by_hand  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
R = RESOLUTION
COMMON = dict(model_name="tiny-cm", style_name="noto")
GENERIC = "has not enabled verbose error reporting"  # Gradio's message when a failure was not a gr.Error
CLIENTS, REQUESTS = 16, 10


@dataclass(frozen=True)
class Server:
    url: str
    pid: int
    port: int
    weights: Path
    log: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("reliability")
    weights = make_weights(folder / "weights")
    try:  # no --host: the default must be loopback
        app = AppProcess(weights, folder)
    except RuntimeError as e:
        pytest.fail(str(e))
    try:
        yield Server(app.url, app.pid, app.port, weights, app.log)
    finally:
        app.stop()


@pytest.fixture(scope="module")
def client(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Client:
    return Client(server.url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Good and bad uploads, all generated here."""
    folder = tmp_path_factory.mktemp("uploads")
    rng = np.random.default_rng(0)
    made: dict[str, Path] = {}

    def put(name: str, data: bytes | Image.Image, **save: Any) -> None:
        made[name] = folder / name
        if isinstance(data, Image.Image):
            data.save(made[name], **save)
        else:
            made[name].write_bytes(data)

    put("good.png", Image.fromarray(rng.integers(40, 216, (R, R, 3), dtype=np.uint8)))
    put("small.png", Image.fromarray(rng.integers(40, 216, (R // 4, R // 4, 3), dtype=np.uint8)))
    mask = np.zeros((R, R), np.uint8)
    mask[4:12, 4:12] = 255
    put("mask.png", Image.fromarray(mask))
    good = made["good.png"].read_bytes()
    put("empty.png", b"")
    put("text.png", b"this is a shopping list, not a picture\n" * 8)
    put("noise.jpg", rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    put("truncated.png", good[: len(good) // 2])
    put("bomb.png", png_by_hand(100_000, 100_000, 8, 2, None))
    put("huge.png", png_by_hand(10_000, 8_500, 8, 2, None))
    put("line.png", Image.new("RGB", (1, 1000), "red"))
    put("ghost.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n")
    put("nan.tiff", Image.fromarray(np.full((8, 8), np.nan, np.float32)))
    put("hot.tiff", Image.fromarray(np.full((8, 8), 1000.0, np.float32)))
    put("deep.tiff", Image.fromarray(np.full((8, 8), 70_000, np.int32)))
    return made


def up(path: Path) -> Any:
    return handle_file(str(path))


def editor_with(layer: Path, background: Path) -> dict:
    return {"background": up(background), "layers": [up(layer)], "composite": up(background)}


Build = Callable[[dict[str, Path]], dict[str, Any]]
IMAGE_TASK = dict(steps="2", seed=0, variations=1)

# (name, api, keyword builder, expected message). Uploads reach editing.images unopened (app.tabs.inputs.UploadImage),
# so even files that Gradio's own gr.Image would have failed to open get a specific message.
MALFORMED: list[tuple[str, str, Build, str]] = [
    ("zero-byte upload", "colorize", lambda f: dict(image=up(f["empty.png"]), **IMAGE_TASK), "empty"),
    ("text renamed .png", "colorize", lambda f: dict(image=up(f["text.png"]), **IMAGE_TASK), "text file"),
    ("random bytes renamed .jpg", "colorize", lambda f: dict(image=up(f["noise.jpg"]), **IMAGE_TASK),
     "not an image"),
    ("truncated PNG", "colorize", lambda f: dict(image=up(f["truncated.png"]), **IMAGE_TASK), "truncated"),
    ("decompression bomb 100000x100000", "colorize", lambda f: dict(image=up(f["bomb.png"]), **IMAGE_TASK),
     "too large"),
    ("10000x8500 header, over the pixel limit", "colorize", lambda f: dict(image=up(f["huge.png"]), **IMAGE_TASK),
     "85,000,000 pixels"),
    ("1x1000 image", "colorize", lambda f: dict(image=up(f["line.png"]), **IMAGE_TASK), "aspect ratio"),
    ("EPS (Ghostscript) file", "colorize", lambda f: dict(image=up(f["ghost.eps"]), **IMAGE_TASK), "not an image"),
    ("float TIFF of NaN", "colorize", lambda f: dict(image=up(f["nan.tiff"]), **IMAGE_TASK), "NaN"),
    ("float TIFF out of range", "colorize", lambda f: dict(image=up(f["hot.tiff"]), **IMAGE_TASK), "float values"),
    ("32-bit TIFF beyond 16 bits", "colorize", lambda f: dict(image=up(f["deep.tiff"]), **IMAGE_TASK),
     "integer values"),
    ("bomb as the denoise input", "denoise", lambda f: dict(image=up(f["bomb.png"]), use_override=False, sigma=0.2,
                                                             refine=0, seed=0), "too large"),
    ("text as the compare reference", "compare", lambda f: dict(seed=0, reference=up(f["text.png"])), "text file"),
    ("text as the mask", "inpaint", lambda f: dict(image=up(f["good.png"]), editor=None, mask=up(f["text.png"]),
                                                   **IMAGE_TASK), "text file"),
    ("truncated mask", "inpaint", lambda f: dict(image=up(f["good.png"]), editor=None, mask=up(f["truncated.png"]),
                                                 **IMAGE_TASK), "truncated"),
    ("text as a painted layer", "inpaint", lambda f: dict(image=up(f["good.png"]), mask=None,
                                                          editor=editor_with(f["text.png"], f["good.png"]),
                                                          **IMAGE_TASK), "text file|layer"),
    ("no mask at all", "inpaint", lambda f: dict(image=up(f["good.png"]), editor=None, mask=None, **IMAGE_TASK),
     "no mask"),
    ("no image to inpaint", "inpaint", lambda f: dict(image=None, editor=None, mask=up(f["mask.png"]), **IMAGE_TASK),
     "no image"),
    ("super-resolution factor 3", "superresolve", lambda f: dict(image=up(f["small.png"]), factor=3, mode="upscale",
                                                                 **IMAGE_TASK), "not in the list of choices"),
    ("1x1000 image to super-resolve", "superresolve", lambda f: dict(image=up(f["line.png"]), factor="4",
                                                                     mode="restore", **IMAGE_TASK), "aspect"),
    ("steps in words", "generate", lambda f: dict(seed=0, batch=1, steps="fast please"), "steps must be"),
    ("ts not ascending", "generate", lambda f: dict(seed=0, batch=1, steps="0,5,3"), "ascending"),
    ("ts with 3000 evaluations", "generate", lambda f: dict(seed=0, batch=1, steps=",".join(map(str, range(3000)))),
     "allowed per request|too long"),
    ("ts on a billion-point grid", "generate", lambda f: dict(seed=0, batch=1, steps="0,999999999"),
     "at most 1000 points"),
    ("100 kB of steps text", "generate", lambda f: dict(seed=0, batch=1, steps="x" * 100_000), "steps must be"),
    ("100 steps", "generate", lambda f: dict(seed=0, batch=1, steps="100"), "between 1 and 39"),
    ("seed beyond the maximum", "generate", lambda f: dict(seed=2**40, batch=1, steps="1 step"), "maximum value"),
    ("negative seed", "generate", lambda f: dict(seed=-1, batch=1, steps="1 step"), "minimum value"),
    ("batch of 0", "generate", lambda f: dict(seed=0, batch=0, steps="1 step"), "minimum value"),
    ("batch of 1000", "generate", lambda f: dict(seed=0, batch=1000, steps="1 step"), "maximum value"),
    ("unknown model", "generate", lambda f: dict(seed=0, batch=1, steps="1 step", model_name="gpt-image"),
     "unknown model"),
    ("unknown style", "generate", lambda f: dict(seed=0, batch=1, steps="1 step", style_name="van gogh"),
     "unknown (class|style)"),
    ("nothing to stroke-edit", "stroke_edit", lambda f: dict(start_image=None, canvas=None, strength=20, steps=2,
                                                             seed=0, variations=1), "nothing to edit"),
    ("stroke strength out of range", "stroke_edit", lambda f: dict(start_image=up(f["good.png"]), canvas=None,
                                                                   strength=50, steps=2, seed=0, variations=1),
     "maximum value"),
    ("interpolate images without images", "interpolate", lambda f: dict(
        mode_name="images", seed_a=0, seed_b=1, image_a=None, image_b=None, frames=3, steps="1 step", seed=0),
     "no image"),
    ("1000 interpolation frames", "interpolate", lambda f: dict(
        mode_name="seeds", seed_a=0, seed_b=1, image_a=None, image_b=None, frames=1000, steps="1 step", seed=0),
     "maximum value"),
    ("noise level 5", "add_noise", lambda f: dict(image=up(f["good.png"]), noise_sigma=5, noise_seed=0),
     "maximum value"),
    # JSON of the wrong type where a number or a checkbox belongs (Gradio's own check failed generically).
    ("seed as a word", "generate", lambda f: dict(seed="lucky", batch=1, steps="1 step"),
     "Seed: expected a number, got str"),
    ("batch size as a list", "generate", lambda f: dict(seed=0, batch=[4], steps="1 step"),
     "Batch size: expected a number, got list"),
    ("variations as true", "colorize", lambda f: dict(image=up(f["good.png"]), steps="2", seed=0, variations=True),
     "Variations: expected a number, got bool"),
    ("frames as an object", "interpolate", lambda f: dict(
        mode_name="seeds", seed_a=0, seed_b=1, image_a=None, image_b=None, frames={"n": 3}, steps="1 step", seed=0),
     "Frames: expected a number, got dict"),
    ("override checkbox as a string", "denoise", lambda f: dict(image=up(f["good.png"]), use_override="false",
                                                                sigma=0.2, refine=0, seed=0), "expected true or false"),
]


def call(client: Client, api: str, **kwargs: Any) -> Any:
    if api == "add_noise":
        kwargs = {"model_name": COMMON["model_name"], **kwargs}
    else:
        kwargs = {**COMMON, **kwargs}
    return client.predict(api_name=f"/{api}", **kwargs)


@pytest.mark.parametrize("name,api,build,expected", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_input_gets_a_clear_error(client: Client, files: dict[str, Path], name: str, api: str,
                                            build: Build, expected: str) -> None:
    with pytest.raises(Exception) as info:  # gradio_client raises AppError carrying the gr.Error message
        call(client, api, **build(files))
    message = str(info.value)
    assert "Traceback" not in message and 'File "' not in message
    assert len(message) < 600, message[:600]
    gallery, _, _ = call(client, "generate", seed=1, batch=1, steps="1 step")  # the server still answers
    assert len(gallery) == 1
    assert GENERIC not in message, f"{name}: a generic error instead of a clear message"
    assert re.search(expected, message), f"{name}: {message!r}"


def test_server_paths_are_not_read(server: Server, tmp_path: Path) -> None:
    """A FileData naming a file on the server (not uploaded) is refused, even a valid image in the temp folder.

    Sent as raw HTTP: gradio_client would upload a local path itself, which is not the attack.
    """
    import json

    secret = tmp_path / "someone-elses-result.png"
    Image.new("RGB", (R, R), "red").save(secret)
    for path in (str(secret), "/etc/hostname"):
        data = {"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, "editing 18", 0, 1, "tiny-cm", "noto",
                         "auto"]}
        request = urllib.request.Request(server.url + "gradio_api/call/colorize", data=json.dumps(data).encode(),
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as info:  # refused by app.guard before Gradio queues it
            urllib.request.urlopen(request, timeout=30)
        assert info.value.code == 400 and "uploaded to this studio" in info.value.read().decode()


def test_uploads_over_the_size_limit_are_refused(server: Server) -> None:
    """max_file_size (the engine's MAX_BYTES) is enforced by the server itself, not only by well-behaved clients."""
    boundary = "studio-boundary"
    payload = os.urandom(MAX_BYTES + 2**20)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(server.url + "gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=60)
    assert info.value.code == 413


def test_binds_to_loopback_by_default(server: Server) -> None:
    """Started without --host: the listening socket is 127.0.0.1 only (read from /proc/net/tcp)."""
    listening = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:] + (
            Path("/proc/net/tcp6").read_text().splitlines()[1:] if Path("/proc/net/tcp6").exists() else []):
        local, state = line.split()[1], line.split()[3]
        address, port = local.rsplit(":", 1)
        if int(port, 16) == server.port and state == "0A":  # LISTEN
            listening.append(address)
    assert listening and all(a in ("0100007F", "0000000000000000FFFF00000100007F") for a in listening), listening


def test_launch_sets_queue_limits_upload_limit_and_loopback(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """app.ui.launch: a bounded queue with a device-sized concurrency limit, an upload limit, loopback by default."""
    import json

    import gradio as gr

    from app.studio import Studio
    from app.tabs.examples import ExampleSets
    from app.ui import build_demo, launch
    from editing.models import resolve_runtime

    captured: dict[str, Any] = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: captured.update(kwargs))
    demo = build_demo(Studio.from_weights(server.weights, resolve_runtime("cpu")), ExampleSets())
    launch(demo, Studio.from_weights(server.weights, resolve_runtime("cpu")), port=None)
    limit = demo._queue.default_concurrency_limit
    assert isinstance(limit, int) and 1 <= limit <= 4, limit
    assert isinstance(demo._queue.max_size, int) and demo._queue.max_size >= CLIENTS
    assert captured.get("max_file_size") and captured.get("server_name") == "127.0.0.1"
    config = json.loads(urllib.request.urlopen(server.url + "config", timeout=10).read())
    assert config.get("max_file_size"), "the running server does not advertise its upload limit"


def test_request_folders_survive_concurrent_pruning(server: Server, tmp_path: Path) -> None:
    """Past KEEP_REQUESTS, requests prune old result folders; concurrent requests must not trip over each other."""
    from app.request import KEEP_REQUESTS
    from app.studio import Studio
    from editing.models import resolve_runtime

    studio = Studio.from_weights(server.weights, resolve_runtime("cpu"), out_dir=tmp_path / "out")
    total = KEEP_REQUESTS * 3
    with ThreadPoolExecutor(8) as pool:
        folders = list(pool.map(lambda _: studio.files.folder(), range(total)))
    assert len(set(folders)) == total
    assert len(list((tmp_path / "out").iterdir())) <= KEEP_REQUESTS


# -- load -----------------------------------------------------------------------------------------------------

TASKS = ("generate", "colorize", "inpaint", "superresolve")


@dataclass(frozen=True)
class Job:
    client: int
    index: int
    task: str
    seed: int

    def kwargs(self, inputs: dict[str, Path]) -> dict[str, Any]:
        image = inputs[f"image{self.client}"]
        if self.task == "generate":
            return dict(seed=self.seed, batch=1, steps="2")
        if self.task == "colorize":
            return dict(image=up(image), steps="2", seed=self.seed, variations=1)
        if self.task == "inpaint":
            return dict(image=up(image), editor=None, mask=up(inputs["mask"]), steps="2", seed=self.seed,
                        variations=1)
        return dict(image=up(inputs[f"small{self.client}"]), factor="4", mode="upscale", steps="2", seed=self.seed,
                    variations=1)


def jobs() -> list[Job]:
    """Every request distinct: its own seed, and each client its own input images."""
    return [Job(c, i, TASKS[(c + i) % len(TASKS)], 10_000 + 100 * c + i) for c in range(CLIENTS)
            for i in range(REQUESTS)]


def result_png(task: str, result: tuple) -> Path:
    """The model-resolution PNG among a task's downloads (enlarged views carry an -xN suffix)."""
    paths = [p for out in result if isinstance(out, list) for p in out if isinstance(p, str)]
    found = [p for p in paths if re.search(rf"{task}-seed\d+\.png$", p)]
    assert len(found) == 1, paths
    return Path(found[0])


def reference(studio: Any, job: Job, inputs: dict[str, Path]) -> np.ndarray:
    """The same request computed in this process, alone, by the same service code."""
    style, model = COMMON["style_name"], COMMON["model_name"]
    image = str(inputs[f"image{job.client}"])
    if job.task == "generate":
        result = studio.generate(model, style, job.seed, 1, "2")
    elif job.task == "colorize":
        result = studio.colorize(model, style, image, "2", job.seed, 1)
    elif job.task == "inpaint":
        result = studio.inpaint(model, style, image, str(inputs["mask"]), None, "2", job.seed, 1)
    else:
        result = studio.superresolve(model, style, str(inputs[f"small{job.client}"]), 4, "upscale", "2", job.seed, 1)
    return np.asarray(result.images[0].convert("RGB"))


def test_sixteen_clients_at_once(server: Server, client: Client, files: dict[str, Path],
                                 tmp_path: Path) -> None:
    from app.studio import Studio
    from editing.models import resolve_runtime

    rng = np.random.default_rng(1)
    inputs = {"mask": files["mask.png"]}
    for c in range(CLIENTS):
        for name, size in ((f"image{c}", R), (f"small{c}", R // 4)):
            inputs[name] = tmp_path / f"{name}.png"
            Image.fromarray(rng.integers(40, 216, (size, size, 3), dtype=np.uint8)).save(inputs[name])
    studio = Studio.from_weights(server.weights, resolve_runtime("cpu"), out_dir=tmp_path / "reference")
    work = jobs()
    expected = {job: reference(studio, job, inputs) for job in work}
    assert len({e.tobytes() for e in expected.values()}) == len(work)  # every result tells its request apart

    call(client, "generate", seed=0, batch=1, steps="2")  # warm: models loaded, first-call costs paid
    rss_before = rss_mib(server.pid)

    outcomes, seconds = run_clients(server.url, tmp_path, CLIENTS, work, lambda job: job.client,
                                    lambda own, job: result_png(job.task, call(own, job.task, **job.kwargs(inputs))))
    rss_after = rss_mib(server.pid)

    failures = [(job, out) for job, out, _ in outcomes if isinstance(out, Exception)]
    done = {job: np.asarray(Image.open(out).convert("RGB")).astype(np.int16) for job, out, _ in outcomes
            if not isinstance(out, Exception)}
    references = np.stack([expected[j] for j in work]).astype(np.int16)
    exact, mismatched = 0, []
    for job, got in done.items():
        # Its own request's result, up to rounding (one 8-bit level), and no other request's.
        distance = np.abs(references - got).mean(axis=(1, 2, 3))
        own = np.abs(got - expected[job]).max()
        exact += int(own == 0)
        if own > 2 or work[int(distance.argmin())] != job:
            mismatched.append((job, int(own), work[int(distance.argmin())]))
    print(f"\nload test: {len(outcomes)} requests ({CLIENTS} clients x {REQUESTS}, tasks {', '.join(TASKS)}) "
          f"in {seconds:.1f} s; failures {len(failures)}; results matching their own request {len(done) - len(mismatched)} "
          f"({exact} bit-identical to a lone run); server RSS {rss_before:.0f} MiB before, {rss_after:.0f} MiB after")
    assert len(outcomes) == CLIENTS * REQUESTS
    assert not failures, failures[:3]
    assert not mismatched, mismatched[:5]
    assert rss_after - rss_before < 1024, "resident memory grew by more than 1 GiB over the load test"
    gallery, _, _ = call(client, "generate", seed=1, batch=1, steps="1 step")
    assert len(gallery) == 1
