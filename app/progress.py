"""A request's progress bar, fed by the engine's step callback, and the check that its client is still there."""

from __future__ import annotations

import logging
from collections.abc import Callable

import gradio as gr

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


def progress_callback(progress: gr.Progress, desc: str) -> Callable[[int, int], None]:
    """The service's on_step(done, total), fed to a Gradio progress bar; stops work whose client went away."""
    alive = client_alive()

    def on_step(done: int, total: int) -> None:
        if not alive():
            log.info("%s stopped after %d of %d evaluations: its client went away", desc, done, total)
            raise ClientGone(f"stopped after {done} of {total} network evaluations: the client went away")
        progress((done, total), desc=desc, unit="evaluations")

    return on_step
