"""ECG electrodes on the torso skin: the standard 10 by anatomical rules, user positions snapped to the
skin, and body-surface grids.

The skin is the boundary of the torso tetrahedral mesh (faces owned by one cell,
:func:`cardiotwin.meshing.topology.unique_faces`). Every electrode is a point *on* a skin triangle
(its barycentric coordinates there say how the lead-field current is injected, see
:mod:`cardiotwin.ecg.leadfield`).

Standard placement (AHA recommendations, Kligfield et al. 2007, Circulation 115:1306), with the ribs
not in the mesh, the intercostal spaces (ICS) are estimated from the heart, whose surface projection
is classical (Moore, Dalley & Agur, *Clinically Oriented Anatomy*, 7th ed., 2014, ch. 1; Gray's
Anatomy, 41st ed., 2016, ch. 57):

* the **4th ICS** at the sternal border is at the height of the tricuspid valve centre (the tricuspid
  valve lies behind the sternum at the level of the 4th ICS);
* the **5th ICS** in the mid-clavicular line is at the height of the LV epicardial apex (the apex beat
  is in the left 5th ICS at the mid-clavicular line), kept at least :data:`MIN_ICS_SPACING_MM` below
  the 4th;
* the **sternal midline** is the left-right centre of the spine (tag ``spine``) near the heart, or of
  the body cross-section when the mesh has no spine; the sternal borders are
  :data:`STERNAL_OFFSET_MM` either side of it (electrode centres just off a ~3 cm sternal body);
* the **mid-clavicular line** is half-way between the midline and the lateral body surface at the
  5th ICS (the clavicle spans the shoulder half-width; the mid-clavicular line is ~9 cm from the
  midline in adults);
* the **mid-axillary line** is the lateral-most body surface in the coronal plane through the
  centre of the cross-section (half-way between the anterior and posterior skin at the midline).

V1/V2: 4th ICS at the right/left sternal border; V4: 5th ICS, mid-clavicular line; V3: midway
between V2 and V4; V6: mid-axillary line at V4's height; V5: at V4's height midway between V4 and
V6 (the AHA fallback for an ambiguous anterior axillary line). "Midway" electrodes are where the
horizontal ray from the body axis through the midpoint of the two neighbours leaves the skin.

Limb electrodes: the torso mesh has no arms or legs, so the limb electrodes sit on the torso at the
Mason-Likar positions (Mason & Likar 1966, Am Heart J 71:196), as in exercise ECGs: RA/LA in the
right/left infraclavicular fossa (2 cm below the clavicle, taken 25 mm below the lung apex, and
:data:`INFRACLAVICULAR_FRACTION` of the half-width out from the midline), LL/RL on the left/right
anterior axillary line (V5's direction) half-way between the costal margin and the iliac crest,
estimated 170 mm below the apex, or 15 mm above the lower end of the mesh if it stops sooner (a
chest CT often does: then LL is closer to the heart than on a real leg). Mason-Likar limb positions
are known to shift the frontal axis rightwards and enlarge the inferior leads compared with the
wrist/ankle positions (Papouchado et al. 1987, Eur Heart J 8:725); RL (the driven ground) does not
enter the 12 leads.

The rules assume a torso in the standard supine frame (LPS: +x patient left, +y posterior,
+z superior) without the arms in the mesh (arms raised, as in most chest CTs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from cardiotwin import labels as lab
from cardiotwin.errors import AnatomyError, ElectrodeError, InvalidParameterError
from cardiotwin.meshing.locate import locate
from cardiotwin.meshing.topology import unique_faces
from cardiotwin.types import TetMesh

__all__ = [
    "STANDARD_ELECTRODES",
    "HEART_TAGS",
    "Electrodes",
    "SkinSurface",
    "SkinPoints",
    "skin_surface",
    "closest_skin_points",
    "standard_electrodes",
    "snap_electrodes",
    "body_surface_grid",
]

#: the 10 electrodes of the standard 12-lead ECG (RL is the driven ground)
STANDARD_ELECTRODES = ("RA", "LA", "LL", "RL", "V1", "V2", "V3", "V4", "V5", "V6")
#: torso-mesh tags that are heart (coarse heart, blood pools, walls, valves): no electrode inside
HEART_TAGS = tuple(sorted({lab.label("heart"), *lab.labels_of(lab.HEART)}))

STERNAL_OFFSET_MM = 25.0
MIN_ICS_SPACING_MM = 15.0
INFRACLAVICULAR_FRACTION = 0.7
LUNG_APEX_TO_FOSSA_MM = 45.0  # clavicle ~25 mm below the lung apex, fossa 20 mm below the clavicle
LL_BELOW_APEX_MM = 170.0
END_MARGIN_MM = 15.0
DEFAULT_MAX_SNAP_MM = 30.0
_BIN_MM = 4.0  # height bins of the cross-section profile


# ------------------------------------------------------------------------------------ skin


@dataclass(frozen=True, eq=False)
class SkinSurface:
    """The outer boundary triangles of a torso mesh: ``faces`` (F, 3) torso node indices, oriented
    with outward normals; ``cells`` (F,) the owning tetrahedron of each. Closed boundary components
    *inside* the body (voids left by a mesher) are not skin: they are kept apart in ``voids``."""

    points: np.ndarray
    faces: np.ndarray
    cells: np.ndarray
    voids: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))
    _tree: cKDTree = field(repr=False, default=None)  # type: ignore[assignment]
    _radius: float = 0.0

    @classmethod
    def of(cls, points: np.ndarray, faces: np.ndarray, cells: np.ndarray,
           voids: np.ndarray | None = None) -> "SkinSurface":
        """A surface with its search structures (centroid k-d tree, largest circumradius)."""
        tri = points[faces]
        centroids = tri.mean(axis=1)
        radius = float(np.sqrt(((tri - centroids[:, None, :]) ** 2).sum(-1)).max())
        v = np.zeros((0, 3), dtype=np.int64) if voids is None else voids
        return cls(points, faces, cells, v, cKDTree(centroids), radius)

    @property
    def triangles(self) -> np.ndarray:
        """(F, 3, 3) vertex coordinates (mm)."""
        return self.points[self.faces]

    def normals(self) -> np.ndarray:
        """Unit outward normals (F, 3)."""
        t = self.triangles
        n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
        return n / np.linalg.norm(n, axis=1, keepdims=True)


def _face_components(faces: np.ndarray, n_points: int) -> np.ndarray:
    """Component label of each triangle; triangles sharing a vertex are connected."""
    f = len(faces)
    inc = sparse.csr_matrix((np.ones(3 * f), (np.repeat(np.arange(f), 3), faces.ravel())), shape=(f, n_points))
    return connected_components(inc @ inc.T, directed=False)[1]


def skin_surface(torso: TetMesh) -> SkinSurface:
    """The outward-oriented outer boundary surface (the skin) of a torso mesh."""
    if not isinstance(torso, TetMesh):
        raise InvalidParameterError(f"torso must be a TetMesh, got {type(torso).__name__}")
    faces, owners = unique_faces(torso.cells, torso.n_points)
    outer = owners[:, 1] < 0
    faces, cells = faces[outer].astype(np.int64), owners[outer, 0]
    if len(faces) == 0:
        raise AnatomyError("the torso mesh has no boundary faces (no skin)")
    p = torso.points
    tri = p[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    # the owning cell's centroid lies inside the body: flip the faces whose normal points at it
    inside = p[torso.cells[cells]].mean(axis=1)
    flip = np.einsum("ij,ij->i", normal, inside - tri[:, 0]) > 0
    faces[flip] = faces[flip][:, [0, 2, 1]]
    # the skin is the boundary component through the outermost point; others are inner voids
    comp = _face_components(faces, torso.n_points)
    skin = comp == comp[np.argmax(p[faces][:, :, 0].max(axis=1))]
    return SkinSurface.of(p, faces[skin], cells[skin], faces[~skin])


class SkinPoints(tuple):
    """(points (Q, 3), distances (Q,), faces (Q,), barycentric (Q, 3)) of the closest skin points."""

    __slots__ = ()

    def __new__(cls, points, distances, faces, barycentric):
        return super().__new__(cls, (points, distances, faces, barycentric))

    points = property(lambda self: self[0])
    distances = property(lambda self: self[1])
    faces = property(lambda self: self[2])
    barycentric = property(lambda self: self[3])


def _closest_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (..., 3) of the point of triangle abc closest to p (all (..., 3)).

    The Voronoi-region test of Ericson (*Real-Time Collision Detection*, 2005, sec. 5.1.5),
    vectorised: every region's candidate is computed and the first region that applies is chosen."""
    ab, ac, ap = b - a, c - a, p - a
    bp, cp = p - b, p - c

    def dot(u, v):
        return np.einsum("...i,...i->...", u, v)

    d1, d2 = dot(ab, ap), dot(ac, ap)
    d3, d4 = dot(ab, bp), dot(ac, bp)
    d5, d6 = dot(ab, cp), dot(ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        v_ab = d1 / (d1 - d3)
        w_ac = d2 / (d2 - d6)
        w_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        denom = 1.0 / (va + vb + vc)
        v_in, w_in = vb * denom, vc * denom
    one, zero = np.ones_like(d1), np.zeros_like(d1)
    conds = [
        (d1 <= 0) & (d2 <= 0),
        (d3 >= 0) & (d4 <= d3),
        (vc <= 0) & (d1 >= 0) & (d3 <= 0),
        (d6 >= 0) & (d5 <= d6),
        (vb <= 0) & (d2 >= 0) & (d6 <= 0),
        (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0),
    ]
    u = np.select(conds, [one, zero, 1 - v_ab, zero, 1 - w_ac, zero], 1 - v_in - w_in)
    v = np.select(conds, [zero, one, v_ab, zero, zero, 1 - w_bc], v_in)
    w = np.select(conds, [zero, zero, zero, one, w_ac, w_bc], w_in)
    return np.stack([u, v, w], axis=-1)


def _closest_among(q: np.ndarray, tri: np.ndarray, cand: np.ndarray):
    t = tri[cand]  # (Q, k, 3, 3)
    bary = _closest_on_triangles(q[:, None, :], t[:, :, 0], t[:, :, 1], t[:, :, 2])
    pts = np.einsum("qkv,qkvd->qkd", bary, t)
    dist = np.linalg.norm(pts - q[:, None, :], axis=2)
    best = np.argmin(dist, axis=1)
    rows = np.arange(len(q))
    return pts[rows, best], dist[rows, best], cand[rows, best], bary[rows, best]


def closest_skin_points(points: np.ndarray, skin: SkinSurface, k: int = 24) -> SkinPoints:
    """The closest point of the skin to each query point (Q, 3). Exact: the ``k`` triangles with
    the nearest centroids are searched first; a query for which a triangle outside that set could
    still be closer (its centroid within the best distance plus the largest circumradius) is
    searched again over 16 k candidates, then over every triangle in that range."""
    q = np.atleast_2d(np.asarray(points, dtype=np.float64))
    tri = skin.triangles
    n_faces = len(tri)
    out_p, out_d = np.empty((len(q), 3)), np.empty(len(q))
    out_f, out_b = np.empty(len(q), dtype=np.int64), np.empty((len(q), 3))
    todo = np.arange(len(q))
    for kk in (min(k, n_faces), min(16 * k, n_faces)):
        for lo in range(0, todo.size, 2048):  # chunks bound the (chunk, k, 3, 3) work arrays
            idx = todo[lo:lo + 2048]
            d_c, cand = skin._tree.query(q[idx], k=kk)
            d_c, cand = d_c.reshape(len(idx), kk), cand.reshape(len(idx), kk)
            out_p[idx], out_d[idx], out_f[idx], out_b[idx] = _closest_among(q[idx], tri, cand)
            # exact if no unsearched centroid is within reach: the farthest searched one is beyond it
            sure = (d_c[:, -1] >= out_d[idx] + skin._radius) | (kk == n_faces)
            todo[lo:lo + idx.size] = np.where(sure, -1, idx)
        todo = todo[todo >= 0]
        if todo.size == 0:
            break
    for i in todo:  # rare: only queries far from a very uneven surface get here
        near = np.asarray(skin._tree.query_ball_point(q[i], out_d[i] + skin._radius), dtype=np.int64)
        out_p[i], out_d[i], out_f[i], out_b[i] = (a[0] for a in _closest_among(q[i][None], tri, near[None]))
    return SkinPoints(out_p, out_d, out_f, out_b)


def _ray_exit(skin: SkinSurface, origin: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, int, np.ndarray] | None:
    """Farthest intersection of the ray origin + t d (t > 0) with the skin: the point where it
    finally leaves the body. (point, face, barycentric) or None."""
    d = direction / np.linalg.norm(direction)
    tri = skin.triangles
    cen = tri.mean(axis=1)
    rel = cen - origin
    along = rel @ d
    perp = np.linalg.norm(rel - along[:, None] * d, axis=1)
    cand = np.flatnonzero((perp <= skin._radius * 1.001) & (along > -skin._radius))
    if cand.size == 0:
        return None
    t3 = tri[cand]
    e1, e2 = t3[:, 1] - t3[:, 0], t3[:, 2] - t3[:, 0]
    # Moller & Trumbore 1997 (J Graphics Tools 2:21): solve origin + t d = v0 + u e1 + v e2
    pvec = np.cross(d, e2)
    det = np.einsum("ij,ij->i", e1, pvec)
    ok = np.abs(det) > 1e-12 * np.einsum("ij,ij->i", e1, e1)
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    tvec = origin - t3[:, 0]
    u = np.einsum("ij,ij->i", tvec, pvec) * inv
    qvec = np.cross(tvec, e1)
    v = (qvec @ d) * inv
    t = np.einsum("ij,ij->i", e2, qvec) * inv
    eps = 1e-9
    hit = ok & (u >= -eps) & (v >= -eps) & (u + v <= 1 + eps) & (t > 0)
    if not hit.any():
        return None
    j = np.flatnonzero(hit)[np.argmax(t[hit])]
    bary = np.clip(np.array([1.0 - u[j] - v[j], u[j], v[j]]), 0.0, None)
    bary /= bary.sum()
    face = int(cand[j])
    return bary @ tri[face], face, bary


# ------------------------------------------------------------------------------------ electrodes


@dataclass(frozen=True, eq=False)
class Electrodes:
    """Named electrodes on the skin of one torso mesh.

    ``positions`` (E, 3) mm lie on the skin triangles ``faces`` (E,) (indices into
    :func:`skin_surface` of that torso) whose torso nodes are ``triangles`` (E, 3) with barycentric
    coordinates ``barycentric`` (E, 3); ``nodes`` (E,) is the nearest torso node of each. ``rules``
    says how each electrode was placed; ``snap_mm`` how far a given position was moved onto the skin.
    """

    names: tuple[str, ...]
    positions: np.ndarray
    faces: np.ndarray
    triangles: np.ndarray
    barycentric: np.ndarray
    nodes: np.ndarray
    rules: tuple[str, ...] = ()
    snap_mm: np.ndarray | None = None

    def __post_init__(self) -> None:
        names = tuple(str(n).strip() for n in self.names)
        e = len(names)
        if e == 0:
            raise ElectrodeError("an electrode set needs at least one electrode")
        if any(not n for n in names):
            raise ElectrodeError("electrode names must be non-empty")
        upper = [n.upper() for n in names]
        dup = sorted({n for n, u in zip(names, upper) if upper.count(u) > 1})
        if dup:
            raise ElectrodeError(f"duplicate electrode names {dup} (names are case-insensitive)")
        pos = np.asarray(self.positions, dtype=np.float64)
        if pos.shape != (e, 3) or not np.all(np.isfinite(pos)):
            raise ElectrodeError(f"electrode positions must be {e} finite (x, y, z) mm, got shape {pos.shape}")
        rules = tuple(self.rules) if self.rules else ("",) * e
        if len(rules) != e:
            raise ElectrodeError(f"{len(rules)} placement rules for {e} electrodes")
        try:
            arrays = {"faces": np.asarray(self.faces, dtype=np.int64).reshape(e),
                      "triangles": np.asarray(self.triangles, dtype=np.int64).reshape(e, 3),
                      "barycentric": np.asarray(self.barycentric, dtype=np.float64).reshape(e, 3),
                      "nodes": np.asarray(self.nodes, dtype=np.int64).reshape(e),
                      "snap_mm": np.zeros(e) if self.snap_mm is None else np.asarray(self.snap_mm, float).reshape(e)}
        except (TypeError, ValueError) as exc:
            raise ElectrodeError(f"electrode skin data must have one row per electrode ({e}): {exc}") from None
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "positions", pos)
        object.__setattr__(self, "rules", rules)
        for key, value in arrays.items():
            object.__setattr__(self, key, value)

    def __len__(self) -> int:
        return len(self.names)

    def position(self, name: str) -> np.ndarray:
        """Position (3,) mm of one electrode."""
        return self.positions[self.index(name)]

    def index(self, name: str) -> int:
        key = str(name).strip().upper()
        upper = [n.upper() for n in self.names]
        if key not in upper:
            raise ElectrodeError(f"no electrode {name!r}; electrodes are {list(self.names)}")
        return upper.index(key)

    def select(self, names: Sequence[str]) -> "Electrodes":
        """The electrodes ``names`` (in that order)."""
        idx = [self.index(n) for n in names]
        return Electrodes(tuple(self.names[i] for i in idx), self.positions[idx], self.faces[idx],
                          self.triangles[idx], self.barycentric[idx], self.nodes[idx],
                          tuple(self.rules[i] for i in idx), self.snap_mm[idx])

    def __add__(self, other: "Electrodes") -> "Electrodes":
        """Both sets together (names must not clash), e.g. the 12-lead set plus a body-surface grid."""
        if not isinstance(other, Electrodes):
            return NotImplemented
        return Electrodes(self.names + other.names, np.vstack([self.positions, other.positions]),
                          np.concatenate([self.faces, other.faces]), np.vstack([self.triangles, other.triangles]),
                          np.vstack([self.barycentric, other.barycentric]), np.concatenate([self.nodes, other.nodes]),
                          self.rules + other.rules, np.concatenate([self.snap_mm, other.snap_mm]))

    def as_dict(self) -> dict[str, list[float]]:
        """{name: [x, y, z]} in mm."""
        return {n: [float(v) for v in p] for n, p in zip(self.names, self.positions)}


