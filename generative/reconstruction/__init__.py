"""3D reconstruction and neural fields: hash-grid and simplex field encodings (P40)."""
from generative.reconstruction.fields import (
    LATTICES, PRIMES, apply_field, cube_vertices, encode, hash_grid_encode, hash_index, init_field, init_tables,
    level_resolutions, param_count, simplex_encode, simplex_vertices, skew, vertices_touched,
)

__all__ = [
    "LATTICES", "PRIMES", "apply_field", "cube_vertices", "encode", "hash_grid_encode", "hash_index", "init_field",
    "init_tables", "level_resolutions", "param_count", "simplex_encode", "simplex_vertices", "skew",
    "vertices_touched",
]
