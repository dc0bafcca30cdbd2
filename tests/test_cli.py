from typer.testing import CliRunner

from cardiotwin.cli import app

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "phantom" in result.output and "demo" in result.output


def test_phantom_command_writes_patient(tmp_path):
    result = runner.invoke(app, ["phantom", "--seed", "2", "--spacing", "3", "--modality", "mr", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} == {"image.nii.gz", "labels.nii.gz", "phantom.json"}
    assert "lv_blood" in result.output


def test_bad_arguments_give_readable_errors(tmp_path):
    result = runner.invoke(app, ["phantom", "--spacing", "0.01", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "spacing must be between" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["phantom", "--modality", "pet", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "pet" in result.output


def test_mesh_command_writes_the_anatomy(tmp_path):
    from conftest import phantom

    ph = phantom(1, 2.0)
    paths = ph.write(tmp_path / "patient")
    result = runner.invoke(app, ["mesh", "--labels", str(paths["labels"]), "--image", str(paths["image"]),
                                 "--out", str(tmp_path / "anatomy"), "--edge-mm", "2.0", "--opencarp"])
    assert result.exit_code == 0, result.output
    names = {p.name for p in (tmp_path / "anatomy").iterdir()}
    assert {"heart.vtu", "torso.vtu", "landmarks.json", "mesh_report.json", "heart.pts", "heart.elem"} <= names


def test_mesh_command_rejects_labels_off_their_image(tmp_path):
    import numpy as np

    from cardiotwin.io import write_image
    from conftest import phantom

    ph = phantom(1, 2.0)
    write_image(ph.labels, tmp_path / "labels.nii.gz")
    shifted = ph.image.__class__(ph.image.array, ph.image.spacing, tuple(np.add(ph.image.origin, 10.0)))
    write_image(shifted, tmp_path / "image.nii.gz")
    result = runner.invoke(app, ["mesh", "--labels", str(tmp_path / "labels.nii.gz"), "--image",
                                 str(tmp_path / "image.nii.gz"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "does not match its image" in result.output


def test_calibrate_command_reports_a_missing_twin(tmp_path):
    ecg = tmp_path / "ecg.csv"
    ecg.write_text("time_ms,I\n0,0\n")
    result = runner.invoke(app, ["calibrate", "--twin", str(tmp_path / "nowhere"), "--ecg", str(ecg),
                                 "--out", str(tmp_path / "out"), "--refine"])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "nowhere" in result.output and "Traceback" not in result.output