def _from_skin(names: Sequence[str], skin: SkinSurface, points: np.ndarray, faces: np.ndarray, bary: np.ndarray,
               rules: Sequence[str], snap: np.ndarray | None = None) -> Electrodes:
    tri_nodes = skin.faces[faces]
    nearest = tri_nodes[np.arange(len(faces)), np.argmax(bary, axis=1)]
    return Electrodes(tuple(names), points, faces, tri_nodes, bary, nearest, tuple(rules), snap)


def _check_positions(names: Sequence[str], positions: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    names = tuple(str(n).strip() for n in names)
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3 or len(pos) != len(names) or len(names) == 0:
        raise ElectrodeError(
            f"electrode positions must be an (E, 3) array in mm matching {len(names)} names, got shape {pos.shape}"
        )
    bad = ~np.isfinite(pos).all(axis=1)
    if bad.any():
        raise ElectrodeError(f"electrode(s) {[names[i] for i in np.flatnonzero(bad)]} have NaN/inf coordinates")
    return names, pos


def _inside_heart(points: np.ndarray, torso: TetMesh, heart: TetMesh | None) -> np.ndarray:
    """Mask of points inside a heart region of the torso mesh or inside the heart mesh."""
    element, _ = locate(torso.points, torso.cells, points)
    inside = (element >= 0) & np.isin(torso.tags[np.maximum(element, 0)], HEART_TAGS)
    if heart is not None:
        h_el, _ = locate(heart.points, heart.cells, points)
        inside |= h_el >= 0
    return inside


def snap_electrodes(
    names: Sequence[str],
    positions: np.ndarray,
    torso: TetMesh,
    *,
    heart: TetMesh | None = None,
    max_distance_mm: float = DEFAULT_MAX_SNAP_MM,
    skin: SkinSurface | None = None,
) -> Electrodes:
    """User electrode positions (E, 3) mm moved to the closest point of the torso skin.

    Raises :class:`ElectrodeError` for positions more than ``max_distance_mm`` from the skin (wrong
    units or frame, say) and for positions inside the heart (a heart region of the torso mesh, or
    the ``heart`` mesh if given).
    """
    names, pos = _check_positions(names, positions)
    if not (np.isfinite(max_distance_mm) and max_distance_mm > 0):
        raise InvalidParameterError(f"max_distance_mm must be a positive distance, got {max_distance_mm!r}")
    inside = _inside_heart(pos, torso, heart)
    if inside.any():
        raise ElectrodeError(
            f"electrode(s) {[names[i] for i in np.flatnonzero(inside)]} lie inside the heart (e.g. at "
            f"{pos[np.flatnonzero(inside)[0]].round(1).tolist()} mm); body-surface electrodes must be on the skin: "
            "check the coordinate frame (LPS mm) and units"
        )
    skin = skin or skin_surface(torso)
    cp = closest_skin_points(pos, skin)
    far = cp.distances > max_distance_mm
    if far.any():
        detail = ", ".join(f"{names[i]} {cp.distances[i]:.1f} mm" for i in np.flatnonzero(far))
        raise ElectrodeError(
            f"electrode(s) too far from the skin ({detail}; at most {max_distance_mm:g} mm allowed): check the "
            "coordinate frame (LPS, mm, the image's physical space) and units, or raise max_distance_mm"
        )
    rules = tuple(f"user position snapped to the skin ({d:.1f} mm)" for d in cp.distances)
    return _from_skin(names, skin, cp.points, cp.faces, cp.barycentric, rules, cp.distances)


# ------------------------------------------------------------------------------------ standard placement


def _landmark(landmarks: Mapping[str, object], key: str) -> np.ndarray:
    if key not in landmarks:
        raise AnatomyError(
            f"standard electrode placement needs landmark {key!r} (cardiotwin.anatomy.landmarks.find_landmarks); "
            f"got {sorted(landmarks)}"
        )
    v = np.asarray(landmarks[key], dtype=np.float64).reshape(-1)
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        raise AnatomyError(f"landmark {key!r} must be a finite (x, y, z) in mm, got {landmarks[key]!r}")
    return v


def _volume_below(mesh: TetMesh, vol: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """Volume of the mesh below each height, every cell's volume spread evenly over [z_min, z_max]
    of its vertices: sum_i d_i (clip(h - a_i, 0, b_i - a_i)) = G_a(h) - G_b(h), with
    G_c(h) = sum_{c_i < h} d_i (h - c_i) from cumulative sums over the sorted bounds."""
    zs = mesh.points[mesh.cells][..., 2]
    a, b = zs.min(axis=1), zs.max(axis=1)
    d = vol / np.maximum(b - a, 1e-9)

    def g(c: np.ndarray) -> np.ndarray:
        order = np.argsort(c)
        c, w = c[order], d[order]
        cw, cwc = np.concatenate([[0.0], np.cumsum(w)]), np.concatenate([[0.0], np.cumsum(w * c)])
        k = np.searchsorted(c, heights)
        return heights * cw[k] - cwc[k]

    return g(a) - g(b)


class _Torso:
    """Geometric queries on a torso for the placement rules."""

    def __init__(self, torso: TetMesh, skin: SkinSurface):
        self.torso, self.skin = torso, skin
        self.vol = torso.cell_volumes()
        self.cent = torso.points[torso.cells].mean(axis=1)
        z = self.cent[:, 2]
        self.bins = np.arange(z.min(), z.max() + _BIN_MM, _BIN_MM)
        # cross-sectional area (mm^2) of the body per height bin: each cell's volume spread evenly
        # over its own height (binning centroids instead aliases the layers of a graded mesh whose
        # cells are taller than a bin: the profile then swings by 3x from bin to bin)
        self.area = np.diff(_volume_below(torso, self.vol, np.append(self.bins, self.bins[-1] + _BIN_MM))) / _BIN_MM
        self.z_min, self.z_max = float(torso.points[:, 2].min()), float(torso.points[:, 2].max())
        self.x_mid = 0.0

    def extent(self, z_ref: float) -> tuple[float, float]:
        """Heights between which the body's cross-section stays at least half of its area at
        ``z_ref``: the part of the mesh that is a torso, not a ragged cut end or a stray spur."""
        k = int(np.clip(np.digitize(z_ref, self.bins) - 1, 0, len(self.area) - 1))
        full = self.area >= 0.5 * self.area[k]
        lo = k
        while lo > 0 and full[lo - 1]:
            lo -= 1
        hi = k
        while hi < len(full) - 1 and full[hi + 1]:
            hi += 1
        return float(self.bins[lo]), float(self.bins[hi] + _BIN_MM)

    def slab_centre(self, z: float, half: float = 10.0) -> np.ndarray:
        sel = np.abs(self.cent[:, 2] - z) <= half
        if not sel.any():
            raise AnatomyError(f"the torso mesh has no tissue at height z = {z:.1f} mm")
        return np.average(self.cent[sel, :2], axis=0, weights=self.vol[sel])

    def exit(self, origin: np.ndarray, direction: np.ndarray, what: str) -> tuple[np.ndarray, int, np.ndarray]:
        hit = _ray_exit(self.skin, np.asarray(origin, float), np.asarray(direction, float))
        if hit is None:
            raise AnatomyError(
                f"cannot place {what}: the ray from {np.round(origin, 1).tolist()} along "
                f"{np.round(direction, 2).tolist()} does not reach the skin of the torso mesh"
            )
        return hit

    def axis(self, z: float) -> np.ndarray:
        """(x_mid, y_c, z): the sternal midline x, half-way between anterior and posterior skin."""
        y0 = self.slab_centre(z)[1]
        start = np.array([self.x_mid, y0, z])
        ant = self.exit(start, np.array([0.0, -1.0, 0.0]), f"the anterior skin at z = {z:.1f} mm")[0]
        post = self.exit(start, np.array([0.0, 1.0, 0.0]), f"the posterior skin at z = {z:.1f} mm")[0]
        return np.array([self.x_mid, 0.5 * (ant[1] + post[1]), z])


def _midline_x(t: _Torso, z_lo: float, z_hi: float) -> tuple[float, str]:
    spine = t.torso.tags == lab.label("spine")
    sel = spine & (t.cent[:, 2] >= z_lo) & (t.cent[:, 2] <= z_hi)
    if sel.sum() >= 10:
        return float(np.average(t.cent[sel, 0], weights=t.vol[sel])), "spine centre"
    z = 0.5 * (z_lo + z_hi)
    c = t.slab_centre(z)
    start = np.array([c[0], c[1], z])
    right = t.exit(start, np.array([-1.0, 0.0, 0.0]), "the right body surface")[0]
    left = t.exit(start, np.array([1.0, 0.0, 0.0]), "the left body surface")[0]
    return float(0.5 * (left[0] + right[0])), "centre of the body cross-section"


def standard_electrodes(
    torso: TetMesh,
    landmarks: Mapping[str, object],
    *,
    sternal_offset_mm: float = STERNAL_OFFSET_MM,
    skin: SkinSurface | None = None,
) -> Electrodes:
    """The 10 electrodes of the 12-lead ECG (:data:`STANDARD_ELECTRODES`) placed on the torso skin by
    the anatomical rules of the module docstring, from the heart landmarks (mm, LPS):
    ``tricuspid_valve_center`` (4th ICS height) and ``lv_apex_epicardium`` (5th ICS height).

    Raises :class:`AnatomyError` when a landmark is missing or the torso mesh does not reach the
    heights the rules need.
    """
    if not isinstance(torso, TetMesh):
        raise InvalidParameterError(f"torso must be a TetMesh, got {type(torso).__name__}")
    if not (np.isfinite(sternal_offset_mm) and 5.0 <= sternal_offset_mm <= 60.0):
        raise InvalidParameterError(f"sternal_offset_mm must be 5-60 mm, got {sternal_offset_mm!r}")
    tricuspid = _landmark(landmarks, "tricuspid_valve_center")
    apex = _landmark(landmarks, "lv_apex_epicardium")
    skin = skin or skin_surface(torso)
    t = _Torso(torso, skin)
    z4 = float(tricuspid[2])
    z5 = float(min(apex[2], z4 - MIN_ICS_SPACING_MM))
    for name, z in (("4th intercostal space (tricuspid valve height)", z4), ("5th intercostal space (LV apex height)", z5)):
        if not (t.z_min + 5.0 <= z <= t.z_max - 5.0):
            raise AnatomyError(
                f"the {name}, z = {z:.1f} mm, is outside the torso mesh (z {t.z_min:.1f} to {t.z_max:.1f} mm): the torso "
                "must cover the heart; check that heart landmarks and torso are in the same frame"
            )
    z_lo, z_hi = t.extent(z5)
    t.x_mid, midline_rule = _midline_x(t, z5 - 50.0, z4 + 50.0)
    ant, lat = np.array([0.0, -1.0, 0.0]), np.array([1.0, 0.0, 0.0])
    out: dict[str, tuple[np.ndarray, int, np.ndarray, str]] = {}

    def put(name, origin, direction, rule):
        p, f, b = t.exit(origin, direction, name)
        out[name] = (p, f, b, rule)

    ax4 = t.axis(z4)
    put("V1", ax4 - [sternal_offset_mm, 0, 0], ant,
        f"4th ICS (tricuspid valve height z={z4:.1f}) at the right sternal border ({sternal_offset_mm:g} mm right of the {midline_rule})")
    put("V2", ax4 + [sternal_offset_mm, 0, 0], ant,
        f"4th ICS (tricuspid valve height z={z4:.1f}) at the left sternal border ({sternal_offset_mm:g} mm left of the {midline_rule})")
    ax5 = t.axis(z5)
    put("V6", ax5, lat, f"mid-axillary line (lateral-most skin in the mid-coronal plane) at V4's height z={z5:.1f}")
    half = out["V6"][0][0] - t.x_mid
    put("V4", ax5 + [0.5 * half, 0, 0], ant,
        f"5th ICS (LV apex height z={z5:.1f}) at the mid-clavicular line ({0.5 * half:.0f} mm left of the midline)")

    def midway(name, a, b, rule):
        m = 0.5 * (out[a][0] + out[b][0])
        ax = t.axis(float(m[2]))
        d = m - ax
        d[2] = 0.0
        if np.linalg.norm(d) < 1e-6:
            raise AnatomyError(f"cannot place {name}: {a} and {b} are symmetric about the body axis")
        put(name, ax, d, rule)

    midway("V5", "V4", "V6", "V4's height, midway between V4 and V6 (AHA rule for the anterior axillary line)")
    midway("V3", "V2", "V4", "midway between V2 and V4")

    lung = np.isin(torso.tags, lab.labels_of(lab.LUNGS))
    if lung.any():
        lung_top = float(torso.points[torso.cells[lung]][..., 2].max())
        z_sh, sh_rule = lung_top - LUNG_APEX_TO_FOSSA_MM, f"{LUNG_APEX_TO_FOSSA_MM:g} mm below the lung apex"
    else:
        z_sh, sh_rule = z_hi - 40.0, "40 mm below the top of the mesh (no lungs to find the clavicle)"
    if z_sh > z_hi - END_MARGIN_MM:
        z_sh, sh_rule = z_hi - END_MARGIN_MM, f"{END_MARGIN_MM:g} mm below the top of the mesh (it stops below the clavicle)"
    ax_sh = t.axis(z_sh)
    for name, side, word in (("RA", -1.0, "right"), ("LA", 1.0, "left")):
        edge = t.exit(ax_sh, np.array([side, 0.0, 0.0]), f"the {word} body surface at shoulder height")[0]
        offset = INFRACLAVICULAR_FRACTION * abs(edge[0] - t.x_mid)
        put(name, ax_sh + [side * offset, 0, 0], ant,
            f"Mason-Likar: {word} infraclavicular fossa, z={z_sh:.1f} ({sh_rule}), {offset:.0f} mm from the midline")
    d5 = out["V5"][0] - ax5
    d5[2] = 0.0
    z_ll = z5 - LL_BELOW_APEX_MM
    ll_rule = f"{LL_BELOW_APEX_MM:g} mm below the apex (between costal margin and iliac crest)"
    if z_ll < z_lo + END_MARGIN_MM:
        z_ll, ll_rule = z_lo + END_MARGIN_MM, f"{END_MARGIN_MM:g} mm above the lower end of the mesh (it stops above the iliac crest)"
    ax_ll = t.axis(z_ll)
    put("LL", ax_ll, d5, f"Mason-Likar: left anterior axillary line (V5's direction), z={z_ll:.1f}, {ll_rule}")
    put("RL", ax_ll, d5 * [-1.0, 1.0, 0.0], f"Mason-Likar: right anterior axillary line, z={z_ll:.1f}, {ll_rule}")

    names = STANDARD_ELECTRODES
    pts = np.array([out[n][0] for n in names])
    faces = np.array([out[n][1] for n in names])
    bary = np.array([out[n][2] for n in names])
    return _from_skin(names, skin, pts, faces, bary, [out[n][3] for n in names])


def body_surface_grid(
    torso: TetMesh,
    n_rows: int = 8,
    n_columns: int = 16,
    *,
    z_range: tuple[float, float] | None = None,
    prefix: str = "BS",
    skin: SkinSurface | None = None,
) -> Electrodes:
    """A body-surface-mapping grid: ``n_rows`` horizontal rings evenly spaced in height over
    ``z_range`` (default: the mesh height less :data:`END_MARGIN_MM` at both ends), each with
    ``n_columns`` electrodes at equal angles around the body axis (column 0 anterior, then towards
    the patient's left), where the horizontal ray from the cross-section centre leaves the skin.
    Names are ``{prefix}{row:02d}_{column:02d}`` (row 0 at the top)."""
    if not isinstance(torso, TetMesh):
        raise InvalidParameterError(f"torso must be a TetMesh, got {type(torso).__name__}")
    for name, v in (("n_rows", n_rows), ("n_columns", n_columns)):
        if not isinstance(v, (int, np.integer)) or not 1 <= v <= 1000:
            raise InvalidParameterError(f"{name} must be an integer in [1, 1000], got {v!r}")
    skin = skin or skin_surface(torso)
    t = _Torso(torso, skin)
    if z_range is None:
        order = np.argsort(t.cent[:, 2])
        median = float(t.cent[order, 2][np.searchsorted(np.cumsum(t.vol[order]), 0.5 * t.vol.sum())])
        z_lo, z_hi = t.extent(median)
        lo, hi = z_lo + END_MARGIN_MM, z_hi - END_MARGIN_MM
    else:
        lo, hi = (float(v) for v in z_range)
    if not (np.isfinite(lo) and np.isfinite(hi) and t.z_min <= lo <= hi <= t.z_max):
        raise InvalidParameterError(f"z_range must lie within the mesh, z {t.z_min:.1f} to {t.z_max:.1f} mm; got ({lo}, {hi})")
    heights = np.linspace(hi, lo, n_rows) if n_rows > 1 else np.array([0.5 * (lo + hi)])
    angles = 2 * np.pi * np.arange(n_columns) / n_columns
    dirs = np.stack([np.sin(angles), -np.cos(angles), np.zeros_like(angles)], axis=1)  # 0: anterior, +: left
    names, pts, faces, bary, rules = [], [], [], [], []
    for r, z in enumerate(heights):  # loops over rings and columns (electrodes), not mesh entities
        c = t.slab_centre(float(z))
        origin = np.array([c[0], c[1], z])
        for col, d in enumerate(dirs):
            p, f, b = t.exit(origin, d, f"{prefix}{r:02d}_{col:02d}")
            names.append(f"{prefix}{r:02d}_{col:02d}")
            pts.append(p), faces.append(f), bary.append(b)
            rules.append(f"body-surface grid ring {r} (z={z:.1f}), {np.degrees(angles[col]):.1f} deg from anterior")
    return _from_skin(names, skin, np.array(pts), np.array(faces), np.array(bary), rules)



