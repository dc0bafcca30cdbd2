"""Action-potential duration fields and repolarisation times of the ventricles.

**Intrinsic APD.** APD varies smoothly through the ventricles with three gradients (signs and sizes in
:mod:`cardiotwin.electrophysiology.parameters`): transmural (endocardium longer than epicardium, the
main source of the upright T wave), apicobasal and interventricular (Keller et al. 2012, IEEE TBME
59:311 for the use of such gradients in ECG models). With Z the apicobasal coordinate (0 apex, 1 base) and
d = d_endo / (d_endo + d_epi) the relative depth from the nearest endocardium (0 endocardium,
1 epicardium; the septum, far from any epicardium, stays endocardial-like, as measured in human
septa):

    APD = apd_mean + apd_transmural (0.5 - d) + apd_apicobasal (0.5 - Z) + apd_rv [RV free wall]
          + apd_apicobasal_mid (4 Z (1 - Z) - 2/3) + [LV] (apd_septal cos φ + apd_anterior sin φ) / 2

(``apd_apicobasal`` is apex minus base, ``apd_rv`` RV minus LV; the last three make the field a smooth
low-order basis on the universal coordinates, second order in Z and first order in the rotational
coordinate φ of the LV, 0 at the septum: mid-ventricle minus apex and base, septum minus lateral
wall, anterior minus posterior wall, in the spirit of the smooth repolarisation fields inferred
from the ECG by Camps et al. 2025, whose prior toward a smooth field is here the calibration's
regularisation toward the defaults.) Atrial nodes get ``apd_atrial``.

**Repolarisation times.** RT = AT + APD with two corrections that an eikonal model with a fixed
action potential otherwise leaves out, and without which its T waves come out too tall (a fixed-AP
forward model overestimates T amplitudes against reaction-diffusion; Potse et al. 2007, Anatol J
Cardiol 7 Suppl 1:123):

* *activation-repolarisation coupling*: in human ventricles the APD shortens where activation is
  late, so repolarisation spreads less than activation plus APD would (Franz et al. 1987,
  Circulation 75:379; Hanson et al. 2009, Circ Arrhythm Electrophysiol 2:162). With
  κ = ``apd_coupling``, APD_eff = APD - κ (AT - <AT>), <AT> the volume mean over the ventricles; κ = 1
  makes RT independent of the activation sequence.
* *electrotonic smoothing*: the intercellular current during repolarisation evens out the
  intrinsic RT differences (transmural ones above all; Gima & Rudy 2002, Circ Res 90:889). It is
  modelled as one implicit diffusion step, the screened-Poisson (Helmholtz) filter
  (M + ℓ² K) RT_s = M RT on the ventricular myocardium, with M the lumped P1 mass matrix and K the
  stiffness matrix of the diffusion tensor f fᵀ + r (I - f fᵀ) (f the fibre, r = ``CROSS_FIBRE_RATIO``,
  the ratio of cross- to along-fibre diffusivity, the square of the default velocity ratio since
  velocity goes with the square root of diffusivity). ℓ = ``rt_smoothing_mm`` is the along-fibre
  length: a Fourier mode of wavelength λ is damped by 1 / (1 + (2 π ℓ / λ)²), constants and the mean
  are kept (natural boundary conditions: no current leaves the myocardium). A monodomain diffusivity of
  about 0.1 mm²/ms acting over a phase-3 time of tens of ms gives ℓ of a few mm.

Nodes that are never activated keep RT = +inf; a beat with such nodes is smoothed over the others.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import pyamg
import scipy.sparse as sp

from cardiotwin import labels as lab
from cardiotwin.electrophysiology.parameters import EpParameters
from cardiotwin.errors import AnatomyError
from cardiotwin.fem.assembly import anisotropic_tensor, lumped_mass, shape_gradients, stiffness
from cardiotwin.types import TetMesh

FIELDS = ("uvc_apicobasal", "uvc_rotational", "uvc_transventricular", "endo_distance_mm", "epi_distance_mm")
APD_TERMS = ("apd_mean", "apd_transmural", "apd_apicobasal", "apd_rv", "apd_apicobasal_mid", "apd_septal",
             "apd_anterior")
"""θ's coefficients of the intrinsic APD's basis fields (:func:`apd_basis`)."""
CROSS_FIBRE_RATIO = (0.24 / 0.6) ** 2
"""Cross- over along-fibre diffusivity of the smoothing: the default velocity ratio squared."""
SMOOTHING_TOL = 1e-8
SKIP_MARGIN_MS = 20.0


def apd_basis(mesh: TetMesh) -> np.ndarray:
    """The intrinsic APD's basis fields (n, 7), in the order of :data:`APD_TERMS`; NaN off the ventricles."""
    pd = mesh.point_data
    missing = [k for k in FIELDS if k not in pd]
    if missing:
        raise AnatomyError(f"APD gradients need the point fields {missing} (coordinates and conduction fields)")
    d_endo, d_epi = pd["endo_distance_mm"], pd["epi_distance_mm"]
    depth = d_endo / np.maximum(d_endo + d_epi, 1e-9)
    z = np.asarray(pd["uvc_apicobasal"], dtype=float)
    inside = np.isfinite(z)
    rv = (pd["uvc_transventricular"] > 0).astype(float)
    phi = np.asarray(pd["uvc_rotational"], dtype=float)
    lv = np.where(inside, 1.0 - rv, np.nan)  # rotational modes on LV coordinates (septum included)
    cols = [np.where(inside, 1.0, np.nan), 0.5 - depth, 0.5 - z, np.where(inside, rv, np.nan),
            4.0 * z * (1.0 - z) - 2.0 / 3.0, 0.5 * lv * np.cos(phi), 0.5 * lv * np.sin(phi)]
    return np.stack(cols, axis=1)


