"""Tetrahedral meshing engine: Kuhn lattices, newest-vertex bisection, smoothing, quality."""

from cardiotwin.meshing.lattice import box_mesh, kuhn_lattice

__all__ = ["box_mesh", "kuhn_lattice"]
