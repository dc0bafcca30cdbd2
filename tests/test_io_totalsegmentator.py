import numpy as np
import pytest

from cardiotwin import labels as lab
from cardiotwin.errors import InvalidImageError
from cardiotwin.io import read_totalsegmentator, write_image
from conftest import phantom


def test_totalsegmentator_folder_maps_into_the_convention(tmp_path):
    ph = phantom(0, 2.0)
    arr = ph.labels.array
    classes = {"heart_ventricle_left": ["lv_blood"], "heart_myocardium": ["lv_myocardium"],
               "heart_ventricle_right": ["rv_blood"], "lung_upper_lobe_left": ["lung_left"],
               "lung_lower_lobe_right": ["lung_right"], "vertebrae_T8": ["spine"], "kidney_left": []}
    for cls, names in classes.items():
        mask = np.isin(arr, lab.labels_of(names)).astype(np.uint8)
        write_image(ph.image.with_array(mask), tmp_path / f"{cls}.nii.gz")
    merged = read_totalsegmentator(tmp_path)
    for names in classes.values():
        for name in names:
            np.testing.assert_array_equal(merged.mask(name), arr == lab.label(name))
    assert set(merged.present()) == {"lv_blood", "lv_myocardium", "rv_blood", "lung_left", "lung_right", "spine"}


def test_totalsegmentator_errors(tmp_path):
    with pytest.raises(InvalidImageError, match="no TotalSegmentator class"):
        read_totalsegmentator(tmp_path)
