"""The ``cardiotwin`` command line: a thin layer over the Python API."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cardiotwin import fields as F
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
    from cardiotwin.io.phantom import write_phantom
    from cardiotwin.phantom import generate_phantom

    try:
        start = time.perf_counter()
        ph = generate_phantom(seed=seed, spacing=spacing, modality=modality.value)
        paths = write_phantom(ph, out)
    except CardiotwinError as exc:
        _fail(exc)
    console.print(_volume_table(ph.volumes_ml(), f"phantom seed {seed} ({modality.value}, {spacing} mm)"))
    console.print(f"grid {ph.image.shape}, {time.perf_counter() - start:.1f} s; wrote "
                  + ", ".join(str(p) for p in paths.values()))


@app.command()
def run(
    out: Path = typer.Option(..., "--out", help="case folder (created; a rerun resumes it)"),
    image: Path = typer.Option(None, "--image", help="CT or MR image (segmented by the built-in network)"),
    labels: Path = typer.Option(None, "--labels", help="label map instead of segmenting (skips `segment`)"),
    phantom: int = typer.Option(None, "--phantom", help="a synthetic patient's seed in place of the image"),
    ecg: Path = typer.Option(None, "--ecg", help="the patient's 12-lead ECG (WFDB, CSV, .mat): calibrate to it"),
    config: Path = typer.Option(None, "--config", help="config.toml: stage settings and a [calibration] table"),
) -> None:
    """Image (or labels, or a phantom) and ECG -> calibrated twin, every stage cached: a rerun skips
    what is done and redoes only what a changed input or setting affects."""
    from cardiotwin.pipeline.run import RunConfig, run_case

    try:
        settings = RunConfig.from_toml(config) if config else RunConfig()
        with console.status("starting") as status:
            runs = run_case(out, image=image, labels=labels, phantom=phantom, ecg=ecg, config=settings,
                            log=console.print, started=lambda name: status.update(f"[bold]{name}[/] running"))
    except CardiotwinError as exc:
        _fail(exc)
    done = [r.name for r in runs.values() if not r.skipped]
    console.print(f"{len(runs)} stages, {len(done)} run ({', '.join(done) or 'none'}), "
                  f"{len(runs) - len(done)} skipped; case folder {out}")


@app.command()
def cohort(
    table: Path = typer.Argument(..., help="cohort CSV: id, one of image/labels/phantom, optional ecg and overrides"),
    out: Path = typer.Option(..., "--out", help="folder of the case folders (DIR/<id>/) and cohort_summary.csv"),
    scheduler: str = typer.Option(None, "--scheduler", help="address of a running Dask scheduler (default: a "
                                  "LocalCluster on this machine)"),
    workers: int = typer.Option(1, "--workers", help="LocalCluster worker processes"),
    config: Path = typer.Option(None, "--config", help="config.toml for every case (rows override it)"),
) -> None:
    """`cardiotwin run` for every row of a cohort table, on Dask; failures are recorded and the rest
    go on; a rerun resumes. Exits 1 when any case failed."""
    from cardiotwin.io.cohort import write_cohort_summary
    from cardiotwin.pipeline.cohort import read_cohort, run_cohort
    from cardiotwin.pipeline.run import RunConfig

    try:
        cases = read_cohort(table, RunConfig.from_toml(config) if config else RunConfig())
    except CardiotwinError as exc:
        _fail(exc)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("cases"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task("cases", total=len(cases))

        def report(result: dict) -> None:
            what = (f"done in {result['seconds']:.0f} s" if result["status"] == "done"
                    else f"[red]failed[/] in {result['stage']}: {result['error']}")
            bar.console.print(f"{result['id']}: {what}")
            bar.advance(task)

        results = run_cohort(cases, out, scheduler=scheduler, workers=workers, progress=report)
    summary = write_cohort_summary([r["summary"] for r in results], out / "cohort_summary.csv")
    failed = sum(r["status"] == "failed" for r in results)
    console.print(f"{len(results) - failed} done, {failed} failed; summary {summary} and "
                  f"{summary.with_suffix('.html')}")
    if failed:
        raise typer.Exit(code=1)


@app.command()
def mesh(
    labels: Path = typer.Option(..., "--labels", help="label map (NIfTI/NRRD/MHA) in any known convention (see `build`)"),
    out: Path = typer.Option(..., "--out", help="output folder"),
    image: Path = typer.Option(None, "--image", help="the image the labels come from (same grid): "
                             "a CT's body outline and lungs shape the extended torso"),
    edge_mm: float = typer.Option(1.0, "--edge-mm", help="heart mesh edge length (lattice cube size) in mm"),
    opencarp: bool = typer.Option(False, "--opencarp", help="also write openCARP .pts/.elem/.lon"),
    torso: bool = typer.Option(True, help="also mesh the torso (the map's own, or one extended around the heart)"),
    label_convention: str = typer.Option("auto", "--label-convention", help="integer convention of the labels "
                                         "(auto, cardiotwin, mmwhs, mmwhs7, heartchambers_highres, totalsegmentator_v1, acdc)"),
) -> None:
    """Walls, valves, landmarks, a four-chamber heart mesh and a torso mesh from a label map."""
    from cardiotwin.anatomy.build import build_anatomy
    from cardiotwin.io.anatomy import write_anatomy
    from cardiotwin.io import read_image, read_labels

    try:
        with console.status("building walls, landmarks and meshes"):
            reference = read_image(image) if image else None
            anatomy = build_anatomy(read_labels(labels, reference=reference, convention=label_convention), edge_mm=edge_mm,
                                    with_torso=torso)
            paths = write_anatomy(anatomy, out, opencarp=opencarp)
    except CardiotwinError as exc:
        _fail(exc)
    _print_mesh_summary(anatomy)
    console.print("wrote " + ", ".join(str(p) for p in paths.values()))


@app.command()
def build(
    labels: Path = typer.Option(..., "--labels", help="label map: cardiotwin, MM-WHS, MM-WHS 1-7 / TotalSegmentator "
                                "heartchambers_highres, TotalSegmentator total v1, ACDC, or a TotalSegmentator mask folder"),
    out: Path = typer.Option(..., "--out", help="twin folder to write (read by `ecg`, `simulate`, `calibrate`)"),
    image: Path = typer.Option(None, "--image", help="the image the labels come from (same grid): "
                             "a CT's body outline and lungs shape the extended torso"),
    label_convention: str = typer.Option("auto", "--label-convention", help="integer convention of the labels "
                                         "(auto, cardiotwin, mmwhs, mmwhs7, heartchambers_highres, totalsegmentator_v1, acdc)"),
    edge_mm: float = typer.Option(1.0, "--edge-mm", help="heart mesh edge length (lattice cube size) in mm"),
) -> None:
    """Label map -> the whole twin and its 12-lead ECG: walls, valves, vein stumps, landmarks, heart
    mesh, torso mesh (extended around the heart when the map has none), coordinates, fibres,
    conduction fields, lead fields and one simulation with default parameters (build_report.json)."""
    from cardiotwin.pipeline.build import build_case

    try:
        with console.status("walls, veins, landmarks, meshes, coordinates, fibres, lead fields, one simulation"):
            result = build_case(labels, out, image=image, convention=label_convention, edge_mm=edge_mm)
    except CardiotwinError as exc:
        _fail(exc)
    from cardiotwin.report.mesh_figure import plot_meshes
    from cardiotwin.report.veins_figure import plot_inflows

    anatomy, summary = result.anatomy, result.summary
    _print_mesh_summary(anatomy)
    paths = list(result.paths)
    paths += _picture(lambda: plot_meshes(anatomy.heart.mesh, anatomy.torso.mesh, out / "anatomy.png"))
    if summary["veins"]:
        paths += _picture(lambda: plot_inflows(anatomy.labels, summary["veins"], out / "veins.png", labels.name))
    if result.scan is not None and anatomy.torso_labels is not None:
        from cardiotwin.report.slices import plot_torso_fit

        paths += _picture(lambda: plot_torso_fit(result.scan, anatomy.torso_labels, out / "torso_fit.png",
                                                 f"{image.name}: torso fitted to the CT, extended past its view"))
    ecg = summary["ecg"]
    measured = (f"QRS {ecg['qrs_ms']:.0f} ms, frontal axis {ecg['qrs_axis_deg']:.0f} deg" if ecg["qrs_ms"] is not None
                else f"[yellow]ECG not measured:[/] {ecg['not_measured']}")
    console.print(f"labels: {summary['label_convention']} convention; {measured}; [green]done[/] in "
                  f"{summary['total_s']:.0f} s: " + ", ".join(str(p) for p in paths))


@app.command()
def segment(
    image: Path = typer.Option(..., "--image", help="CT or MR image: NIfTI, NRRD, MHA or a DICOM series folder"),
    out: Path = typer.Option(..., "--out", help="label map to write (e.g. labels.nii.gz), cardiotwin convention"),
    modality: Modality = typer.Option(Modality.ct, help="ct adds body outline and lungs by Hounsfield thresholds"),
    engine: str = typer.Option("builtin", help="builtin, totalsegmentator (its weights folder as --weights) or "
                               "nnunet (an nnU-Net v2 model folder as --weights); the last two must be installed"),
    device: str = typer.Option("cpu", help="cpu or cuda"),
    weights: Path = typer.Option(None, "--weights", help="network weights or model folder (default: the shipped "
                                 "built-in weights)"),
) -> None:
    """Image -> label map with the built-in network: chambers, LV myocardium, great vessels and veins
    (+ body and lungs for CT), a volume table, a QC report (OUT.json) and a picture (OUT.png)."""
    from rich.progress import Progress

    from cardiotwin.io import read_image, write_image
    from cardiotwin.io.atomic import write_json_atomic
    from cardiotwin.report.slices import plot_segmentation
    from cardiotwin.segmentation import segment as run_segment

    stem = out.name.split(".")[0]
    try:
        img = read_image(image)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("segmenting", total=None)
            result = run_segment(img, modality=modality.value, engine=engine, device=device, weights=weights,
                                 progress=lambda i, n: bar.update(task, completed=i, total=n))
        paths = [write_image(result.labels, out), write_json_atomic(out.with_name(f"{stem}.json"), result.report)]
    except CardiotwinError as exc:
        _fail(exc)
    paths += _picture(lambda: plot_segmentation(img, result.labels, out.with_name(f"{stem}.png"), image.name))
    console.print(_volume_table(result.report["volumes_ml"], f"{image.name}: segmented structures"))
    for warning in result.report["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print("wrote " + ", ".join(str(p) for p in paths))


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


def _beside(path: Path, given: Path | None, name: str) -> Path:
    """An input next to ``path`` unless given explicitly."""
    return given if given is not None else path.parent / name


@app.command()
def fibres(
    mesh: Path = typer.Option(..., "--mesh", help="heart mesh from `cardiotwin mesh` (heart_mesh.vtu)"),
    out: Path = typer.Option(..., "--out", help="output folder (may be the mesh's folder: the twin folder)"),
    labels: Path = typer.Option(None, "--labels", help="label map the mesh came from [labels_walls.nii.gz beside the mesh]"),
    landmarks: Path = typer.Option(None, "--landmarks", help="landmarks.json [beside the mesh]"),
) -> None:
    """Universal ventricular/atrial coordinates and fibres on a heart mesh (+ openCARP .lon)."""
    from cardiotwin.io import read_labels, read_mesh
    from cardiotwin.io.anatomy import read_landmarks, write_landmarks
    from cardiotwin.pipeline.twin_folder import twin_heart, write_twin_heart

    try:
        with console.status("coordinates and fibres"):
            start = time.perf_counter()
            heart = read_mesh(mesh)
            label_map = read_labels(_beside(mesh, labels, F.LABELS_WALLS))
            marks_file = _beside(mesh, landmarks, F.LANDMARKS)
            marks = read_landmarks(marks_file)
            twin = twin_heart(heart, label_map, marks)
            paths = write_twin_heart(twin, out)
            if (out / F.LANDMARKS).resolve() != marks_file.resolve():  # the twin folder holds its landmarks
                paths.append(write_landmarks(marks, out / F.LANDMARKS))
            elapsed = time.perf_counter() - start
    except CardiotwinError as exc:
        _fail(exc)
    paths += _picture(lambda: __import__("cardiotwin.report.fibres_figure", fromlist=["plot_fibres"]).plot_fibres(
        twin, out / "fibres.png"))
    console.print(f"coordinates and fibres in {elapsed:.1f} s; wrote " + ", ".join(str(p) for p in paths))


def _picture(draw) -> list[Path]:
    """Draw an optional picture (needs the viz extra); say so instead of failing without it."""
    try:
        return [draw()]
    except ImportError:
        console.print("[yellow]pyvista not installed: picture skipped (pip install 'cardiotwin[viz]')[/]")
        return []


@app.command()
def simulate(
    mesh: Path = typer.Option(..., "--mesh", help="heart mesh with coordinates and fibres (`cardiotwin fibres`)"),
    out: Path = typer.Option(..., "--out", help="output folder"),
    params: Path = typer.Option(None, "--params", help="parameters JSON (missing entries: defaults)"),
    landmarks: Path = typer.Option(None, "--landmarks", help="landmarks.json [beside the mesh]"),
) -> None:
    """Activation and repolarisation times of the twin's heart for one parameter set."""
    from cardiotwin.electrophysiology.parameters import EpParameters
    from cardiotwin.io.anatomy import read_landmarks
    from cardiotwin.io.parameters import read_parameters
    from cardiotwin.io.simulation import write_simulation
    from cardiotwin.io import read_mesh
    from cardiotwin.twin import Twin, simulate as run

    try:
        twin = Twin(read_mesh(mesh), read_landmarks(_beside(mesh, landmarks, F.LANDMARKS)))
        theta = read_parameters(params) if params else EpParameters()
        start = time.perf_counter()
        sim = run(twin, theta, with_ecg=False)
        elapsed = time.perf_counter() - start
        paths = list(write_simulation(twin, sim, out).values())
    except CardiotwinError as exc:
        _fail(exc)
    from cardiotwin.report.mesh_figure import plot_field

    paths += _picture(lambda: plot_field(twin.heart, sim.activation, out / "activation.png", "activation (ms)"))
    console.print(", ".join(f"{k} = {v:.1f}" for k, v in sim.summary.items()) + f" ({elapsed:.2f} s)")
    console.print("wrote " + ", ".join(str(p) for p in paths))


