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

Every case is run by the network and, side by side, by the classical peer (multi-atlas registration
of the two real MM-WHS training maps, ``peer_atlas.py``); lines start with the method's name.

    python benchmarks/bench_segment.py [--weights PATH] [--cases synthetic ct mri] [--no-peer]
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
from cardiotwin.segmentation.metrics import dice, dice_per_class
from cardiotwin.segmentation.postprocess import clean
from cardiotwin.segmentation.sources import real_heart_body
from cardiotwin.segmentation.synth import Source, Synthesiser
from cardiotwin.types import Image
from peer_atlas import atlas_bodies, atlas_segment

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
RESULTS = HERE / "results" / "segment.json"
CACHE = HERE / ".cache" / "atlas"
ATLASES = ("ct_train_1002_label", "mmwhs_template_label")  # the real maps the network trained on
ACDC_SPACING = (1.5, 1.5, 8.0)
LGE_SPACING = (0.625, 0.625, 0.625)


def line(name: str, value: str, unit: str = "", **extra) -> None:
    more = "  ".join(f"{k}={v}" for k, v in extra.items())
    print(f"{name:<66} {value:>9} {unit:<4} {more}", flush=True)


class Methods:
    """The methods compared side by side: the built-in network and the multi-atlas peer."""

    def __init__(self, weights, peer: bool):
        self.weights = weights
        self.atlases = atlas_bodies(DATA / "labels_mmwhs_ct", list(ATLASES), CACHE) if peer else None

    @property
    def names(self) -> list[str]:
        return ["network"] + (["atlas"] if self.atlases else [])

    def run(self, method: str, name: str, image: Image, modality: str, body: bool = False) -> tuple:
        """(label map or None with the failure printed, seconds): every case is reported."""
        from cardiotwin.errors import CardiotwinError

        t = time.perf_counter()
        try:
            if method == "network":
                labels = segment(image, modality=modality, weights=self.weights, body=body).labels
            else:  # the same post-processing as the network's
                labels = clean(atlas_segment(image, modality, self.atlases))[0]
        except CardiotwinError as exc:
            line(f"{method}: {name}: FAILED", type(exc).__name__, "", message=str(exc)[:160])
            return None, time.perf_counter() - t
        return labels, time.perf_counter() - t


def heart_dice(pred_labels: np.ndarray, truth_labels: np.ndarray) -> dict[str, float]:
    return dice_per_class(to_classes(pred_labels), to_classes(truth_labels))


def synthetic_cases():
    """(name, image, truth labels, modality) of the held-out synthetic test."""
    from cardiotwin.phantom import generate_phantom

    for seed in (0, 1, 2):
        for modality in ("ct", "mr"):
            ph = generate_phantom(seed=seed, spacing=1.5, modality=modality)
            yield f"phantom{seed}_{modality}", ph.image, ph.labels, modality
    mmwhs = DATA / "labels_mmwhs_ct" / "ct_train_1005_label.nii.gz"
    if mmwhs.exists():
        body = real_heart_body(read_labels(mmwhs))
        synth = Synthesiser([Source.from_labels("1005", body)], seed=7)
        for kind in ("ct", "mr"):
            arr = synth.render(body, kind).cpu().numpy()  # the CT prior is in HU, so the CT checks apply
            yield f"mmwhs1005_{kind}", Image(arr, body.spacing, body.origin, body.direction), body, kind


def synthetic(methods: Methods) -> dict:
    out: dict = {m: {} for m in methods.names}
    for case, image, truth, modality in synthetic_cases():
        for m in methods.names:
            labels, _ = methods.run(m, case, image, modality)
            if labels is not None:
                out[m][case] = heart_dice(labels.array, truth.array)
                line(f"{m}: synthetic {case}: Dice " + ", ".join(f"{k[:7]} {v:.2f}" for k, v in out[m][case].items()),
                     "")
    for m in methods.names:
        for group, names, target in (("blood pools", lab.BLOOD_POOLS, 0.90), ("myocardium", ("lv_myocardium",), 0.80),
                                     ("great vessels", ("aorta", "pulmonary_artery"), 0.85)):
            values = [d[n] for d in out[m].values() for n in names if n in d]
            line(f"{m}: synthetic: median Dice, {group} (target {target})",
                 f"{np.median(values):.3f}" if values else "n/a", "",
                 min=round(float(np.min(values)), 3) if values else None)
    return out


