"""`python -m benchmarks`: speed, sample quality vs steps (one draw and over
independent draw sets), editing quality and scaling in one run (issue 6)."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.run import SECTIONS, Options, run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="few samples and repetitions (< 5 min on 2 cores); writes RESULTS-quick.md/json")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--model", type=Path, default=Path("weights/emoji32-cm"), help="consistency model folder")
    parser.add_argument("--teacher", type=Path, default=Path("weights/emoji32-edm"), help="EDM teacher folder")
    parser.add_argument("--data", type=Path, default=Path("data/emoji32"), help="built by python -m training.data")
    parser.add_argument("--out-dir", type=Path, default=Path("benchmarks"), help="where RESULTS.md/json go")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: one per core); 1 avoids stalls when another job "
                        "holds a core")
    parser.add_argument("--photo-model", type=Path, default=Path("weights/photo64-cm"),
                        help="photo consistency model folder (sections photo_crops, photos)")
    parser.add_argument("--photo-teacher", type=Path, default=Path("weights/photo64-edm"),
                        help="photo EDM teacher folder (sections photo_crops, photos)")
    parser.add_argument("--photo-data", type=Path, default=Path("data/photos"),
                        help="built by python -m training.photos build")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--draw-sets", type=int, default=None,
                        help="independent draw sets of the quality_sets section (default 5; --quick 2)")
    args = parser.parse_args(argv)
    sections = tuple(s for s in args.sections.split(",") if s)
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    if args.draw_sets is not None and args.draw_sets < 1:
        parser.error(f"--draw-sets must be >= 1, got {args.draw_sets}")
    run(Options(model=args.model, teacher=args.teacher, data=args.data, device=args.device, quick=args.quick,
                out_dir=args.out_dir, sections=sections, threads=args.threads, draw_sets=args.draw_sets,
                photo_model=args.photo_model, photo_teacher=args.photo_teacher, photo_data=args.photo_data))


if __name__ == "__main__":
    main()
