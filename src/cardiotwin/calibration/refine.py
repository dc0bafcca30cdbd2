"""Local refinement of the QRS parameters on the 1 mm model by Levenberg-Marquardt.

**Why.** The ECG mismatch resolves sub-millisecond activation differences: at the hidden truth of
the phantom recovery seeds, the 2 mm model's space-mapped activation is within 0.5-0.9 ms (MAE) of
the 1 mm one, yet its QRS loss is 0.10-0.19 where the 1 mm model's is 0.06. Only the 1 mm model
can finish the fit, and each of its solves costs about a second, so the last stage has to use few
solves well. The parameters are coupled (a slower myocardium traded against the root sites and
delays): block-wise searches (root sites with velocities held, then velocities with sites held)
stall in that valley, and a CMA-ES polish of 150 solves in 15 dimensions barely moves, while the
straight path from such a point to the truth descends monotonically. A Gauss-Newton step, which
sees the coupling through the Jacobian of the residual signals, follows the valley.

**How.** The mismatch of :class:`~.objective.Mismatch` at a fixed lag is written through residual
vectors (:meth:`~.objective.Mismatch.residuals`): ``loss = |r_corr|^2 + w_rmse |r_rmse|``. The
Levenberg-Marquardt iteration (Levenberg 1944, Q Appl Math 2:164; Marquardt 1963, J SIAM
11:431) minimises ``|r_corr|^2 + w_rmse |r_rmse|^2 / (2 |r_rmse(x_k)|)``, which has the loss's
gradient at the current point ``x_k``; the Jacobian comes from forward differences on the 1 mm
model (one batched solve of d points, the current point's is kept; an adjoint of the eikonal,
as in Geodesic-BP by Grandits et al. 2023, would give it for one solve, but d = 15 here). Each iteration tries four
damping values in one batch, with steps capped in the unit cube, and keeps the best if the true
loss (lag searched again) improves; the damping then shrinks, else it grows 100-fold. It stops
when the budget of solves is spent, when two iterations in a row gain less than ``tol``, or when a
step is rejected twice in a row. (Going on past small gains let one recovery seed's fit improve
from 0.198 to 0.153; tried together with a root-site search that also moved the reference root's
delay, the roots of seeds 1-3 came out at 2.4 / 10.8 / 18.3 mm against 2.4 / 8.1 / 8.8 mm, so
neither was kept.) The finite-difference step (``step``, unit cube, default 0.04:
about 1.5 mm for a root site) is above the 1 mm spacing on which a root snaps to a mesh node.

It is a local method: it does not carry a root out of the wrong part of its box (the root-site
search of :mod:`.root_sites` does that), and on the space-mapped 2 mm model, whose loss has a kink
at the mapping point, it gains little (from velocities 0.05 off it halved the loss, not more).

In the recovery benchmark (five seeds, 150 solves in place of a CMA-ES polish of 150) the QRS loss
went from 0.11 / 0.10 / 0.14 to 0.067 / 0.070 / 0.094 on seeds 1-3 (the truth's 0.056 / 0.060 /
0.067), the activation error from 2.0 / 1.3 / 1.9 to 1.2 / 0.9 / 1.5 ms, and the effective roots
to within 2.4 / 8.1 / 8.8 mm of the truth (6.2 / 15.7 / 10.4 before); seeds 4-5 stay in a wrong
basin (loss 0.20 / 0.23 against 0.07 / 0.10, roots 13.2 / 20.6 mm), which is the global stage's.
"""

from __future__ import annotations

import time

import numpy as np

from cardiotwin.errors import InvalidParameterError

__all__ = ["levenberg_marquardt", "min_budget"]

DAMPING_FACTORS = (0.1, 1.0, 10.0, 100.0)
"""Multiples of the current damping tried in each iteration (one batch)."""


def min_budget(d: int) -> int:
    """Solves of the start point and one iteration in ``d`` dimensions (the least useful budget)."""
    return d + 1 + len(DAMPING_FACTORS)


