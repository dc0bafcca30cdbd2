"""The shipped segmenter weights: they load, and they segment a held-out synthetic patient.

The phantom (seed 900, never used in training) is imaged by the phantom's own CT model, not by the
training prior, and cut to a 140 mm box around the heart so one network window covers it. The
Dice bounds are those of the weights as shipped (see weights/MODEL_CARD.md and
benchmarks/bench_segment.py for the full figures), minus a margin: they catch weights that were
not exported, corrupted, or swapped for worse ones.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="PyTorch not installed (pip install torch==2.13.0)")

from cardiotwin.segmentation import segment  # noqa: E402
from cardiotwin.segmentation.classes import to_classes  # noqa: E402
from cardiotwin.segmentation.infer import Segmenter  # noqa: E402
from cardiotwin.segmentation.metrics import dice_per_class  # noqa: E402
from cardiotwin.segmentation.sources import heart_box  # noqa: E402

SHIPPED_MIN_DICE = {"lv_blood": 0.85, "rv_blood": 0.75, "la_blood": 0.8, "ra_blood": 0.8, "lv_myocardium": 0.75}
# measured 0.93 / 0.86 / 0.90 / 0.92 / 0.85 (iteration 7100)


def test_shipped_weights_load_with_their_card():
    seg = Segmenter.load()
    assert seg.spacing_mm == 2.0 and seg.metadata["iterations"] > 0 and seg.metadata["commit"]
    assert sum(p.numel() for p in seg.model.parameters()) * 4 < 50e6  # < 50 MB of float32


def test_shipped_weights_segment_a_held_out_phantom():
    from cardiotwin.phantom import generate_phantom

    ph = generate_phantom(seed=900, spacing=2.0, modality="ct")
    box = heart_box(ph.labels, half_mm=70.0)
    image, truth = ph.image.crop(box), ph.labels.crop(box)
    result = segment(image, modality="ct", body=False)
    dice = dice_per_class(to_classes(result.labels.array), to_classes(truth.array))
    print("held-out phantom 900 Dice", {k: round(v, 3) for k, v in dice.items()})
    for name, bound in SHIPPED_MIN_DICE.items():
        assert dice[name] >= bound, (name, dice[name])
