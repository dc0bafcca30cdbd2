"""The synthetic patient: anatomy in physiological ranges, closed chambers, orientation, intensities."""

import dataclasses

import numpy as np
import pytest

from cardiotwin import labels as lab
from cardiotwin.errors import InputError
from cardiotwin.io.phantom import write_phantom
from conftest import phantom

# Adult reference ranges (end-diastole), wide enough to hold the population the phantom samples:
# LV/RV EDV and LV mass: Kawel-Boehm et al. 2020 (JCMR 22:87); LA/RA maximal volumes: Maceira et al.
# 2010 (JCMR 12:65) and 2013 (Eur Heart J Cardiovasc Imaging 14:1054); lungs: total lung capacity
# of adults 4-9 L (Quanjer et al. 1993, Eur Respir J 6 Suppl 16).
RANGES_ML = {
    "lv_blood": (90, 160), "rv_blood": (100, 220), "la_blood": (35, 100), "ra_blood": (40, 110),
    "lv_myocardium": (90, 200),
}
LUNGS_L = (3.5, 9.0)

CONNECTED_TO = {  # what each blood pool may touch: its own walls, septum, valves and its veins
    "lv_blood": {"lv_myocardium", "mitral_valve", "aortic_valve"},
    "rv_blood": {"lv_myocardium", "rv_myocardium", "tricuspid_valve", "pulmonary_valve"},
    "la_blood": {"la_wall", "pulmonary_veins", "mitral_valve"},
    "ra_blood": {"ra_wall", "superior_vena_cava", "inferior_vena_cava", "tricuspid_valve"},
}


def face_neighbours(arr: np.ndarray, value: int) -> set[int]:
    found = set()
    for axis in range(3):
        a = np.moveaxis(arr, axis, 0)
        for x, y in ((a[:-1], a[1:]), (a[1:], a[:-1])):
            found |= set(np.unique(y[(x == value) & (y != value)]).tolist())
    return found


def test_one_mm_patient_is_physiological():
    ph = phantom(0, 1.0)
    vol = ph.volumes_ml()
    for name in lab.LABELS:
        if name not in ("background", "heart"):  # "heart" is the whole-heart tissue of coarse meshes
            assert vol.get(name, 0) > 0, f"{name} missing from the phantom"
    for name, (lo, hi) in RANGES_ML.items():
        assert lo <= vol[name] <= hi, f"{name} = {vol[name]:.0f} ml outside {lo}-{hi}"
    assert LUNGS_L[0] <= (vol["lung_left"] + vol["lung_right"]) / 1000 <= LUNGS_L[1]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_cohort_volumes_stay_physiological(seed):
    vol = phantom(seed, 2.0).volumes_ml()  # 2 mm: volumes within a few % of 1 mm, 8x faster
    for name, (lo, hi) in RANGES_ML.items():
        assert lo <= vol[name] <= hi, f"seed {seed}: {name} = {vol[name]:.0f} ml outside {lo}-{hi}"
    assert LUNGS_L[0] <= (vol["lung_left"] + vol["lung_right"]) / 1000 <= LUNGS_L[1]


def test_chambers_are_closed():
    """Every blood pool touches only its walls, valves and veins: no hole to fat or lung."""
    arr = phantom(0, 1.0).labels.array
    for pool, allowed in CONNECTED_TO.items():
        touching = {lab.name(v) for v in face_neighbours(arr, lab.label(pool))}
        foreign = {n for n in touching - allowed if not n.endswith("_wall")}
        assert not foreign, f"{pool} touches {foreign}"


def test_wall_thickness_matches_parameters():
    """Mean thickness = wall volume / area of the blood-wall interface, against the drawn parameter."""
    ph = phantom(0, 1.0)
    arr = ph.labels.array
    for pool, wall, param in (("la_blood", "la_wall", "la_wall"), ("ra_blood", "ra_wall", "ra_wall"),
                              ("rv_blood", "rv_myocardium", "rv_wall")):
        p, w = lab.label(pool), lab.label(wall)
        faces = sum(((np.moveaxis(arr, a, 0)[:-1] == p) & (np.moveaxis(arr, a, 0)[1:] == w)).sum()
                    + ((np.moveaxis(arr, a, 0)[1:] == p) & (np.moveaxis(arr, a, 0)[:-1] == w)).sum() for a in range(3))
        area = faces / 1.5  # voxel faces over-count a smooth surface by 3/2 on average (Cauchy's formula)
        thickness = (arr == w).sum() / area
        expected = getattr(ph.params, param)
        assert 0.6 * expected < thickness < 1.4 * expected, f"{wall}: {thickness:.2f} mm vs {expected:.2f}"
    lv_wall = ph.params.lv_wall
    assert 8 <= lv_wall <= 12 and 3 <= ph.params.rv_wall <= 4 and 2 <= ph.params.la_wall <= 3


def test_heart_orientation_and_position():
    ph = phantom(0, 1.0)
    lm = {k: np.array(v) for k, v in ph.landmarks.items()}
    apex_dir = lm["lv_apex_epicardium"] - lm["lv_base_center"]
    # LPS: apex points to the patient's left (+x), anterior (-y) and inferior (-z)
    assert apex_dir[0] > 0 and apex_dir[1] < 0 and apex_dir[2] < 0
    # RV anterior and to the right of the LV; LA posterior to the LV base; RA right of the LA
    idx = lambda name: np.argwhere(ph.labels.array == lab.label(name)).mean(0) * ph.labels.spacing + ph.labels.origin
    assert idx("rv_blood")[1] < idx("lv_blood")[1]
    assert idx("la_blood")[1] > idx("lv_blood")[1]
    assert idx("ra_blood")[0] < idx("la_blood")[0]
    # landmarks sit inside the structures they name
    for name, label in (("mitral_valve_center", "mitral_valve"), ("la_center", "la_blood"),
                        ("ra_center", "ra_blood"), ("lv_apex_endocardium", "lv_myocardium")):
        i = np.rint(ph.labels.physical_to_index(lm[name])).astype(int)
        window = ph.labels.array[tuple(slice(k - 1, k + 2) for k in i)]
        assert lab.label(label) in window, f"{name} not in/at {label}"
    # torso ~35 x 25 cm
    body = ph.labels.array > 0
    extent = [np.ptp(np.nonzero(body.any(axis=tuple(j for j in range(3) if j != a)))[0]) for a in range(2)]
    assert 300 < extent[0] < 400 and 210 < extent[1] < 290


