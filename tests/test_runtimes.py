"""CPU backends (editing.runtimes): ONNX Runtime and OpenVINO give the eager UNet's results within 1e-4, are cached
on disk, serve several threads at once, and loading falls back to eager where a runtime is not installed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from editing import runtimes
from editing.models import cpu_has_native_bf16, load_model, resolve_runtime
from editing.precond import Denoiser
from editing.runtimes import ConvertedUNet, OnnxRuntimeUNet, OpenVINOUNet, eager_unet, prepare_unet, runtime_name
from tests.conftest import make_tiny_folder

TOLERANCE = 1e-4  # max |diff| of x0 on the [-1, 1] scale, fp32 both ways

CONVERTED = [
    pytest.param("onnxruntime", OnnxRuntimeUNet, "*.onnx", None,
                 marks=pytest.mark.skipif(not runtimes.onnxruntime_available(), reason="onnxruntime not installed")),
    pytest.param("openvino", OpenVINOUNet, "*.xml", runtimes.OPENVINO_MAX_BATCH,
                 marks=pytest.mark.skipif(not runtimes.openvino_available(), reason="openvino not installed")),
]


def inputs(model, batch: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    r = model.param.resolution
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, r, r, generator=g)
    sigma = torch.linspace(0.01, 80.0, batch)
    labels = torch.arange(batch) % len(model.param.class_names) if model.param.class_names else None
    return x, sigma, labels


@pytest.mark.parametrize("backend, kind, pattern, max_batch", CONVERTED)
@pytest.mark.parametrize("classes", [("a", "b"), ()])
def test_converted_matches_eager_and_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str,
                                               kind: type, pattern: str, max_batch: int | None,
                                               classes: tuple[str, ...]) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = make_tiny_folder(tmp_path / "tiny", classes=classes)
    eager = load_model(folder, resolve_runtime("cpu"))
    converted = load_model(folder, resolve_runtime("cpu", backend=backend))
    assert isinstance(converted.unet, kind) and eager_unet(converted.unet) is not converted.unet
    assert runtime_name(converted.unet) == backend and runtime_name(eager.unet) == "eager"
    cached = sorted(runtimes.default_cache_dir(backend).glob(pattern))
    assert len(cached) == 1
    assert not list(runtimes.default_cache_dir(backend).glob("*.tmp*"))  # written through a temporary name
    with torch.inference_mode():
        for batch in (1, 3, 12):
            x, sigma, labels = inputs(eager, batch)
            assert float((converted(x, sigma, labels) - eager(x, sigma, labels)).abs().max()) < TOLERANCE
        big = torch.randn(2, converted.unet.config.in_channels, 2 * converted.unet.side, 2 * converted.unet.side)
        t = torch.full((2,), 0.3)
        kwargs = {"class_labels": torch.zeros(2, dtype=torch.long)} if classes else {}
        # another input size than the converted one runs the eager UNet itself: the same numbers, exactly
        assert torch.equal(converted.unet(big, t, **kwargs).sample, eager.unet(big, t, **kwargs).sample)
        if max_batch is not None:  # and so does a batch above the backend's routing
            x, sigma, labels = inputs(eager, max_batch + 1)
            assert torch.equal(converted(x, sigma, labels), eager(x, sigma, labels))
    again = load_model(folder, resolve_runtime("cpu", backend=backend))  # reads the cached file
    assert sorted(runtimes.default_cache_dir(backend).glob(pattern)) == cached
    x, sigma, labels = inputs(eager, 2)
    with torch.inference_mode():
        assert float((again(x, sigma, labels) - eager(x, sigma, labels)).abs().max()) < TOLERANCE


@pytest.mark.parametrize("backend, available", [("onnxruntime", "onnxruntime_available"),
                                                ("openvino", "openvino_available")])
def test_falls_back_to_eager_without_the_runtime(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                 backend: str, available: str) -> None:
    monkeypatch.setattr(runtimes, available, lambda: False)
    model = load_model(tiny_model_dir, resolve_runtime("cpu", backend=backend))
    assert not isinstance(model.unet, ConvertedUNet) and runtime_name(model.unet) == "eager"


def test_backend_validated_and_bf16_runs_eager_or_openvino() -> None:
    with pytest.raises(ValueError, match="backend"):
        resolve_runtime("cpu", backend="tensorrt")
    with pytest.raises(ValueError, match="backend"):
        prepare_unet(torch.nn.Identity(), "bogus", 8)
    for backend in ("onnxruntime", "eager"):  # ONNX Runtime's CPU provider has no bf16: autocast, on eager
        rt = resolve_runtime("cpu", backend=backend, precision="bf16")
        assert rt.backend == "eager" and rt.autocast_dtype == torch.bfloat16
    rt = resolve_runtime("cpu", backend="openvino", precision="bf16")
    if runtimes.openvino_available():  # OpenVINO computes in bf16 itself: no autocast around it
        assert rt.backend == "openvino" and rt.autocast_dtype is None and rt.converted_dtype == torch.bfloat16
    else:
        assert rt.backend == "eager" and rt.autocast_dtype == torch.bfloat16


@pytest.mark.skipif(not runtimes.openvino_available(), reason="openvino not installed")
@pytest.mark.skipif(not cpu_has_native_bf16(), reason="no native bf16 on this CPU")
@pytest.mark.parametrize("classes", [("a", "b"), ()])
def test_openvino_bf16_errs_no_more_than_pytorch_autocast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           classes: tuple[str, ...]) -> None:
    """Against eager fp32, OpenVINO's bf16 moves x0 about as much as PyTorch's bf16 autocast (an independent bf16
    implementation) at every sigma up to sigma_max, where a bf16 time embedding moved it 6x more."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = make_tiny_folder(tmp_path / "tiny", classes=classes)
    eager = load_model(folder, resolve_runtime("cpu", backend="eager", precision="fp32"))
    autocast = Denoiser(eager.unet, eager.param, torch.bfloat16)
    fp32 = load_model(folder, resolve_runtime("cpu", backend="openvino", precision="fp32"))
    bf16 = load_model(folder, resolve_runtime("cpu", backend="openvino", precision="bf16"))
    assert isinstance(bf16.unet, OpenVINOUNet) and bf16.autocast_dtype is None
    assert bf16.unet.precision == torch.bfloat16 and fp32.unet.precision == torch.float32
    # one IR on disk serves both precisions: the precision is chosen when it is compiled
    assert len(list(runtimes.default_cache_dir("openvino").glob("*.xml"))) == 1
    with torch.inference_mode():
        x, sigma, labels = inputs(eager, runtimes.OPENVINO_MAX_BATCH + 4)  # bf16 takes every batch
        reference = eager(x, sigma, labels)
        ours = (bf16(x, sigma, labels) - reference).abs().flatten(1)
        theirs = (autocast(x, sigma, labels) - reference).abs().flatten(1)
        assert float(ours.max()) > 10 * float((fp32(x, sigma, labels) - reference).abs().max())  # bf16 did run
        assert float(ours.mean()) < 1.5 * float(theirs.mean())
        assert bool((ours.max(1).values < 2 * theirs.max(1).values + 1e-3).all())  # per image: at each sigma


@pytest.mark.parametrize("backend, kind, pattern, max_batch", CONVERTED)
def test_converted_calls_from_several_threads_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      backend: str, kind: type, pattern: str,
                                                      max_batch: int | None) -> None:
    # The studio serves requests on several threads: each call must get its own answer.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = make_tiny_folder(tmp_path / "tiny", classes=())
    eager = load_model(folder, resolve_runtime("cpu"))
    converted = load_model(folder, resolve_runtime("cpu", backend=backend))
    assert isinstance(converted.unet, kind)
    cases = [inputs(eager, 1 + i % 3, seed=i) for i in range(16)]

    def run(case: tuple) -> torch.Tensor:
        with torch.inference_mode():
            return converted(*case)

    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(run, cases))
    with torch.inference_mode():
        for case, out in zip(cases, outs):
            assert float((out - eager(*case)).abs().max()) < TOLERANCE
