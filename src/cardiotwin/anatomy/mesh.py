"""The meshing stage: a four-chamber heart mesh and a graded torso mesh from a label map.

Heart: the label map is resampled (shape-based) to cubes of the target edge length, each cube of a
heart structure is split into 6 Kuhn tetrahedra (conforming between cubes and between regions, one
region tag per structure, region volumes exactly those of the resampled voxels), tiny disconnected
pieces are dropped, and all boundaries and interfaces are smoothed (quality-guarded Taubin) to
remove the voxel staircase (Prassl et al. 2009, IEEE Trans Biomed Eng 56:1318).

Torso: a Kuhn lattice of coarse cubes over the body is refined by newest-vertex bisection where the
target size requires it (heart resolution inside and near the heart, growing linearly with the
distance from it up to the coarse size at the skin), each tetrahedron takes the label at its
centroid, and interfaces and skin are smoothed the same way. The torso mesh does not share nodes
with the heart mesh: heart fields are mapped between the two by barycentric interpolation
(:func:`cardiotwin.meshing.locate.interpolate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from cardiotwin import labels as lab
from cardiotwin.anatomy.checks import SPECK_FRACTION
from cardiotwin.anatomy.resample import resample_isotropic
from cardiotwin.anatomy.voxels import components, window
from cardiotwin.errors import AnatomyError
from cardiotwin.meshing.bisection import refine_to_size
from cardiotwin.meshing.lattice import kuhn_lattice
from cardiotwin.meshing.quality import quality_report
from cardiotwin.meshing.smooth import taubin_smooth
from cardiotwin.meshing.snap import snap_nodes
from cardiotwin.meshing.topology import boundary_edge_use, fill_to_manifold, unique_faces
from cardiotwin.types import LabelImage, TetMesh, tet_signed_volumes

HEART_REGIONS = lab.CHAMBER_WALLS + lab.VALVES
HEART_AND_SURROUNDINGS = lab.HEART + lab.VESSEL_LUMENS + lab.VESSEL_WALLS


@dataclass
class MeshResult:
    """A mesh with its quality report (counts, angles, volumes against the label map)."""

    mesh: TetMesh
    report: dict = field(default_factory=dict)


def _crop(labels: LabelImage, mask: np.ndarray, margin_vox: int) -> LabelImage:
    win = window(mask, labels.shape, margin_vox)
    origin = labels.index_to_physical([w.start for w in win])
    return LabelImage(labels.array[win], labels.spacing, tuple(origin), labels.direction)


def _physical(labels: LabelImage, points_index: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index-space lattice -> physical points and positively oriented cells (unused nodes dropped)."""
    used, cells = np.unique(cells, return_inverse=True)
    cells = cells.reshape(-1, 4)
    points = labels.index_to_physical(points_index[used])
    neg = tet_signed_volumes(points, cells) < 0
    cells[neg] = cells[neg][:, [0, 2, 1, 3]]
    return points, cells


def _volume_check(mesh: TetMesh, reference: LabelImage, names) -> dict:
    ref = reference.volumes_ml()
    got = mesh.region_volumes_ml()
    return {n: {"mesh_ml": round(got.get(n, 0.0), 3), "labels_ml": round(ref.get(n, 0.0), 3),
                "rel_error": round((got.get(n, 0.0) - ref[n]) / ref[n], 5) if ref.get(n) else None}
            for n in names if n in ref or n in got}


def _connectivity(mesh: TetMesh) -> dict[str, int]:
    """Number of face-connected components of each region."""
    _, owners = unique_faces(mesh.cells, mesh.n_points)
    inner = owners[:, 1] >= 0
    a, b = owners[inner, 0], owners[inner, 1]
    same = mesh.tags[a] == mesh.tags[b]
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = coo_matrix((np.ones(same.sum()), (a[same], b[same])), shape=(mesh.n_cells, mesh.n_cells))
    _, comp = connected_components(g, directed=False)
    return {lab.name(t): int(len(np.unique(comp[mesh.tags == t]))) for t in np.unique(mesh.tags)}


