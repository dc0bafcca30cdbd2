import numpy as np
import pytest

from cardiotwin import labels
from cardiotwin.errors import UnknownLabelError


def test_names_and_values_are_a_bijection():
    assert len(set(labels.LABELS.values())) == len(labels.LABELS)
    for name, value in labels.LABELS.items():
        assert labels.name(value) == name
        assert labels.label(name) == value


def test_required_structures_present():
    required = ["background", "torso", "lung_left", "lung_right", "lv_blood", "rv_blood", "la_blood", "ra_blood",
                "lv_myocardium", "rv_myocardium", "la_wall", "ra_wall", "aorta", "pulmonary_artery",
                "superior_vena_cava", "inferior_vena_cava", "pulmonary_veins", "mitral_valve",
                "tricuspid_valve", "aortic_valve", "pulmonary_valve"]
    assert set(required) <= set(labels.LABELS)


def test_unknown_name_lists_valid_names():
    with pytest.raises(UnknownLabelError, match="valid names are: background"):
        labels.label("left_ventricle")
    with pytest.raises(UnknownLabelError, match="unknown label value 99"):
        labels.name(99)
    with pytest.raises(UnknownLabelError, match=r"\[7, 99\]"):
        labels.check_values(np.array([0, 10, 7, 99]))


def test_totalsegmentator_mapping():
    assert labels.from_totalsegmentator("heart_ventricle_left") == "lv_blood"
    assert labels.from_totalsegmentator("heart_myocardium") == "lv_myocardium"
    assert labels.from_totalsegmentator("lung_middle_lobe_right") == "lung_right"
    assert labels.from_totalsegmentator("vertebrae_T7") == "spine"
    assert labels.from_totalsegmentator("ventricle_right") == "rv_blood"  # heartchambers_highres
    for target in labels.TOTALSEGMENTATOR_TO_CARDIOTWIN.values():
        labels.label(target)
    with pytest.raises(UnknownLabelError, match="no cardiotwin equivalent"):
        labels.from_totalsegmentator("kidney_left")
