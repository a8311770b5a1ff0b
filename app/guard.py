"""What a request may carry and how much one client may ask, checked before Gradio's own code sees it.

`Guard` is an ASGI middleware on the app Gradio builds (`launch(app_kwargs={"middleware": ...})`): it bounds
request bodies, refuses file references that are not Gradio uploads, unknown api names, wrong argument counts
and malformed editor values with a clear message, caps files and bytes per upload and the upload folder's size
(pruning the oldest uploads), and admits a queued request only while its client (session and address) has fewer
than its share in the queue. `uploaded_file` is the one check every component applies to a path before it is
opened; it answers every refusal with the same message, so it tells nothing about the server's disk.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gradio import utils as gradio_utils

from editing.images import MAX_BYTES

NOT_UPLOADED = ("a file field must name a file uploaded to this studio (through the page, or gradio_client's "
                "handle_file); other paths and URLs are not read")
SESSION: contextvars.ContextVar[str | None] = contextvars.ContextVar("studio_session", default=None)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class GuardLimits:
    """What the operator sets (app.py flags); the defaults suit the studio on one machine."""

    per_session: int = 1  # task requests (public API) queued or running per browser session (gradio_client: per Client)
    per_address: int = 16  # and per client address (every session behind it together)
    upload_files: int = 8  # files per upload request
    upload_bytes: int = MAX_BYTES + 2**20  # bytes per upload request: one file as large as the engine reads
    upload_quota: int = 1024 * 2**20  # bytes in the upload folder before the oldest uploads are pruned
    json_bytes: int = 1 * 2**20  # body of an API call
    blob_bytes: int = 12 * 2**20  # body of one editor blob (component_server)


def upload_folder() -> Path:
    return Path(os.path.realpath(gradio_utils.get_upload_folder()))


def is_uploaded(path: Any) -> bool:
    """True when `path` is a regular file inside Gradio's upload folder (after resolving links and '..')."""
    if not isinstance(path, str) or not path or "\x00" in path or "://" in path:
        return False
    real = Path(os.path.realpath(path))
    folder = upload_folder()
    return real != folder and folder in real.parents and real.is_file()


def uploaded_file(path: Any) -> str:
    """The path if it is an upload (see `is_uploaded`); else ValueError(NOT_UPLOADED), whatever the path is."""
    if not is_uploaded(path):
        raise ValueError(NOT_UPLOADED)
    return str(path)


def file_refs(value: Any) -> Iterator[dict[str, Any]]:
    """Every dict with a 'path' or 'url' key in a JSON value (Gradio's file references), depth-first."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "path" in item or "url" in item:
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class Refused(Exception):
    """A request refused by the guard: HTTP status and the message shown."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class UploadQuota:
    """The upload folder's size, kept under a quota by removing the oldest uploads (older than `min_age` s)."""

    def __init__(self, quota: int, min_age: float = 120.0):
        self.quota, self.min_age = quota, min_age
        self._lock = threading.Lock()

    def admit(self, incoming: int) -> None:
        with self._lock:
            folder = upload_folder()
            files = []
            for root, _, names in os.walk(folder):
                for name in names:
                    try:
                        st = os.stat(os.path.join(root, name))
                    except OSError:
                        continue
                    files.append((st.st_mtime, st.st_size, os.path.join(root, name)))
            used = sum(size for _, size, _ in files)
            now = time.time()
            for mtime, size, path in sorted(files):
                if used + incoming <= self.quota:
                    break
                if now - mtime < self.min_age:
                    break
                try:
                    os.remove(path)
                    used -= size
                except OSError:
                    pass
            if used + incoming > self.quota:
                raise Refused(507, "the studio's upload space is full just now; try again in a few minutes")


def _api_path(path: str) -> tuple[str, str | None]:
    """('call' | 'run' | 'join' | 'upload' | 'component_server' | '', api name for call and run routes).
    'run' (run/ and api/) reads the body's fn_index before its own api name, as Gradio does (route_utils.get_fn):
    the page's example galleries post to run/predict with the index of their load event."""
    match = re.search(r"/gradio_api/(call/v2|call|run|api)/([^/]+)/?$", path)
    if match:
        return "call" if match.group(1).startswith("call") else "run", match.group(2)
    for kind in ("queue/join", "upload", "component_server"):
        if re.search(rf"/gradio_api/{kind}/?$", path):
            return kind.replace("queue/", ""), None
    return "", None


