"""Repolarisation times: the electrotonic smoothing against the analytic damping of a Fourier mode,
its conservation of the mean, the activation-repolarisation coupling, and the T stage's linear
shortcut against the direct computation."""

from __future__ import annotations

import numpy as np
import pytest

from cardiotwin import labels as lab
from cardiotwin.electrophysiology.parameters import EpParameters
from cardiotwin.electrophysiology.repolarisation import CROSS_FIBRE_RATIO, Repolarisation
from cardiotwin.meshing.lattice import box_mesh
from cardiotwin.types import TetMesh

L = 30.0  # mm, box side


def slab(fibre, h: float = 1.0) -> TetMesh:
    """A (30 mm)^3 box of LV wall with uniform fibres and the point fields the APD basis reads."""
    n = int(round(L / h))
    pts, cells = box_mesh((n, n, n), (L, L, L))
    x = pts[:, 0] / L
    pd = {"uvc_apicobasal": pts[:, 2] / L, "uvc_transventricular": np.full(len(pts), -1.0),
          "uvc_rotational": np.arctan2(pts[:, 1] - L / 2, pts[:, 0] - L / 2),
          "endo_distance_mm": pts[:, 0], "epi_distance_mm": L - pts[:, 0], "x": x}
    tags = np.full(len(cells), lab.label("lv_myocardium"))
    return TetMesh(pts, cells, tags=tags, point_data=pd,
                   cell_data={"fibre": np.repeat(np.asarray(fibre, float)[None], len(cells), 0)})


@pytest.mark.parametrize("fibre, ratio", [((1.0, 0.0, 0.0), 1.0), ((0.0, 1.0, 0.0), CROSS_FIBRE_RATIO)])
def test_smoothing_damps_a_fourier_mode_as_the_helmholtz_filter(fibre, ratio):
    """cos(pi x / L) satisfies the natural (no-flux) boundary condition, so the screened-Poisson
    filter multiplies it by 1 / (1 + r l^2 (pi / L)^2), r = 1 along the fibres and the cross-fibre
    ratio across them. P1 elements with lumped mass at h = 1 mm on a 60 mm wavelength err by
    O((pi h / L)^2) ~ 1 % in the damped term: tolerance 1 % of the amplitude."""
    mesh = slab(fibre)
    rep = Repolarisation(mesh)
    x = mesh.points[rep.nodes, 0]
    mode = np.cos(np.pi * x / L)
    for ell in (3.0, 8.0):
        expected = mode / (1.0 + ratio * ell ** 2 * (np.pi / L) ** 2)
        got = rep.smooth(mode, ell)[0]
        assert np.abs(got - expected).max() < 0.01, (ell, np.abs(got - expected).max())
    assert np.array_equal(rep.smooth(mode, 0.0)[0], mode)


def test_smoothing_keeps_constants_and_the_volume_mean():
    """1^T (M + l^2 K) = 1^T M (K 1 = 0): the M-weighted mean of any field is conserved and a constant is
    unchanged, to the CG tolerance."""
    mesh = slab((0.6, 0.8, 0.0), h=2.0)
    rep = Repolarisation(mesh)
    rng = np.random.default_rng(0)
    f = 250.0 + 40.0 * rng.standard_normal(len(rep.nodes))
    s = rep.smooth(f, 5.0)[0]
    m = rep._mass
    assert abs((s * m).sum() / m.sum() - (f * m).sum() / m.sum()) < 1e-4
    assert s.std() < 0.2 * f.std()  # white noise is mostly removed at 5 mm
    np.testing.assert_allclose(rep.smooth(np.full(len(rep.nodes), 7.0), 5.0)[0], 7.0, atol=1e-6)


