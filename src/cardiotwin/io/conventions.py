"""Label conventions of the common cardiac segmentations, recognised and converted to cardiotwin's.

A label map read by :func:`cardiotwin.io.read_labels` may use any of these integer conventions:

* ``cardiotwin`` — :data:`cardiotwin.labels.LABELS` itself.
* ``mmwhs`` — the MM-WHS 2017 challenge codes (Zhuang et al., Med Image Anal 58:101537, 2019):
  205 LV myocardium, 420 LA blood, 500 LV blood, 550 RA blood, 600 RV blood, 820 ascending aorta,
  850 pulmonary artery (421 LA appendage in some releases).
* ``mmwhs7`` — the same seven classes renumbered 1-7 (1 myocardium, 2 LA, 3 LV, 4 RA, 5 RV,
  6 aorta, 7 pulmonary artery): the multi-label output of TotalSegmentator's
  ``heartchambers_highres`` task uses exactly this order, so it is recognised under both names.
* ``totalsegmentator_v1`` — the multi-label file of TotalSegmentator's ``total`` task, v1 class
  indices (Wasserthal et al. 2023, Radiol Artif Intell 5:e230024): 44-48 heart myocardium and
  chambers, 49 pulmonary artery, 7 aorta, 8 inferior vena cava, 13-17 lung lobes, 18-41 vertebrae.
  Its other organs are not used by the twin and become background.
* ``acdc`` — the ACDC cine-MRI challenge (Bernard et al., IEEE TMI 37:2514, 2018): 1 RV blood,
  2 LV myocardium, 3 LV blood.

A folder of per-class masks (TotalSegmentator's default output, ``total`` v2 or
``heartchambers_highres`` file names) is read by :func:`cardiotwin.io.read_totalsegmentator`.

Detection (:func:`detect_convention`): a convention is a candidate when every value of the map is
one of its codes and at least one of them is a heart class. One candidate wins; among several, the
only one whose classes are all present wins (an ACDC map {1, 2, 3} is also a partial 1-7 map);
anything else is ambiguous and the error names the candidates and ``--label-convention``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cardiotwin import labels as lab
from cardiotwin.errors import UnknownLabelError

_HEART_NAMES = set(lab.HEART) | {"heart", "aorta", "pulmonary_artery"}


@dataclass(frozen=True)
class LabelConvention:
    """An integer convention: ``codes`` maps each integer to a cardiotwin name (``background``
    for classes the twin does not use)."""

    name: str
    description: str
    codes: dict[int, str]

    @property
    def heart_codes(self) -> frozenset[int]:
        return frozenset(c for c, n in self.codes.items() if n in _HEART_NAMES)

    def lookup(self) -> np.ndarray:
        """Table ``code -> cardiotwin integer`` (codes not in the convention map to -1)."""
        table = np.full(max(self.codes) + 1, -1, dtype=np.int16)
        table[0] = 0
        for code, name in self.codes.items():
            table[code] = lab.label(name)
        return table


_MMWHS_CLASSES = ("lv_myocardium", "la_blood", "lv_blood", "ra_blood", "rv_blood", "aorta", "pulmonary_artery")
_TS_V1: dict[int, str] = {7: "aorta", 8: "inferior_vena_cava", 13: "lung_left", 14: "lung_left",
                          15: "lung_right", 16: "lung_right", 17: "lung_right",
                          **{k: "spine" for k in range(18, 42)},
                          44: "lv_myocardium", 45: "la_blood", 46: "lv_blood", 47: "ra_blood", 48: "rv_blood",
                          49: "pulmonary_artery"}

CONVENTIONS: dict[str, LabelConvention] = {c.name: c for c in (
    LabelConvention("cardiotwin", "cardiotwin's own labels (cardiotwin.labels.LABELS)",
                    {v: n for n, v in lab.LABELS.items() if v}),
    LabelConvention("mmwhs", "MM-WHS 2017 codes (205 myocardium, 420 LA, 500 LV, 550 RA, 600 RV, 820 aorta, "
                    "850 pulmonary artery; 421 LA appendage)",
                    {**dict(zip((205, 420, 500, 550, 600, 820, 850), _MMWHS_CLASSES)), 421: "la_blood"}),
    LabelConvention("mmwhs7", "MM-WHS classes renumbered 1-7 = TotalSegmentator heartchambers_highres multi-label "
                    "(1 myocardium, 2 LA, 3 LV, 4 RA, 5 RV, 6 aorta, 7 pulmonary artery)",
                    dict(zip(range(1, 8), _MMWHS_CLASSES))),
    LabelConvention("totalsegmentator_v1", "TotalSegmentator 'total' v1 multi-label (44-48 heart, 49 pulmonary "
                    "artery, 7 aorta, 8 IVC, 13-17 lungs, 18-41 vertebrae; other organs -> background)",
                    {k: _TS_V1.get(k, "background") for k in range(1, 105)}),
    LabelConvention("acdc", "ACDC cine MRI (1 RV blood, 2 LV myocardium, 3 LV blood)",
                    {1: "rv_blood", 2: "lv_myocardium", 3: "lv_blood"}),
)}
ALIASES = {"heartchambers_highres": "mmwhs7", "mm-whs": "mmwhs", "totalsegmentator": "totalsegmentator_v1"}


def convention(name: str) -> LabelConvention:
    """A convention by name (or alias); raises :class:`UnknownLabelError` listing the valid ones."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in CONVENTIONS:
        raise UnknownLabelError(f"unknown label convention {name!r}; choose one of "
                                f"{', '.join([*CONVENTIONS, *ALIASES])}")
    return CONVENTIONS[key]


def detect_convention(values) -> LabelConvention:
    """The convention of a label map from the set of its values (see the module docstring)."""
    present = {int(v) for v in values} - {0}
    if not present:  # all background reads the same in every convention; the anatomy checks reject it
        return CONVENTIONS["cardiotwin"]
    candidates = [c for c in CONVENTIONS.values() if present <= set(c.codes) and present & c.heart_codes]
    if len(candidates) > 1:
        complete = [c for c in candidates if set(c.codes) <= present or c.heart_codes <= present]
        candidates = complete if len(complete) == 1 else candidates
    if len(candidates) == 1:
        return candidates[0]
    shown = sorted(present)[:20]
    if not candidates:
        raise UnknownLabelError(
            f"label values {shown} match no known convention ({', '.join(CONVENTIONS)}); map them to "
            "cardiotwin.labels.LABELS yourself, or name the convention with --label-convention")
    raise UnknownLabelError(
        f"label values {shown} fit several conventions: {', '.join(c.name for c in candidates)}; "
        "name the right one with --label-convention (Python: read_labels(..., convention=NAME))")


def to_cardiotwin(array: np.ndarray, conv: LabelConvention) -> np.ndarray:
    """The label array in cardiotwin integers; raises if it holds codes outside ``conv``."""
    values = np.unique(array)
    table = conv.lookup()
    bad = [int(v) for v in values if v < 0 or v >= len(table) or table[v] < 0]
    if bad:
        raise UnknownLabelError(f"label values {bad[:20]} are not codes of the {conv.name} convention "
                                f"({conv.description})")
    return table[array].astype(np.int16)
