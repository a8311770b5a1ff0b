"""Start Consistency Studio: parse arguments, build the engine, build the UI, launch.

    python app.py [--weights weights/] [--device auto|cpu|cuda] [--backend onnxruntime|openvino|eager] [--host 127.0.0.1] [--port 7860] [--timeout 120]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

# No outbound connection, ever, by default: set before gradio and huggingface_hub are imported.
for _name, _value in (("GRADIO_ANALYTICS_ENABLED", "False"), ("HF_HUB_OFFLINE", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1"),
                      ("DO_NOT_TRACK", "1"), ("GRADIO_SERVER_NAME", "127.0.0.1")):
    os.environ.setdefault(_name, _value)

from app.guard import GuardLimits  # noqa: E402
from app.studio import REQUEST_TIMEOUT, Studio  # noqa: E402
from app.ui import build_demo, launch  # noqa: E402
from editing.limits import CPU_MEGAPIXELS, CUDA_MEGAPIXELS, Limits  # noqa: E402
from editing.models import PRECISION_HELP, PRECISIONS, ModelLoadError, resolve_runtime  # noqa: E402
from editing.runtimes import BACKENDS, DEFAULT_BACKEND  # noqa: E402

ROOT = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Consistency Studio: image editing with a consistency model.")
    parser.add_argument("--weights", type=Path, default=ROOT / "weights",
                        help="a folder of model folders (or one model folder); default: weights/")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND,
                        help="how a CPU runs the network: onnxruntime or openvino (converted once, cached under "
                             "~/.cache; eager where not installed) or eager PyTorch; CUDA always runs PyTorch "
                             f"(default: {DEFAULT_BACKEND})")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    parser.add_argument("--timeout", type=float, default=REQUEST_TIMEOUT,
                        help=f"seconds of work one request may take before it stops (default: {REQUEST_TIMEOUT:g})")
    parser.add_argument("--max-megapixels", type=float, default=None,
                        help="megapixel-evaluations (outputs x evaluations x megapixels) one request may cost "
                             f"(default: {CPU_MEGAPIXELS:g} on a CPU, {CUDA_MEGAPIXELS:g} on CUDA)")
    defaults = GuardLimits()
    parser.add_argument("--per-session", type=int, default=defaults.per_session,
                        help=f"requests one session may have queued or running (default: {defaults.per_session})")
    parser.add_argument("--per-address", type=int, default=defaults.per_address,
                        help=f"requests one client address may have queued or running (default: {defaults.per_address})")
    parser.add_argument("--upload-quota-mb", type=float, default=defaults.upload_quota / 2**20,
                        help="megabytes of uploads kept before the oldest are removed (default: "
                             f"{defaults.upload_quota / 2**20:g})")
    args = parser.parse_args(argv)
    for name in ("per_session", "per_address", "upload_quota_mb", "max_megapixels"):
        if getattr(args, name) is not None and not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        runtime = resolve_runtime(args.device, backend=args.backend, precision=args.precision)
        studio = Studio.from_weights(args.weights, runtime, benchmarks=ROOT / "benchmarks" / "RESULTS.json",
                                     request_timeout=args.timeout,
                                     limits=Limits(args.max_megapixels) if args.max_megapixels else None)
        studio.load(studio.default_model)  # fail now, with the file's name, rather than on the first request
    except (ModelLoadError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    demo = build_demo(studio)
    guard = GuardLimits(per_session=args.per_session, per_address=args.per_address,
                        upload_quota=int(args.upload_quota_mb * 2**20))
    launch(demo, studio, host=args.host, port=args.port, guard=guard)
    return 0


if __name__ == "__main__":
    sys.exit(main())