def test_ct_and_mr_intensities():
    ct, mr = phantom(0, 2.0, "ct"), phantom(0, 2.0, "mr")
    arr = ct.labels.array
    median = lambda img, name: float(np.median(img.image.array[arr == lab.label(name)]))
    assert median(ct, "lv_blood") > 300 and 60 < median(ct, "lv_myocardium") < 180
    assert median(ct, "lung_left") < -700 and median(ct, "spine") > 200
    assert ct.image.array.dtype == np.int16
    assert median(mr, "lv_blood") > 2 * median(mr, "lv_myocardium")  # bSSFP: bright blood
    assert median(mr, "lung_right") < 0.3 * median(mr, "lv_myocardium")
    # noise and partial volume: blood is not one constant value
    assert np.std(ct.image.array[arr == lab.label("lv_blood")]) > 5


def test_seeds_are_deterministic_and_distinct():
    a, b = phantom(1, 2.0), phantom(2, 2.0)
    from cardiotwin.phantom import generate_phantom

    again = generate_phantom(1, 2.0)
    np.testing.assert_array_equal(a.labels.array, again.labels.array)
    np.testing.assert_array_equal(a.image.array, again.image.array)
    assert a.params != b.params
    assert abs(a.volumes_ml()["lv_blood"] - b.volumes_ml()["lv_blood"]) > 1.0


def test_anisotropic_spacing_and_bad_arguments():
    from cardiotwin.phantom import generate_phantom

    ph = generate_phantom(0, spacing=(2.0, 2.0, 5.0))
    assert ph.labels.spacing == (2.0, 2.0, 5.0)
    assert 90 < ph.volumes_ml()["lv_blood"] < 160
    with pytest.raises(InputError, match="modality"):
        generate_phantom(0, modality="pet")
    with pytest.raises(InputError, match="spacing"):
        generate_phantom(0, spacing=0.0)


def test_write_and_read_back(tmp_path):
    from cardiotwin.io import read_image, read_labels

    ph = phantom(3, 2.0)
    paths = write_phantom(ph, tmp_path)
    image = read_image(paths["image"])
    labels = read_labels(paths["labels"], reference=image)
    np.testing.assert_array_equal(labels.array, ph.labels.array)
    import json

    meta = json.loads(paths["metadata"].read_text())
    assert meta["params"]["seed"] == 3 and meta["volumes_ml"]["lv_blood"] > 0


@pytest.mark.parametrize("seed", [4, 22])
def test_heart_lies_inside_the_thorax(seed):
    """Seeds whose drawn heart reached the skin (4: 0 mm deep; 22: too deep a heart for a shallow
    chest) are placed behind the chest wall and in front of the spine. Measured on the painted 3 mm
    labels with the torso painter's own depth; tolerance one voxel (the placement is measured on
    its own 3 mm grid, offset from this one)."""
    from cardiotwin.phantom import draw_patient, generate_phantom, place_heart, sample_params
    from cardiotwin.phantom.placement import ANTERIOR_GAP_MM, POSTERIOR_GAP_MM
    from cardiotwin.phantom.torso import CHEST_WALL, SPINE_RADIUS, spine_center, superellipse_radius

    drawn = sample_params(seed)
    placed, report = place_heart(drawn)
    assert report["anterior_depth_mm"]["drawn"] < 1.0  # what the draw alone gave
    assert placed == draw_patient(seed)
    ph = generate_phantom(seed, 3.0)
    p = ph.params
    assert p == placed
    xyz = np.argwhere(np.isin(ph.labels.array, lab.labels_of(lab.HEART))) * 3.0 + ph.labels.origin
    front = xyz[xyz[:, 1] < 0]
    rho = superellipse_radius(front[:, 0], front[:, 1], p.torso_semi_lr, p.torso_semi_ap, p.torso_exponent)
    depth = ((1 - rho) * min(p.torso_semi_lr, p.torso_semi_ap)).min()
    assert depth >= p.fat_thickness + CHEST_WALL + ANTERIOR_GAP_MM - 3.0, depth
    assert xyz[:, 1].max() <= spine_center(p)[1] - SPINE_RADIUS - POSTERIOR_GAP_MM + 3.0
    # the chest is deepened only as far as needed, and stays in the adult range (AP 20-30 cm)
    assert p.torso_semi_ap >= drawn.torso_semi_ap and 2 * p.torso_semi_ap < 300.0
    if seed == 22:
        assert report["chest_deepened_mm"] > 0


def test_a_heart_inside_the_thorax_is_not_moved():
    from cardiotwin.phantom import place_heart, sample_params

    drawn = sample_params(3)
    deeper = dataclasses.replace(drawn, heart_offset=(drawn.heart_offset[0], drawn.heart_offset[1] + 5.0, 0.0))
    placed, report = place_heart(deeper)
    assert placed == deeper and report["heart_moved_posterior_mm"] == 0.0 and report["chest_deepened_mm"] == 0.0