def heart_mesh(labels: LabelImage, edge_mm: float = 1.0, regions=HEART_REGIONS, include_blood: bool = False,
               smooth_iterations: int = 10, min_dihedral: float = 8.0) -> MeshResult:
    """Four-chamber heart mesh with one tag per structure (myocardium, walls, valve planes).

    ``edge_mm`` is the cube size of the lattice (the shortest edges; mean edge ~1.3x). Blood pools
    are added as regions with ``include_blood``.
    """
    if not 0.2 <= edge_mm <= 5.0:
        raise AnatomyError(f"edge_mm must be between 0.2 and 5 mm, got {edge_mm}")
    names = tuple(regions) + (lab.BLOOD_POOLS if include_blood else ())
    values = lab.labels_of(names)
    mask = np.isin(labels.array, values)
    if not mask.any():
        raise AnatomyError(f"the label map has none of the heart regions {names}; run the walls stage first")
    cropped = _crop(labels, mask, 2)
    lattice = resample_isotropic(cropped, edge_mm)
    arr = lattice.array
    dropped = {}
    for value in values:  # drop disconnected specks (< 1 % of the structure's main piece)
        comp, counts = components(arr == value)
        specks = [i + 1 for i, c in enumerate(counts) if i > 0 and c < SPECK_FRACTION * counts[0]]
        if specks:
            arr = np.where(np.isin(comp, specks), 0, arr)
            dropped[lab.name(value)] = int(counts[np.asarray(specks) - 1].sum())
    keep = np.isin(arr, values)
    points, cells, cube = kuhn_lattice(keep)
    tags = arr[tuple(cube.T)]
    points, cells = _physical(lattice, points - 0.5, cells)
    points, smooth = taubin_smooth(points, cells, tags, iterations=smooth_iterations, min_dihedral=min_dihedral)
    mesh = TetMesh(points, cells, tags)
    report = {"quality": quality_report(mesh.points, mesh.cells), "smoothing": smooth,
              "dropped_voxels": dropped, "components": _connectivity(mesh),
              "volumes": _volume_check(mesh, labels.with_array(np.where(mask, labels.array, 0)), names)}
    return MeshResult(mesh, report)


TORSO_REGIONS = {**{name: "heart" for name in lab.CHAMBER_WALLS + lab.VALVES},
                 **{name: "torso" for name in lab.VESSEL_WALLS}}


def coarse_regions(values: np.ndarray) -> np.ndarray:
    """Labels as torso-mesh regions: myocardium, walls and valves -> heart; vessel walls -> torso
    (thin structures a graded torso mesh does not resolve, with the conductivity of their tissue)."""
    lut = np.arange(max(lab.NAMES) + 1, dtype=np.int32)
    for name, region in TORSO_REGIONS.items():
        lut[lab.label(name)] = lab.label(region)
    return lut[values]


