"""Shape parameters of a synthetic patient, drawn per seed from adult population ranges.

Ranges (mean ± SD, truncated at ±2 SD) follow published adult reference values:

* LV end-diastolic volume 100-150 ml and LV wall ~10 mm; RV wall 3-4 mm; RV EDV slightly above
  LV EDV (Kawel-Boehm et al. 2020, J Cardiovasc Magn Reson 22:87, CMR reference ranges).
* Atrial wall 2-3 mm (Beinart et al. 2011, J Cardiovasc Electrophysiol 22:1232, LA wall by CT).
* Ascending aorta diameter 26-34 mm, aortic wall ~2 mm; main pulmonary artery diameter 22-28 mm
  (Truong et al. 2012, Circ Cardiovasc Imaging 5:147).
* Heart long axis ~45 deg from the sagittal plane towards the left and ~30 deg below the
  horizontal, apex anterior (standard anatomy; e.g. Ho & Nihoyannopoulos 2006, Heart 92:i2).
* Chest ~35 cm wide and ~25 cm deep at the heart level (adult anthropometry).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import brentq


@dataclass(frozen=True)
class PhantomParams:
    """Every number that defines one synthetic patient (mm and degrees)."""

    seed: int
    # torso
    torso_semi_lr: float
    torso_semi_ap: float
    torso_height: float
    fat_thickness: float
    # heart placement
    heart_offset: tuple[float, float, float]
    apex_azimuth_deg: float
    apex_elevation_deg: float
    septum_roll_deg: float
    # left ventricle
    lv_radius: float
    lv_length: float
    lv_wall: float
    # other walls
    rv_scale: float
    rv_wall: float
    atrial_scale: float
    la_wall: float
    ra_wall: float
    aorta_radius: float
    aorta_wall: float
    pa_radius: float
    pa_wall: float
    # cross-section shape: |x/A|^n + |y/B|^n = 1 (n = 2: the phantom's ellipse; real chests, flatter
    # in front, fit n ~ 2.5-3)
    torso_exponent: float = 2.0

    def as_dict(self) -> dict:
        return asdict(self)


def _draw(rng: np.random.Generator, mean: float, sd: float) -> float:
    return float(mean + sd * np.clip(rng.standard_normal(), -2.0, 2.0))


def lv_cavity_ml(radius: float, length: float, wall: float) -> float:
    """Volume of the phantom's LV cavity: a prolate ellipsoid (semi-axes r, r, l) cut 12 mm x r/24.5
    above its equator less the basal myocardial cap (0.6 x wall): pi r^2 [(h + l) - (h^3 + l^3) / (3 l^2)]."""
    h = 12.0 * radius / 24.5 - 0.6 * wall
    return float(np.pi * radius**2 * ((h + length) - (h**3 + length**3) / (3 * length**2)) / 1000.0)


def sample_params(seed: int) -> PhantomParams:
    """Draw a patient's shape parameters; the same seed always gives the same patient.

    The LV is drawn by its end-diastolic volume (120 +- 11 ml) and sphericity (length/radius
    3.2 +- 0.12); its radius is then solved from the volume.
    """
    rng = np.random.default_rng(seed)
    size = _draw(rng, 1.0, 0.035)  # one body-size factor correlates torso and heart
    lv_wall = _draw(rng, 10.0, 0.7)
    lv_edv = _draw(rng, 120.0, 11.0)
    aspect = _draw(rng, 3.2, 0.12)
    lv_radius = brentq(lambda r: lv_cavity_ml(r, aspect * r, lv_wall) - lv_edv, 10.0, 60.0)
    return PhantomParams(
        seed=int(seed),
        torso_semi_lr=_draw(rng, 175.0, 8.0) * size,
        torso_semi_ap=_draw(rng, 122.0, 6.0) * size,
        torso_height=460.0,
        fat_thickness=_draw(rng, 14.0, 3.0),
        heart_offset=(_draw(rng, 15.0, 5.0), _draw(rng, -30.0, 5.0), 0.0),
        apex_azimuth_deg=_draw(rng, 48.0, 6.0),
        apex_elevation_deg=_draw(rng, 30.0, 5.0),
        septum_roll_deg=_draw(rng, 0.0, 5.0),
        lv_radius=lv_radius,
        lv_length=aspect * lv_radius,
        lv_wall=lv_wall,
        rv_scale=_draw(rng, 1.0, 0.025),
        rv_wall=_draw(rng, 3.5, 0.25),
        atrial_scale=_draw(rng, 1.0, 0.05) * size,
        la_wall=_draw(rng, 2.5, 0.25),
        ra_wall=_draw(rng, 2.5, 0.25),
        aorta_radius=_draw(rng, 14.5, 0.8),
        aorta_wall=_draw(rng, 2.2, 0.2),
        pa_radius=_draw(rng, 12.5, 0.7),
        pa_wall=_draw(rng, 1.8, 0.2),
    )
