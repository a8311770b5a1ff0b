"""How much work one request may ask for, per device, so that it ends within the studio's timeout.

An edit's cost grows with the pixels its solver runs on times its network evaluations (the model runs on tiles
that cover them once per evaluation), so the limit is a budget of megapixel-evaluations: a one-evaluation
denoise may take `megapixels` megapixels, an 18-evaluation edit an 18th of that. A task may run on part of its
output (inpainting: the box around the mask) or in several passes (colorization: a reduced size, then full
size); `Pass` is one such run and a request costs their sum. The CPU default comes from the photo model's
measured time per tile (README, "Limits") against the studio's default 120 s timeout; the studio also fits each
request to half its timeout at the time per tile it measures, which binds on slower machines and models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

CPU_MEGAPIXELS = 16.0  # megapixel-evaluations per request on a CPU (README, "Limits")
CUDA_MEGAPIXELS = 200.0  # and on a CUDA GPU


@dataclass(frozen=True)
class Limits:
    """The most megapixels x evaluations x outputs one request may cost (math.inf: no limit)."""

    megapixels: float

    def __post_init__(self) -> None:
        if not self.megapixels > 0:
            raise ValueError(f"the megapixel limit must be positive, got {self.megapixels}")


UNLIMITED = Limits(math.inf)


def device_limits(device: torch.device | str) -> Limits:
    """The default limit for a device: CPU_MEGAPIXELS on a CPU, CUDA_MEGAPIXELS on CUDA."""
    return Limits(CUDA_MEGAPIXELS if torch.device(device).type == "cuda" else CPU_MEGAPIXELS)


@dataclass(frozen=True)
class Pass:
    """One run of the solver within a request, per output: the image size it runs on and its evaluations (a
    task may run on part of its output, as inpainting on the box around its mask, or several times, as
    colorization at a reduced size and then at full size)."""

    height: int
    width: int
    evaluations: int

    @property
    def megapixel_evaluations(self) -> float:
        return self.height * self.width * self.evaluations / 1e6


def check_request(
    limits: Limits | None, device: torch.device | str, outputs: int, height: int, width: int, evaluations: int,
) -> None:
    """Refuse, with a message that says what to change, a request beyond `limits` (None: the device's default)."""
    check_passes(limits, device, outputs, [Pass(height, width, evaluations)])


def within(limits: Limits | None, device: torch.device | str, outputs: int, passes: Sequence[Pass]) -> bool:
    """Whether `check_passes` lets the request through."""
    limits = device_limits(device) if limits is None else limits
    return outputs * sum(p.megapixel_evaluations for p in passes) <= limits.megapixels


def check_passes(limits: Limits | None, device: torch.device | str, outputs: int, passes: Sequence[Pass]) -> None:
    """`check_request` for a request of one or more passes per output: their megapixel-evaluations summed."""
    if within(limits, device, outputs, passes):
        return
    limits = device_limits(device) if limits is None else limits
    cost = outputs * sum(p.megapixel_evaluations for p in passes)
    kind = torch.device(device).type
    if len(passes) == 1:
        (one,) = passes
        megapixels = one.height * one.width / 1e6
        allowed = limits.megapixels / max(1, outputs * one.evaluations)
        raise ValueError(
            f"{one.width}x{one.height} ({megapixels:.2f} megapixels) x {one.evaluations} evaluation(s) x {outputs} "
            f"output(s) is {cost:.1f} megapixel-evaluations, more than the {limits.megapixels:g} allowed per request "
            f"on {kind}; at these settings the limit is {allowed:.2f} megapixels: use a smaller image, fewer steps "
            "or outputs, or a GPU"
        )
    runs = " + ".join(f"{p.width}x{p.height} x {p.evaluations}" for p in passes)
    raise ValueError(
        f"({runs}) evaluation(s) x {outputs} output(s) is {cost:.1f} megapixel-evaluations, more than the "
        f"{limits.megapixels:g} allowed per request on {kind}: use a smaller image, fewer steps or outputs, or a GPU"
    )
