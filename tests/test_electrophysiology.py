"""Sinus-rhythm activation and repolarisation on the phantom twin (issue 5 physiology)."""

import numpy as np
import pytest

from cardiotwin.electrophysiology.conduction import SinusRhythmModel
from cardiotwin.electrophysiology.parameters import EpParameters, RootNode
from cardiotwin.io.parameters import read_parameters, write_parameters
from cardiotwin.electrophysiology.repolarisation import apd_field
from cardiotwin.errors import AnatomyError, InvalidParameterError
from cardiotwin.twin import ForwardModel


@pytest.fixture(scope="module")
def model(phantom_twin):
    _, twin, _ = phantom_twin
    return ForwardModel(twin)


def test_default_sinus_rhythm_is_physiological(model):
    """Durrer et al. 1970 / normal ECG ranges: QRS-like total ventricular activation 70-110 ms,
    earliest epicardial breakthrough in the RV free wall, latest activation at the LV base
    (posterobasal/lateral), atria activated in 80-120 ms."""
    sim = model.simulate(with_ecg=False)
    s = sim.summary
    assert 70.0 <= s["ventricular_activation_ms"] <= 110.0, s
    assert 80.0 <= s["atrial_activation_ms"] <= 120.0, s
    heart = model.twin.heart
    pd = heart.point_data
    vent = model.model.ventricles.nodes
    at = sim.activation
    epi = vent[(pd["epi_distance_mm"][vent] < 0.5) & (pd["endocardium"][vent] == 0)]
    rv_epi = epi[pd["uvc_transventricular"][epi] > 0]
    # the first breakthrough is at the thin anterior LV/RV junction, where the two sides tie
    assert at[rv_epi].min() <= at[epi].min() + 1.0, "earliest epicardial breakthrough must be on the RV"
    last = vent[np.argmax(at[vent])]
    assert pd["uvc_transventricular"][last] < 0 and pd["uvc_apicobasal"][last] > 0.6
    assert abs(pd["uvc_rotational"][last]) > np.pi / 2, "latest site: LV free wall, away from the septum"
    # the ventricles start after the AV delay
    assert s["ventricular_start_ms"] > EpParameters().av_delay


def test_parameters_change_activation_as_physics_says(model):
    base, slow, fast_endo = model.simulate_batch(
        [EpParameters(), EpParameters(cv_fibre=0.45, cv_transverse=0.18), EpParameters(cv_endo=3.0)], with_ecg=False)
    assert slow.summary["ventricular_activation_ms"] > base.summary["ventricular_activation_ms"] + 5
    assert fast_endo.summary["ventricular_activation_ms"] < base.summary["ventricular_activation_ms"]
    np.testing.assert_allclose(base.activation, model.simulate(with_ecg=False).activation)  # batch == single
    late_av = model.simulate(EpParameters(av_delay=150.0), with_ecg=False)
    assert np.isclose(late_av.summary["ventricular_start_ms"], base.summary["ventricular_start_ms"] + 50.0, atol=1e-6)


def test_sinus_site_moves_down_the_crista_terminalis(model):
    """``sinus_site`` puts the leading pacemaker on the crista terminalis at that fraction of its
    geodesic length, from its end at the sinus-node landmark (Boineau et al. 1988): the site is
    where the atria start (0 ms), site 0 lies within 1 cm of the landmark, the distance grows with
    the site, and a low site activates the superior RA later than site 0 does."""
    m = model.model
    sites = (0.0, 0.2, 0.4, 0.6)
    nodes = [m.sinus_node_at(s) for s in sites]
    pos = model.twin.heart.points
    dist = [np.linalg.norm(pos[n] - pos[m.sinus_node]) for n in nodes]
    assert dist[0] < 10.0 and all(b > a for a, b in zip(dist, dist[1:])), dist
    assert dist[-1] > 10.0, "0.6 of the crista lies over 1 cm from the landmark"
    t = m.atrial_activation_batch([EpParameters(sinus_site=s) for s in sites])
    local = m.atria.local(np.array(nodes))
    np.testing.assert_allclose(t[np.arange(len(sites)), local], 0.0, atol=1e-9)
    top = m.atria.local(np.array([m.sinus_node]))[0]
    assert t[-1, top] > t[0, top] + 5.0


