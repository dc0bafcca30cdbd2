"""A coarse, ventricle-only calibration model whose parameters transfer to the fine twin.

The calibration needs thousands of forward simulations; the eikonal solve on the 1 mm ventricles
(~265k nodes) costs ~1.4 s each on 2 cores. Every calibrated parameter lives in universal
ventricular coordinates (root nodes: apicobasal, rotational) or is a material constant (velocities,
depth of the fast endocardial layer), so the same θ can be solved on a coarser mesh of the same
ventricles (multi-fidelity calibration; coarse meshes are used the same way by Gillette et al.
2021, Med Image Anal 71:102080, and graph/coarse eikonal surrogates by Camps et al. 2021, Med
Image Anal 71:102047, and Grandits et al. 2023).

Construction (once per twin, a few seconds):

1. the fine ventricular myocardium is rasterised back to a 1 mm label map (cell centroids binned) and
   re-meshed at ``edge_mm`` by the same lattice mesher as the twin
   (:func:`cardiotwin.anatomy.mesh.heart_mesh`, shape-based resampling keeps the thin RV wall
   connected at 2 mm);
2. point fields are copied from the nearest fine node (UVC, a 1 mm grid so within ~0.5 mm);
   ``endo_distance_mm``/``epi_distance_mm`` are recomputed as distances to the *fine* endocardial
   and epicardial nodes; coarse boundary nodes closer to the fine endocardium than to the fine
   epicardium take its LV/RV flag; each coarse cell takes the fibres of the fine cell holding its
   centroid. The fast layer is the band model of :mod:`cardiotwin.electrophysiology.fast_layer`
   (a band of fixed depth, the layer depth entering as a head-wave delay), which needs no cells
   finer than the layer: the coarse solve leaves the band nodes' delay out and it is added on the
   fine nodes at their own depths. Mean absolute coarse - fine difference over ten draws from the
   plausible parameter box: 0.8-3.1 ms (0.9-5.7 ms with the fast layer meshed as cells, whose
   one-cell 2 mm layer crossed the septum too early); the rest is removed by the calibration's
   output space mapping;
3. a :class:`~cardiotwin.electrophysiology.conduction.SinusRhythmModel` is built on it (no atria),
   and a sparse P1 interpolation matrix maps coarse activation times onto the fine ventricular
   nodes, where the fine lead fields give the ECG (``ecg_fast`` at 1 mm costs ~10 ms, so only the
   eikonal is coarse).

The transfer error (coarse-interpolated vs fine activation, ms, and the ECG correlation between
the two routes) is measured by :meth:`CoarseVentricles.transfer_error`, and reported by the
calibration benchmark.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from cardiotwin import labels as lab
from cardiotwin.electrophysiology.conduction import ENDOCARDIUM, VENTRICLES, SinusRhythmModel
from cardiotwin.electrophysiology.fast_layer import band_depth, head_wave_delay
from cardiotwin.electrophysiology.parameters import EpParameters
from cardiotwin.errors import AnatomyError, InvalidParameterError
from cardiotwin.meshing.locate import locate
from cardiotwin.meshing.topology import unique_faces
from cardiotwin.types import LabelImage, TetMesh

__all__ = ["CoarseVentricles"]

_UVC = ("uvc_apicobasal", "uvc_rotational", "uvc_transventricular", "uvc_transmural")


class CoarseVentricles:
    """The twin's ventricles re-meshed at ``edge_mm`` with an eikonal model and the map back to the
    fine nodes. ``fine_nodes`` are the fine ventricular node ids (those of the fine
    ``SinusRhythmModel.ventricles``) and :meth:`activation_batch` returns times on them."""

    def __init__(self, heart: TetMesh, edge_mm: float = 2.0):
        from cardiotwin.anatomy.mesh import heart_mesh

        if not 1.0 <= edge_mm <= 4.0:
            raise InvalidParameterError(f"coarse edge_mm must lie in [1, 4] mm, got {edge_mm}")
        start = time.perf_counter()
        pd = heart.point_data
        missing = [k for k in (*_UVC, "endocardium", "endo_distance_mm", "epi_distance_mm") if k not in pd]
        if missing or "fibre" not in heart.cell_data:
            raise AnatomyError(f"the heart mesh lacks {missing or ['fibre']}: run the coordinates/fibres stage first")
        vent = np.isin(heart.tags, lab.labels_of(VENTRICLES))
        if not vent.any():
            raise AnatomyError("the heart mesh has no ventricular myocardium")
        cells = np.flatnonzero(vent)
        nodes, local = np.unique(heart.cells[cells], return_inverse=True)
        sub = TetMesh(heart.points[nodes], local.reshape(-1, 4), heart.tags[cells])
        self.fine_nodes = nodes
        self.edge_mm = float(edge_mm)
        # 1-2: coarse mesh and its fields (label map of the fine ventricles, re-meshed)
        vox = _rasterise(sub, spacing_mm=1.0)
        coarse = heart_mesh(vox, edge_mm=edge_mm, regions=VENTRICLES).mesh
        fine_pts = heart.points[nodes]
        tree = cKDTree(fine_pts)
        _, near = tree.query(coarse.points)
        near_g = nodes[near]
        fields = {k: pd[k][near_g] for k in _UVC}
        endo_nodes = np.flatnonzero(pd["endocardium"] > 0)
        epi_nodes = nodes[pd["epi_distance_mm"][nodes] <= 1e-9]
        d_endo, i_endo = cKDTree(heart.points[endo_nodes]).query(coarse.points)
        d_epi = cKDTree(heart.points[epi_nodes]).query(coarse.points)[0]
        faces, owners = unique_faces(coarse.cells, coarse.n_points)
        surface = np.unique(faces[owners[:, 1] < 0])
        flag = np.zeros(coarse.n_points, dtype=np.int8)
        is_endo = surface[d_endo[surface] < d_epi[surface]]
        flag[is_endo] = pd["endocardium"][endo_nodes[i_endo[is_endo]]]
        fields.update(endocardium=flag, endo_distance_mm=d_endo, epi_distance_mm=d_epi)
        centroids = coarse.points[coarse.cells].mean(axis=1)
        elem = cKDTree(sub.points[sub.cells].mean(axis=1)).query(centroids)[1]  # nearest fine cell
        cdata = {k: heart.cell_data[k][cells][elem] for k in ("fibre", "sheet") if k in heart.cell_data}
        self.mesh = coarse.with_fields(point_data=fields, cell_data=cdata)
        self.model = SinusRhythmModel(self.mesh, {})
        self._endo = {}  # per ventricle: KD-tree of its coarse endocardial nodes, and their ids
        for side in ("lv", "rv"):  # the coarse model's own root candidates (RV: free wall), as the fine model's
            ids = self.model.root_candidates(side)
            self._endo[side] = (cKDTree(coarse.points[ids]), ids)
        # 3: P1 interpolation coarse -> fine ventricular nodes
        elem, bary = locate(coarse.points, coarse.cells, fine_pts, clamp=True)
        rows = np.repeat(np.arange(len(nodes)), 4)
        self.interpolation = sparse.csr_matrix((bary.ravel(), (rows, coarse.cells[elem].ravel())),
                                               shape=(len(nodes), coarse.n_points))
        # the fine nodes' depth and band depth, and how far each lies in the coarse band
        band_mm = band_depth(heart)[0][nodes]
        in_band = self.interpolation @ self.model.band.in_band.astype(float)
        self._fine_band = (pd["endo_distance_mm"][nodes], band_mm, in_band)
        self.build_s = time.perf_counter() - start

    @property
    def n_points(self) -> int:
        return self.mesh.n_points

    def activation_batch(self, params: list[EpParameters],
                         root_points: list[np.ndarray] | None = None) -> np.ndarray:
        """Ventricular activation times (b, fine ventricular nodes) in ms, 0 at the earliest root,
        solved on the coarse mesh and interpolated. ``root_points``: per parameter set the (k, 3)
        positions of the fine model's root nodes; each is moved to the nearest coarse endocardial
        node of its ventricle (picking roots anew in UVC on the coarse surface can land on the
        other face of a thin RV, 10 mm away)."""
        roots = None
        if root_points is not None:
            roots = [(self.snap([r.ventricle for r in p.roots], pts), np.array([r.delay_ms for r in p.roots], dtype=float))
                     for p, pts in zip(params, root_points)]
        return self.to_fine(self.solve(params, roots), params)

    def snap(self, ventricles: list[str], points: np.ndarray) -> np.ndarray:
        """The coarse endocardial node of each ventricle ("lv"/"rv") nearest each point (k, 3)."""
        return np.array([self._endo[v][1][self._endo[v][0].query(x)[1]]
                         for v, x in zip(ventricles, np.asarray(points, dtype=float))], dtype=np.int64)

    def solve(self, params: list[EpParameters], roots: list[tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
        """Coarse activation (b, coarse nodes) in ms without the head-wave delay; ``roots``: per
        parameter set the coarse (nodes, delays) (default: picked in UVC on the coarse mesh)."""
        at = np.zeros((len(params), self.n_points))
        at[:, self.model.ventricles.nodes] = self.model.ventricular_batch(params, roots, head_wave=False)
        return at

    def to_fine(self, coarse_at: np.ndarray, params: list[EpParameters]) -> np.ndarray:
        """Coarse activation (b, coarse nodes) interpolated onto the fine ventricular nodes, plus the
        head-wave delay of each parameter set at the fine nodes' depths, 0 at the earliest node."""
        fine = (self.interpolation @ np.asarray(coarse_at).T).T + head_wave_delay(params, *self._fine_band)
        return fine - fine.min(axis=1, keepdims=True)

    def root_positions(self, params: EpParameters) -> np.ndarray:
        """(k, 3) mm positions of the coarse root nodes of ``params``."""
        return self.model.mesh.points[self.model.root_nodes(params)[0]]

    def endocardial_fraction(self) -> dict[str, int]:
        return {side: int(np.count_nonzero(self.mesh.point_data["endocardium"] == code))
                for side, code in ENDOCARDIUM.items() if code}


