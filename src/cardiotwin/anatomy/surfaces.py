"""Anatomical classification of the boundary of a chamber's myocardium (endocardium, epicardium,
valve rings, venous openings, septum), the surfaces on which universal coordinates and rule-based
fibres put their Dirichlet conditions.

A *domain* is a set of myocardial regions of a tagged heart mesh: ``"ventricles"`` (LV + RV
myocardium), ``"la"`` (LA wall) or ``"ra"`` (RA wall). Its boundary faces are the faces of its
tetrahedra that are not shared with another tetrahedron of the domain. Each is classified by what
lies on its other side:

1. **another region of the mesh** (an interface): its tag decides, exactly. Valve-plane cells give
   the valve ring of that valve; atrial wall cells seen from a ventricle (and ventricular cells seen
   from an atrium) give the atrioventricular junction; the other atrium's wall gives the interatrial
   septum; blood-pool cells (meshes built with ``include_blood=True``) give the endocardium;
2. **nothing** (the mesh's outer boundary): the label map is looked up just outside the face, at
   the centroid moved along the outward normal by 0.5, 1, 1.5 and 2 voxel sizes; the first label
   that is not the domain's own tissue decides (the smoothed mesh surface and the voxel boundary
   differ by up to about half a voxel, so the nearest samples can fall back into the wall). Blood
   pools give the endocardium of their chamber, valve labels and the great-artery lumens (aorta,
   pulmonary artery) give the valve ring / outflow opening, caval and pulmonary-vein lumens give
   the venous openings, anything else (torso, lungs, fat, vessel walls, background) the
   epicardium.

Faces classified by the label map are then cleaned by two rounds of a majority vote over their
edge neighbours (an isolated face whose look-up hit a voxel of a neighbouring structure takes the
class of at least two of its three neighbours); classes taken from mesh interfaces are exact and
never changed.

The alternative, meshing the blood pools (``heart_mesh(include_blood=True)``) and reading all
classes from interfaces, is supported by rule 1, but costs a mesh of the cavities (about twice the
tetrahedra) for every patient; the label look-up needs only the label map that the mesh came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from cardiotwin import labels as lab
from cardiotwin.errors import AnatomyError, InvalidMeshError
from cardiotwin.meshing.topology import boundary_edge_use, unique_faces
from cardiotwin.types import LabelImage, TetMesh

__all__ = [
    "SURFACES",
    "DOMAINS",
    "Boundary",
    "classify_boundary",
    "boundary_from_triangles",
    "check_units",
]

#: surface class codes (``Boundary.kind``)
SURFACES: dict[str, int] = {
    "epicardium": 1,
    "lv_endocardium": 2,
    "rv_endocardium": 3,
    "la_endocardium": 4,
    "ra_endocardium": 5,
    "mitral_valve": 6,
    "tricuspid_valve": 7,
    "aortic_valve": 8,
    "pulmonary_valve": 9,
    "av_junction": 10,
    "pulmonary_veins": 11,
    "superior_vena_cava": 12,
    "inferior_vena_cava": 13,
    "interatrial_septum": 14,
}
SURFACE_NAMES = {v: k for k, v in SURFACES.items()}

#: myocardial regions (label names) of each domain
DOMAINS: dict[str, tuple[str, ...]] = {
    "ventricles": ("lv_myocardium", "rv_myocardium"),
    "la": ("la_wall",),
    "ra": ("ra_wall",),
}

# what lies beyond a boundary face (label name) -> surface class, per domain; names not listed
# are epicardium, the domain's own tissue means "look further out"
_BEYOND: dict[str, dict[str, str]] = {
    "ventricles": {
        "lv_blood": "lv_endocardium", "rv_blood": "rv_endocardium",
        "mitral_valve": "mitral_valve", "tricuspid_valve": "tricuspid_valve",
        "aortic_valve": "aortic_valve", "pulmonary_valve": "pulmonary_valve",
        "aorta": "aortic_valve", "pulmonary_artery": "pulmonary_valve",
        "la_wall": "av_junction", "ra_wall": "av_junction", "la_blood": "av_junction", "ra_blood": "av_junction",
    },
    "la": {
        "la_blood": "la_endocardium", "mitral_valve": "mitral_valve", "pulmonary_veins": "pulmonary_veins",
        "lv_myocardium": "av_junction", "rv_myocardium": "av_junction", "lv_blood": "mitral_valve",
        "ra_wall": "interatrial_septum", "ra_blood": "interatrial_septum",
    },
    "ra": {
        "ra_blood": "ra_endocardium", "tricuspid_valve": "tricuspid_valve",
        "superior_vena_cava": "superior_vena_cava", "inferior_vena_cava": "inferior_vena_cava",
        "lv_myocardium": "av_junction", "rv_myocardium": "av_junction", "rv_blood": "tricuspid_valve",
        "la_wall": "interatrial_septum", "la_blood": "interatrial_septum",
    },
}
_LOOKUP_STEPS = (0.5, 1.0, 1.5, 2.0)  # voxel sizes along the outward normal
#: smallest plausible extent (mm) of one chamber's myocardium; below it the mesh is in other units
MIN_EXTENT_MM = 5.0


def _lut(domain: str) -> np.ndarray:
    """label value -> surface code (0: the domain's own tissue, look further)."""
    lut = np.full(max(lab.NAMES) + 1, SURFACES["epicardium"], dtype=np.int16)
    for name, surface in _BEYOND[domain].items():
        lut[lab.label(name)] = SURFACES[surface]
    lut[lab.labels_of(DOMAINS[domain])] = 0
    return lut


@dataclass(frozen=True)
class Boundary:
    """The classified boundary of one domain of a mesh.

    ``cells``: indices (into the mesh) of the domain's tetrahedra; ``faces`` (F, 3): node indices
    (mesh numbering) of its boundary triangles, ordered so that their normal points out of the
    domain; ``kind`` (F,): :data:`SURFACES` codes; ``exact`` (F,): True where the class came from a
    mesh interface (or was given), False where from the label map.
    """

    domain: str
    cells: np.ndarray
    faces: np.ndarray
    kind: np.ndarray
    exact: np.ndarray
    pinched_edges: int = 0

    def mask(self, *names: str) -> np.ndarray:
        """Faces of any of the named classes."""
        return np.isin(self.kind, [SURFACES[n] for n in names])

    def nodes(self, *names: str) -> np.ndarray:
        """Sorted unique mesh nodes of the faces of the named classes."""
        return np.unique(self.faces[self.mask(*names)])

    def counts(self) -> dict[str, int]:
        """Number of faces per class present."""
        values, counts = np.unique(self.kind, return_counts=True)
        return {SURFACE_NAMES[int(v)]: int(c) for v, c in zip(values, counts)}

    def require(self, names: tuple[str, ...], purpose: str, any_of: bool = False) -> None:
        """Raise :class:`AnatomyError` unless the named classes are present (all, or ``any_of``)."""
        have = self.counts()
        missing = [n for n in names if have.get(n, 0) == 0]
        if (any_of and len(missing) == len(names)) or (not any_of and missing):
            raise AnatomyError(
                f"{purpose} needs the {' or '.join(missing) if any_of else ', '.join(missing)} surface of the "
                f"{self.domain} but the mesh boundary has none (found: {have}). Mesh the heart from a label map "
                "that contains the blood pools and valve planes next to the myocardium (run the walls stage "
                "first), or pass a Boundary built with boundary_from_triangles"
            )


def check_units(points: np.ndarray, what: str) -> None:
    """Raise :class:`InvalidMeshError` when a chamber's myocardium is too small to be in mm."""
    extent = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0))) if len(points) else 0.0
    if extent < MIN_EXTENT_MM:
        raise InvalidMeshError(
            f"the {what} spans only {extent:.3g} across its bounding box; cardiotwin meshes are in millimetres "
            f"and a heart chamber spans at least {MIN_EXTENT_MM:g} mm. The mesh looks like it is in metres "
            "(scale the points by 1000) or centimetres (by 10)"
        )


