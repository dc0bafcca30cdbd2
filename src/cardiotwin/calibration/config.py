"""Every setting of a calibration in one frozen, hashable object.

The pipeline records a stage's configuration in its provenance and reruns the stage when it
changes, so the settings of :func:`cardiotwin.calibration.calibrate` live here, validated once,
as a plain dict (:meth:`CalibrationConfig.as_dict`, which the stage records and digests) and from
one (:meth:`CalibrationConfig.from_dict`, for ``config.toml`` files; unknown keys are refused).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cardiotwin.calibration.objective import GAINS, LEAD_IN_MS, MIN_LEADS
from cardiotwin.errors import InvalidParameterError

METHODS = ("cmaes", "ml")
STAGES = ("QRS", "T", "P")


@dataclass(frozen=True)
class CalibrationConfig:
    """Settings of :func:`~cardiotwin.calibration.calibrate` (see its docstring for each)."""

    method: str = "cmaes"
    budget: int | None = None
    seed: int = 0
    stages: tuple[str, ...] = STAGES
    coarse_edge_mm: float | None = 2.0
    mapping_rounds: int = 2
    starts: int = 1
    fine_budget: int = 0
    t_budget: int = 1200
    p_budget: int = 240
    gain: str = "lead"
    pose: bool = False
    pose_budget: int = 120
    max_lag_ms: float = 10.0
    lead_in_ms: float = LEAD_IN_MS
    min_leads: int = MIN_LEADS
    root_sites: int = 8
    fine_root_sites: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        if self.method not in METHODS:
            raise InvalidParameterError(f"method must be one of {METHODS}, got {self.method!r}")
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown or not self.stages:
            raise InvalidParameterError(f"stages must be a non-empty subset of {STAGES}, got {self.stages}")
        for name in ("root_sites", "fine_root_sites"):
            n = getattr(self, name)
            if n < 0 or n == 1:
                raise InvalidParameterError(f"{name} must be 0 (off) or >= 2 grid points per axis, got {n}")
        if self.budget is not None and self.budget < 8:
            raise InvalidParameterError(f"budget must be at least 8 forward simulations, got {self.budget}")
        if self.pose and self.pose_budget < 16:
            raise InvalidParameterError(f"pose_budget must be at least 16 ECG evaluations, got {self.pose_budget}")
        if self.gain not in GAINS:
            raise InvalidParameterError(f"gain must be one of {GAINS}, got {self.gain!r}")

    def replace(self, **settings) -> "CalibrationConfig":
        """A copy with ``settings`` changed (an unknown name is an error, not ignored)."""
        unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise InvalidParameterError(f"unknown calibration settings {unknown}; known: "
                                        f"{[f.name for f in dataclasses.fields(self)]}")
        return dataclasses.replace(self, **settings)

    @classmethod
    def from_dict(cls, data: dict) -> "CalibrationConfig":
        return cls().replace(**data)

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "stages": list(self.stages)}
