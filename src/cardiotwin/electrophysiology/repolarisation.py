"""Action-potential duration fields and repolarisation times: RT = AT + APD(x).

APD varies smoothly through the ventricles with three gradients (signs and sizes in
:mod:`cardiotwin.electrophysiology.parameters`): transmural (endocardium longer than epicardium, the
main source of the upright T wave), apicobasal and interventricular (Keller et al. 2012, IEEE TBME
59:311 for the use of such gradients in ECG models). With Z the apicobasal coordinate (0 apex, 1 base) and
d = d_endo / (d_endo + d_epi) the relative depth from the nearest endocardium (0 endocardium,
1 epicardium; the septum, far from any epicardium, stays endocardial-like, as measured in human
septa):

    APD = apd_mean + apd_transmural (0.5 - d) + apd_apicobasal (0.5 - Z) + apd_rv [RV free wall]

(``apd_apicobasal`` is apex minus base, ``apd_rv`` RV minus LV.)

Atrial nodes get ``apd_atrial``; nodes that are never activated keep RT = +inf.
"""

from __future__ import annotations

import numpy as np

from cardiotwin.electrophysiology.parameters import EpParameters
from cardiotwin.errors import AnatomyError
from cardiotwin.types import TetMesh

FIELDS = ("uvc_apicobasal", "uvc_transventricular", "endo_distance_mm", "epi_distance_mm")


def apd_field(mesh: TetMesh, params: EpParameters) -> np.ndarray:
    """Action-potential duration (ms) per node (ventricular gradients; ``apd_atrial`` elsewhere)."""
    pd = mesh.point_data
    missing = [k for k in FIELDS if k not in pd]
    if missing:
        raise AnatomyError(f"APD gradients need the point fields {missing} (coordinates and conduction fields)")
    d_endo, d_epi = pd["endo_distance_mm"], pd["epi_distance_mm"]
    depth = d_endo / np.maximum(d_endo + d_epi, 1e-9)
    apd = (params.apd_mean + params.apd_transmural * (0.5 - depth)
           + params.apd_apicobasal * (0.5 - pd["uvc_apicobasal"])
           + params.apd_rv * (pd["uvc_transventricular"] > 0))
    return np.where(np.isfinite(apd), apd, params.apd_atrial)


def repolarisation_times(at: np.ndarray, apd: np.ndarray) -> np.ndarray:
    """RT = AT + APD (ms); +inf where the node was never activated."""
    return np.where(np.isfinite(at), at + apd, np.inf)
