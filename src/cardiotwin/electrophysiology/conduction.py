"""Sinus-rhythm activation of the four-chamber heart: atria from the sinus node, an AV delay, then
the ventricles from root nodes over a fast endocardial layer.

The model follows the eikonal sinus-rhythm parameterisation of Gillette et al. 2021 (Med Image Anal
71:102080) and Camps et al. 2021 (Med Image Anal 71:102047): the His-Purkinje system is represented
by (i) root nodes on the endocardium, placed in universal ventricular coordinates (defaults after
Durrer et al. 1970) and activated at their own times, and (ii) a fast, isotropic endocardial layer
of given depth, in which the front runs at Purkinje-like speed; the rest of the myocardium conducts
anisotropically along the LDRB fibres. The atria are activated from the sinus node with faster
conduction in the main bundles (Bachmann's bundle, crista terminalis, pectinate muscles); the
leading pacemaker site moves along the crista terminalis (``sinus_site``) and each interatrial
route (Bachmann's bundle, septum) has its own extra delay; atria and ventricles are electrically insulated except through the AV node, whose activation time plus
``av_delay`` starts the ventricular roots.

The two chambers groups are separate eikonal problems on their own submeshes (insulation by
construction); each solver is built once per twin and reused for every parameter set.

The fast layer is solved as a band of fixed depth with the layer's own depth put back as a
head-wave delay (:mod:`.fast_layer`), so that the same model holds on a 1 mm and a 2 mm mesh and
the activation is a smooth function of the depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, csgraph
from scipy.spatial import cKDTree

from cardiotwin import labels as lab
from cardiotwin.anatomy.surfaces import classify_boundary
from cardiotwin.electrophysiology.eikonal import EikonalSolver
from cardiotwin.electrophysiology.fast_layer import ENDOCARDIUM, FastBand
from cardiotwin.electrophysiology.parameters import EpParameters
from cardiotwin.errors import AnatomyError, InvalidFieldError, InvalidParameterError
from cardiotwin.types import LabelImage, TetMesh

VENTRICLES = lab.VENTRICULAR_WALLS
ATRIA = lab.ATRIAL_WALLS
BUNDLE_REGIONS = (13, 23, 24)  # fibre_region codes: Bachmann's bundle, crista terminalis, pectinate muscles
BACHMANN, CRISTA = 13, 23
INTERATRIAL_ROUTES = {"bachmann": "bachmann_delay_ms", "septal": "septal_delay_ms"}  # route -> its delay parameter
TET_EDGES = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
SITE_BAND_MM = 1.0  # half-width of the crista cross-section that a sinus site is the centre of
REQUIRED_FIELDS = ("uvc_apicobasal", "uvc_rotational", "uvc_transventricular", "endo_distance_mm",
                   "epi_distance_mm", "endocardium")


def add_conduction_fields(mesh: TetMesh, labels: LabelImage) -> TetMesh:
    """Add the point fields the conduction and repolarisation models need: ``endocardium`` (0 none,
    1 LV, 2 RV endocardial node, septal surfaces included), ``endo_distance_mm`` and
    ``epi_distance_mm`` (distance to the nearest ventricular endocardial / epicardial node; NaN
    outside the ventricles)."""
    boundary = classify_boundary(mesh, labels, "ventricles")
    boundary.require(("lv_endocardium", "rv_endocardium", "epicardium"), "the fast endocardial layer and the root nodes")
    lv, rv = boundary.nodes("lv_endocardium"), boundary.nodes("rv_endocardium")
    endo = np.zeros(mesh.n_points, dtype=np.int8)
    endo[lv], endo[rv] = ENDOCARDIUM["lv"], ENDOCARDIUM["rv"]
    vent_nodes = np.unique(mesh.cells[np.isin(mesh.tags, lab.labels_of(VENTRICLES))])
    fields = {"endocardium": endo}
    for key, surface in (("endo_distance_mm", np.concatenate([lv, rv])), ("epi_distance_mm", boundary.nodes("epicardium"))):
        dist = np.full(mesh.n_points, np.nan)
        dist[vent_nodes] = cKDTree(mesh.points[surface]).query(mesh.points[vent_nodes])[0]
        fields[key] = dist
    return mesh.with_fields(point_data=fields)


@dataclass
class _Part:
    """A conducting group of regions with its own submesh and eikonal solver."""

    cells: np.ndarray  # cell ids in the full mesh
    nodes: np.ndarray  # node ids in the full mesh (submesh node i = nodes[i])
    solver: EikonalSolver
    fibres: np.ndarray
    sheets: np.ndarray
    regions: np.ndarray

    @classmethod
    def build(cls, mesh: TetMesh, cell_mask: np.ndarray, regions: np.ndarray) -> "_Part":
        cells = np.flatnonzero(cell_mask)
        nodes, local = np.unique(mesh.cells[cells], return_inverse=True)
        sub = TetMesh(mesh.points[nodes], local.reshape(-1, 4), mesh.tags[cells])
        fibres = mesh.cell_data["fibre"][cells]
        sheets = mesh.cell_data["sheet"][cells] if "sheet" in mesh.cell_data else None
        return cls(cells, nodes, EikonalSolver(sub), fibres, sheets, regions)

    def local(self, global_nodes: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.nodes, global_nodes)


class SinusRhythmModel:
    """Activation times of a twin's heart mesh for any parameter set (build once, call often).

    The mesh needs the universal ventricular coordinates, fibres, and the fields of
    :func:`add_conduction_fields`; atria are included when the mesh has atrial walls with
    ``fibre_region`` and the landmarks give ``sinus_node`` and ``av_node``.
    """

    def __init__(self, mesh: TetMesh, landmarks: dict, backend: str = "auto"):
        missing = [k for k in REQUIRED_FIELDS if k not in mesh.point_data]
        missing += [k for k in ("fibre",) if k not in mesh.cell_data]
        if missing:
            raise AnatomyError(
                f"the heart mesh lacks {missing}: run the coordinates/fibres stage "
                "(add_coordinates_and_fibres) and add_conduction_fields first"
            )
        self.mesh = mesh
        pd = mesh.point_data
        vent = np.isin(mesh.tags, lab.labels_of(VENTRICLES))
        if not vent.any():
            raise AnatomyError("the heart mesh has no ventricular myocardium")
        self.band = FastBand.build(mesh, vent)
        self.ventricles = _Part.build(mesh, vent, self.band.regions)
        self._gpu = self._gpu_solver(backend)
        # root candidates: endocardial nodes of each ventricle that carry that ventricle's own UVC.
        # UVC give the septum to the LV (Bayer et al. 2018), so the RV's septal surface has LV
        # rotational coordinates; were it a candidate, an RV root moved continuously in its
        # coordinates would jump between free wall and septum (~12 mm apart on the demo twin, a cliff
        # in the calibration's loss). RV roots therefore live on the RV free-wall endocardium.
        endo, rv_side = pd["endocardium"], pd["uvc_transventricular"] > 0
        self._roots = {"lv": np.flatnonzero(endo == ENDOCARDIUM["lv"]),
                       "rv": np.flatnonzero((endo == ENDOCARDIUM["rv"]) & rv_side)}
        atrial = np.isin(mesh.tags, lab.labels_of(ATRIA))
        self.atria = None
        if atrial.any() and "fibre_region" in mesh.cell_data:
            for key in ("sinus_node", "av_node"):
                if key not in landmarks:
                    raise AnatomyError(f"atrial activation needs the landmark {key!r}")
            bundle = np.isin(mesh.cell_data["fibre_region"][atrial], BUNDLE_REGIONS).astype(int)
            self.atria = _Part.build(mesh, atrial, bundle)
            tree = cKDTree(mesh.points[self.atria.nodes])
            self.sinus_node = self.atria.nodes[tree.query(landmarks["sinus_node"])[1]]
            self.av_node = self.atria.nodes[tree.query(landmarks["av_node"])[1]]
            self.bridges, self.bridge_routes = self._interatrial_bridges(atrial)
            self._crista, self._crista_distance = self._crista_path()

    def _interatrial_bridges(self, atrial: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
        """(k, 2) node pairs (RA node, LA node) through which the RA excites the LA, and the route
        of each (a key of ``INTERATRIAL_ROUTES``): the closest points of the two walls within
        Bachmann's bundle and over the whole septum (Bachmann's bundle and the fossa-ovalis rim are
        the main interatrial routes; Lemery et al. 2007, Heart Rhythm 4:1157). Walls that share
        nodes are connected through the mesh as well."""
        mesh = self.mesh
        region = mesh.cell_data["fibre_region"]
        pairs, routes = [], []
        for route, cells in (("bachmann", atrial & (region == BACHMANN)), ("septal", atrial)):
            ra = np.unique(mesh.cells[cells & (mesh.tags == lab.label("ra_wall"))])
            la = np.unique(mesh.cells[cells & (mesh.tags == lab.label("la_wall"))])
            if len(ra) == 0 or len(la) == 0:
                continue
            dist, idx = cKDTree(mesh.points[la]).query(mesh.points[ra])
            best = np.argmin(dist)
            pairs.append((ra[best], la[idx[best]]))
            routes.append(route)
        if not pairs:
            raise AnatomyError("the atrial mesh has no right or left atrial wall to connect")
        return np.array(pairs), tuple(routes)

    def _crista_path(self) -> tuple[np.ndarray, np.ndarray]:
        """Crista-terminalis nodes and their geodesic distance (mm, along the RA wall's mesh edges)
        from the sinus-node landmark: the line the leading pacemaker moves on (``sinus_site``).
        Empty when the RA has no crista (no rule-based atrial fibres): the site stays the landmark."""
        mesh = self.mesh
        ra_cells = mesh.tags == lab.label("ra_wall")
        crista = np.unique(mesh.cells[ra_cells & (mesh.cell_data["fibre_region"] == CRISTA)])
        if crista.size == 0:
            return crista, np.zeros(0)
        tets = mesh.cells[ra_cells]
        i, j = (np.concatenate([tets[:, a] for a, _ in TET_EDGES]), np.concatenate([tets[:, b] for _, b in TET_EDGES]))
        length = np.linalg.norm(mesh.points[i] - mesh.points[j], axis=1)
        graph = coo_matrix((length, (i, j)), shape=(mesh.n_points, mesh.n_points)).tocsr()
        dist = csgraph.dijkstra(graph, directed=False, indices=self.sinus_node)[crista]
        keep = np.isfinite(dist)
        return crista[keep], dist[keep]

    def sinus_node_at(self, site: float) -> int:
        """Mesh node of the leading pacemaker at ``site``: the centre of the crista's cross-section at
        that fraction of the crista's geodesic length, from its end nearest the sinus-node landmark
        (0; the SA node lies in the crista at the SVC junction) toward the IVC (1). The landmark
        itself where the RA has no crista."""
        if self._crista.size == 0:
            return int(self.sinus_node)
        d = self._crista_distance
        target = d.min() + site * (d.max() - d.min())
        off = np.abs(d - target)
        band = np.flatnonzero(off <= max(SITE_BAND_MM, off.min()))
        pts = self.mesh.points[self._crista[band]]
        return int(self._crista[band[np.argmin(np.linalg.norm(pts - pts.mean(axis=0), axis=1))]])

    def _gpu_solver(self, backend: str):
        """The batched PyTorch solver on a CUDA device (``backend`` "torch", or "auto" when one is
        present); None: the Numba CPU solver. The GPU runs the plain scheme (no source factorisation;
        0.1 % mean difference on the phantom ventricles, see benchmarks/bench_eikonal_gpu.py)."""
        if backend not in ("auto", "numba", "torch"):
            raise InvalidParameterError(f"backend must be auto, numba or torch, got {backend!r}")
        if backend == "numba":
            return None
        try:
            import torch
        except ImportError:
            if backend == "torch":
                raise InvalidParameterError("backend='torch' needs PyTorch (a cardiotwin dependency: pip install torch==2.13.0)") from None
            return None
        if not torch.cuda.is_available() and backend == "auto":
            return None
        from cardiotwin.electrophysiology.eikonal_torch import TorchEikonal

        v = self.ventricles
        return TorchEikonal(v.solver.mesh.points, v.solver.mesh.cells, v.fibres, v.regions,
                            device="cuda" if torch.cuda.is_available() else "cpu")

    # --------------------------------------------------------------------------- parameters

    def root_candidates(self, ventricle: str) -> np.ndarray:
        """Node ids where roots of ``ventricle`` ("lv"/"rv") may sit: its endocardium, the RV's free wall only."""
        return self._roots[ventricle]

    def root_nodes(self, params: EpParameters) -> tuple[np.ndarray, np.ndarray]:
        """Mesh node of each root node (nearest endocardial node in (apicobasal, angle)) and its delay."""
        pd = self.mesh.point_data
        nodes, delays = [], []
        for root in params.roots:
            cand = self.root_candidates(root.ventricle)
            if len(cand) == 0:
                raise AnatomyError(f"root node {root.name!r} is in the {root.ventricle.upper()}, which has no "
                                   "endocardial nodes on this mesh: place it in the other ventricle")
            dz = pd["uvc_apicobasal"][cand] - root.apicobasal
            dphi = np.angle(np.exp(1j * (pd["uvc_rotational"][cand] - root.rotational))) / np.pi
            score = dz**2 + dphi**2
            score[~np.isfinite(score)] = np.inf
            nodes.append(cand[np.argmin(score)])
            delays.append(root.delay_ms)
        return np.array(nodes), np.array(delays, dtype=float)

    def _ventricular_velocities(self, p: EpParameters) -> np.ndarray:
        return self.band.velocities(p)

    def _atrial_velocities(self, p: EpParameters) -> np.ndarray:
        body = [p.cv_atrial_fibre, p.cv_atrial_transverse, p.cv_atrial_transverse]
        return np.array([body, [v * p.atrial_bundle_factor for v in body]])

    # --------------------------------------------------------------------------- activation

    def activation_batch(self, params: list[EpParameters],
                         roots: list[tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
        """Activation times (b, n) in ms; 0 at the sinus node (or the first root without atria).
        Nodes of non-conducting cells only (valve planes) are +inf. ``roots``: per parameter set
        the (nodes, delays) to use instead of :meth:`root_nodes` (e.g. roots mapped from a finer
        mesh of the same heart)."""
        t_atria, v_start = None, np.zeros(len(params))
        if self.atria is not None:
            t_atria = self.atrial_activation_batch(params)
            v_start = t_atria[:, self.atria.local(np.array([self.av_node]))[0]] + np.array([p.av_delay for p in params])
        return self.assemble(t_atria, self.ventricular_batch(params, roots, v_start))

    def assemble(self, atrial: np.ndarray | None, ventricular: np.ndarray) -> np.ndarray:
        """Activation times (b, n) of the whole heart from atrial (b, atrial nodes; None without
        atria) and ventricular (b, ventricular nodes) times; nodes of neither are +inf, and nodes on
        the AV junction take their ventricular time."""
        at = np.full((len(ventricular), self.mesh.n_points), np.inf)
        if atrial is not None:
            at[:, self.atria.nodes] = atrial
        at[:, self.ventricles.nodes] = ventricular
        return at

    def ventricular_batch(self, params: list[EpParameters],
                          roots: list[tuple[np.ndarray, np.ndarray]] | None = None,
                          start_ms: np.ndarray | None = None, head_wave: bool = True) -> np.ndarray:
        """Ventricular activation (b, ventricular nodes) in ms: each parameter set's earliest root
        at ``start_ms`` (default 0). ``head_wave=False`` leaves out the thin-layer delay (module
        docstring of :mod:`.fast_layer`), for a caller that adds it on other nodes."""
        v = self.ventricles
        start = np.zeros(len(params)) if start_ms is None else np.asarray(start_ms, dtype=float)
        sources, starts = [], []
        for k, p in enumerate(params):
            nodes, delays = self.root_nodes(p) if roots is None else roots[k]
            sources.append(v.local(nodes))
            starts.append(start[k] + delays - delays.min())
        velocities = np.stack([self._ventricular_velocities(p) for p in params])
        if self._gpu is not None:
            t, _ = self._gpu.solve_batch(velocities[..., :2], sources, starts)
        else:
            t = v.solver.solve_batch(v.fibres, velocities, sources, starts, v.sheets, v.regions)
        return t + self.band.delay(params, v.nodes) if head_wave else t

    def atrial_activation_batch(self, params: list[EpParameters]) -> np.ndarray:
        """Atrial activation times (b, atrial nodes): the sinus node excites the RA, the RA the LA
        through the interatrial bridges (crossed at the bundle speed)."""
        a = self.atria
        velocities = np.stack([self._atrial_velocities(p) for p in params])
        sa = [a.local(np.array([self.sinus_node_at(p.sinus_site)])) for p in params]
        first = a.solver.solve_batch(a.fibres, velocities, sa, None, a.sheets, a.regions)
        ra, la = a.local(self.bridges[:, 0]), a.local(self.bridges[:, 1])
        if not np.isfinite(first[:, ra]).all():
            raise AnatomyError(
                "the sinus node's wave cannot reach the interatrial connections: the RA wall mesh is in "
                "disconnected pieces (see components in mesh_report.json). Atrial walls are about 2.5 mm thick, "
                "so build the label map and mesh at 1 mm (--edge-mm 1, a label map of at most 1.25 mm)")
        gap = np.linalg.norm(self.mesh.points[self.bridges[:, 0]] - self.mesh.points[self.bridges[:, 1]], axis=1)
        sources = [np.concatenate([s, la]) for s in sa]
        starts = [np.concatenate([[0.0], first[k, ra] + gap / (p.cv_atrial_fibre * p.atrial_bundle_factor)
                                  + [getattr(p, INTERATRIAL_ROUTES[r]) for r in self.bridge_routes]])
                  for k, p in enumerate(params)]
        return a.solver.solve_batch(a.fibres, velocities, sources, starts, a.sheets, a.regions)

    def activation(self, params: EpParameters | None = None) -> np.ndarray:
        """Activation times (n,) in ms for one parameter set (defaults if None)."""
        return self.activation_batch([params or EpParameters()])[0]

    def summary(self, at: np.ndarray) -> dict[str, float]:
        """Atrial and ventricular total activation times (ms) and the ventricular start."""
        out: dict[str, float] = {}
        if not np.isfinite(at).any():
            raise InvalidFieldError("no node was activated")
        if self.atria is not None:  # atrial-only nodes (junction nodes carry ventricular times)
            only = np.setdiff1d(self.atria.nodes, self.ventricles.nodes)
            ta = at[only][np.isfinite(at[only])]
            out["atrial_activation_ms"] = float(ta.max() - ta.min())
        tv = at[self.ventricles.nodes]
        out["ventricular_activation_ms"] = float(tv.max() - tv.min())
        out["ventricular_start_ms"] = float(tv.min())
        return out
