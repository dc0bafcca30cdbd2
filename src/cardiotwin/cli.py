"""The ``cardiotwin`` command line: a thin layer over the Python API."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cardiotwin.errors import CardiotwinError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="cardiotwin: cardiac digital twins from CT/MRI and the 12-lead ECG.",
)
console = Console()


class Modality(str, Enum):
    ct = "ct"
    mr = "mr"


def _fail(exc: CardiotwinError) -> None:
    console.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(code=2)


def _volume_table(volumes: dict[str, float], title: str) -> Table:
    table = Table(title=title)
    table.add_column("structure")
    table.add_column("volume (ml)", justify="right")
    for name, ml in volumes.items():
        table.add_row(name, f"{ml:.1f}")
    return table


@app.command()
def phantom(
    out: Path = typer.Option(..., "--out", help="output folder"),
    seed: int = typer.Option(0, help="patient number; each seed is a different synthetic patient"),
    spacing: float = typer.Option(1.0, help="isotropic voxel size in mm"),
    modality: Modality = typer.Option(Modality.ct, help="intensity model"),
) -> None:
    """Generate a synthetic patient: image.nii.gz, labels.nii.gz and phantom.json."""
    from cardiotwin.phantom import generate_phantom

    try:
        start = time.perf_counter()
        ph = generate_phantom(seed=seed, spacing=spacing, modality=modality.value)
        paths = ph.write(out)
    except CardiotwinError as exc:
        _fail(exc)
    console.print(_volume_table(ph.volumes_ml(), f"phantom seed {seed} ({modality.value}, {spacing} mm)"))
    console.print(f"grid {ph.image.shape}, {time.perf_counter() - start:.1f} s; wrote "
                  + ", ".join(str(p) for p in paths.values()))


@app.command()
def mesh(
    labels: Path = typer.Option(..., "--labels", help="label map in the cardiotwin convention (NIfTI/NRRD/MHA)"),
    out: Path = typer.Option(..., "--out", help="output folder"),
    image: Path = typer.Option(None, "--image", help="the image the labels come from: checks they share its grid"),
    edge_mm: float = typer.Option(1.0, "--edge-mm", help="heart mesh edge length (lattice cube size) in mm"),
    opencarp: bool = typer.Option(False, "--opencarp", help="also write openCARP .pts/.elem/.lon"),
    torso: bool = typer.Option(True, help="also mesh the torso (when the label map has one)"),
) -> None:
    """Walls, valves, landmarks, a four-chamber heart mesh and a torso mesh from a label map."""
    from cardiotwin.anatomy.build import build_anatomy, write_anatomy
    from cardiotwin.io import read_image, read_labels

    try:
        with console.status("building walls, landmarks and meshes"):
            reference = read_image(image) if image else None
            anatomy = build_anatomy(read_labels(labels, reference=reference), edge_mm=edge_mm, with_torso=torso)
            paths = write_anatomy(anatomy, out, opencarp=opencarp)
    except CardiotwinError as exc:
        _fail(exc)
    _print_mesh_summary(anatomy)
    console.print("wrote " + ", ".join(str(p) for p in paths.values()))


def _print_mesh_summary(anatomy) -> None:
    table = Table(title="meshes")
    for col in ("mesh", "nodes", "tets", "min dihedral", "mean edge (mm)", "time (s)"):
        table.add_column(col, justify="right")
    timings = anatomy.report["timings_s"]
    for name, res, key in (("heart", anatomy.heart, "heart_mesh_s"), ("torso", anatomy.torso, "torso_mesh_s")):
        if res is None:
            continue
        q = res.report["quality"]
        table.add_row(name, str(q["nodes"]), str(q["tets"]), f"{q['dihedral_deg']['min']:.1f}",
                      f"{q['edge_mm']['mean']:.2f}", f"{timings.get(key, 0):.1f}")
    console.print(table)


@app.command()
def demo(
    out: Path = typer.Option(Path("cardiotwin-demo"), "--out", help="output folder"),
    seed: int = typer.Option(0, help="synthetic patient number"),
) -> None:
    """Run the pipeline end to end on a synthetic patient: image and labels -> walls -> meshes."""
    import numpy as np

    from cardiotwin.anatomy.build import build_anatomy, write_anatomy
    from cardiotwin.phantom import generate_phantom
    from cardiotwin.report.slices import plot_slices

    start = time.perf_counter()
    with console.status("generating the synthetic patient (1 mm CT)"):
        ph = generate_phantom(seed=seed, spacing=1.0, modality="ct")
        paths = list(ph.write(out / "patient").values())
    console.print(_volume_table(ph.volumes_ml(), f"synthetic patient {seed}"))
    centre = np.array(ph.landmarks["lv_base_center"]) - 25.0 * np.array(ph.landmarks["lv_long_axis"])
    paths.append(plot_slices(ph.image, ph.labels, centre, out / "patient.png", title=f"synthetic patient {seed}"))
    with console.status("anatomical twin: walls, valves, landmarks, heart and torso meshes"):
        anatomy = build_anatomy(ph.labels)
        paths += list(write_anatomy(anatomy, out / "anatomy", opencarp=True).values())
    _print_mesh_summary(anatomy)
    try:
        from cardiotwin.report.mesh_figure import plot_meshes

        paths.append(plot_meshes(anatomy.heart.mesh, anatomy.torso.mesh if anatomy.torso else None,
                                 out / "anatomy.png"))
    except ImportError:
        console.print("[yellow]pyvista not installed: no mesh picture (pip install 'cardiotwin[viz]')[/]")
    console.print(f"[green]done[/] in {time.perf_counter() - start:.1f} s: " + ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    app()