class Guard:
    """ASGI middleware: checks described in the module docstring, then hands the request to Gradio."""

    def __init__(self, app: Callable[..., Awaitable[None]], demo: Any, limits: GuardLimits):
        self.app, self.demo, self.limits = app, demo, limits
        self.quota = UploadQuota(limits.upload_quota)
        self._entering: dict[str, int] = {}  # admitted requests not yet in Gradio's queue, by "s:" session / "a:" address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        kind, api = _api_path(scope["path"])
        if not kind:
            return await self.app(scope, receive, send)
        limit = {"upload": self.limits.upload_bytes, "component_server": self.limits.blob_bytes}.get(
            kind, self.limits.json_bytes)
        keys: list[str] = []
        try:
            body = await _read_body(scope, receive, limit)
            if kind == "upload":
                self._check_upload(scope, body)
            elif kind in ("call", "run", "join"):
                keys = self._check_call(scope, body, api, by_index=kind != "call")
        except Refused as e:
            return await _reply(send, e.status, e.message)
        for key in keys:
            self._entering[key] = self._entering.get(key, 0) + 1
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:  # the call returns once Gradio has queued the event, where _admit counts it from then on
            await self.app(scope, replay, send)
        finally:
            for key in keys:
                self._entering[key] -= 1
                if not self._entering[key]:
                    del self._entering[key]

    # -- checks -------------------------------------------------------------------------------------------

    def _check_upload(self, scope: Scope, body: bytes) -> None:
        content_type = _header(scope, "content-type")
        match = re.search(r"boundary=\"?([^\";]+)", content_type)
        if not match:
            raise Refused(400, "an upload must be multipart/form-data")
        parts = body.count(b"--" + match.group(1).encode() + b"\r\n")
        if parts > self.limits.upload_files:
            raise Refused(413, f"{parts} files in one upload; at most {self.limits.upload_files} are accepted")
        self.quota.admit(len(body))

    def _check_call(self, scope: Scope, body: bytes, api: str | None, by_index: bool) -> list[str]:
        try:
            payload = json.loads(body or b"null")
        except (UnicodeDecodeError, ValueError):
            raise Refused(400, "the request body is not JSON") from None
        if not isinstance(payload, dict):
            raise Refused(400, 'the request body must be a JSON object like {"data": [...]}')
        fn = self._function(api, payload, by_index)
        data = payload.get("data")
        if not isinstance(data, list):
            raise Refused(400, 'the request must carry "data": a list with one value per input')
        names = [getattr(block, "label", None) or type(block).__name__ for block in fn.inputs]
        if len(data) != len(names):
            raise Refused(400, f"{fn.api_name} takes {len(names)} values ({', '.join(map(str, names))}), "
                               f"got {len(data)}")
        for block, value in zip(fn.inputs, data):
            check_value = getattr(block, "check_api_value", None)
            if check_value is not None:
                message = check_value(value)
                if message:
                    raise Refused(400, message)
        for ref in file_refs(data):
            if not is_uploaded(ref.get("path")):
                raise Refused(400, NOT_UPLOADED)
        return self._admit(scope, payload, _is_task(fn))

    def _function(self, api: str | None, payload: dict[str, Any], by_index: bool) -> Any:
        """The function Gradio will run: the body's fn_index where the route reads it first (`by_index`), else the
        route's api name, else the body's."""
        fns = {fn.api_name: fn for fn in self.demo.fns.values() if fn.api_name}
        public = sorted(name for name, fn in fns.items() if getattr(fn, "api_visibility", "public") == "public")
        index = payload.get("fn_index") if by_index else None
        if index is None:
            name = api if api is not None else payload.get("api_name")
            if isinstance(name, str) and name.lstrip("/") in fns:
                return fns[name.lstrip("/")]
            if isinstance(name, str):
                raise Refused(404, f"unknown api_name {name[:60]!r}; this studio has: {', '.join(public)}")
        if isinstance(index, bool) or not isinstance(index, int) or index not in self.demo.fns:
            raise Refused(404, f"unknown function {str(index)[:20]!r}; this studio's api names are: "
                               f"{', '.join(public)}")
        return self.demo.fns[index]

    def _admit(self, scope: Scope, payload: dict[str, Any], task: bool) -> list[str]:
        """Refuse a request while its session (tasks only: UI plumbing such as loading a canvas is not counted)
        or its address already has its share queued or running; the keys it is counted under until it is queued.
        A session's share of one task leaves the other workers to other clients however heavy its requests are."""
        queue = getattr(self.demo, "_queue", None)
        events = list(getattr(queue, "event_ids_to_events", {}).values())
        session = payload.get("session_hash")
        address = (scope.get("client") or ("?",))[0]
        keys = [f"a:{address}"] + ([f"s:{session}"] if isinstance(session, str) and task else [])
        same_session = sum(1 for e in events if task and session and e.session_hash == session and _is_task(e.fn))
        same_address = sum(1 for e in events if _event_address(e) == address)
        same_address += self._entering.get(keys[0], 0)
        same_session += self._entering.get(keys[-1], 0) if len(keys) > 1 else 0
        if same_session >= self.limits.per_session:
            who, count, cap = "this session", same_session, self.limits.per_session
        elif same_address >= self.limits.per_address:
            who, count, cap = "your address", same_address, self.limits.per_address
        else:
            return keys
        raise Refused(429, f"busy: {who} already has {count} requests waiting or running (at most {cap}); "
                           "try again when one of them has finished")


def _is_task(fn: Any) -> bool:
    """A studio task (an event of the public API), as opposed to UI plumbing (undocumented events)."""
    return bool(fn.api_name) and getattr(fn, "api_visibility", "public") == "public"


def _event_address(event: Any) -> str | None:
    try:
        return event.request.client.host
    except AttributeError:
        return None


def _header(scope: Scope, name: str) -> str:
    for key, value in scope.get("headers", []):
        if key.decode("latin-1").lower() == name:
            return value.decode("latin-1")
    return ""


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body, at most `limit` bytes; beyond it Refused(413) once the rest is drained (up to 8x the limit,
    so that the client reads the answer instead of a broken pipe), without keeping it."""
    declared = _header(scope, "content-length")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refused(400, "the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        else:
            chunks.clear()
        if not message.get("more_body") or size > 8 * limit:
            break
    if size > limit:
        shown = f"{int(declared):,}" if declared.isdigit() else f"over {limit:,}"
        raise Refused(413, f"the request is {shown} bytes; at most {limit:,} are accepted here")
    return b"".join(chunks)


async def _reply(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message, "detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def bind_sessions(demo: Any) -> None:
    """Run every event with its session in `SESSION`, so components can keep per-session state (editor blobs)."""
    process_api = demo.process_api

    async def with_session(*args: Any, **kwargs: Any) -> Any:
        token = SESSION.set(kwargs.get("session_hash"))
        try:
            return await process_api(*args, **kwargs)
        finally:
            SESSION.reset(token)

    demo.process_api = with_session
