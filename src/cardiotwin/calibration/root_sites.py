"""Root-node sites by a discrete search over precomputed single-root activation fields.

**Why.** The sites of the root nodes make the QRS landscape multimodal: a root can trade its place
with its delay or with a neighbouring root, and CMA-ES with the small step of a late search cannot
carry a root across its box. On the phantom recovery seeds the found points fit the noisy ECG three
times worse than the hidden truth (fine loss 0.18-0.26 vs 0.06) with a root 20-30 mm off, so the
search, not the model, had failed there.

**How.** The activation from point sources x_k started at t_k is the pointwise minimum of the
single-source solutions, T(x) = min_k (t_k + T_k(x)) (the eikonal solution is the geodesic distance
from the nearest source in the conduction metric; activation from root-node candidates is built in
just this way from precomputed distances by Camps et al. 2021, Med Image Anal 71:102047, and the
candidate-site sampling follows Gillette et al. 2021, Med Image Anal 71:102080). With the
velocities held, the activation from every candidate site of every root is solved once, on the
coarse model (:mod:`.coarse`; ~0.1 s per site) or on the 1 mm model (~1 s per site, no coarse
bias), in one batched eikonal solve per root, after which any combination of sites and delays
costs an elementwise minimum and one ECG evaluation (~15 ms), not an eikonal solve.

* Candidates of a root: an ``n_grid`` x ``n_grid`` grid over its (apicobasal, rotational) box,
  mapped to fine endocardial nodes by the model's own rule (duplicates dropped), and its current
  site.
* Search: block-coordinate descent. For each root in turn every candidate site with the delays
  current + ``DELAY_STEPS_MS`` and earliest other root + ``LEAD_STEPS_MS`` is evaluated with the
  other roots held, and the best combination kept; cycles until no root moves. The lead steps let
  a root that is overrun by the others' fronts (its own delay then carries no information) come
  back first at a new site: on two phantom seeds the found point had the reference root overrun
  and two others at the lower delay bound, pinned there because the true site of the reference
  root could only win with a delay below theirs.
* Only delay differences shape the activation (it is referred to its earliest node), so the
  reference root's delay (0 in the search space) moves too, as the exact shift of all the others
  the other way; every delay is confined to where the shifted delays stay in their box, and the
  result is referred back to the reference root.
* The space-mapping correction of the QRS problem, if any, applies to the combined activation as
  to every coarse evaluation. The minimum-of-fields activation differs from a joint solve only where
  fronts meet (99 % of nodes within 0.3 ms); the result is checked with a full solve of the same
  model and kept only if it beats the starting point.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from cardiotwin.calibration.space import DELAY_RANGE_MS
from cardiotwin.electrophysiology.parameters import EpParameters, RootNode
from cardiotwin.errors import InvalidParameterError

__all__ = ["DELAY_STEPS_MS", "LEAD_STEPS_MS", "root_site_search"]

DELAY_STEPS_MS = (-8.0, -4.0, 0.0, 4.0, 8.0)
"""Delays tried for each candidate site, relative to the root's current delay."""
LEAD_STEPS_MS = (-6.0, -3.0, 0.0)
"""Delays tried for each candidate site, relative to the earliest of the other roots."""
_CHUNK = 32  # candidate activations per ECG batch (memory: chunk x fine nodes)


