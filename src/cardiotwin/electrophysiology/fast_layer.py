"""The fast endocardial layer as a band of fixed depth, the layer's own depth put back analytically.

A Purkinje-like layer of depth ``d`` (0.5-4 mm) cannot be meshed on the 2 mm cells the calibration
searches on: binned by depth it falls apart, and a one-cell layer (~2.7 mm) lets the front cross
the septum 5-10 ms early, so the 2 mm and 1 mm meshes of one heart disagreed by up to 6 ms (mean
absolute, phantom ventricles) and the 2 mm search landscape led the calibration away from the
truth. Here the front is solved in a sub-endocardial *band* whose depth does not depend on ``d``
(``BAND_MM`` = 4 mm, the deepest layer, capped in the septum, see below; a cell is in it when all its
nodes are), in which it runs at ``cv_endo``, and ``d`` enters in two places:

* after the solve, a band node at depth ``e > d`` is late by the head-wave time behind a planar
  fast layer, ``(e - d) s`` with ``s = sqrt(1/cv_t^2 - 1/cv_endo^2)`` (critical refraction in a
  layered medium; Cerveny 2001, Seismic Ray Theory, ch. 2);
* in the solve, the cells just outside the band (its *shell*) are crossed in ``(b - d) s`` more
  than the slow tissue would take, ``b`` the depth of the band nodes they border, so the
  myocardium behind the band is reached at the head-wave time, and a front arriving from the other
  ventricle pays the delay on entering a band, as it would crossing slow tissue up to a thin
  layer. Where ``d > b`` (a deep layer under a capped band) the shell and the myocardium shallower
  than ``d`` are part of the layer.

The band belongs to one ventricle at a time (a cell is in it only if all its nodes lie nearer the
same ventricle's endocardium) and in the septum stops ``SEPTAL_CORE_MM`` / 2 short of the middle,
so that the two bands are apart and a transseptal front pays both delays. The shell's crossing
length is the lower quartile of the distances from its outer nodes to the band (the first arrival
takes the shortest crossings). tests/test_fast_layer.py checks face, in-band, deep and transseptal
arrivals against the analytic layered-slab solution on a slab oblique to the lattice (median
errors 0.4-3.2 % and 1-4 %); on the phantom ventricles the 2 mm and 1 mm meshes now agree to
0.8-3 ms mean absolute over ten parameter draws (:mod:`cardiotwin.calibration.coarse`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from cardiotwin.electrophysiology.parameters import SPECS, EpParameters
from cardiotwin.errors import AnatomyError
from cardiotwin.types import TetMesh

BAND_MM = SPECS["endo_depth_mm"].high  # the deepest layer: no parameter set needs more
SEPTAL_CORE_MM = 3.0  # slow septal tissue kept between the two ventricles' bands
BIN_MM = 0.25  # shells are grouped by their band depth in bins of this width
N_BINS = int(np.ceil(BAND_MM / BIN_MM)) + 1
ENDOCARDIUM = {"none": 0, "lv": 1, "rv": 2}  # codes of the ``endocardium`` point field
LV, RV = ENDOCARDIUM["lv"], ENDOCARDIUM["rv"]


@dataclass
class FastBand:
    """The band of a heart mesh's ventricular cells: ``regions`` per such cell (0 band, 1 + k
    myocardium of depth bin k, 1 + N_BINS + k the shell of band depth bin k, 1 + 2 N_BINS + k one
    between both bands); per mesh node ``depth`` (mm to the endocardium), ``band_mm`` (the local
    band depth) and ``in_band``; the shell's crossing length ``shell_mm``."""

    regions: np.ndarray
    depth: np.ndarray
    band_mm: np.ndarray
    in_band: np.ndarray
    shell_mm: float

    @classmethod
    def build(cls, mesh: TetMesh, ventricular: np.ndarray) -> "FastBand":
        depth = np.nan_to_num(mesh.point_data["endo_distance_mm"], nan=BAND_MM)
        band_mm, side = band_depth(mesh)
        cells = mesh.cells[ventricular]
        band = (depth[cells] <= band_mm[cells]).all(axis=1) & (side[cells] == side[cells[:, :1]]).all(axis=1)
        in_band = np.zeros(mesh.n_points, dtype=bool)
        in_band[cells[band]] = True
        touches = []  # cells outside the band with a node in each ventricle's band
        for code in (LV, RV):
            node = np.zeros(mesh.n_points, dtype=bool)
            node[cells[band & (side[cells[:, 0]] == code)]] = True
            touches.append(node[cells].any(axis=1) & ~band)
        shell = touches[0] | touches[1]
        regions = 1 + _bin(depth[cells].mean(axis=1))  # myocardium by depth (a layer deeper than the band)
        regions[band] = 0
        if shell.any():  # each shell cell by the depth of the band nodes it borders, and sides
            b = np.where(in_band[cells[shell]], depth[cells[shell]], np.nan)
            regions[shell] = 1 + N_BINS * (1 + (touches[0] & touches[1])[shell]) + _bin(np.nanmean(b, axis=1))
        return cls(regions, depth, band_mm, in_band, _crossing_length(mesh, cells[shell], in_band))

    def velocities(self, p: EpParameters) -> np.ndarray:
        """(1 + 3 N_BINS, 3) speeds along (fibre, sheet, normal), one row per region. The band: isotropic ``cv_endo``;
        myocardium bins: ``cv_endo`` above the layer depth ``d`` (where the septal core caps the
        band), else anisotropic; shell bins (band depth ``b``, crossing length ``l``): isotropic,
        crossed in ``f / cv_endo + (l - f) / cv_t + (b - d)+ s`` with ``f = clip(d - b, 0, l)`` the
        part still in the layer (twice the delay for a shell between both ventricles' bands)."""
        b = (np.arange(N_BINS) + 0.5) * BIN_MM
        d, ell = p.endo_depth_mm, self.shell_mm
        myocardium = np.where((b < d)[:, None], p.cv_endo, [p.cv_fibre, p.cv_transverse, p.cv_transverse])
        fast = np.clip(d - b, 0.0, ell)
        base = fast / p.cv_endo + (ell - fast) / p.cv_transverse
        delay = np.maximum(b - d, 0.0) * slowness(p)
        shell = ell / np.concatenate([base + delay, base + 2.0 * delay])
        return np.vstack([[p.cv_endo] * 3, myocardium, np.repeat(shell[:, None], 3, axis=1)])

    def delay(self, params: list[EpParameters], nodes: np.ndarray) -> np.ndarray:
        """(b, len(nodes)) head-wave delay added after the solve at the mesh nodes ``nodes``."""
        return head_wave_delay(params, self.depth[nodes], self.band_mm[nodes], self.in_band[nodes].astype(float))


