"""The one label convention of cardiotwin: structure names ⇄ integers.

Every label map, mesh region tag and report in the project uses these integers. Values are grouped
by tens (0-9 body, 10-19 blood pools, 20-29 chamber walls, 30-39 vessels, 40-49 valve planes) so a
tag read in ParaView or an openCARP ``.elem`` file can be recognised at a glance. ``heart`` is the
whole-heart tissue where walls are not told apart (coarse torso meshes, TotalSegmentator's "heart").

TotalSegmentator (Wasserthal et al. 2023, Radiol Artif Intell 5:e230024) class names map into the
convention with :data:`TOTALSEGMENTATOR_TO_CARDIOTWIN`, covering its ``total`` task (v1 and v2
names), ``heartchambers_highres`` and ``body`` tasks.
"""

from __future__ import annotations

from typing import Iterable

from cardiotwin.errors import UnknownLabelError

LABELS: dict[str, int] = {
    "background": 0,
    "torso": 1,
    "lung_left": 2,
    "lung_right": 3,
    "spine": 4,
    "heart": 5,
    "lv_blood": 10,
    "rv_blood": 11,
    "la_blood": 12,
    "ra_blood": 13,
    "lv_myocardium": 20,
    "rv_myocardium": 21,
    "la_wall": 22,
    "ra_wall": 23,
    "aorta": 30,
    "pulmonary_artery": 31,
    "superior_vena_cava": 32,
    "inferior_vena_cava": 33,
    "pulmonary_veins": 34,
    "aorta_wall": 35,
    "pulmonary_artery_wall": 36,
    "mitral_valve": 40,
    "tricuspid_valve": 41,
    "aortic_valve": 42,
    "pulmonary_valve": 43,
}

NAMES: dict[int, str] = {value: name for name, value in LABELS.items()}

BLOOD_POOLS = ("lv_blood", "rv_blood", "la_blood", "ra_blood")
VENTRICULAR_WALLS = ("lv_myocardium", "rv_myocardium")
ATRIAL_WALLS = ("la_wall", "ra_wall")
CHAMBER_WALLS = VENTRICULAR_WALLS + ATRIAL_WALLS
VESSEL_LUMENS = ("aorta", "pulmonary_artery", "superior_vena_cava", "inferior_vena_cava", "pulmonary_veins")
VESSEL_WALLS = ("aorta_wall", "pulmonary_artery_wall")
VALVES = ("mitral_valve", "tricuspid_valve", "aortic_valve", "pulmonary_valve")
LUNGS = ("lung_left", "lung_right")
BODY = ("torso", "lung_left", "lung_right", "spine")
"""The body around the heart (what a CT shows beyond it, or an extended torso supplies)."""
HEART = BLOOD_POOLS + CHAMBER_WALLS + VALVES
"""The structures that make up the four-chamber heart (myocardium, blood and valve planes)."""

TOTALSEGMENTATOR_TO_CARDIOTWIN: dict[str, str] = {
    # task "total", v2 names
    "heart": "heart",
    "heart_myocardium": "lv_myocardium",
    "heart_atrium_left": "la_blood",
    "heart_ventricle_left": "lv_blood",
    "heart_atrium_right": "ra_blood",
    "heart_ventricle_right": "rv_blood",
    "atrial_appendage_left": "la_blood",
    "aorta": "aorta",
    "pulmonary_artery": "pulmonary_artery",
    "pulmonary_vein": "pulmonary_veins",
    "superior_vena_cava": "superior_vena_cava",
    "inferior_vena_cava": "inferior_vena_cava",
    "lung_upper_lobe_left": "lung_left",
    "lung_lower_lobe_left": "lung_left",
    "lung_upper_lobe_right": "lung_right",
    "lung_middle_lobe_right": "lung_right",
    "lung_lower_lobe_right": "lung_right",
    "lung_left": "lung_left",
    "lung_right": "lung_right",
    # task "heartchambers_highres"
    "myocardium": "lv_myocardium",
    "atrium_left": "la_blood",
    "ventricle_left": "lv_blood",
    "atrium_right": "ra_blood",
    "ventricle_right": "rv_blood",
    # task "body"
    "body": "torso",
    "body_trunc": "torso",
    # spine (task "total": vertebrae_C1 ... vertebrae_S1 are all mapped by prefix, see below)
    "spinal_cord": "spine",
    "sacrum": "spine",
}


def label(name: str) -> int:
    """Integer of a structure name; raises :class:`UnknownLabelError` listing valid names."""
    try:
        return LABELS[name]
    except KeyError:
        raise UnknownLabelError(
            f"unknown label name {name!r}; valid names are: {', '.join(LABELS)}"
        ) from None


def name(value: int) -> str:
    """Structure name of a label integer; raises :class:`UnknownLabelError`."""
    try:
        return NAMES[int(value)]
    except KeyError:
        raise UnknownLabelError(
            f"unknown label value {value}; cardiotwin labels are {sorted(NAMES)} "
            "(see cardiotwin.labels.LABELS)"
        ) from None


def labels_of(names: Iterable[str]) -> list[int]:
    """Integers of several structure names (validated)."""
    return [label(n) for n in names]


def check_values(values: Iterable[int]) -> None:
    """Raise :class:`UnknownLabelError` if any integer is outside the convention."""
    unknown = sorted({int(v) for v in values} - set(NAMES))
    if unknown:
        raise UnknownLabelError(
            f"label map contains values {unknown} that are not cardiotwin labels; "
            "map them first (e.g. cardiotwin.io.totalsegmentator for TotalSegmentator output)"
        )


def from_totalsegmentator(class_name: str) -> str:
    """cardiotwin name for a TotalSegmentator class name (``vertebrae_*`` map to ``spine``)."""
    if class_name.startswith("vertebrae_"):
        return "spine"
    try:
        return TOTALSEGMENTATOR_TO_CARDIOTWIN[class_name]
    except KeyError:
        raise UnknownLabelError(
            f"TotalSegmentator class {class_name!r} has no cardiotwin equivalent; known classes: "
            f"{', '.join(sorted(TOTALSEGMENTATOR_TO_CARDIOTWIN))}, vertebrae_*"
        ) from None
