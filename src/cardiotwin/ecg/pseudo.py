"""The pseudo-ECG: electrode potentials of the heart in an *infinite homogeneous* medium.

This is the classic first approximation of the body-surface ECG that ignores the torso's boundary
and its inhomogeneities (lungs, blood, bone): the heart sits in an unbounded volume conductor of
conductivity sigma_b (Plonsey & Barr, *Bioelectricity: A Quantitative Approach*, ch. 8; Gima &
Rudy 2002, Circ Res 90:889). It needs no torso mesh, so it serves for tests, quick looks and
heart-only models, but its amplitudes and morphology differ from a torso ECG
(:mod:`cardiotwin.ecg.leadfield`). Label it as a pseudo-ECG wherever it is shown.

The lead field of a point electrode at x_e in an infinite medium is the potential of a unit point
source there, Z(x) = 1 / (4 pi sigma_b |x - x_e|), so the same weights as for a torso lead field
apply: phi_e(t) = - int sigma_i grad V_m . grad Z dx = w_e . V_m(t) with w_e = -K_i Z (K_i the P1
stiffness matrix with the intracellular conductivity), and :mod:`cardiotwin.ecg.simulate` turns
them into ECGs. For a small region with a uniform grad V_m this reduces to the potential of the
impressed current dipole p = -sigma_i grad V_m |region|: phi = p . (x_e - x_0) / (4 pi sigma_b
|x_e - x_0|^3).

Units: sigma_i and sigma_b only enter as their ratio (both S/m, say), so the weights are
dimensionless and phi is in the units of V_m (mV).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from cardiotwin.ecg.simulate import leadfield_weights
from cardiotwin.errors import ElectrodeError, InvalidParameterError
from cardiotwin.fem import stiffness
from cardiotwin.types import TetMesh

__all__ = ["pseudo_ecg_weights", "infinite_medium_leadfield"]

#: default closest approach, in longest-edge lengths of the heart mesh: the P1 interpolant of
#: 1/r has a relative error ~ (h / d)^2 on the nearest elements
DEFAULT_MIN_DISTANCE_EDGES = 3.0


def _longest_edge(points: np.ndarray, cells: np.ndarray) -> float:
    pairs = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
    return float(
        np.sqrt(max(np.max(np.sum((points[cells[:, a]] - points[cells[:, b]]) ** 2, axis=1)) for a, b in pairs))
    )


def _electrodes(electrodes: np.ndarray) -> np.ndarray:
    el = np.asarray(electrodes, dtype=np.float64)
    if el.ndim != 2 or el.shape[1] != 3 or len(el) == 0:
        raise ElectrodeError(f"electrode positions must be an (E, 3) array in mm, got shape {el.shape}")
    if not np.all(np.isfinite(el)):
        raise ElectrodeError(f"electrode positions {np.flatnonzero(~np.isfinite(el).all(1)).tolist()} are NaN/inf")
    return el


def _positive(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a positive number (S/m), got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise InvalidParameterError(f"{name} must be a positive conductivity (S/m), got {value!r}")
    return v


def infinite_medium_leadfield(points: np.ndarray, electrodes: np.ndarray, sigma_b: float) -> np.ndarray:
    """Z (E, n): the lead field 1 / (4 pi sigma_b |x - x_e|) of each electrode at each point (mm)."""
    el = _electrodes(electrodes)
    sig = _positive("sigma_b", sigma_b)
    pts = np.asarray(points, dtype=np.float64)
    dist = np.sqrt(np.sum((pts[None, :, :] - el[:, None, :]) ** 2, axis=-1))
    if np.any(dist == 0):
        raise ElectrodeError("an electrode coincides with a mesh point; the infinite-medium lead field is singular there")
    return 1.0 / (4.0 * np.pi * sig * dist)


def pseudo_ecg_weights(
    mesh: TetMesh,
    electrodes: np.ndarray,
    sigma_i: float | np.ndarray,
    sigma_b: float,
    *,
    min_distance_mm: float | None = None,
) -> np.ndarray:
    """Per-node weights (E, n) of the infinite-medium pseudo-ECG at ``electrodes`` (E, 3) mm.

    ``sigma_i``: intracellular conductivity, a scalar, per-cell scalars (m,), one 3x3 tensor or
    per-cell tensors (m, 3, 3) (S/m; see :func:`cardiotwin.fem.anisotropic_tensor`);
    ``sigma_b``: conductivity of the surrounding medium (S/m, e.g. 0.2 for a torso average).
    Electrodes inside the heart or closer than ``min_distance_mm`` to a mesh node (default 3
    longest edges, where the P1 approximation of 1/r degrades) raise :class:`ElectrodeError`;
    electrodes in a cavity farther than that from the wall are fine.
    Use with :func:`cardiotwin.ecg.simulate.ecg_fast` and friends.
    """
    if not isinstance(mesh, TetMesh):
        raise InvalidParameterError(f"mesh must be a TetMesh, got {type(mesh).__name__}")
    el = _electrodes(electrodes)
    _positive("sigma_b", sigma_b)
    h = _longest_edge(mesh.points, mesh.cells)
    if min_distance_mm is None:
        min_distance_mm = DEFAULT_MIN_DISTANCE_EDGES * h
    elif not np.isfinite(min_distance_mm) or min_distance_mm < 0:
        raise InvalidParameterError(f"min_distance_mm must be a non-negative distance (mm), got {min_distance_mm!r}")
    dist, node = cKDTree(mesh.points).query(el)
    # a point inside a tetrahedron is within its longest edge of each of its vertices, so
    # d <= h flags every electrode in the tissue (and some just outside it)
    inside = dist <= h
    close = dist < min_distance_mm
    if inside.any() or close.any():
        k = int(np.flatnonzero(inside | close)[0])
        where = "inside (or within one element of)" if inside[k] else "too close to"
        raise ElectrodeError(
            f"{int((inside | close).sum())} electrode(s) lie {where} the heart, e.g. electrode {k} at "
            f"{el[k].round(2).tolist()} mm is {dist[k]:.2f} mm from node {int(node[k])}; the pseudo-ECG needs "
            f"electrodes at least {min_distance_mm:.2f} mm (min_distance_mm) from the tissue: move them out "
            "(body-surface electrodes are typically 20-100 mm away) or refine the mesh"
        )
    z = infinite_medium_leadfield(mesh.points, el, sigma_b)
    k_i = stiffness(mesh.points, mesh.cells, sigma_i)
    return leadfield_weights(k_i, z)
