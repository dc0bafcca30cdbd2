"""Region and myocardial conductivities: defaults, tag mapping, tensors, bad input."""

import numpy as np
import pytest

from cardiotwin import labels as lab
from cardiotwin.ecg.conductivity import (
    CLERC_1976,
    ROBERTS_SCHER_1982,
    MyocardialConductivity,
    conductivity_table,
    default_conductivities,
    insulated_junction,
    intracellular_conductivity,
    region_conductivity,
)
from cardiotwin.errors import InvalidFieldError, InvalidParameterError, UnknownLabelError
from cardiotwin.fem import ball_mesh
from cardiotwin.types import TetMesh


def test_defaults_cover_every_region_and_are_ordered_physiologically():
    table = default_conductivities()
    assert set(table) == set(lab.LABELS) - {"background"}
    # lungs and bone conduct least, blood most; heart bulk between torso and blood
    assert table["spine"] < table["lung_left"] < table["torso"] < table["heart"] < table["lv_blood"]
    assert table["lung_left"] == table["lung_right"]
    assert 0.03 <= table["lung_left"] <= 0.1 and 0.6 <= table["lv_blood"] <= 0.8
    assert 0.2 <= table["heart"] <= 0.4


def test_bulk_values_of_clerc():
    c = CLERC_1976
    assert c.bulk_longitudinal == pytest.approx(0.79)
    assert c.bulk_transverse == pytest.approx(0.259)
    # geometric mean of the eigenvalues: same determinant as the tensor
    assert c.bulk_isotropic**3 == pytest.approx(0.79 * 0.259**2, rel=1e-12)
    assert c.intracellular_isotropic**3 == pytest.approx(0.17 * 0.019**2, rel=1e-12)
    assert default_conductivities(ROBERTS_SCHER_1982)["heart"] == pytest.approx(ROBERTS_SCHER_1982.bulk_isotropic)


def test_region_conductivity_maps_tags_and_overrides():
    tags = np.array([1, 2, 3, 4, 5, 10, 1])
    sigma = region_conductivity(tags)
    d = default_conductivities()
    assert np.allclose(sigma, [d["torso"], d["lung_left"], d["lung_right"], d["spine"], d["heart"], d["lv_blood"], d["torso"]])
    table = conductivity_table({"lung_left": 0.08, 3: 0.09})
    sigma = region_conductivity(tags, table)
    assert sigma[1] == 0.08 and sigma[2] == 0.09 and sigma[0] == d["torso"]


def test_missing_region_is_named():
    with pytest.raises(InvalidParameterError, match="background"):
        region_conductivity(np.array([0, 1, 1]))
    only_torso = conductivity_table({"torso": 0.2}, defaults=False)
    with pytest.raises(InvalidParameterError, match="lung_left"):
        region_conductivity(np.array([1, 2]), only_torso)


@pytest.mark.parametrize("value", [0.0, -0.2, float("nan"), "abc", 1e3])
def test_bad_conductivity_values(value):
    with pytest.raises(InvalidParameterError):
        conductivity_table({"torso": value})


def test_unknown_region_name():
    with pytest.raises(UnknownLabelError):
        conductivity_table({"liver": 0.1})


@pytest.mark.parametrize("bad", [0.0, float("nan"), 50.0, "x"])
def test_myocardial_conductivity_range(bad):
    with pytest.raises(InvalidParameterError):
        MyocardialConductivity(bad, 0.019, 0.62, 0.24)


def _heart(fibre=None, point_fibre=None):
    b = ball_mesh(10.0, 2)
    cen = b.points[b.cells].mean(axis=1)
    tags = np.where(cen[:, 2] > 5.0, lab.label("mitral_valve"), lab.label("lv_myocardium"))
    cd = {} if fibre is None else {"fibre": fibre(len(b.cells))}
    pd = {} if point_fibre is None else {"fibre": point_fibre(len(b.points))}
    return TetMesh(b.points, b.cells, tags, point_data=pd, cell_data=cd)


