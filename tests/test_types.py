import numpy as np
import pytest

from cardiotwin.errors import InvalidImageError, InvalidMeshError, InvalidSignalError, MissingLeadsError, UnknownLabelError
from cardiotwin.types import Ecg, Image, LabelImage, TetMesh


def rotation(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def test_image_index_physical_roundtrip():
    img = Image(np.zeros((4, 5, 6)), (0.5, 1.0, 2.0), (10.0, -3.0, 7.0), rotation(30))
    idx = np.array([[1.0, 2.0, 3.0], [0.5, 4.0, 0.0]])
    pts = img.index_to_physical(idx)
    np.testing.assert_allclose(img.physical_to_index(pts), idx, atol=1e-12)
    # axis 0 steps 0.5 mm along the first direction column
    np.testing.assert_allclose(img.index_to_physical([1, 0, 0]) - img.origin, 0.5 * rotation(30)[:, 0])
    np.testing.assert_allclose(img.affine[:3, :3] @ [1, 2, 3] + img.affine[:3, 3], pts[0])


def test_crop_keeps_the_physical_frame_and_the_class():
    """Every voxel of a crop sits at the same physical point as in the original, on a rotated grid."""
    c, s_ = np.cos(0.3), np.sin(0.3)
    rot = np.array([[c, -s_, 0], [s_, c, 0], [0, 0, 1]])
    labels = LabelImage(np.arange(4 * 5 * 6).reshape(4, 5, 6) % 3, (1.0, 2.0, 3.0), (5.0, -2.0, 7.0), rot)
    crop = labels.crop((slice(1, 3), slice(2, None), slice(None, 4)))
    assert isinstance(crop, LabelImage) and crop.shape == (2, 3, 4)
    assert np.array_equal(crop.array, labels.array[1:3, 2:, :4])
    np.testing.assert_allclose(crop.index_to_physical([1, 2, 3]), labels.index_to_physical([2, 4, 3]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(array=np.zeros((3, 3))), "3-D"),
    (dict(array=np.zeros((3, 0, 3))), "empty axis"),
    (dict(array=np.zeros((3, 3, 3)), spacing=(1, 0, 1)), "spacing"),
    (dict(array=np.zeros((3, 3, 3)), origin=(0, np.nan, 0)), "origin"),
    (dict(array=np.zeros((3, 3, 3)), direction=np.diag([1, 2, 1])), "orthonormal"),
])
def test_image_rejects_bad_geometry(kwargs, match):
    with pytest.raises(InvalidImageError, match=match):
        Image(**kwargs)


def test_label_image_validates_and_measures():
    arr = np.zeros((10, 10, 10), dtype=np.int16)
    arr[:5] = 10
    lab = LabelImage(arr, (2.0, 2.0, 2.0))
    assert lab.present() == ["lv_blood"]
    assert lab.volumes_ml() == {"lv_blood": pytest.approx(500 * 8 / 1000)}
    assert lab.mask("lv_blood").sum() == 500
    with pytest.raises(UnknownLabelError):
        LabelImage(np.full((2, 2, 2), 77, dtype=np.int16))
    with pytest.raises(InvalidImageError, match="integer"):
        LabelImage(np.zeros((2, 2, 2), dtype=float))
    with pytest.raises(UnknownLabelError):
        lab.mask("left_ventricle")


def cube_mesh():
    """A unit cube split into 6 positively oriented tetrahedra (Kuhn triangulation)."""
    pts = np.array([[i, j, k] for k in (0, 1) for j in (0, 1) for i in (0, 1)], dtype=float)
    cells = np.array([[0, 1, 3, 7], [0, 1, 7, 5], [0, 2, 7, 3], [0, 2, 6, 7], [0, 4, 5, 7], [0, 4, 7, 6]])
    vol = np.einsum("ij,ij->i", np.cross(pts[cells[:, 1]] - pts[cells[:, 0]], pts[cells[:, 2]] - pts[cells[:, 0]]),
                    pts[cells[:, 3]] - pts[cells[:, 0]])
    cells[vol < 0] = cells[vol < 0][:, [0, 1, 3, 2]]
    return pts, cells


def test_tetmesh_volumes_and_fields():
    pts, cells = cube_mesh()
    mesh = TetMesh(pts, cells, tags=np.array([20, 20, 20, 21, 21, 21]), point_data={"t": np.arange(8.0)},
                   cell_data={"fibre": np.tile([1.0, 0, 0], (6, 1))})
    assert mesh.cell_volumes().sum() == pytest.approx(1.0)
    vols = mesh.region_volumes_ml()
    assert vols["lv_myocardium"] + vols["rv_myocardium"] == pytest.approx(1e-3)
    more = mesh.with_fields(point_data={"u": np.ones(8)})
    assert set(more.point_data) == {"t", "u"}


def test_tetmesh_rejects_bad_meshes():
    pts, cells = cube_mesh()
    with pytest.raises(InvalidMeshError, match="inverted"):
        TetMesh(pts, cells[:, [0, 1, 3, 2]])
    flipped = TetMesh.reoriented(pts, cells[:, [0, 1, 3, 2]])
    assert (flipped.cell_volumes() > 0).all()
    flat = pts.copy()
    flat[:, 2] = 0.0
    with pytest.raises(InvalidMeshError, match="degenerate"):
        TetMesh(flat, cells)
    with pytest.raises(InvalidMeshError, match="indices"):
        TetMesh(pts, cells + 3)
    bad = pts.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidMeshError, match="NaN"):
        TetMesh(bad, cells)
    with pytest.raises(InvalidMeshError, match="one value per cell"):
        TetMesh(pts, cells, tags=np.zeros(3))
    with pytest.raises(InvalidMeshError, match="expected 8"):
        TetMesh(pts, cells, point_data={"x": np.zeros(5)})
    with pytest.raises(UnknownLabelError):
        TetMesh(pts, cells, tags=np.full(6, 99))


def test_ecg_validation_and_leads():
    t = np.arange(1000) / 500.0
    one, two = np.sin(2 * np.pi * t), 0.5 * np.cos(2 * np.pi * t)
    ecg = Ecg(np.vstack([one, two]), 500, ("i", "II"))
    assert ecg.leads == ("I", "II")
    assert ecg.duration_ms == pytest.approx(2000.0)
    full = ecg.with_derived_limb_leads()
    np.testing.assert_allclose(full.lead("III"), two - one)
    # Goldberger: aVR + aVL + aVF = 0
    np.testing.assert_allclose(full.lead("aVR") + full.lead("aVL") + full.lead("aVF"), 0.0, atol=1e-12)
    with pytest.raises(MissingLeadsError, match=r"\['V1'\]"):
        full.select(["I", "V1"])
    sig = np.vstack([one, two])
    sig[1, 250] = np.nan
    with pytest.raises(InvalidSignalError, match=r"1 NaN/inf samples.*lead II, t = 500.0 ms"):
        Ecg(sig, 500, ("I", "II"))
    with pytest.raises(InvalidSignalError, match="duplicate"):
        Ecg(np.zeros((2, 10)), 500, ("I", "i"))
    with pytest.raises(InvalidSignalError, match="sampling rate"):
        Ecg(np.zeros((1, 10)), 0, ("I",))
