"""The extended torso fitted to a CT's body outline and lungs: against phantom torsos far from the
population mean (ground truth), and on the real, cropped contrast CT of ../shared/data."""

import dataclasses

import numpy as np
import pytest

from cardiotwin import labels as lab
from cardiotwin.anatomy.ct_body import BODY, LUNG, OUTSIDE, observe_body
from cardiotwin.anatomy.resample import resample_labels
from cardiotwin.anatomy.torso import extend_torso
from cardiotwin.anatomy.voxels import components, touching
from cardiotwin.anatomy.walls import build_walls
from cardiotwin.errors import InvalidImageError
from cardiotwin.io import read_image, read_labels
from cardiotwin.phantom.generate import generate_phantom
from cardiotwin.phantom.params import sample_params
from cardiotwin.types import Image

TORSO = ("torso", "lung_left", "lung_right", "spine")


def _dice_against(truth, extended, names) -> float:
    """Dice of ``names`` on the extended torso's grid, the truth sampled at its voxel centres."""
    points = extended.index_to_physical(np.indices(extended.shape).reshape(3, -1).T)
    idx = np.rint(truth.physical_to_index(points)).astype(int)
    inside = np.all((idx >= 0) & (idx < truth.shape), axis=1)
    sampled = np.zeros(len(points), np.int16)
    sampled[inside] = truth.array[tuple(idx[inside].T)]
    a, b = np.isin(extended.array.reshape(-1), lab.labels_of(names)), np.isin(sampled, lab.labels_of(names))
    return 2 * (a & b).sum() / (a.sum() + b.sum())


@pytest.mark.parametrize("seed, semi_lr, semi_ap", [(2, 205.0, 140.0), (4, 150.0, 108.0)])
def test_torso_fitted_to_a_cropped_ct_recovers_a_torso_far_from_the_mean(seed, semi_lr, semi_ap):
    """Phantom patients whose torso is 3 SD wider or narrower than the population's (175 x 122 mm),
    seen through a heart-centred CT crop that shows the right and anterior skin only: the fitted
    semi-axes are within 6 mm of the truth (2 mm voxels, partial volume at the skin; the posterior
    is not seen and comes from the axis prior), the body Dice >= 0.95 and lung Dice >= 0.88, each
    at least 0.05 better than the unfitted population torso."""
    p = dataclasses.replace(sample_params(seed), torso_semi_lr=semi_lr, torso_semi_ap=semi_ap)
    ph = generate_phantom(seed, 2.0, params=p)
    truth = ph.labels
    heart_only = truth.with_array(np.where(np.isin(truth.array, lab.labels_of(TORSO)), 0, truth.array))
    z = truth.index_to_physical(np.argwhere(truth.mask(*lab.HEART)).mean(axis=0))[2]
    lo = np.maximum(truth.physical_to_index(np.array([-semi_lr - 6, -semi_ap - 6, z - 90])).astype(int), 0)
    hi = truth.physical_to_index(np.array([60.0, 50.0, z + 90])).astype(int)
    crop = ph.image.crop(tuple(slice(a, b) for a, b in zip(lo, hi)))
    fitted, report = extend_torso(heart_only, 2.0, ct=crop)
    population, _ = extend_torso(heart_only, 2.0)
    a, b = report["fit"]["torso_semi_axes_mm"]
    assert abs(a - semi_lr) <= 6.0 and abs(b - semi_ap) <= 6.0, report["fit"]
    assert report["heart_inside_body"] and report["image"]["body_kept_fraction"] >= 0.99
    body = _dice_against(truth, fitted, TORSO + tuple(lab.HEART))
    assert body >= 0.95 and body >= _dice_against(truth, population, TORSO + tuple(lab.HEART)) + 0.05
    for lung in lab.LUNGS:
        d = _dice_against(truth, fitted, (lung,))
        assert d >= 0.88 and d >= _dice_against(truth, population, (lung,)) + 0.05, lung


def test_ct_body_observation_tells_outside_air_from_lungs(shared_data):
    """The real CT crop: outside air only in front of the upper chest (its top, anterior corner),
    two lungs of adult size within the view (1-4 l seen of a 4-7 l pair), skin points only where
    outside air is seen; an MR-like image is refused with the reason."""
    ct = read_image(shared_data / "ct_cardiac_cta_totalseg" / "ct_cropped.nii.gz")
    seen = observe_body(ct)
    classes = seen.classes.array
    assert set(np.unique(classes)) == {OUTSIDE, BODY, LUNG}
    assert 1000.0 <= seen.volumes_ml()["lungs_in_view"] <= 4000.0
    air = np.argwhere(classes == OUTSIDE)
    assert np.median(ct.index_to_physical(air)[:, 1]) < -230.0  # anterior (LPS: -y)
    assert len(seen.skin_mm) > 1000 and seen.skin_mm[:, 2].min() > 650.0  # above the heart only
    with pytest.raises(InvalidImageError, match="Hounsfield"):
        observe_body(Image(np.abs(ct.array).astype(np.float32) + 5.0, ct.spacing, ct.origin))


def test_real_cropped_ct_gives_a_torso_that_contains_it_and_extends_past_it(shared_data):
    """An expert MM-WHS heart (ct_train_1002) placed in the real CT crop (its aortic root on the CT's
    TotalSegmentator annulus): the fitted torso keeps every body voxel the CT shows, >= 97 % of its
    lung voxels (the lungs stay 5 mm off the placed heart, which is not this CT's heart), reaches
    >= 30 mm past the crop on every side, and has one left and one right lung of adult size."""
    folder = shared_data / "ct_cardiac_cta_totalseg"
    ct = read_image(folder / "ct_cropped.nii.gz")
    annulus = read_image(folder / "annulus_proper.nii.gz")
    heart = read_labels(shared_data / "labels_mmwhs_ct" / "ct_train_1002_label.nii.gz")
    root = touching(heart.mask("lv_blood"), heart.mask("aorta"))
    shift = (annulus.index_to_physical(np.argwhere(annulus.array > 0).mean(axis=0))
             - heart.index_to_physical(np.argwhere(root).mean(axis=0)))
    placed = resample_labels(heart, ct, shift)
    assert placed.volumes_ml()["lv_myocardium"] == pytest.approx(heart.volumes_ml()["lv_myocardium"], rel=0.02)
    walled, _ = build_walls(placed)
    torso, report = extend_torso(walled, 1.5, ct=ct)
    seen = report["image"]
    assert seen["body_kept_fraction"] >= 0.999 and seen["lungs_kept_fraction"] >= 0.97, seen
    assert min(seen["body_past_view_mm"].values()) >= 30.0, seen
    assert report["heart_inside_body"] and report["heart_volume_kept_fraction"] >= 0.99
    for lung in lab.LUNGS:
        assert 2000.0 <= report["lungs_ml"][lung] <= 5000.0, report["lungs_ml"]
        assert len(components(torso.array == lab.label(lung))[1]) == 1, lung
