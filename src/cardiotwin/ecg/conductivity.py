"""Electrical conductivities of the torso regions and of the myocardium, in S/m.

Two kinds of conductivity enter the lead-field ECG (:mod:`cardiotwin.ecg.leadfield`):

* **Bulk conductivities** of the passive volume conductor, one isotropic value per region of the
  torso mesh, for the torso Poisson problem that gives the lead fields. The defaults are
  representative low-frequency (< 1 kHz) values from the ECG-modelling literature; measured values
  scatter by a factor of about two and the ECG is most sensitive to the lungs, blood and skeletal
  muscle (Keller et al. 2010, IEEE Trans Biomed Eng 57:1568, who ranked the influence of each
  tissue on forward-computed ECGs):

  ======================  ========  =======================================================
  region                  S/m       source / reasoning
  ======================  ========  =======================================================
  torso (muscle + fat)    0.20      skeletal muscle ~0.2-0.35 (cross/along fibres) and fat
                                    ~0.02-0.04 (Gabriel et al. 1996, Phys Med Biol 41:2251;
                                    Geddes & Baker 1967, Med Biol Eng 5:271); the usual
                                    torso average of ECG models (Potse 2018, Front Physiol
                                    9:370; Keller et al. 2010)
  lungs                   0.04      inflated lung at low frequency (Gabriel et al. 1996;
                                    range 0.04-0.1 in Keller et al. 2010)
  spine / bone            0.02      bone (Geddes & Baker 1967; cancellous bone 0.02, cortical
                                    bone 0.006)
  blood pools, vessels    0.70      blood at haematocrit ~45 %, 150 Ohm cm (Geddes & Baker
                                    1967); 0.7 in Keller et al. 2010 and Potse 2018
  heart (bulk myocardium) 0.376     isotropic equivalent of the bidomain bulk tensor
                                    sigma_i + sigma_e with Clerc's values (below): the geometric
                                    mean of its eigenvalues (0.79, 0.259, 0.259), i.e. the
                                    isotropic conductivity with the same determinant. Torso
                                    models use 0.2-0.4
  vessel walls            0.20      soft tissue, as the torso
  valves (fibrous)        0.376     embedded in the heart; as the heart bulk (they are
                                    thinner than a torso-mesh element)
  ======================  ========  =======================================================

* **Intracellular and extracellular conductivities** of the myocardium (bidomain tissue), longitudinal
  (along the fibre) and transverse, from Clerc 1976 (J Physiol 255:335; calf trabeculae:
  sigma_il 0.17, sigma_it 0.019, sigma_el 0.62, sigma_et 0.24 S/m) by default, or Roberts & Scher
  1982 (Circ Res 50:342; sigma_il 0.34, sigma_it 0.060, sigma_el 0.12, sigma_et 0.080 S/m). The
  intracellular tensor sigma_i = sigma_it I + (sigma_il - sigma_it) f f^T (f the fibre) is what
  turns the transmembrane voltage into the ECG source, -div(sigma_i grad V_m); only myocardium and
  atrial walls have an intracellular domain (valve planes and blood have none).

Without fibres, the isotropic fallback for sigma_i is the geometric mean of its eigenvalues
(sigma_il sigma_it^2)^(1/3) (0.0395 S/m for Clerc's values), the isotropic tensor of the same
determinant; say so when a result depends on it.

Units: S/m throughout. With geometry in mm a P1 stiffness matrix is in S/m * mm; the lead-field
ECG only depends on ratios of conductivities (sigma_i / sigma_bulk), so no conversion is needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from cardiotwin import labels as lab
from cardiotwin.errors import InvalidFieldError, InvalidParameterError, UnknownLabelError
from cardiotwin.types import TetMesh

__all__ = [
    "MyocardialConductivity",
    "CLERC_1976",
    "ROBERTS_SCHER_1982",
    "INTRACELLULAR_REGIONS",
    "default_conductivities",
    "conductivity_table",
    "region_conductivity",
    "insulated_junction",
    "intracellular_conductivity",
]


@dataclass(frozen=True)
class MyocardialConductivity:
    """Bidomain conductivities of the myocardium (S/m): intracellular (i) and extracellular (e),
    along (l) and across (t) the fibres."""

    sigma_il: float
    sigma_it: float
    sigma_el: float
    sigma_et: float
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("sigma_il", "sigma_it", "sigma_el", "sigma_et"):
            value = getattr(self, name)
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise InvalidParameterError(f"{name} must be a conductivity in S/m, got {value!r}") from None
            if not (math.isfinite(v) and 1e-4 <= v <= 10.0):
                raise InvalidParameterError(
                    f"{name} = {value!r} S/m is outside the plausible range [1e-4, 10] S/m (units are S/m, "
                    "not mS/cm: 1 mS/cm = 0.1 S/m)"
                )
            object.__setattr__(self, name, v)

    @property
    def bulk_longitudinal(self) -> float:
        """sigma_il + sigma_el (S/m): the tissue's conductivity along the fibres."""
        return self.sigma_il + self.sigma_el

    @property
    def bulk_transverse(self) -> float:
        """sigma_it + sigma_et (S/m)."""
        return self.sigma_it + self.sigma_et

    @property
    def bulk_isotropic(self) -> float:
        """Isotropic equivalent of the bulk tensor: geometric mean of its eigenvalues (S/m)."""
        return float((self.bulk_longitudinal * self.bulk_transverse**2) ** (1.0 / 3.0))

    @property
    def intracellular_isotropic(self) -> float:
        """Isotropic fallback for sigma_i without fibres: (sigma_il sigma_it^2)^(1/3) (S/m)."""
        return float((self.sigma_il * self.sigma_it**2) ** (1.0 / 3.0))


