"""Start Consistency Studio: parse arguments, build the engine, build the UI, launch.

    python app.py [--weights weights/] [--device auto|cpu|cuda] [--host 127.0.0.1] [--port 7860] [--timeout 120]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from app.studio import REQUEST_TIMEOUT, Studio
from app.ui import build_demo, launch
from editing.models import ModelLoadError, resolve_runtime

ROOT = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Consistency Studio: image editing with a consistency model.")
    parser.add_argument("--weights", type=Path, default=ROOT / "weights",
                        help="a folder of model folders (or one model folder); default: weights/")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    parser.add_argument("--timeout", type=float, default=REQUEST_TIMEOUT,
                        help=f"seconds of work one request may take before it stops (default: {REQUEST_TIMEOUT:g})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        runtime = resolve_runtime(args.device)
        studio = Studio.from_weights(args.weights, runtime, benchmarks=ROOT / "benchmarks" / "RESULTS.json",
                                     request_timeout=args.timeout)
        studio.load(studio.default_model)  # fail now, with the file's name, rather than on the first request
    except (ModelLoadError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    demo = build_demo(studio)
    launch(demo, studio, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
