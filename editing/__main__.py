"""`python -m editing TASK ...`: every engine task on PNG files, for batch work.

Tasks: generate, inpaint, colorize, superresolve, strokes, interpolate, denoise. Run
`python -m editing TASK --help` for a task's options. Edits keep the input's size (the model runs on
tiles, editing.tiling) and its alpha (in PNG); several inputs go in one call. Bad input ends with a
one-line message on stderr and exit code 2. torch is imported only after the arguments parse, so
`--help` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "weights/emoji32-cm"
PHOTO_MODEL = "weights/photo64-cm"
EMOJI_SIDE = 32  # the emoji model's resolution: larger inputs go to the photo model where it exists
MODEL_RULE = (f"default: {PHOTO_MODEL} when that folder exists and an input's longer side is over {EMOJI_SIDE} px, "
              f"else {DEFAULT_MODEL}")

TASKS: dict[str, str] = {
    "generate": "sample new images from noise (CM paper, Algorithm 1)",
    "inpaint": "fill the white part of --mask, keeping every other pixel exactly (Algorithm 4)",
    "colorize": "colour a (greyscale) image, keeping its luma exactly (Algorithm 4)",
    "superresolve": "upscale a low-resolution image by --factor, keeping every block mean exactly (Algorithm 4)",
    "strokes": "turn a rough painting into an image (stroke-guided editing, SDEdit-style; CM paper Fig. 6)",
    "interpolate": "frames between two seeds (slerp of their noises) or between two images",
    "denoise": "remove Gaussian noise: estimate its level, one evaluation of f at that sigma",
}


class UsageError(ValueError):
    """Bad command-line input found after parsing (reported like argparse's, exit code 2)."""


def _common(p: argparse.ArgumentParser, *, schedule: bool = True, variations: bool = True,
            full_size: bool = False) -> None:
    g = p.add_argument_group("model and output")
    g.add_argument("--model", metavar="DIR",
                   help=f"model folder (ours or a diffusers ConsistencyModelPipeline folder; {MODEL_RULE})")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where to run: auto picks CUDA when present (default auto)")
    g.add_argument("--backend", choices=("onnxruntime", "openvino", "eager"), default="onnxruntime",  # editing.runtimes
                   help="how a CPU runs the network in fp32: onnxruntime or openvino (converted once, cached under "
                        "~/.cache; eager where not installed) or eager PyTorch (default onnxruntime)")
    g.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",  # editing.models.PRECISION_HELP
                   help="on CPU: auto takes bf16 where it was measured faster: tiled (photo) models under bf16 "
                        "autocast where the CPU has native bf16 (AVX512-BF16 or AMX), and on an AMX CPU the other "
                        "models through OpenVINO's bf16 (unless --backend eager); everything else in fp32. fp32 or "
                        "bf16 everywhere (bf16 is far slower without native bf16) (default auto)")
    g.add_argument("--class", dest="label", metavar="NAME|INDEX",
                   help="class of a class-conditional model, by name or index (default: the first class)")
    g.add_argument("--seed", type=int, default=0, help="random seed; variation i uses seed + i (default 0)")
    if variations:
        g.add_argument("--n", type=int, default=1, help="number of variations; several are written as "
                       "OUT_0.png, OUT_1.png, ... (default 1)")
    if full_size:
        g.add_argument("--out", required=True, metavar="PATH",
                       help="output file at the input's size: PNG (the input's alpha kept) or JPEG by extension; with "
                            "several inputs, a folder that gets <input name>.png for each")
        g.add_argument("--tile-batch", type=int, metavar="N",
                       help="model tiles per network call; the result is the same for any N (default 64 on a CPU, "
                            "512 on CUDA)")
        g.add_argument("--max-megapixels", type=float, metavar="MPE",
                       help="refuse requests over MPE megapixels x evaluations x outputs (default: the device's "
                            "limit, editing.limits; 'inf' for none)")
    else:
        g.add_argument("--out", required=True, metavar="PATH", help="output file (PNG; .gif for interpolate frames)")
    if schedule:
        s = p.add_argument_group("schedule (default: the task's preset)")
        x = s.add_mutually_exclusive_group()
        x.add_argument("--steps", type=int, metavar="N",
                       help="N network evaluations; generation takes the model's tuned ts for N (its schedules.json) "
                            "where it has one on this grid, else N spread evenly over the grid")
        x.add_argument("--ts", metavar="LIST", help='ascending indices into the grid ending at GRID-1, e.g. "0,22,39"')
        s.add_argument("--grid", type=int, default=40, metavar="N", help="points in the Karras sigma grid (default 40)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subcommand per task."""
    parser = argparse.ArgumentParser(
        prog="python -m editing",
        description="Consistency-model image editing from the command line (Song et al. 2023, arXiv 2303.01469). "
                    "Edits keep the input's size: the model runs on overlapping tiles of its resolution (an input "
                    "smaller than that is padded by reflection and cropped back); a transparent input is edited "
                    "composited on white and keeps its alpha in a PNG. Interpolation between images works at the "
                    f"model's resolution. Model: {MODEL_RULE}.",
        epilog="tasks: " + "; ".join(f"{k}: {v}" for k, v in TASKS.items()),
    )
    sub = parser.add_subparsers(dest="task", required=True, metavar="TASK")

    p = sub.add_parser("generate", help=TASKS["generate"], description=TASKS["generate"] + ". Default: 1 step.")
    _common(p)

    p = sub.add_parser("inpaint", help=TASKS["inpaint"], description=TASKS["inpaint"] + ". Default ts: 0..39 of 40 "
                       "with a diffusion teacher's D (a photo model's default), else 0..17 of 18.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="the image(s) to complete")
    p.add_argument("--mask", required=True, help="mask image: white (>= 128) where the model fills in; "
                                                 "stretched to each image's size")
    _edit_denoiser(p)
    _common(p, full_size=True)

    p = sub.add_parser("colorize", help=TASKS["colorize"], description=TASKS["colorize"] + ". Default ts: 0..17 of 18.")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="the image(s) whose luma is kept (a colour image is reduced to its luma)")
    _edit_denoiser(p)
    _common(p, full_size=True)

    p = sub.add_parser("superresolve", help=TASKS["superresolve"],
                       description=TASKS["superresolve"] + ". Default ts: 0..17 of 18.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="the low-resolution image(s); the result is factor x their size")
    p.add_argument("--factor", type=int, default=4, help="upscaling factor; must divide the model resolution (default 4)")
    _edit_denoiser(p)
    _common(p, full_size=True)

    p = sub.add_parser("strokes", help=TASKS["strokes"],
                       description=TASKS["strokes"] + ". Default ts: 16,20,39 of 40 (sigma 5.38, 2.24); a later "
                                                      "first index stays closer to the painting.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="the painting(s)")
    p.add_argument("--strokes", metavar="MASK",
                   help="mask image: white (>= 128) where strokes were painted over a photo; then only they and R / 2 "
                        "px around them change, the rest is kept exactly (default: the whole painting is re-noised)")
    _common(p, full_size=True)

    p = sub.add_parser("interpolate", help=TASKS["interpolate"],
                       description=TASKS["interpolate"] + ". With no image: from --seed to --seed-b (default ts: "
                       "1 step). With two images: noise both to the schedule's first sigma with one shared noise, "
                       "blend, finish the schedule (default ts: 16,20,39 of 40).")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="none (seed interpolation) or two images")
    p.add_argument("--seed-b", type=int, help="the second seed (default: --seed + 1)")
    p.add_argument("--frames", type=int, default=8, help="number of frames, >= 2 (default 8)")
    _common(p, variations=False)

    p = sub.add_parser("denoise", help=TASKS["denoise"],
                       description=TASKS["denoise"] + " (estimated on the whole image unless --sigma), then "
                                                      "optional refinement steps.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="the noisy image(s)")
    p.add_argument("--mode", choices=("auto", "faithful", "sharp"), default="auto",
                   help="faithful: the diffusion teacher's one evaluation D(x, sigma), the MMSE estimate (highest "
                        "PSNR; needs the teacher folder beside the model, NAME-edm for NAME-cm); sharp: the "
                        "consistency model (crisper, and --refine); auto: faithful where the teacher exists and "
                        "--refine is 0, else sharp (default auto)")
    p.add_argument("--sigma", type=float, help="noise std on the model's [-1, 1] scale (std in 0..255 units / 127.5); "
                                               "default: estimated from the image")
    p.add_argument("--refine", type=int, default=0, help="refinement steps at lower sigmas, 0..16 (default 0)")
    _common(p, schedule=False, variations=False, full_size=True)

    # convert (issue 34): a .bin checkpoint folder to safetensors; no model is loaded, see editing.convert.
    p = sub.add_parser("convert", help="turn a .bin (pickle) checkpoint folder into safetensors + SHA256SUMS",
                       description="Read every .bin under DIR with torch.load(weights_only=True) (tensors only, no "
                                   "code run), write NAME.safetensors beside it and DIR/SHA256SUMS; the folder then "
                                   "loads with --model DIR.")
    p.add_argument("folder", metavar="DIR", help="the model folder, e.g. a local diffusers-cd_imagenet64_lpips")
    p.add_argument("--overwrite", action="store_true", help="replace safetensors files that already exist")
    return parser


def _edit_denoiser(p: argparse.ArgumentParser) -> None:
    # Checked where it is used (editing.models.edits_use_teacher): the parser imports no torch.
    p.add_argument("--denoiser", default="auto",
                   help="the denoiser inside Algorithm 4: teacher (the diffusion teacher NAME-edm beside NAME-cm, "
                        "D(x, sigma): closest to the image), cm (the consistency model: crisper, invents more), auto: "
                        "the teacher on a photo model that has one, else cm (default auto)")


def pick_label(names: Sequence[str], label: str | None) -> int | None:
    """A class index from a name (case-insensitive) or an index; the first class when none is given."""
    if not names:
        if label is not None:
            raise UsageError("this model is unconditional: drop --class")
        return None
    if label is None:
        print(f"note: no --class given, using class 0 ({names[0]})", file=sys.stderr)
        return 0
    if label.strip().lstrip("-").isdigit():
        index = int(label)
        if not 0 <= index < len(names):
            raise UsageError(f"--class must be between 0 and {len(names) - 1}, got {index}")
        return index
    lowered = [n.lower() for n in names]
    if label.lower() not in lowered:
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        raise UsageError(f"unknown class {label!r}; classes: {shown}")
    return lowered.index(label.lower())


def pick_schedule(args: argparse.Namespace, default: Any, tuned: dict | None = None) -> Any:
    """The Schedule from --steps (a `tuned` one on the same grid first) or --ts on a --grid-point grid, else
    the task's default."""
    from editing.schedules import parse_ts, steps_schedule

    if args.steps is not None:
        return steps_schedule(args.steps, tuned or {}, args.grid)
    if args.ts is not None:
        return parse_ts(args.ts, args.grid)
    return default


def input_side(path: str) -> int:
    """The longer side of an image file from its header, read as the loader reads it (a HEIC too); 0 when it
    cannot be read: the loader reports why."""
    from editing.images import InputError, image_size

    try:
        return max(image_size(path))
    except InputError:
        return 0


def pick_model(args: argparse.Namespace) -> str:
    """--model, else the photo model for inputs over the emoji model's size where it exists, else the emoji model."""
    if args.model:
        return args.model
    inputs = getattr(args, "images", None) or []
    if Path(PHOTO_MODEL).is_dir() and any(input_side(path) > EMOJI_SIDE for path in inputs):
        return PHOTO_MODEL
    return DEFAULT_MODEL


def teacher_folder(folder: str) -> Path:
    """The diffusion teacher beside a consistency model: NAME-edm for NAME-cm."""
    path = Path(folder)
    name = path.name.removesuffix("-cm") + "-edm" if path.name.endswith("-cm") else path.name + "-edm"
    return path.with_name(name)


def output_paths(inputs: Sequence[str], out: str) -> list[Path]:
    """One output per input: `out` itself for one input; `out/<input stem>.png` for several."""
    if len(inputs) == 1:
        return [Path(out)]
    folder = Path(out)
    if folder.suffix and not folder.is_dir():
        raise UsageError(f"--out must be a folder for {len(inputs)} inputs, got the file name {out!r}")
    stems = [Path(p).stem for p in inputs]
    if len(set(stems)) != len(stems):
        raise UsageError("several inputs have the same file name; run them in separate calls")
    return [folder / f"{stem}.png" for stem in stems]


class Progress:
    """A tqdm bar in network evaluations, advanced by a fraction at every tile batch (so its ETA is live)."""

    def __init__(self, name: str, evaluations: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=evaluations, desc=name, unit="eval", file=sys.stderr, leave=False,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total} eval [{elapsed}<{remaining}]")

    def tiles(self, p: Any) -> None:
        self.bar.update(1.0 / p.total)

    def close(self) -> None:
        self.bar.close()


def run(args: argparse.Namespace) -> list[Path]:
    """Load the model, run the task on each input, write the outputs; returns the written paths."""
    if args.task == "convert":
        from editing.convert import convert_folder

        return convert_folder(args.folder, overwrite=args.overwrite)
    import torch

    from editing import images, io, noise, tasks
    from editing.limits import Limits, Pass, within
    from editing.models import edits_use_teacher, load_model, optional_schedules, resolve_runtime
    from editing.schedules import PRESETS, Schedule
    from editing.tiling import Tiling, default_tiling, pad_to, padded_run

    from diffusers.utils import logging as diffusers_logging

    if getattr(args, "n", 1) < 1:
        raise UsageError(f"--n must be >= 1, got {args.n}")
    if getattr(args, "steps", None) is not None or getattr(args, "ts", None) is not None:
        pick_schedule(args, None)  # a bad --steps/--ts fails before the model loads
    if getattr(args, "tile_batch", None) is not None and args.tile_batch < 1:
        raise UsageError(f"--tile-batch must be >= 1, got {args.tile_batch}")
    diffusers_logging.set_verbosity_error()  # the CLI's stderr is for our messages
    folder = pick_model(args)
    runtime = resolve_runtime(args.device, backend=args.backend, precision=args.precision)
    model = load_model(folder, runtime)
    r = model.param.resolution
    label = pick_label(model.param.class_names, args.label)
    seeds = [args.seed + i for i in range(getattr(args, "n", 1))]
    task = args.task
    tuned = optional_schedules(folder, lambda message: print(message, file=sys.stderr))  # for --steps N

    def load_image(path: str, resolution: int) -> Any:
        """The studio's hardened conversion to the model's resolution (interpolation; a tiled model's input cut to
        its centre square, as the studio does); notes go to stderr."""
        converted = images.load_image(path, resolution, crop=model.param.tiled)
        for note in converted.notes:
            print(f"{path}: {note}", file=sys.stderr)
        return converted.tensor

    if task == "generate":
        out = tasks.generate(model, seeds, schedule=pick_schedule(args, PRESETS["1 step"], tuned), label=label)
        return io.save_images(out, args.out)
    if task == "interpolate":
        if args.frames < 2:
            raise UsageError(f"--frames must be >= 2, got {args.frames}")
        if len(args.images) == 2:
            a, b = (load_image(path, r) for path in args.images)
            frames = tasks.interpolate_images(model, a, b, args.frames, args.seed,
                                              schedule=pick_schedule(args, Schedule((16, 20, 39), 40)), label=label)
        elif not args.images:
            seed_b = args.seed + 1 if args.seed_b is None else args.seed_b
            frames = tasks.interpolate_seeds(model, args.seed, seed_b, args.frames,
                                             schedule=pick_schedule(args, PRESETS["1 step"], tuned), label=label)
        else:
            raise UsageError(f"interpolate takes no image (seeds) or two images, got {len(args.images)}")
        return [io.save_frames(frames, args.out)]

    # Edits: each input at its own size.
    if task == "superresolve" and (args.factor < 2 or r % args.factor):
        raise UsageError(f"--factor must be >= 2 and divide the model resolution {r}, got {args.factor}")
    denoiser = model
    if task == "denoise" and model.param.boundary == "edm":
        # a diffusion teacher given as --model: its one evaluation is the faithful mode itself
        if args.mode == "sharp" or args.refine:
            raise UsageError(f"{folder} is a diffusion teacher: --mode sharp and --refine need a consistency model")
        print(f"denoise mode: faithful ({folder})", file=sys.stderr)
    elif task == "denoise":
        teacher = teacher_folder(folder)
        faithful = args.mode == "faithful" or (args.mode == "auto" and args.refine == 0 and teacher.is_dir())
        if faithful and args.refine:
            raise UsageError("--refine needs --mode sharp (the consistency model)")
        if faithful:
            if not teacher.is_dir():
                raise UsageError(f"--mode faithful needs the diffusion teacher {teacher} beside {folder}")
            denoiser = load_model(teacher, runtime)
        print(f"denoise mode: {'faithful (' + str(teacher) + ')' if faithful else 'sharp'}", file=sys.stderr)
    if task in ("inpaint", "colorize", "superresolve"):
        teacher = teacher_folder(folder)
        try:
            use_teacher = model.param.boundary == "cm" and edits_use_teacher(args.denoiser, model.param,
                                                                             teacher.is_dir())
        except ValueError as e:
            raise UsageError(f"{folder}: {e}") from None
        if use_teacher:
            model = load_model(teacher, runtime)
        print(f"{task}: the solver's denoiser is {teacher if use_teacher else folder}", file=sys.stderr)
    limits = None if args.max_megapixels is None else Limits(args.max_megapixels)
    tiling = default_tiling(r, runtime.device)
    if args.tile_batch is not None:
        tiling = Tiling(tiling.tile, tiling.overlap, args.tile_batch)
    written: list[Path] = []
    for path, target in zip(args.images, output_paths(args.images, args.out)):
        upload = images.load_full(path)
        for note in upload.notes:
            print(f"{path}: {note}", file=sys.stderr)
        x, alpha = upload.tensor, upload.alpha
        h, w = x.shape[-2:]
        # Smaller than one tile (or, for super-resolution, than one tile / factor): reflect, crop back after.
        least = -(-r // args.factor) if task == "superresolve" else r
        common = dict(label=label, tiling=tiling, limits=limits)
        if task == "inpaint":
            converted = images.load_mask_full(args.mask, h, w)
            for note in converted.notes:
                print(f"{args.mask}: {note}", file=sys.stderr)
            if not converted.mask.any():
                raise UsageError(f"{args.mask}: the mask has no white pixels, so there is nothing to fill in")
            schedule = pick_schedule(args, tasks.inpaint_schedule(model.param))
            bar = Progress(Path(path).name, schedule.evaluations)
            out = padded_run(lambda padded: tasks.inpaint(
                model, padded, pad_to(converted.mask, least, least), seeds, schedule=schedule, on_tiles=bar.tiles,
                **common), x, least)
        elif task == "colorize":
            schedule = pick_schedule(args, tasks.DEFAULT_EDIT)
            bar = Progress(Path(path).name, schedule.evaluations + tasks.COLOR_REFINE.evaluations)
            out = padded_run(lambda padded: tasks.colorize(
                model, padded, seeds, schedule=schedule, on_tiles=bar.tiles, **common), x, least)
        elif task == "superresolve":
            schedule = pick_schedule(args, tasks.DEFAULT_EDIT)
            bar = Progress(Path(path).name, schedule.evaluations)
            out = padded_run(lambda padded: tasks.superresolve(
                model, padded, args.factor, seeds, schedule=schedule, on_tiles=bar.tiles, **common),
                x, least, args.factor)
            if alpha is not None:
                alpha = alpha.repeat(args.factor, 0).repeat(args.factor, 1)
        elif task == "strokes":
            strokes = None
            if args.strokes is not None:
                converted = images.load_mask_full(args.strokes, h, w)
                for note in converted.notes:
                    print(f"{args.strokes}: {note}", file=sys.stderr)
                strokes = pad_to(converted.mask, least, least)
            schedule = pick_schedule(args, PRESETS["strokes"])
            bar = Progress(Path(path).name, schedule.evaluations)
            out = padded_run(lambda padded: tasks.stroke_edit(
                model, padded, seeds, schedule=schedule, on_tiles=bar.tiles, strokes=strokes, **common), x, least)
        elif task == "denoise":
            found: list[float] = []
            given: float | noise.NoiseCurve | None = args.sigma
            grey = noise.is_grey(x)
            notes = [noise.GREY_NOTE] if grey else []
            reading = None
            if given is None or model.param.tiled:  # at its own size: a curve where the level depends on the value, a
                # JPEG's read through its compression, unless it was reduced as it was read (images.MAX_FULL_PIXELS);
                # spread over neighbouring pixels or not, also at a level given: as the studio
                own_size = tuple(x.shape[-2:]) == images.image_size(path)
                reading = noise.read_noise(x, images.jpeg_compression(path) if own_size else None,
                                           as_curve=given is None)
            spread = reading is not None and reading.spread and model.param.tiled
            # A colour JPEG's noise: the mean of up to AVERAGED_DRAWS denoises under added white noise, as many as the
            # limits take at this size; where not even two do, the bootstrap's multiple of its level (as the studio)
            draws = 1
            if reading is not None and reading.averaged and model.param.tiled:
                draws = tasks.averaged_draws(
                    lambda k: within(limits, x.device, 1, [Pass(*x.shape[-2:], k * (1 + args.refine))]))
            averaged = draws > 1
            added = tasks.AVERAGED_ADDED if averaged else 0.0
            bar = Progress(Path(path).name, (1 + args.refine) * draws + spread)
            if given is None and reading is not None:
                notes, given = reading.notes(), reading.level
                if reading.bootstrapped(draws):
                    scale = tasks.denoise_scale(denoiser, x, reading.level, reading.compression,
                                                refine_steps=args.refine, seed=args.seed, grey=grey, **common)
                    if scale != 1.0:
                        notes.append(reading.scale_note(scale))
                        given = given.scaled(scale)
            for note in notes:
                print(f"{path}: {note}", file=sys.stderr)

            def denoise(padded: torch.Tensor) -> torch.Tensor:
                result, sigma = tasks.denoise(denoiser, padded, sigma=given, refine_steps=args.refine,
                                              seed=args.seed, on_tiles=bar.tiles, grey=grey, spread=spread,
                                              added=added, draws=draws, **common)
                found.append(sigma)
                return result

            out = padded_run(denoise, x, least)
            sigma = found[0]
            stabilized = isinstance(given, noise.NoiseCurve) and not given.is_constant
            scale_name = "[-1, 1] scale, variance-stabilized" if stabilized else "[-1, 1] scale"
            how = (f", on its 2x2 phase sub-images (its noise is spread over neighbouring pixels), then once over the "
                   f"whole image at {tasks.SPREAD_CLEANUP:g} x that level" if spread else "")
            if averaged:
                how += (f", the mean of {draws} denoise(s) under white noise of {added:g} x that level added (a JPEG's "
                        "noise, which its compression shaped, is then mostly the Gaussian noise the model knows)")
            print(f"{path}: denoised at noise sigma {sigma:.4f} (on the {scale_name}){how}", file=sys.stderr)
        else:  # argparse only lets known tasks through
            raise AssertionError(task)
        bar.close()
        written += io.save_images(out, target, alpha, upload.exif)
        if alpha is not None and target.suffix.lower() in io.JPEG_SUFFIXES:
            print(f"{path}: JPEG has no alpha channel: the transparency was left out (write a .png to keep it)",
                  file=sys.stderr)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run, report; 0 on success, 2 on bad input (with a message on stderr, no traceback)."""
    args = build_parser().parse_args(argv)
    try:
        paths = run(args)
    except (ValueError, OSError) as e:  # ModelLoadError and UsageError are ValueErrors
        print(f"python -m editing {args.task}: error: {e}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