def _candidates(prob, params: EpParameters, root: RootNode, n_grid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(apicobasal, rotational, fine node) of the candidate sites of ``root``; its current site included."""
    idx = [prob.space.names.index(f"root:{root.name}:{f}") for f in ("apicobasal", "rotational")]
    (a0, r0), (a1, r1) = prob.space.low[idx], prob.space.high[idx]
    ab, rot = (g.ravel() for g in np.meshgrid(np.linspace(a0, a1, n_grid), np.linspace(r0, r1, n_grid), indexing="ij"))
    ab, rot = np.append(ab, root.apicobasal), np.append(rot, root.rotational)
    probes = params.with_values(roots=tuple(replace(root, name=f"{root.name}#{i}", apicobasal=float(a), rotational=float(r))
                                            for i, (a, r) in enumerate(zip(ab, rot))))
    nodes = prob.cm.model.root_nodes(probes)[0]
    keep = np.sort(np.unique(nodes, return_index=True)[1])
    return ab[keep], rot[keep], nodes[keep]


class _Fields:
    """Single-root activation fields of one fidelity: ``solve`` (fine candidate nodes of one
    ventricle -> (m, nodes) float32 fields, no head-wave delay) and ``activation`` (combined
    fields (b, nodes) -> ventricular activation (b, fine ventricular nodes) as the QRS problem's
    evaluations of that fidelity give it)."""

    def __init__(self, prob, params: EpParameters, fidelity: str):
        self.prob, self.params, self.fidelity = prob, params, fidelity
        cm = prob.cm
        if fidelity == "coarse":
            self.n_nodes = cm.coarse.n_points
        else:
            self.n_nodes = cm.model.ventricles.nodes.size
            self._band = cm.model.band.delay([params], cm.model.ventricles.nodes)

    def solve(self, ventricle: str, nodes: np.ndarray) -> np.ndarray:
        cm, t0 = self.prob.cm, np.zeros(1)  # each candidate alone, started at 0
        if self.fidelity == "coarse":
            cnodes = cm.coarse.snap([ventricle] * len(nodes), cm.twin.heart.points[nodes])
            out = cm.coarse.solve([self.params] * len(nodes), [(np.array([c]), t0) for c in cnodes])
        else:  # in batches: the fine solver's memory grows with the batch
            out = np.concatenate([cm.model.ventricular_batch([self.params] * len(part), [(np.array([n]), t0) for n in part],
                                                             head_wave=False).astype(np.float32)
                                  for part in np.array_split(nodes, int(np.ceil(len(nodes) / _CHUNK)))])
        self.prob.counts[self.fidelity] += len(nodes)
        return out.astype(np.float32, copy=False)

    def activation(self, combined: np.ndarray) -> np.ndarray:
        if self.fidelity == "coarse":
            return self.prob.corrected(self.prob.cm.coarse.to_fine(combined.astype(float), [self.params]))
        vent = combined + self._band
        return vent - vent.min(axis=1, keepdims=True)


def root_site_search(prob, x: np.ndarray, n_grid: int = 8, cycles: int = 3, history: list | None = None,
                     clock: float | None = None, fidelity: str = "coarse") -> tuple[np.ndarray, float, int]:
    """Move the root nodes of unit-cube point ``x`` of ``prob`` (a QRS problem of
    :mod:`.optimise`) to better sites and delays (module docstring), with single-root fields of the
    coarse model (space-mapped) or of the fine model. Returns the new point, its loss (a full
    solve of that fidelity) and the number of eikonal solves spent."""
    if n_grid < 2 or cycles < 1:
        raise InvalidParameterError(f"the root-site search needs n_grid >= 2 and cycles >= 1, got {n_grid}, {cycles}")
    if fidelity not in ("coarse", "fine"):
        raise InvalidParameterError(f"fidelity must be 'coarse' or 'fine', got {fidelity!r}")
    clock = time.perf_counter() if clock is None else clock
    space = prob.space
    params = space.to_params(x, prob.base)
    roots = params.roots
    model = _Fields(prob, params, fidelity)
    cands, fields = [], []
    for r in roots:
        ab, rot, nodes = _candidates(prob, params, r, n_grid)
        fields.append(model.solve(r.ventricle, nodes))
        cands.append((ab, rot, nodes))
    n_solves = sum(len(f) for f in fields)
    current = prob.cm.model.root_nodes(params)[0]
    site = [int(np.flatnonzero(c[2] == n)[0]) for c, n in zip(cands, current)]
    delay = np.array([r.delay_ms for r in roots], dtype=float)
    free = np.array([f"root:{r.name}:delay_ms" in space.names for r in roots])
    held = np.flatnonzero(~free)
    ref = int(held[0]) if len(held) == 1 and len(roots) > 1 else None  # its delay moves as a shift of the others

    def delay_options(k: int) -> np.ndarray:
        """Delays of root ``k`` to try: steps from its own and from the earliest other root's, within
        the box of delays relative to the reference root (for the reference root itself: where every
        other delay relative to it stays in the box)."""
        if not free[k] and k != ref:
            return delay[k:k + 1]
        others = np.delete(delay, k)
        if k == ref:
            lo, hi = others.max() - DELAY_RANGE_MS[1], others.min() - DELAY_RANGE_MS[0]
        else:
            d_ref = 0.0 if ref is None else delay[ref]
            lo, hi = d_ref + DELAY_RANGE_MS[0], d_ref + DELAY_RANGE_MS[1]
        steps = np.concatenate([delay[k] + np.array(DELAY_STEPS_MS), others.min() + np.array(LEAD_STEPS_MS)])
        return np.unique(np.clip(steps, lo, hi))

    def losses(k: int, sites: np.ndarray, delays: np.ndarray) -> np.ndarray:
        others = [delay[j] + fields[j][site[j]] for j in range(len(roots)) if j != k]
        held = np.min(others, axis=0) if others else np.full(model.n_nodes, np.inf, dtype=np.float32)
        out = []
        for s in range(0, len(sites), _CHUNK):
            tc = np.minimum(held[None], fields[k][sites[s:s + _CHUNK]] + delays[s:s + _CHUNK, None].astype(np.float32))
            out.append(prob.fit(model.activation(tc)).loss)
        return np.concatenate(out)

    f_cur = float(losses(0, np.array([site[0]]), np.array([delay[0]]))[0])
    f_start, n_evals, n_cycles = f_cur, 1, 0
    for n_cycles in range(1, cycles + 1):
        moved = False
        for k in range(len(roots)):
            sites, delays = (g.ravel() for g in np.meshgrid(np.arange(len(fields[k])), delay_options(k), indexing="ij"))
            f = losses(k, sites, delays)
            n_evals += len(f)
            i = int(np.argmin(f))
            if f[i] < f_cur - 1e-9:
                site[k], delay[k], f_cur, moved = int(sites[i]), float(delays[i]), float(f[i]), True
        if not moved:
            break
    if ref is not None:  # referred back to the reference root's own delay
        delay += roots[ref].delay_ms - delay[ref]
    new = params.with_values(roots=tuple(replace(r, apicobasal=float(c[0][s]), rotational=float(c[1][s]),
                                                 delay_ms=float(d) if fr else r.delay_ms)
                                         for r, c, s, d, fr in zip(roots, cands, site, delay, free)))
    x_new = space.to_unit(new)
    both = prob.loss(fidelity)(np.stack([np.asarray(x, dtype=float), x_new]))
    keep = bool(both[1] < both[0])
    if history is not None:
        history.append({"stage": f"QRS root sites ({fidelity})", "candidates": [len(f) for f in fields], "ecg_evaluations": n_evals,
                        "cycles": n_cycles, "loss_fields_start": f_start, "loss_fields_end": f_cur,
                        "loss_before": float(both[0]), "loss_after": float(min(both)), "kept": keep,
                        "time_s": time.perf_counter() - clock})
    return (x_new, float(both[1]), n_solves + 2) if keep else (np.asarray(x, dtype=float), float(both[0]), n_solves + 2)
