"""Cohorts: the table is validated up front; on a Dask LocalCluster, and on a `dask scheduler` with
two `dask worker` processes, a broken case is recorded (stage, error, traceback) and the others
complete; case folders copied into the cohort are recognised as done; a rerun resumes (every stage
skipped); the summary is written as CSV and HTML."""

from __future__ import annotations

import csv
import json
import shutil
import socket
import subprocess
import sys
import time

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


def _cohort_of_done_cases(phantom_case, tmp_path):
    """Two copies of the session's finished case and an unreadable label map, as a cohort."""
    case, config, ecg, _ = phantom_case
    out = tmp_path / "out"
    for cid in ("p1", "p2"):
        shutil.copytree(case, out / cid)
    (tmp_path / "broken.nii.gz").write_bytes(b"not an image")
    table = tmp_path / "cohort.csv"
    table.write_text(f"id,phantom,labels,ecg\np1,1,,{ecg}\np2,1,,{ecg}\nbroken,,broken.nii.gz,\n")
    return read_cohort(table, base=config), out


def _check(results, out):
    status = {r["id"]: r for r in results}
    for cid in ("p1", "p2"):
        assert status[cid]["status"] == "done", status[cid]
        assert sorted(status[cid]["skipped"]) == sorted(status[cid]["stage_seconds"])  # all recognised as done
    assert status["broken"]["status"] == "failed" and status["broken"]["stage"] == "anatomy"
    failure = json.loads((out / "broken" / FAILURE).read_text())
    assert "broken.nii.gz" in failure["error"] and "Traceback" in failure["traceback"]


def test_cohort_on_a_local_cluster_with_copied_done_cases_and_a_broken_one(phantom_case, tmp_path):
    from cardiotwin.io.cohort import write_cohort_summary

    cases, out = _cohort_of_done_cases(phantom_case, tmp_path)
    results = run_cohort(cases, out, workers=2)
    _check(results, out)
    summary = write_cohort_summary([r["summary"] for r in results], out / "cohort_summary.csv")
    rows = list(csv.DictReader(summary.open()))
    assert [r["id"] for r in rows] == ["p1", "p2", "broken"]
    p1 = rows[0]
    assert 100 < float(p1["lv_blood_ml"]) < 200 and float(p1["min_dihedral_deg"]) > 5 and int(p1["heart_nodes"]) > 1000
    assert -1 <= float(p1["QRS_median_r"]) <= 1 and float(p1["cv_fibre"]) > 0 and float(p1["calibration_s"]) > 0
    assert rows[2]["status"] == "failed" and rows[2]["failed_stage"] == "anatomy" and not rows[2]["lv_blood_ml"]
    page = summary.with_suffix(".html").read_text()
    assert "3 cases, 2 done, 1 failed" in page and "href='p1/report.html'" in page


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cohort_on_a_dask_scheduler_with_two_workers(phantom_case, tmp_path):
    """`dask scheduler` and two `dask worker` processes on localhost, given as --scheduler."""
    from dask.distributed import Client

    cases, out = _cohort_of_done_cases(phantom_case, tmp_path)
    address = f"tcp://127.0.0.1:{_free_port()}"
    dask = [sys.executable, "-m", "dask"]
    procs = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        time.sleep(2)
        procs += [subprocess.Popen([*dask, "worker", address, "--nthreads", "1", "--no-dashboard"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        results = run_cohort(cases, out, scheduler=address)
        _check(results, out)
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
