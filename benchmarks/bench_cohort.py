"""Benchmark: one case from image to calibrated twin, and cohort throughput on Dask.

Figures (one line each; JSON to benchmarks/results/cohort.json), on this machine's 2 cores:

* **image to calibrated twin**: the CT image of phantom seed 2 (a seed the segmenter never trained
  on) at 1 mm, written as NIfTI, and a real PTB record (s0010_re), through ``cardiotwin run`` with
  the default settings: wall time per stage and in all (target < 15 min); the second run (every
  stage skipped, target < 10 s); the cache's overhead (hashing inputs and outputs, moving files,
  records: the case's wall time less its stages' own time; target < 2 % of the case).
* **cohort throughput**: phantom seeds 2, 3 and 5 at 1.5 mm with a reduced calibration (``COHORT_TOML``)
  plus one broken case (an unreadable label map), run by ``cardiotwin cohort`` with 1 and with 2
  workers, side by side with the peer's way, a bash loop of ``cardiotwin run`` one case after
  another: cases per hour, the engine's overhead (cohort wall time less the cases' own time, with 1
  worker; target < 2 %), "N failed" and the exit status.
* the case report and the cohort summary page in headless Chromium: pictures loaded.

    python benchmarks/bench_cohort.py [--skip-case] [--skip-cohort] [--work DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
RESULTS = HERE / "results" / "cohort.json"
ECG = DATA / "ecg_ptbdb_s0010_re" / "s0010_re.hea"
# seeds 2, 3, 5 at 1.5 mm: at 2 mm the 2.5 mm atrial walls of some seeds fall apart into pieces, and
# seed 4's heart reaches the skin (a phantom fault, issue note), so its lead fields are refused
COHORT_SEEDS = (2, 3, 5)
COHORT_TOML = ('phantom_spacing_mm = 1.5\nedge_mm = 1.5\n[calibration]\nbudget = 16\nstages = ["QRS", "T"]\n'
               "mapping_rounds = 0\nroot_sites = 0\n")
CLI = [sys.executable, "-c", "from cardiotwin.cli import app; app()"]


def line(name: str, value: str, unit: str = "", **extra) -> None:
    more = "  ".join(f"{k}={v}" for k, v in extra.items())
    print(f"{name:<66} {value:>9} {unit:<4} {more}", flush=True)


def one_case(work: Path) -> dict:
    from cardiotwin import fields as F
    from cardiotwin.io import write_image
    from cardiotwin.phantom import generate_phantom
    from cardiotwin.pipeline.run import run_case
    from cardiotwin.report.browser import chromium, images_loaded

    image = work / "phantom2_ct.nii.gz"
    if not image.exists():
        write_image(generate_phantom(seed=2, spacing=1.0, modality="ct").image, image)
    case = work / "case"
    shutil.rmtree(case, ignore_errors=True)
    start = time.perf_counter()
    runs = run_case(case, image=image, ecg=ECG, log=lambda m: print("   ", m, flush=True))
    wall = time.perf_counter() - start
    stages = {n: r.record["seconds"] for n, r in runs.items()}
    for name, seconds in stages.items():
        line(f"run: image to calibrated twin: stage {name}", f"{seconds:.1f}", "s")
    line("run: image to calibrated twin, all stages (target < 900 s)", f"{wall:.1f}", "s")
    overhead = (wall - sum(stages.values())) / wall
    line("run: cache overhead, share of the case (target < 2 %)", f"{100 * overhead:.2f}", "%")
    start = time.perf_counter()
    again = run_case(case, image=image, ecg=ECG)
    second = time.perf_counter() - start
    line("run: second run, every stage skipped (target < 10 s)", f"{second:.2f}", "s",
         skipped=sum(r.skipped for r in again.values()), stages=len(again))
    out = {"stages_s": stages, "wall_s": wall, "cache_overhead": overhead, "second_run_s": second}
    cal = json.loads((case / F.CALIBRATION_DIR / F.CALIBRATION).read_text())
    out["median_r"] = cal["median_correlation"]
    line("run: fit, median r per wave", ", ".join(f"{w} {r:.2f}" for w, r in cal["median_correlation"].items()))
    seg = json.loads((case / F.SEGMENTATION_DIR / F.SEGMENTATION_REPORT).read_text())
    out["segmentation_warnings"] = seg["warnings"]
    if chromium():
        loaded, total = images_loaded(case / F.REPORT, screenshot=work / "report.png")
        line("run: report.html in headless Chromium, pictures loaded", f"{loaded}/{total}")
        out["report_images"] = [loaded, total]
    return out


def cohort(work: Path) -> dict:
    (work / "broken.nii.gz").write_bytes(b"not an image")
    table = work / "cohort.csv"
    table.write_text("id,phantom,labels,ecg\n" + "".join(f"p{s},{s},,{ECG}\n" for s in COHORT_SEEDS)
                     + "broken,,broken.nii.gz,\n")
    config = work / "cohort.toml"
    config.write_text(COHORT_TOML)
    out: dict = {}
    n = len(COHORT_SEEDS)
    # the peer: a bash loop of `cardiotwin run`, one case after another
    loop = work / "loop"
    shutil.rmtree(loop, ignore_errors=True)
    script = "; ".join(f"{' '.join(CLI[:2])} '{CLI[2]}' run --phantom {s} --ecg {ECG} --out {loop}/p{s} "
                       f"--config {config} > /dev/null" for s in COHORT_SEEDS)
    start = time.perf_counter()
    status = subprocess.run(["bash", "-c", script]).returncode
    loop_s = time.perf_counter() - start
    line("peer (bash loop of cardiotwin run): 3 cases, wall time", f"{loop_s:.0f}", "s",
         cases_per_hour=round(3600 * n / loop_s, 1), exit_status=status)
    out["bash_loop"] = {"wall_s": loop_s, "cases_per_hour": 3600 * n / loop_s}
    for workers in (1, 2):
        target = work / f"cohort_{workers}"
        shutil.rmtree(target, ignore_errors=True)
        start = time.perf_counter()
        proc = subprocess.run([*CLI, "cohort", str(table), "--out", str(target), "--workers", str(workers),
                               "--config", str(config)], capture_output=True, text=True)
        wall = time.perf_counter() - start
        rows = list(csv.DictReader((target / "cohort_summary.csv").open()))
        done = [r for r in rows if r["status"] == "done"]
        case_s = sum(float(r["seconds"]) for r in done)
        failed_line = next((ln for ln in proc.stdout.splitlines() if "failed;" in ln), "")
        line(f"cardiotwin cohort, {workers} worker(s): {n} cases + 1 broken, wall time", f"{wall:.0f}", "s",
             cases_per_hour=round(3600 * len(done) / wall, 1), exit_status=proc.returncode)
        line(f"cardiotwin cohort, {workers} worker(s): done / failed", f"{len(done)}/{len(rows) - len(done)}", "",
             printed=repr(failed_line.strip()[:40]))
        entry = {"wall_s": wall, "cases_per_hour": 3600 * len(done) / wall, "exit_status": proc.returncode,
                 "done": len(done), "failed": len(rows) - len(done), "case_seconds": case_s}
        if workers == 1:
            entry["engine_overhead"] = (wall - case_s) / case_s
            line("cardiotwin cohort: engine overhead, 1 worker (cluster start included; target < 2 %)",
                 f"{100 * entry['engine_overhead']:.1f}", "%")
        out[f"workers_{workers}"] = entry
    from cardiotwin.report.browser import chromium, images_loaded

    if chromium():
        page = work / "cohort_2" / "p3" / "report.html"
        loaded, total = images_loaded(page)
        line("cohort: a case's report.html in headless Chromium, pictures loaded", f"{loaded}/{total}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=HERE / ".cache" / "cohort")
    ap.add_argument("--skip-case", action="store_true", help="skip the image-to-twin case")
    ap.add_argument("--skip-cohort", action="store_true", help="skip the cohort throughput")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"shared data not found at {DATA}")
    args.work.mkdir(parents=True, exist_ok=True)
    from cardiotwin.io.atomic import write_json_atomic

    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if not args.skip_case:
        results["case"] = one_case(args.work)
        write_json_atomic(RESULTS, results)
    if not args.skip_cohort:
        results["cohort"] = cohort(args.work)
        write_json_atomic(RESULTS, results)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