def _domain_faces(mesh: TetMesh, in_domain: np.ndarray):
    """Boundary faces of the domain: (faces oriented outward, inside cell, outside cell or -1)."""
    try:
        faces, owners = unique_faces(mesh.cells, mesh.n_points)
    except ValueError as exc:  # a face shared by three or more tetrahedra
        raise InvalidMeshError(f"the mesh is not a valid tetrahedral complex: {exc}; remesh it") from None
    in0 = in_domain[owners[:, 0]]
    in1 = np.where(owners[:, 1] >= 0, in_domain[np.maximum(owners[:, 1], 0)], False)
    keep = in0 != in1
    faces, owners, in0 = faces[keep], owners[keep], in0[keep]
    inside = np.where(in0, owners[:, 0], owners[:, 1])
    outside = np.where(in0, owners[:, 1], owners[:, 0])
    # orient outward: the inside cell's fourth vertex must lie behind the face
    opposite = mesh.cells[inside].sum(axis=1) - faces.sum(axis=1)
    p = mesh.points
    a = p[faces[:, 0]]
    normal = np.cross(p[faces[:, 1]] - a, p[faces[:, 2]] - a)
    flip = np.einsum("ij,ij->i", normal, p[opposite] - a) > 0
    faces = faces.copy()
    faces[flip] = faces[flip][:, [0, 2, 1]]
    return faces, inside, outside