def _rasterise(mesh: TetMesh, spacing_mm: float = 1.0) -> LabelImage:
    """Label map of a tagged tet mesh by binning cell centroids into voxels (each voxel takes the tag
    most of its centroids carry). For a lattice-made mesh at the voxel size this gives back the
    label map it came from, in O(cells) (the exact point-in-cell :func:`~cardiotwin.meshing.voxelize`
    costs ~40 s on the 1 mm ventricles)."""
    from cardiotwin.types import LabelImage

    centroids = mesh.points[mesh.cells].mean(axis=1)
    lo = mesh.points.min(axis=0) - 2.0 * spacing_mm
    shape = np.ceil((mesh.points.max(axis=0) + 2.0 * spacing_mm - lo) / spacing_mm).astype(int)
    ijk = np.floor((centroids - lo) / spacing_mm).astype(np.int64)
    flat = np.ravel_multi_index(ijk.T, shape)
    tags = np.unique(mesh.tags)
    counts = np.zeros((len(tags), int(np.prod(shape))), dtype=np.int32)
    for k, t in enumerate(tags):
        counts[k] = np.bincount(flat[mesh.tags == t], minlength=counts.shape[1])
    best = np.argmax(counts, axis=0)
    out = np.where(counts.max(axis=0) > 0, tags[best], 0).astype(np.int16).reshape(shape)
    return LabelImage(out, (spacing_mm,) * 3, tuple(lo + 0.5 * spacing_mm))
