"""Benchmark: real expert label maps (MM-WHS CT) to a 12-lead ECG with `cardiotwin build`, unattended.

For each map in ../shared/data/labels_mmwhs_ct (as stored: MM-WHS codes or their 1-7 renumbering,
original anisotropic grids): every stage's time, heart-mesh volume error per region against the
label map, min dihedral angle, pieces per chamber wall, the six venous ostia (placed by rule), UVC
and UAC ranges and NaN counts inside their domains, LV free-wall helix angle against the LDRB
prescription at endo/mid/epi, extended-torso watertightness and lungs, and the simulated ECG's QRS
duration and frontal axis. No peer builds a twin from a label map to an ECG here (the usual chain
is segmentation tools + meshers + MATLAB + openCARP by hand), so figures are against targets:
label map to ECG < 5 min on 2 cores, volumes within 3 %, dihedral >= 8 deg, helix within 5 deg,
QRS 70-130 ms, axis -30..90 deg. One line per figure; JSON to benchmarks/results/real_anatomy.json
(cases run now replace their entries, others are kept).

Case ``ct_train_1002_label@ct_crop``: the 1002 map placed in the real contrast CT crop of
../shared/data/ct_cardiac_cta_totalseg (its aortic root on the CT's TotalSegmentator annulus,
resampled to the CT's 1.5 mm grid) and built with ``--image``: the torso is fitted to the CT's body
and lungs; adds the fit's figures (semi-axes, body and lungs kept, reach past the crop per side).

Cases ``phantom:N``: the phantom patient of seed N (its 1 mm label map, which has its own torso
and veins) through the same ``build``, to check that the real-map work does not regress phantoms.

    python benchmarks/bench_real_anatomy.py [--cases ct_train_1002_label ... phantom:0] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cardiotwin import labels as lab
from cardiotwin.anatomy.coordinates import UAC_FIELDS, UVC_FIELDS, ventricular_coordinates
from cardiotwin.anatomy.resample import resample_labels
from cardiotwin.anatomy.voxels import touching
from cardiotwin.io import read_image, read_labels, write_image
from cardiotwin.io.atomic import write_json_atomic
from cardiotwin.phantom.generate import generate_phantom
from cardiotwin.pipeline.build import build_case

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fibres import line, lv_free_wall_helix  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "labels_mmwhs_ct"
RESULTS = Path(__file__).resolve().parent / "results" / "real_anatomy.json"
CT_CROP = DATA.parent / "ct_cardiac_cta_totalseg"
CASES = ("ct_train_1002_label", "ct_train_1005_label", "mmwhs_template_label", "ct_train_1002_label@ct_crop")


def placed_in_ct_crop(case: str, out: Path) -> Path:
    """The map moved so its LV-aorta junction sits on the CT's aortic annulus, on the CT's grid."""
    ct = read_image(CT_CROP / "ct_cropped.nii.gz")
    annulus = read_image(CT_CROP / "annulus_proper.nii.gz")
    heart = read_labels(DATA / f"{case}.nii.gz")
    root = touching(heart.mask("lv_blood"), heart.mask("aorta"))
    shift = (annulus.index_to_physical(np.argwhere(annulus.array > 0).mean(axis=0))
             - heart.index_to_physical(np.argwhere(root).mean(axis=0)))
    out.mkdir(parents=True, exist_ok=True)
    return write_image(resample_labels(heart, ct, shift), out / f"{case}_in_ct_crop.nii.gz")


def measure(case: str, out: Path) -> dict:
    if case.startswith("phantom:"):
        out.mkdir(parents=True, exist_ok=True)
        labels = generate_phantom(int(case.split(":")[1]), 1.0).labels
        result = build_case(write_image(labels, out / f"{case.replace(':', '_')}.nii.gz"), out / case.replace(":", "_"))
    elif case.endswith("@ct_crop"):
        result = build_case(placed_in_ct_crop(case.split("@")[0], out), out / case,
                            image=CT_CROP / "ct_cropped.nii.gz")
    else:
        result = build_case(DATA / f"{case}.nii.gz", out / case)
    anatomy, s = result.anatomy, result.summary
    heart = result.twin.heart
    rep: dict = {"label_convention": s["label_convention"], "total_s": s["total_s"], "timings_s": s["timings_s"]}
    line(f"{case}: label map -> ECG (target < 300 s)", f"{s['total_s']:.1f}", "s", convention=s["label_convention"])
    for stage, t in s["timings_s"].items():
        line(f"{case}: {stage}", f"{t:.1f}", "s")
    hm = anatomy.report["heart_mesh"]
    errors = {k: v["rel_error"] for k, v in hm["volumes"].items()}
    rep.update(volume_rel_error=errors, min_dihedral_deg=hm["quality"]["dihedral_deg"]["min"],
               components=hm["components"], nodes=hm["quality"]["nodes"])
    worst = max(errors, key=lambda k: abs(errors[k]))
    line(f"{case}: worst region volume error (target 3 %)", f"{100 * errors[worst]:.2f}", "%", region=worst,
         walls=round(100 * max(abs(errors[w]) for w in lab.CHAMBER_WALLS), 2))
    line(f"{case}: min dihedral (target >= 8)", f"{rep['min_dihedral_deg']:.1f}", "deg")
    line(f"{case}: pieces per chamber wall (target 1)", str(max(hm["components"][w] for w in lab.CHAMBER_WALLS)))
    rep["veins"] = s["veins"]
    for name, v in (s["veins"] or {}).items():
        where = v.get("ostium_mm", v.get("point_mm"))
        line(f"{case}: {name}", v["status"], "", at_mm=where)
    ranges = {}
    for f in UVC_FIELDS + UAC_FIELDS:
        values = heart.point_data[f]
        finite = values[np.isfinite(values)]
        ranges[f] = [round(float(finite.min()), 3), round(float(finite.max()), 3)]
    vent = np.unique(heart.cells[np.isin(heart.tags, lab.labels_of(("lv_myocardium", "rv_myocardium")))])
    atria = np.unique(heart.cells[np.isin(heart.tags, lab.labels_of(("la_wall", "ra_wall")))])
    nan = {"uvc_in_ventricles": int(sum(np.isnan(heart.point_data[f][vent]).sum() for f in UVC_FIELDS)),
           "uac_in_atria": int(sum(np.isnan(heart.point_data[f][atria]).sum() for f in UAC_FIELDS))}
    rep.update(coordinate_ranges=ranges, coordinate_nan=nan)
    line(f"{case}: UVC/UAC NaN inside their domains", str(sum(nan.values())), "", **nan)
    vc = ventricular_coordinates(heart, anatomy.labels, anatomy.landmarks)
    helix = lv_free_wall_helix(heart, vc, heart.cell_data["fibre"], anatomy.landmarks)
    rep["lv_free_wall_helix"] = helix
    for level, h in helix.items():
        line(f"{case}: LV helix {level} (target within 5 deg)", f"{h['helix_deg']:.1f}", "deg",
             prescribed=h["prescribed_deg"], difference=h["mean_difference_deg"])
    tm = anatomy.report["torso_mesh"]
    rep["torso"] = {"watertight": tm["skin"]["watertight"], "nodes": tm["quality"]["nodes"],
                    "lungs_ml": {n: tm["volumes"][n]["mesh_ml"] for n in lab.LUNGS if n in tm["volumes"]},
                    "extension": s["torso_extension"]}
    line(f"{case}: extended torso watertight, both lungs", str(tm["skin"]["watertight"]), "",
         lungs_ml=rep["torso"]["lungs_ml"])
    if isinstance(s["torso_extension"], dict) and "fit" in s["torso_extension"]:
        fit, seen = s["torso_extension"]["fit"], s["torso_extension"]["image"]
        line(f"{case}: torso fitted to the CT: semi-axes", str(fit["torso_semi_axes_mm"]), "mm",
             exponent=fit["torso_exponent"], axis_xy=fit["torso_axis_xy_mm"],
             skin_residual_median_p90=fit["skin_residual_median_p90_mm"])
        line(f"{case}: CT body kept in the torso (target 1)", f"{seen['body_kept_fraction']:.4f}", "",
             lungs_kept=seen["lungs_kept_fraction"])
        line(f"{case}: torso reaches past the CT crop (min side)", f"{min(seen['body_past_view_mm'].values()):.1f}",
             "mm", **seen["body_past_view_mm"])
    rep["ecg"] = s["ecg"]
    rep["ventricular_activation_ms"] = s["simulation"]["ventricular_activation_ms"]
    line(f"{case}: QRS duration (target 70-130)", str(s["ecg"]["qrs_ms"]), "ms",
         ventricular_activation_ms=round(rep["ventricular_activation_ms"], 1))
    axis = s["ecg"]["qrs_axis_deg"]
    line(f"{case}: frontal QRS axis (target -30..90)", f"{axis:.0f}" if axis is not None else "n/a", "deg")
    return rep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / ".cache" / "real_anatomy")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"real label maps not found at {DATA}")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for case in args.cases:
        results[case] = measure(case, args.out)
        write_json_atomic(RESULTS, results)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