@app.command()
def ecg(
    twin_dir: Path = typer.Option(..., "--twin", help="twin folder: heart.vtu (with fibres), landmarks.json, torso.vtu"),
    out: Path = typer.Option(..., "--out", help="output folder"),
    params: Path = typer.Option(None, "--params", help="parameters JSON (missing entries: defaults)"),
    electrodes: Path = typer.Option(None, "--electrodes", help="CSV name,x,y,z (mm) instead of the standard placement"),
) -> None:
    """The twin's 12-lead ECG through its torso: lead fields (computed once, cached in the twin
    folder), then one simulation; writes ecg.csv, WFDB ecg.hea/.dat and the 12-lead plot."""
    from cardiotwin.electrophysiology.parameters import EpParameters
    from cardiotwin.io import write_ecg_csv, write_ecg_wfdb
    from cardiotwin.io.parameters import read_parameters
    from cardiotwin.io.simulation import write_simulation
    from cardiotwin.pipeline.twin_folder import ensure_lead_fields
    from cardiotwin.report.ecg_plot import plot_12_lead
    from cardiotwin.twin import Twin, simulate as run

    try:
        twin = Twin.load(twin_dir)
        with console.status("lead fields (once per twin)"):
            ensure_lead_fields(twin, twin_dir, electrodes)
        theta = read_parameters(params) if params else EpParameters()
        sim = run(twin, theta)
        paths = list(write_simulation(twin, sim, out).values())
        paths += [write_ecg_csv(sim.ecg, out / "ecg.csv"), write_ecg_wfdb(sim.ecg, out / "ecg"),
                  plot_12_lead(sim.ecg, out / "ecg.png", title="simulated 12-lead ECG")]
    except CardiotwinError as exc:
        _fail(exc)
    console.print(", ".join(f"{k} = {v:.1f}" for k, v in sim.summary.items()))
    console.print("wrote " + ", ".join(str(p) for p in paths))