CLERC_1976 = MyocardialConductivity(0.17, 0.019, 0.62, 0.24, "Clerc 1976, J Physiol 255:335")
ROBERTS_SCHER_1982 = MyocardialConductivity(0.34, 0.060, 0.12, 0.080, "Roberts & Scher 1982, Circ Res 50:342")

#: regions with an intracellular domain (excitable myocardium)
INTRACELLULAR_REGIONS = lab.CHAMBER_WALLS


def insulated_junction(mesh: TetMesh) -> np.ndarray:
    """Atrial cells with a node shared with a ventricular cell (bool per cell).

    The fibrous atrioventricular annulus insulates atria from ventricles; only the AV node and
    His bundle connect them (Anderson & Ho 2000, J Cardiovasc Electrophysiol 11:1072). A conforming
    mesh shares nodes where atrial and ventricular walls touch, and those nodes carry the ventricular
    times (:meth:`cardiotwin.electrophysiology.conduction.SinusRhythmModel.activation_batch`), so an atrial
    cell there would see the two domains' potential difference as a gradient of V_m: a source
    across the annulus of the full AP amplitude whenever one domain is at rest and the other at
    plateau (measured on MM-WHS maps with large atrioventricular contact: ST depressed by 0.1-0.4 mV
    and a frontal QRS axis of -100 deg). These cells carry no intracellular current.
    """
    ventricular = np.isin(mesh.tags, lab.labels_of(lab.VENTRICULAR_WALLS))
    shared = np.zeros(mesh.n_points, dtype=bool)
    shared[mesh.cells[ventricular]] = True
    return np.isin(mesh.tags, lab.labels_of(lab.ATRIAL_WALLS)) & shared[mesh.cells].any(axis=1)

_TORSO_S_PER_M = 0.20
_LUNG_S_PER_M = 0.04
_BONE_S_PER_M = 0.02
_BLOOD_S_PER_M = 0.70


def default_conductivities(myocardium: MyocardialConductivity = CLERC_1976) -> dict[str, float]:
    """Bulk conductivity (S/m) of every cardiotwin region except background (see the table above);
    the heart, myocardium and valve regions get ``myocardium.bulk_isotropic``."""
    if not isinstance(myocardium, MyocardialConductivity):
        raise InvalidParameterError(f"myocardium must be a MyocardialConductivity, got {type(myocardium).__name__}")
    heart = myocardium.bulk_isotropic
    table = {"torso": _TORSO_S_PER_M, "lung_left": _LUNG_S_PER_M, "lung_right": _LUNG_S_PER_M,
             "spine": _BONE_S_PER_M, "heart": heart}
    table.update({name: _BLOOD_S_PER_M for name in lab.BLOOD_POOLS + lab.VESSEL_LUMENS})
    table.update({name: heart for name in lab.CHAMBER_WALLS + lab.VALVES})
    table.update({name: _TORSO_S_PER_M for name in lab.VESSEL_WALLS})
    return table


def _key(key: str | int) -> int:
    if isinstance(key, (int, np.integer)):
        lab.name(int(key))  # validates
        return int(key)
    if isinstance(key, str):
        return lab.label(key)
    raise UnknownLabelError(f"conductivity keys must be label names or integers, got {key!r}")


def conductivity_table(
    overrides: Mapping[str | int, float] | None = None,
    myocardium: MyocardialConductivity = CLERC_1976,
    *,
    defaults: bool = True,
) -> dict[int, float]:
    """{label integer: S/m}: the defaults (unless ``defaults=False``) updated with ``overrides``
    (keys: label names or integers). Values must be finite and positive."""
    table: dict[int, float] = {}
    if defaults:
        table.update({lab.label(k): v for k, v in default_conductivities(myocardium).items()})
    for key, value in (overrides or {}).items():
        tag = _key(key)
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise InvalidParameterError(f"conductivity of {key!r} must be a number (S/m), got {value!r}") from None
        if not (math.isfinite(v) and 0.0 < v <= 100.0):
            raise InvalidParameterError(
                f"conductivity of {key!r} must be positive and at most 100 S/m, got {value!r}; remove "
                "non-conducting regions from the mesh instead of giving them zero conductivity"
            )
        table[tag] = v
    return table


