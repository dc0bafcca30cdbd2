"""Train cardiotwin's built-in segmenter (SynthSeg-style, from label maps only); resumable.

Training maps: phantom seeds ``--phantom-seeds`` (default 10-39) and the real MM-WHS expert maps
``--real`` (default ct_train_1002_label and mmwhs_template_label) from ../shared/data/labels_mmwhs_ct,
each with rule-based walls and veins in an extended torso (cardiotwin.segmentation.sources).
Held out for validation: phantom seeds 900-902 and MM-WHS ct_train_1005_label, drawn with a fixed
seed (16 pairs). Prepared maps are cached in OUT/sources, the checkpoint is OUT/checkpoint.pt and
every run resumes from it:

    python training/train_segmenter.py --hours 1.5            # on 2 CPU cores, about 1700 it/h
    python training/train_segmenter.py --device cuda --hours 0.2
    python training/train_segmenter.py --export               # write the shipped weights + model card

The log (loss, validation Dice) goes to stdout and OUT/log.txt.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from cardiotwin.io import read_labels, write_image
from cardiotwin.segmentation.sources import phantom_body, real_heart_body
from cardiotwin.segmentation.synth import Source, Synthesiser
from cardiotwin.segmentation.train import TrainConfig, export_weights, train

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MMWHS = REPO.parent / "shared" / "data" / "labels_mmwhs_ct"
WEIGHTS = REPO / "src" / "cardiotwin" / "segmentation" / "weights" / "segmenter.pt"
HELD_OUT_SEEDS = (900, 901, 902)
HELD_OUT_REAL = ("ct_train_1005_label",)


def prepared(name: str, make, cache: Path):
    path = cache / f"{name}.nii.gz"
    if not path.exists():
        t = time.perf_counter()
        write_image(make(), path)
        print(f"prepared {name} in {time.perf_counter() - t:.0f} s", flush=True)
    return Source.from_labels(name, read_labels(path, convention="cardiotwin"))


def sources(seeds, reals, cache: Path) -> list[Source]:
    out = [prepared(f"phantom_{s}", lambda s=s: phantom_body(s), cache) for s in seeds]
    for case in reals:
        if not (MMWHS / f"{case}.nii.gz").exists():
            sys.exit(f"real label map {case} not found in {MMWHS}")
        out.append(prepared(case, lambda c=case: real_heart_body(read_labels(MMWHS / f"{c}.nii.gz")), cache))
    return out


def validation_pairs(cache: Path, n: int = 16):
    held = sources(HELD_OUT_SEEDS, [c for c in HELD_OUT_REAL if (MMWHS / f"{c}.nii.gz").exists()], cache)
    synth = Synthesiser(held, seed=12345)
    return [synth.draw() for _ in range(n)]


def git_commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / ".cache" / "segmenter")
    ap.add_argument("--phantom-seeds", type=int, nargs="*", default=list(range(10, 40)))
    ap.add_argument("--real", nargs="*", default=["ct_train_1002_label", "mmwhs_template_label"])
    ap.add_argument("--iterations", type=int, default=80000, help="total iterations over all runs")
    ap.add_argument("--hours", type=float, default=1.0, help="stop this run after this long")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (the images are drawn on the CPU)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    ap.add_argument("--export", action="store_true", help="write the shipped weights from the checkpoint and exit")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint = args.out / "checkpoint.pt"
    if args.export:
        ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
        meta = {"commit": git_commit(), "iterations": ck["iteration"], "training_hours": ck["seconds"] / 3600,
                "phantom_seeds": args.phantom_seeds, "real_maps": args.real,
                "held_out": {"phantom_seeds": HELD_OUT_SEEDS, "real_maps": HELD_OUT_REAL},
                "validation": ck["history"][-1] if ck["history"] else None, "config": ck["config"]}
        export_weights(checkpoint, WEIGHTS, meta)
        (WEIGHTS.parent / "training.json").write_text(json.dumps(meta, indent=1, default=str))
        print(f"wrote {WEIGHTS} ({WEIGHTS.stat().st_size / 1e6:.1f} MB) from iteration {ck['iteration']}")
        return
    cache = args.out / "sources"
    train_sources = sources(args.phantom_seeds, args.real, cache)
    val = validation_pairs(cache)
    log_file = (args.out / "log.txt").open("a")

    def log(msg: str) -> None:
        print(msg, flush=True)
        log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
        log_file.flush()

    synth = Synthesiser(train_sources, seed=0)  # a resumed run restores the generator's state
    state = train(synth, checkpoint, TrainConfig(), iterations=args.iterations, max_seconds=args.hours * 3600,
                  validation=val, log=log, device=args.device)
    log(f"stopped at iteration {state.iteration} ({state.seconds / 3600:.2f} h trained in all)")


if __name__ == "__main__":
    main()
