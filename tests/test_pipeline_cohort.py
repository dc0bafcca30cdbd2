"""Cohorts: the table is validated up front; on a Dask LocalCluster a broken case is recorded
(stage, error, traceback) and the others complete; a rerun resumes (every stage skipped)."""

from __future__ import annotations

import json

import pytest

from cardiotwin.errors import InputError
from cardiotwin.pipeline.cohort import FAILURE, read_cohort, run_cohort


def test_cohort_table_is_validated(tmp_path):
    table = tmp_path / "cohort.csv"
    table.write_text("id,phantom,labels\na,1,\na,2,\n")
    with pytest.raises(InputError, match="repeated"):
        read_cohort(table)
    table.write_text("id,phantom,labels\na,1,x.nii.gz\n")
    with pytest.raises(InputError, match="exactly one"):
        read_cohort(table)
    table.write_text("id,phantom,edge_mm,calibration.budget\na,1,2.0,300\n")
    (case,) = read_cohort(table)
    assert case.phantom == 1 and case.config.edge_mm == 2.0 and case.config.calibration.budget == 300


@pytest.mark.slow
def test_cohort_on_a_local_cluster_records_failures_and_resumes(tmp_path):
    """(slow: ~100 s; a 2 mm phantom case and a broken one on two worker processes)"""
    (tmp_path / "broken.nii.gz").write_bytes(b"not an image")
    table = tmp_path / "cohort.csv"
    table.write_text("id,phantom,labels,phantom_spacing_mm,edge_mm\n"
                     "p1,1,,2.0,2.0\nbroken,,broken.nii.gz,,\n")
    cases = read_cohort(table)
    results = run_cohort(cases, tmp_path / "out", workers=2)
    status = {r["id"]: r for r in results}
    assert status["p1"]["status"] == "done", status["p1"]
    assert status["broken"]["status"] == "failed" and status["broken"]["stage"] == "anatomy"
    failure = json.loads((tmp_path / "out" / "broken" / FAILURE).read_text())
    assert "broken.nii.gz" in failure["error"] and "Traceback" in failure["traceback"]
    from typer.testing import CliRunner

    from cardiotwin.cli import app

    record = tmp_path / "out" / "p1" / "provenance" / "anatomy.json"
    written = record.stat().st_mtime_ns
    result = CliRunner().invoke(app, ["cohort", str(table), "--out", str(tmp_path / "out")])  # resumes
    assert record.stat().st_mtime_ns == written  # p1's stages were skipped, not redone
    assert result.exit_code == 1 and "1 done, 1 failed" in result.output, result.output
    rows = (tmp_path / "out" / "cohort_summary.csv").read_text().splitlines()
    assert rows[1].startswith("p1,done") and rows[2].startswith("broken,failed")