def test_coupling_one_makes_repolarisation_independent_of_the_activation_sequence():
    mesh = slab((1.0, 0.0, 0.0), h=2.0)
    rep = Repolarisation(mesh)
    x, y = mesh.points[:, 0], mesh.points[:, 1]
    early, late = 0.6 * x, 0.6 * (L - y) + 5.0  # two activation sequences of the same mean shape
    for ell in (0.0, 4.0):
        p = EpParameters(apd_coupling=1.0, rt_smoothing_mm=ell)
        a, b = rep.times(np.stack([early, late]), p)
        a -= rep.mean_activation(early)[0]
        b -= rep.mean_activation(late)[0]
        np.testing.assert_allclose(a, b, atol=1e-5)
    plain = rep.times(early, EpParameters())[0]
    np.testing.assert_allclose(plain, early + rep.apd(EpParameters()))  # κ = 0, l = 0: RT = AT + APD


def test_fixed_activation_shortcut_equals_the_direct_times():
    mesh = slab((0.0, 0.6, 0.8), h=2.0)
    rep = Repolarisation(mesh)
    at = 0.5 * np.linalg.norm(mesh.points - mesh.points[0], axis=1)
    ps = [EpParameters(apd_coupling=k, rt_smoothing_mm=ell, apd_transmural=tm, apd_apicobasal=ab, apd_septal=sep,
                       apd_anterior=ant, apd_apicobasal_mid=mid)
          for k, ell, tm, ab, sep, ant, mid in ((0.0, 0.0, 80.0, -30.0, 0.0, 0.0, 0.0), (0.3, 2.5, 40.0, 10.0, 20.0, -15.0, 5.0),
                                                (0.9, 6.0, 110.0, -55.0, -30.0, 35.0, -40.0))]
    fixed = rep.for_activation(at)
    np.testing.assert_allclose(fixed.times(ps), rep.times(np.repeat(at[None], 3, 0), ps), atol=1e-4)
    # the smoothing only matters once phase 3 can start: a window ending long before it skips the solve
    late = rep.times(at, ps[1], before_ms=10.0)[0]
    np.testing.assert_allclose(late, rep.times(at, ps[1].with_values(rt_smoothing_mm=0.0))[0])


def test_regional_apd_terms_are_differences_between_regions():
    """apd_septal and apd_anterior are septum minus lateral and anterior minus posterior LV wall (the
    rotational coordinate 0 at the septum, +pi/2 anterior), apd_apicobasal_mid mid-ventricle minus the ends."""
    mesh = slab((1.0, 0.0, 0.0), h=3.0)
    rep = Repolarisation(mesh)
    phi, z = mesh.point_data["uvc_rotational"], mesh.point_data["uvc_apicobasal"]
    base = rep.apd(EpParameters(apd_transmural=0.0, apd_apicobasal=0.0))
    diff = rep.apd(EpParameters(apd_transmural=0.0, apd_apicobasal=0.0, apd_septal=20.0, apd_anterior=-10.0,
                                apd_apicobasal_mid=12.0)) - base
    np.testing.assert_allclose(diff, 10.0 * np.cos(phi) - 5.0 * np.sin(phi) + 12.0 * (4 * z * (1 - z) - 2 / 3), atol=1e-9)


def test_effective_apd_is_floored_in_both_paths():
    """Full coupling gives every node RT = <AT> + APD, so on a 300 ms activation spread with the
    shortest APD the late nodes would repolarise before they activate; both paths floor RT - AT at
    MIN_APD_MS (exactly, where it binds) and leave the early nodes' times as they were."""
    from cardiotwin.electrophysiology.parameters import SPECS
    from cardiotwin.electrophysiology.repolarisation import MIN_APD_MS

    mesh = slab((1.0, 0.0, 0.0), h=2.0)
    rep = Repolarisation(mesh)
    at = 10.0 * mesh.points[:, 0]  # 0-300 ms across the slab
    p = EpParameters(apd_coupling=1.0, apd_mean=SPECS["apd_mean"].low)
    direct = rep.times(at, p)[0]
    fixed = rep.for_activation(at).times([p])[0]
    unfloored = rep.mean_activation(at)[0] + rep.apd(p)
    for rt in (direct, fixed):
        apd = (rt - at)[rep.nodes]
        assert apd.min() == pytest.approx(MIN_APD_MS)
        binds = (unfloored - at[rep.nodes]) < MIN_APD_MS
        assert binds.any() and not binds.all()
        np.testing.assert_allclose(rt[rep.nodes][~binds], unfloored[~binds], atol=1e-6)
