"""The emulator's simulated training population, cached on disk by its fingerprint."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cardiotwin.calibration.emulator import population_key, simulate_population
from cardiotwin.electrophysiology.parameters import EpParameters
from cardiotwin.io.arrays import read_npz, write_npz


def cached_population(model, n: int, seed: int, cache_dir: str | os.PathLike,
                      base: EpParameters | None = None) -> dict[str, np.ndarray]:
    """:func:`~cardiotwin.calibration.emulator.simulate_population`, read from
    ``cache_dir/population-<key>.npz`` when that population was drawn before, else drawn and written."""
    path = Path(cache_dir) / f"population-{population_key(model, n, seed, base)}.npz"
    if path.exists():
        return read_npz(path)
    data = simulate_population(model, n, seed, base=base)
    write_npz(path, **data)
    return data
