import json

import numpy as np
import pytest

from cardiotwin import labels as lab
from cardiotwin.anatomy.landmarks import find_landmarks
from cardiotwin.io.anatomy import write_landmarks
from cardiotwin.errors import AnatomyError
from conftest import phantom


def angle(u, v) -> float:
    return float(np.degrees(np.arccos(np.clip(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v), -1, 1))))


def test_landmarks_match_the_phantom_truth(tmp_path):
    ph = phantom(0, 1.0)
    lm = {k: np.array(v) for k, v in find_landmarks(ph.labels).items()}
    truth = {k: np.array(v) for k, v in ph.landmarks.items()}
    for valve in ("mitral", "tricuspid", "aortic", "pulmonary"):
        # our centre is the disc centroid, 1 mm (half the 2 mm slab) along the normal from the truth
        assert np.linalg.norm(lm[f"{valve}_valve_center"] - truth[f"{valve}_valve_center"]) < 2.0
        assert angle(lm[f"{valve}_valve_normal"], truth[f"{valve}_valve_normal"]) < 10.0
    assert np.linalg.norm(lm["lv_apex_epicardium"] - truth["lv_apex_epicardium"]) < 4.0
    assert np.linalg.norm(lm["lv_apex_endocardium"] - truth["lv_apex_endocardium"]) < 4.0
    assert angle(lm["lv_long_axis"], truth["lv_long_axis"]) < 5.0
    assert angle(lm["septal_direction"], truth["septal_direction"]) < 25.0
    # the RV apex is shorter than the LV apex along the long axis
    assert np.dot(lm["rv_apex"] - lm["lv_apex_epicardium"], lm["lv_long_axis"]) > 5.0
    # reference points lie in their structures, conduction candidates on the RA wall
    for name, structure in (("septal_point", "lv_myocardium"), ("lv_free_wall_point", "lv_myocardium"),
                            ("rv_free_wall_point", "rv_myocardium"), ("sinus_node", "ra_wall"),
                            ("av_node", "ra_wall")):
        i = np.rint(ph.labels.physical_to_index(lm[name])).astype(int)
        near = ph.labels.array[tuple(slice(k - 3, k + 4) for k in i)]
        assert lab.label(structure) in near, f"{name} not at {structure}"
    assert np.linalg.norm(lm["sinus_node"] - truth["sinus_node"]) < 15.0
    assert np.linalg.norm(lm["av_node"] - lm["tricuspid_valve_center"]) < 25.0
    path = write_landmarks(find_landmarks(ph.labels), tmp_path / "landmarks.json")
    data = json.loads(path.read_text())
    assert data["units"] == "mm" and len(data["landmarks"]["mitral_valve_center"]) == 3


def test_landmarks_need_the_valves():
    ph = phantom(1, 2.0)
    arr = ph.labels.array.copy()
    arr[arr == lab.label("aortic_valve")] = lab.label("lv_blood")
    with pytest.raises(AnatomyError, match="aortic_valve"):
        find_landmarks(ph.labels.with_array(arr))
