"""Train cardiotwin's built-in segmenter (SynthSeg-style, from label maps only); resumable.

Training maps: phantom seeds ``--phantom-seeds`` (default 10-39) and the real MM-WHS expert maps
``--real`` (default ct_train_1002_label and mmwhs_template_label) from ../shared/data/labels_mmwhs_ct,
each with rule-based walls and veins in an extended torso (cardiotwin.segmentation.sources).
Held out for validation: phantom seeds 900-902 and MM-WHS ct_train_1005_label, drawn with a fixed
seed (16 pairs). Prepared maps are cached in OUT/sources, the checkpoint is OUT/checkpoint.pt and
every run resumes from it (``--init`` starts from exported weights when the checkpoint is lost):

    python training/train_segmenter.py --hours 1.5            # on 2 CPU cores, about 1700 it/h
    python training/train_segmenter.py --device cuda --hours 0.2
    python training/train_segmenter.py --init src/cardiotwin/segmentation/weights/segmenter.pt --hours 2
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

import numpy as np

from cardiotwin.io import read_labels, write_image
from cardiotwin.io.atomic import write_json_atomic, write_text_atomic
from cardiotwin.io.checkpoint import read_torch
from cardiotwin.segmentation.classes import CLASSES
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


def model_card(meta: dict, history: list) -> str:
    """The model card: what the weights are, what they were trained on, how well they do."""
    synth = meta["config"]["synth"]
    val = meta["validation"] or {}
    rows = "\n".join(f"| {k} | {v:.3f} |" for k, v in (val.get("dice") or {}).items())
    curve = ", ".join(f"{h['iteration']}: {np.median(list(h['dice'].values())):.2f}" for h in history[-8:])
    knobs = "\n".join(f"* `{k}` = {v}" for k, v in synth.items())
    return f"""# cardiotwin built-in segmenter: model card

* **What**: a 3D U-Net ({meta['config']['levels']} levels, {meta['config']['width']} channels at the top), input one
  image channel at {synth['spacing_mm']} mm isotropic, output {len(CLASSES)} classes: {', '.join(CLASSES)}.
* **Trained by** `training/train_segmenter.py` at commit `{meta['commit']}`: {meta['iterations']} iterations
  (batch 1, {tuple(synth['patch'])} voxel patches), {meta['training_hours']:.2f} h, on the CPU of the development
  machine (2 cores) unless a GPU was lent.
* **Data**: label maps only (no image was ever seen): phantom seeds {meta['phantom_seeds'][0]}-{meta['phantom_seeds'][-1]}
  and the real MM-WHS expert maps {', '.join(meta['real_maps'])} with rule-based walls and veins in an extended
  torso. Held out: phantom seeds {', '.join(map(str, meta['held_out']['phantom_seeds']))}, MM-WHS
  {', '.join(meta['held_out']['real_maps'])}.
* **Images**: synthesised per draw by domain randomisation (SynthSeg, Billot et al. 2023), knobs:

{knobs}

## Validation (16 fixed draws from the held-out maps, median Dice, iteration {val.get('iteration')})

| structure | Dice |
|---|---|
{rows}

Median over structures at the last validations (iteration: Dice): {curve}.

Real-image figures: `benchmarks/bench_segment.py` (README status table and the issue notes).
"""


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
    ap.add_argument("--device", default="cpu", help="cpu or cuda: the network and the image synthesis run there")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    ap.add_argument("--init", type=Path, default=None,
                    help="without a checkpoint, start from these exported weights (e.g. the shipped ones) instead of "
                         "from scratch")
    ap.add_argument("--export", action="store_true", help="write the shipped weights from the checkpoint and exit")
    ap.add_argument("--weights-out", type=Path, default=WEIGHTS, help="where --export writes the weights")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint = args.out / "checkpoint.pt"
    if args.export:
        ck = read_torch(checkpoint)
        used = json.loads((args.out / "sources.json").read_text())  # what the runs trained on
        meta = {"commit": git_commit(), "iterations": ck["iteration"], "training_hours": ck["seconds"] / 3600,
                "phantom_seeds": used["phantom_seeds"], "real_maps": used["real_maps"],
                "held_out": {"phantom_seeds": HELD_OUT_SEEDS, "real_maps": HELD_OUT_REAL},
                "validation": ck["history"][-1] if ck["history"] else None, "config": ck["config"]}
        out = args.weights_out
        export_weights(checkpoint, out, meta)
        write_json_atomic(out.parent / "training.json", json.loads(json.dumps(meta, default=str)))
        write_text_atomic(out.parent / "MODEL_CARD.md", model_card(meta, ck["history"]))
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) from iteration {ck['iteration']}")
        return
    cache = args.out / "sources"
    write_json_atomic(args.out / "sources.json", {"phantom_seeds": args.phantom_seeds, "real_maps": args.real})
    train_sources = sources(args.phantom_seeds, args.real, cache)
    val = validation_pairs(cache)
    log_file = (args.out / "log.txt").open("a")

    def log(msg: str) -> None:
        print(msg, flush=True)
        log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
        log_file.flush()

    synth = Synthesiser(train_sources, seed=0, device=args.device)  # a resumed run restores its state
    state = train(synth, checkpoint, TrainConfig(), iterations=args.iterations, max_seconds=args.hours * 3600,
                  validation=val, log=log, device=args.device, init=args.init)
    log(f"stopped at iteration {state.iteration} ({state.seconds / 3600:.2f} h trained in all)")


if __name__ == "__main__":
    main()
