"""Training on a tiny net and synthetic data: losses decrease, resume is bit-identical, export loads, DDP runs."""

from __future__ import annotations

import copy
import json
import math
import os
import socket
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from editing.models import Runtime, load_model, save_model
from editing.precond import Denoiser, Parameterization
from tests.conftest import make_tiny_folder
from training.adversarial import AdversarialLoss, Discriminator, teacher_features
from training.data import STYLES
from training.losses import CDLoss, CTLoss, ECTLoss, EDMLoss, ct_discretization
from training.nets import build_unet, random_denoiser
from training.checkpoints import export, export_compact, load_compact, save_compact
from training.train import TrainConfig, backward_accumulated, build_models, config_from_dict, lr_at, train

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def make_dataset(folder: Path, n: int = 48, size: int = 16) -> Path:
    """Coloured squares on white, labelled with the three styles."""
    rng = np.random.default_rng(0)
    images = np.full((n, size, size, 3), 255, dtype=np.uint8)
    records = []
    for i in range(n):
        a, b = sorted(rng.integers(0, size, 2))
        images[i, a : b + 1, a : b + 1] = rng.integers(0, 255, 3)
        records.append({"style": STYLES[i % 3], "split": "train" if i % 8 else "heldout", "codepoints": f"{i:x}",
                        "identity": f"{i:x}", "category": "test", "source_file": "synthetic"})
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "images.npy", images)
    (folder / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def tiny_denoiser(boundary: str = "edm", seed: int = 0) -> Denoiser:
    return random_denoiser("tiny", 16, STYLES, seed=seed, boundary=boundary)


def fixed_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 3, 16, 16, generator=g) * 2 - 1
    return x, torch.arange(8) % 3


def fit(loss_fn, model: Denoiser, steps: int = 40) -> tuple[float, float]:
    """Loss on a fixed batch with fixed noise (the generator is re-seeded), before and after Adam steps."""
    opt = torch.optim.Adam(model.unet.parameters(), lr=2e-3)
    losses = []
    for _ in range(steps):
        loss = loss_fn(model, torch.Generator().manual_seed(7))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses[0], losses[-1]


def test_edm_loss_decreases() -> None:
    x, y = fixed_batch()
    first, last = fit(lambda m, g: EDMLoss()(m, x, y, g), tiny_denoiser("edm"))
    assert last < 0.7 * first


def test_ct_loss_decreases() -> None:
    x, y = fixed_batch()
    first, last = fit(lambda m, g: CTLoss()(m, x, y, g, n=11), tiny_denoiser("cm"))
    assert last < 0.7 * first


def test_cd_loss_decreases() -> None:
    x, y = fixed_batch()
    teacher = tiny_denoiser("edm", seed=3).requires_grad_(False)
    student = tiny_denoiser("cm", seed=4)
    target = copy.deepcopy(student).requires_grad_(False)
    first, last = fit(lambda m, g: CDLoss(n=6)(m, target, teacher, x, y, g), student)
    assert last < 0.7 * first


def test_teacher_features_are_the_unets_own_activations() -> None:
    """teacher_features must see what the full forward of Denoiser does (its hooks stop it after the mid block)."""
    teacher = make_teacher()
    x, y = fixed_batch()
    sigma = torch.linspace(0.1, 5.0, 8)
    seen: list[torch.Tensor] = []
    unet = teacher.unet
    modules = [unet.down_blocks[0].resnets[-1], *unet.down_blocks, unet.mid_block]
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o[0] if isinstance(o, tuple) else o))
             for m in modules]
    with torch.no_grad():
        teacher(x, sigma, y, boundary="edm")
    for h in hooks:
        h.remove()
    features = teacher_features(teacher, x, sigma, y)
    assert len(features) == len(modules)
    for got, want in zip(features, seen, strict=True):
        torch.testing.assert_close(got, want.float(), rtol=0, atol=0)


