"""`run_case` on a 2 mm phantom with a real ECG (the session's ``phantom_case``): a complete case
folder; a second run skips every stage; a copied folder is still recognised as done; changing only
a calibration setting reruns calibration and report alone; a run killed with SIGKILL part-way
through a stage leaves nothing of that stage looking complete, and a rerun gives the uninterrupted
result; the report renders in headless Chromium with every picture loaded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from cardiotwin import fields as F
from cardiotwin.errors import InputError
from cardiotwin.pipeline.run import RunConfig, run_case
from cardiotwin.pipeline.stage import record_path

STAGES = ["phantom", "anatomy", "fibres", "lead_fields", "calibration", "report"]


def test_run_case_makes_a_complete_folder_and_a_rerun_skips_every_stage(phantom_case):
    case, config, ecg, runs = phantom_case
    assert [r.name for r in runs.values() if not r.skipped] == STAGES
    for name in (F.HEART_MESH, F.HEART, F.TORSO, F.LANDMARKS, F.LEAD_FIELDS, F.REPORT,
                 *(f"{F.CALIBRATION_DIR}/{f}" for f in (F.PARAMETERS, F.OVERLAY, F.HEART_EP))):
        assert (case / name).is_file(), name
    # one beat, one scale: the fit reports a gain per lead (shared by P, QRS and T), the whole-beat
    # NRMSE, the native global gain and the feature errors; fitted_ecg.csv holds the scaled beat
    cal = json.loads((case / F.CALIBRATION_DIR / F.CALIBRATION).read_text())
    assert set(cal["gain"]) == set(cal["leads"]) and all(g >= 0 for g in cal["gain"].values())
    assert "beat" in cal["nrmse"] and cal["global_gain"] > 0
    assert set(cal["features"]["error"]) >= {"pr_ms", "qrs_ms", "qt_ms", "t_peak_ms", "r_amplitude_mV"}
    start = time.perf_counter()
    again = run_case(case, phantom=1, ecg=ecg, config=config)
    print(f"second run {time.perf_counter() - start:.2f} s")
    assert all(r.skipped for r in again.values())
    assert not list(case.glob(".staging-*"))


def test_a_moved_case_is_done_and_a_calibration_setting_reruns_calibration_and_report(phantom_case, tmp_path):
    case, config, ecg, _ = phantom_case
    moved = tmp_path / "moved"
    shutil.copytree(case, moved)
    assert all(r.skipped for r in run_case(moved, phantom=1, ecg=ecg, config=config).values())
    changed = run_case(moved, phantom=1, ecg=ecg, config=RunConfig(
        phantom_spacing_mm=2.0, edge_mm=2.0, calibration=config.calibration.replace(budget=9)))
    assert [r.name for r in changed.values() if not r.skipped] == ["calibration", "report"]


def test_kill_9_during_a_stage_leaves_no_complete_looking_file_and_a_rerun_completes(phantom_case, tmp_path):
    """The calibration stage of a copy of the case is killed with SIGKILL once it is under way."""
    case, config, ecg, _ = phantom_case
    killed = tmp_path / "killed"
    shutil.copytree(case, killed)
    for stage in ("calibration", "report"):
        record_path(killed, stage).unlink()
    shutil.rmtree(killed / F.CALIBRATION_DIR)
    (killed / F.REPORT).unlink()
    settings = tmp_path / "config.toml"
    settings.write_text("phantom_spacing_mm = 2.0\nedge_mm = 2.0\n[calibration]\nbudget = 8\nstages = [\"QRS\"]\n"
                        "mapping_rounds = 0\nroot_sites = 0\n")
    cli = [sys.executable, "-c", "from cardiotwin.cli import app; app()", "run", "--phantom", "1", "--ecg", str(ecg),
           "--out", str(killed), "--config", str(settings)]
    proc = subprocess.Popen(cli, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    staging = killed / ".staging-calibration"
    deadline = time.monotonic() + 120
    while not staging.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the calibration stage started"
    time.sleep(1.0)  # well inside the stage (about 10 s)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not record_path(killed, "calibration").exists()
    assert not (killed / F.CALIBRATION_DIR).exists()  # outputs exist only in the staging folder until done
    runs = run_case(killed, phantom=1, ecg=ecg, config=config)
    assert [r.name for r in runs.values() if not r.skipped] == ["calibration", "report"]
    assert not staging.exists()
    done = json.loads((case / F.CALIBRATION_DIR / F.PARAMETERS).read_text())
    assert json.loads((killed / F.CALIBRATION_DIR / F.PARAMETERS).read_text()) == done


def test_the_report_renders_in_headless_chromium_with_every_picture(phantom_case, tmp_path):
    from cardiotwin.report.browser import chromium, images_loaded

    if chromium() is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); the benchmark checks it too")
    case = phantom_case[0]
    page = (case / F.REPORT).read_text()
    for section in ("Image and labels", "Heart in the torso", "Fibres", "Calibrated activation times",
                    "Per-lead correlation", "Calibrated parameters", "QC warnings", "Provenance"):
        assert section in page, section
    loaded, total = images_loaded(case / F.REPORT)
    assert loaded == total == 5


def test_run_config_from_toml_and_bad_input(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('edge_mm = 1.5\n[calibration]\nbudget = 300\nstages = ["QRS", "T"]\n')
    config = RunConfig.from_toml(path)
    assert config.edge_mm == 1.5 and config.calibration.budget == 300 and config.calibration.stages == ("QRS", "T")
    path.write_text("edge = 1.5\n")
    with pytest.raises(InputError, match="unknown settings"):
        RunConfig.from_toml(path)
    with pytest.raises(InputError, match="image, a label map or a phantom"):
        run_case(tmp_path / "c")


def test_run_command_reports_bad_input(tmp_path):
    from typer.testing import CliRunner

    from cardiotwin.cli import app

    (tmp_path / "config.toml").write_text("edge_mm = [\n")
    result = CliRunner().invoke(app, ["run", "--phantom", "1", "--out", str(tmp_path / "c"),
                                      "--config", str(tmp_path / "config.toml")])
    assert result.exit_code == 2 and "not valid TOML" in result.output
    result = CliRunner().invoke(app, ["run", "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "phantom seed" in result.output
