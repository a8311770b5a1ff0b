"""CPU backends (editing.runtimes): OpenVINO gives the eager UNet's results within 1e-4, is cached on disk,
and loading falls back to eager where it is not installed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from editing import runtimes
from editing.models import load_model, resolve_runtime
from editing.runtimes import OpenVINOUNet, eager_unet, prepare_unet
from tests.conftest import make_tiny_folder

TOLERANCE = 1e-4  # max |diff| of x0 on the [-1, 1] scale, fp32 both ways


def inputs(model, batch: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    r = model.param.resolution
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, r, r, generator=g)
    sigma = torch.linspace(0.01, 80.0, batch)
    labels = torch.arange(batch) % len(model.param.class_names) if model.param.class_names else None
    return x, sigma, labels


@pytest.mark.skipif(not runtimes.openvino_available(), reason="openvino not installed")
@pytest.mark.parametrize("classes", [("a", "b"), ()])
def test_openvino_matches_eager_and_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               classes: tuple[str, ...]) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = make_tiny_folder(tmp_path / "tiny", classes=classes)
    eager = load_model(folder, resolve_runtime("cpu"))
    ov = load_model(folder, resolve_runtime("cpu", backend="openvino"))
    assert isinstance(ov.unet, OpenVINOUNet) and eager_unet(ov.unet) is not ov.unet
    cached = sorted(runtimes.default_cache_dir().glob("*.xml"))
    assert len(cached) == 1
    with torch.inference_mode():
        for batch in (1, 3):
            x, sigma, labels = inputs(eager, batch)
            assert float((ov(x, sigma, labels) - eager(x, sigma, labels)).abs().max()) < TOLERANCE
        big = torch.randn(2, ov.unet.config.in_channels, 2 * ov.unet.side, 2 * ov.unet.side)
        t = torch.full((2,), 0.3)
        kwargs = {"class_labels": torch.zeros(2, dtype=torch.long)} if classes else {}
        # another input size than the IR's runs the eager UNet itself: the same numbers, exactly
        assert torch.equal(ov.unet(big, t, **kwargs).sample, eager.unet(big, t, **kwargs).sample)
        x, sigma, labels = inputs(eager, runtimes.OPENVINO_MAX_BATCH + 1)  # and so does a batch above the routing's
        assert torch.equal(ov(x, sigma, labels), eager(x, sigma, labels))
    again = load_model(folder, resolve_runtime("cpu", backend="openvino"))  # reads the cached IR
    assert sorted(runtimes.default_cache_dir().glob("*.xml")) == cached
    x, sigma, labels = inputs(eager, 2)
    with torch.inference_mode():
        assert float((again(x, sigma, labels) - eager(x, sigma, labels)).abs().max()) < TOLERANCE


def test_falls_back_to_eager_without_openvino(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtimes, "openvino_available", lambda: False)
    model = load_model(tiny_model_dir, resolve_runtime("cpu", backend="openvino"))
    assert not isinstance(model.unet, OpenVINOUNet)


def test_backend_validated_and_bf16_stays_eager() -> None:
    with pytest.raises(ValueError, match="backend"):
        resolve_runtime("cpu", backend="tensorrt")
    with pytest.raises(ValueError, match="backend"):
        prepare_unet(torch.nn.Identity(), "bogus", 8)
    assert resolve_runtime("cpu", bf16=True, backend="openvino").backend == "eager"


@pytest.mark.skipif(not runtimes.openvino_available(), reason="openvino not installed")
def test_openvino_calls_from_several_threads_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The studio serves requests on several threads: each call must get its own answer.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = make_tiny_folder(tmp_path / "tiny", classes=())
    eager = load_model(folder, resolve_runtime("cpu"))
    ov = load_model(folder, resolve_runtime("cpu", backend="openvino"))
    cases = [inputs(eager, 1 + i % 3, seed=i) for i in range(16)]

    def run(case: tuple) -> torch.Tensor:
        with torch.inference_mode():
            return ov(*case)

    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(run, cases))
    with torch.inference_mode():
        for case, out in zip(cases, outs):
            assert float((out - eager(*case)).abs().max()) < TOLERANCE
