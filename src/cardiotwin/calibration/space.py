"""The calibration's search spaces: which parameters each stage fits, their boxes, and the map
between the unit cube (where the optimiser and the emulator work) and :class:`EpParameters`.

* **QRS** (ventricular activation): ``cv_fibre``, ``cv_transverse``, ``cv_endo``, ``endo_depth_mm``
  and, per root node, its universal ventricular coordinates (apicobasal, rotational) and delay.
  Each of the four Durrer roots (Durrer et al. 1970, Circulation 41:899) searches its own
  anatomical box, as the root-node parameterisations of Gillette et al. 2021 (Med Image Anal
  71:102080) and Camps et al. 2021 (Med Image Anal 71:102047) restrict roots to the regions where
  the left and right bundle branches insert; boxes keep the roots distinguishable (no permutation
  symmetry) and cover the normal variation. The delay of a reference root (the left septal one) is
  0, the others' are relative to it (the model refers all delays to the earliest), so no direction
  of the space leaves the activation unchanged.
* **T** (repolarisation): the intrinsic APD's seven coefficients on the universal coordinates
  (``apd_mean``, ``apd_transmural``, ``apd_apicobasal``, ``apd_rv``, ``apd_apicobasal_mid``,
  ``apd_septal``, ``apd_anterior``), the AP's phase-3 fall time ``ap_repolarisation_ms`` and the
  activation-repolarisation coupling ``apd_coupling``; the smoothing length ``rt_smoothing_mm`` is
  chosen from a few values by the T stage (:mod:`cardiotwin.electrophysiology.repolarisation`).
* **P** (atria): ``cv_atrial_fibre``, ``cv_atrial_transverse``, ``atrial_bundle_factor``, the
  sinus site on the crista terminalis ``sinus_site`` and the interatrial route delays
  ``bachmann_delay_ms``, ``septal_delay_ms``; the P stage fits ``av_delay`` beside them, per
  candidate, as a shift in time (it moves the P wave only).

Velocity ranges are those of :data:`~cardiotwin.electrophysiology.parameters.SPECS`; a transverse
velocity above the fibre velocity is repaired to the fibre velocity (so every point of the box is a
valid model).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from cardiotwin.electrophysiology.parameters import SPECS, EpParameters, RootNode
from cardiotwin.errors import InvalidParameterError

__all__ = ["ROOT_BOXES", "DELAY_RANGE_MS", "Dimension", "SearchSpace"]

#: (apicobasal range, rotational range in rad) of each named root (UVC: 0 apex .. 1 base; rotational
#: 0 septum, > 0 anterior; the RV's own rotational coordinate spans about -1.8 .. 1.8 over the RV free wall,
#: where RV roots are placed: the RV septal surface carries LV coordinates)
ROOT_BOXES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "lv_anterior_paraseptal": ((0.45, 0.9), (0.15, 1.2)),
    "lv_septal_central": ((0.25, 0.75), (-0.45, 0.45)),
    "lv_posterior_paraseptal": ((0.15, 0.65), (-1.2, -0.15)),
    "rv_moderator_band": ((0.3, 0.7), (-0.2, 1.0)),
}
DELAY_RANGE_MS = (-10.0, 20.0)
"""Delay of each root relative to the reference root."""
REFERENCE_ROOT = "lv_septal_central"

STAGE_PARAMETERS = {
    "QRS": ("cv_fibre", "cv_transverse", "cv_endo", "endo_depth_mm"),
    "T": ("apd_mean", "apd_transmural", "apd_apicobasal", "apd_rv", "apd_apicobasal_mid", "apd_septal",
          "apd_anterior", "ap_repolarisation_ms", "apd_coupling"),
    "P": ("cv_atrial_fibre", "cv_atrial_transverse", "atrial_bundle_factor", "sinus_site", "bachmann_delay_ms",
          "septal_delay_ms"),
}


@dataclass(frozen=True)
class Dimension:
    """One searched quantity: a named parameter, or ``root:<name>:<field>`` of a root node."""

    name: str
    low: float
    high: float


def _root_box(root: RootNode) -> tuple[tuple[float, float], tuple[float, float]]:
    if root.name in ROOT_BOXES:
        return ROOT_BOXES[root.name]
    # a user-defined root: a box around its position
    z = (max(0.0, root.apicobasal - 0.2), min(1.0, root.apicobasal + 0.2))
    return z, (root.rotational - 0.5, root.rotational + 0.5)


class SearchSpace:
    """A box of parameters around a base parameter set, mapped linearly onto [0, 1]^d."""

    def __init__(self, dims: list[Dimension], base: EpParameters, stage: str = ""):
        if not dims:
            raise InvalidParameterError("a search space needs at least one dimension")
        self.dims = tuple(dims)
        self.base = base
        self.stage = stage
        self.low = np.array([d.low for d in dims])
        self.high = np.array([d.high for d in dims])

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dims)

    @property
    def ndim(self) -> int:
        return len(self.dims)

    @classmethod
    def for_stage(cls, stage: str, base: EpParameters | None = None) -> "SearchSpace":
        base = base or EpParameters()
        if stage not in STAGE_PARAMETERS:
            raise InvalidParameterError(f"unknown stage {stage!r}; choose from {tuple(STAGE_PARAMETERS)}")
        dims = [Dimension(n, SPECS[n].low, SPECS[n].high) for n in STAGE_PARAMETERS[stage]]
        if stage == "QRS":
            names = [r.name for r in base.roots]
            ref = REFERENCE_ROOT if REFERENCE_ROOT in names else names[0]
            for root in base.roots:
                (z0, z1), (p0, p1) = _root_box(root)
                dims += [Dimension(f"root:{root.name}:apicobasal", z0, z1),
                         Dimension(f"root:{root.name}:rotational", p0, p1)]
                if root.name != ref:
                    dims.append(Dimension(f"root:{root.name}:delay_ms", *DELAY_RANGE_MS))
            base = base.with_values(roots=tuple(replace(r, delay_ms=0.0) if r.name == ref else r for r in base.roots))
        return cls(dims, base, stage)

    # ------------------------------------------------------------------------------------ maps

    def values(self, x: np.ndarray) -> np.ndarray:
        """Physical values of unit-cube points (..., d) (clipped into the box)."""
        return self.low + np.clip(np.asarray(x, dtype=float), 0.0, 1.0) * (self.high - self.low)

    def to_params(self, x: np.ndarray, base: EpParameters | None = None) -> EpParameters:
        """The parameter set at unit-cube point ``x`` (d,), other parameters from ``base``."""
        base = base or self.base
        v = self.values(x)
        scalars: dict[str, float] = {}
        roots = {r.name: r for r in base.roots}
        for d, val in zip(self.dims, v):
            if d.name.startswith("root:"):
                _, name, fld = d.name.split(":")
                roots[name] = replace(roots[name], **{fld: float(val)})
            else:
                scalars[d.name] = float(val)
        if "cv_transverse" in scalars or "cv_fibre" in scalars:
            cvf = scalars.get("cv_fibre", base.cv_fibre)
            scalars["cv_transverse"] = min(scalars.get("cv_transverse", base.cv_transverse), cvf)
        return base.with_values(roots=tuple(roots[r.name] for r in base.roots), **scalars)

    def to_unit(self, params: EpParameters) -> np.ndarray:
        """Unit-cube coordinates (d,) of a parameter set (clipped into the box)."""
        roots = {r.name: r for r in params.roots}
        v = []
        for d in self.dims:
            if d.name.startswith("root:"):
                _, name, fld = d.name.split(":")
                if name not in roots:
                    raise InvalidParameterError(f"parameters lack the root node {name!r} of this search space")
                v.append(getattr(roots[name], fld))
            else:
                v.append(getattr(params, d.name))
        return np.clip((np.asarray(v) - self.low) / (self.high - self.low), 0.0, 1.0)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` uniform unit-cube points (n, d) whose parameters need no repair (cv_t <= cv_f)."""
        out = []
        while len(out) < n:
            x = rng.random((max(2 * (n - len(out)), 8), self.ndim))
            v = self.values(x)
            ok = np.ones(len(x), dtype=bool)
            if "cv_fibre" in self.names and "cv_transverse" in self.names:
                ok &= v[:, self.names.index("cv_transverse")] <= v[:, self.names.index("cv_fibre")]
            out.extend(x[ok])
        return np.asarray(out[:n])

    def describe(self, x: np.ndarray) -> dict[str, float]:
        return {d.name: float(v) for d, v in zip(self.dims, self.values(x))}
