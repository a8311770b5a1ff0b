"""Loading a broken model folder gives one clear ModelLoadError that names the file; nothing is ever unpickled."""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from editing.models import PARAM_NAME, SUMS_NAME, WEIGHTS_NAME, ModelLoadError, Runtime, load_model, sha256_file

Mutation = Callable[[Path, Path], None]  # (model folder, a scratch folder outside it)


class Marker:
    """Unpickling this touches a file: proof that a loader ran code from a pickle."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.path,))


def _drop_sums(folder: Path) -> None:
    (folder / SUMS_NAME).unlink()


def _rewrite_sums(folder: Path) -> None:
    """Recompute SHA256SUMS, as someone assembling a folder by hand would."""
    names = [n for n in ("config.json", WEIGHTS_NAME, PARAM_NAME) if (folder / n).is_file()]
    (folder / SUMS_NAME).write_text("".join(f"{sha256_file(folder / n)}  {n}\n" for n in names))


def _edit_json(folder: Path, name: str, **changes: object) -> None:
    path = folder / name
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))
    _rewrite_sums(folder)


def _edit_weights(folder: Path, edit: Callable[[dict[str, torch.Tensor]], None]) -> None:
    state = load_file(folder / WEIGHTS_NAME)
    edit(state)
    save_file(state, folder / WEIGHTS_NAME)
    _rewrite_sums(folder)


def _first_conv(state: dict[str, torch.Tensor]) -> str:
    return next(k for k, v in state.items() if v.ndim == 4)


def _pickle_only(folder: Path, scratch: Path) -> None:
    (folder / WEIGHTS_NAME).unlink()
    (folder / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps(Marker(scratch / "ran")))
    _rewrite_sums(folder)


def _pickle_renamed(folder: Path, scratch: Path) -> None:
    (folder / WEIGHTS_NAME).write_bytes(pickle.dumps(Marker(scratch / "ran")))
    _rewrite_sums(folder)


def _truncate(folder: Path) -> None:
    data = (folder / WEIGHTS_NAME).read_bytes()
    (folder / WEIGHTS_NAME).write_bytes(data[: len(data) // 2])
    _rewrite_sums(folder)


def _bad_header(folder: Path) -> None:
    data = (folder / WEIGHTS_NAME).read_bytes()
    (folder / WEIGHTS_NAME).write_bytes((10**12).to_bytes(8, "little") + data[8:])  # header "a terabyte long"
    _rewrite_sums(folder)


def _wrong_shape(state: dict[str, torch.Tensor]) -> None:
    key = _first_conv(state)
    state[key] = torch.zeros(state[key].shape[0] + 1, *state[key].shape[1:])


def _nan(state: dict[str, torch.Tensor]) -> None:
    state[_first_conv(state)][0] = float("nan")


def _integer(state: dict[str, torch.Tensor]) -> None:
    key = _first_conv(state)
    state[key] = state[key].to(torch.int32)


def _missing_tensor(state: dict[str, torch.Tensor]) -> None:
    del state[_first_conv(state)]


def _extra_tensor(state: dict[str, torch.Tensor]) -> None:
    state["surprise.weight"] = torch.zeros(3)


CASES: list[tuple[str, Mutation, str]] = [
    ("missing folder", lambda f, s: shutil.rmtree(f), "model folder not found"),
    ("a file instead of a folder", lambda f, s: (shutil.rmtree(f), f.write_text("hi")), "model folder not found"),
    ("missing config (no checksums)", lambda f, s: (_drop_sums(f), (f / "config.json").unlink()),
     r"no config\.json"),
    ("missing config (listed in SHA256SUMS)", lambda f, s: (f / "config.json").unlink(),
     r"config\.json: listed in .*SHA256SUMS but missing"),
    ("corrupt config JSON", lambda f, s: ((f / "config.json").write_text("{not json"), _rewrite_sums(f)),
     r"config\.json: not valid JSON"),
    ("config is a JSON list", lambda f, s: ((f / "config.json").write_text("[1, 2]"), _rewrite_sums(f)),
     r"config\.json: expected a JSON object"),
    ("config of the wrong class", lambda f, s: _edit_json(f, "config.json", _class_name="UNet2DConditionModel"),
     r"config\.json: expected a UNet2DModel"),
    ("config that cannot build a UNet", lambda f, s: _edit_json(f, "config.json", down_block_types=["NoSuchBlock"]),
     r"config\.json: cannot build UNet2DModel"),
    ("config mismatched with the weights", lambda f, s: _edit_json(f, "config.json", layers_per_block=3),
     rf"{WEIGHTS_NAME}: weights do not match .*config\.json"),
    ("corrupt parameterization", lambda f, s: ((f / PARAM_NAME).write_text("{"), _rewrite_sums(f)),
     rf"{PARAM_NAME}: not valid JSON"),
    ("unknown parameterization key", lambda f, s: _edit_json(f, PARAM_NAME, warp_speed=9),
     rf"{PARAM_NAME}: unknown parameterization keys"),
    ("class names not matching the UNet", lambda f, s: _edit_json(f, PARAM_NAME, class_names=["a", "b"]),
     "2 class names but the UNet has 3"),
    ("missing weights", lambda f, s: ((f / WEIGHTS_NAME).unlink(), _rewrite_sums(f)),
     rf"{WEIGHTS_NAME}: file not found"),
    ("a .bin pickle only (never loaded)", _pickle_only,
     r"holds only diffusion_pytorch_model\.bin: pickle files are never loaded"),
    ("a pickle renamed .safetensors", _pickle_renamed, rf"{WEIGHTS_NAME}: not a readable safetensors file"),
    ("truncated safetensors", lambda f, s: _truncate(f), rf"{WEIGHTS_NAME}: not a readable safetensors file"),
    ("safetensors header claiming a terabyte", lambda f, s: _bad_header(f),
     rf"{WEIGHTS_NAME}: not a readable safetensors file"),
    ("tensor of the wrong shape", lambda f, s: _edit_weights(f, _wrong_shape), "size mismatch"),
    ("missing tensor", lambda f, s: _edit_weights(f, _missing_tensor), "Missing key"),
    ("unexpected tensor", lambda f, s: _edit_weights(f, _extra_tensor), "Unexpected key"),
    ("NaN in the weights", lambda f, s: _edit_weights(f, _nan), "not finite floating-point"),
    ("integer weights", lambda f, s: _edit_weights(f, _integer), "not finite floating-point"),
    ("SHA256SUMS mismatch (one flipped byte)",
     lambda f, s: (f / WEIGHTS_NAME).write_bytes(_flip((f / WEIGHTS_NAME).read_bytes())),
     rf"{WEIGHTS_NAME}: sha256 does not match"),
    ("SHA256SUMS malformed line", lambda f, s: (f / SUMS_NAME).write_text("deadbeef\n"), "line 1 is not"),
    ("SHA256SUMS naming a file outside the folder",
     lambda f, s: (f / SUMS_NAME).write_text(f"{'0' * 64}  ../../etc/passwd\n"), "line 1 is not"),
]


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


@pytest.mark.parametrize("description,mutate,words", CASES, ids=[c[0] for c in CASES])
def test_broken_folder_gives_a_clear_error(tiny_model_dir: Path, tmp_path: Path, cpu_runtime: Runtime,
                                            description: str, mutate: Mutation, words: str) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    mutate(folder, scratch)
    with pytest.raises(ModelLoadError, match=words) as info:
        load_model(folder, cpu_runtime)
    message = str(info.value)
    assert str(folder) in message or str(tmp_path) in message, message  # names the file or folder
    assert "Traceback" not in message
    assert not (scratch / "ran").exists(), "a pickle was unpickled"


def test_the_marker_pickle_would_run_code(tmp_path: Path) -> None:
    """Sanity check of the test itself: loading the marker with pickle does touch the file."""
    pickle.loads(pickle.dumps(Marker(tmp_path / "ran")))
    assert (tmp_path / "ran").exists()


def test_untouched_copy_loads(tiny_model_dir: Path, tmp_path: Path, cpu_runtime: Runtime) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    load_model(folder, cpu_runtime)
    _drop_sums(folder)  # checksums are optional for folders assembled by hand
    load_model(folder, cpu_runtime)