class Gain(str, Enum):
    global_ = "global"
    lead = "lead"


class Method(str, Enum):
    cmaes = "cmaes"
    ml = "ml"


@app.command()
def calibrate(
    twin_dir: Path = typer.Option(..., "--twin", help="twin folder (heart.vtu with fibres, landmarks.json, torso.vtu)"),
    ecg_path: Path = typer.Option(..., "--ecg", help="the patient's 12-lead ECG: WFDB record/.hea or CSV"),
    out: Path = typer.Option(..., "--out", help="output folder"),
    method: Method = typer.Option(Method.cmaes, help="cmaes (global optimiser) or ml (neural network start + CMA-ES)"),
    budget: int = typer.Option(None, help="forward simulations for the QRS stage [1200]"),
    seed: int = typer.Option(0, help="random seed: the same seed gives the same result"),
    gain: Gain = typer.Option(Gain.lead, help="the beat's scale, set on the QRS and shared by P and T: one gain "
                              "per lead (the twin's lead amplitudes need not be the patient's: anatomy, electrodes), "
                              "or one gain for all leads (relative lead amplitudes count too)"),
    pose: bool = typer.Option(True, "--pose/--no-pose", help="also fit the heart's rotation in the torso (the "
                              "twin's torso and electrodes are placed, not the patient's own)"),
    refine: bool = typer.Option(False, "--refine/--no-refine", help="finish the QRS fit on the 1 mm model: root "
                                "sites from 1 mm single-root fields, then Levenberg-Marquardt (~4 min more on 2 cores; "
                                "closer root sites and velocities)"),
    quick: bool = typer.Option(False, "--quick", help="the cheaper route (QUICK settings: no heart rotation, a "
                               "quarter of the QRS budget, one space-mapping round, shorter T and P searches; "
                               "about a third of the time, worse fits)"),
) -> None:
    """Personalise the twin to the patient's ECG: QRS (activation), then T (repolarisation), then P
    (atria, when the record has P waves); writes parameters.json, the fitted ECG and an overlay plot.
    The defaults are the route that gave the README's real-record figures (per-lead gain, heart
    rotation fitted); ``--quick`` trades fit for time."""
    from cardiotwin.calibration.optimise import QUICK, REFINEMENT, calibrate as run
    from cardiotwin.pipeline.calibration_folder import write_result
    from cardiotwin.io import read_ecg
    from cardiotwin.pipeline.twin_folder import ensure_lead_fields
    from cardiotwin.twin import Twin

    try:
        twin = Twin.load(twin_dir)
        with console.status("lead fields (once per twin)"):
            ensure_lead_fields(twin, twin_dir)
        with console.status(f"calibrating ({method.value})"):
            settings = {"pose": pose, **(REFINEMENT if refine else {}), **(QUICK if quick else {})}
            if budget is not None:
                settings["budget"] = budget
            result = run(twin, read_ecg(ecg_path), method=method.value, seed=seed, gain=gain.value, **settings)
            paths = list(write_result(result, out, twin=twin).values())
    except CardiotwinError as exc:
        _fail(exc)
    waves = [w for w in ("QRS", "T", "P") if w in result.fits]
    table = Table(title="fit at one scale (median r " + ", ".join(f"{w} {result.median_correlation(w):.3f}"
                                                                 for w in waves)
                  + f"; whole-beat NRMSE {float(result.fits['beat'].nrmse[0]):.2f})")
    table.add_column("lead")
    for w in waves:
        table.add_column(f"{w} r", justify="right")
    per = {w: result.correlations(w) for w in waves}
    for lead in per["QRS"]:
        table.add_row(lead, *(f"{per[w][lead]:.3f}" for w in waves))
    console.print(table)
    err = result.features.get("error", {})
    console.print("fitted - measured: " + ", ".join(f"{k.removesuffix('_ms')} {err[k]:+.0f} ms" for k in
                                                    ("pr_ms", "p_ms", "qrs_ms", "qt_ms", "t_peak_ms") if err.get(k) is not None)
                  + f"; global gain {result.global_gain:.2f}; "
                  + ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items() if k in ("QRS", "T", "P", "total")))
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print("wrote " + ", ".join(str(p) for p in paths))