def _coefficients(params: EpParameters) -> np.ndarray:
    return np.array([getattr(params, name) for name in APD_TERMS])


def apd_field(mesh: TetMesh, params: EpParameters) -> np.ndarray:
    """Intrinsic action-potential duration (ms) per node (ventricular gradients; ``apd_atrial`` elsewhere)."""
    apd = apd_basis(mesh) @ _coefficients(params)
    return np.where(np.isfinite(apd), apd, params.apd_atrial)


class Repolarisation:
    """Repolarisation times of one heart mesh for any activation and θ (build once, call often):
    intrinsic APD, activation-repolarisation coupling and electrotonic smoothing (module docstring)."""

    def __init__(self, mesh: TetMesh, max_cached: int = 4):
        self.mesh = mesh
        self.basis = apd_basis(mesh)
        vent = np.isin(mesh.tags, lab.labels_of(lab.VENTRICULAR_WALLS))
        if not vent.any():
            raise AnatomyError("the heart mesh has no ventricular myocardium")
        cells = mesh.cells[vent]
        self.nodes = np.unique(cells)
        local = np.full(len(mesh.points), -1, dtype=np.int64)
        local[self.nodes] = np.arange(len(self.nodes))
        self._cells = local[cells]
        self._fibre = np.asarray(mesh.cell_data["fibre"])[vent] if "fibre" in mesh.cell_data else None
        pts = mesh.points[self.nodes]
        self._shape = shape_gradients(pts, self._cells)
        self._mass = lumped_mass(pts, self._cells, shape=self._shape)
        self._stiffness: sp.csr_matrix | None = None
        self._solvers: OrderedDict[float, pyamg.multilevel.MultilevelSolver] = OrderedDict()
        self._recent: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._max_cached = max_cached

    # -------------------------------------------------------------------- pieces

    def apd(self, params: EpParameters) -> np.ndarray:
        """Intrinsic APD (n,) ms (:func:`apd_field`)."""
        apd = self.basis @ _coefficients(params)
        return np.where(np.isfinite(apd), apd, params.apd_atrial)

    def mean_activation(self, at: np.ndarray) -> np.ndarray:
        """Volume mean of the ventricular activation times (b,) over activated nodes."""
        t = np.atleast_2d(at)[:, self.nodes]
        ok = np.isfinite(t)
        return (np.where(ok, t, 0.0) * self._mass).sum(1) / np.maximum((ok * self._mass).sum(1), 1e-300)

    def smooth(self, values: np.ndarray, length_mm: float) -> np.ndarray:
        """The screened-Poisson filter of ventricular nodal values (k, n_ventricular nodes), k fields."""
        v = np.atleast_2d(np.asarray(values, dtype=float))
        if length_mm <= 0.0:
            return v.copy()
        ml = self._solver(float(length_mm))
        return np.stack([ml.solve(row * self._mass, x0=row, tol=SMOOTHING_TOL, accel="cg") for row in v])

    def _solver(self, length_mm: float):
        """Smoothed-aggregation AMG (PyAMG; Bell, Olson & Schroder 2022) of M + ℓ² K, SPD."""
        if length_mm in self._solvers:
            self._solvers.move_to_end(length_mm)
            return self._solvers[length_mm]
        if self._stiffness is None:
            pts = self.mesh.points[self.nodes]
            tensor = None if self._fibre is None else anisotropic_tensor(self._fibre, 1.0, CROSS_FIBRE_RATIO)
            self._stiffness = stiffness(pts, self._cells, tensor, shape=self._shape)
        solver = pyamg.smoothed_aggregation_solver((sp.diags(self._mass) + length_mm ** 2 * self._stiffness).tocsr(),
                                                   symmetry="symmetric", max_coarse=500)
        self._solvers[length_mm] = solver
        while len(self._solvers) > self._max_cached:
            self._solvers.popitem(last=False)
        return solver

    # -------------------------------------------------------------------- times

    def times(self, at: np.ndarray, params: EpParameters | list[EpParameters],
              before_ms: float | None = None) -> np.ndarray:
        """RT (b, n) ms of activation times ``at`` (n,) or (b, n) and one θ or one per beat; +inf
        where a node is never activated. ``before_ms``: only repolarisation times earlier than this
        matter to the caller (an ECG window ending before any phase 3 can start); a beat whose
        unsmoothed times all lie ``SKIP_MARGIN_MS`` past it is not smoothed (the smoothing averages
        neighbours and cannot bring its earliest time that much earlier)."""
        at = np.atleast_2d(np.asarray(at, dtype=float))
        ps = [params] * len(at) if isinstance(params, EpParameters) else list(params)
        if len(ps) != len(at):
            raise ValueError(f"{len(ps)} parameter sets for {len(at)} activation maps")
        apd = np.stack([self.apd(p) for p in ps])
        kappa = np.array([p.apd_coupling for p in ps])
        rt = at + apd
        v = self.nodes
        rt[:, v] -= kappa[:, None] * (at[:, v] - self.mean_activation(at)[:, None])
        for k, p in enumerate(ps):
            if p.rt_smoothing_mm <= 0.0:
                continue
            if before_ms is not None and np.nanmin(np.where(np.isfinite(at[k, v]), rt[k, v], np.nan),
                                                   initial=np.inf) > before_ms + SKIP_MARGIN_MS:
                continue
            rt[k, v] = self._smooth_beat(rt[k, v], float(p.rt_smoothing_mm))
        rt[:, v] = np.maximum(rt[:, v], at[:, v] + MIN_APD_MS)
        return np.where(np.isfinite(at), rt, np.inf)

    def _smooth_beat(self, rt_v: np.ndarray, length_mm: float) -> np.ndarray:
        """The smoothed times of one beat, remembered by content (the P stage and the final beat
        repeat the same ventricular times)."""
        key = (length_mm, hashlib.blake2b(rt_v.tobytes(), digest_size=16).digest())
        if key in self._recent:
            return self._recent[key].copy()
        ok = np.isfinite(rt_v)
        if ok.all():
            out = self.smooth(rt_v, length_mm)[0]
        else:  # never-activated nodes: the gap filled by the mean of the rest, then left at +inf
            filled = np.where(ok, rt_v, np.average(rt_v[ok], weights=self._mass[ok]) if ok.any() else 0.0)
            out = np.where(ok, self.smooth(filled, length_mm)[0], np.inf)
        self._recent[key] = out
        while len(self._recent) > self._max_cached:
            self._recent.popitem(last=False)
        return out.copy()

    def for_activation(self, at: np.ndarray) -> "FixedActivation":
        """RT of one activation map for many θ at the cost of a few smoothing solves per smoothing
        length (the T stage's case): everything is linear in AT and in the APD coefficients."""
        return FixedActivation(self, np.asarray(at, dtype=float))


