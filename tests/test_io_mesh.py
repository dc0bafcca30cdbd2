import numpy as np
import pytest

from cardiotwin.errors import CorruptFileError, InputFileNotFoundError, InvalidMeshError
from cardiotwin.io import read_mesh, read_opencarp, read_vtx, write_mesh, write_opencarp
from cardiotwin.types import TetMesh
from test_types import cube_mesh


def block_mesh(n: int = 4) -> TetMesh:
    """n^3 cubes of 6 tets each, two regions, with point and cell fields."""
    pts0, cells0 = cube_mesh()
    g = np.arange(n + 1)
    ijk = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    index = {tuple(p): i for i, p in enumerate(ijk)}
    cells = []
    for c in np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3):
        local = [index[tuple(c + p.astype(int))] for p in pts0]
        cells.append(np.asarray(local)[cells0])
    cells = np.vstack(cells)
    pts = ijk * 1.5 + np.array([10.0, -4.0, 2.0])
    tags = np.where(pts[cells].mean(1)[:, 0] < pts[:, 0].mean(), 20, 21)
    fibre = np.tile([1.0, 0.0, 0.0], (len(cells), 1))
    sheet = np.tile([0.0, 1.0, 0.0], (len(cells), 1))
    return TetMesh(pts, cells, tags, point_data={"phi": pts[:, 2] / 6.0, "grad": np.tile([0, 0, 1.0], (len(pts), 1))},
                   cell_data={"fibre": fibre, "sheet": sheet})


def test_vtu_roundtrip_keeps_all_fields(tmp_path):
    mesh = block_mesh()
    back = read_mesh(write_mesh(mesh, tmp_path / "heart.vtu"))
    np.testing.assert_allclose(back.points, mesh.points)
    np.testing.assert_array_equal(back.cells, mesh.cells)
    np.testing.assert_array_equal(back.tags, mesh.tags)
    assert set(back.point_data) == {"phi", "grad"} and set(back.cell_data) == {"fibre", "sheet"}
    np.testing.assert_allclose(back.point_data["grad"], mesh.point_data["grad"])
    np.testing.assert_allclose(back.cell_data["sheet"], mesh.cell_data["sheet"])


def test_opencarp_roundtrip_in_micrometres(tmp_path):
    mesh = block_mesh()
    apex = np.array([0, 5, 7])
    files = write_opencarp(mesh, tmp_path / "heart", vertex_sets={"apex": apex})
    assert {f.name for f in files} == {"heart.pts", "heart.elem", "heart.lon", "heart_apex.vtx"}
    first = (tmp_path / "heart.pts").read_text().splitlines()
    assert first[0] == str(mesh.n_points)
    np.testing.assert_allclose(np.array(first[1].split(), float), mesh.points[0] * 1000.0)
    assert (tmp_path / "heart.elem").read_text().splitlines()[1].startswith("Tt ")
    assert (tmp_path / "heart.lon").read_text().splitlines()[0] == "2"
    back = read_opencarp(tmp_path / "heart")
    np.testing.assert_allclose(back.points, mesh.points, atol=1e-6)
    np.testing.assert_array_equal(back.cells, mesh.cells)
    np.testing.assert_array_equal(back.tags, mesh.tags)
    np.testing.assert_allclose(back.cell_data["fibre"], mesh.cell_data["fibre"])
    np.testing.assert_allclose(back.cell_data["sheet"], mesh.cell_data["sheet"])
    np.testing.assert_array_equal(read_vtx(tmp_path / "heart_apex.vtx"), apex)
    with pytest.raises(InvalidMeshError, match="outside"):
        write_opencarp(mesh, tmp_path / "bad", vertex_sets={"x": [10**6]})


def test_opencarp_errors(tmp_path):
    mesh = block_mesh(2)
    write_opencarp(mesh, tmp_path / "m")
    with pytest.raises(InputFileNotFoundError):
        read_opencarp(tmp_path / "missing")
    lines = (tmp_path / "m.elem").read_text().splitlines()
    (tmp_path / "m.elem").write_text("\n".join(lines[:-3]) + "\n")
    with pytest.raises(CorruptFileError, match="header says"):
        read_opencarp(tmp_path / "m")
    (tmp_path / "m.elem").write_text("\n".join(lines[:-1] + ["Tr 0 1 2 20"]) + "\n")
    with pytest.raises(InvalidMeshError, match="only tetrahedra"):
        read_opencarp(tmp_path / "m")


def test_inverted_mesh_file_is_rejected_or_repaired(tmp_path):
    import meshio

    mesh = block_mesh(2)
    meshio.Mesh(mesh.points, [("tetra", mesh.cells[:, [0, 1, 3, 2]])]).write(tmp_path / "inv.vtu")
    with pytest.raises(InvalidMeshError, match="inverted"):
        read_mesh(tmp_path / "inv.vtu")
    fixed = read_mesh(tmp_path / "inv.vtu", reorient=True)
    assert (fixed.cell_volumes() > 0).all()
    (tmp_path / "broken.vtu").write_text("<VTKFile> truncated")
    with pytest.raises(CorruptFileError, match="cannot read mesh"):
        read_mesh(tmp_path / "broken.vtu")


def test_real_lv_mesh_with_fibres(shared_data, tmp_path):
    path = shared_data / "mesh_rodero01_lv_fibres" / "heart_model.vtu"
    lv = read_mesh(path, tag_map={1: 20})  # part-id 1 = left ventricle -> lv_myocardium
    assert lv.n_cells == 24206 and lv.n_points == 5442
    assert set(np.unique(lv.tags)) == {20}
    fibre = lv.cell_data["fiber"]
    np.testing.assert_allclose(np.linalg.norm(fibre, axis=1), 1.0, atol=1e-3)
    assert 50 < lv.region_volumes_ml()["lv_myocardium"] < 400  # a human LV myocardium
    write_opencarp(lv, tmp_path / "lv", fibre_field="fiber", sheet_field="sheet")
    back = read_opencarp(tmp_path / "lv")
    np.testing.assert_allclose(back.cell_data["fibre"], fibre, atol=1e-6)
    np.testing.assert_allclose(back.points, lv.points, atol=1e-3)
