"""The cohort summary: one row per case, as CSV and as a self-contained HTML page."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from cardiotwin.io.atomic import write_text_atomic


def columns(rows: list[dict]) -> list[str]:
    """Every column any row has, in first-seen order."""
    return list(dict.fromkeys(k for r in rows for k in r))


def write_cohort_summary(rows: list[dict], path: str | os.PathLike) -> Path:
    """CSV of :func:`cardiotwin.pipeline.cohort.case_summary` rows, written atomically (empty cells
    where a case lacks a column), and beside it the same table as HTML
    (:func:`cardiotwin.report.cohort_report.cohort_html`, ``.html``)."""
    from cardiotwin.report.cohort_report import cohort_html

    cols = columns(rows)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(cols)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else r[c] for c in cols])
    target = write_text_atomic(path, buf.getvalue())
    write_text_atomic(Path(path).with_suffix(".html"), cohort_html(rows, cols))
    return target
