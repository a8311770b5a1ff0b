"""Tuned multistep schedules: the greedy search, the schedules.json format, and who uses it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app import forms
from app.studio import Studio
from editing import images, tasks
from editing.models import ModelLoadError, Runtime, load_model, read_schedules
from editing.schedules import PRESETS, Schedule, uniform
from editing.__main__ import main as cli
from tests.app_server import make_weights
from tests.test_training import make_dataset
from training.tune_ts import greedy_ts, main, swd_score, write_schedules


def as_tensor(picture: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(picture.convert("RGB"))).permute(2, 0, 1).float() / 127.5 - 1


def distance_to(target: tuple[int, ...]):
    """A score whose best k-step ts is known: how far the inner indices are from target's, plus a penalty
    for each missing one."""
    def score(schedule: Schedule) -> float:
        inner = schedule.ts[1:-1]
        return sum(min(abs(t - g) for g in target) for t in inner) + 100 * (len(target) - len(inner))
    return score


def test_greedy_finds_the_best_schedule_of_each_length() -> None:
    calls = []

    def score(schedule: Schedule) -> float:
        calls.append(schedule)
        return distance_to((17, 29))(schedule)

    results = greedy_ts(score, 40, 3, stride=3, log=lambda _: None)
    assert [s.ts for s, _ in results] == [(0, 39), (0, 17, 39), (0, 17, 29, 39)]
    assert [v for _, v in results] == [200, 100, 0]
    assert all(s.n == 40 and s.evaluations == k for k, (s, _) in enumerate(results, start=1))
    # 17 and 29 are not multiples of the stride's grid (1, 4, 7, ...): the refinement found them, and the
    # search scored about n / stride + 2 schedules per step, not n.
    assert len(calls) <= 1 + 2 * (38 // 3 + 1 + 2)


def test_an_extended_search_equals_an_uninterrupted_one() -> None:
    score = distance_to((17, 29))
    whole = greedy_ts(score, 40, 3, stride=3, log=lambda _: None)
    calls = []
    rest = greedy_ts(lambda s: calls.append(s) or score(s), 40, 3, stride=3, log=lambda _: None, done=whole[:2])
    assert rest == whole
    assert all(s.evaluations == 3 for s in calls)  # steps 1 and 2 were not searched again
    with pytest.raises(ValueError, match="1..m steps"):
        greedy_ts(score, 40, 3, log=lambda _: None, done=whole[1:])


def test_greedy_rejects_impossible_requests() -> None:
    with pytest.raises(ValueError, match="max_steps"):
        greedy_ts(lambda s: 0.0, 5, 5, log=lambda _: None)
    with pytest.raises(ValueError, match="stride"):
        greedy_ts(lambda s: 0.0, 40, 2, stride=0, log=lambda _: None)


def test_schedules_json_round_trips(tmp_path: Path) -> None:
    results = [(Schedule((0, 39), 40), 0.5), (Schedule((0, 17, 39), 40), 0.25)]
    path = write_schedules(tmp_path, results, "test")
    assert json.loads(path.read_text())["score"] == {"1": 0.5, "2": 0.25}
    assert read_schedules(tmp_path) == {1: results[0][0], 2: results[1][0]}
    assert read_schedules(tmp_path / "elsewhere") == {}  # no file: no tuned schedules


@pytest.mark.parametrize("content, message", [
    ("{", "not valid JSON"),
    ('{"ts": {"2": [0, 17, 39]}}', "missing key 'n'"),
    ('{"n": 40, "ts": [[0, 17, 39]]}', "must map"),
    ('{"n": 40, "ts": {"3": [0, 17, 39]}}', "3 \\+ 1 indices"),
    ('{"n": 40, "ts": {"2": [5, 17, 39]}}', "start at 0"),
    ('{"n": 40, "ts": {"2": [0, 39, 17]}}', "ascending"),
    ('{"n": 40, "ts": {"2": "0,17,39"}}', "list of indices"),
    ('{"n": 40, "ts": {"two": [0, 17, 39]}}', "start at 0 and have two"),
])
def test_a_broken_schedules_json_names_the_file(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "schedules.json").write_text(content)
    with pytest.raises(ModelLoadError, match=f"schedules.json.*{message}"):
        read_schedules(tmp_path)


def test_a_step_count_takes_the_tuned_ts_and_nothing_else_does() -> None:
    tuned = {2: Schedule((0, 17, 39), 40)}
    assert forms.parse_steps_or_ts("2", None, tuned=tuned) == tuned[2]
    assert forms.parse_steps_or_ts(2, None, tuned=tuned) == tuned[2]
    assert forms.parse_steps_or_ts("3", None, tuned=tuned) == uniform(3, 40)
    assert forms.parse_steps_or_ts("0,22,39", None, tuned=tuned).ts == (0, 22, 39)
    assert forms.parse_steps_or_ts("ImageNet64 CD 2-step", None, tuned=tuned) == PRESETS["ImageNet64 CD 2-step"]
    assert forms.parse_steps_or_ts("2", None) == uniform(2, 40)


def test_tuning_a_tiny_model_end_to_end(tmp_path: Path, tiny_model_dir: Path, cpu_runtime: Runtime,
                                        capsys: pytest.CaptureFixture) -> None:
    data = make_dataset(tmp_path / "data")
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    score = swd_score(load_model(model, cpu_runtime), data, samples_per_style=4, batch=4)
    one, two = score(PRESETS["1 step"]), score(Schedule((0, 20, 39), 40))
    assert one > 0 and two > 0 and one != two  # the score sees the schedule
    assert score(PRESETS["1 step"]) == one  # and is deterministic
    main(["--model", str(model), "--data", str(data), "--max-steps", "2", "--grid", "8", "--samples-per-style", "4",
          "--stride", "2", "--device", "cpu"])
    tuned = read_schedules(model)
    assert sorted(tuned) == [1, 2] and tuned[2].n == 8 and tuned[2].ts[0] == 0
    assert "wrote" in capsys.readouterr().out
    # --extend continues from the folder's schedules.json to what one longer search gives.
    straight = shutil.copytree(tiny_model_dir, tmp_path / "straight")
    common = ["--data", str(data), "--max-steps", "3", "--grid", "8", "--samples-per-style", "4", "--stride", "2",
              "--device", "cpu"]
    main(["--model", str(model), "--extend", *common])
    main(["--model", str(straight), *common])
    assert read_schedules(model) == read_schedules(straight) and sorted(read_schedules(model)) == [1, 2, 3]
    assert "for steps 3-3, added by --extend" in json.loads((model / "schedules.json").read_text())["note"]
    with pytest.raises(SystemExit):  # nothing to extend
        main(["--model", str(shutil.copytree(tiny_model_dir, tmp_path / "bare")), "--extend", *common])


def test_the_studio_and_the_cli_use_the_tuned_ts(tmp_path: Path, cpu_runtime: Runtime,
                                                 capsys: pytest.CaptureFixture) -> None:
    weights = make_weights(tmp_path / "weights")
    write_schedules(weights / "tiny-cm", [(Schedule((0, 39), 40), 1.0), (Schedule((0, 9, 39), 40), 0.5)], "test")
    studio = Studio.from_weights(weights, cpu_runtime, out_dir=tmp_path / "out")
    result = studio.generate("tiny-cm", "noto", 5, 1, "2")
    assert any("ts = [0, 9, 39]" in n and "tuned for this model" in n for n in result.notes)
    model = load_model(weights / "tiny-cm", cpu_runtime)
    tuned, even = Schedule((0, 9, 39), 40), uniform(2, 40)
    expected = tasks.generate(model, [5], schedule=tuned, label=1)
    assert (as_tensor(result.images[0]) - expected[0]).abs().max() <= 1 / 127.5 + 1e-6  # up to 8-bit rounding
    assert (as_tensor(result.images[0]) - tasks.generate(model, [5], schedule=even, label=1)[0]).abs().max() > 0.05
    compare = studio.compare("tiny-cm", "noto", 5, None)
    assert "ts tuned for this model: 2 -> [0, 9, 39]; 3 -> [0, 13, 26, 39]; 4 -> [0, 10, 20, 29, 39]; " \
           "8 -> [0, 5, 10, 15, 20, 24, 29, 34, 39]" in compare.notes
    # A broken schedules.json costs the tuned ts, not the model.
    (weights / "tiny-cm" / "schedules.json").write_text("{")
    assert Studio.from_weights(weights, cpu_runtime, out_dir=tmp_path / "out").entry("tiny-cm").schedules == {}
    write_schedules(weights / "tiny-cm", [(Schedule((0, 39), 40), 1.0), (tuned, 0.5)], "test")

    out = tmp_path / "cli.png"
    assert cli(["generate", "--model", str(weights / "tiny-cm"), "--class", "noto", "--seed", "5", "--steps", "2",
                "--device", "cpu", "--precision", "fp32", "--out", str(out)]) == 0
    assert (as_tensor(Image.open(out)) - expected[0]).abs().max() <= 1 / 127.5 + 1e-6
    assert cli(["generate", "--model", str(weights / "tiny-cm"), "--class", "noto", "--seed", "5", "--steps", "2",
                "--grid", "41", "--device", "cpu", "--out", str(out)]) == 0  # another grid: even ts on it
    assert (as_tensor(Image.open(out)) - expected[0]).abs().max() > 0.05
    (weights / "tiny-cm" / "schedules.json").write_text('{"n": 40}')
    assert cli(["generate", "--model", str(weights / "tiny-cm"), "--steps", "2", "--device", "cpu",
                "--out", str(out)]) == 0
    assert "ignoring tuned schedules" in capsys.readouterr().err
