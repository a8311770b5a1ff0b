"""Orthogonal operators (CM paper Sec. 6, Appendix D): Q^T Q = I, exact inverses, what A measures."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from editing.operators import (
    Colorize,
    Identity,
    Inpaint,
    Operator,
    SuperResolve,
    basis_with_first,
    measurement,
    replace,
)

SHAPE = (1, 3, 8, 8)
BT601 = (0.2989, 0.5870, 0.1140)  # written out, not imported: the test must catch a wrong LUMA


def mask() -> torch.Tensor:
    m = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    m[..., 2:6, 1:5] = True
    return m


OPERATORS: dict[str, Operator] = {
    "identity": Identity(),
    "inpaint": Inpaint(mask()),
    "colorize": Colorize(),
    "superresolve2": SuperResolve(2),
    "superresolve4": SuperResolve(4),
    "superresolve8": SuperResolve(8),
}


def full_matrix(op: Operator) -> torch.Tensor:
    """Q^T as a d x d matrix: column j is transform(e_j)."""
    d = torch.Size(SHAPE).numel()
    basis = torch.eye(d).view(d, *SHAPE[1:])
    return torch.cat([op.transform(e.unsqueeze(0)).flatten(1) for e in basis]).T


@pytest.mark.parametrize("name", OPERATORS)
def test_q_is_orthogonal(name: str) -> None:
    qt = full_matrix(OPERATORS[name]).double()
    eye = torch.eye(qt.shape[0], dtype=torch.float64)
    torch.testing.assert_close(qt.T @ qt, eye, atol=1e-6, rtol=0)
    torch.testing.assert_close(qt @ qt.T, eye, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", OPERATORS)
def test_inverse_undoes_transform(name: str) -> None:
    op = OPERATORS[name]
    x = torch.randn(2, *SHAPE[1:], generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(op.inverse(op.transform(x)), x, atol=1e-6, rtol=0)
    torch.testing.assert_close(op.transform(op.inverse(x)), x, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", OPERATORS)
def test_replace_sets_measured_and_keeps_the_rest(name: str) -> None:
    op = OPERATORS[name]
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(2, *SHAPE[1:], generator=g), torch.randn(2, *SHAPE[1:], generator=g)
    before = x.clone()
    out = replace(op, x, y)
    assert torch.equal(x, before)
    keep = op.measured(x).expand_as(x)
    torch.testing.assert_close(op.transform(out)[keep], op.transform(y)[keep], atol=1e-5, rtol=0)
    torch.testing.assert_close(op.transform(out)[~keep], op.transform(x)[~keep], atol=1e-5, rtol=0)
    torch.testing.assert_close(measurement(op, out), measurement(op, y), atol=1e-5, rtol=0)


def test_identity_measures_nothing_and_inpaint_the_unmasked_pixels() -> None:
    x = torch.randn(SHAPE)
    assert not Identity().measured(x).any()
    keep = Inpaint(mask()).measured(x)
    assert torch.equal(keep, ~mask())
    out = replace(Inpaint(mask()), x, torch.zeros(SHAPE))
    assert torch.equal(out[~mask().expand_as(x)], torch.zeros(SHAPE)[~mask().expand_as(x)])
    assert torch.equal(out[mask().expand_as(x)], x[mask().expand_as(x)])


def test_colorize_first_axis_is_luma() -> None:
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2))
    luma = torch.tensor(BT601)
    want = torch.einsum("c,bchw->bhw", luma, x) / luma.norm()
    torch.testing.assert_close(Colorize().transform(x)[:, 0], want, atol=1e-6, rtol=0)
    assert Colorize().measured(x).flatten().tolist() == [True, False, False]


@pytest.mark.parametrize("factor", [2, 4])
def test_superresolve_measures_block_means(factor: int) -> None:
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3))
    op = SuperResolve(factor)
    keep = op.measured(x).expand_as(x)
    measured = op.transform(x)[keep].view(1, 3, 8 // factor, 8 // factor)
    torch.testing.assert_close(measured, F.avg_pool2d(x, factor) * factor, atol=1e-5, rtol=0)
    assert keep.sum() == x.numel() // factor**2


def test_basis_with_first() -> None:
    first = torch.tensor([3.0, -1.0, 2.0, 0.5])
    q = basis_with_first(first).double()
    torch.testing.assert_close(q.T @ q, torch.eye(4, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(q[:, 0], (first / first.norm()).double(), atol=1e-6, rtol=0)


def test_operators_validate() -> None:
    with pytest.raises(ValueError):
        Inpaint(torch.zeros(8, 8, dtype=torch.bool))
    with pytest.raises(ValueError):
        Inpaint(mask()).measured(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError):
        SuperResolve(1)
    with pytest.raises(ValueError):
        SuperResolve(3).transform(torch.zeros(SHAPE))
