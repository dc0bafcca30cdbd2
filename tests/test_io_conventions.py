"""Label conventions of common segmentations, recognised and converted on read."""

import numpy as np
import pytest

from cardiotwin import labels as lab
from cardiotwin.errors import UnknownLabelError
from cardiotwin.io import convert_labels, read_labels, write_image
from cardiotwin.types import Image
from cardiotwin.io.conventions import CONVENTIONS, convention, detect_convention
from conftest import phantom

MMWHS_CODES = {"lv_myocardium": 205, "la_blood": 420, "lv_blood": 500, "ra_blood": 550, "rv_blood": 600,
               "aorta": 820, "pulmonary_artery": 850}


@pytest.mark.parametrize("values, expected", [
    ([0, 1, 2, 3, 4, 10, 11, 12, 13, 20, 30, 31], "cardiotwin"),
    ([0, 205, 420, 500, 550, 600, 820, 850], "mmwhs"),
    ([0, 1, 2, 3, 4, 5, 6, 7], "mmwhs7"),
    ([0, 1, 2, 3], "acdc"),
    ([0, 5, 7, 13, 17, 23, 44, 45, 46, 47, 48, 49], "totalsegmentator_v1"),
])
def test_detect_convention(values, expected):
    assert detect_convention(values).name == expected


def test_ambiguous_and_unknown_maps_name_the_way_out():
    with pytest.raises(UnknownLabelError, match="cardiotwin, mmwhs7.*--label-convention"):
        detect_convention([0, 1, 2, 3, 4, 5])  # torso/lungs/spine/heart, or a partial 1-7 map
    with pytest.raises(UnknownLabelError, match="match no known convention"):
        detect_convention([0, 999])
    with pytest.raises(UnknownLabelError, match="unknown label convention"):
        convention("nnunet_magic")
    assert convention("heartchambers_highres").name == "mmwhs7"


def test_mmwhs_codes_convert_back_to_the_same_heart(tmp_path):
    labels = phantom(0, 2.0).labels
    coded = np.zeros(labels.shape, np.int16)
    for name, code in MMWHS_CODES.items():
        coded[labels.array == lab.label(name)] = code
    write_image(Image(coded, labels.spacing, labels.origin, labels.direction), tmp_path / "mmwhs.nii.gz")
    back = read_labels(tmp_path / "mmwhs.nii.gz")
    for name in MMWHS_CODES:
        np.testing.assert_array_equal(back.mask(name), labels.mask(name), err_msg=name)
    assert set(back.present()) == set(MMWHS_CODES)
    # the 1-7 renumbering read as ACDC by force would be refused: code 4..7 are not ACDC codes
    seven = np.zeros(labels.shape, np.int16)
    for i, name in enumerate(MMWHS_CODES, start=1):
        seven[labels.array == lab.label(name)] = i
    image = Image(seven, labels.spacing, labels.origin, labels.direction)
    assert convert_labels(image)[1] == "mmwhs7"
    with pytest.raises(UnknownLabelError, match="not codes of the acdc convention"):
        convert_labels(image, "acdc")


def test_real_mmwhs_maps_read_with_their_expert_volumes(shared_data):
    """The three expert MM-WHS maps (SOURCE.md gives their volumes) read without a manual step."""
    folder = shared_data / "labels_mmwhs_ct"
    expected = {"ct_train_1002_label": (95.4, 62.6, 45.3, 66.3, 103.3, 37.8, 36.6),
                "ct_train_1005_label": (143.4, 94.4, 58.5, 130.6, 126.2, 46.0, 76.9),
                "mmwhs_template_label": (89.4, 80.3, 45.3, 91.7, 67.0, 66.4, 68.1)}
    for case, volumes in expected.items():
        labels = read_labels(folder / f"{case}.nii.gz")
        got = labels.volumes_ml()
        for name, ml in zip(MMWHS_CODES, volumes):  # SOURCE.md order: myo, LA, LV, RA, RV, AO, PA
            assert got[name] == pytest.approx(ml, abs=0.06), (case, name)
    assert set(CONVENTIONS) >= {"cardiotwin", "mmwhs", "mmwhs7", "totalsegmentator_v1", "acdc"}