def _check_manifold(faces: np.ndarray, domain: str, strict: bool) -> int:
    """Number of pinched boundary edges (used by 4, 6, ... triangles: two parts of the wall touching
    along an edge, a voxel-mesh artefact that is harmless for Laplace solves); with ``strict`` they
    raise :class:`InvalidMeshError`."""
    keys, use = boundary_edge_use(faces)
    bad = use != 2
    if bad.any() and strict:
        edge = int(keys[np.flatnonzero(bad)[0]])
        raise InvalidMeshError(
            f"the boundary of the {domain} is not a closed 2-manifold: {int(bad.sum())} edge(s) are used by "
            f"{sorted(set(use[bad].tolist()))} boundary triangles instead of 2 (e.g. the edge between nodes "
            f"{edge >> 32} and {edge & 0xFFFFFFFF}); two parts of the wall touch along an edge or a vertex only. "
            "Remesh (e.g. close the label map by one voxel) so that the myocardium is a manifold solid"
        )
    return int(bad.sum())


def _face_adjacency(faces: np.ndarray) -> sparse.csr_matrix:
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [0, 2]]]), axis=1).astype(np.int64)
    _, edge_id = np.unique(e[:, 0] << 32 | e[:, 1], return_inverse=True)
    n = len(faces)
    inc = sparse.csr_matrix((np.ones(3 * n), (np.tile(np.arange(n), 3), edge_id.ravel())))
    adj = (inc @ inc.T).tocsr()
    adj.setdiag(0)
    adj.eliminate_zeros()
    return adj


def _majority(faces: np.ndarray, kind: np.ndarray, exact: np.ndarray, rounds: int = 2) -> np.ndarray:
    adj = _face_adjacency(faces)
    kind = kind.copy()
    n_kinds = int(max(SURFACES.values())) + 1
    for _ in range(rounds):
        onehot = sparse.csr_matrix((np.ones(len(kind)), (np.arange(len(kind)), kind)), shape=(len(kind), n_kinds))
        votes = np.asarray((adj @ onehot).todense())
        best = votes.argmax(axis=1)
        change = (~exact) & (best != kind) & (votes.max(axis=1) >= 2) & (votes[np.arange(len(kind)), kind] == 0)
        if not change.any():
            break
        kind[change] = best[change]
    return kind


