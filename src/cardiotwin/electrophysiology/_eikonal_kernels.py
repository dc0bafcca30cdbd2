"""Numba kernels of the tetrahedral anisotropic eikonal solver (see :mod:`.eikonal`).

Geometry and conduction enter the local solver only through the six *metric* edge lengths of each
tetrahedron, ``L[e] = sqrt((p_b - p_a)^T M (p_b - p_a))`` with ``M = D^-1``: every inner product
the local solver needs follows from them by polarisation. Each cell also stores the metric height
of each vertex over its opposite face, a lower bound on any travel time across that cell used to
skip updates that cannot win. One (m, 10) array per parameter set is all the per-cell state.

Local solver (Fu, Kirby & Whitaker 2013, SIAM J Sci Comput 35:C473, section 3): the new value of a
vertex ``x`` from one tetrahedron is the minimum over its opposite face of
``f(lam) = sum_k lam_k T_k + sqrt(lam^T G lam)`` on the simplex ``sum lam = 1, lam >= 0``, with
``G_kl = <p_k - x, p_l - x>_M``. The stationary point satisfies ``T + G lam / s = mu 1`` and the
objective there equals ``mu``, the larger root of ``a mu^2 - 2 b mu + c - 1 = 0`` with
``a = 1^T G^-1 1``, ``b = 1^T G^-1 T``, ``c = T^T G^-1 T``; it is the minimum when
``lam ∝ G^-1 (mu 1 - T) >= 0``. Otherwise the (convex) minimum lies on the face's edges (the same
formula with a 2x2 Gram matrix, tried only where the end-point derivatives say the minimum is
interior) or vertices. The best vertex is tested first: if the objective rises along both edges
leaving it, it is the minimum and nothing else is computed. Adjugates replace inverses.

Source factorisation (optional, on by default): linear interpolation of ``T`` across faces is
what makes first-order schemes inaccurate near point sources, where fronts are strongly curved
(errors of 10-30 % that relax only like h log(r/h) / r). Following the factored eikonal idea
(Fomel, Luo & Zhao 2009, J Comput Phys 228:6440) a node may carry the source it was reached from
(``lab``) and that source's straight-ray travel time ``T0 = t_s + |x - s|_M0`` (``M0`` the metric
at the source). When the source of the node just processed is ``s``, the update of a neighbour
also evaluates ``T0(p) + tau(p) + |x - p|_M`` at the point ``p`` where the straight ray from the
neighbour to ``s`` crosses the opposite face, interpolating ``tau = T - T0`` of the face vertices
that carry ``s`` instead of ``T``. In a homogeneous medium this is exact at any distance. The
vertex keeps the smaller of it and the plain update; if the plain value is lower by more than
``chain_break`` (5 %) of the travel time from ``s``, the source's cone no longer describes the
front there (fronts merging, a planar front, rays leaving a non-convex domain) and the node leaves
the factored chain (``lab = -1``), so downstream nodes use the plain update only.

Propagation: a label-correcting ordered scheme. Nodes wait in an indexed binary heap keyed by their
current time; the smallest is popped and every tetrahedron around it updates its other three
vertices; a vertex whose value drops is (re)inserted. Under anisotropy the local solver is not
causal, so a popped node may drop again later and is then processed again: the iteration stops at
a fixed point (every node equals the minimum of its tetrahedral updates, to ``tol``) - without
factorisation the same one as the Fast Iterative Method - but visits nodes roughly in arrival
order, so each is processed 1-1.3 times instead of the many sweeps of an active list.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# local edge numbering of a tetrahedron (v0..v3): 01, 02, 03, 12, 13, 23
EDGE_PAIRS = np.array([[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]], dtype=np.int64)
# for the update of local vertex i: the other three vertices (k1, k2, k3) ...
OTHERS = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]], dtype=np.int64)
# ... and the edges (i-k1, i-k2, i-k3, k1-k2, k1-k3, k2-k3) in EDGE_PAIRS numbering
GRAM_EDGES = np.array(
    [[0, 1, 2, 3, 4, 5], [0, 3, 4, 1, 2, 5], [1, 3, 5, 0, 2, 4], [2, 4, 5, 0, 1, 3]], dtype=np.int64
)

INF = np.inf


# ------------------------------------------------------------------------------- metric lengths

N_GEO = 10  # per cell: 6 metric edge lengths, then the metric height of each vertex (4)


@njit(cache=True, inline="always")
def _cell_geometry(c, points, cells, fibres, sheets, has_sheets, regions, vel, out):
    r = regions[c]
    inv_f = 1.0 / (vel[r, 0] * vel[r, 0])
    inv_s = 1.0 / (vel[r, 1] * vel[r, 1])
    inv_n = 1.0 / (vel[r, 2] * vel[r, 2])
    fx, fy, fz = fibres[c, 0], fibres[c, 1], fibres[c, 2]
    sx = sy = sz = 0.0
    if has_sheets:
        sx, sy, sz = sheets[c, 0], sheets[c, 1], sheets[c, 2]
    for e in range(6):
        a = cells[c, EDGE_PAIRS[e, 0]]
        b = cells[c, EDGE_PAIRS[e, 1]]
        ex = points[b, 0] - points[a, 0]
        ey = points[b, 1] - points[a, 1]
        ez = points[b, 2] - points[a, 2]
        ef = ex * fx + ey * fy + ez * fz
        l2 = inv_n * (ex * ex + ey * ey + ez * ez) + (inv_f - inv_n) * ef * ef
        if has_sheets:
            es = ex * sx + ey * sy + ez * sz
            l2 += (inv_s - inv_n) * es * es
        out[c, e] = l2
    q0, q1, q2, q3, q4, q5 = out[c, 0], out[c, 1], out[c, 2], out[c, 3], out[c, 4], out[c, 5]
    for e in range(6):
        out[c, e] = np.sqrt(out[c, e])
    # heights: (6 V)^2 = Gram determinant at vertex 0; (2 A_face)^2 = Gram determinant of a face
    g12 = 0.5 * (q0 + q1 - q3)
    g13 = 0.5 * (q0 + q2 - q4)
    g23 = 0.5 * (q1 + q2 - q5)
    vol2 = q0 * (q1 * q2 - g23 * g23) - g12 * (g12 * q2 - g23 * g13) + g13 * (g12 * g23 - q1 * g13)
    vol2 = max(vol2, 0.0)
    ab = 0.5 * (q3 + q4 - q5)
    a0 = q3 * q4 - ab * ab  # face 1-2-3
    a1 = q1 * q2 - g23 * g23  # face 0-2-3
    a2 = q0 * q2 - g13 * g13  # face 0-1-3
    a3 = q0 * q1 - g12 * g12  # face 0-1-2
    shrink = 1.0 - 1e-6  # a lower bound: keep it below the rounding of the Gram determinants
    out[c, 6] = shrink * np.sqrt(vol2 / a0) if a0 > 0 else 0.0
    out[c, 7] = shrink * np.sqrt(vol2 / a1) if a1 > 0 else 0.0
    out[c, 8] = shrink * np.sqrt(vol2 / a2) if a2 > 0 else 0.0
    out[c, 9] = shrink * np.sqrt(vol2 / a3) if a3 > 0 else 0.0


@njit(cache=True)
def cell_geometry_serial(points, cells, fibres, sheets, has_sheets, regions, vel, out):
    """Metric edge lengths and heights of every cell, (m, 10) (serial, for use inside prange)."""
    for c in range(cells.shape[0]):
        _cell_geometry(c, points, cells, fibres, sheets, has_sheets, regions, vel, out)


@njit(cache=True, parallel=True)
def cell_geometry(points, cells, fibres, sheets, has_sheets, regions, vel, out):
    """Metric edge lengths and heights of every cell, (m, 10) (parallel over cells)."""
    for c in prange(cells.shape[0]):
        _cell_geometry(c, points, cells, fibres, sheets, has_sheets, regions, vel, out)


# --------------------------------------------------------------------------------- local solver


@njit(cache=True, inline="always")
def edge_update(ta, tb, la, lb, lab):
    """min over the segment [a, b] of T(p) + |x - p|_M; la = |x-a|, lb = |x-b|, lab = |a-b| (metric)."""
    best = min(ta + la, tb + lb)
    gaa = la * la
    gbb = lb * lb
    qab = lab * lab
    # convex in the position along the edge: interior minimum iff both end slopes point inwards
    if (ta - tb) * lb >= 0.5 * (gbb + qab - gaa) or (tb - ta) * la >= 0.5 * (gaa + qab - gbb):
        return best
    gab = 0.5 * (gaa + gbb - qab)
    det = gaa * gbb - gab * gab
    if det <= 0.0 or qab <= 0.0:
        return best
    base = min(ta, tb)
    sa = ta - base
    sb = tb - base
    csa = gbb * sa - gab * sb  # adj(G) s
    csb = gaa * sb - gab * sa
    bb = csa + csb
    disc = bb * bb - qab * (sa * csa + sb * csb - det)  # 1^T adj(G) 1 = |a - b|^2
    if disc <= 0.0:
        return best
    mu = (bb + np.sqrt(disc)) / qab
    if (gbb - gab) * mu - csa >= 0.0 and (gaa - gab) * mu - csb >= 0.0:
        v = mu + base
        if v < best:
            best = v
    return best


@njit(cache=True, inline="always")
def _rises(tk, lk, tl, ll, lkl):
    """T(p) + |x - p|_M does not decrease when p leaves vertex k towards vertex l."""
    return (tl - tk) * lk >= 0.5 * (lk * lk + lkl * lkl - ll * ll)


@njit(cache=True, inline="always")
def face_update(t1, t2, t3, l1, l2, l3, l12, l13, l23):
    """min over the triangle (p1, p2, p3) of T(p) + |x - p|_M, all three times finite.

    l_k = |x - p_k|_M and l_kl = |p_k - p_l|_M (metric lengths).
    """
    # f is convex on the face: if it rises from its best vertex along both edges leaving it,
    # that vertex is the minimum (the common case; no square root needed)
    v1 = t1 + l1
    v2 = t2 + l2
    v3 = t3 + l3
    if v1 <= v2 and v1 <= v3:
        if _rises(t1, l1, t2, l2, l12) and _rises(t1, l1, t3, l3, l13):
            return v1
    elif v2 <= v3:
        if _rises(t2, l2, t1, l1, l12) and _rises(t2, l2, t3, l3, l23):
            return v2
    elif _rises(t3, l3, t1, l1, l13) and _rises(t3, l3, t2, l2, l23):
        return v3
    g11 = l1 * l1
    g22 = l2 * l2
    g33 = l3 * l3
    g12 = 0.5 * (g11 + g22 - l12 * l12)
    g13 = 0.5 * (g11 + g33 - l13 * l13)
    g23 = 0.5 * (g22 + g33 - l23 * l23)
    c11 = g22 * g33 - g23 * g23
    c22 = g11 * g33 - g13 * g13
    c33 = g11 * g22 - g12 * g12
    c12 = g13 * g23 - g12 * g33
    c13 = g12 * g23 - g13 * g22
    c23 = g12 * g13 - g11 * g23
    det = g11 * c11 + g12 * c12 + g13 * c13
    if det > 0.0:
        base = min(t1, min(t2, t3))
        s1 = t1 - base
        s2 = t2 - base
        s3 = t3 - base
        r1 = c11 + c12 + c13
        r2 = c12 + c22 + c23
        r3 = c13 + c23 + c33
        aa = r1 + r2 + r3
        cs1 = c11 * s1 + c12 * s2 + c13 * s3
        cs2 = c12 * s1 + c22 * s2 + c23 * s3
        cs3 = c13 * s1 + c23 * s2 + c33 * s3
        bb = cs1 + cs2 + cs3
        disc = bb * bb - aa * (s1 * cs1 + s2 * cs2 + s3 * cs3 - det)
        if disc > 0.0 and aa > 0.0:
            mu = (bb + np.sqrt(disc)) / aa
            if mu * r1 - cs1 >= 0.0 and mu * r2 - cs2 >= 0.0 and mu * r3 - cs3 >= 0.0:
                return mu + base
    # the minimum lies on the boundary of the face
    best = edge_update(t1, t2, l1, l2, l12)
    best = min(best, edge_update(t1, t3, l1, l3, l13))
    return min(best, edge_update(t2, t3, l2, l3, l23))


@njit(cache=True, inline="always")
def tet_update(t1, t2, t3, l1, l2, l3, l12, l13, l23):
    """Face update where some of the three times may be +inf (use the finite sub-simplex)."""
    f1 = t1 < INF
    f2 = t2 < INF
    f3 = t3 < INF
    if f1 and f2 and f3:
        return face_update(t1, t2, t3, l1, l2, l3, l12, l13, l23)
    if f1 and f2:
        return edge_update(t1, t2, l1, l2, l12)
    if f1 and f3:
        return edge_update(t1, t3, l1, l3, l13)
    if f2 and f3:
        return edge_update(t2, t3, l2, l3, l23)
    if f1:
        return t1 + l1
    if f2:
        return t2 + l2
    if f3:
        return t3 + l3
    return INF


@njit(cache=True)
def local_update(tk, geo, i):
    """Plain update of local vertex ``i`` of one tetrahedron: times ``tk`` (4,), cell geometry ``geo`` (10,)."""
    o = OTHERS[i]
    g = GRAM_EDGES[i]
    return tet_update(tk[o[0]], tk[o[1]], tk[o[2]], geo[g[0]], geo[g[1]], geo[g[2]], geo[g[3]], geo[g[4]], geo[g[5]])


@njit(cache=True, inline="always")
def source_distance(points, i, src_pos, src_metric, k):
    """|x_i - s_k| in the metric of source k (stored as xx, yy, zz, xy, xz, yz)."""
    dx = points[i, 0] - src_pos[k, 0]
    dy = points[i, 1] - src_pos[k, 1]
    dz = points[i, 2] - src_pos[k, 2]
    m = src_metric[k]
    q = (m[0] * dx * dx + m[1] * dy * dy + m[2] * dz * dz
         + 2.0 * (m[3] * dx * dy + m[4] * dx * dz + m[5] * dy * dz))
    return np.sqrt(max(q, 0.0))


@njit(cache=True, inline="always")
def factored_update(points, i, v1, v2, v3, sx, sy, sz, dist_xs, ts, t1, t2, t3, z1, z2, z3, ok1, ok2, ok3,
                    l1, l2, l3, l12, l13, l23):
    """Candidate from interpolating tau = T - T0 where the straight ray from x_i to the source
    (sx, sy, sz) crosses the face (v1, v2, v3); inf when it does not cross it.

    z_k = T0 at the face vertices, ok_k = the vertex carries this source (only those may have a
    non-zero weight), dist_xs = |x_i - s|_M0, ts the source's start time.
    """
    xx, xy, xz = points[i, 0], points[i, 1], points[i, 2]
    dx, dy, dz = sx - xx, sy - xy, sz - xz
    ax, ay, az = points[v1, 0] - xx, points[v1, 1] - xy, points[v1, 2] - xz
    bx, by, bz = points[v2, 0] - xx, points[v2, 1] - xy, points[v2, 2] - xz
    cx, cy, cz = points[v3, 0] - xx, points[v3, 1] - xy, points[v3, 2] - xz
    # Cramer: d = mu1 a + mu2 b + mu3 c
    bcx, bcy, bcz = by * cz - bz * cy, bz * cx - bx * cz, bx * cy - by * cx
    det = ax * bcx + ay * bcy + az * bcz
    if det == 0.0:
        return INF
    m1 = dx * bcx + dy * bcy + dz * bcz
    # d . (c x a) and d . (a x b)
    m2 = dx * (cy * az - cz * ay) + dy * (cz * ax - cx * az) + dz * (cx * ay - cy * ax)
    m3 = dx * (ay * bz - az * by) + dy * (az * bx - ax * bz) + dz * (ax * by - ay * bx)
    sm = m1 + m2 + m3
    r = sm / det  # the ray reaches the face plane at x + d / r
    if r < 1.0 - 1e-12:  # the source lies before the face (inside this cell or behind x)
        return INF
    lam1 = m1 / sm
    lam2 = m2 / sm
    lam3 = m3 / sm
    eps = 1e-12
    if lam1 < -eps or lam2 < -eps or lam3 < -eps:  # the ray misses this face
        return INF
    tau = 0.0
    if lam1 > eps:
        if not ok1:
            return INF
        tau += lam1 * (t1 - z1)
    if lam2 > eps:
        if not ok2:
            return INF
        tau += lam2 * (t2 - z2)
    if lam3 > eps:
        if not ok3:
            return INF
        tau += lam3 * (t3 - z3)
    g11 = l1 * l1
    g22 = l2 * l2
    g33 = l3 * l3
    g12 = 0.5 * (g11 + g22 - l12 * l12)
    g13 = 0.5 * (g11 + g33 - l13 * l13)
    g23 = 0.5 * (g22 + g33 - l23 * l23)
    w = (lam1 * lam1 * g11 + lam2 * lam2 * g22 + lam3 * lam3 * g33
         + 2.0 * (lam1 * lam2 * g12 + lam1 * lam3 * g13 + lam2 * lam3 * g23))
    return ts + dist_xs * (1.0 - 1.0 / r) + tau + np.sqrt(max(w, 0.0))


# ------------------------------------------------------------------------------------ the heap


@njit(cache=True, inline="always")
def _heap_push(hkey, hnode, pos, size, node, key):
    """Insert ``node`` or decrease its key; returns the new heap size."""
    p = pos[node]
    if p < 0:
        p = size
        size += 1
    while p > 0:
        q = (p - 1) >> 1
        if hkey[q] <= key:
            break
        hkey[p] = hkey[q]
        hnode[p] = hnode[q]
        pos[hnode[p]] = p
        p = q
    hkey[p] = key
    hnode[p] = node
    pos[node] = p
    return size


@njit(cache=True, inline="always")
def _heap_pop(hkey, hnode, pos, size):
    """Remove the minimum; returns (node, new size)."""
    top = hnode[0]
    pos[top] = -1
    size -= 1
    if size > 0:
        key = hkey[size]
        last = hnode[size]
        p = 0
        while True:
            left = 2 * p + 1
            if left >= size:
                break
            m = left
            if left + 1 < size and hkey[left + 1] < hkey[left]:
                m = left + 1
            if hkey[m] >= key:
                break
            hkey[p] = hkey[m]
            hnode[p] = hnode[m]
            pos[hnode[p]] = p
            p = m
        hkey[p] = key
        hnode[p] = last
        pos[last] = p
    return top, size


# ------------------------------------------------------------------------------- the propagation


@njit(cache=True)
def propagate(points, cells, n2c_ptr, n2c_cell, n2c_loc, geo, init_nodes, init_times, init_labels,
              src_pos, src_time, src_metric, factored, tol, t, chain_break=0.05):
    """Activation times ``t`` (n,) from initial values; returns the number of node visits (pops).

    ``cells`` (m, 4), node -> cell CSR (``n2c_ptr``, ``n2c_cell``, ``n2c_loc`` = local index of the
    node in that cell), ``geo`` (m, 10) from :func:`cell_geometry`. ``init_labels`` give the source
    (row of ``src_pos`` (S, 3), ``src_time`` (S,), ``src_metric`` (S, 6)) of each initial value.
    Nodes no source reaches stay inf.
    """
    n = t.shape[0]
    t[:] = INF
    lab = np.full(n, -1, dtype=np.int32)
    z = np.zeros(n, dtype=np.float64)  # T0 of the node's source
    hkey = np.empty(n, dtype=np.float64)
    hnode = np.empty(n, dtype=np.int32)
    pos = np.full(n, -1, dtype=np.int32)
    size = 0
    for k in range(init_nodes.shape[0]):
        v = init_nodes[k]
        if init_times[k] < t[v]:
            t[v] = init_times[k]
            lab[v] = init_labels[k]
            z[v] = src_time[lab[v]] + source_distance(points, v, src_pos, src_metric, lab[v])
    for k in range(init_nodes.shape[0]):
        v = init_nodes[k]
        if pos[v] < 0:
            size = _heap_push(hkey, hnode, pos, size, v, t[v])
    tk = np.empty(4, dtype=np.float64)
    visits = 0
    while size > 0:
        j, size = _heap_pop(hkey, hnode, pos, size)
        visits += 1
        for idx in range(n2c_ptr[j], n2c_ptr[j + 1]):
            c = n2c_cell[idx]
            lj = n2c_loc[idx]
            for a in range(4):
                tk[a] = t[cells[c, a]]
            for li in range(4):
                if li == lj:
                    continue
                ti = tk[li]
                o0 = OTHERS[li, 0]
                o1 = OTHERS[li, 1]
                o2 = OTHERS[li, 2]
                t1 = tk[o0]
                t2 = tk[o1]
                t3 = tk[o2]
                tmin = min(t1, min(t2, t3))
                # no face point can beat a vertex that is already earlier than the whole face
                if ti <= tmin:
                    continue
                g = GRAM_EDGES[li]
                l1 = geo[c, g[0]]
                l2 = geo[c, g[1]]
                l3 = geo[c, g[2]]
                l12 = geo[c, g[3]]
                l13 = geo[c, g[4]]
                l23 = geo[c, g[5]]
                i = cells[c, li]
                v1 = cells[c, o0]
                v2 = cells[c, o1]
                v3 = cells[c, o2]
                new = INF
                newlab = -1
                newz = 0.0
                if factored and lab[j] >= 0:
                    # factored candidate along the ray to the popped node's source
                    s = lab[j]
                    if lab[i] == s:  # z holds T0 of the node's own source
                        dist_xs = z[i] - src_time[s]
                    else:
                        dist_xs = source_distance(points, i, src_pos, src_metric, s)
                    cand = factored_update(points, i, v1, v2, v3, src_pos[s, 0], src_pos[s, 1], src_pos[s, 2],
                                           dist_xs, src_time[s], t1, t2, t3, z[v1], z[v2], z[v3],
                                           lab[v1] == s, lab[v2] == s, lab[v3] == s, l1, l2, l3, l12, l13, l23)
                    if cand < INF:
                        new = cand
                        newlab = s
                        newz = src_time[s] + dist_xs
                # the plain update can only win if the face's earliest vertex plus the cell's
                # height (the shortest path across it) beats the current and factored values
                if tmin + geo[c, 6 + li] < min(ti - tol, new):
                    cand = tet_update(t1, t2, t3, l1, l2, l3, l12, l13, l23)
                    if cand < new:
                        # a plain value far below the factored one means the source's straight-ray
                        # factor no longer describes the front here (fronts merging, a planar
                        # front): the node leaves the factored chain. A small win (the ray point
                        # is not the optimal point in heterogeneous tissue) keeps it in.
                        if newlab >= 0 and new - cand > chain_break * (new - src_time[newlab]):
                            newlab = -1
                        new = cand
                if new < ti - tol:
                    tk[li] = new
                    t[i] = new
                    if factored:  # a value from the plain update starts no factored chain (lab -1)
                        lab[i] = newlab
                        z[i] = newz
                    size = _heap_push(hkey, hnode, pos, size, i, new)
    return visits


@njit(cache=True, parallel=True)
def propagate_batch(points, cells, n2c_ptr, n2c_cell, n2c_loc, fibres, sheets, has_sheets, regions,
                    vel_batch, init_ptr, init_nodes, init_times, init_labels, src_pos, src_time, src_metric,
                    factored, tol, out, visits):
    """One activation per row of ``vel_batch`` (b, R, 3) and per initial-value block, in parallel.

    Initial values of item b are ``init_*[init_ptr[b]:init_ptr[b + 1]]``; their labels index the
    shared (flattened) source arrays.
    """
    m = cells.shape[0]
    for b in prange(out.shape[0]):
        geo = np.empty((m, N_GEO), dtype=np.float64)
        cell_geometry_serial(points, cells, fibres, sheets, has_sheets, regions, vel_batch[b], geo)
        s, e = init_ptr[b], init_ptr[b + 1]
        visits[b] = propagate(points, cells, n2c_ptr, n2c_cell, n2c_loc, geo, init_nodes[s:e], init_times[s:e],
                              init_labels[s:e], src_pos, src_time, src_metric, factored, tol, out[b])
