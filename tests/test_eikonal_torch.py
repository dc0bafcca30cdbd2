"""The batched PyTorch eikonal reaches the same fixed point as the Numba plain solver (CPU run)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch not installed (optional: pip install torch==2.13.0)")

from cardiotwin.electrophysiology.eikonal import EikonalSolver  # noqa: E402
from cardiotwin.electrophysiology.eikonal_torch import TorchEikonal  # noqa: E402
from cardiotwin.meshing import kuhn_lattice  # noqa: E402
from cardiotwin.types import TetMesh  # noqa: E402


def test_torch_batch_matches_numba_plain_solver():
    p, c, _ = kuhn_lattice(np.ones((10, 8, 6), bool), (1.0, 1.0, 1.0))
    z = p[c].mean(1)[:, 2]
    angle = np.radians(60 - 120 * z / 6)  # fibres rotating through the slab
    fibres = np.stack([np.cos(angle), np.sin(angle), 0 * angle], 1)
    regions = (z < 1.5).astype(int)  # a fast isotropic layer at the bottom
    vel = np.array([[[0.6, 0.2], [1.5, 1.5]], [[0.45, 0.25], [1.0, 1.0]]])
    sources = [np.array([0, 200]), np.array([300])]
    starts = [np.array([0.0, 4.0]), np.array([0.0])]
    numba = EikonalSolver(TetMesh(p, c), factored=False)
    ref = np.stack([numba.solve(fibres, np.c_[v, v[:, 1:]], s, t, regions=regions)
                    for v, s, t in zip(vel, sources, starts)])
    out, sweeps = TorchEikonal(p, c, fibres, regions, device="cpu", dtype=torch.float64).solve_batch(
        vel, sources, starts, tol=1e-9)
    # both stop at tol-sized residual changes (1e-4 ms for Numba): same discretisation, same answer
    np.testing.assert_allclose(out, ref, atol=2e-3)
    assert sweeps < 200