def _demo_calibration(twin, out: Path, seed: int, budget: int) -> list[Path]:
    """Hidden QRS parameters drawn from the search space, their 10 s record with noise and baseline
    wander, and the calibration of the twin to it (QRS, T, P); prints how well it recovered them."""
    import numpy as np

    from cardiotwin.calibration import CalibrationModel, SearchSpace, calibrate, recovery_errors
    from cardiotwin.pipeline.calibration_folder import write_result
    from cardiotwin.calibration.synthetic import synthetic_beat
    from cardiotwin.io.parameters import write_parameters
    from cardiotwin.io.atomic import write_json_atomic

    model = CalibrationModel(twin)
    space = SearchSpace.for_stage("QRS")
    rng = np.random.default_rng(seed)
    truth = space.to_params(space.sample(rng, 1)[0])
    beat, route = synthetic_beat(model, truth, rng)
    result = calibrate(twin, beat, budget=budget, seed=seed, model=model)
    paths = list(write_result(result, out).values())
    errors = recovery_errors(model, truth, result.params)
    paths.append(write_parameters(truth, out / "hidden_parameters.json"))
    paths.append(write_json_atomic(out / "recovery.json", {"beat_route": route, **errors}))
    roots = ", ".join(f"{k} {v:.1f}" for k, v in errors["root_distance_mm"].items())
    console.print(f"calibration: median QRS r {result.median_correlation('QRS'):.3f}, T r "
                  f"{result.median_correlation('T'):.3f}; activation error vs hidden truth {errors['at_mae_ms']:.1f} ms; "
                  f"root distances (mm) {roots}; {sum(result.n_simulations.values())} simulations, "
                  f"{result.timings['total']:.0f} s")
    return paths


