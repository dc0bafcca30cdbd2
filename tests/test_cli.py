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
    from cardiotwin.io.phantom import write_phantom
    from conftest import phantom

    ph = phantom(1, 2.0)
    paths = write_phantom(ph, tmp_path / "patient")
    result = runner.invoke(app, ["mesh", "--labels", str(paths["labels"]), "--image", str(paths["image"]),
                                 "--out", str(tmp_path / "anatomy"), "--edge-mm", "2.0", "--opencarp"])
    assert result.exit_code == 0, result.output
    names = {p.name for p in (tmp_path / "anatomy").iterdir()}
    assert {"heart_mesh.vtu", "torso.vtu", "landmarks.json", "mesh_report.json", "heart_mesh.pts",
            "heart_mesh.elem"} <= names


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


def test_calibrate_defaults_are_the_best_route_and_quick_the_cheap_one(tmp_path, monkeypatch):
    """``cardiotwin calibrate`` fits the heart's rotation by default (the route of the real-record
    figures) and ``--quick`` passes the QUICK settings (no rotation, a smaller budget); an explicit
    ``--budget`` wins over both. The twin and the optimiser are replaced here: only the settings
    that reach ``calibrate`` are checked."""
    import cardiotwin.calibration.optimise as optimise
    import cardiotwin.pipeline.twin_folder as twin_folder
    import cardiotwin.twin as twin_module
    from cardiotwin.errors import InvalidParameterError

    seen = []

    def fake_calibrate(twin, ecg, **settings):
        seen.append(settings)
        raise InvalidParameterError("stop here")

    monkeypatch.setattr(optimise, "calibrate", fake_calibrate)
    monkeypatch.setattr(twin_module.Twin, "load", staticmethod(lambda folder: object()))
    monkeypatch.setattr(twin_folder, "ensure_lead_fields", lambda twin, folder: None)
    ecg = tmp_path / "ecg.csv"
    ecg.write_text("time_ms,I\n0,0\n1,0\n")
    base = ["calibrate", "--twin", str(tmp_path), "--ecg", str(ecg), "--out", str(tmp_path / "out")]
    for extra in ([], ["--quick"], ["--quick", "--budget", "50"]):
        result = runner.invoke(app, base + extra)
        assert result.exit_code == 2 and "stop here" in result.output, result.output
    default, quick, quick_budget = seen
    assert default["pose"] is True and "budget" not in default and default["gain"] == "lead"
    assert {k: quick[k] for k in optimise.QUICK} == optimise.QUICK and quick["pose"] is False
    assert quick_budget["budget"] == 50
    from cardiotwin.calibration.config import CalibrationConfig

    assert CalibrationConfig().replace(**optimise.QUICK).p_budget < CalibrationConfig().p_budget  # valid settings


def test_build_command_takes_an_mmwhs_map_to_an_ecg(tmp_path):
    """A heart-only map in MM-WHS codes (the phantom's seven expert classes, 2 mm) with its CT, both
    cropped around the heart as a cardiac CT is: walls, veins, a torso fitted to the CT's body and
    lungs and extended past its view, then lead fields and one 12-lead ECG, unattended."""
    import json

    import numpy as np

    from cardiotwin import labels as lab
    from cardiotwin.io import write_image
    from cardiotwin.types import Image
    from conftest import phantom

    ph = phantom(1, 2.0)
    labels = ph.labels
    centre = np.argwhere(np.isin(labels.array, lab.labels_of(lab.HEART))).mean(axis=0).astype(int)
    box = tuple(slice(max(c - h, 0), c + h) for c, h in zip(centre, (45, 45, 60)))  # <= 180 x 180 x 240 mm
    labels = labels.crop(box)
    write_image(ph.image.crop(box), tmp_path / "ct.nii.gz")
    codes = {"lv_myocardium": 205, "la_blood": 420, "lv_blood": 500, "ra_blood": 550, "rv_blood": 600,
             "aorta": 820, "pulmonary_artery": 850}
    coded = np.zeros(labels.shape, np.int16)
    for name, code in codes.items():
        coded[labels.array == lab.label(name)] = code
    write_image(Image(coded, labels.spacing, labels.origin), tmp_path / "mmwhs.nii.gz")
    result = runner.invoke(app, ["build", "--labels", str(tmp_path / "mmwhs.nii.gz"), "--out", str(tmp_path / "twin"),
                                 "--image", str(tmp_path / "ct.nii.gz"), "--edge-mm", "2.0"])
    assert result.exit_code == 0, result.output
    names = {p.name for p in (tmp_path / "twin").iterdir()}
    assert {"heart_mesh.vtu", "heart.vtu", "torso.vtu", "labels_torso.nii.gz", "leadfields.npz", "build_report.json", "ecg.png",
            "veins.png", "anatomy.png", "torso_fit.png"} <= names
    report = json.loads((tmp_path / "twin" / "build_report.json").read_text())
    assert report["label_convention"] == "mmwhs"
    seen = report["torso_extension"]["image"]
    past = seen["body_past_view_mm"]  # the crop shows the anterior skin; the body goes on past the other sides
    assert seen["body_kept_fraction"] >= 0.99 and past["anterior"] < 0.0, seen
    assert min(v for k, v in past.items() if k != "anterior") > 0.0, seen
    assert sum(v.get("status") == "placed by rule" for k, v in report["veins"].items() if k != "la_appendage") == 6
    assert 50.0 <= report["simulation"]["ventricular_activation_ms"] <= 150.0
    assert report["ecg"]["qrs_ms"] is None or 50.0 <= report["ecg"]["qrs_ms"] <= 150.0
