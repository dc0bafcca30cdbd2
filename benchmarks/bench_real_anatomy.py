"""Benchmark: real expert label maps (MM-WHS CT) to a 12-lead ECG with `cardiotwin build`, unattended.

For each map in ../shared/data/labels_mmwhs_ct (as stored: MM-WHS codes or their 1-7 renumbering,
original anisotropic grids): every stage's time, heart-mesh volume error per region against the
label map, min dihedral angle, pieces per chamber wall, the six venous ostia (placed by rule), UVC
and UAC ranges and NaN counts inside their domains, LV free-wall helix angle against the LDRB
prescription at endo/mid/epi, extended-torso watertightness and lungs, and the simulated ECG's QRS
duration and frontal axis. No peer builds a twin from a label map to an ECG here (the usual chain
is segmentation tools + meshers + MATLAB + openCARP by hand), so figures are against targets:
label map to ECG < 5 min on 2 cores, volumes within 3 %, dihedral >= 8 deg, helix within 5 deg,
QRS 70-130 ms, axis -30..90 deg. One line per figure; JSON to benchmarks/results/real_anatomy.json.

    python benchmarks/bench_real_anatomy.py [--cases ct_train_1002_label ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cardiotwin import labels as lab
from cardiotwin.anatomy.coordinates import UAC_FIELDS, UVC_FIELDS, ventricular_coordinates
from cardiotwin.io.atomic import write_json_atomic
from cardiotwin.pipeline.build import build_case

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fibres import line, lv_free_wall_helix  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "labels_mmwhs_ct"
RESULTS = Path(__file__).resolve().parent / "results" / "real_anatomy.json"
CASES = ("ct_train_1002_label", "ct_train_1005_label", "mmwhs_template_label")


def measure(case: str, out: Path) -> dict:
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
    for name, v in s["veins"].items():
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
    results = {case: measure(case, args.out) for case in args.cases}
    write_json_atomic(RESULTS, results)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
