"""Hardening of the running studio (issue 28), attacked over raw HTTP as an attacker would, not through gradio_client.

`python app.py` runs in a subprocess on a tiny 16x16 model, its address space held to MEMORY (RLIMIT_AS, set in
the child), so the memory attacks would kill it if they still worked; after each attack it must still answer.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from app.tabs.examples import ExampleSets
from editing.images import MAX_BYTES
from tests.app_server import AppProcess, make_weights

ROOT = Path(__file__).resolve().parent.parent
MEMORY = 6 * 2**30  # the idle server maps about 3.9 GiB; one unguarded blob attack adds 0.75 GiB
NOT_UPLOADED = "a file field must name a file uploaded to this studio"
MODEL = ["tiny-cm", "noto"]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    folder = tmp_path_factory.mktemp("hardening")
    weights = make_weights(folder / "weights")
    server = AppProcess(weights, folder, ("--max-megapixels", "0.2", "--upload-quota-mb", "40"),
                        memory_bytes=MEMORY)
    try:
        yield server
    finally:
        server.stop()


# -- raw HTTP helpers ---------------------------------------------------------------------------------------

def post(app: AppProcess, path: str, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    request = urllib.request.Request(app.url + path, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def message_of(text: str) -> str:
    """The message of a refusal (JSON {"error": ...}) or of an event stream's error event."""
    if text.startswith("{"):
        return str(json.loads(text).get("error"))
    for line in text.splitlines():
        if line.startswith("data:") and "error" in line:
            return str(json.loads(line[5:])["error"])
    return text


def call(app: AppProcess, api: str, data: list[Any]) -> tuple[str, str]:
    """POST /gradio_api/call/API then read its stream: ('complete' | 'error' | 'refused', message or data)."""
    status, text = post(app, f"gradio_api/call/{api}", json.dumps({"data": data}).encode())
    if status != 200:
        return "refused", message_of(text)
    event = json.loads(text)["event_id"]
    with urllib.request.urlopen(app.url + f"gradio_api/call/{api}/{event}", timeout=120) as response:
        stream = response.read().decode()
    if "event: complete" in stream:
        return "complete", stream
    return "error", message_of(stream)


def alive(app: AppProcess) -> None:
    assert app.proc.poll() is None, f"the server died:\n{app.log.read_text()[-2000:]}"
    outcome, _ = call(app, "generate", [1, 1, "1 step", *MODEL])
    assert outcome == "complete"


def multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
              f"Content-Type: image/png\r\n\r\n".encode() + data + b"\r\n" for name, filename, data in files]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(app: AppProcess, files: list[tuple[str, bytes]]) -> tuple[int, Any]:
    body, content_type = multipart({}, [("files", name, data) for name, data in files])
    status, text = post(app, "gradio_api/upload", body, content_type)
    return status, json.loads(text) if text.startswith(("[", "{")) else text


def uploaded(app: AppProcess, name: str, data: bytes) -> dict[str, Any]:
    status, paths = upload(app, [(name, data)])
    assert status == 200, paths
    return {"path": paths[0], "meta": {"_type": "gradio.FileData"}, "orig_name": name}


def png(image: Image.Image) -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def editor_component(app: AppProcess, label: str) -> int:
    config = json.loads(urllib.request.urlopen(app.url + "config", timeout=10).read())
    return next(c["id"] for c in config["components"] if c.get("props", {}).get("label") == label)


def fn_index(app: AppProcess, api: str) -> int:
    config = json.loads(urllib.request.urlopen(app.url + "config", timeout=10).read())
    return next(i for i, d in enumerate(config["dependencies"]) if d.get("api_name") == api)


def join(app: AppProcess, api: str, data: list[Any], session: str) -> tuple[str, str]:
    """Queue an event for a session (as the page does) and read its outcome from the session's stream."""
    body = {"data": data, "fn_index": fn_index(app, api), "session_hash": session, "event_data": None,
            "trigger_id": None}
    status, text = post(app, "gradio_api/queue/join", json.dumps(body).encode())
    if status != 200:
        return "refused", message_of(text)
    with urllib.request.urlopen(app.url + f"gradio_api/queue/data?session_hash={session}", timeout=120) as stream:
        for raw in stream:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed":
                output = message.get("output", {})
                if message.get("success"):
                    return "complete", json.dumps(output)
                return "error", str(output.get("error"))
    return "error", "stream ended"