def make_teacher() -> Denoiser:
    teacher = tiny_denoiser("edm", seed=3).requires_grad_(False)
    with torch.no_grad():  # diffusers zero-initializes some convs; perturb so every feature depends on the input
        for p in teacher.unet.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return teacher


def test_discriminator_loss_decreases() -> None:
    """The heads learn to tell a fixed real batch from a fixed fake one through the frozen teacher."""
    teacher = make_teacher()
    real, y = fixed_batch()
    fake = torch.tanh(3 * torch.randn(real.shape, generator=torch.Generator().manual_seed(5)))
    torch.manual_seed(0)
    disc = Discriminator.for_teacher(teacher)
    opt = torch.optim.Adam(disc.parameters(), lr=2e-3, betas=(0.0, 0.99))
    before = [p.clone() for p in teacher.unet.parameters()]
    losses = []
    for _ in range(40):
        loss = AdversarialLoss().discriminator_loss(disc, teacher, real, fake, y, torch.Generator().manual_seed(7))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    with torch.no_grad():  # it separates them the right way round, at noise it was not fitted on
        d_real = AdversarialLoss().logits(disc, teacher, real, y, torch.Generator().manual_seed(8))
        d_fake = AdversarialLoss().logits(disc, teacher, fake, y, torch.Generator().manual_seed(8))
    assert d_real.mean() > 0 > d_fake.mean()
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.unet.parameters()))


def test_generator_loss_decreases_and_moves_only_the_student() -> None:
    """-D(f(sigma_max z)) falls as the student trains against fixed heads; the teacher gets no gradient."""
    teacher = make_teacher()
    torch.manual_seed(0)
    disc = Discriminator.for_teacher(teacher).requires_grad_(False)
    student = tiny_denoiser("cm", seed=4)
    _, y = fixed_batch()
    z = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(6))

    def loss_fn(model: Denoiser, g: torch.Generator) -> torch.Tensor:
        fake = model(80.0 * z, torch.full((8,), 80.0), y)
        return AdversarialLoss().generator_loss(disc, teacher, fake, y, g)

    def fake_logits() -> float:
        with torch.no_grad():
            fake = student(80.0 * z, torch.full((8,), 80.0), y)
            return AdversarialLoss().logits(disc, teacher, fake, y, torch.Generator().manual_seed(7)).mean().item()

    before = fake_logits()
    first, last = fit(loss_fn, student)
    assert last < first - 0.1 * abs(first)
    after = fake_logits()
    assert after > before + 0.1  # the loss fell because D now scores the samples higher
    assert all(p.grad is None for p in teacher.unet.parameters())
    assert all(p.grad is None for p in disc.parameters())


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode must be one of edm, ct, ect, cd"):
        TrainConfig(mode="kd")


def test_ect_loss_decreases() -> None:
    x, y = fixed_batch()
    first, last = fit(lambda m, g: ECTLoss()(m, x, y, g, images_seen=3, total_images=8), tiny_denoiser("cm"))
    assert last < 0.7 * first


def test_ect_pairs_start_at_sigma_min_and_tighten_by_half_per_stage() -> None:
    """ECT's r = t (1 - n(t) / 2^a): stage 0 is denoising (r = sigma_min), then dt / t halves each stage."""
    t = torch.tensor([0.01, 0.5, 2.0, 80.0])
    ect = ECTLoss()
    assert torch.equal(ect.r_of(t, 0, 800, 0.002), torch.full((4,), 0.002))
    gaps = [(t - ect.r_of(t, images, 800, 0.002)) / t for images in (300, 400, 500)]  # stages 3, 4, 5
    assert ((gaps[0] > 0) & (gaps[0] < 1)).all()
    torch.testing.assert_close(gaps[1], gaps[0] / 2)
    torch.testing.assert_close(gaps[2], gaps[0] / 4)
    assert (ect.r_of(t, 800, 800, 0.002) < t).all()