def region_conductivity(tags: np.ndarray, table: Mapping[int, float] | None = None) -> np.ndarray:
    """Per-cell conductivity (m,) in S/m from region tags (m,) and a {label: S/m} table
    (:func:`conductivity_table`; default: the defaults). Raises :class:`InvalidParameterError`
    naming every region present in ``tags`` that the table lacks."""
    table = conductivity_table() if table is None else {_key(k): float(v) for k, v in table.items()}
    t = np.asarray(tags)
    if t.ndim != 1 or not np.issubdtype(t.dtype, np.integer):
        raise InvalidFieldError(f"tags must be a 1-D integer array (one label per cell), got {t.dtype} {t.shape}")
    present = np.unique(t)
    missing = [int(v) for v in present if int(v) not in table]
    if missing:
        names = [lab.NAMES.get(v, f"unknown label {v}") for v in missing]
        raise InvalidParameterError(
            f"no conductivity for region(s) {dict(zip(missing, names))} of the mesh "
            f"({int(np.isin(t, missing).sum())} cells); give one, e.g. conductivities={{'{names[0]}': 0.2}} "
            "(S/m), or remove those cells"
        )
    bad = {k: v for k, v in table.items() if not (math.isfinite(v) and v > 0)}
    if bad:
        raise InvalidParameterError(f"conductivities must be positive and finite (S/m), got {bad}")
    lut = np.zeros(int(max(present.max(), 0)) + 1)
    for v in present:
        lut[int(v)] = table[int(v)]
    return lut[t]


def _unit_rows(v: np.ndarray, what: str, rows: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=1)
    bad = ~np.isfinite(norm) | (norm < 1e-9)
    if bad.any():
        raise InvalidFieldError(
            f"{int(bad.sum())} myocardial cells have a zero or NaN {what} direction (e.g. cell "
            f"{int(rows[np.flatnonzero(bad)[0]])}); recompute the fibres"
        )
    return v / norm[:, None]


def _cell_field(mesh: TetMesh, key: str) -> np.ndarray | None:
    """A 3-vector field per cell: the cell field ``key``, else the point field averaged over each cell."""
    if key in mesh.cell_data:
        arr = np.asarray(mesh.cell_data[key], dtype=np.float64)
    elif key in mesh.point_data:
        pts = np.asarray(mesh.point_data[key], dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise InvalidFieldError(f"point field {key!r} must be (n, 3) directions, got {pts.shape}")
        # fibres are axial (f ~ -f): align each cell's vertex directions with its first before averaging
        v = pts[mesh.cells]
        sign = np.sign(np.einsum("mkd,md->mk", v, v[:, 0]))
        sign[sign == 0] = 1.0
        arr = (v * sign[..., None]).sum(axis=1)
    else:
        return None
    if arr.shape != (mesh.n_cells, 3):
        raise InvalidFieldError(f"cell field {key!r} must be (m, 3) directions, got {arr.shape}")
    return arr


def intracellular_conductivity(
    mesh: TetMesh,
    myocardium: MyocardialConductivity = CLERC_1976,
    *,
    fibre_key: str = "fibre",
    sheet_key: str = "sheet",
) -> tuple[np.ndarray, np.ndarray, str]:
    """The intracellular conductivity of a heart mesh: (cells, sigma_i, kind).

    ``cells``: indices of the cells with an intracellular domain (tags in
    :data:`INTRACELLULAR_REGIONS`, less the atrial cells of the insulated atrioventricular junction,
    :func:`insulated_junction`); ``sigma_i``: their tensors (k, 3, 3) in S/m; ``kind``:
    "transversely isotropic (fibre)" when the mesh has a ``fibre`` cell (or point) field,
    "isotropic fallback (no fibres)" otherwise (sigma = (sigma_il sigma_it^2)^(1/3) I). The sheet
    field, if present, is ignored: the data above are transversely isotropic.
    """
    if not isinstance(mesh, TetMesh):
        raise InvalidParameterError(f"mesh must be a TetMesh, got {type(mesh).__name__}")
    if not isinstance(myocardium, MyocardialConductivity):
        raise InvalidParameterError(f"myocardium must be a MyocardialConductivity, got {type(myocardium).__name__}")
    cells = np.flatnonzero(np.isin(mesh.tags, lab.labels_of(INTRACELLULAR_REGIONS)) & ~insulated_junction(mesh))
    if cells.size == 0:
        present = sorted({lab.name(t) for t in np.unique(mesh.tags)})
        raise InvalidFieldError(
            f"the heart mesh has no myocardium (regions {list(INTRACELLULAR_REGIONS)}); it has {present}. "
            "The ECG source needs cells with an intracellular domain"
        )
    fibre = _cell_field(mesh, fibre_key)
    if fibre is None:
        s = myocardium.intracellular_isotropic
        sigma = np.broadcast_to(s * np.eye(3), (cells.size, 3, 3)).copy()
        return cells, sigma, "isotropic fallback (no fibres)"
    f = _unit_rows(fibre[cells], "fibre", cells)
    sl, st = myocardium.sigma_il, myocardium.sigma_it
    sigma = st * np.eye(3)[None] + (sl - st) * f[:, :, None] * f[:, None, :]
    return cells, sigma, "transversely isotropic (fibre)"