@app.command()
def demo(
    out: Path = typer.Option(Path("cardiotwin-demo"), "--out", help="output folder"),
    seed: int = typer.Option(0, help="synthetic patient number"),
    calibration_budget: int = typer.Option(
        600, help="QRS forward simulations of the calibration step (0 skips it; 1200 fits closer, ~2x slower)"),
) -> None:
    """Run the pipeline end to end on a synthetic patient: image and labels -> walls -> meshes ->
    coordinates and fibres -> activation and repolarisation -> 12-lead ECG through the torso ->
    calibration of the twin to a noisy ECG simulated from hidden parameters."""
    import numpy as np

    from cardiotwin.io import write_ecg_csv
    from cardiotwin.io.phantom import write_phantom
    from cardiotwin.phantom import generate_phantom
    from cardiotwin.report.ecg_plot import plot_12_lead
    from cardiotwin.report.slices import plot_slices
    from cardiotwin.io.simulation import write_simulation
    from cardiotwin.pipeline.twin_folder import build_twin
    from cardiotwin.twin import simulate as run

    start = time.perf_counter()
    with console.status("generating the synthetic patient (1 mm CT)"):
        ph = generate_phantom(seed=seed, spacing=1.0, modality="ct")
        paths = list(write_phantom(ph, out / "patient").values())
    console.print(_volume_table(ph.volumes_ml(), f"synthetic patient {seed}"))
    centre = np.array(ph.landmarks["lv_base_center"]) - 25.0 * np.array(ph.landmarks["lv_long_axis"])
    paths.append(plot_slices(ph.image, ph.labels, centre, out / "patient.png", title=f"synthetic patient {seed}"))
    twin_dir = out / "twin"
    with console.status("twin: walls, valves, landmarks, meshes, coordinates, fibres, lead fields"):
        twin, anatomy = build_twin(ph.labels, twin_dir)
        heart = twin.heart
    _print_mesh_summary(anatomy)
    from cardiotwin.report.mesh_figure import plot_field, plot_meshes

    paths += _picture(lambda: plot_meshes(anatomy.heart.mesh, anatomy.torso.mesh, out / "anatomy.png"))
    paths += _picture(lambda: __import__("cardiotwin.report.fibres_figure", fromlist=["plot_fibres"]).plot_fibres(
        heart, out / "fibres.png"))
    with console.status("activation, repolarisation and the 12-lead ECG"):
        sim = run(twin)
        paths += list(write_simulation(twin, sim, out / "simulation").values())
        paths += [write_ecg_csv(sim.ecg, out / "simulation" / "ecg.csv"),
                  plot_12_lead(sim.ecg, out / "ecg.png", title=f"synthetic patient {seed}: simulated 12-lead ECG")]
    vent = sim.summary["ventricular_start_ms"]
    ventricular = np.where(sim.activation >= vent, sim.activation - vent, np.nan)  # atria shown grey
    paths += _picture(lambda: plot_field(heart, ventricular, out / "activation.png", "ventricular activation (ms)"))
    console.print(", ".join(f"{k} = {v:.1f}" for k, v in sim.summary.items()))
    if calibration_budget > 0:
        with console.status("calibration: the twin fitted to a noisy ECG from hidden parameters"):
            paths += _demo_calibration(twin, out / "calibration", seed, calibration_budget)
    console.print(f"[green]done[/] in {time.perf_counter() - start:.1f} s: " + ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    app()
