"""A request's progress bar, fed by the engine's step callback, and the check that its client is still there."""

from __future__ import annotations

import logging
from collections.abc import Callable

import gradio as gr

from app.request import Cancelled

log = logging.getLogger(__name__)


class ClientGone(ValueError):
    """The client that asked for a request went away: its work stops after the current network evaluation."""


def client_alive() -> Callable[[], bool]:
    """Whether the event now running still has a client (Gradio marks it dead when its stream disconnects)."""
    from gradio.context import LocalContext

    blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
    queue = getattr(blocks, "_queue", None)
    event = getattr(queue, "event_ids_to_events", {}).get(event_id) if event_id else None
    return (lambda: True) if event is None else (lambda: event.alive)


def progress_callback(progress: gr.Progress, desc: str,
                      cancelled: Callable[[], bool] | None = None) -> Callable[..., None]:
    """The service's on_step(done, total[, unit]), fed to a Gradio progress bar; stops work whose client went
    away or whose Stop button was pressed (`cancelled`)."""
    alive = client_alive()

    def on_step(done: int, total: int, unit: str = "evaluations") -> None:
        if not alive():
            log.info("%s stopped after %d of %d %s: its client went away", desc, done, total, unit)
            raise ClientGone(f"stopped after {done} of {total} {unit}: the client went away")
        if cancelled is not None and cancelled():
            log.info("%s stopped after %d of %d %s: cancelled", desc, done, total, unit)
            raise Cancelled(f"stopped after {done} of {total} {unit}, as asked")
        progress((done, total), desc=desc, unit=unit)

    return on_step


def session(request: gr.Request | None) -> str | None:
    """The browser session a request came from (None for a direct call): whose Stop button stops it."""
    return getattr(request, "session_hash", None)
