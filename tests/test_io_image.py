import gzip

import numpy as np
import pytest

from cardiotwin.errors import AmbiguousDicomSeriesError, CorruptFileError, InputFileNotFoundError, InvalidImageError
from cardiotwin.io import read_image, read_labels, write_dicom_series, write_image
from cardiotwin.types import Image, LabelImage


def oblique_image(dtype=np.int16) -> Image:
    rng = np.random.default_rng(0)
    a = np.radians(20)
    direction = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    direction[:, 1] *= -1  # a flipped axis, as in many scanner exports
    arr = rng.integers(-1000, 1000, size=(12, 9, 7)).astype(dtype)
    return Image(arr, (0.7, 0.8, 2.5), (-120.5, 33.25, 501.0), direction)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_roundtrip_preserves_voxels_and_orientation(tmp_path, suffix):
    img = oblique_image()
    back = read_image(write_image(img, tmp_path / f"img{suffix}"))
    np.testing.assert_array_equal(back.array, img.array)
    np.testing.assert_allclose(back.spacing, img.spacing, atol=1e-5)
    np.testing.assert_allclose(back.origin, img.origin, atol=1e-4)
    np.testing.assert_allclose(back.direction, img.direction, atol=1e-5)
    # the same voxel lands on the same physical point
    np.testing.assert_allclose(back.index_to_physical([3, 4, 5]), img.index_to_physical([3, 4, 5]), atol=1e-4)


def test_dicom_series_roundtrip_and_two_series(tmp_path):
    img = oblique_image()
    axial = Image(img.array, img.spacing, img.origin, np.eye(3))
    write_dicom_series(axial, tmp_path / "one" , series_uid="1.2.3.4")
    back = read_image(tmp_path / "one")
    np.testing.assert_array_equal(back.array, axial.array)
    np.testing.assert_allclose(back.spacing, axial.spacing, atol=1e-4)
    np.testing.assert_allclose(back.origin, axial.origin, atol=1e-4)

    # a folder with two series must not be read silently
    mixed = tmp_path / "mixed"
    write_dicom_series(axial, tmp_path / "a", series_uid="1.2.3.10", description="arterial")
    write_dicom_series(axial.with_array(axial.array + 1), tmp_path / "b", series_uid="1.2.3.20", description="venous")
    mixed.mkdir()
    for sub in ("a", "b"):
        for f in (tmp_path / sub).iterdir():
            f.rename(mixed / f"{sub}_{f.name}")
    with pytest.raises(AmbiguousDicomSeriesError, match=r"2 DICOM series.*1\.2\.3\.10.*arterial.*series_uid"):
        read_image(mixed)
    chosen = read_image(mixed, series_uid="1.2.3.20")
    np.testing.assert_array_equal(chosen.array, axial.array + 1)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputFileNotFoundError, match="image not found"):
        read_image(tmp_path / "nope.nii.gz")
    good = write_image(oblique_image(), tmp_path / "good.nii.gz")
    raw = gzip.decompress(good.read_bytes())
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(gzip.compress(raw[: len(raw) // 3]))
    with pytest.raises(CorruptFileError, match="corrupt, truncated"):
        read_image(truncated)
    garbage = tmp_path / "garbage.nii"
    garbage.write_bytes(b"not an image at all" * 10)
    with pytest.raises(CorruptFileError):
        read_image(garbage)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(CorruptFileError, match="no readable DICOM"):
        read_image(empty_dir)


def test_labels_must_match_their_image(tmp_path):
    img = oblique_image()
    arr = np.zeros(img.shape, dtype=np.int16)
    arr[2:5, 2:5, 2:5] = 20
    lab = LabelImage(arr, img.spacing, img.origin, img.direction)
    path = write_image(lab, tmp_path / "labels.nii.gz")
    assert read_labels(path, reference=img).volumes_ml()["lv_myocardium"] > 0
    mirrored = Image(img.array, img.spacing, img.origin, img.direction @ np.diag([-1, 1, 1]))
    with pytest.raises(InvalidImageError, match="does not match its image"):
        read_labels(path, reference=mirrored)
    intensity = write_image(img.with_array(img.array.astype(np.float32) + 0.5), tmp_path / "float.nii.gz")
    with pytest.raises(InvalidImageError, match="non-integer"):
        read_labels(intensity)


def test_real_ct_reads_in_physical_space(shared_data, tmp_path):
    ct = read_image(shared_data / "ct_cardiac_cta_totalseg" / "ct_cropped.nii.gz")
    assert ct.shape == (120, 126, 164)
    np.testing.assert_allclose(ct.spacing, 1.5, atol=1e-3)
    # SOURCE.md: the NIfTI affine has negative x/y steps (RAS), i.e. +x/+y in ITK's LPS frame
    np.testing.assert_allclose(np.diag(ct.direction), [1, 1, 1], atol=1e-6)
    # a single-class TotalSegmentator mask ({0, 1}) is a binary image, not a label map of one convention
    aorta = read_image(shared_data / "ct_cardiac_cta_totalseg" / "aorta.nii.gz")
    assert aorta.same_grid(ct)
    hu = ct.array[aorta.array > 0]
    assert np.median(hu) > 150, "the aorta of an arterial-phase CT is contrast-enhanced"
    back = read_image(write_image(ct, tmp_path / "ct.nrrd"))
    np.testing.assert_array_equal(back.array, ct.array)
