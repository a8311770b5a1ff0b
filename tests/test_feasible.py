"""editing.feasible: the result lies in [-1, 1] and keeps A x = A y up to 8-bit rounding (issue 34)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from editing import tasks
from editing.feasible import measured_error_levels, project_feasible
from editing.images import from_uint8, to_uint8
from editing.operators import Colorize, Inpaint, Operator, SuperResolve, replace

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


def saturated_reference(seed: int, size: int = 16, batch: int = 2) -> torch.Tensor:
    """An 8-bit image with white and black areas (the cases the clip hurts) and random colours."""
    g = torch.Generator().manual_seed(seed)
    levels = torch.randint(0, 256, (batch, 3, size, size), generator=g).float()
    levels[..., : size // 2, :] = 255.0  # saturated white
    levels[..., size // 2 :, : size // 4] = 0.0  # saturated black
    return levels / 127.5 - 1.0


def model_like_output(y: torch.Tensor, seed: int) -> torch.Tensor:
    """What the solver's last x0 looks like: y's measured part with a random, often out-of-range rest."""
    g = torch.Generator().manual_seed(seed)
    return (1.3 * torch.randn(y.shape, generator=g)).clamp(-1, 1)


def operators(size: int = 16) -> list[Operator]:
    mask = torch.zeros(1, 1, size, size, dtype=torch.bool)
    mask[..., 3:11, 4:13] = True
    return [Inpaint(mask), Colorize(), SuperResolve(2), SuperResolve(4)]


def eight_bit(x: torch.Tensor) -> torch.Tensor:
    return from_uint8(to_uint8(x))


@pytest.mark.parametrize("index", range(4))
def test_projection_is_in_the_box_and_keeps_the_measurement_after_8_bit_rounding(index: int) -> None:
    op = operators()[index]
    y = saturated_reference(index)
    x0 = model_like_output(y, 100 + index)
    out = project_feasible(op, x0, y)
    assert out.abs().max() <= 1.0
    # Exact in float up to the bisection's precision ...
    assert measured_error_levels(op, out, y).max() < 1e-3
    # ... and after rounding to bytes each pixel moves by at most half a level, so does a weighted mean.
    assert measured_error_levels(op, eight_bit(out), y).max() <= 0.5 + 1e-3
    if isinstance(op, Inpaint):
        kept = ~op.mask.expand(2, 3, -1, -1).permute(0, 2, 3, 1).numpy()
        assert (to_uint8(out)[kept] == to_uint8(y)[kept]).all()


@pytest.mark.parametrize("index", [1, 2, 3])
def test_clipping_the_plain_replacement_breaks_the_measurement(index: int) -> None:
    """The failure the projection fixes (so the test above exercises something): clip(replace) moves A x."""
    op = operators()[index]
    y = saturated_reference(index)
    plain = replace(op, model_like_output(y, 100 + index), y)
    assert plain.abs().max() > 1.0
    assert measured_error_levels(op, eight_bit(plain), y).max() > 5.0


@pytest.mark.parametrize("index", range(4))
def test_projection_is_idempotent_and_nearest(index: int) -> None:
    op = operators()[index]
    y = saturated_reference(10 + index)
    x0 = model_like_output(y, 200 + index)
    once = project_feasible(op, x0, y)
    twice = project_feasible(op, once, y)
    assert torch.allclose(once, twice, atol=1e-5)
    # y is feasible too: the projection is no farther from the replaced x than it (nor than the clip-then-
    # replace-then-clip iterate, the first round of alternating projections).
    v = replace(op, x0, y)
    pocs = project_feasible(op, replace(op, v.clamp(-1, 1), y).clamp(-1, 1), y)
    for other in (y, pocs):
        assert (once - v).flatten(1).norm(dim=1).le((other - v).flatten(1).norm(dim=1) + 1e-4).all()


@pytest.mark.parametrize("index", range(4))
def test_projection_is_a_no_op_on_feasible_points(index: int) -> None:
    op = operators()[index]
    y = saturated_reference(20 + index)
    assert torch.equal(project_feasible(op, y, y), y)
    # A mid-range y with a small change to its unmeasured part: replace keeps it in the box, nothing moves.
    g = torch.Generator().manual_seed(index)
    mid = 0.5 * y
    x = replace(op, mid + 0.05 * torch.randn(mid.shape, generator=g), mid)
    assert x.abs().max() < 1.0
    assert torch.equal(project_feasible(op, x, mid), x)


def test_only_the_out_of_range_blocks_move() -> None:
    """A block already feasible keeps its values (to float error) although another block needed the projection."""
    op = SuperResolve(2)
    y = torch.zeros(1, 3, 4, 4)
    x = y.clone()
    x[..., 0, 0], x[..., 0, 1] = 1.4, -1.4  # block (0, 0): mean 0 kept, but out of range
    x[..., 2, 2], x[..., 2, 3] = 0.3, -0.3  # block (1, 1): feasible
    out = project_feasible(op, x, y)
    assert out.abs().max() <= 1.0 and torch.allclose(out[..., 2:, 2:], x[..., 2:, 2:], atol=1e-6, rtol=0)
    assert measured_error_levels(op, out, y).max() < 1e-3


# -- end to end on the shipped model ---------------------------------------------------------------


@pytest.fixture(scope="module")
def cm():
    from editing.models import load_model, resolve_runtime

    return load_model(WEIGHTS / "emoji32-cm", resolve_runtime("cpu"))


def shipped_reference() -> torch.Tensor:
    """A held-out example emoji on white, with a black bar: saturated whites and blacks."""
    from editing.images import load_image

    y = load_image(str(Path(__file__).resolve().parents[1] / "app/examples/pineapple-noto.png"), 32).tensor
    y = y.clone()
    y[..., 26:30, 2:30] = -1.0
    return y


def test_shipped_edits_keep_the_measurement_in_the_8_bit_result(cm) -> None:
    y = shipped_reference()
    assert (y == 1).float().mean() > 0.2 and (y == -1).any()
    seeds = [0, 1]
    gray = eight_bit(y.mean(1, keepdim=True).expand(-1, 3, -1, -1))
    results = {"colorize": (Colorize(), gray, tasks.colorize(cm, gray, seeds, label=1))}
    for factor in (2, 4):
        low = eight_bit(torch.nn.functional.avg_pool2d(y, factor))
        results[f"x{factor}"] = (SuperResolve(factor), tasks.upsample_nearest(low, factor),
                                 tasks.superresolve(cm, low, factor, seeds, label=1))
    for name, (op, reference, out) in results.items():
        assert out.abs().max() <= 1.0, name
        assert measured_error_levels(op, eight_bit(out), reference).max() <= 1.0, name
    mask = torch.zeros(1, 1, 32, 32, dtype=torch.bool)
    mask[..., 8:24, 8:24] = True
    filled = tasks.inpaint(cm, y, mask, seeds, label=1)
    kept = ~mask[0, 0].numpy()
    assert (to_uint8(filled)[:, kept] == to_uint8(y)[:, kept]).all()


def test_benchmark_saved_table_before_and_after(tiny_model) -> None:
    """benchmarks.feasible on the tiny random model: the projected rows keep every level error within 0.5."""
    from benchmarks.common import Dataset
    from benchmarks.feasible import saved_table

    images = saturated_reference(5, size=16, batch=2)
    data = Dataset(images, ["twemoji", "twemoji"], ["heldout", "heldout"])
    table = saved_table(tiny_model, "", data, per_style=2)
    assert len(table.rows) == 8
    for row in table.rows:
        if row[1] == "projected (now)":
            assert row[2] == "0.00%" and row[7] <= 0.5 + 1e-3, row


@pytest.mark.parametrize("refine", [None, "default"])
def test_any_size_edits_on_a_tiny_model_keep_the_measurement_in_8_bits(tiny_model, refine) -> None:
    """Beyond R x R (tiles, colorize's reduced-size chroma with or without its refinement pass) too."""
    y = saturated_reference(30, size=40, batch=1)[..., :24]
    gray = eight_bit(y.mean(1, keepdim=True).expand(-1, 3, -1, -1))
    kwargs = {} if refine == "default" else {"refine": None}
    out = tasks.colorize(tiny_model, gray, [0, 1], label=0, schedule=tasks.Schedule((0, 20, 39), 40), **kwargs)
    assert out.abs().max() <= 1.0
    assert measured_error_levels(Colorize(), eight_bit(out), gray).max() <= 0.5 + 1e-3
    low = eight_bit(torch.nn.functional.avg_pool2d(y, 2))
    big = tasks.superresolve(tiny_model, low, 2, [0], label=0, schedule=tasks.Schedule((0, 20, 39), 40))
    assert measured_error_levels(SuperResolve(2), eight_bit(big), tasks.upsample_nearest(low, 2)).max() <= 0.5 + 1e-3
