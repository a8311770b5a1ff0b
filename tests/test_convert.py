"""editing.convert / `python -m editing convert`: .bin checkpoint folders to safetensors, never running code."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from diffusers import UNet2DModel
from safetensors.torch import load_file

from editing.__main__ import main
from editing.convert import convert_folder
from editing.models import ModelLoadError, Runtime, load_model, verify_checksums


class Marker:
    """Unpickling this touches a file: proof that a loader ran code from a pickle."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.path,))


class Shell:
    """The classic attack: unpickling calls os.system (here a harmless command that leaves a file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.path}",))


def pipeline_folder(root: Path) -> Path:
    """A tiny OpenAI-style diffusers pipeline folder whose UNet is saved only as diffusion_pytorch_model.bin."""
    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, block_out_channels=(8, 16),
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       layers_per_block=1, norm_num_groups=4)
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(0.01 * torch.randn_like(p))
    unet.save_pretrained(root / "unet", safe_serialization=False)
    (root / "scheduler").mkdir()
    (root / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        {"_class_name": "CMStochasticIterativeScheduler", "sigma_min": 0.002, "sigma_max": 80.0}))
    (root / "model_index.json").write_text(json.dumps({"_class_name": "ConsistencyModelPipeline"}))
    return root


@pytest.fixture
def cpu() -> Runtime:
    return Runtime(torch.device("cpu"), torch.float32, None)


def test_bin_folder_is_refused_then_converted_and_loads(tmp_path: Path, cpu: Runtime,
                                                        capsys: pytest.CaptureFixture) -> None:
    folder = pipeline_folder(tmp_path / "cd_tiny")
    assert (folder / "unet" / "diffusion_pytorch_model.bin").is_file()
    with pytest.raises(ModelLoadError, match=r"pickle files are never loaded.*python -m editing convert"):
        load_model(folder, cpu)
    assert main(["convert", str(folder)]) == 0
    written = capsys.readouterr().out.split()
    assert str(folder / "unet" / "diffusion_pytorch_model.safetensors") in written
    sums = (folder / "SHA256SUMS").read_text()
    assert "unet/diffusion_pytorch_model.safetensors" in sums and "unet/config.json" in sums and ".bin" not in sums
    verify_checksums(folder)
    model = load_model(folder, cpu)
    original = torch.load(folder / "unet" / "diffusion_pytorch_model.bin", weights_only=True)
    for name, tensor in model.unet.state_dict().items():
        assert torch.equal(tensor, original[name]), name
    # The sums guard the converted weights like a shipped folder's.
    path = folder / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="sha256 does not match"):
        load_model(folder, cpu)


def test_existing_safetensors_are_kept_unless_overwrite(tmp_path: Path) -> None:
    folder = pipeline_folder(tmp_path / "cd_tiny")
    convert_folder(folder)
    with pytest.raises(ModelLoadError, match="already exists"):
        convert_folder(folder)
    assert convert_folder(folder, overwrite=True)


@pytest.mark.parametrize("payload", ["marker", "shell", "marker_in_torch_save", "not_a_tensor", "int_tensor"])
def test_a_bin_that_is_not_plain_tensors_is_refused_without_running_it(tmp_path: Path, payload: str) -> None:
    folder = pipeline_folder(tmp_path / "cd_tiny")
    proof = tmp_path / "ran"
    bin_path = folder / "unet" / "diffusion_pytorch_model.bin"
    state = torch.load(bin_path, weights_only=True)
    if payload == "marker":
        bin_path.write_bytes(pickle.dumps(Marker(proof)))
    elif payload == "shell":
        bin_path.write_bytes(pickle.dumps({"conv.weight": Shell(proof)}))
    elif payload == "marker_in_torch_save":
        torch.save({**state, "extra": Marker(proof)}, bin_path)
    elif payload == "not_a_tensor":
        torch.save({**state, "note": "hello"}, bin_path)
    else:
        torch.save({**state, "steps": torch.tensor([3])}, bin_path)
    assert main(["convert", str(folder)]) == 2
    with pytest.raises(ModelLoadError, match="refused"):
        convert_folder(folder)
    assert not proof.exists()
    assert not (folder / "unet" / "diffusion_pytorch_model.safetensors").exists()
    assert not (folder / "SHA256SUMS").exists()


def test_the_payloads_would_run_code(tmp_path: Path) -> None:
    """The refusal test can fail: plain unpickling of the same bytes does run them."""
    for cls, name in ((Marker, "a"), (Shell, "b")):
        pickle.loads(pickle.dumps(cls(tmp_path / name)))  # noqa: S301 - the point of the test
        assert (tmp_path / name).exists()


def test_folder_without_bin_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no .bin"):
        convert_folder(tmp_path)
    assert main(["convert", str(tmp_path / "missing")]) == 2
