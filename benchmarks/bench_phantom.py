"""Benchmark: time to generate (and write) a 1 mm CT phantom with torso, and its structure volumes.

Target (issue 2): under 30 s on a 2-core machine. Prints one line per figure and writes JSON to
benchmarks/results/phantom.json.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from cardiotwin.io.phantom import write_phantom
from cardiotwin.phantom import generate_phantom


def main(seeds: list[int]) -> None:
    results = []
    for seed in seeds:
        start = time.perf_counter()
        ph = generate_phantom(seed=seed, spacing=1.0, modality="ct")
        generate_s = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            write_phantom(ph, tmp)
            write_s = time.perf_counter() - start
        vol = ph.volumes_ml()
        print(f"phantom seed={seed} grid={ph.image.shape} voxels={ph.image.array.size / 1e6:.1f}M "
              f"generate_s={generate_s:.2f} write_s={write_s:.2f} cpus={os.cpu_count()}")
        for name, ml in vol.items():
            print(f"  volume seed={seed} {name}={ml:.1f} ml")
        results.append({"seed": seed, "grid": ph.image.shape, "generate_s": generate_s, "write_s": write_s,
                        "volumes_ml": vol})
    out = Path(__file__).parent / "results" / "phantom.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [0])
