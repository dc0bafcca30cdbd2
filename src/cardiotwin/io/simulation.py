"""Files of one simulated beat: the heart mesh with its activation/repolarisation fields, and a summary."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cardiotwin import fields as F
from cardiotwin.io.atomic import write_json_atomic
from cardiotwin.io.mesh import write_mesh
from cardiotwin.twin import Simulation, Twin


def write_simulation(twin: Twin, sim: Simulation, out_dir: str | os.PathLike) -> dict[str, Path]:
    """``heart_ep.vtu`` (mesh with activation/repolarisation/APD fields) and ``ep_summary.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fields = {k: np.where(np.isfinite(v), v, np.nan) for k, v in sim.as_fields().items()}
    paths = {"mesh": write_mesh(twin.heart.with_fields(point_data=fields), out / F.HEART_EP),
             "summary": write_json_atomic(out / F.EP_SUMMARY, {"summary": sim.summary,
                                                                     "params": sim.params.as_dict()})}
    return paths