MIN_APD_MS = 100.0
"""Floor of the effective APD (RT - AT): strong coupling, a short APD and smoothing can otherwise put a
late-activated node's RT before its AT (a crash on real record ptb10_9); human ventricular APDs
stay above ~150 ms even at fast rates."""


class FixedActivation:
    """:meth:`Repolarisation.times` for one activation map, by linearity: with S the smoothing,
    RT_v = (1 - κ) S(AT) + κ <AT> + Σ c_j S(φ_j) (S keeps constants), the smoothed fields cached per ℓ."""

    def __init__(self, rep: Repolarisation, at: np.ndarray):
        if not np.all(np.isfinite(at[rep.nodes])):
            raise AnatomyError("a fixed-activation repolarisation needs every ventricular node activated")
        self.rep, self.at = rep, at
        self.mean = float(rep.mean_activation(at)[0])
        self._fields: dict[float, np.ndarray] = {}

    def _smoothed(self, length_mm: float) -> np.ndarray:
        if length_mm not in self._fields:
            v = self.rep.nodes
            raw = np.vstack([self.at[v], self.rep.basis[v, 1:].T])
            self._fields[length_mm] = self.rep.smooth(raw, length_mm)
        return self._fields[length_mm]

    def times(self, params: list[EpParameters]) -> np.ndarray:
        rep, v = self.rep, self.rep.nodes
        out = np.empty((len(params), len(self.at)))
        for k, p in enumerate(params):
            out[k] = self.at + rep.apd(p)
            s = self._smoothed(float(p.rt_smoothing_mm))
            c = _coefficients(p)
            out[k, v] = (1.0 - p.apd_coupling) * s[0] + p.apd_coupling * self.mean + c[0] + c[1:] @ s[1:]
            out[k, v] = np.maximum(out[k, v], self.at[v] + MIN_APD_MS)
        return out

