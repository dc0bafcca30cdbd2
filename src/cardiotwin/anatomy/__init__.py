"""Anatomical twin: walls and valves, landmarks, meshes, coordinates and fibres."""