def classify_boundary(mesh: TetMesh, labels: LabelImage | None, domain: str, strict_manifold: bool = False) -> Boundary:
    """Classify the boundary faces of ``domain`` (``"ventricles"``, ``"la"`` or ``"ra"``).

    Interface faces are classified by the neighbouring cell's tag; outer-boundary faces by the label
    map just outside (see the module docstring). ``labels`` may be None only if every boundary face
    is an interface (a mesh with blood pools). Raises :class:`AnatomyError` if the mesh has no cell
    of the domain and :class:`InvalidMeshError` if it is not in mm or not a manifold tetrahedral
    complex (a face shared by three or more tetrahedra). Pinched boundary edges (two parts of the wall
    touching along an edge, which voxel meshes of thin walls have) are counted in
    ``Boundary.pinched_edges``; with ``strict_manifold`` they raise :class:`InvalidMeshError` too.
    """
    if domain not in DOMAINS:
        raise AnatomyError(f"unknown domain {domain!r}; choose one of {sorted(DOMAINS)}")
    in_domain = np.isin(mesh.tags, lab.labels_of(DOMAINS[domain]))
    if not in_domain.any():
        raise AnatomyError(
            f"the mesh has no {' or '.join(DOMAINS[domain])} cells (tags present: "
            f"{sorted(lab.name(t) for t in np.unique(mesh.tags))}); mesh the heart with these regions"
        )
    cells = np.flatnonzero(in_domain)
    check_units(mesh.points[np.unique(mesh.cells[cells])], f"{domain} myocardium")
    faces, inside, outside = _domain_faces(mesh, in_domain)
    pinched = _check_manifold(faces, domain, strict_manifold)
    lut = _lut(domain)
    kind = np.zeros(len(faces), dtype=np.int16)
    exact = outside >= 0
    kind[exact] = lut[mesh.tags[outside[exact]]]
    todo = np.flatnonzero(~exact)
    if todo.size:
        if labels is None:
            raise AnatomyError(
                f"{todo.size} boundary faces of the {domain} face the outside of the mesh and no label map was "
                "given to classify them; pass the label map the mesh was built from"
            )
        p = mesh.points
        f = faces[todo]
        centre = p[f].mean(axis=1)
        normal = np.cross(p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]])
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-300)
        h = float(max(labels.spacing))
        arr = labels.array
        shape = np.asarray(arr.shape)
        found = np.zeros(todo.size, dtype=np.int16)
        for step in _LOOKUP_STEPS:  # a handful of fixed offsets, each vectorised over all faces
            pending = found == 0
            if not pending.any():
                break
            idx = np.rint(labels.physical_to_index(centre[pending] + step * h * normal[pending])).astype(np.int64)
            inside_grid = np.all((idx >= 0) & (idx < shape), axis=1)
            value = np.zeros(len(idx), dtype=np.int64)
            ii = idx[inside_grid]
            value[inside_grid] = arr[ii[:, 0], ii[:, 1], ii[:, 2]]
            found[pending] = lut[value]
        found[found == 0] = SURFACES["epicardium"]
        kind[todo] = found
    kind = _majority(faces, kind, exact)
    return Boundary(domain, cells, faces, kind.astype(np.int16), exact, pinched)


def boundary_from_triangles(mesh: TetMesh, domain_cells: np.ndarray, triangles: dict[str, np.ndarray],
                            default: str | None = None, domain: str = "ventricles",
                            strict_manifold: bool = False) -> Boundary:
    """A :class:`Boundary` from given surface triangles, e.g. a tagged surface exported with the mesh.

    ``domain_cells``: boolean mask or indices of the domain's cells; ``triangles``: class name ->
    (k, 3) node indices (mesh numbering, any vertex order). Boundary faces found in no set take the
    class ``default``; without a default they raise :class:`AnatomyError`.
    """
    unknown = [n for n in triangles if n not in SURFACES]
    if unknown:
        raise AnatomyError(f"unknown surface classes {unknown}; valid: {sorted(SURFACES)}")
    mask = np.zeros(mesh.n_cells, dtype=bool)
    mask[np.asarray(domain_cells)] = True
    if not mask.any():
        raise AnatomyError("domain_cells selects no cell")
    cells = np.flatnonzero(mask)
    check_units(mesh.points[np.unique(mesh.cells[cells])], f"{domain} myocardium")
    faces, _, _ = _domain_faces(mesh, mask)
    pinched = _check_manifold(faces, domain, strict_manifold)
    n = np.int64(mesh.n_points)

    def keys(tri: np.ndarray) -> np.ndarray:
        t = np.sort(np.asarray(tri, dtype=np.int64).reshape(-1, 3), axis=1)
        return (t[:, 0] * n + t[:, 1]) * n + t[:, 2]

    face_keys = keys(faces)
    kind = np.zeros(len(faces), dtype=np.int16)
    for name, tri in triangles.items():
        kind[np.isin(face_keys, keys(tri))] = SURFACES[name]
    if (kind == 0).any():
        if default is None:
            raise AnatomyError(
                f"{int((kind == 0).sum())} of {len(faces)} boundary faces are in none of the given surfaces "
                f"{sorted(triangles)}; give all surfaces or a default class"
            )
        kind[kind == 0] = SURFACES[default]
    return Boundary(domain, cells, faces, kind, np.ones(len(faces), dtype=bool), pinched)
