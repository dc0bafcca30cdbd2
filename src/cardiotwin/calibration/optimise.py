"""Calibration of a twin's electrophysiology to a patient's 12-lead ECG, stage by stage.

**Stages** (each fits its own window of the median beat with :class:`~.objective.Mismatch`; the
others' parameters are held):

1. **QRS**: ventricular activation, i.e. root-node sites and delays in universal ventricular
   coordinates and the ventricular velocities (``cv_fibre``, ``cv_transverse``, ``cv_endo``,
   ``endo_depth_mm``); :mod:`.space` gives the boxes. The atria are solved once (their
   parameters are not fitted here) and only the ventricles are re-solved.
2. **T**: repolarisation (``apd_mean`` and the transmural, apicobasal and RV gradients) with the
   activation of stage 1 fixed, so every evaluation is an APD field and a fast lead-field ECG
   (~10 ms), no eikonal solve. The T peak time and the T end (the QT interval), bounded on the
   simulated leads as the delineator bounds the patient's, are terms of the objective
   (``FEATURE_WEIGHT``): by shape alone the long QT of ptb10_0 (478 ms) was fitted 95 ms short.
3. **P**: the sinus site on the crista terminalis, atrial velocities, bundle factor, the delays of
   the interatrial routes and the AV delay, only when the record has a P wave
   (``Fiducials.has_p``; atrial fibrillation has none, and then only QRS and T are calibrated: the
   atria keep their defaults and the result says so). Ventricular activation relative to its
   onset is fixed; only the atria are re-solved, and the whole beat keeps the QRS alignment, so
   the P wave's position (the PR interval) is fitted through ``av_delay``, chosen per candidate
   by a shift of its atrial ECG (no extra solve). The P onset (PR) and P duration, bounded on the
   simulated leads as the delineator bounds the patient's, are terms of the objective
   (``FEATURE_WEIGHT``): by shape alone ptb10_5's PR was fitted 54 ms off, 12 ms with them.

**Optimiser.** CMA-ES (Hansen 2016, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772;
the ``cma`` package) in the unit cube of each stage's box, with box bounds, its default population
(4 + 3 ln d; each generation is one parallel batch through the batched eikonal solver) and stop
criteria: the evaluation budget, ``tolfun`` (generation range of the best losses below 1e-4) and
``tolx``. It is deterministic given ``seed`` (the ``cma`` seed and the batch evaluations are).

**Global start (QRS).** Root-node landscapes are multimodal (a root can trade place with a delay
or with a neighbouring root), and one CMA-ES run from the default parameters can settle in a
local minimum. With ``starts > 1`` the QRS stage first evaluates a scrambled Sobol design over the
whole box and starts short CMA-ES searches from its best distinct points, as Gillette et al. 2021
sample before they optimise; the best search continues below. On the phantom recovery seeds it
did not beat one search at equal budget (the searches are shorter), so the default is 1. Roots
stuck in the wrong part of their boxes are moved by the discrete root-site search of
:mod:`.root_sites` (single-root activation fields precomputed, every candidate site and a few
delays tried per root) in the first space-mapping round (``root_sites``, default an 8 x 8 grid per
root box).

**Multi-fidelity QRS.** One 1 mm ventricular solve costs ~1.4 s on 2 cores. The QRS stage runs
CMA-ES on a 2 mm re-meshing of the ventricles (:class:`~.coarse.CoarseVentricles`, ~30x cheaper;
parameters transfer because they live in UVC), whose activation times are interpolated onto the
1 mm nodes so the ECG still uses the twin's lead fields. The coarse model's discretisation error
(a few ms of activation time, mostly where the fast endocardial layer is thinner than the coarse
cells) is then removed by *output space mapping* (Bandler et al. 2004, IEEE Trans Microw Theory
Tech 52:337; Koziel et al. 2006): the fine solution at the current best point gives a correction
field dT = T_fine - T_coarse which is added to every later coarse evaluation, and a short,
narrower CMA-ES restart re-optimises the corrected coarse model; ``mapping_rounds`` such rounds,
then the best fine candidate wins. ``coarse_edge_mm=None`` runs the whole QRS stage on the 1 mm
model instead. The 2 mm model can misjudge root sites (on one recovery seed it scored the hidden
truth 8x worse than the 1 mm model did), so ``fine_root_sites`` repeats the root-site search with
1 mm single-root fields before the optional 1 mm refinement (``fine_budget``): Levenberg-Marquardt
steps with a finite-difference Jacobian of the residual signals (:mod:`.refine`), which follow the
valley along which slower myocardium trades against root sites and delays.

**Heart orientation** (``pose=True``). When the twin's anatomy or torso is not the patient's, the
heart's rotation in the torso (:mod:`.pose`) joins the QRS stage: with the activation held, CMA-ES
fits the rotation vector (first from the best point of a +/- 20 deg design) at the first space
mapping, before the roots adapt to it, and once more, narrowly, for the final activation. A
rotation costs one lead-field resampling (~0.2 s), no eikonal solve.

The ML route (``method="ml"``) starts the same QRS optimisation from an amortised-inference
network's estimate with a small step size and a fraction of the budget (:mod:`.emulator`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from cardiotwin.calibration.config import CalibrationConfig
from cardiotwin.calibration.beat_features import beat_feature_errors
from cardiotwin.calibration.objective import BEAT, Mismatch, Target, WindowFit
from cardiotwin.calibration.refine import levenberg_marquardt, min_budget
from cardiotwin.calibration.root_sites import root_site_search
from cardiotwin.calibration.space import SearchSpace
from cardiotwin.ecg.signal import Beat, t_wave_bounds, wave_bounds
from cardiotwin.electrophysiology.parameters import SPECS, EpParameters
from cardiotwin.electrophysiology.repolarisation import Repolarisation
from cardiotwin.errors import AnatomyError, InputError, InvalidParameterError
from cardiotwin.types import TWELVE_LEADS, Ecg

__all__ = ["CalibrationModel", "CalibrationResult", "OptimiserRun", "QUICK", "REFINEMENT", "atrial_errors", "cmaes", "calibrate", "repolarisation_errors",
           "recovery_errors"]

DEFAULT_BUDGET = 1200
"""Coarse-model evaluations of the QRS stage (~1-2 min on 2 cores)."""
T_SCAN = 16
"""Mean-APD values tried before each of the T stage's CMA-ES searches (part of its budget)."""
T_SMOOTHING_MM = (0.0, 3.0, 6.0)
"""Electrotonic smoothing lengths (``rt_smoothing_mm``) the T stage searches at, one search each."""
T_PRIOR = 0.01
"""Weight of the T stage's Gaussian prior: squared unit-cube distance from the default parameters."""
P_SITES = 7
"""Sinus sites along the crista terminalis in the P stage's initial design (part of its budget)."""
P_DESIGN = 32
"""Sobol points over the atrial box in the P stage's initial design (part of its budget)."""
SILENT_MS = 1.0e4
"""Activation time given to the ventricles while the P stage compares the P window (never reached)."""
P_SHIFT_MS = 60.0
"""How far the P stage moves the P wave per candidate through the AV delay (ms either way)."""
FEATURE_WEIGHT = 0.05
FEATURE_SCALE_MS = 20.0
"""The interval terms (:func:`_interval_terms`): ``FEATURE_WEIGHT * (error / FEATURE_SCALE_MS)^2``
for each of the P onset (the PR interval) and P duration in the P stage and the T peak time and T
end (the QT) in the T stage (20 ms, issue 24's PR and QT tolerance, costs 0.05, about what 0.05 of
median correlation does). Shape alone places a P wave whose width is not the patient's by its
centre, so its onset (the PR) misses by half the width error."""