def test_ect_from_a_teacher_trains_and_resumes_bit_identically(tmp_path: Path) -> None:
    teacher = make_tiny_folder(tmp_path / "teacher", boundary="edm", seed=5)
    a = assert_resume_is_bit_identical(_cfg(tmp_path, mode="ect", init=str(teacher), ct_total_images=32), tmp_path)
    start = load_file(teacher / "diffusion_pytorch_model.safetensors")
    assert not torch.equal(a["model.conv_out.weight"], start["conv_out.weight"])  # it trained
    assert json.loads((tmp_path / "halves" / "checkpoint.json").read_text())["param"]["boundary"] == "cm"


def test_ct_curriculum_doubles_and_caps() -> None:
    ns = [ct_discretization(k, 1_000_000) for k in range(0, 1_000_000, 10_000)]
    assert ns[0] == 11 and ns[-1] == 1281
    assert all(b >= a for a, b in zip(ns, ns[1:]))


def _cfg(tmp_path: Path, **kw) -> TrainConfig:
    data = make_dataset(tmp_path / "data")
    base = TrainConfig(mode="edm", data=str(data), run_dir=str(tmp_path / "run"), unet="tiny", batch=4,
                       warmup_images=16, total_images=32, checkpoint_minutes=1e9, bf16=False, seed=3)
    return replace(base, **kw)


def test_the_learning_rate_warms_up_decays_and_cools_down_to_zero_at_the_end() -> None:
    cfg = TrainConfig(lr=1e-3, warmup_images=100, lr_decay_images=400, lr_cooldown_images=1000, total_images=3600)
    assert lr_at(cfg, 49) == pytest.approx(0.5e-3)  # half way up the warm-up
    assert lr_at(cfg, 400) == pytest.approx(1e-3)
    assert lr_at(cfg, 1600) == pytest.approx(0.5e-3)  # 1 / sqrt(1600 / 400)
    assert lr_at(cfg, 2600) == pytest.approx(1e-3 / math.sqrt(2600 / 400))  # where the cooldown starts
    assert lr_at(cfg, 3100) == pytest.approx(0.5 * 1e-3 / math.sqrt(3100 / 400))  # half way down it
    assert lr_at(cfg, 3600) == 0.0
    assert lr_at(replace(cfg, lr_cooldown_images=0), 3100) == pytest.approx(1e-3 / math.sqrt(3100 / 400))


def test_accumulated_gradient_is_the_full_batch_gradient() -> None:
    model = tiny_denoiser()
    x, y = fixed_batch()
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    sigma = torch.full((8,), 0.7)

    def loss_of(rows: slice) -> torch.Tensor:
        return ((model(x[rows] + 0.7 * noise[rows], sigma[rows], y[rows]) - x[rows]) ** 2).mean()

    full = loss_of(slice(0, 8))
    full.backward()
    want = [p.grad.clone() for p in model.unet.parameters()]
    model.unet.zero_grad(set_to_none=True)
    quarters = iter([slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 8)])
    mean = backward_accumulated(model, lambda: loss_of(next(quarters)), 4)
    assert mean == pytest.approx(full.item(), rel=1e-5)
    for got, ref in zip((p.grad for p in model.unet.parameters()), want):
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="at least 1"):
        backward_accumulated(model, lambda: loss_of(slice(0, 8)), 0)


