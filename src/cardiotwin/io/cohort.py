"""The cohort summary table: one row per case (status, failed stage and error, stage times)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from cardiotwin.io.atomic import write_text_atomic

def write_cohort_summary(results: list[dict], path: str | os.PathLike) -> Path:
    """CSV of :func:`cardiotwin.pipeline.cohort.run_cohort`'s results, written atomically; one
    time column per stage that any case ran, in the order the stages ran."""
    stages = list(dict.fromkeys(s for r in results for s in r.get("stage_seconds", {})))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["id", "status", "seconds", "failed_stage", "error", *(f"{s}_s" for s in stages)])
    for r in results:
        times = r.get("stage_seconds", {})
        writer.writerow([r["id"], r["status"], r.get("seconds", ""), r.get("stage", ""), r.get("error", ""),
                         *("" if times.get(s) is None else times[s] for s in stages)])
    return write_text_atomic(path, buf.getvalue())
