"""Orthogonal operators for zero-shot editing (CM paper, Sec. 6 and Appendix D).

Each operator is an orthogonal change of basis Q (per pixel, or per block) plus a boolean mask over the
coefficients of Q^T x saying which ones the user's image determines. With A the measured rows of Q^T,
Algorithm 4 enforces A x = A y by overwriting those coefficients and transforming back. Because Q is
orthogonal, the rest of x is left untouched, and the transform is exactly invertible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F

LUMA = (0.2989, 0.5870, 0.1140)  # ITU-R BT.601, as in the paper's colorization


class Operator(Protocol):
    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Q^T x, coefficients with x's shape."""

    def inverse(self, c: torch.Tensor) -> torch.Tensor:
        """Q c."""

    def measured(self, x: torch.Tensor) -> torch.Tensor:
        """Boolean mask, broadcastable to transform(x), of the coefficients the reference determines."""


def replace(operator: Operator, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A^-1 [ (A y) on the measured coefficients, (A x) elsewhere ]: the replacement step of Algorithm 4."""
    keep = operator.measured(x)
    return operator.inverse(torch.where(keep, operator.transform(y), operator.transform(x)))


def measurement(operator: Operator, x: torch.Tensor) -> torch.Tensor:
    """A x with the unmeasured coefficients zeroed (for checking A x = A y)."""
    return operator.transform(x) * operator.measured(x)


def basis_with_first(first: torch.Tensor) -> torch.Tensor:
    """An orthonormal d x d basis (columns) whose first column is first / ||first||, via QR."""
    d = first.numel()
    m = torch.eye(d, dtype=torch.float64)
    m[:, 0] = first.to(torch.float64)
    q, r = torch.linalg.qr(m)
    # QR fixes columns only up to sign; make the first axis point along `first`.
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    return q.to(torch.float32)


@dataclass(frozen=True)
class Identity:
    """Q = I and nothing measured: the model is free everywhere (stroke editing, interpolation, generation)."""

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def inverse(self, c: torch.Tensor) -> torch.Tensor:
        return c

    def measured(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros((1,) * x.ndim, dtype=torch.bool, device=x.device)


@dataclass(frozen=True)
class Inpaint:
    """Q = I; measured are the pixels outside `mask` ((B|1, 1, H, W), True where the model fills in)."""

    mask: torch.Tensor

    def __post_init__(self) -> None:
        if self.mask.ndim != 4 or self.mask.shape[1] != 1:
            raise ValueError(f"mask must have shape (B, 1, H, W), got {tuple(self.mask.shape)}")
        object.__setattr__(self, "mask", self.mask.to(torch.bool))

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def inverse(self, c: torch.Tensor) -> torch.Tensor:
        return c

    def measured(self, x: torch.Tensor) -> torch.Tensor:
        if self.mask.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"mask is {tuple(self.mask.shape[-2:])} but the image is {tuple(x.shape[-2:])}")
        return ~self.mask.to(x.device)


@dataclass(frozen=True)
class Colorize:
    """Per-pixel 3x3 orthonormal colour basis whose first axis is luma; measured: the luma axis."""

    q: torch.Tensor = field(default_factory=lambda: basis_with_first(torch.tensor(LUMA)))

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ji,bjhw->bihw", self.q.to(x.device, x.dtype), x)

    def inverse(self, c: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ij,bjhw->bihw", self.q.to(c.device, c.dtype), c)

    def measured(self, x: torch.Tensor) -> torch.Tensor:
        keep = torch.zeros(1, 3, 1, 1, dtype=torch.bool, device=x.device)
        keep[:, 0] = True
        return keep


@dataclass(frozen=True)
class SuperResolve:
    """Per channel, an orthonormal basis of each factor x factor block whose first axis is the block
    mean (times factor); measured: that first axis, i.e. the low-resolution image."""

    factor: int

    def __post_init__(self) -> None:
        if self.factor < 2:
            raise ValueError(f"super-resolution factor must be >= 2, got {self.factor}")
        q = basis_with_first(torch.ones(self.factor**2))
        object.__setattr__(self, "_q", q)

    def _check(self, x: torch.Tensor) -> None:
        h, w = x.shape[-2:]
        if h % self.factor or w % self.factor:
            raise ValueError(f"factor {self.factor} does not divide the image size {h}x{w}")

    def _per_block(self, x: torch.Tensor, equation: str) -> torch.Tensor:
        """Apply Q (equation "ij,...") or Q^T ("ji,...") to every factor x factor block of every channel."""
        self._check(x)
        b, c, h, w = x.shape
        f, f2 = self.factor, self.factor**2
        blocks = F.pixel_unshuffle(x, f).view(b, c, f2, h // f, w // f)
        out = torch.einsum(equation, self._q.to(x.device, x.dtype), blocks)
        return F.pixel_shuffle(out.reshape(b, c * f2, h // f, w // f), f)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return self._per_block(x, "ji,bcjhw->bcihw")

    def inverse(self, coeffs: torch.Tensor) -> torch.Tensor:
        return self._per_block(coeffs, "ij,bcjhw->bcihw")

    def measured(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        keep = torch.zeros(1, 1, self.factor, self.factor, dtype=torch.bool, device=x.device)
        keep[..., 0, 0] = True  # coefficient 0 of each block sits at the block's top-left after shuffling
        return keep.repeat(1, 1, x.shape[-2] // self.factor, x.shape[-1] // self.factor)


def grayscale(images: torch.Tensor) -> torch.Tensor:
    """The BT.601 luma replicated to three channels: what colorization keeps, shown as a grey image."""
    luma = torch.einsum("c,bchw->bhw", torch.tensor(LUMA, device=images.device), images).unsqueeze(1)
    return luma.expand(-1, 3, -1, -1).contiguous()