def _interval_terms(*errors_ms: np.ndarray) -> np.ndarray:
    """Sum of the interval terms (``FEATURE_WEIGHT``) of interval errors in ms (broadcast together)."""
    return FEATURE_WEIGHT * sum((np.asarray(e) / FEATURE_SCALE_MS) ** 2 for e in errors_ms)


def _scaled_rms(seg: np.ndarray, beat_gain: np.ndarray) -> np.ndarray:
    """RMS over the leads (b, n) of simulated segments ``seg`` (b, L, n) at the beat's scale: the
    curve the delineator bounds waves on."""
    return np.sqrt(np.mean((seg * beat_gain[None, :, None]) ** 2, axis=1))


# ------------------------------------------------------------------------------ forward paths


class CalibrationModel:
    """The twin's forward model split for calibration: atria and ventricles solved separately, an
    optional coarse ventricular model, and lead-field ECG segments in the target's leads.

    Build once per twin (the fine model ~2 s, the coarse one ~10 s) and reuse it for several
    calibrations (e.g. the benchmark's seeds)."""

    def __init__(self, twin, coarse_edge_mm: float | None = 2.0, shape=None):
        from cardiotwin.twin import ForwardModel

        if twin.lead_fields is None:
            raise AnatomyError("the twin has no lead fields: run cardiotwin.ensure_lead_fields(twin, folder) first")
        self.twin = twin
        self.forward = ForwardModel(twin, shape)
        self.model = self.forward.model
        self.shape = self.forward.shape
        self.vent_nodes = self.model.ventricles.nodes
        self.coarse_edge_mm = coarse_edge_mm
        self._coarse = None
        self._rotation = None
        if self.model.atria is not None:
            self._atrial_only = np.setdiff1d(self.model.atria.nodes, self.vent_nodes)
        else:
            self._atrial_only = np.zeros(0, dtype=np.int64)

    @property
    def coarse(self):
        if self._coarse is None:
            from cardiotwin.calibration.coarse import CoarseVentricles

            self._coarse = CoarseVentricles(self.twin.heart, self.coarse_edge_mm or 2.0)
        return self._coarse

    @property
    def rotation(self):
        """The heart's lead-field weights under rotation in its torso (:mod:`.pose`), built on first use."""
        if self._rotation is None:
            from cardiotwin.calibration.pose import HeartRotation

            self._rotation = HeartRotation.from_twin(self.twin)
        return self._rotation

    @property
    def n_points(self) -> int:
        return self.twin.heart.n_points

    def atrial(self, params: list[EpParameters]) -> tuple[np.ndarray | None, np.ndarray]:
        """Atrial activation (b, atrial nodes) or None, and the ventricular onset (b,) in ms."""
        m = self.model
        av = np.array([p.av_delay for p in params])
        if m.atria is None:
            return None, np.zeros(len(params))
        t = m.atrial_activation_batch(params)
        return t, t[:, m.atria.local(np.array([m.av_node]))[0]] + av

    def ventricular(self, params: list[EpParameters], fidelity: str = "fine") -> np.ndarray:
        """Ventricular activation (b, ventricular nodes) in ms from the earliest root (0)."""
        if fidelity == "coarse":  # the fine model's root nodes, moved onto the coarse mesh
            pts = self.twin.heart.points
            return self.coarse.activation_batch(params, [pts[self.model.root_nodes(p)[0]] for p in params])
        t = self.model.ventricular_batch(params)
        return t - t.min(axis=1, keepdims=True)

    def assemble(self, atrial: np.ndarray | None, v_start: np.ndarray, vent: np.ndarray) -> np.ndarray:
        """Full activation times (b, n) relative to the ventricular onset (0 = first ventricular
        activation; atrial times negative): ``SinusRhythmModel.activation_batch`` shifted by the onset."""
        return self.model.assemble(None if atrial is None else atrial - v_start[:, None], vent)

    def segments(self, at: np.ndarray, params: EpParameters | list[EpParameters], leads: tuple[str, ...], fs: float,
                 span_ms: tuple[float, float], w12: np.ndarray | None = None,
                 rt: np.ndarray | None = None) -> np.ndarray:
        """ECG segments (b, L, n) over ``span_ms`` relative to the ventricular onset of activation
        times ``at`` (n,) or (b, n) and θ ``params`` (one, or one per beat: repolarisation times and
        the action potential's phase-3 fall time); ``w12``: 12-lead weights of a rotated heart
        (:mod:`.pose`) instead of the twin's; ``rt``: repolarisation times (b, n) already computed
        (e.g. by :meth:`Repolarisation.for_activation`)."""
        at = np.atleast_2d(at)
        ps = [params] * len(at) if isinstance(params, EpParameters) else list(params)
        rep = np.array([p.ap_repolarisation_ms for p in ps])
        if rt is None:  # phase 3 starts |s0| before RT: later times cannot reach the window
            s0 = min(replace(self.shape, repolarisation_ms=float(v)).repolarisation_start_ms for v in np.unique(rep))
            rt = self.repolarisation.times(at, ps, before_ms=span_ms[1] - s0)
        n = int(round((span_ms[1] - span_ms[0]) * fs / 1000.0))
        out = None
        for value in np.unique(rep):  # one convolution kernel per AP shape
            k = np.flatnonzero(rep == value)
            shape = replace(self.shape, repolarisation_ms=float(value))
            seg = self.twin.lead_fields.ecg_batch(at[k], rt[k], shape, fs, n * 1000.0 / fs, span_ms[0], leads, w12)
            out = np.empty((len(at), *seg.shape[1:])) if out is None else out
            out[k] = seg
        return out

    @property
    def repolarisation(self) -> Repolarisation:
        return self.forward.repolarisation

    def root_positions(self, params: EpParameters) -> np.ndarray:
        return self.twin.heart.points[self.model.root_nodes(params)[0]]


# ------------------------------------------------------------------------------ the optimiser


@dataclass
class OptimiserRun:
    """One CMA-ES run: best point (unit cube), its loss, evaluations, stop reason, history rows."""

    x: np.ndarray
    loss: float
    n_evals: int
    stop: dict
    history: list[dict]


