"""Noise schedules: the Karras sigma grid (EDM Eq. 5) and `ts` index lists into it (OpenAI's convention).

A multistep schedule is `ts`, ascending indices into an N-point grid that runs from sigma_max (index 0)
down to sigma_min (index N-1), and ends at N-1. Algorithm 1 evaluates f at grid[ts[i]] for every i
but the last, then re-noises to grid[ts[i+1]]; the final level, sigma_min, adds no noise. So `ts` of
length k+1 costs k network evaluations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch


def karras_ramp(ramp: torch.Tensor, sigma_min: float, sigma_max: float, rho: float) -> torch.Tensor:
    """The sigma a fraction `ramp` of the way from sigma_max (0) to sigma_min (1) along EDM Eq. 5's ramp,
    elementwise, in ramp's dtype."""
    hi, lo = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return (hi + ramp * (lo - hi)) ** rho


def karras_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> torch.Tensor:
    """Descending grid sigma_0 = sigma_max > ... > sigma_{n-1} = sigma_min (EDM Eq. 5), float64."""
    if n < 2:
        raise ValueError(f"a sigma grid needs at least 2 points, got {n}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
    return karras_ramp(torch.linspace(0, 1, n, dtype=torch.float64), sigma_min, sigma_max, rho)


@dataclass(frozen=True)
class Schedule:
    """`ts` into an `n`-point Karras grid; validated on construction."""

    ts: tuple[int, ...]
    n: int

    def __post_init__(self) -> None:
        if self.n < 2:
            raise ValueError(f"the grid needs at least 2 points, got n={self.n}")
        ts = self.ts
        if len(ts) < 2:
            raise ValueError(f"ts needs at least 2 indices (one evaluation and the end), got {list(ts)}")
        if any(not isinstance(t, int) or isinstance(t, bool) for t in ts):
            raise ValueError(f"ts must be integers, got {list(ts)}")
        if ts[0] < 0:
            raise ValueError(f"ts must start at an index >= 0, got {ts[0]}")
        if any(b <= a for a, b in zip(ts, ts[1:])):
            raise ValueError(f"ts must be strictly ascending, got {list(ts)}")
        if ts[-1] != self.n - 1:
            raise ValueError(f"ts must end at n-1 = {self.n - 1} (sigma_min), got {ts[-1]}")

    @property
    def evaluations(self) -> int:
        return len(self.ts) - 1

    def sigmas(self, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> torch.Tensor:
        """The sigma at each index of ts, descending, float64; the last is sigma_min."""
        return karras_sigmas(self.n, sigma_min, sigma_max, rho)[list(self.ts)]


def parse_ts(text: str, n: int) -> Schedule:
    """Parse a user's "0,22,39" into a validated Schedule on an n-point grid."""
    try:
        ts = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise ValueError(f"ts must be comma-separated integers like '0,22,39', got {text!r}") from None
    return Schedule(ts, n)


def uniform(steps: int, n: int = 40, start: int = 0) -> Schedule:
    """`steps` evaluations at indices spread evenly from `start` (0: sigma_max) to the end of an n-point grid."""
    if not 0 <= start <= n - 2:
        raise ValueError(f"the starting index must be between 0 and {n - 2} for a {n}-point grid, got {start}")
    if not 1 <= steps <= n - 1 - start:
        raise ValueError(f"steps must be between 1 and {n - 1 - start} for a {n}-point grid starting at index "
                         f"{start}, got {steps}")
    ts = sorted({start + round(i * (n - 1 - start) / steps) for i in range(steps + 1)})
    return Schedule(tuple(ts), n)


def steps_schedule(steps: int, tuned: Mapping[int, Schedule], n: int | None = None) -> Schedule:
    """`steps` evaluations: the model's tuned ts for that count (its schedules.json) where it has one on an
    n-point grid (any grid when n is None), else `uniform` on an n-point grid (40 when n is None)."""
    schedule = tuned.get(steps)
    if schedule is not None and (n is None or schedule.n == n):
        return schedule
    return uniform(steps, n or 40)


# Named presets from the paper's experiments (Song et al. 2023, Sec. 6 and Appendix C/D).
PRESETS: dict[str, Schedule] = {
    "1 step": Schedule((0, 39), 40),
    "ImageNet64 CD 2-step": Schedule((0, 22, 39), 40),
    "LSUN bedroom CD 2-step": Schedule((0, 17, 39), 40),
    "editing 40": Schedule(tuple(range(40)), 40),
    "editing 18": Schedule(tuple(range(18)), 18),
    "strokes": Schedule((16, 20, 39), 40),
}
