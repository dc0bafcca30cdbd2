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