def cmaes(loss: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, sigma0: float, budget: int, seed: int,
          *, popsize: int | None = None, tolfun: float = 1e-4, tolx: float = 1e-3, label: str = "",
          clock: float | None = None) -> OptimiserRun:
    """Minimise ``loss`` (batch (b, d) -> (b,)) over [0, 1]^d by CMA-ES from ``x0`` with step
    ``sigma0``, at most ``budget`` evaluations. Deterministic given ``seed``."""
    import cma

    if budget < 2:
        raise InvalidParameterError(f"the evaluation budget must be at least 2, got {budget}")
    d = len(x0)
    opts = {"bounds": [0.0, 1.0], "seed": int(seed) + 1, "maxfevals": int(budget), "tolfun": tolfun,
            "tolx": tolx, "verbose": -9, "CMA_stds": None}
    if popsize:
        opts["popsize"] = int(popsize)
    if d == 1:
        raise InvalidParameterError("CMA-ES needs at least 2 dimensions")
    es = cma.CMAEvolutionStrategy(np.clip(np.asarray(x0, dtype=float), 0.02, 0.98), float(sigma0), opts)
    clock = time.perf_counter() if clock is None else clock
    best_x, best_f, n = np.asarray(x0, dtype=float), np.inf, 0
    history = []
    while not es.stop():
        xs = np.asarray(es.ask())
        if n + len(xs) > budget and n > 0:  # the next generation would overrun the budget
            break
        f = np.asarray(loss(xs), dtype=float)
        n += len(xs)
        f = np.where(np.isfinite(f), f, 1e6)
        es.tell(list(xs), list(f))
        k = int(np.argmin(f))
        if f[k] < best_f:
            best_f, best_x = float(f[k]), xs[k].copy()
        history.append({"stage": label, "generation": es.countiter, "evaluations": n, "best_loss": best_f,
                        "generation_median_loss": float(np.median(f)), "sigma": float(es.sigma),
                        "time_s": time.perf_counter() - clock})
    stop = {k: (v if isinstance(v, (int, float, str)) else str(v)) for k, v in dict(es.stop()).items()}
    if n >= budget:
        stop.setdefault("maxfevals", budget)
    return OptimiserRun(best_x, best_f, n, stop, history)


# ------------------------------------------------------------------------------ the result


@dataclass
class CalibrationResult:
    """Calibrated parameters, the fitted ECG on the measured beat's time axis, fits per window
    (per-lead correlations), optimisation history, timings and counts of forward simulations."""

    params: EpParameters
    measured: Ecg
    fitted: Ecg
    fits: dict[str, WindowFit]
    lag_ms: float
    history: list[dict]
    timings: dict[str, float]
    n_simulations: dict[str, int]
    stages: tuple[str, ...]
    method: str
    seed: int
    notes: list[str] = field(default_factory=list)
    excluded_leads: dict[str, str] = field(default_factory=dict)
    activation: np.ndarray | None = None  # fine activation times (n,) ms, 0 = ventricular onset
    rotation_deg: np.ndarray | None = None  # fitted heart rotation vector in the torso (deg), if any
    features: dict = field(default_factory=dict)  # intervals and amplitudes, fitted vs measured (.beat_features)

    @property
    def gain(self) -> dict[str, float]:
        """The beat's one scale: each compared lead's gain (mV of the patient per mV of the twin),
        set on the QRS and shared by the P and T waves (one value for all leads with ``gain="global"``)."""
        return {l: float(g) for l, g in zip(self.fits["QRS"].leads, self.fits["QRS"].gain[0])}

    @property
    def global_gain(self) -> float:
        """Least-squares single gain of the native (gain 1) beat onto the measured one over the whole
        beat and all compared leads: how far the twin's own amplitudes are from the patient's."""
        sim = self.fitted.select(self.measured.leads).signals
        return float(max((sim * self.measured.signals).sum(), 0.0) / max((sim * sim).sum(), 1e-300))

    def scaled(self) -> Ecg:
        """The fitted beat at the beat's scale (what the overlay and ``fitted_ecg.csv`` show); a lead
        left out of the fit takes the median gain of the others."""
        g = self.gain
        other = float(np.median(list(g.values())))
        rows = [self.fitted.lead(l) * g.get(l, other) for l in self.fitted.leads]
        return Ecg(np.stack(rows), self.fitted.fs, self.fitted.leads)

    def correlations(self, window: str = "QRS") -> dict[str, float]:
        return self.fits[window].per_lead(0)

    def median_correlation(self, window: str = "QRS") -> float:
        return float(np.median(self.fits[window].correlation[0]))

    def summary(self) -> dict:
        return {
            "method": self.method, "seed": self.seed, "stages": list(self.stages),
            "parameters": self.params.as_dict(),
            "per_lead_correlation": {w: f.per_lead(0) for w, f in self.fits.items()},
            "median_correlation": {w: self.median_correlation(w) for w in self.fits},
            "loss": {w: float(f.loss[0]) for w, f in self.fits.items()},
            "nrmse": {w: float(f.nrmse[0]) for w, f in self.fits.items()},
            "gain": self.gain, "global_gain": self.global_gain, "features": self.features,
            "lag_ms": self.lag_ms,
            "heart_rotation_deg": None if self.rotation_deg is None else self.rotation_deg.tolist(),
            "timings_s": self.timings, "n_simulations": self.n_simulations,
            "notes": self.notes, "excluded_leads": self.excluded_leads, "leads": list(self.measured.leads),
        }


# ------------------------------------------------------------------------------ stages


class _QrsProblem:
    """Loss of QRS-space points: coarse or fine ventricular solves, ECG through the fine lead fields."""

    def __init__(self, cm: CalibrationModel, target: Target, space: SearchSpace, base: EpParameters,
                 mismatch: Mismatch, counts: dict[str, int]):
        self.cm, self.target, self.space, self.base, self.mis = cm, target, space, base, mismatch
        self.counts = counts
        self.atrial, self.v_start = cm.atrial([base])
        self.correction: np.ndarray | None = None  # space-mapping field (fine - coarse), ventricular nodes
        self.rotation_deg: np.ndarray | None = None  # heart rotation in the torso (:mod:`.pose`), when fitted
        self.w12: np.ndarray | None = None  # its 12-lead weights

    def times(self, xs: np.ndarray, fidelity: str) -> np.ndarray:
        params = [self.space.to_params(x, self.base) for x in xs]
        vent = self.cm.ventricular(params, fidelity)
        self.counts[fidelity] += len(params)
        return self.corrected(vent) if fidelity == "coarse" else vent

    def corrected(self, vent: np.ndarray) -> np.ndarray:
        """Coarse activation on the fine nodes (b, n) with the space-mapping correction, if any."""
        if self.correction is None:
            return vent
        vent = vent + self.correction[None]
        return vent - vent.min(axis=1, keepdims=True)

    def beats(self, vent: np.ndarray) -> np.ndarray:
        """Simulated QRS segments (b, L, n) of ventricular activations (b, fine ventricular nodes)."""
        b = len(vent)
        at = self.cm.assemble(None if self.atrial is None else np.repeat(self.atrial, b, 0),
                              np.repeat(self.v_start, b), vent)
        self.counts["ecg"] += b
        return self.cm.segments(at, self.base, self.target.leads, self.target.fs, self.mis.span_ms, self.w12)

    def segments(self, xs: np.ndarray, fidelity: str) -> np.ndarray:
        """Simulated QRS segments (b, L, n) of unit-cube points."""
        return self.beats(self.times(xs, fidelity))

    def fit(self, vent: np.ndarray) -> WindowFit:
        return self.mis(self.beats(vent))

    def loss(self, fidelity: str) -> Callable[[np.ndarray], np.ndarray]:
        return lambda xs: self.fit(self.times(xs, fidelity)).loss


