"""Linear (P1) finite elements on tetrahedra: assembly, Dirichlet/Neumann solves with AMG-CG,
gradients, and structured shell/ball meshes for validation."""

from cardiotwin.fem.assembly import (
    anisotropic_tensor,
    assemble_csr,
    check_mesh,
    load_vector,
    lumped_mass,
    mass,
    shape_gradients,
    stiffness,
)
from cardiotwin.fem.gradient import cell_gradients, nodal_gradients
from cardiotwin.fem.shell import BallMesh, ShellMesh, ball_mesh, cubed_sphere_surface, spherical_shell_mesh
from cardiotwin.fem.solve import Solution, Solver, solve_dirichlet, solve_neumann

__all__ = [
    "anisotropic_tensor",
    "assemble_csr",
    "check_mesh",
    "load_vector",
    "lumped_mass",
    "mass",
    "shape_gradients",
    "stiffness",
    "cell_gradients",
    "nodal_gradients",
    "BallMesh",
    "ShellMesh",
    "ball_mesh",
    "cubed_sphere_surface",
    "spherical_shell_mesh",
    "Solution",
    "Solver",
    "solve_dirichlet",
    "solve_neumann",
]
