"""Fit the parametric torso's cross-section (a superellipse |x/A|^n + |y/B|^n = 1: axis position,
semi-axes, exponent) to what a CT shows of the body, with the population as prior where the crop
shows nothing. The exponent lets the fit flatten the chest in front, as real chests are (the
phantom's ellipse is n = 2).

Maximum a-posteriori estimate by non-linear least squares (SciPy's trust-region reflective
``least_squares``); skin residuals go through a soft-L1 (pseudo-Huber) transform so a few stray skin
points, an arm beside the chest, do not pull the fit, while the priors stay Gaussian:

* visible skin points at the heart's levels (where the heart and the chest electrodes are) lie on
  the ellipse (``SKIN_SD_MM``); the model's cross-section is the same at every level, so skin seen
  higher or lower (the chest narrowing to the neck, the abdomen) only has to lie inside it;
* every body voxel in view lies inside it, and every lung voxel inside the model's pleural cavity
  (the body less fat and chest wall, narrowing to the apex): one-sided penalties (``CONTAIN_SD_MM``);
* neighbouring points are not independent (a real chest is flatter in front than an ellipse, over
  centimetres): each kind counts one observation per ``CORRELATION_MM`` cell it occupies;
* Gaussian priors: semi-axes around the population torso with adult spreads (``SEMI_AXIS_SD_MM``,
  chest width 30-40 cm and depth 20-28 cm span about two SDs), axis around the position the heart
  implies (``AXIS_SD_MM``), exponent around the ellipse (``EXPONENT_SD``, within ``EXPONENT_RANGE``).

The same construction, a shape model fitted to partial observations with a prior for what is
unseen, is how statistical shape models extend cropped anatomy (Heimann & Meinzer 2009, Med Image
Anal 13:543); here the shape model is the phantom's elliptic torso.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from cardiotwin.phantom.params import PhantomParams
from cardiotwin.phantom.torso import CHEST_WALL, superellipse_radius

SKIN_SD_MM = 3.0
CONTAIN_SD_MM = 2.0
SEMI_AXIS_SD_MM = (20.0, 15.0)  # left-right, anterior-posterior
AXIS_SD_MM = 20.0
EXPONENT_SD = 1.0
EXPONENT_RANGE = (2.0, 4.0)
HEART_BAND_MM = 10.0
CORRELATION_MM = 20.0  # length over which a real body's departures from the ellipse are alike
MAX_POINTS = 4000  # per kind of observation: a regular subsample keeps the fit well under a second


@dataclass(frozen=True)
class OutlineFit:
    """The fitted cross-section and how well it explains the observations."""

    axis_xy: np.ndarray
    semi_axes: tuple[float, float]
    exponent: float
    skin_residual_mm: tuple[float, float] | None  # median and 90th percentile |distance| of fitted skin
    body_outside_mm: float  # largest distance of a seen body point outside the fitted outline
    lung_outside_mm: float  # same for seen lung points and the fitted pleural cavity

    def report(self) -> dict:
        return {"torso_axis_xy_mm": self.axis_xy.round(2).tolist(),
                "torso_semi_axes_mm": [round(a, 1) for a in self.semi_axes],
                "torso_exponent": round(self.exponent, 2),
                "skin_residual_median_p90_mm": None if self.skin_residual_mm is None
                else [round(r, 1) for r in self.skin_residual_mm],
                "max_body_outside_fit_mm": round(self.body_outside_mm, 1),
                "max_lung_outside_fit_mm": round(self.lung_outside_mm, 1)}


def _subsample(points: np.ndarray) -> np.ndarray:
    step = max(1, len(points) // MAX_POINTS)
    return points[::step]


def _rho(xy: np.ndarray, cx: float, cy: float, a: float, b: float, n: float) -> np.ndarray:
    return superellipse_radius(xy[:, 0] - cx, xy[:, 1] - cy, a, b, n)


def _independent_fraction(points: np.ndarray) -> float:
    """sqrt(independent / all points): a body deviates from an ellipse smoothly, so points closer than
    ``CORRELATION_MM`` carry one observation between them (one per occupied cell of that size)."""
    if len(points) == 0:
        return 0.0
    cells = np.unique(np.floor(points / CORRELATION_MM).astype(np.int64), axis=0)
    return float(np.sqrt(len(cells) / len(points)))


def _soft_l1(r: np.ndarray) -> np.ndarray:
    """Residuals whose squares are the soft-L1 cost 2 (sqrt(1 + r^2) - 1): quadratic near 0, linear far out."""
    return np.sign(r) * np.sqrt(2.0 * (np.sqrt(1.0 + r * r) - 1.0))


def _lung_taper(z: np.ndarray, z_top: float) -> np.ndarray:
    """The phantom's pleural cavity radius factor (1 below the apex region, 0 at the apex)."""
    start = z_top - 90.0
    return np.sqrt(np.clip(1.0 - (np.clip(z - start, 0.0, None) / (z_top - 10.0 - start)) ** 2, 1e-6, 1.0))


