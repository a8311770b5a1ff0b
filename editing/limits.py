"""How much work one request may ask for, per device, so that it ends within the studio's timeout.

An edit's cost grows with its output pixels times its network evaluations (the model runs on tiles that
cover the image once per evaluation), so the limit is a budget of megapixel-evaluations: a one-evaluation
denoise may take `megapixels` megapixels, an 18-evaluation edit an 18th of that. The defaults come from the
measured speed of the shipped emoji model on tiles (README, "Any size") against the studio's default 120 s
timeout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

CPU_MEGAPIXELS = 4.0  # megapixel-evaluations per request on a CPU (half the idle 2-core estimate: a busy CPU)
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


def check_request(
    limits: Limits | None, device: torch.device | str, outputs: int, height: int, width: int, evaluations: int,
) -> None:
    """Refuse, with a message that says what to change, a request beyond `limits` (None: the device's default)."""
    limits = device_limits(device) if limits is None else limits
    megapixels = height * width / 1e6
    cost = outputs * megapixels * evaluations
    if cost <= limits.megapixels:
        return
    kind = torch.device(device).type
    allowed = limits.megapixels / max(1, outputs * evaluations)
    raise ValueError(
        f"{width}x{height} ({megapixels:.2f} megapixels) x {evaluations} evaluation(s) x {outputs} output(s) is "
        f"{cost:.1f} megapixel-evaluations, more than the {limits.megapixels:g} allowed per request on {kind}; "
        f"at these settings the limit is {allowed:.2f} megapixels: use a smaller image, fewer steps or outputs, "
        "or a GPU"
    )