def levenberg_marquardt(prob, x: np.ndarray, budget: int, *, step: float = 0.04, max_step: float = 0.2,
                        damping: float = 1e-2, tol: float = 2e-4, fidelity: str = "fine", free=None,
                        history: list | None = None, clock: float | None = None,
                        label: str = "QRS") -> tuple[np.ndarray, float, int]:
    """Refine unit-cube point ``x`` of ``prob`` (a QRS problem of :mod:`.optimise`, or any object
    with a :class:`~.objective.Mismatch` ``mis`` and ``segments(xs, fidelity)`` giving its simulated
    segments, and optionally ``penalty(segments)``: terms (b,) added to the loss, e.g. the T stage's
    intervals; steps are Gauss-Newton steps of the mismatch, accepted on the whole loss) on the 1 mm model (or, ``fidelity="coarse"``, the space-mapped coarse one) with at
    most ``budget`` solves (module docstring); ``free``: indices of the dimensions refined (default all);
    ``label``: the stage named in the history (the T stage refines its parameters the same way). Returns the point,
    its loss and the solves spent; the point is ``x`` itself when no step improved the loss. The
    ``history`` row's ``trace`` holds (seconds since ``clock``, loss) after each iteration, from which
    the benchmark reads the time each route needs to reach a given fit."""
    x = np.asarray(x, dtype=float)
    free = np.arange(len(x)) if free is None else np.asarray(free, dtype=int)
    d = len(free)
    if budget < min_budget(d):
        raise InvalidParameterError(f"a Levenberg-Marquardt iteration needs {min_budget(d)} "
                                    f"solves in {d} dimensions, got a budget of {budget}")
    if not (0.0 < step < 0.5 and 0.0 < max_step <= 1.0):
        raise InvalidParameterError(f"step must lie in (0, 0.5) and max_step in (0, 1], got {step}, {max_step}")
    if fidelity not in ("coarse", "fine"):
        raise InvalidParameterError(f"fidelity must be 'coarse' or 'fine', got {fidelity!r}")
    clock = time.perf_counter() if clock is None else clock
    mis = prob.mis
    penalty = getattr(prob, "penalty", None)  # extra terms of the loss (b,), from the segments

    def total(seg, fit):
        return fit.loss if penalty is None else fit.loss + penalty(seg)

    seg = prob.segments(x[None], fidelity)
    fit = mis(seg)
    f, lag = float(total(seg, fit)[0]), float(fit.lag_ms[0])
    f_start, spent, small, rejected, iters = f, 1, 0, 0, 0
    trace = [[time.perf_counter() - clock, f]]  # (time since clock, loss) after each iteration
    while spent + d + len(DAMPING_FACTORS) <= budget and small < 2 and rejected < 2:
        iters += 1
        h = np.where(x[free] + step <= 1.0, step, -step)
        probes = np.repeat(x[None], d, axis=0)
        probes[np.arange(d), free] += h
        probe = prob.segments(probes, fidelity)
        r_c, r_r = mis.residuals(np.concatenate([seg, probe]), lag)
        r_r = r_r * np.sqrt(mis.rmse_weight / (2.0 * max(np.linalg.norm(r_r[0]), 1e-12)))
        res = np.hstack([r_c, r_r])
        jac = (res[1:] - res[0]).T / h  # (N, d)
        grad, hess = jac.T @ res[0], jac.T @ jac
        scale = np.diag(hess) + 1e-12
        trials = []
        for m in DAMPING_FACTORS:
            dx = -np.linalg.solve(hess + damping * m * np.diag(scale), grad)
            dx *= min(1.0, max_step / max(np.abs(dx).max(), 1e-300))
            trial = x.copy()
            trial[free] = np.clip(x[free] + dx, 0.0, 1.0)
            trials.append(trial)
        tseg = prob.segments(np.asarray(trials), fidelity)
        tfit = mis(tseg)
        tloss = total(tseg, tfit)
        spent += d + len(trials)
        k = int(np.argmin(tloss))
        if tloss[k] < f:
            small = small + 1 if f - float(tloss[k]) < tol else 0
            x, f, lag, seg = trials[k], float(tloss[k]), float(tfit.lag_ms[k]), tseg[k:k + 1]
            damping = max(damping * DAMPING_FACTORS[k] * 0.3, 1e-6)
            rejected = 0
        else:
            damping *= 100.0
            rejected += 1
        trace.append([time.perf_counter() - clock, f])
    if history is not None:
        history.append({"stage": f"{label} Levenberg-Marquardt ({fidelity})", "iterations": iters, "solves": spent,
                        "loss_before": f_start, "loss_after": f, "trace": trace, "time_s": time.perf_counter() - clock})
    return x, f, spent
