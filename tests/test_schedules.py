"""Karras sigma grid (EDM Eq. 5), `ts` validation, parsing and the paper's presets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import CMStochasticIterativeScheduler

from editing.schedules import PRESETS, Schedule, karras_sigmas, parse_ts, uniform


def test_karras_monotone_endpoints_and_formula() -> None:
    sigmas = karras_sigmas(40)
    assert sigmas.dtype == torch.float64 and sigmas.shape == (40,)
    assert (sigmas[1:] < sigmas[:-1]).all()
    assert sigmas[0].item() == pytest.approx(80.0, rel=1e-12)
    assert sigmas[-1].item() == pytest.approx(0.002, rel=1e-12)
    i = np.arange(40)
    want = (80 ** (1 / 7) + i / 39 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    np.testing.assert_allclose(sigmas.numpy(), want, rtol=1e-12)


def test_karras_matches_diffusers() -> None:
    sched = CMStochasticIterativeScheduler(num_train_timesteps=40)
    np.testing.assert_allclose(karras_sigmas(40).numpy(), sched.sigmas.numpy(), rtol=1e-12)


@pytest.mark.parametrize("args", [(1,), (10, 0.0), (10, 1.0, 0.5)])
def test_karras_rejects_bad_grid(args: tuple) -> None:
    with pytest.raises(ValueError):
        karras_sigmas(*args)


def test_schedule_sigmas_descend_to_sigma_min() -> None:
    s = Schedule((0, 22, 39), 40).sigmas()
    assert len(s) == 3 and (s[1:] < s[:-1]).all()
    assert s[0].item() == pytest.approx(80.0) and s[-1].item() == pytest.approx(0.002)
    assert Schedule((0, 22, 39), 40).evaluations == 2


@pytest.mark.parametrize(
    "ts, n, match",
    [
        ((0, 30, 22, 39), 40, "ascending"),  # unsorted
        ((0, 22, 22, 39), 40, "ascending"),  # duplicate
        ((0, 22, 38), 40, "end"),  # wrong end
        ((0, 22, 40), 40, "end"),  # past the end
        ((-1, 22, 39), 40, ">= 0"),  # negative
        ((0, 22.0, 39), 40, "integers"),  # not an int
        ((0, True, 39), 40, "integers"),  # bool is not an index
        ((39,), 40, "at least 2"),  # too short
        ((), 40, "at least 2"),
        ((0, 1), 1, "at least 2"),  # grid too small
    ],
)
def test_schedule_rejects_bad_ts(ts: tuple, n: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Schedule(ts, n)


def test_parse_ts() -> None:
    assert parse_ts("0,22,39", 40) == Schedule((0, 22, 39), 40)
    assert parse_ts(" 0, 17 ,39 ", 40).ts == (0, 17, 39)
    for bad in ("0,x,39", "0;22;39", "0.5,39", ""):
        with pytest.raises(ValueError):
            parse_ts(bad, 40)
    with pytest.raises(ValueError, match="end"):
        parse_ts("0,22,39", 18)


def test_uniform() -> None:
    assert uniform(1, 40).ts == (0, 39)
    for steps in (1, 2, 3, 7, 39):
        s = uniform(steps, 40)
        assert s.evaluations == steps and s.ts[0] == 0 and s.ts[-1] == 39
    for bad in (0, 40):
        with pytest.raises(ValueError):
            uniform(bad, 40)


def test_presets() -> None:
    assert PRESETS["1 step"].ts == (0, 39)
    assert PRESETS["ImageNet64 CD 2-step"] == Schedule((0, 22, 39), 40)
    assert PRESETS["LSUN bedroom CD 2-step"] == Schedule((0, 17, 39), 40)
    assert PRESETS["editing 40"].ts == tuple(range(40))
    assert PRESETS["editing 18"] == Schedule(tuple(range(18)), 18)
    strokes = PRESETS["strokes"].sigmas()
    assert round(strokes[0].item(), 2) == 5.38
    assert round(strokes[1].item(), 2) == 2.24
    assert strokes[2].item() == pytest.approx(0.002)


def test_uniform_from_a_start_index_ends_at_the_grid_end() -> None:
    from editing.schedules import uniform

    assert uniform(2, 40, start=16).ts == (16, 28, 39)
    assert uniform(23, 40, start=16).ts == tuple(range(16, 40))
    with pytest.raises(ValueError, match="starting index"):
        uniform(1, 40, start=39)
    with pytest.raises(ValueError, match="steps must be between 1 and 23"):
        uniform(24, 40, start=16)