def assert_resume_is_bit_identical(cfg: TrainConfig, tmp_path: Path) -> dict[str, torch.Tensor]:
    """Train cfg straight through (run folder `straight`), and again stopped at 16 images then resumed to
    cfg.total_images (`halves`): the two final checkpoints must match tensor by tensor. Returns the first."""
    train(replace(cfg, run_dir=str(tmp_path / "straight")), CPU)
    halves = replace(cfg, run_dir=str(tmp_path / "halves"), total_images=16)
    train(halves, CPU)
    train(replace(halves, total_images=cfg.total_images), CPU, resume=True)
    a = load_file(tmp_path / "straight" / "checkpoint.safetensors")
    b = load_file(tmp_path / "halves" / "checkpoint.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    return a


@pytest.mark.parametrize("accumulate", [1, 2])
def test_resume_is_bit_identical(tmp_path: Path, accumulate: int) -> None:
    assert_resume_is_bit_identical(_cfg(tmp_path, accumulate=accumulate), tmp_path)
    meta = json.loads((tmp_path / "halves" / "checkpoint.json").read_text())
    assert meta["images"] == 32 and meta["step"] == 8 // accumulate


def test_the_logged_rate_is_the_resumed_processs_own(tmp_path: Path) -> None:
    # A run whose first session took 100 hours (say, elsewhere): the resumed process logs its own images per
    # second, not the run's 32 images over 100 hours, while `hours` still counts the whole run.
    cfg = _cfg(tmp_path, total_images=16)
    train(cfg, CPU)
    meta_path = Path(cfg.run_dir) / "checkpoint.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "seconds": 360_000.0}))
    train(replace(cfg, total_images=32), CPU, resume=True)
    last = json.loads((Path(cfg.run_dir) / "log.jsonl").read_text().splitlines()[-1])
    assert last["images"] == 32 and last["hours"] > 100
    assert last["img_per_s"] > 1.0  # 16 images of a tiny net in under 16 s; 32 / 360000 s before the fix


def test_export_then_load_gives_same_outputs(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    train(cfg, CPU)
    (tmp_path / "exported").mkdir()
    (tmp_path / "exported" / "schedules.json").write_text('{"n": 40, "ts": {"2": [0, 21, 39]}}')
    export(Path(cfg.run_dir), tmp_path / "exported")
    assert not (tmp_path / "exported" / "schedules.json").exists()  # tuned for the weights it replaced
    loaded = load_model(tmp_path / "exported", Runtime(torch.device("cpu"), torch.float32, None))
    assert loaded.param.boundary == "edm" and loaded.param.class_names == STYLES
    tensors = load_file(Path(cfg.run_dir) / "checkpoint.safetensors")
    reference = tiny_denoiser("edm")
    reference.unet.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    reference.eval()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.5, 3.0])
    labels = torch.tensor([0, 2])
    with torch.no_grad():
        # Exported weights are fp16: agreement to fp16 rounding of the weights.
        torch.testing.assert_close(loaded(x, sigma, labels), reference(x, sigma, labels), atol=2e-3, rtol=2e-3)


def test_an_ema_only_snapshot_exports_and_warm_starts_cd(tmp_path: Path) -> None:
    """A git snapshot may hold the EMA alone: it exports to the same bytes as the run, and a CD run warm-started
    from it begins with online weights and target network equal to that EMA (not to the teacher it was built from)."""
    edm = _cfg(tmp_path, run_dir=str(tmp_path / "edm"))
    train(edm, CPU)
    export(Path(edm.run_dir), tmp_path / "teacher")
    cd = replace(edm, mode="cd", run_dir=str(tmp_path / "cd"), init=str(tmp_path / "teacher"),
                 teacher=str(tmp_path / "teacher"), dropout=0.0)
    train(cd, CPU)
    save_compact(Path(cd.run_dir), tmp_path / "snap")
    assert not (tmp_path / "snap" / "disc.safetensors").exists()  # plain CD: no discriminator
    (tmp_path / "snap" / "model.safetensors").unlink()
    export(Path(cd.run_dir), tmp_path / "from-run")
    export_compact(tmp_path / "snap", tmp_path / "from-snap")
    for name in ("config.json", "diffusion_pytorch_model.safetensors", "parameterization.json", "SHA256SUMS"):
        assert (tmp_path / "from-run" / name).read_bytes() == (tmp_path / "from-snap" / name).read_bytes(), name

    train(replace(cd, run_dir=str(tmp_path / "cd2"), total_images=cd.total_images + 8, cd_target_ema=0.95), CPU,
          warm_start=tmp_path / "snap")
    meta = json.loads((tmp_path / "cd2" / "checkpoint.json").read_text())
    assert meta["images"] == cd.total_images + 8 and meta["warm_from"] == cd.total_images
    tensors = load_file(tmp_path / "cd2" / "checkpoint.safetensors")
    snap = load_file(tmp_path / "snap" / "ema.safetensors")
    teacher = load_file(tmp_path / "teacher" / "diffusion_pytorch_model.safetensors")

    def distance(prefix: str, reference: dict[str, torch.Tensor]) -> float:
        return sum((tensors[prefix + k].float() - v.float()).norm().item() for k, v in reference.items())

    # Two steps at rate 0.95 keep ~90% of the start: the target sits by the snapshot, far from the teacher.
    assert distance("target.", snap) < 0.5 * distance("target.", teacher)


