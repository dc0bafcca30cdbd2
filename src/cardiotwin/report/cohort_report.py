"""The cohort summary as one self-contained HTML page: a table of every case, failures in red,
each case's id linking to its own report."""

from __future__ import annotations

import html

from cardiotwin import fields as F

_STYLE = """body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;
padding:2px 6px;text-align:right;white-space:nowrap}th{background:#f2f2f2;position:sticky;top:0}
td:first-child{text-align:left}.failed td{background:#fde8e8}.error{text-align:left;white-space:normal}"""


def _cell(column: str, value) -> str:
    if value is None:
        return "<td></td>"
    if isinstance(value, float):
        return f"<td>{value:.3g}</td>"
    if column == "error":
        return f"<td class='error'>{html.escape(str(value))}</td>"
    return f"<td>{html.escape(str(value))}</td>"


def cohort_html(rows: list[dict], columns: list[str]) -> str:
    """The page: one row per case (:func:`cardiotwin.pipeline.cohort.case_summary`), ``columns`` in order."""
    failed = sum(r.get("status") == "failed" for r in rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            if c == "id" and r.get("status") == "done":
                cells.append(f"<td><a href='{html.escape(str(r['id']))}/{F.REPORT}'>{html.escape(str(r['id']))}</a></td>")
            else:
                cells.append(_cell(c, r.get(c)))
        body.append(f"<tr class='{html.escape(str(r.get('status', '')))}'>{''.join(cells)}</tr>")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>cardiotwin cohort</title>"
            f"<style>{_STYLE}</style></head><body><h1>Cohort: {len(rows)} cases, {len(rows) - failed} done, "
            f"{failed} failed</h1><table><tr>{head}</tr>{''.join(body)}</table></body></html>")