def _pose_search(prob: _QrsProblem, vent: np.ndarray, budget: int, sigma0: float, seed: int, history: list,
                 clock: float, explore: bool = False) -> None:
    """Fit the heart's rotation in the torso (:mod:`.pose`) to the QRS with the ventricular
    activation ``vent`` held, by CMA-ES over the rotation vector (with ``explore``, from the best
    point of a coarse design around the current rotation); ``prob`` keeps the better of its current
    rotation and the one found (so a pass never makes the fit worse)."""
    from cardiotwin.calibration.pose import MAX_ROTATION_DEG

    rot = prob.cm.rotation
    current = np.zeros(3) if prob.rotation_deg is None else prob.rotation_deg
    at = prob.cm.assemble(prob.atrial, prob.v_start, vent[None])

    def loss(xs):
        out = []
        for x in np.atleast_2d(xs):
            w12 = rot.weights12((2.0 * x - 1.0) * MAX_ROTATION_DEG)
            out.append(prob.mis(prob.cm.segments(at, prob.base, prob.target.leads, prob.target.fs,
                                                 prob.mis.span_ms, w12)).loss[0])
        prob.counts["ecg"] += len(out)
        return np.array(out)

    x0 = current / (2.0 * MAX_ROTATION_DEG) + 0.5
    f0 = float(loss(x0[None])[0])
    start, n_design = x0, 0
    if explore:  # a 3 x 3 x 3 design of +/- 20 deg about the current rotation, then CMA-ES from its best
        steps = np.array([-20.0, 0.0, 20.0]) / (2.0 * MAX_ROTATION_DEG)
        design = np.clip(x0 + np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), -1).reshape(-1, 3), 0.0, 1.0)
        f = loss(design)
        start, n_design = design[int(np.argmin(f))], len(design)
    run = cmaes(loss, start, sigma0, max(budget - n_design, 16), seed + 17, label="QRS heart rotation", clock=clock)
    history += run.history
    if run.loss < f0:
        prob.rotation_deg = (2.0 * run.x - 1.0) * MAX_ROTATION_DEG
        prob.w12 = rot.weights12(prob.rotation_deg)
    history.append({"stage": "QRS heart rotation", "loss_before": f0, "loss_after": min(f0, run.loss),
                    "rotation_deg": (current if prob.rotation_deg is None else prob.rotation_deg).tolist(),
                    "time_s": time.perf_counter() - clock})


