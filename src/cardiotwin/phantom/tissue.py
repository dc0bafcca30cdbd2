"""Tissue classes of the phantom: what gives each voxel its CT or MR intensity.

Labels say which structure a voxel belongs to; tissue says what it is made of (the torso label
holds fat, muscle, bone and liver; blood is arterial or venous depending on the chamber).
"""

from __future__ import annotations

from enum import IntEnum


class Tissue(IntEnum):
    AIR = 0
    FAT = 1
    MUSCLE = 2
    BONE = 3
    LUNG = 4
    LIVER = 5
    MYOCARDIUM = 6
    ARTERIAL_BLOOD = 7
    VENOUS_BLOOD = 8
    VESSEL_WALL = 9
    VALVE = 10
    MARROW = 11
    IVC_BLOOD = 12