def test_cd_with_a_gan_term_trains_and_resumes_bit_identically(tmp_path: Path) -> None:
    teacher = make_tiny_folder(tmp_path / "teacher", boundary="edm", seed=5)
    straight = _cfg(tmp_path, mode="cd", run_dir=str(tmp_path / "straight"), init=str(teacher), teacher=str(teacher),
                    adv_weight=1.0, accumulate=2)
    a = assert_resume_is_bit_identical(straight, tmp_path)
    assert any(k.startswith("disc.") for k in a) and any(k.startswith("disc_opt.") for k in a)
    # The heads trained: they moved from their initial weights (seeded by cfg.seed alone).
    torch.manual_seed(straight.seed)
    fresh = Discriminator.for_teacher(load_model(teacher, Runtime(torch.device("cpu"), torch.float32, None)))
    assert any(not torch.equal(a[f"disc.{k}"], v) for k, v in fresh.state_dict().items())
    assert "d_loss" in json.loads((tmp_path / "halves" / "log.jsonl").read_text().splitlines()[-1])
    # A compact snapshot carries the trained heads to a warm start (fp16).
    save_compact(Path(straight.run_dir), tmp_path / "snap")
    model, teacher_net = build_models(straight, 16, torch.device("cpu"))
    heads = Discriminator.for_teacher(teacher_net)
    load_compact(tmp_path / "snap", model, copy.deepcopy(model), heads)
    for k, v in heads.state_dict().items():
        torch.testing.assert_close(v, a[f"disc.{k}"].half().float(), rtol=0, atol=0)


def test_a_gan_term_needs_cd() -> None:
    with pytest.raises(ValueError, match="adv_weight"):
        TrainConfig(mode="edm", adv_weight=1.0)
    with pytest.raises(ValueError, match="adv_weight"):
        TrainConfig(mode="cd", adv_weight=-1.0)


def test_configs_saved_before_the_removals_load_only_with_the_removed_terms_off() -> None:
    """Run folders and snapshots written before kd, DMD and adv_sigmas were removed resume when those were off."""
    old = {**asdict(TrainConfig(mode="cd", adv_weight=2.0)), "adv_sigmas": "", "adv_renoise": "real",
           "dmd_weight": 0.0, "dmd_lr": 5e-5}
    assert config_from_dict(old) == TrainConfig(mode="cd", adv_weight=2.0)
    assert config_from_dict(json.loads((ROOT / "training/snapshots/cd32/state.json").read_text())["config"]).adv_weight > 0
    for name, value in (("adv_sigmas", "80,0.8"), ("adv_renoise", "sampled"), ("dmd_weight", 0.05)):
        with pytest.raises(ValueError, match=name):
            config_from_dict({**old, name: value})