def blob(app: AppProcess, component: int, session: str, blob_id: str, kind: str, index: str, data: bytes) -> tuple[int, str]:
    body, content_type = multipart({"type": kind, "index": index, "id": blob_id, "session_hash": session,
                                    "component_id": str(component), "fn_name": "accept_blobs"},
                                   [("blob", "blob.png", data)])
    return post(app, "gradio_api/component_server", body, content_type)


# -- 1. server files are never read ---------------------------------------------------------------------------

def file_fields(ref: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """Every file input of the public API, with the reference in it and good values elsewhere."""
    return [
        ("add_noise", [ref, 0, 0, "tiny-cm", "white"]),
        ("denoise", [ref, False, 0.2, 0, 0, "auto", *MODEL]),
        ("colorize", [ref, "2", 0, 1, *MODEL, "auto"]),
        ("superresolve", [ref, "4", "restore", "2", 0, 1, *MODEL, "auto"]),
        ("stroke_edit", [ref, None, 16, 2, 0, 1, *MODEL]),
        ("interpolate", ["images", 0, 1, ref, ref, 3, "1 step", 0, *MODEL]),
        ("compare", [0, ref, *MODEL]),
        ("inpaint", [ref, None, None, "2", 0, 1, *MODEL, "auto"]),
        ("inpaint", [None, None, ref, "2", 0, 1, *MODEL, "auto"]),
        ("inpaint", [None, {"background": ref, "layers": [ref], "composite": ref}, None, "2", 0, 1, *MODEL, "auto"]),
    ]


def test_server_files_are_never_read_and_every_refusal_is_the_same(app: AppProcess, tmp_path: Path) -> None:
    """A path not uploaded (with or without Gradio's meta) is refused with one message, whatever it names."""
    image = tmp_path / "someone-elses.png"
    Image.new("RGB", (16, 16), "red").save(image)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("a shopping list\n" * 10)
    with open(tmp_path / "huge.png", "wb") as f:
        f.truncate(500 * 2**20)
    paths = [str(image), "/etc/passwd", "/proc/self/environ", str(tmp_path / "missing.png"),
             str(tmp_path / "empty.png"), str(tmp_path / "text.png"), str(tmp_path / "huge.png"),
             str(app.log.parent / "gradio-tmp" / ".." / "weights" / "tiny-cm" / "unet" / "config.json"),
             "http://203.0.113.1/a.png", "file:///etc/passwd"]
    messages = set()
    for path in paths:
        for ref in ({"path": path}, {"path": path, "meta": {"_type": "gradio.FileData"}}):
            for api, data in file_fields(ref):
                outcome, message = call(app, api, data)
                assert outcome != "complete", (api, path)
                messages.add(message)
    assert len(messages) == 1 and NOT_UPLOADED in messages.pop()
    alive(app)
    good = uploaded(app, "good.png", png(Image.new("RGB", (16, 16), "blue")))  # a real upload still works
    assert call(app, "add_noise", [good, 0, 0, "tiny-cm", "camera"])[0] == "complete"


# -- 2. editor blobs: bounded index, body size, owner -------------------------------------------------------

def test_blob_index_and_size_are_bounded_on_a_memory_bound_server(app: AppProcess) -> None:
    component = editor_component(app, "Paint the mask")
    session = uuid.uuid4().hex
    layer = png(Image.new("RGBA", (16, 16)))
    for _ in range(5):  # unguarded: +763 MiB each; the third killed a 3 GiB server
        status, text = blob(app, component, session, "x", "layer", "100000000", layer)
        assert status == 400 and "layer index must be a whole number from 0 to" in text, text
    for index in ("-1", "abc", "1e9", "²"):  # 8. HTTP 400 with a message, not 500
        status, text = blob(app, component, session, "x", "layer", index, layer)
        assert status == 400 and "layer index" in text, (index, status, text)
    status, text = blob(app, component, session, "x", "layer", "0", os.urandom(13 * 2**20))
    assert status == 413, (status, text)
    alive(app)


def test_blobs_belong_to_the_session_that_sent_them(app: AppProcess) -> None:
    component = editor_component(app, "Paint the mask")
    a, b, blob_id = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    background = Image.new("RGB", (64, 64), "white")
    painted = Image.new("RGBA", (64, 64))
    painted.paste((255, 0, 255, 255), (16, 16, 48, 48))
    for kind, index, image in (("background", "null", background), ("composite", "null", background),
                               ("layer", "0", painted)):
        assert blob(app, component, a, blob_id, kind, index, png(image))[0] == 200
    image = uploaded(app, "image.png", png(Image.new("RGB", (16, 16), "green")))
    data = [image, {"id": blob_id, "background": None, "layers": [], "composite": None}, None, "2", 0, 1, *MODEL,
            "auto"]
    outcome, message = join(app, "inpaint", data, b)  # B knows A's blob id
    assert outcome == "error" and "not received by this session" in message, (outcome, message)
    outcome, message = join(app, "inpaint", data, a)  # A's own drawing is still there
    assert outcome == "complete", message


# -- 3. editor layers are checked before anything is decoded ------------------------------------------------

def test_editor_layers_are_checked_before_decoding_on_a_memory_bound_server(app: AppProcess) -> None:
    big = uploaded(app, "big.png", png(Image.new("L", (12000, 12000))))  # ~580 KB, 576 MB as RGBA
    small = uploaded(app, "small.png", png(Image.new("RGBA", (16, 16))))
    image = uploaded(app, "image.png", png(Image.new("RGB", (16, 16), "green")))
    for layers, expected in (([big] * 6, "layers; at most 4"), ([small] * 16, "layers; at most 4"),
                             ([small, big], "layer 2 is 12000x12000")):
        editor = {"background": small, "layers": layers, "composite": small}
        outcome, message = call(app, "inpaint", [image, editor, None, "2", 0, 1, *MODEL, "auto"])
        assert outcome in ("error", "refused") and expected in message, (outcome, message)
    editor = {"background": big, "layers": [small], "composite": small}
    outcome, message = call(app, "inpaint", [image, editor, None, "2", 0, 1, *MODEL, "auto"])
    assert "background is 12000x12000" in message, message
    alive(app)


# -- 4. per-client shares, cost admission, cancelled work --------------------------------------------------

def test_request_cost_is_admitted_or_refused_with_what_to_change(app: AppProcess) -> None:
    heavy = ",".join(map(str, range(64)))  # 16 x 64 evaluations at 16x16 = 0.26 megapixel-evaluations > 0.2
    outcome, message = call(app, "generate", [0, 16, heavy, *MODEL])
    assert outcome == "error" and "too large for this studio" in message and "fewer steps" in message, message
    assert call(app, "generate", [0, 4, "2", *MODEL])[0] == "complete"


def drain(app: AppProcess) -> None:
    """Wait until nothing is queued (what earlier tests left) and the running requests have finished."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = json.loads(urllib.request.urlopen(app.url + "gradio_api/queue/status", timeout=10).read())
        if not status.get("queue_size"):
            break
        time.sleep(0.5)
    time.sleep(3)


def test_one_address_cannot_fill_the_queue(app: AppProcess) -> None:
    """A flood of never-read /call requests from one address: past its share they are refused as busy."""
    ts = ",".join(map(str, range(48)))  # 16 x 48 evaluations at 16x16: 0.197 megapixel-evaluations, admitted
    body = json.dumps({"data": [0, 16, ts, *MODEL]}).encode()
    with ThreadPoolExecutor(40) as pool:
        replies = list(pool.map(lambda _: post(app, "gradio_api/call/generate", body), range(40)))
    busy = [message_of(text) for status, text in replies if status == 429]
    assert busy and all("busy: your address already has" in m for m in busy), replies[:3]
    assert sum(status == 200 for status, _ in replies) <= 16
    drain(app)  # the flood drains; then the address is admitted again
    alive(app)


def test_one_session_has_at_most_its_share(app: AppProcess) -> None:
    drain(app)
    session = uuid.uuid4().hex
    ts = ",".join(map(str, range(48)))
    body = {"data": [0, 16, ts, *MODEL], "fn_index": fn_index(app, "generate"), "session_hash": session}
    replies = [post(app, "gradio_api/queue/join", json.dumps(body).encode()) for _ in range(6)]
    assert [s for s, _ in replies].count(429) >= 1, replies
    assert "busy: this session already has" in message_of(next(t for s, t in replies if s == 429))


def test_work_stops_when_its_client_goes_away(app: AppProcess) -> None:
    drain(app)
    session = uuid.uuid4().hex
    ts = ",".join(map(str, range(48)))
    body = {"data": [0, 16, ts, *MODEL], "fn_index": fn_index(app, "generate"), "session_hash": session}
    before = app.log.read_text().count("its client went away")
    status, _ = post(app, "gradio_api/queue/join", json.dumps(body).encode())
    assert status == 200
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        sock.sendall(f"GET /gradio_api/queue/data?session_hash={session} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        sock.recv(1000)  # the stream has started; then the client drops it
    deadline = time.monotonic() + 60
    while app.log.read_text().count("its client went away") == before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert app.log.read_text().count("its client went away") > before, app.log.read_text()[-2000:]


# -- 5. uploads: files per request, bytes per request, folder quota ----------------------------------------

def test_uploads_are_capped_per_request_and_the_folder_is_pruned(app: AppProcess) -> None:
    status, text = upload(app, [(f"f{i}.png", b"x" * 1000) for i in range(20)])
    assert status == 413 and "at most 8" in str(text), (status, text)
    status, text = upload(app, [(f"f{i}.png", os.urandom(MAX_BYTES // 2)) for i in range(3)])  # over a request's cap
    assert status == 413, (status, text)
    folder = app.log.parent / "gradio-tmp"
    for _ in range(4):  # 4 x 9 MiB: within the 40 MiB quota, with what the other tests stored
        status, _ = upload(app, [("a.png", os.urandom(9 * 2**20))])
    status, text = upload(app, [("b.png", os.urandom(9 * 2**20))])
    assert status == 507 and "upload space is full" in str(text), (status, text)
    old = time.time() - 3600
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))
    status, text = upload(app, [("c.png", os.urandom(9 * 2**20))])  # the oldest are pruned to make room
    assert status == 200, (status, text)
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) <= 40 * 2**20


# -- 8. clear messages for malformed requests ----------------------------------------------------------------

@pytest.mark.parametrize("api,data,expected", [
    ("generate", [], "generate takes 5 values"),
    ("generate", [0, 1], "generate takes 5 values"),
    ("no_such_api", [0], "unknown api_name 'no_such_api'"),
    ("inpaint", [None, "a drawing", None, "2", 0, 1, *MODEL, "auto"], "expected null or an object"),
    ("inpaint", [None, {"layers": 3}, None, "2", 0, 1, *MODEL, "auto"], "layers must be a list"),
    ("inpaint", [None, {"colour": 1}, None, "2", 0, 1, *MODEL, "auto"], "expected null or an object"),
    ("colorize", [{"path": "https://example.com/x.png", "url": "https://example.com/x.png",
                   "meta": {"_type": "gradio.FileData"}}, "2", 0, 1, *MODEL, "auto"], NOT_UPLOADED),
    ("stroke_edit", [None, "strokes", 16, 2, 0, 1, *MODEL], "expected null or an object"),
    ("stroke_edit", [None, {"strokes": "data:image/jpeg;base64,AAAA"}, 16, 2, 0, 1, *MODEL], "a PNG data URL"),
    ("stroke_edit", [None, {"strokes": "data:image/png;base64,not base64!"}, 16, 2, 0, 1, *MODEL], "not valid base64"),
    ("stroke_edit", [None, {"strokes": "data:image/png;base64,AAAA"}, 16, 2, 0, 1, *MODEL], "strokes is not a readable image"),
], ids=["no fields", "missing fields", "unknown api", "editor a string", "layers a number", "editor keys", "URL",
        "strokes a string", "strokes a JPEG", "strokes not base64", "strokes not a PNG"])
def test_malformed_requests_get_a_clear_message(app: AppProcess, api: str, data: list[Any], expected: str) -> None:
    outcome, message = call(app, api, data)
    assert outcome in ("error", "refused") and expected in message, (outcome, message)
    assert message not in ("None", "null", "")


def test_run_routes_are_checked_as_the_function_gradio_runs(app: AppProcess) -> None:
    """run/ and api/ routes run the body's fn_index, not the name in their path (gradio.route_utils.get_fn): the
    guard checks that function, and serves the page's example galleries, which post run/predict with the index of
    their load event (refused as 'unknown api_name predict' before)."""
    config = json.loads(urllib.request.urlopen(app.url + "config", timeout=10).read())
    datasets = {c["id"] for c in config["components"] if c["type"] == "dataset"}
    loads = [i for i, d in enumerate(config["dependencies"]) if any(t[0] in datasets for t in d["targets"])]
    assert loads, "no example gallery on the page"
    status, text = post(app, "gradio_api/run/predict",
                        json.dumps({"data": [0], "fn_index": loads[0], "session_hash": "run-route"}).encode())
    shipped = ExampleSets.from_folder()
    assert status == 200 and any(Path(f).name in text for f in shipped.emoji + shipped.photos), (status, text[:300])
    body = {"data": [0], "fn_index": fn_index(app, "generate"), "session_hash": "run-route"}
    status, text = post(app, "gradio_api/run/colorize", json.dumps(body).encode())
    assert status == 400 and "generate takes 5 values" in message_of(text), (status, text[:300])
    status, text = post(app, "gradio_api/run/predict", json.dumps({"data": [0], "fn_index": 10**6}).encode())
    assert status == 404 and "unknown function" in message_of(text), (status, text[:300])


# -- 9. precise parse messages, no silent coercion -----------------------------------------------------------

@pytest.mark.parametrize("data,expected", [
    ([0, 1, "39,0", *MODEL], "strictly ascending"),
    ([0, 1, "²", *MODEL], "not one of the digits 0-9"),
    ([0, 1, "0,,39", *MODEL], "is empty"),
    ([0, 1, "0,1_0,39", *MODEL], "'1_0' is not a whole number"),
    ([0, 1, "1 step", "tiny-cm", "²"], "unknown style '²'"),
    ([1.5, 1, "1 step", *MODEL], "Seed: expected a whole number, got 1.5"),
    ([2.5, 1, "1 step", *MODEL], "Seed: expected a whole number, got 2.5"),
], ids=["ts 39,0", "steps ²", "ts 0,,39", "ts 1_0", "style ²", "seed 1.5", "seed 2.5"])
def test_number_text_is_parsed_precisely(app: AppProcess, data: list[Any], expected: str) -> None:
    outcome, message = call(app, "generate", data)
    assert outcome == "error" and expected in message, (outcome, message)


# -- 10. no server path in the page ---------------------------------------------------------------------------

def test_no_server_path_in_the_page(app: AppProcess) -> None:
    config = urllib.request.urlopen(app.url + "config", timeout=10).read().decode()
    page = urllib.request.urlopen(app.url, timeout=10).read().decode()
    for text in (config, page):  # (uploads and results are referenced by their path in Gradio's cache)
        where = text.find(str(ROOT))
        assert where < 0, text[max(0, where - 200): where + 200]
        assert str(app.log.parent / "weights") not in text
    assert "benchmark results" in config and "RESULTS.json" not in config  # the plot's note, named plainly
    assert '"analytics_enabled":false' in config.replace(" ", "")


# -- 7. no outbound connection at start ----------------------------------------------------------------------

SITECUSTOMIZE = '''
import os, socket
_record = os.environ["STUDIO_CONNECT_LOG"]
_connect, _create = socket.socket.connect, socket.create_connection
_getaddrinfo = socket.getaddrinfo
LOOPBACK = ("127.", "::1", "localhost", "0.0.0.0")

def _note(target):
    host = str(target[0] if isinstance(target, tuple) else target)
    if not host.startswith(LOOPBACK) and not host.startswith("/"):
        with open(_record, "a") as f:
            f.write(host + "\\n")
        raise OSError("outbound connection attempted: " + host)

def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _note(address)
    return _connect(self, address)

def getaddrinfo(host, *args, **kwargs):
    if host is not None:
        _note((host,))
    return _getaddrinfo(host, *args, **kwargs)

socket.socket.connect = connect
socket.getaddrinfo = getaddrinfo
'''


@pytest.mark.parametrize("args", [(), ("--backend", "openvino")], ids=["default", "openvino"])
def test_no_outbound_connection_at_start(tmp_path: Path, args: tuple[str, ...]) -> None:
    """A plain start (no GRADIO_* or HF_* settings) with every non-loopback connect recorded and failed."""
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    record = tmp_path / "connects.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "HF_", "DO_NOT_TRACK"))}
    # a cache of its own, so that the start converts the model (OpenVINO's converter has telemetry)
    env.update(PYTHONPATH=str(tmp_path / "hook"), STUDIO_CONNECT_LOG=str(record), XDG_CACHE_HOME=str(tmp_path / "cache"))
    server = AppProcess(make_weights(tmp_path / "weights"), tmp_path, args=args, env=env, clean_env=True)
    try:
        assert urllib.request.urlopen(server.url + "config", timeout=10).status == 200
        time.sleep(3)  # analytics and update checks run in background threads after start
        assert not record.exists(), record.read_text()
    finally:
        server.stop()