def fit_outline(p: PhantomParams, axis_prior: np.ndarray, z_top: float, heart_z: tuple[float, float],
                skin: np.ndarray, body: np.ndarray, lungs: np.ndarray) -> OutlineFit:
    """Fit axis and semi-axes of the torso ``p`` to skin, body and lung points (LPS mm, (n, 3));
    skin within ``HEART_BAND_MM`` of the heart's z range ``heart_z`` is fitted, the rest contained."""
    skin, body, lungs = (np.asarray(a, dtype=float).reshape(-1, 3) for a in (skin, body, lungs))
    level = (skin[:, 2] >= heart_z[0] - HEART_BAND_MM) & (skin[:, 2] <= heart_z[1] + HEART_BAND_MM)
    skin, body, lungs = (_subsample(a) for a in (skin[level], np.vstack([body, skin[~level]]), lungs))
    inset = p.fat_thickness + CHEST_WALL
    taper = _lung_taper(lungs[:, 2], z_top)
    prior = np.array([axis_prior[0], axis_prior[1], p.torso_semi_lr, p.torso_semi_ap, p.torso_exponent])
    sd = np.array([AXIS_SD_MM, AXIS_SD_MM, *SEMI_AXIS_SD_MM, EXPONENT_SD])

    w_skin, w_body, w_lungs = (_independent_fraction(a) for a in (skin, body, lungs))

    def residuals(v: np.ndarray) -> np.ndarray:
        cx, cy, a, b, n = v
        scale = np.sqrt(a * b)
        lung_rho = _rho(lungs, cx, cy, a - inset, b - inset, n) / taper
        return np.concatenate([
            w_skin * _soft_l1((_rho(skin, cx, cy, a, b, n) - 1.0) * scale / SKIN_SD_MM),
            w_body * _soft_l1(np.maximum(_rho(body, cx, cy, a, b, n) - 1.0, 0.0) * scale / CONTAIN_SD_MM),
            w_lungs * _soft_l1(np.maximum(lung_rho - 1.0, 0.0) * np.sqrt((a - inset) * (b - inset)) / CONTAIN_SD_MM),
            (v - prior) / sd,
        ])

    lower = [-np.inf, -np.inf, inset + 40.0, inset + 40.0, EXPONENT_RANGE[0]]
    upper = [np.inf, np.inf, np.inf, np.inf, EXPONENT_RANGE[1]]
    starts = [np.r_[prior[:4], n0] for n0 in np.linspace(*EXPONENT_RANGE, 3)]  # the cost is not convex in n
    fits = [least_squares(residuals, np.clip(x0, lower, upper), bounds=(lower, upper), x_scale=sd) for x0 in starts]
    best = min(fits, key=lambda f: f.cost)
    cx, cy, a, b, n = best.x
    scale = np.sqrt(a * b)
    skin_r = np.abs(_rho(skin, cx, cy, a, b, n) - 1.0) * scale
    skin_res = (float(np.median(skin_r)), float(np.percentile(skin_r, 90))) if len(skin) else None
    body_out = float(np.max(np.maximum(_rho(body, cx, cy, a, b, n) - 1.0, 0.0) * scale, initial=0.0))
    lung_out = float(np.max(np.maximum(_rho(lungs, cx, cy, a - inset, b - inset, n) / taper - 1.0, 0.0)
                            * np.sqrt((a - inset) * (b - inset)), initial=0.0))
    return OutlineFit(np.array([cx, cy]), (float(a), float(b)), float(n), skin_res, body_out, lung_out)