def torso_mesh(labels: LabelImage, heart_edge_mm: float = 2.0, skin_edge_mm: float = 8.0, grading: float = 0.3,
               smooth_iterations: int = 8, min_dihedral: float = 8.0) -> MeshResult:
    """Torso mesh: every labelled structure as a region, graded from ``heart_edge_mm`` in and around
    the heart to ``skin_edge_mm`` (size grows by ``grading`` mm per mm of distance from the heart)."""
    body = labels.array > 0
    if not body.any():
        raise AnatomyError("the label map is empty; a torso mesh needs the body outline (torso label)")
    if lab.label("torso") not in np.unique(labels.array[::4, ::4, ::4]):
        raise AnatomyError("the label map has no torso label; segment the body outline first")
    heart = np.isin(labels.array, lab.labels_of(HEART_AND_SURROUNDINGS))
    if not heart.any():
        raise AnatomyError("no heart structure in the label map; a torso mesh is graded around the heart")
    sp = np.asarray(labels.spacing)
    coarse = skin_edge_mm / sp  # base cube size in voxels per axis
    n_cubes = np.ceil(np.asarray(labels.shape) / coarse).astype(int)
    # a coarse cube is kept if any body voxel falls in it (block max by strided sampling + dilation)
    idx = [np.minimum((np.arange(n) * c).astype(int), s - 1) for n, c, s in zip(n_cubes, coarse, labels.shape)]
    sample = body[np.ix_(*[np.unique(np.concatenate([i, np.minimum(i + int(c // 2), s - 1)]))
                           for i, c, s in zip(idx, coarse, labels.shape)])]
    cube_hit = np.zeros(n_cubes, dtype=bool)
    sub = [np.searchsorted(i, np.unique(np.concatenate([i, np.minimum(i + int(c // 2), s - 1)])), side="right") - 1
           for i, c, s in zip(idx, coarse, labels.shape)]
    hits = np.argwhere(sample)
    cube_hit[sub[0][hits[:, 0]], sub[1][hits[:, 1]], sub[2][hits[:, 2]]] = True
    keep = ndimage.binary_dilation(cube_hit)
    points, cells, _ = kuhn_lattice(keep, spacing=coarse, path_order=True)
    points_index = points - 0.5
    # distance (mm) from the heart, on a 2 mm grid, drives the target size
    step = np.maximum(np.round(2.0 / sp).astype(int), 1)
    dist = ndimage.distance_transform_edt(~heart[::step[0], ::step[1], ::step[2]], sampling=sp * step)

    def target(centroids_index: np.ndarray) -> np.ndarray:
        i = np.clip(np.round(centroids_index / step).astype(int), 0, np.asarray(dist.shape) - 1)
        d = dist[i[:, 0], i[:, 1], i[:, 2]]
        return np.clip(heart_edge_mm + grading * d, heart_edge_mm, skin_edge_mm) / sp.min()

    points_index, cells, _ = refine_to_size(points_index, cells, float(coarse.min()), target)
    cent = np.clip(np.round(points_index[cells].mean(axis=1)).astype(int), 0, np.asarray(labels.shape) - 1)
    tags = coarse_regions(labels.array[cent[:, 0], cent[:, 1], cent[:, 2]])
    if lab.label("torso") in tags:  # unlabelled pockets inside the body are body tissue, not voids
        enclosed = ndimage.binary_fill_holes(body)[cent[:, 0], cent[:, 1], cent[:, 2]]
        tags[(tags == 0) & enclosed] = lab.label("torso")
    inside = fill_to_manifold(cells, tags > 0)
    tags[inside & (tags == 0)] = lab.label("torso")  # elements filled in to close a pinched skin
    points, cells = _physical(labels, points_index, cells[inside])
    tags = tags[inside]
    # skin and lungs: nodes snapped onto the true surfaces; the finer heart interfaces: Taubin
    faces, owners = unique_faces(cells, len(points))
    other = np.where(owners[:, 1] >= 0, tags[np.maximum(owners[:, 1], 0)], -1)
    own = tags[owners[:, 0]]
    skin_nodes = np.unique(faces[owners[:, 1] < 0])
    lung = np.isin(own, lab.labels_of(lab.LUNGS)) != np.isin(other, lab.labels_of(lab.LUNGS))
    lung_nodes = np.setdiff1d(np.unique(faces[lung & (owners[:, 1] >= 0)]), skin_nodes)
    snap = {"skin": snap_nodes(points, cells, skin_nodes, labels, labels.array > 0, min_dihedral=min_dihedral),
            "lungs": snap_nodes(points, cells, lung_nodes, labels, np.isin(labels.array, lab.labels_of(lab.LUNGS)),
                                min_dihedral=min_dihedral)}
    points, smooth = taubin_smooth(points, cells, tags, iterations=smooth_iterations, min_dihedral=min_dihedral,
                                   fixed=np.concatenate([skin_nodes, lung_nodes]))
    smooth["snapped"] = snap
    mesh = TetMesh(points, cells, tags)
    faces, owners = unique_faces(mesh.cells, mesh.n_points)
    skin = faces[owners[:, 1] < 0]
    _, edge_use = boundary_edge_use(skin)
    report = {"quality": quality_report(mesh.points, mesh.cells), "smoothing": smooth,
              "skin": {"faces": int(len(skin)), "watertight": bool(np.all(edge_use == 2))},
              "volumes": _volume_check(mesh, labels.with_array(coarse_regions(labels.array)),
                                       sorted(set(lab.name(t) for t in np.unique(mesh.tags)))),
              "edge_mm_near_heart": heart_edge_mm, "edge_mm_at_skin": skin_edge_mm,
              "heart_mapping": "barycentric interpolation (torso mesh does not share heart-mesh nodes)"}
    return MeshResult(mesh, report)
