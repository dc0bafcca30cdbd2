"""Benchmark: the built-in segmenter on held-out synthetic images and on the shared real images.

Figures (one line each; JSON to benchmarks/results/segment.json):

* **held-out synthetic**: phantom seeds 0-2 (training used 10-39) imaged by the phantom's own CT and
  MR intensity models (``cardiotwin.phantom.intensity``, not the training prior), at 1.5 mm; the
  real MM-WHS ct_train_1005_label map (left out of training) in its extended torso, rendered with
  the CT-like and MR-like priors. Dice per structure against the maps (targets: >= 0.90 blood
  pools, >= 0.80 myocardium, >= 0.85 great vessels).
* **real contrast CT crop** (``ct_cardiac_cta_totalseg``): aorta Dice against the TotalSegmentator
  aorta mask on the common field of view; chambers and myocardium present, pieces, volumes.
* **real cine MRI** (ACDC, 1.5 x 1.5 x 8 mm assumed: the files store no spacing): LV blood, LV
  myocardium, RV blood Dice per stack; **LGE-MRI** LA Dice (0.625 mm).
* inference time (2 cores) and peak memory on the CT crop.

    python benchmarks/bench_segment.py [--weights PATH] [--cases synthetic ct mri]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

from cardiotwin import labels as lab
from cardiotwin.io import read_image, read_labels
from cardiotwin.io.atomic import write_json_atomic
from cardiotwin.io.hdf5 import read_hdf5_volume
from cardiotwin.segmentation import segment
from cardiotwin.segmentation.classes import CLASSES, to_classes
from cardiotwin.segmentation.sources import real_heart_body
from cardiotwin.segmentation.synth import Synthesiser, Source
from cardiotwin.segmentation.train import dice_per_class
from cardiotwin.types import Image

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
RESULTS = HERE / "results" / "segment.json"
ACDC_SPACING = (1.5, 1.5, 8.0)
LGE_SPACING = (0.625, 0.625, 0.625)


def line(name: str, value: str, unit: str = "", **extra) -> None:
    more = "  ".join(f"{k}={v}" for k, v in extra.items())
    print(f"{name:<62} {value:>9} {unit:<4} {more}", flush=True)


def segmented(name: str, image, modality: str, weights, body: bool = True):
    """The segmentation, or None with the failure printed (every case is reported)."""
    from cardiotwin.errors import CardiotwinError

    try:
        return segment(image, modality=modality, weights=weights, body=body)
    except CardiotwinError as exc:
        line(f"{name}: FAILED", type(exc).__name__, "", message=str(exc)[:160])
        return None


def heart_dice(pred_labels: np.ndarray, truth_labels: np.ndarray) -> dict[str, float]:
    return dice_per_class(to_classes(pred_labels), to_classes(truth_labels))


def synthetic(weights) -> dict:
    from cardiotwin.phantom import generate_phantom

    out = {}
    for seed in (0, 1, 2):
        for modality in ("ct", "mr"):
            ph = generate_phantom(seed=seed, spacing=1.5, modality=modality)
            seg = segmented(f"phantom {seed} {modality}", ph.image, modality, weights, body=False)
            if seg is None:
                continue
            out[f"phantom{seed}_{modality}"] = heart_dice(seg.labels.array, ph.labels.array)
    mmwhs = DATA / "labels_mmwhs_ct" / "ct_train_1005_label.nii.gz"
    if mmwhs.exists():
        body = real_heart_body(read_labels(mmwhs))
        synth = Synthesiser([Source.from_labels("1005", body)], seed=7)
        for kind in ("ct", "mr"):
            arr = synth.render(body, kind).cpu().numpy()  # the CT prior is in HU, so the CT checks apply
            seg = segmented(f"MM-WHS 1005 {kind}", Image(arr, body.spacing, body.origin, body.direction), kind,
                            weights, body=False)
            if seg is None:
                continue
            out[f"mmwhs1005_{kind}"] = heart_dice(seg.labels.array, body.array)
    for case, dice in out.items():
        for name, d in dice.items():
            line(f"synthetic {case}: {name} Dice", f"{d:.3f}")
    for group, names, target in (("blood pools", lab.BLOOD_POOLS, 0.90), ("myocardium", ("lv_myocardium",), 0.80),
                                 ("great vessels", ("aorta", "pulmonary_artery"), 0.85)):
        values = [d[n] for d in out.values() for n in names if n in d]
        line(f"synthetic: median Dice, {group} (target {target})", f"{np.median(values):.3f}" if values else "n/a",
             "", min=round(float(np.min(values)), 3) if values else None)
    return out


def real_ct(weights) -> dict:
    folder = DATA / "ct_cardiac_cta_totalseg"
    ct = read_image(folder / "ct_cropped.nii.gz")
    t = time.perf_counter()
    seg = segment(ct, modality="ct", weights=weights)
    elapsed = time.perf_counter() - t
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    aorta_ref = read_image(folder / "aorta.nii.gz").array > 0
    aorta = seg.labels.array == lab.label("aorta")
    dice = float(2 * (aorta & aorta_ref).sum() / max(aorta.sum() + aorta_ref.sum(), 1))
    from scipy import ndimage

    pieces = {n: int(ndimage.label(seg.labels.array == lab.label(n))[1]) for n in CLASSES[1:6]}
    rep = {"inference_s": elapsed, "peak_rss_gb": peak_gb, "aorta_dice_vs_totalsegmentator": dice,
           "pieces": pieces, "volumes_ml": seg.report["volumes_ml"], "warnings": seg.report["warnings"]}
    line("real CT crop: inference time, 2 cores (target < 60 s)", f"{elapsed:.1f}", "s")
    line("real CT crop: peak memory (target < 4 GB)", f"{peak_gb:.2f}", "GB")
    line("real CT crop: aorta Dice vs TotalSegmentator (target 0.85)", f"{dice:.3f}")
    for n in CLASSES[1:6]:
        line(f"real CT crop: {n}", f"{seg.report['volumes_ml'].get(n, 0.0):.0f}", "ml", pieces=pieces[n])
    return rep


def real_mri(weights) -> dict:
    out = {}
    acdc = {1: "rv_blood", 2: "lv_myocardium", 3: "lv_blood"}
    for path in sorted((DATA / "mri_acdc_cine").glob("*.h5")):
        image, codes = read_hdf5_volume(path, ACDC_SPACING, slices_first=True)
        seg = segmented(f"ACDC {path.stem}", image, "mr", weights)
        if seg is None:
            out[path.stem] = {"error": "segmentation failed"}
            continue
        truth = np.zeros(codes.shape, dtype=np.int16)
        for code, name in acdc.items():
            truth[codes == code] = lab.label(name)
        pred = seg.labels.array
        dice = {}
        for name in acdc.values():
            t, p = truth == lab.label(name), pred == lab.label(name)
            dice[name] = float(2 * (t & p).sum() / max(t.sum() + p.sum(), 1))
        out[path.stem] = dice
        line(f"ACDC {path.stem}: Dice LV / myo / RV (targets 0.85/0.70/0.75)",
             f"{dice['lv_blood']:.2f}/{dice['lv_myocardium']:.2f}/{dice['rv_blood']:.2f}")
    for path in sorted((DATA / "mri_la2018_lge").glob("*.h5")):
        image, codes = read_hdf5_volume(path, LGE_SPACING)
        seg = segmented("LGE-MRI", image, "mr", weights)
        if seg is None:
            out[path.stem] = {"error": "segmentation failed"}
            continue
        t, p = codes > 0, seg.labels.array == lab.label("la_blood")
        dice = float(2 * (t & p).sum() / max(t.sum() + p.sum(), 1))
        out[path.stem] = {"la_blood": dice}
        line("LGE-MRI: LA Dice (target 0.80)", f"{dice:.3f}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=None, help="network weights (default: the shipped ones)")
    ap.add_argument("--cases", nargs="+", default=["synthetic", "ct", "mri"])
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"shared data not found at {DATA}")
    results = {}
    runners = {"synthetic": synthetic, "ct": real_ct, "mri": real_mri}
    for case in args.cases:
        try:
            results[case] = runners[case](args.weights)
        except Exception as exc:  # report every case; say plainly what fails
            results[case] = {"error": f"{type(exc).__name__}: {exc}"}
            line(f"{case}: FAILED", type(exc).__name__, "", message=str(exc)[:200])
        write_json_atomic(RESULTS, results)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