def head_wave_delay(params: list[EpParameters], depth_mm: np.ndarray, band_mm: np.ndarray,
                    in_band: np.ndarray) -> np.ndarray:
    """(b, n) ms: ``(min(e, b) - min(e, d)) s`` for nodes at depth ``e`` under a band of depth
    ``b``, weighted by ``in_band`` (1 band node, 0 beyond it, where the shell added the delay in
    the solve; fractions for nodes interpolated from another mesh)."""
    e = np.minimum(np.asarray(depth_mm, dtype=float), band_mm)
    w = np.asarray(in_band, dtype=float)
    return np.stack([np.maximum(e - p.endo_depth_mm, 0.0) * slowness(p) * w for p in params])


def _bin(depth_mm: np.ndarray) -> np.ndarray:
    return np.minimum(np.floor(np.nan_to_num(depth_mm, nan=BAND_MM) / BIN_MM).astype(np.int64), N_BINS - 1)


def slowness(p: EpParameters) -> float:
    """Transmural slowness (ms/mm) of the head wave behind a layer of speed ``cv_endo``."""
    return float(np.sqrt(max(1.0 / p.cv_transverse**2 - 1.0 / p.cv_endo**2, 0.0)))


def band_depth(mesh: TetMesh) -> tuple[np.ndarray, np.ndarray]:
    """Per node the local band depth (mm): ``BAND_MM``, or in the septum at most half the wall
    between the two endocardia less half ``SEPTAL_CORE_MM``; and the code of the nearer ventricle."""
    flag = mesh.point_data["endocardium"]
    dist = []
    for code in (LV, RV):
        nodes = np.flatnonzero(flag == code)
        if len(nodes) == 0:  # a one-ventricle mesh: no septum
            dist.append(np.full(mesh.n_points, np.inf))
            continue
        dist.append(cKDTree(mesh.points[nodes]).query(mesh.points)[0])
    if not np.isfinite(dist[0]).any() and not np.isfinite(dist[1]).any():
        raise AnatomyError("the heart mesh has no endocardial nodes (point field 'endocardium')")
    d_lv, d_rv = dist
    band = np.minimum(BAND_MM, np.maximum(0.5 * (d_lv + d_rv - SEPTAL_CORE_MM), 0.0))
    return band, np.where(d_lv <= d_rv, LV, RV)


def _crossing_length(mesh: TetMesh, shell_cells: np.ndarray, in_band: np.ndarray) -> float:
    """Lower quartile (mm) of the distances from the shell's nodes outside the band to the nearest
    band node of the same cell."""
    if len(shell_cells) == 0:  # no band or nothing behind it: the length is never used
        return 1.0
    x = mesh.points[shell_cells]
    gap = np.linalg.norm(x[:, :, None] - x[:, None, :], axis=-1)  # (m, 4, 4)
    gap = np.where(in_band[shell_cells][:, None, :], gap, np.inf).min(axis=2)[~in_band[shell_cells]]
    return float(np.quantile(gap[np.isfinite(gap)], 0.25))