def test_init_from_a_folder_takes_the_runs_dropout(tmp_path: Path) -> None:
    """CD/CT start from the teacher's folder; its training dropout (0.1) must not leak into a run that asks for 0."""
    unet, unshuffle = build_unet("tiny", 16, len(STYLES), dropout=0.1)
    save_model(tmp_path / "teacher", unet, Parameterization(boundary="edm", resolution=16, pixel_unshuffle=unshuffle,
                                                            class_names=STYLES), dtype=torch.float32)
    for dropout in (0.0, 0.2):
        cfg = TrainConfig(mode="cd", init=str(tmp_path / "teacher"), teacher=str(tmp_path / "teacher"), unet="tiny",
                          dropout=dropout, bf16=False)
        student, teacher = build_models(cfg, 16, torch.device("cpu"))
        rates = {m.p for m in student.unet.modules() if isinstance(m, torch.nn.Dropout)}
        assert rates == {dropout} and student.unet.config.dropout == dropout
        assert student.param.boundary == "cm" and teacher is not None and not teacher.unet.training


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("mode", ["edm", "cd-gan"])
def test_torchrun_two_processes(tmp_path: Path, mode: str) -> None:
    data = make_dataset(tmp_path / "data")
    run = tmp_path / "ddp"
    if mode == "cd-gan":  # the student and the discriminator heads both under DDP
        teacher = make_tiny_folder(tmp_path / "teacher", boundary="edm", seed=5)
        objective = ["--mode", "cd", "--init", str(teacher), "--teacher", str(teacher), "--adv-weight", "1"]
    else:
        objective = ["--mode", "edm"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", "-m", "training.train", *objective, "--data", str(data),
           "--run-dir", str(run), "--unet", "tiny", "--batch", "2", "--accumulate", "2", "--total-images", "32",
           "--no-bf16"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    meta = json.loads((run / "checkpoint.json").read_text())
    assert meta["images"] == 32 and meta["step"] == 4  # global batch 2 x 2 micro-batches x 2 processes


def test_sample_grid_places_each_styles_samples(tiny_model: Denoiser) -> None:
    from editing import tasks
    from editing.schedules import Schedule, uniform
    from training.samples import grid, to_uint8

    seeds = [0, 1, 2]
    canvas = np.asarray(grid(tiny_model, tiny_model, seeds, scale=1))
    r, pad, label_w, header = tiny_model.param.resolution, 4, 112, 22
    styles = len(tiny_model.param.class_names)
    assert canvas.shape == (styles * (header + 4 * (r + pad)), label_w + len(seeds) * (r + pad), 3)
    # Second style's 2-step row, third seed: exactly that sample, at that place.
    want = to_uint8(tasks.generate(tiny_model, seeds, schedule=uniform(2), label=1))[2]
    y = (header + 4 * (r + pad)) + header + (r + pad)
    x = label_w + 2 * (r + pad)
    np.testing.assert_array_equal(canvas[y:y + r, x:x + r], want)
    # With a tuned 2-step ts, that row shows the tuned schedule's sample instead.
    tuned = Schedule((0, 9, 39), 40)
    canvas = np.asarray(grid(tiny_model, tiny_model, seeds, scale=1, tuned={2: tuned}))
    want_tuned = to_uint8(tasks.generate(tiny_model, seeds, schedule=tuned, label=1))[2]
    assert not np.array_equal(want_tuned, want)
    np.testing.assert_array_equal(canvas[y:y + r, x:x + r], want_tuned)


@pytest.mark.parametrize("native, faster, wanted", [(True, True, True), (True, False, True), (False, True, True),
                                                    (True, True, False)])
def test_training_takes_bf16_on_a_cpu_only_where_it_is_native_and_timed_faster(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: bool, faster: bool, wanted: bool) -> None:
    import training.train as train_module

    monkeypatch.setattr(train_module, "cpu_has_amx", lambda: False)
    monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(train_module, "bf16_step_is_faster", lambda model, batch: faster)
    student, _ = build_models(replace(_cfg(tmp_path), bf16=wanted), 16, CPU)
    assert student.autocast_dtype == (torch.bfloat16 if native and faster and wanted else None)


def test_timing_bf16_leaves_the_weights_gradients_and_rng_as_they_were() -> None:
    from training.train import bf16_step_is_faster

    model = tiny_denoiser()
    before = copy.deepcopy(model.unet.state_dict())
    rng = torch.random.get_rng_state()
    assert isinstance(bf16_step_is_faster(model, 4), bool)
    assert model.autocast_dtype is None and torch.equal(torch.random.get_rng_state(), rng)
    assert all(p.grad is None for p in model.unet.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.unet.state_dict().items())