def real_ct(methods: Methods) -> dict:
    from scipy import ndimage

    folder = DATA / "ct_cardiac_cta_totalseg"
    ct = read_image(folder / "ct_cropped.nii.gz")
    aorta_ref = read_image(folder / "aorta.nii.gz").array > 0
    out = {}
    for m in methods.names:
        labels, elapsed = methods.run(m, "real CT crop", ct, "ct", body=True)
        if labels is None:
            out[m] = {"error": "segmentation failed"}
            continue
        aorta_dice = dice(labels.array == lab.label("aorta"), aorta_ref)
        pieces = {n: int(ndimage.label(labels.array == lab.label(n))[1]) for n in CLASSES[1:6]}
        volumes = {n: v for n, v in labels.volumes_ml().items() if n in CLASSES}
        out[m] = {"seconds": elapsed, "aorta_dice_vs_totalsegmentator": aorta_dice, "pieces": pieces,
                  "volumes_ml": volumes, "peak_rss_gb_so_far": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}
        line(f"{m}: real CT crop: time, 2 cores (target < 60 s)", f"{elapsed:.1f}", "s")
        line(f"{m}: real CT crop: aorta Dice vs TotalSegmentator (target 0.85)", f"{aorta_dice:.3f}")
        for n in CLASSES[1:6]:
            line(f"{m}: real CT crop: {n}", f"{volumes.get(n, 0.0):.0f}", "ml", pieces=pieces[n])
    if "seconds" in out["network"]:
        line("network: real CT crop: peak memory (target < 4 GB; --cases ct alone)",
             f"{out['network']['peak_rss_gb_so_far']:.2f}", "GB")
    return out


def real_mri(methods: Methods) -> dict:
    out: dict = {m: {} for m in methods.names}
    acdc = {1: "rv_blood", 2: "lv_myocardium", 3: "lv_blood"}
    for path in sorted((DATA / "mri_acdc_cine").glob("*.h5")):
        image, codes = read_hdf5_volume(path, ACDC_SPACING, slices_first=True)
        for m in methods.names:
            labels, _ = methods.run(m, f"ACDC {path.stem}", image, "mr")
            if labels is None:
                out[m][path.stem] = {"error": "segmentation failed"}
                continue
            d = {name: dice(labels.array == lab.label(name), codes == code) for code, name in acdc.items()}
            out[m][path.stem] = d
            line(f"{m}: ACDC {path.stem}: Dice LV / myo / RV (targets 0.85/0.70/0.75)",
                 f"{d['lv_blood']:.2f}/{d['lv_myocardium']:.2f}/{d['rv_blood']:.2f}")
    for path in sorted((DATA / "mri_la2018_lge").glob("*.h5")):
        image, codes = read_hdf5_volume(path, LGE_SPACING)
        for m in methods.names:
            labels, _ = methods.run(m, "LGE-MRI", image, "mr")
            if labels is None:
                out[m][path.stem] = {"error": "segmentation failed"}
                continue
            la = dice(labels.array == lab.label("la_blood"), codes > 0)
            out[m][path.stem] = {"la_blood": la}
            line(f"{m}: LGE-MRI: LA Dice (target 0.80)", f"{la:.3f}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=None, help="network weights (default: the shipped ones)")
    ap.add_argument("--cases", nargs="+", default=["synthetic", "ct", "mri"])
    ap.add_argument("--no-peer", action="store_true", help="skip the multi-atlas registration peer")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"shared data not found at {DATA}")
    methods = Methods(args.weights, peer=not args.no_peer)
    results = {}
    runners = {"synthetic": synthetic, "ct": real_ct, "mri": real_mri}
    for case in args.cases:
        try:
            results[case] = runners[case](methods)
        except Exception as exc:  # report every case; say plainly what fails
            results[case] = {"error": f"{type(exc).__name__}: {exc}"}
            line(f"{case}: FAILED", type(exc).__name__, "", message=str(exc)[:200])
        write_json_atomic(RESULTS, results)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
