"""Test geometries shared by the coordinate and fibre tests (cached: pytest runs them in one process).

* an LV ellipsoid: the myocardium between two confocal prolate spheroids (foci at z = +-FOCUS),
  truncated at the equatorial plane z = 0 and closed there by a mitral-valve plate, built from a
  label map with the heart mesher (Kuhn lattice + smoothing). Between confocal spheroids the
  transmural Laplace solution is known exactly: u(mu) = log tanh(mu / 2) normalised (a function of
  the spheroidal coordinate mu alone, harmonic, with zero flux through the plane z = 0), and the
  wall normal is grad mu;
* the synthetic patient (phantom) at 1.5 mm with its four-chamber mesh.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from cardiotwin import labels as lab
from cardiotwin.anatomy.mesh import heart_mesh
from cardiotwin.types import LabelImage

FOCUS = 30.0
MU_ENDO, MU_EPI = 0.55, 0.85
ELLIPSOID_EDGE_MM = 1.5


def spheroidal_mu(points: np.ndarray) -> np.ndarray:
    """Prolate spheroidal coordinate mu of points (foci on the z axis at +-FOCUS)."""
    r1 = np.linalg.norm(points - [0.0, 0.0, FOCUS], axis=1)
    r2 = np.linalg.norm(points - [0.0, 0.0, -FOCUS], axis=1)
    return np.arccosh(np.maximum((r1 + r2) / (2 * FOCUS), 1.0))


def spheroid_normal(points: np.ndarray) -> np.ndarray:
    """Unit outward normal of the confocal spheroid through each point (the direction of grad mu)."""
    mu = spheroidal_mu(points)
    n = points / np.stack([np.sinh(mu) ** 2, np.sinh(mu) ** 2, np.cosh(mu) ** 2], axis=1)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def exact_transmural(points: np.ndarray) -> np.ndarray:
    g = lambda mu: np.log(np.tanh(mu / 2.0))  # noqa: E731
    return (g(spheroidal_mu(points)) - g(MU_ENDO)) / (g(MU_EPI) - g(MU_ENDO))


def ellipsoid_labels(cavity_label: str = "lv_blood", spacing: float = 1.0) -> LabelImage:
    a_epi, c_epi = FOCUS * np.sinh(MU_EPI), FOCUS * np.cosh(MU_EPI)
    lo = np.array([-a_epi - 4, -a_epi - 4, -c_epi - 4])
    hi = np.array([a_epi + 4, a_epi + 4, 6.0])
    shape = np.ceil((hi - lo) / spacing).astype(int)
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1).reshape(-1, 3)
    x = lo + idx * spacing
    mu = spheroidal_mu(x)
    arr = np.zeros(len(x), dtype=np.int16)
    below = x[:, 2] <= 0.0
    arr[below & (mu <= MU_EPI)] = lab.label("lv_myocardium")
    if cavity_label:
        arr[below & (mu < MU_ENDO)] = lab.label(cavity_label)
    arr[(x[:, 2] > 0.0) & (x[:, 2] <= 2.0) & (mu <= MU_EPI)] = lab.label("mitral_valve")
    return LabelImage(arr.reshape(tuple(shape)), (spacing,) * 3, tuple(lo))


@lru_cache(maxsize=2)
def lv_ellipsoid(cavity_label: str = "lv_blood"):
    """(labels, mesh, landmarks) of the truncated LV ellipsoid."""
    labels = ellipsoid_labels(cavity_label)
    mesh = heart_mesh(labels, edge_mm=ELLIPSOID_EDGE_MM, regions=("lv_myocardium", "mitral_valve")).mesh
    landmarks = {
        "lv_apex_epicardium": [0.0, 0.0, -FOCUS * np.cosh(MU_EPI)],
        "lv_long_axis": [0.0, 0.0, 1.0],
        "septal_point": [FOCUS * np.sinh(0.7), 0.0, -15.0],
    }
    return labels, mesh, landmarks


@lru_cache(maxsize=1)
def phantom_heart():
    """(labels, four-chamber mesh, landmarks) of phantom seed 0 at 1.5 mm."""
    from cardiotwin.anatomy.landmarks import find_landmarks
    from conftest import phantom

    labels = phantom(0, 1.5).labels
    mesh = heart_mesh(labels, edge_mm=1.5).mesh
    return labels, mesh, find_landmarks(labels)


@lru_cache(maxsize=1)
def phantom_with_fibres():
    """The phantom mesh with all coordinates and fibres, and the report."""
    from cardiotwin.anatomy.fibres import add_coordinates_and_fibres

    labels, mesh, landmarks = phantom_heart()
    report: dict = {}
    return add_coordinates_and_fibres(mesh, labels, landmarks, keep_laplace=True, report=report), report
