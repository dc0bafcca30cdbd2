"""The heart's orientation in the torso as calibration parameters: ECG lead-field weights of the
twin's heart rotated about its centre, inside the fixed torso.

**Why.** Of all anatomical factors, the orientation of the heart in the chest changes the QRS complex
most (Mincholé et al. 2019, Front Physiol 10:1103; Nguyen et al. 2015, J Electrocardiol 48:604), and it
varies between people by tens of degrees (Odille et al. 2017, Computing in Cardiology 44). When the
twin's anatomy or torso is not the patient's (a phantom, a template torso, or images taken in another
posture) the orientation is unknown, and a rotation is the natural extra degree of freedom, as in the
estimation of heart position from body-surface potentials by Coll-Font and Brooks 2018
(Front Physiol 9:1727).

**How.** By reciprocity (:mod:`cardiotwin.ecg.leadfield`) the electrode potentials are
w_l . V_m with w_l = -K_i Z_l, Z_l the torso lead field sampled at the heart's nodes and K_i the
heart's intracellular stiffness. Rotating the heart by R about its centre c (its tissue, fibres and
activation move with it) keeps K_i (it is built in the heart's own frame) and samples the lead fields
at the moved nodes, Z_l(c + R (x - c)). The torso lead fields are solved once on the torso mesh and
resampled on a regular grid around the heart (``spacing_mm``), from which every rotation is a
trilinear interpolation (~0.2 s for a 1 mm heart). To keep the unrotated model exact, the grid
enters only through a difference:

    w_l(R) = w_l + (-K_i) [Z_l^grid(c + R (x - c)) - Z_l^grid(x)],

so R = I gives the twin's own weights and the grid's interpolation error enters only in proportion
to the rotation. The torso's regions do not move with the heart (the blood and myocardium
conductivities of the torso stay where they were); for the rotations searched (a few tens of degrees)
this is a second-order effect next to the moved sources.

A rotation is a rotation vector in degrees in the twin's frame (its direction the axis, its length
the angle); the search box is +/- ``MAX_ROTATION_DEG`` per component.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.ndimage import map_coordinates
from scipy.spatial.transform import Rotation

from cardiotwin.ecg.conductivity import CLERC_1976, intracellular_conductivity
from cardiotwin.ecg.simulate import ELECTRODES, lead_matrix
from cardiotwin.errors import AnatomyError, InvalidParameterError
from cardiotwin.fem import stiffness
from cardiotwin.meshing.locate import locate
from cardiotwin.types import TetMesh

__all__ = ["MAX_ROTATION_DEG", "HeartRotation"]

MAX_ROTATION_DEG = 35.0
"""Half-width of the searched box of each rotation-vector component (degrees)."""
_MARGIN_MM = 35.0


class HeartRotation:
    """12-lead ECG weights (12, n_heart) of the twin's heart rotated in its torso (module docstring).

    ``grid_axes`` (3 arrays, mm) and ``fields`` (9, nx, ny, nz) hold the lead fields of the nine
    ECG electrodes (RA, LA, LL, V1-V6) on a regular grid; ``weights`` (12, n) are the unrotated
    twin's own 12-lead weights. Build it from a twin with :meth:`from_twin`."""

    def __init__(self, heart: TetMesh, grid_axes: list[np.ndarray], fields: np.ndarray, weights: np.ndarray,
                 centre: np.ndarray | None = None, info: dict | None = None):
        self.points = np.asarray(heart.points, dtype=np.float64)
        self.centre = self.points.mean(axis=0) if centre is None else np.asarray(centre, dtype=np.float64)
        self.origin = np.array([a[0] for a in grid_axes])
        self.spacing = np.array([a[1] - a[0] for a in grid_axes])
        self.fields = np.asarray(fields, dtype=np.float64)
        if self.fields.shape != (len(ELECTRODES), *(len(a) for a in grid_axes)):
            raise InvalidParameterError(f"fields must be ({len(ELECTRODES)}, nx, ny, nz) on the grid, got {self.fields.shape}")
        self.weights = np.asarray(weights, dtype=np.float64)
        cells, sigma_i, _ = intracellular_conductivity(heart, CLERC_1976)
        self._neg_ki = -stiffness(self.points, heart.cells[cells], sigma_i)
        self._sources = np.unique(heart.cells[cells])  # nodes with an intracellular domain
        self._lead = lead_matrix(ELECTRODES)  # (12, 9)
        self._z0 = self._sample(self.points[self._sources])
        self.info = info or {}

    @classmethod
    def from_twin(cls, twin, spacing_mm: float = 2.0) -> "HeartRotation":
        """Solve the torso lead fields of the twin's electrodes again (its :class:`LeadFields`
        keep only the heart weights) and resample them around the heart: ~25 s for a 1 mm twin."""
        from cardiotwin.ecg.leadfield import torso_lead_fields
        from cardiotwin.ecg.leads import snap_electrodes

        if twin.torso is None or twin.lead_fields is None:
            raise AnatomyError("rotating the heart in its torso needs the twin's torso mesh and lead fields "
                               "(torso.vtu, leadfields.npz): build them with cardiotwin.ensure_lead_fields")
        start = time.perf_counter()
        lf = twin.lead_fields
        electrodes = snap_electrodes(lf.names, lf.positions, twin.torso)
        torso_fields = torso_lead_fields(twin.torso, electrodes, reference=lf.reference)
        upper = [n.upper() for n in torso_fields.names]
        rows = torso_fields.fields[[upper.index(e) for e in ELECTRODES]]
        hp = twin.heart.points
        lo, hi = hp.min(axis=0) - _MARGIN_MM, hp.max(axis=0) + _MARGIN_MM
        axes = [np.arange(lo[i], hi[i] + spacing_mm, spacing_mm) for i in range(3)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        torso = twin.torso
        # grid points outside the skin take the clamped coordinates of the nearest cell (the field is
        # continued from the surface; rotated hearts stay well inside)
        element, bary = locate(torso.points, torso.cells, grid, k=16, clamp=True)
        values = np.einsum("qk,eqk->eq", bary, rows[:, torso.cells[element]])
        fields = values.reshape(len(ELECTRODES), *(len(a) for a in axes))
        info = {"grid_spacing_mm": spacing_mm, "grid_shape": list(fields.shape[1:]),
                "build_s": round(time.perf_counter() - start, 2)}
        return cls(twin.heart, axes, fields, lf.weights12, info=info)

    def _sample(self, pts: np.ndarray) -> np.ndarray:
        """Trilinear lead fields (9, m) at points (m, 3) (clamped to the grid's box)."""
        g = ((pts - self.origin) / self.spacing).T
        return np.stack([map_coordinates(f, g, order=1, mode="nearest") for f in self.fields])

    @staticmethod
    def matrix(rotation_deg) -> np.ndarray:
        r = np.asarray(rotation_deg, dtype=np.float64)
        if r.shape != (3,) or not np.all(np.isfinite(r)):
            raise InvalidParameterError(f"a heart rotation is a rotation vector of 3 finite degrees, got {r!r}")
        return Rotation.from_rotvec(np.deg2rad(r)).as_matrix()

    def weights12(self, rotation_deg) -> np.ndarray:
        """12-lead weights (12, n) of the heart rotated by ``rotation_deg`` (rotation vector, deg)."""
        r = np.asarray(rotation_deg, dtype=np.float64)
        R = self.matrix(r)
        if not np.any(r):
            return self.weights.copy()
        p = self.points[self._sources]
        dz = np.zeros((len(ELECTRODES), len(self.points)))
        dz[:, self._sources] = self._sample(self.centre + (p - self.centre) @ R.T) - self._z0
        return self.weights + self._lead @ (self._neg_ki @ dz.T).T
