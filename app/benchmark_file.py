"""Reading the sample-quality table of `benchmarks/RESULTS.json` for the Steps vs quality tab's plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_benchmarks(path: Path) -> tuple[list[dict[str, Any]], str]:
    """Rows {model, series, method, ms, quality, metric} of the sample-quality table in benchmarks/RESULTS.json
    (written by `python -m benchmarks`: {"tables": {"quality": {"columns": [...], "rows": [[...], ...]}}}), and a
    sentence saying what was found."""
    shown = "the studio's benchmark results"  # no path on the server: the message is shown in the page
    if not path.is_file():
        return [], ("No benchmark results yet (the results file was not found): run `python -m benchmarks` to "
                    "make the plot.")
    try:
        table = json.loads(path.read_text())["tables"]["quality"]
        columns = table["columns"]
        model, sampler = columns.index("model"), columns.index("sampler")
        metric = "SWD mean"
        quality, ms = columns.index(metric), columns.index("ms / image")
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        return [], f"The benchmark results have no sample-quality table ({type(e).__name__})."
    rows = []
    for row in table["rows"]:
        if not (isinstance(row[ms], (int, float)) and isinstance(row[quality], (int, float))):
            continue
        # Samplers on a model's tuned ts get a colour of their own, to compare with its even ts.
        series = f"{row[model]}, tuned ts" if "tuned" in str(row[sampler]) else str(row[model])
        rows.append({"model": str(row[model]), "series": series, "method": f"{row[model]} {row[sampler]}",
                     "ms": float(row[ms]), "quality": float(row[quality]),
                     "metric": f"{metric} (x1e3, lower is better)"})
    if not rows:
        return [], "The benchmark results have no rows with a time and a quality number."
    return rows, (f"Sample quality against time per image, from {shown} ({len(rows)} runs; {metric}: lower "
                  "is better).")
