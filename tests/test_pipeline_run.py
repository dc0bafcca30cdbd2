"""`run_case` on a 2 mm phantom with a real ECG: a complete case folder; a second run skips every
stage; changing only a calibration setting reruns calibration alone."""

from __future__ import annotations

import time

import pytest

from cardiotwin import fields as F
from cardiotwin.calibration.config import CalibrationConfig
from cardiotwin.errors import InputError
from cardiotwin.pipeline.run import RunConfig, run_case

FAST = CalibrationConfig(budget=8, stages=("QRS",), mapping_rounds=0, root_sites=0, coarse_edge_mm=None)


def test_run_case_caches_and_reruns_only_downstream(tmp_path, shared_data):
    ecg = shared_data / "ecg_ptbdb_s0010_re" / "s0010_re.hea"
    config = RunConfig(phantom_spacing_mm=2.0, edge_mm=2.0, calibration=FAST)
    case = tmp_path / "case"
    runs = run_case(case, phantom=1, ecg=ecg, config=config)
    assert [r.name for r in runs.values() if not r.skipped] == ["phantom", "anatomy", "fibres", "lead_fields",
                                                               "calibration"]
    for name in (F.HEART_MESH, F.HEART, F.TORSO, F.LANDMARKS, F.LEAD_FIELDS, "calibration/" + F.PARAMETERS,
                 "calibration/" + F.OVERLAY):
        assert (case / name).is_file(), name
    start = time.perf_counter()
    again = run_case(case, phantom=1, ecg=ecg, config=config)
    print(f"second run {time.perf_counter() - start:.2f} s")
    assert all(r.skipped for r in again.values())
    changed = run_case(case, phantom=1, ecg=ecg, config=RunConfig(
        phantom_spacing_mm=2.0, edge_mm=2.0, calibration=FAST.replace(budget=9)))
    assert [r.name for r in changed.values() if not r.skipped] == ["calibration"]


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
