"""The cohort summary table: one row per case (status, failed stage and error, stage times)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from cardiotwin.io.atomic import write_text_atomic

STAGES = ("phantom", "segment", "anatomy", "fibres", "lead_fields", "calibration")


def write_cohort_summary(results: list[dict], path: str | os.PathLike) -> Path:
    """CSV of :func:`cardiotwin.pipeline.cohort.run_cohort`'s results, written atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["id", "status", "seconds", "failed_stage", "error", *(f"{s}_s" for s in STAGES)])
    for r in results:
        times = r.get("stage_seconds", {})
        writer.writerow([r["id"], r["status"], r.get("seconds", ""), r.get("stage", ""), r.get("error", ""),
                         *(times.get(s, "") if times.get(s) is not None else "" for s in STAGES)])
    return write_text_atomic(path, buf.getvalue())