def test_intracellular_tensor_along_and_across_fibres():
    rng = np.random.default_rng(0)
    mesh = _heart(fibre=lambda m: rng.normal(size=(m, 3)) * 3.0)  # not unit length on purpose
    cells, sigma, kind = intracellular_conductivity(mesh)
    assert kind.startswith("transversely")
    assert np.all(mesh.tags[cells] == lab.label("lv_myocardium"))  # valve cells have no sigma_i
    assert len(cells) < mesh.n_cells
    f = mesh.cell_data["fibre"][cells]
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    along = np.einsum("mij,mj->mi", sigma, f)
    assert np.allclose(along, 0.17 * f, atol=1e-14)
    perp = np.cross(f, rng.normal(size=f.shape))
    perp /= np.linalg.norm(perp, axis=1, keepdims=True)
    assert np.allclose(np.einsum("mij,mj->mi", sigma, perp), 0.019 * perp, atol=1e-14)


def test_intracellular_isotropic_fallback_and_point_fibres():
    cells, sigma, kind = intracellular_conductivity(_heart())
    assert kind.startswith("isotropic")
    assert np.allclose(sigma, CLERC_1976.intracellular_isotropic * np.eye(3))
    # a uniform point fibre field with random signs (fibres are axial) gives the same tensors as cells
    rng = np.random.default_rng(1)
    d = np.array([1.0, 2.0, 2.0]) / 3.0
    pt = _heart(point_fibre=lambda n: d * rng.choice([-1.0, 1.0], size=(n, 1)))
    _, sig_p, _ = intracellular_conductivity(pt)
    cl = _heart(fibre=lambda m: np.tile(d, (m, 1)))
    _, sig_c, _ = intracellular_conductivity(cl)
    assert np.allclose(sig_p, sig_c, atol=1e-14)


def test_intracellular_bad_fibres_and_no_myocardium():
    with pytest.raises(InvalidFieldError, match="fibre"):
        intracellular_conductivity(_heart(fibre=lambda m: np.zeros((m, 3))))
    b = ball_mesh(10.0, 1)
    valves = TetMesh(b.points, b.cells, np.full(len(b.cells), lab.label("aortic_valve")))
    with pytest.raises(InvalidFieldError, match="no myocardium"):
        intracellular_conductivity(valves)


def test_atrioventricular_junction_is_insulated():
    """Atria at rest and ventricles at plateau (junction nodes at the ventricular value, as the
    activation model gives them): no intracellular current crosses the fibrous annulus, so the
    lead-field ECG w.V = -Z.K_i V is zero for any lead field Z (exact up to round-off). Counted
    without the insulation, the annulus cells carry the full 90 mV step and the ECG is not zero."""
    from cardiotwin.ecg.simulate import leadfield_weights
    from cardiotwin.fem import stiffness

    b = ball_mesh(10.0, 3)
    centroid = b.points[b.cells].mean(axis=1)
    tags = np.where(centroid[:, 2] > 0, lab.label("la_wall"), lab.label("lv_myocardium"))
    mesh = TetMesh(b.points, b.cells, tags)
    junction = insulated_junction(mesh)
    assert junction.any() and np.all(mesh.tags[junction] == lab.label("la_wall"))
    ventricular_node = np.zeros(mesh.n_points, bool)
    ventricular_node[mesh.cells[mesh.tags == lab.label("lv_myocardium")]] = True
    v = np.where(ventricular_node, 5.0, -85.0)  # mV: ventricles at plateau, atria at rest
    z = np.random.default_rng(2).normal(size=(3, mesh.n_points))
    cells, sigma, _ = intracellular_conductivity(mesh)
    assert len(cells) == mesh.n_cells - junction.sum()
    w = leadfield_weights(stiffness(mesh.points, mesh.cells[cells], sigma), z)
    assert np.abs(w @ v).max() < 1e-9 * np.abs(w).sum()
    w_all = leadfield_weights(stiffness(mesh.points, mesh.cells, CLERC_1976.intracellular_isotropic), z)
    assert np.abs(w_all @ v).max() > 1e-3 * np.abs(w_all).sum()
