"""The last step of every edit: a result inside the valid range [-1, 1] that still satisfies A x = A y.

Algorithm 4's replacement makes A x = A y exactly, but the unmeasured part comes from the model, so Q c can
leave [-1, 1] (a colorized white with a yellow chroma needs R or G above 1). Saving clips it, and clipping
moves A x. We want the point of the intersection {A x = A y} ∩ [-1, 1]^n nearest to the solver's x.

For a box and an affine set the KKT conditions give that projection in closed form up to multipliers:
x* = clip(x + A^T lam) with lam chosen so that A x* = A y (Boyd & Vandenberghe, Sec. 5.5; the same
structure as projection onto a simplex, Duchi et al. 2008). Our operators' measured rows have disjoint
supports (a pixel for Inpaint, a pixel's three channels for Colorize, a block for SuperResolve), so each
multiplier acts alone, and g(lam_k) = a_k^T clip(x + lam_k a_k) is nondecreasing (its derivative is the
sum of a_ki^2 over unclipped i): a vectorised bisection finds every lam_k at once. Unlike alternating
projections (POCS converges to *some* point of the intersection, and slowly where the intersection is a
corner, e.g. a white pixel), this reaches the nearest one, and it ends on a clip, so the box holds exactly
and A x = A y up to the bisection's float precision. 8-bit rounding then moves each pixel by at most half
a level, hence a block mean or a luma (weights summing to 1) by at most half a level too.
"""

from __future__ import annotations

import torch

from editing.operators import Operator, replace

BRACKET_DOUBLINGS = 24  # lam brackets grow 1, 2, 4, ...: far beyond any clip of values within a few units
BISECTIONS = 48  # halvings of the bracket: past float32 resolution
MET = 1e-6  # |a_k^T x - a_k^T y| counted as met (float32 error of the transforms; 8-bit levels are 7.8e-3)


def project_feasible(operator: Operator, x: torch.Tensor, y: torch.Tensor, iters: int = BISECTIONS) -> torch.Tensor:
    """The nearest x* to replace(x, y) with -1 <= x* <= 1 and A x* = A y (KKT: x* = clip(x + A^T lam)).

    Where A y itself is out of reach of the box (y outside [-1, 1]), that coefficient's lam saturates its
    bracket and the result is still clipped into the box. A feasible x is returned unchanged.
    """
    keep = operator.measured(x).expand_as(x)
    target = operator.transform(y)

    def gap(z: torch.Tensor) -> torch.Tensor:
        # a_k^T z - a_k^T y on the measured coefficients, 0 elsewhere.
        return torch.where(keep, operator.transform(z) - target, torch.zeros_like(z))

    if bool((x.abs() <= 1.0).all() and (gap(x).abs() <= MET).all()):
        return x  # feasible already: returned as it is (another replacement would only add float error)
    v = replace(operator, x, y)

    def clipped(lam: torch.Tensor) -> torch.Tensor:
        return (v + operator.inverse(torch.where(keep, lam, torch.zeros_like(lam)))).clamp(-1.0, 1.0)

    def excess(lam: torch.Tensor) -> torch.Tensor:
        return gap(clipped(lam))

    zero = torch.zeros_like(v)
    at_zero = excess(zero)
    # 1. Bracket each multiplier: lo <= lam_k <= hi with excess(lo) <= 0 <= excess(hi).
    lo = torch.where(at_zero > MET, -torch.ones_like(v), zero)
    hi = torch.where(at_zero < -MET, torch.ones_like(v), zero)
    for _ in range(BRACKET_DOUBLINGS):
        low_ok, high_ok = excess(lo) <= MET, excess(hi) >= -MET
        if bool(low_ok.all() and high_ok.all()):
            break
        lo = torch.where(low_ok, lo, 2 * lo)
        hi = torch.where(high_ok, hi, 2 * hi)
    # 2. Bisect; coefficients already met at lam = 0 keep lo = hi = 0 and so stay exactly as they are.
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        above = excess(mid) > 0
        hi = torch.where(above, mid, hi)
        lo = torch.where(above, lo, mid)
    return clipped(0.5 * (lo + hi))


def measured_error_levels(operator: Operator, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per image, max over measured rows of |a_k^T (x - y)| / a_k^T 1, in 8-bit levels (x, y in [-1, 1]).

    a_k^T x / a_k^T 1 is the quantity the user sees: the pixel for Inpaint, the luma for Colorize (BT.601
    weights), the block mean for SuperResolve. Measure it on the 8-bit result (images.from_uint8(to_uint8)).
    """
    keep = operator.measured(x).expand_as(x)
    weight = operator.transform(torch.ones_like(x))
    gap = operator.transform(x.to(torch.float32)) - operator.transform(y.to(torch.float32))
    gap = torch.where(keep, gap / torch.where(keep, weight, torch.ones_like(weight)), torch.zeros_like(gap))
    return gap.abs().flatten(1).amax(1) * 127.5