def _multistart(loss, x_default, budget, seed, starts, history, clock) -> OptimiserRun:
    """Global design then local searches (the sampling-then-optimisation scheme of Gillette et al.
    2021): a scrambled Sobol design of about a quarter of ``budget`` points (plus the default
    parameters) is evaluated in one batch; CMA-ES with a small step starts from each of its
    ``starts`` best points that lie apart (unit-cube distance > 0.3), sharing the rest of the budget
    equally; the best run is returned (its evaluation count covers all of them)."""
    from scipy.stats import qmc

    d = len(x_default)
    n = 2 ** int(np.clip(np.floor(np.log2(max(budget // 4, 16))), 4, 9))
    design = np.vstack([x_default[None], qmc.Sobol(d, scramble=True, seed=seed).random(n)])
    f = np.asarray(loss(design), dtype=float)
    f = np.where(np.isfinite(f), f, np.inf)
    chosen: list[int] = []
    for k in np.argsort(f):
        if all(np.linalg.norm(design[k] - design[j]) > 0.3 for j in chosen):
            chosen.append(int(k))
        if len(chosen) == starts:
            break
    history.append({"stage": "QRS design", "evaluations": len(design), "best_loss": float(f[chosen[0]]),
                    "start_losses": [float(f[k]) for k in chosen], "time_s": time.perf_counter() - clock})
    each = max((budget - len(design)) // len(chosen), 16)
    runs = []
    for i, k in enumerate(chosen):
        run = cmaes(loss, design[k], 0.12, each, seed + 31 * (i + 1), label=f"QRS start {i + 1}", clock=clock)
        history += run.history
        runs.append(run)
    best = min(runs, key=lambda r: r.loss)
    return OptimiserRun(best.x, best.loss, len(design) + sum(r.n_evals for r in runs), best.stop, [])


def _qrs_stage(cm, target, base, mismatch, budget, seed, counts, history, *, x0=None, sigma0=0.3,
               fine_budget=0, mapping_rounds=2, starts=1, pose_budget=0, clock=None, root_sites=8, fine_root_sites=0):
    clock = time.perf_counter() if clock is None else clock
    space = SearchSpace.for_stage("QRS", base)
    base = space.base
    prob = _QrsProblem(cm, target, space, base, mismatch, counts)
    x_start = space.to_unit(base) if x0 is None else np.asarray(x0, dtype=float)
    coarse = cm.coarse_edge_mm is not None
    if not coarse:
        run = cmaes(prob.loss("fine"), x_start, sigma0, budget, seed, label="QRS fine", clock=clock)
        history += run.history
        best_x, best_f = run.x, run.loss
        if pose_budget:
            fine = prob.times(best_x[None], "fine")
            _pose_search(prob, fine[0], pose_budget, 0.1, seed, history, clock, True)
            best_f = float(prob.fit(fine).loss[0])
    else:
        first = budget if mapping_rounds == 0 else int(round(budget * 0.6))
        if x0 is None and starts > 1:  # a global design first, then CMA-ES from its best distinct points
            run = _multistart(prob.loss("coarse"), x_start, first, seed, starts, history, clock)
        else:
            run = cmaes(prob.loss("coarse"), x_start, sigma0, first, seed, label="QRS coarse", clock=clock)
            history += run.history
        rest = budget - run.n_evals
        candidates = [run.x]
        for r in range(mapping_rounds):
            # output space mapping: correction field at the current best point
            fine = prob.times(run.x[None], "fine")[0]
            if pose_budget:  # the heart's rotation for the current activation, before the roots adapt to it
                _pose_search(prob, fine, pose_budget, 0.1, seed + r, history, clock, explore=r == 0)
            coarse_t = prob.cm.ventricular([space.to_params(run.x, base)], "coarse")[0]
            counts["coarse"] += 1
            prob.correction = fine - coarse_t
            x_r = run.x
            if root_sites and r == 0:  # roots stuck in the wrong part of their boxes, moved in one search
                x_r = root_site_search(prob, run.x, root_sites, history=history, clock=clock)[0]
            n_r = max(rest // (mapping_rounds - r), 24)
            run = cmaes(prob.loss("coarse"), x_r, 0.08, n_r, seed + 101 * (r + 1), label=f"QRS mapped {r + 1}",
                        clock=clock)
            rest -= run.n_evals
            history += run.history
            candidates.append(run.x)
        # the candidates on the fine model: the best fine loss wins
        fits = prob.fit(prob.times(np.asarray(candidates), "fine"))
        k = int(np.argmin(fits.loss))
        best_x, best_f = candidates[k], float(fits.loss[k])
        history.append({"stage": "QRS fine check", "evaluations": counts["fine"], "best_loss": best_f,
                        "candidate_losses": fits.loss.tolist(), "time_s": time.perf_counter() - clock})
    if fine_root_sites:  # the root sites once more on the 1 mm model, which has no coarse bias
        best_x, best_f, _ = root_site_search(prob, best_x, fine_root_sites, history=history, clock=clock, fidelity="fine")
    if fine_budget:  # Levenberg-Marquardt on the 1 mm model: the coupled velocities, sites and delays together
        best_x, best_f, _ = levenberg_marquardt(prob, best_x, fine_budget, history=history, clock=clock)
    params = space.to_params(best_x, base)
    vent = cm.ventricular([params], "fine")
    counts["fine"] += 1
    if pose_budget:  # a last, narrow rotation pass for the final activation
        _pose_search(prob, vent[0], max(pose_budget // 2, 16), 0.08, seed + 3, history, clock)
    return params, vent[0], prob


class _TProblem:
    """The T stage's segments of unit-cube points for :func:`~.refine.levenberg_marquardt`, and
    their interval terms (:meth:`penalty`)."""

    def __init__(self, space, base, mis, at, fixed, cm, target, w12, counts, lag_ms, beat_gain):
        self.space, self.base, self.mis, self.at, self.fixed = space, base, mis, at, fixed
        self.cm, self.target, self.w12, self.counts = cm, target, w12, counts
        self.lag_ms, self.beat_gain = lag_ms, np.asarray(beat_gain, dtype=float)

    def penalty(self, seg: np.ndarray) -> np.ndarray:
        """The T peak time and QT terms (b,) of simulated T segments ``seg`` (b, L, n) at the QRS lag:
        the T wave bounded on the RMS of the simulated leads at the beat's scale as the delineator
        bounds the patient's (:func:`~cardiotwin.ecg.signal.t_wave_bounds`, from 60 ms after the
        QRS offset), against the patient's delineated T peak and T end (``FEATURE_WEIGHT`` each)."""
        fid, fs = self.target.fiducials, self.target.fs
        lo = max(self.mis.segment_sample(fid.qrs_off_ms + 60.0, self.lag_ms), 0)
        rms = _scaled_rms(seg, self.beat_gain)
        bounds = np.array([t_wave_bounds(r, fs, lo, len(r) - 1) for r in rms], dtype=float)  # (b, 2)
        peak, end = (self.mis.measured_ms(bounds[:, k], self.lag_ms) for k in (0, 1))
        return _interval_terms(peak - fid.t_peak_ms, end - fid.t_end_ms)

    def segments(self, xs: np.ndarray, fidelity: str = "fine") -> np.ndarray:
        ps = [self.space.to_params(x, self.base) for x in np.atleast_2d(xs)]
        self.counts["ecg"] += len(ps)
        return self.cm.segments(np.repeat(self.at, len(ps), 0), ps, self.target.leads, self.target.fs,
                                self.mis.span_ms, self.w12, self.fixed.times(ps))


def _t_stage(cm, target, params, vent, lag_ms, budget, seed, counts, history, gain, beat_gain, clock, w12=None):
    """The repolarisation parameters for the held activation: for each electrotonic smoothing length of
    ``T_SMOOTHING_MM`` (the smoothed fields are solved once per length), a scan of the mean APD (a
    long QT lies far from the default), CMA-ES from its best point over all T parameters with a weak
    Gaussian prior toward the defaults (``T_PRIOR``) on half the rest of the budget, and
    Levenberg-Marquardt from there on the other half (:mod:`.refine`: the T parameters are coupled,
    the mean APD traded against the coupling and the gradients); the best of the searches wins."""
    space = SearchSpace.for_stage("T", params)
    mis = Mismatch(target, "T", gain=gain, max_lag_ms=max(abs(lag_ms), 0.0) + 1.0, fixed_gain=beat_gain)
    atrial, v_start = cm.atrial([params])
    at = cm.assemble(atrial, v_start, vent[None])
    fixed = cm.repolarisation.for_activation(at[0])  # the activation is held: RT is linear in θ's APD terms
    prior = space.to_unit(EpParameters())
    per = max(budget // len(T_SMOOTHING_MM), T_SCAN + 8)
    best: tuple[float, EpParameters] | None = None
    for j, length in enumerate(T_SMOOTHING_MM):
        base = params.with_values(rt_smoothing_mm=length)
        prob = _TProblem(space, base, mis, at, fixed, cm, target, w12, counts, lag_ms, beat_gain)

        def loss(xs, prob=prob):
            xs = np.atleast_2d(xs)
            seg = prob.segments(xs)
            return mis(seg, lag_ms=lag_ms).loss + prob.penalty(seg) + T_PRIOR * ((xs - prior) ** 2).sum(axis=1)

        x0 = space.to_unit(base)
        k = space.names.index("apd_mean")
        scan = np.repeat(x0[None], T_SCAN, 0)
        scan[:, k] = np.linspace(0.0, 1.0, T_SCAN)
        x0 = scan[int(np.argmin(loss(scan)))]
        run = cmaes(loss, x0, 0.3, (per - T_SCAN) // 2, seed + 11 + j, label=f"T smoothing {length:g} mm",
                    clock=clock)
        history += run.history
        x, rest = run.x, per - T_SCAN - run.n_evals
        if rest >= min_budget(space.ndim):
            x = levenberg_marquardt(prob, x, rest, step=0.02, history=history, clock=clock,
                                    label=f"T smoothing {length:g} mm")[0]
        f = float(loss(x[None])[0])
        if best is None or f < best[0]:
            best = (f, space.to_params(x, base))
    return best[1]


class _PProblem:
    """The P window's mismatch of atrial parameter sets, each with its best AV delay, plus the PR
    interval and P duration terms (``FEATURE_WEIGHT``). The ventricles are silent over the P window,
    so the AV delay only shifts the atrial ECG in time: one atrial solve per set, and the delay is
    the lag the mismatch finds within ``P_SHIFT_MS`` (cut to the AV-delay range), read back as
    ``av_delay`` at the QRS lag.

    A candidate's P wave is bounded on its own simulated leads, at the beat's scale, as the
    delineator bounds the patient's (:func:`~cardiotwin.ecg.signal.wave_bounds` on the RMS over the
    leads), and its onset, moved by the lag, and its duration are compared with the patient's
    delineated P onset and duration. The QRS onsets are aligned, so the onset error is the PR error.
    (Intervals read off the activation instead, the first atrial activation and the total atrial
    activation time, do not track the delineated ones: on ptb10_9 a fit of 195 ms total atrial
    activation time had a delineated P of 101 ms, the last-activated tissue adding no visible wave.)"""

    def __init__(self, cm, target, base, vent, lag_ms, gain, beat_gain, w12, counts):
        self.cm, self.target, self.base, self.lag_ms, self.w12, self.counts = cm, target, base, lag_ms, w12, counts
        self.space = SearchSpace.for_stage("P", base)
        self.silent = np.full((1, vent.size), SILENT_MS)  # the ventricles: not active in the P window
        self.mis = Mismatch(target, "P", gain=gain, max_lag_ms=min(abs(lag_ms) + P_SHIFT_MS, 100.0),
                            fixed_gain=beat_gain)
        self.beat_gain = np.asarray(beat_gain, dtype=float)
        fid = target.fiducials
        self.p_on_ms, self.p_ms = float(fid.p_on_ms), float(fid.p_off_ms - fid.p_on_ms)

    def _cost(self, seg: np.ndarray, av: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """The interval terms (b, K) of simulated P segments ``seg`` (b, L, n) at lags (K,) ms."""
        fs = self.target.fs
        bounds = np.array([wave_bounds(r, fs) for r in _scaled_rms(seg, self.beat_gain)], dtype=float)  # (b, 3)
        dur = (bounds[:, 2] - bounds[:, 0]) * 1000.0 / fs
        lo, hi = SPECS["av_delay"].low, SPECS["av_delay"].high

        def cost(lags_ms: np.ndarray) -> np.ndarray:
            # the AV delay cut to its range holds the P wave where the cut leaves it
            shift = np.clip(lags_ms[None] - self.lag_ms, -P_SHIFT_MS, P_SHIFT_MS)
            lag = self.lag_ms + np.clip(av[:, None] + shift, lo, hi) - av[:, None]
            on = self.mis.measured_ms(bounds[:, :1], lag)
            return _interval_terms(on - self.p_on_ms, dur[:, None] - self.p_ms)

        return cost

    def segments(self, ps: list[EpParameters]) -> np.ndarray:
        """The P window's simulated segments (b, L, n) of parameter sets ``ps`` (atria only)."""
        atrial, v_start = self.cm.atrial(ps)
        self.counts["atrial"] += len(ps)
        self.counts["ecg"] += len(ps)
        at = self.cm.assemble(atrial, v_start, np.repeat(self.silent, len(ps), 0))
        return self.cm.segments(at, ps, self.target.leads, self.target.fs, self.mis.span_ms, self.w12)

    def fit(self, ps: list[EpParameters]) -> tuple[np.ndarray, np.ndarray]:
        """Loss (b,) and the fitted ``av_delay`` (b,) of parameter sets ``ps``."""
        lo, hi = SPECS["av_delay"].low, SPECS["av_delay"].high
        seg = self.segments(ps)
        av = np.array([p.av_delay for p in ps])
        fit = self.mis(seg, lag_cost=self._cost(seg, av))
        shift = np.clip(fit.lag_ms - self.lag_ms, -P_SHIFT_MS, P_SHIFT_MS)  # later onset: a longer AV delay
        new = np.clip(av + shift, lo, hi)
        loss = fit.loss.copy()
        cut = np.flatnonzero(np.abs(av + shift - new) > 1e-9)  # cut to the AV-delay range: fixed lag there
        if cut.size:
            loss[cut] = self.mis(seg[cut], lag_ms=self.lag_ms + new[cut] - av[cut],
                                 lag_cost=self._cost(seg[cut], av[cut])).loss
        return loss, new

    def params(self, xs: np.ndarray) -> list[EpParameters]:
        return [self.space.to_params(x, self.base) for x in np.atleast_2d(xs)]


def _p_stage(cm, target, params, vent, lag_ms, budget, seed, counts, history, gain, beat_gain, clock, w12=None):
    """The atria for the held ventricles, every candidate with its best AV delay (:class:`_PProblem`):
    a design of the sinus site along the crista terminalis (``P_SITES`` sites at the current
    velocities) and a scrambled Sobol design of up to ``P_DESIGN`` points over the whole atrial box (the
    fits of real records lie far from the default, e.g. near-isotropic slow conduction or a slowed
    interatrial route), then CMA-ES from the best point on the rest of the budget."""
    from scipy.stats import qmc

    prob = _PProblem(cm, target, params, vent, lag_ms, gain, beat_gain, w12, counts)
    space = prob.space
    k_site = space.names.index("sinus_site")
    x0 = space.to_unit(params)
    sites = np.repeat(x0[None], P_SITES, 0)
    sites[:, k_site] = np.linspace(0.0, 1.0, P_SITES)
    n_sobol = int(np.clip(budget - P_SITES - 16, 0, P_DESIGN))  # a small budget keeps 16 for CMA-ES
    design = np.vstack([sites, qmc.Sobol(space.ndim, scramble=True, seed=seed + 13).random(n_sobol)])
    loss, av = prob.fit(prob.params(design))
    k = int(np.argmin(loss))
    history.append({"stage": "P design", "evaluations": len(design), "best_loss": float(loss[k]),
                    "time_s": time.perf_counter() - clock})
    prob.base = params.with_values(av_delay=float(av[k]))
    run = cmaes(lambda xs: prob.fit(prob.params(xs))[0], design[k], 0.2, max(budget - len(design), 8), seed + 13,
                label="P", clock=clock)
    history += run.history
    x = run.x if run.loss < loss[k] else design[k]
    best = prob.params(x)
    return best[0].with_values(av_delay=float(prob.fit(best)[1][0]))


def _fitted_ecg(cm: CalibrationModel, target: Target, params: EpParameters, vent: np.ndarray, lag_ms: float,
                w12: np.ndarray | None = None) -> tuple[Ecg, np.ndarray]:
    """The simulated 12-lead beat on the measured beat's time axis (same fs and length)."""
    atrial, v_start = cm.atrial([params])
    at = cm.assemble(atrial, v_start, vent[None])
    n = target.signals.shape[1]
    t0 = lag_ms - target.qrs_on_ms  # measured time t <-> simulated t - qrs_on + lag (onset = 0)
    seg = cm.segments(at, params, TWELVE_LEADS, target.fs, (t0, t0 + n * 1000.0 / target.fs), w12)
    return Ecg(seg[0], target.fs, TWELVE_LEADS), at[0]


def _final_fits(target: Target, fitted: Ecg, windows, gain: str, beat_gain: np.ndarray,
                lag_ms: float) -> dict[str, WindowFit]:
    """Each window's fit, and the whole beat's, at the beat's one scale ``beat_gain``."""
    out = {}
    sim = fitted.select(target.leads).signals
    fs = target.fs
    for w in (*windows, BEAT):
        mis = Mismatch(target, w, gain=gain, max_lag_ms=0.0, fixed_gain=beat_gain)
        start = int(round((mis.offset + target.qrs_on_ms * fs / 1000.0)))
        seg = sim[:, start:start + mis.n_samples]
        if seg.shape[1] < mis.n_samples:
            seg = np.pad(seg, ((0, 0), (0, mis.n_samples - seg.shape[1])), mode="edge")
        fit = mis(seg)
        out[w] = WindowFit(w, fit.leads, fit.loss, fit.correlation, fit.nrmse, fit.gain, np.array([lag_ms]))
    return out


# ------------------------------------------------------------------------------ the API


QUICK = {"pose": False, "budget": DEFAULT_BUDGET // 4, "mapping_rounds": 1, "t_budget": 300, "p_budget": 80}
"""The cheaper route (``cardiotwin calibrate --quick``): no heart rotation, a quarter of the QRS
budget, one space-mapping round, shorter T and P searches."""

REFINEMENT = {"fine_root_sites": 6, "fine_budget": 150}
"""The 1 mm finish of the QRS stage the recovery benchmark runs: root-site search with 6 x 6
candidate grids of 1 mm single-root fields, then 150 solves of Levenberg-Marquardt (:mod:`.refine`)."""


def calibrate(
    twin,
    ecg_or_beat: Ecg | Beat | Target,
    config: CalibrationConfig | None = None,
    *,
    base: EpParameters | None = None,
    model: CalibrationModel | None = None,
    emulator=None,
    **settings,
) -> CalibrationResult:
    """Calibrate ``twin`` to a patient's ECG (a record, a preprocessed :class:`Beat`, or a
    :class:`Target`); see the module docstring for the stages and the optimiser. The settings are
    ``config`` (a :class:`~cardiotwin.calibration.config.CalibrationConfig`, default settings when
    None) with any of its fields overridden by keyword (``settings``):

    ``budget``: coarse (or, with ``coarse_edge_mm=None``, fine) CMA-ES evaluations of the QRS
    stage (default 1200; the ML route uses a quarter by default); the single-root fields of the
    root-site search come on top (about 4 x (``root_sites``^2 + 1) batched solves) and are counted
    in ``n_simulations``. ``starts``: local CMA-ES searches
    started from a global Sobol design (1: one search from the default parameters). ``fine_budget``: 1 mm solves of the
    optional Levenberg-Marquardt refinement after the coarse stage (:mod:`.refine`; 0: none,
    else at least ~20). ``t_budget``/``p_budget``: evaluations of the T and P
    stages (a P evaluation is one atrial solve, ~0.1 s at 1 mm). ``pose``: also fit the heart's rotation in the torso (:mod:`.pose`; for a twin whose
    anatomy or torso is not the patient's), ``pose_budget`` ECG evaluations per rotation pass
    (the rotation needs no eikonal solve). ``lead_in_ms``: how far the simulated onset may precede
    the delineated QRS onset, the compared window starting as early (:mod:`.objective`; a slow QRS
    start hides in the noise). ``root_sites``: grid points per axis of each root's box in the
    discrete root-site search of the first space-mapping round (:mod:`.root_sites`; 0: none).
    ``fine_root_sites``: the same search with 1 mm single-root fields before the refinement (~35
    fine solves per root at 6; 0: none).
    ``model``: a prebuilt :class:`CalibrationModel` of this twin (reuse across calls).
    ``emulator``: a trained :class:`~cardiotwin.calibration.emulator.Emulator` for
    ``method="ml"`` (trained on the fly, and cached nowhere, when None).

    Bad input raises: :class:`InvalidSignalError` for records under 2 s or without enough beats,
    :class:`MissingLeadsError` with fewer than ``min_leads`` usable standard leads (flat or absent
    leads are skipped, not fitted), :class:`InvalidParameterError` for unknown methods, stages or
    budgets. A record without P waves (atrial fibrillation) is calibrated on QRS and T only.
    """
    clock = time.perf_counter()
    cfg = (config or CalibrationConfig()).replace(**settings)
    budget = cfg.budget
    if cfg.fine_budget and "QRS" in cfg.stages:
        need = min_budget(SearchSpace.for_stage("QRS", base).ndim)
        if cfg.fine_budget < need:
            raise InvalidParameterError(f"fine_budget must be 0 (no 1 mm refinement) or at least {need} solves "
                                        f"(one Levenberg-Marquardt iteration), got {cfg.fine_budget}")
    target = ecg_or_beat if isinstance(ecg_or_beat, Target) else Target.from_ecg(ecg_or_beat, cfg.min_leads)
    if not isinstance(target, Target):
        raise InputError("ecg_or_beat must be an Ecg, a Beat or a Target")
    timings: dict[str, float] = {}
    counts = {"coarse": 0, "fine": 0, "atrial": 0, "ecg": 0}
    history: list[dict] = []
    notes: list[str] = []
    if model is None:
        t = time.perf_counter()
        model = CalibrationModel(twin, cfg.coarse_edge_mm)
        if cfg.coarse_edge_mm is not None:
            model.coarse  # build now, so its cost is timed on its own
        timings["model_build"] = time.perf_counter() - t
    params = base or EpParameters()
    run_stages = [s for s in ("QRS", "T", "P") if s in cfg.stages]
    if "P" in run_stages and not target.has_p:
        run_stages.remove("P")
        notes.append("no P wave in the record (" + (target.fiducials.note or "not found")
                     + "): atria not calibrated, atrial parameters kept")
    if target.irregular_rhythm:
        notes.append("irregular rhythm: the median beat averages beats of different RR; QT/T fit is approximate")

    mis = Mismatch(target, "QRS", gain=cfg.gain, max_lag_ms=cfg.max_lag_ms, lead_in_ms=cfg.lead_in_ms)
    x0, sigma0 = None, 0.3
    if cfg.method == "ml":
        t = time.perf_counter()
        if emulator is None:
            from cardiotwin.calibration.emulator import Emulator

            emulator = Emulator.train(model, target.fs, seed=cfg.seed)
            timings["emulator_training"] = time.perf_counter() - t
            counts["coarse"] += emulator.n_simulations
        t = time.perf_counter()
        x0 = emulator.predict_unit(target)
        sigma0 = 0.1
        timings["emulator_inference"] = time.perf_counter() - t
        budget = budget or DEFAULT_BUDGET // 4
    budget = budget or DEFAULT_BUDGET

    rotation, w12 = None, None
    if cfg.pose:
        t = time.perf_counter()
        model.rotation  # build now, so its cost is timed on its own
        timings["rotation_build"] = time.perf_counter() - t
    if "QRS" in run_stages:
        t = time.perf_counter()
        params, vent, prob = _qrs_stage(model, target, params, mis, budget, cfg.seed, counts, history, x0=x0,
                                        sigma0=sigma0, fine_budget=cfg.fine_budget, mapping_rounds=cfg.mapping_rounds,
                                        starts=cfg.starts, pose_budget=cfg.pose_budget if cfg.pose else 0, clock=clock,
                                        root_sites=cfg.root_sites, fine_root_sites=cfg.fine_root_sites)
        rotation, w12 = prob.rotation_deg, prob.w12
        timings["QRS"] = time.perf_counter() - t
    else:
        vent = model.ventricular([params], "fine")[0]
        counts["fine"] += 1
    # the QRS lag of the final parameters (kept for the other windows)
    final = _QrsProblem(model, target, SearchSpace.for_stage("QRS", params), params, mis, counts)
    final.w12 = w12
    qrs_fit = final.fit(vent[None])
    lag = float(qrs_fit.lag_ms[0])
    beat_gain = np.ascontiguousarray(qrs_fit.gain[0])  # the beat's one scale, set on the QRS
    if "T" in run_stages:
        t = time.perf_counter()
        params = _t_stage(model, target, params, vent, lag, cfg.t_budget, cfg.seed, counts, history, cfg.gain, beat_gain,
                          clock, w12)
        timings["T"] = time.perf_counter() - t
    if "P" in run_stages:
        t = time.perf_counter()
        params = _p_stage(model, target, params, vent, lag, cfg.p_budget, cfg.seed, counts, history, cfg.gain, beat_gain,
                          clock, w12)
        timings["P"] = time.perf_counter() - t
    fitted, at = _fitted_ecg(model, target, params, vent, lag, w12)
    windows = [w for w in ("QRS", "T", "P") if w != "P" or target.has_p]
    fits = _final_fits(target, fitted, windows, cfg.gain, beat_gain, lag)
    timings["total"] = time.perf_counter() - clock
    if rotation is not None:
        notes.append(f"heart rotated in the torso by the rotation vector {np.round(rotation, 1).tolist()} deg "
                     "(about the heart's centre, twin frame)")
    result = CalibrationResult(params, target.beat_ecg(), fitted, fits, lag, history, timings, counts,
                               tuple(run_stages), cfg.method, cfg.seed, notes, target.excluded_leads, at,
                               None if rotation is None else np.asarray(rotation, dtype=float))
    result.features = beat_feature_errors(result.measured, result.scaled(), float(target.fiducials.r_ms),
                                          target.fiducials)
    return result


# ------------------------------------------------------------------------------ evaluation


def _influence(params: EpParameters, at: np.ndarray, without: np.ndarray, influence_ms: float) -> dict[str, float]:
    """Each root's share of ventricular nodes whose activation changes by > ``influence_ms`` without it."""
    return {r.name: float(np.mean(np.abs(w - at) > influence_ms)) for r, w in zip(params.roots, without)}


def _without_each_root(params: EpParameters) -> list[EpParameters]:
    if len(params.roots) < 2:
        return []
    return [params.with_values(roots=tuple(r for j, r in enumerate(params.roots) if j != k))
            for k in range(len(params.roots))]


def _each_root_moved(truth: EpParameters, estimate: EpParameters) -> dict[str, EpParameters]:
    """The truth with one root at a time moved to the estimated site of the same name (true delay)."""
    est = {r.name: r for r in estimate.roots}
    out = {}
    for k, r in enumerate(truth.roots):
        if r.name in est:
            e = est[r.name]
            site = replace(r, apicobasal=e.apicobasal, rotational=e.rotational, ventricle=e.ventricle)
            out[r.name] = truth.with_values(roots=tuple(site if j == k else q for j, q in enumerate(truth.roots)))
    return out


def recovery_errors(model: CalibrationModel, truth: EpParameters, estimate: EpParameters,
                    truth_at: np.ndarray | None = None, estimate_at: np.ndarray | None = None,
                    influence_ms: float = 1.0, influence_fraction: float = 0.05) -> dict:
    """How well a calibration recovered known parameters on the fine model: ventricular activation
    MAE (ms, both maps referred to their own onset), root-node distances (mm), and whether each
    root is *effective*: removing it delays the activation by more than ``influence_ms`` at more
    than ``influence_fraction`` of the ventricular nodes. A root that is overrun by the others'
    fronts leaves no trace in the activation, hence none in the ECG, and its site cannot be
    recovered from it; the identifiability of root nodes from the 12-lead ECG is limited in just
    this way (Camps et al. 2021, Med Image Anal 71:102047), and distinct activation maps can even
    give the same ECG (Grandits et al. 2024, arXiv:2411.00165).

    Root distances are given two ways: ``root_distance_mm`` pairs roots by name (the search box
    each root lives in); ``root_distance_matched_mm`` gives, for each effective true root, the
    distance to the nearest *effective* estimated root of any name (a Purkinje-muscle junction has
    no name, and neighbouring boxes overlap, so a site may be recovered by another box's root).
    ``root_influence`` / ``estimate_root_influence`` give each root's share of nodes.

    ``root_site_effect_ms`` says how much each root's site error matters: the activation MAE (ms)
    between the truth and the truth with only that root moved to its estimated site (same name,
    true delay). A root whose misplacement by tens of mm changes the activation by about a
    millisecond (a fast endocardium spreads any nearby start alike) is practically not identifiable
    from the ECG; this is the sensitivity check of root-node identifiability."""
    known = truth_at is not None and estimate_at is not None
    drop_true, drop_est = _without_each_root(truth), _without_each_root(estimate)
    moved = _each_root_moved(truth, estimate)
    ats = model.ventricular(([] if known else [truth, estimate]) + drop_true + drop_est + list(moved.values()),
                            "fine")
    t_true = truth_at if known else ats[0]
    t_est = estimate_at if known else ats[1]
    rest = ats[0 if known else 2:]
    influence = _influence(truth, t_true, rest[:len(drop_true)], influence_ms)
    influence_est = _influence(estimate, t_est, rest[len(drop_true):len(drop_true) + len(drop_est)], influence_ms)
    effect = {n: float(np.mean(np.abs(a - t_true)))
              for n, a in zip(moved, rest[len(drop_true) + len(drop_est):])}
    p_t, p_e = model.root_positions(truth), model.root_positions(estimate)
    names_e = [r.name for r in estimate.roots]
    dist = {r.name: float(np.linalg.norm(p_t[i] - p_e[names_e.index(r.name)]))
            for i, r in enumerate(truth.roots) if r.name in names_e}
    eff = {r.name: influence.get(r.name, 1.0) > influence_fraction for r in truth.roots}
    eff_est = np.array([influence_est.get(n, 1.0) > influence_fraction for n in names_e])
    matched = {r.name: float(np.linalg.norm(p_e[eff_est] - p_t[i], axis=1).min())
               for i, r in enumerate(truth.roots) if eff[r.name] and eff_est.any()}
    eff_d = [d for n, d in dist.items() if eff[n]]
    return {"at_mae_ms": float(np.mean(np.abs(t_true - t_est))),
            "at_total_true_ms": float(t_true.max()), "at_total_est_ms": float(t_est.max()),
            "root_distance_mm": dist, "root_influence": influence, "root_effective": eff,
            "estimate_root_influence": influence_est, "root_distance_matched_mm": matched,
            "root_site_effect_ms": effect,
            "max_effective_root_distance_mm": float(max(eff_d)) if eff_d else float("nan"),
            "max_matched_root_distance_mm": float(max(matched.values())) if matched else float("nan")}





def repolarisation_errors(model: CalibrationModel, truth: EpParameters, estimate: EpParameters) -> dict:
    """How well a calibration recovered the repolarisation: ventricular RT map error (MAE, ms) and
    Spearman rank correlation between the true and estimated maps, each on its own activation (both
    referred to the ventricular onset), the figures Camps et al. 2025 report for repolarisation inferred
    from the 12-lead ECG."""
    from scipy.stats import spearmanr

    ats = model.ventricular([truth, estimate], "fine")
    atrial, v_start = model.atrial([truth, estimate])
    at = model.assemble(atrial, v_start, ats)
    rt = model.repolarisation.times(at, [truth, estimate])[:, model.vent_nodes]
    return {"rt_mae_ms": float(np.mean(np.abs(rt[0] - rt[1]))),
            "rt_spearman": float(spearmanr(rt[0], rt[1]).statistic),
            "rt_dispersion_true_ms": float(np.ptp(rt[0])), "rt_dispersion_est_ms": float(np.ptp(rt[1]))}


def atrial_errors(model: CalibrationModel, truth: EpParameters, estimate: EpParameters) -> dict:
    """How well a calibration recovered the atria: atrial activation map error (MAE, ms, from the
    sinus site, and referred to the ventricular onset, which adds the AV delay's error), the distance
    between the true and estimated pacemaker sites (mm), and the AV-delay error (ms)."""
    atrial, v_start = model.atrial([truth, estimate])
    if atrial is None:
        return {}
    m = model.model
    sites = [m.sinus_node_at(p.sinus_site) for p in (truth, estimate)]
    pts = model.twin.heart.points
    return {"atrial_at_mae_ms": float(np.mean(np.abs(atrial[0] - atrial[1]))),
            "atrial_at_to_onset_mae_ms": float(np.mean(np.abs((atrial[0] - v_start[0]) - (atrial[1] - v_start[1])))),
            "sinus_site_distance_mm": float(np.linalg.norm(pts[sites[0]] - pts[sites[1]])),
            "av_delay_error_ms": float(estimate.av_delay - truth.av_delay)}
