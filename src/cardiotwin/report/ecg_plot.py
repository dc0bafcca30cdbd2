"""The standard 12-lead layout on ECG paper: 25 mm/s, 10 mm/mV, 1 mm and 5 mm grid.

Four columns of three leads (I, II, III | aVR, aVL, aVF | V1-V3 | V4-V6), each column showing its
quarter of the record, as printed by clinical electrocardiographs; optionally a second ECG (e.g. the
simulated one) overlaid in another colour.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cardiotwin.io.atomic import atomic_path
from cardiotwin.types import Ecg

LAYOUT = (("I", "II", "III"), ("aVR", "aVL", "aVF"), ("V1", "V2", "V3"), ("V4", "V5", "V6"))
MM_PER_MS = 25.0 / 1000.0
MM_PER_MV = 10.0


def plot_12_lead(ecg: Ecg, path: str | os.PathLike, overlay: Ecg | None = None, title: str = "",
                 labels: tuple[str, str] = ("ECG", "overlay")) -> Path:
    """Write a PNG of the 12 leads in the standard 3 x 4 layout on ECG paper (each panel shows the
    first 2.5 s, or the whole record when shorter, e.g. one median or simulated beat)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ecg = ecg.twelve_lead()
    other = overlay.twelve_lead() if overlay is not None else None
    span_ms = min(ecg.duration_ms, 2500.0)
    panel_mm, gap_mm, row_mm, rows = span_ms * MM_PER_MS, 5.0, 30.0, 3
    width_mm = 4 * panel_mm + 3 * gap_mm
    scale = max(1.0, 160.0 / width_mm)  # small records are drawn larger, grid kept in mm units
    fig, ax = plt.subplots(figsize=(width_mm * scale / 25.4, (rows * row_mm * scale) / 25.4 + 0.5))
    for col in range(4):
        x0 = col * (panel_mm + gap_mm)
        for x in np.arange(0, panel_mm + 1e-9, 1.0):
            major = round(x) % 5 == 0
            ax.plot([x0 + x] * 2, [0, rows * row_mm], color="#e58f8f" if major else "#f6d0d0", lw=0.6 if major else 0.3, zorder=0)
        for y in np.arange(0, rows * row_mm + 1e-9, 1.0):
            major = round(y) % 5 == 0
            ax.plot([x0, x0 + panel_mm], [y] * 2, color="#e58f8f" if major else "#f6d0d0", lw=0.6 if major else 0.3, zorder=0)
        for row, lead in enumerate(LAYOUT[col]):
            baseline = (rows - row - 0.5) * row_mm
            for sig, colour in ((ecg, "black"), (other, "#1f5fbf")):
                if sig is None:
                    continue
                keep = sig.time_ms < span_ms
                ax.plot(x0 + sig.time_ms[keep] * MM_PER_MS, baseline + sig.lead(lead)[keep] * MM_PER_MV,
                        color=colour, lw=0.9)
            ax.text(x0 + 0.5, baseline + 10.0, lead, fontsize=8, fontweight="bold")
    ax.set_xlim(-1, width_mm + 1)
    ax.set_ylim(0, rows * row_mm)
    ax.set_aspect("equal")
    ax.axis("off")
    caption = f"25 mm/s, 10 mm/mV, {ecg.fs:g} Hz"
    if overlay is not None:
        caption += f"; black: {labels[0]}, blue: {labels[1]}"
    ax.set_title(f"{title}\n{caption}" if title else caption, fontsize=9)
    fig.tight_layout()
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)
    return target
