"""The digital twin of one patient: heart mesh with its fields, landmarks, torso and lead fields,
and the forward model ``simulate(twin, θ) -> activation, repolarisation, 12-lead ECG``.

A twin lives in a folder (the case folder of the pipeline):

    heart.vtu        heart mesh with UVC/UAC, fibres and conduction fields
    landmarks.json   anatomical landmarks (mm)
    torso.vtu        torso mesh (optional)
    leadfields.npz   electrode lead fields projected onto the heart nodes (optional)

Everything that does not depend on θ (eikonal topology, lead-field weights) is built once when the
:class:`ForwardModel` is created, so each simulation costs one eikonal solve and one fast ECG.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import numpy as np

from cardiotwin import fields as F
from cardiotwin.electrophysiology.action_potential import ApShape
from cardiotwin.electrophysiology.conduction import SinusRhythmModel
from cardiotwin.electrophysiology.parameters import EpParameters
from cardiotwin.electrophysiology.repolarisation import Repolarisation
from cardiotwin.types import Ecg, TetMesh


@dataclass
class Twin:
    """A patient's heart (with fields), landmarks and, when built, torso and lead fields."""

    heart: TetMesh
    landmarks: dict
    torso: TetMesh | None = None
    lead_fields: object | None = None  # cardiotwin.ecg.leadfield.LeadFields

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "Twin":
        """The twin in ``folder`` (:func:`cardiotwin.io.twin.read_twin`)."""
        from cardiotwin.io.twin import read_twin

        return read_twin(folder)


@dataclass
class Simulation:
    """Activation and repolarisation times (ms, per heart node) of one parameter set."""

    params: EpParameters
    activation: np.ndarray
    repolarisation: np.ndarray
    apd: np.ndarray
    summary: dict = field(default_factory=dict)
    ecg: Ecg | None = None

    def as_fields(self) -> dict[str, np.ndarray]:
        return {F.ACTIVATION: self.activation, F.REPOLARISATION: self.repolarisation, F.APD: self.apd}


class ForwardModel:
    """θ -> activation, repolarisation and (with lead fields) the 12-lead ECG, for one twin. The AP
    template is ``shape`` with its phase-3 fall time taken from each θ (``ap_repolarisation_ms``)."""

    def __init__(self, twin: Twin, shape: ApShape | None = None):
        self.twin = twin
        self.model = SinusRhythmModel(twin.heart, twin.landmarks)
        self.shape = shape or ApShape()
        self.repolarisation = Repolarisation(twin.heart)

    def simulate_batch(self, params: list[EpParameters], fs: float = 1000.0, duration_ms: float | None = None,
                       with_ecg: bool = True) -> list[Simulation]:
        ats = self.model.activation_batch(params)
        out = []
        rts = self.repolarisation.times(ats, list(params))
        for p, at, rt in zip(params, ats, rts):
            apd = self.repolarisation.apd(p)
            np.subtract(rt, at, out=apd, where=np.isfinite(rt))  # effective APD (activation-recovery interval)
            sim = Simulation(p, at, rt, apd, self.model.summary(at))
            if with_ecg and self.twin.lead_fields is not None:
                end = duration_ms or float(np.nanmax(np.where(np.isfinite(rt), rt, np.nan))) + 80.0
                shape = replace(self.shape, repolarisation_ms=p.ap_repolarisation_ms)
                sim.ecg = self.twin.lead_fields.ecg(at, rt, shape, fs=fs, duration_ms=end)
            out.append(sim)
        return out

    def simulate(self, params: EpParameters | None = None, **kwargs) -> Simulation:
        return self.simulate_batch([params or EpParameters()], **kwargs)[0]


def simulate(twin: Twin, params: EpParameters | None = None, **kwargs) -> Simulation:
    """One simulation of the twin (builds the forward model; keep a :class:`ForwardModel` to reuse it)."""
    return ForwardModel(twin).simulate(params, **kwargs)


