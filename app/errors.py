"""Errors a user may see: bad input becomes a clear message, anything else a short one; no server path shown."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s'\"():,/]+/)*[^\s'\"():,/]*")


def without_paths(message: str) -> str:
    """A message with every absolute path cut to its last part: no server path reaches the page."""
    return ABSOLUTE_PATH.sub(lambda m: m.group().rstrip("/").rsplit("/", 1)[-1] or "/", message)


def guarded(fn: F) -> F:
    """Turn bad input (ValueError, including InputError and ModelLoadError) into a gr.Error with its message;
    anything else is logged with its traceback on the server and shown as a short message, never a trace."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except ValueError as e:
            raise gr.Error(without_paths(str(e)), print_exception=False) from None
        except Exception:  # noqa: BLE001 - the user sees a message, the log keeps the trace
            log.exception("task failed")
            raise gr.Error("Something went wrong inside the studio (details are in the server log). "
                           "Try again, or change the inputs.", print_exception=False) from None

    return wrapper  # type: ignore[return-value]
