"""Training of the built-in segmenter on synthesised images, resumable across runs.

The loss is cross-entropy plus soft Dice over the foreground classes (the pairing nnU-Net uses,
Isensee et al. 2021; the Dice term keeps small structures such as the veins from being swamped by
background). Adam at a constant learning rate, then a step down (``lr_drops``) late in training.
A checkpoint (weights, optimiser, iteration, both random generators' states, the validation
history) is written atomically every ``checkpoint_every`` iterations and at the end of a run, so
training can span many runs of a few minutes to hours (``max_seconds``) on a CPU or a lent GPU.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from cardiotwin.io.checkpoint import read_torch, write_torch
from cardiotwin.segmentation.classes import CLASSES, IGNORE
from cardiotwin.segmentation.metrics import dice_per_class
from cardiotwin.segmentation.synth import Synthesiser, SynthConfig
from cardiotwin.segmentation.unet import UNet3D


@dataclass(frozen=True)
class TrainConfig:
    """Network size and optimisation settings."""

    width: int = 16
    levels: int = 4
    lr: float = 3e-3  # Adam; 1e-3 grew the logits too slowly for the few thousand steps a CPU session gives
    lr_drops: tuple[int, ...] = (40000, 60000)  # iterations at which the rate is divided by 10
    dice_weight: float = 1.0
    checkpoint_every: int = 50
    validate_every: int = 250
    seed: int = 0
    synth: SynthConfig = field(default_factory=SynthConfig)


def loss_fn(logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 1.0) -> torch.Tensor:
    """Cross-entropy + (1 - mean soft Dice of the foreground classes present), ignoring IGNORE voxels."""
    ce = F.cross_entropy(logits, target, ignore_index=IGNORE)
    valid = (target != IGNORE)[:, None]
    prob = logits.softmax(dim=1) * valid
    onehot = F.one_hot(torch.where(valid[:, 0], target, 0), logits.shape[1]).permute(0, 4, 1, 2, 3) * valid
    dims = (0, 2, 3, 4)
    inter = (prob * onehot).sum(dims)[1:]
    denom = (prob.sum(dims) + onehot.sum(dims))[1:]
    present = onehot.sum(dims)[1:] > 0
    dice = (2 * inter + 1e-5) / (denom + 1e-5)
    soft_dice = dice[present].mean() if present.any() else torch.ones(())
    return ce + dice_weight * (1 - soft_dice)


@dataclass
class TrainState:
    """What a checkpoint holds."""

    model: UNet3D
    optimiser: torch.optim.Optimizer
    iteration: int = 0
    history: list = field(default_factory=list)
    seconds: float = 0.0


def new_state(config: TrainConfig) -> TrainState:
    torch.manual_seed(config.seed)
    model = UNet3D(len(CLASSES), width=config.width, levels=config.levels)
    return TrainState(model, torch.optim.Adam(model.parameters(), lr=config.lr))


def save_checkpoint(state: TrainState, synth: Synthesiser, config: TrainConfig, path: Path) -> Path:
    """Everything needed to resume, written atomically."""
    return write_torch({"model": state.model.state_dict(), "model_config": state.model.config,
                        "optimiser": state.optimiser.state_dict(), "iteration": state.iteration,
                        "history": state.history, "seconds": state.seconds, "config": asdict(config),
                        "numpy_rng": synth.rng.bit_generator.state, "torch_rng": synth.gen.get_state()}, path)


def load_checkpoint(path: Path, synth: Synthesiser, config: TrainConfig) -> TrainState:
    ck = read_torch(path)
    state = new_state(config)
    state.model.load_state_dict(ck["model"])
    state.optimiser.load_state_dict(ck["optimiser"])
    state.iteration, state.history, state.seconds = ck["iteration"], ck["history"], ck["seconds"]
    synth.rng.bit_generator.state = ck["numpy_rng"]
    synth.gen.set_state(ck["torch_rng"])
    return state


def warm_start(weights: Path, synth: Synthesiser, config: TrainConfig) -> TrainState:
    """A state from shipped weights (``export_weights``) when the checkpoint is gone: the network,
    its iteration count, time and last validation; a fresh optimiser (its moments rebuild within a
    few hundred steps) and the synthesiser reseeded by the iteration, so no earlier draw repeats."""
    ck = read_torch(weights)
    state = new_state(config)
    if ck["model_config"] != state.model.config:
        raise ValueError(f"{weights}: network {ck['model_config']} differs from the training configuration "
                         f"{state.model.config}")
    state.model.load_state_dict(ck["model"])
    meta = ck.get("metadata", {})
    state.iteration = int(ck["iteration"])
    state.seconds = float(meta.get("training_hours", 0.0)) * 3600
    state.history = [meta["validation"]] if meta.get("validation") else []
    synth.rng = np.random.default_rng(state.iteration)
    synth.gen = torch.Generator().manual_seed(state.iteration)
    return state


def validate(model: UNet3D, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    """Median Dice per class over fixed held-out pairs."""
    model.eval()
    scores: dict[str, list[float]] = {}
    with torch.no_grad():
        for image, target in pairs:
            pred = model(image[None].to(next(model.parameters()).device)).argmax(dim=1)[0].cpu().numpy()
            for name, d in dice_per_class(pred, target.numpy()).items():
                scores.setdefault(name, []).append(d)
    model.train()
    return {k: float(np.median(v)) for k, v in scores.items()}


def train(synth: Synthesiser, checkpoint: Path, config: TrainConfig = TrainConfig(), iterations: int = 1000,
          max_seconds: float = float("inf"), validation: list | None = None,
          log: Callable[[str], None] = print, device: str = "cpu", init: Path | None = None) -> TrainState:
    """Train (resuming from ``checkpoint`` when it exists, else from the weights ``init`` when given)
    up to ``iterations`` in total or for ``max_seconds`` of this run, whichever comes first; returns
    the final state (also checkpointed)."""
    if checkpoint.exists():
        state = load_checkpoint(checkpoint, synth, config)
    elif init is not None:
        state = warm_start(init, synth, config)
        log(f"started from the weights {init} (iteration {state.iteration}) with a fresh optimiser")
    else:
        state = new_state(config)
    if state.iteration:
        log(f"resumed at iteration {state.iteration} ({state.seconds / 3600:.2f} h trained)")
    start = time.perf_counter()
    model, opt = state.model.to(device), state.optimiser
    for moments in opt.state.values():  # a resumed optimiser's moments follow the model ("step" stays on the CPU)
        for key, value in moments.items():
            if key != "step" and torch.is_tensor(value):
                moments[key] = value.to(device)
    model.train()
    running = []
    while state.iteration < iterations and time.perf_counter() - start < max_seconds:
        t0 = time.perf_counter()
        image, target = synth.draw()
        lr = config.lr / 10 ** sum(state.iteration >= d for d in config.lr_drops)
        for group in opt.param_groups:
            group["lr"] = lr
        loss = loss_fn(model(image[None].to(device)), target[None].to(device), config.dice_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state.iteration += 1
        state.seconds += time.perf_counter() - t0
        running.append(loss.item())
        if state.iteration % config.checkpoint_every == 0:
            log(f"iteration {state.iteration}: loss {np.mean(running):.3f} (lr {lr:g}, "
                f"{state.seconds / state.iteration:.2f} s/it)")
            running = []
            if validation and state.iteration % config.validate_every == 0:
                dice = validate(model, validation)
                state.history.append({"iteration": state.iteration, "dice": dice})
                log("  validation Dice " + ", ".join(f"{k} {v:.2f}" for k, v in dice.items()))
            save_checkpoint(state, synth, config, checkpoint)
    save_checkpoint(state, synth, config, checkpoint)
    return state


def export_weights(checkpoint: Path, out: Path, metadata: dict) -> Path:
    """The shipped weights: the network's state and configuration, its classes and input spacing,
    and ``metadata`` (training data, iterations, validation, commit), without the optimiser."""
    ck = read_torch(checkpoint)
    return write_torch({"model": ck["model"], "model_config": ck["model_config"], "classes": list(CLASSES),
                        "spacing_mm": ck["config"]["synth"]["spacing_mm"], "iteration": ck["iteration"],
                        "metadata": metadata}, out)


