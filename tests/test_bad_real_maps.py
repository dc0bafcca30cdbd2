"""Bad real-world label maps: each a specific error or a documented degradation (issue 21)."""

import numpy as np
import pytest
import SimpleITK as sitk

from cardiotwin import labels as lab
from cardiotwin.anatomy.build import build_anatomy
from cardiotwin.anatomy.walls import build_walls
from cardiotwin.errors import AnatomyError, InvalidImageError
from cardiotwin.io import read_image, read_labels, write_image
from cardiotwin.types import Image
from conftest import phantom

EXPERT = ("lv_blood", "rv_blood", "la_blood", "ra_blood", "lv_myocardium", "aorta", "pulmonary_artery")


def expert_like(spacing: float = 2.0) -> np.ndarray:
    """The phantom with only the seven MM-WHS classes (no walls, valves, veins, torso)."""
    arr = phantom(1, spacing).labels.array.copy()
    arr[~np.isin(arr, lab.labels_of(EXPERT))] = 0
    return arr


def test_maps_without_a_four_chamber_heart_are_refused():
    base = phantom(1, 2.0).labels
    arr = expert_like()
    single = np.where(arr > 0, lab.label("lv_myocardium"), 0)  # a single-label (whole-heart) map
    with pytest.raises(AnatomyError, match="lacks lv_blood, rv_blood, la_blood, ra_blood"):
        build_walls(base.with_array(single.astype(np.int16)))
    no_lv = np.where(arr == lab.label("lv_blood"), 0, arr)
    with pytest.raises(AnatomyError, match="lacks lv_blood"):
        build_walls(base.with_array(no_lv))
    # a congenital heart segmented with one blood-pool label for all chambers
    one_pool = np.where(np.isin(arr, lab.labels_of(lab.BLOOD_POOLS)), lab.label("lv_blood"), arr)
    with pytest.raises(AnatomyError, match="lacks rv_blood, la_blood, ra_blood"):
        build_walls(base.with_array(one_pool))


def test_blood_pools_without_myocardium_grow_a_documented_lv_wall():
    base = phantom(1, 2.0).labels
    arr = expert_like()
    arr[arr == lab.label("lv_myocardium")] = 0
    walled, report = build_walls(base.with_array(arr))
    assert report["walls_added_ml"]["lv_myocardium"] > 50.0  # 10 mm by rule (walls module docstring)
    assert (walled.array == lab.label("lv_myocardium")).any()


def test_a_4mm_map_is_resampled_for_its_walls_and_meshes():
    """Walls of 2.5-3.5 mm vanish on 4 mm voxels: the map is resampled to 1 mm first (reported)."""
    labels = phantom(1, 4.0).labels
    arr = expert_like(4.0)
    anatomy = build_anatomy(labels.with_array(arr), with_torso=False)  # default 1 mm mesh (a 2 mm mesh
    # of these 2.5 mm atrial walls breaks them into 3-5 pieces: measured)
    repairs = anatomy.report["walls"]["repairs"]
    assert any("to 1 mm isotropic" in r for r in repairs), repairs
    assert all(anatomy.report["walls"]["walls_added_ml"][w] > 0 for w in ("rv_myocardium", "la_wall", "ra_wall"))
    assert all(anatomy.heart.report["components"][w] == 1 for w in lab.CHAMBER_WALLS)


def test_2d_maps_and_maps_off_their_image_are_refused(tmp_path):
    flat = sitk.GetImageFromArray(np.zeros((20, 20), np.int16))
    sitk.WriteImage(flat, str(tmp_path / "flat.nii.gz"))
    with pytest.raises(InvalidImageError, match="expected a 3-D image"):
        read_labels(tmp_path / "flat.nii.gz")
    ph = phantom(1, 2.0)
    write_image(ph.labels, tmp_path / "labels.nii.gz")
    write_image(Image(ph.image.array[::2], (4.0, 2.0, 2.0), ph.image.origin), tmp_path / "image.nii.gz")
    with pytest.raises(InvalidImageError, match="does not match its image"):
        read_labels(tmp_path / "labels.nii.gz", reference=read_image(tmp_path / "image.nii.gz"))