def test_interatrial_route_delays_delay_the_left_atrium(model):
    """Delaying both interatrial routes (Bachmann's bundle, septum) by d delays every LA node that
    the RA reaches only through them by exactly d (the eikonal solution of shifted sources is the
    shifted solution); one route delayed alone delays the LA by at most d, and the RA not at all."""
    m = model.model
    d = 20.0
    base, both, bb = m.atrial_activation_batch([EpParameters(), EpParameters(bachmann_delay_ms=d, septal_delay_ms=d),
                                                EpParameters(bachmann_delay_ms=d)])
    tags = model.twin.heart.tags
    from cardiotwin import labels as lab

    la_cells = model.twin.heart.cells[tags == lab.label("la_wall")]
    ra_cells = model.twin.heart.cells[tags == lab.label("ra_wall")]
    la_only = m.atria.local(np.setdiff1d(np.unique(la_cells), np.unique(ra_cells)))
    ra = m.atria.local(np.unique(ra_cells))
    assert set(m.bridge_routes) == {"bachmann", "septal"}
    shift = both[la_only] - base[la_only]
    assert np.median(shift) == pytest.approx(d, abs=1e-6)
    assert np.all(shift <= d + 1e-6) and np.all(shift >= -1e-6)
    assert np.all(bb[la_only] - base[la_only] <= d + 1e-6)
    assert np.all(bb[ra] <= both[ra] + 1e-6)
    np.testing.assert_allclose(both[ra][both[ra] < base[la_only].min()], base[ra][both[ra] < base[la_only].min()])


def test_root_nodes_sit_where_asked(model):
    nodes, delays = model.model.root_nodes(EpParameters())
    pd = model.twin.heart.point_data
    for node, root in zip(nodes, EpParameters().roots):
        assert abs(pd["uvc_apicobasal"][node] - root.apicobasal) < 0.05
        assert abs(np.angle(np.exp(1j * (pd["uvc_rotational"][node] - root.rotational)))) < 0.2
        assert (pd["uvc_transventricular"][node] > 0) == (root.ventricle == "rv")
    sim = model.simulate(EpParameters(roots=(RootNode("only", 0.5, 0.0, "lv", 0.0),)), with_ecg=False)
    assert sim.activation[nodes[1]] == pytest.approx(sim.summary["ventricular_start_ms"], abs=1e-6)


def test_rv_root_moves_continuously_on_the_free_wall(model):
    """An RV root swept across the moderator-band box (RV rotational coordinate) moves by at most a
    few mm per 0.05 rad step and stays on the free wall. The RV septal surface carries LV rotational
    coordinates (UVC give the septum to the LV); as a candidate it made the root jump ~12 mm to the
    septum and back, cliffs in the calibration loss."""
    pd, pts = model.twin.heart.point_data, model.twin.heart.points
    for apicobasal in (0.35, 0.5, 0.65):
        roots = tuple(RootNode(f"rv{k}", apicobasal, float(r), "rv", 0.0) for k, r in enumerate(np.arange(-0.2, 1.01, 0.05)))
        nodes = model.model.root_nodes(EpParameters(roots=roots))[0]
        assert np.all(pd["uvc_transventricular"][nodes] > 0)
        steps = np.linalg.norm(np.diff(pts[nodes], axis=0), axis=1)
        assert steps.max() < 5.0, (apicobasal, steps.round(1))


def test_repolarisation_gradients(model):
    heart = model.twin.heart
    p = EpParameters()
    apd = apd_field(heart, p)
    pd = heart.point_data
    vent = model.model.ventricles.nodes
    endo = vent[pd["endo_distance_mm"][vent] < 0.5]
    epi = vent[(pd["epi_distance_mm"][vent] < 0.5) & (pd["endocardium"][vent] == 0)]
    assert apd[endo].mean() - apd[epi].mean() > 0.5 * p.apd_transmural
    at = model.simulate(p, with_ecg=False).activation
    rt = model.repolarisation.times(at, p)[0]
    assert np.all(rt[np.isfinite(at)] > at[np.isfinite(at)]) and np.all(np.isinf(rt[np.isinf(at)]))
    assert np.isfinite(at[vent]).all()


def test_parameter_validation_and_files(tmp_path):
    with pytest.raises(InvalidParameterError, match="cv_fibre"):
        EpParameters(cv_fibre=5.0)
    with pytest.raises(InvalidParameterError, match="cv_transverse must not exceed"):
        EpParameters(cv_fibre=0.4, cv_transverse=0.44)
    with pytest.raises(InvalidParameterError, match="unknown parameters"):
        EpParameters.from_dict({"cv_fibres": 0.6})
    p = EpParameters(av_delay=120.0, roots=(RootNode("a", 0.4, 0.1, "lv"),))
    assert read_parameters(write_parameters(p, tmp_path / "p.json")) == p


def test_model_needs_coordinates(phantom_twin):
    _, twin, _ = phantom_twin
    bare = twin.heart.__class__(twin.heart.points, twin.heart.cells, twin.heart.tags)
    with pytest.raises(AnatomyError, match="lacks"):
        SinusRhythmModel(bare, twin.landmarks)
