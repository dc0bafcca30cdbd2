"""Calibration of a twin's electrophysiology to a patient's 12-lead ECG.

* :mod:`.config` -- every setting in one frozen, hashable :class:`CalibrationConfig`;
* :mod:`.objective` -- the mismatch of simulated and measured beats per window (QRS, T, P):
  onset alignment, least-squares gain, per-lead correlation and normalised RMSE;
* :mod:`.space` -- what each stage fits and the boxes searched (root nodes in UVC, velocities, APD
  gradients, atrial parameters);
* :mod:`.coarse` -- a 2 mm ventricle-only model whose parameters transfer to the 1 mm twin;
* :mod:`.pose` -- the heart's rotation in the torso as extra parameters (lead fields resampled);
* :mod:`.root_sites` -- discrete root-site search over precomputed single-root activation fields;
* :mod:`.refine` -- Levenberg-Marquardt refinement of the QRS parameters on the 1 mm model;
* :mod:`.optimise` -- staged CMA-ES (QRS, then T with activation fixed, then P), multi-fidelity
  with output space mapping; :func:`calibrate` (files: :mod:`cardiotwin.io.calibration`);
* :mod:`.emulator` -- amortised inference with a neural network (PyTorch, optional) trained on a
  simulated population of the patient's anatomy, used to start the optimiser;
* :mod:`.synthetic` -- noisy synthetic records for parameter-recovery tests.
"""

from cardiotwin.calibration.config import CalibrationConfig
from cardiotwin.calibration.objective import Mismatch, Target, WindowFit
from cardiotwin.calibration.optimise import (
    CalibrationModel,
    CalibrationResult,
    QUICK,
    REFINEMENT,
    atrial_errors,
    calibrate,
    recovery_errors,
    repolarisation_errors,
)
from cardiotwin.calibration.space import SearchSpace

__all__ = ["CalibrationConfig", "Mismatch", "Target", "WindowFit", "CalibrationModel", "CalibrationResult", "QUICK", "REFINEMENT", "atrial_errors", "calibrate",
           "recovery_errors", "repolarisation_errors", "SearchSpace"]
