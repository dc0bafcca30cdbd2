"""Amortised inference of the QRS parameters from the ECG with a neural network (PyTorch, the
``ml`` extra).

Simulation-based inference replaces a per-patient optimisation by a network trained once on
simulations of the patient's anatomy (Cranmer, Brehmer & Louppe 2020, PNAS 117:30055; for cardiac
digital twins, emulators and learned inverse maps: Camps et al. 2024, and the Gaussian-process /
neural-network emulators reviewed by Niederer et al. 2021). Here:

* **population**: QRS parameters drawn uniformly from the calibration box
  (:class:`~.space.SearchSpace` ``"QRS"``), solved on the coarse ventricular model
  (:class:`~.coarse.CoarseVentricles`, ~0.05-0.1 s each) and turned into 12-lead QRS segments with
  the twin's own lead fields; cached on disk (``.npz``, written atomically, keyed by the mesh,
  the box, the size and the seed);
* **features**: each lead from 20 ms before to 160 ms after the ventricular onset at 500 Hz,
  scaled by the beat's RMS over all leads (amplitude is not trusted, as in the objective's global
  gain), and a mask of the leads present;
* **network**: an MLP mapping features to a Gaussian over the unit-cube parameters (mean through a
  sigmoid and a log-variance; trained by the Gaussian negative log-likelihood, so the variance is
  a per-parameter uncertainty: large where the ECG does not determine the parameter), with
  augmentation for what a measured beat adds: random onset lags of up to ±8 ms (the delineator's
  onset bias), white noise, and random lead dropout (excluded leads);
* **use**: ``calibrate(method="ml")`` starts CMA-ES at the network's estimate with a small step size
  and a quarter of the budget; the benchmark compares that with CMA-ES from the defaults at equal
  fit. The network is trained per anatomy (it learns this heart's θ -> ECG map, inverted).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np

from cardiotwin.calibration.objective import Target
from cardiotwin.calibration.space import SearchSpace
from cardiotwin.electrophysiology.parameters import EpParameters
from cardiotwin.errors import CardiotwinError, InvalidParameterError
from cardiotwin.types import TWELVE_LEADS

__all__ = ["MissingDependencyError", "torch_available", "simulate_population", "Emulator", "FEATURE_FS",
           "FEATURE_SPAN_MS"]

FEATURE_FS = 500.0
FEATURE_SPAN_MS = (-20.0, 160.0)
MAX_SHIFT_MS = 8.0
_SIM_SPAN_MS = (FEATURE_SPAN_MS[0] - MAX_SHIFT_MS, FEATURE_SPAN_MS[1] + MAX_SHIFT_MS)


class MissingDependencyError(CardiotwinError, ImportError):
    """An optional dependency (here PyTorch) is not installed."""


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _torch():
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(
            "the ML calibration needs PyTorch (a cardiotwin dependency): pip install torch==2.13.0"
        ) from None
    return torch


# ------------------------------------------------------------------------------ population


POPULATION_VERSION = 2
"""Bumped whenever the coarse forward model changes, so cached populations are not reused."""


def population_key(model, n: int, seed: int = 0, base: EpParameters | None = None) -> str:
    """Fingerprint of the population :func:`simulate_population` draws (anatomy, search box, size, seed)."""
    space = SearchSpace.for_stage("QRS", base or EpParameters())
    h = hashlib.sha256()
    h.update(f"v{POPULATION_VERSION}".encode())
    pts = model.twin.heart.points
    h.update(np.asarray([pts.shape[0], *pts.sum(axis=0), *space.low, *space.high, n, seed,
                         model.coarse_edge_mm or 0.0], dtype=np.float64).tobytes())
    h.update(",".join(space.names).encode())
    return h.hexdigest()[:16]


def simulate_population(model, n: int, seed: int = 0, *, base: EpParameters | None = None,
                        chunk: int = 16, fidelity: str = "coarse") -> dict[str, np.ndarray]:
    """``n`` simulated QRS segments of the twin: ``x`` (n, d) unit-cube parameters and ``ecg``
    (n, 12, samples) at :data:`FEATURE_FS` over the onset-relative span widened by the augmentation
    shift (cached by :func:`cardiotwin.pipeline.population.cached_population`)."""
    if n < 2:
        raise InvalidParameterError(f"a training population needs at least 2 simulations, got {n}")
    space = SearchSpace.for_stage("QRS", base or EpParameters())
    rng = np.random.default_rng(seed)
    xs = space.sample(rng, n)
    atrial, v_start = model.atrial([space.base])
    out = np.empty((n, 12, int(round((_SIM_SPAN_MS[1] - _SIM_SPAN_MS[0]) * FEATURE_FS / 1000.0))))
    start = time.perf_counter()
    for lo in range(0, n, chunk):
        ps = [space.to_params(x) for x in xs[lo:lo + chunk]]
        vent = model.ventricular(ps, fidelity)
        b = len(ps)
        at = model.assemble(None if atrial is None else np.repeat(atrial, b, 0), np.repeat(v_start, b), vent)
        out[lo:lo + b] = model.segments(at, space.base, TWELVE_LEADS, FEATURE_FS, _SIM_SPAN_MS)
    return {"x": xs, "ecg": out, "time_s": np.array(time.perf_counter() - start)}


# ------------------------------------------------------------------------------ features


def _normalise(seg: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Scale each beat (…, 12, s) by its RMS over the present leads; absent leads zero."""
    seg = seg * mask[..., :, None]
    rms = np.sqrt((seg**2).sum(axis=(-1, -2), keepdims=True) / np.maximum(mask.sum(-1)[..., None, None] * seg.shape[-1], 1))
    return seg / np.maximum(rms, 1e-9)


def target_features(target: Target) -> tuple[np.ndarray, np.ndarray]:
    """(12, s) normalised segment of a measured beat around its QRS onset and its (12,) lead mask."""
    fs = target.fs
    t = np.arange(target.signals.shape[1]) * 1000.0 / fs - target.qrs_on_ms
    grid = np.arange(int(round((FEATURE_SPAN_MS[1] - FEATURE_SPAN_MS[0]) * FEATURE_FS / 1000.0))) * 1000.0 / FEATURE_FS \
        + FEATURE_SPAN_MS[0]
    seg = np.zeros((12, len(grid)))
    mask = np.zeros(12)
    for lead, row in zip(target.leads, target.signals):
        k = TWELVE_LEADS.index(lead)
        seg[k] = np.interp(grid, t, row)
        mask[k] = 1.0
    return _normalise(seg, mask), mask


# ------------------------------------------------------------------------------ the network


@dataclass
class Emulator:
    """A trained amortised-inference network for one twin (see the module docstring)."""

    space: SearchSpace
    state: dict
    hidden: int
    n_inputs: int
    n_simulations: int
    simulation_s: float
    training_s: float
    validation: dict

    def _net(self):
        torch = _torch()
        return _mlp(torch, self.n_inputs, self.hidden, self.space.ndim)

    @classmethod
    def train(cls, model, fs: float = 1000.0, *, n: int = 1500, seed: int = 0, epochs: int = 400,
              hidden: int = 256, population: dict | None = None,
              base: EpParameters | None = None) -> "Emulator":
        """Simulate (or take ``population``) on ``model``'s coarse ventricles and fit the network
        (deterministic given ``seed``). 10 % of the population is held out for ``validation``
        (mean absolute error of the unit-cube parameters, and of the naive prior mean)."""
        torch = _torch()
        torch.manual_seed(seed)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a small MLP: thread synchronisation costs more than it saves (45x on 2 busy cores)
        try:
            return cls._train(torch, model, n, seed, epochs, hidden, population, base)
        finally:
            torch.set_num_threads(threads)

    @classmethod
    def _train(cls, torch, model, n, seed, epochs, hidden, population, base) -> "Emulator":
        data = population or simulate_population(model, n, seed, base=base)
        space = SearchSpace.for_stage("QRS", base or EpParameters())
        x, ecg = np.asarray(data["x"]), np.asarray(data["ecg"])
        n = len(x)
        rng = np.random.default_rng(seed)
        order = rng.permutation(n)
        n_val = max(1, n // 10)
        val, tr = order[:n_val], order[n_val:]
        start = time.perf_counter()
        n_feat = ecg.shape[2] - 2 * int(round(MAX_SHIFT_MS * FEATURE_FS / 1000.0))
        n_inputs = 12 * n_feat + 12
        net = _mlp(torch, n_inputs, hidden, space.ndim)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        y_all = torch.tensor(x, dtype=torch.float32)
        batch = 128
        for epoch in range(epochs):
            perm = rng.permutation(tr)
            for lo in range(0, len(perm), batch):
                idx = perm[lo:lo + batch]
                feats = torch.tensor(_augment(ecg[idx], rng, n_feat), dtype=torch.float32)
                mean, logvar = _split(torch, net(feats))
                loss = (0.5 * (logvar + (y_all[idx] - mean) ** 2 / logvar.exp())).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            sched.step()
        training_s = time.perf_counter() - start
        emu = cls(space, {k: v.detach().clone() for k, v in net.state_dict().items()}, hidden, n_inputs, n,
                  float(data.get("time_s", np.nan)), training_s, {})
        feats = _augment(ecg[val], np.random.default_rng(seed + 1), n_feat)
        pred = emu._predict(feats)[0]
        emu.validation = {"n": int(n_val), "mae_unit": float(np.mean(np.abs(pred - x[val]))),
                          "mae_unit_prior_mean": float(np.mean(np.abs(0.5 - x[val]))),
                          "mae_unit_per_parameter": dict(zip(space.names, np.mean(np.abs(pred - x[val]), 0).round(4).tolist()))}
        return emu

    def _predict(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = _torch()
        net = self._net()
        net.load_state_dict(self.state)
        net.eval()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        with torch.no_grad():
            mean, logvar = _split(torch, net(torch.tensor(feats, dtype=torch.float32)))
        torch.set_num_threads(threads)
        return mean.numpy().astype(float), np.exp(0.5 * logvar.numpy()).astype(float)

    def predict_unit(self, target: Target, with_sd: bool = False):
        """Unit-cube QRS parameters (d,) estimated from a measured beat (and their SDs)."""
        seg, mask = target_features(target)
        feats = np.concatenate([seg.ravel(), mask])[None]
        mean, sd = self._predict(feats)
        return (mean[0], sd[0]) if with_sd else mean[0]

    def predict(self, target: Target, base: EpParameters | None = None) -> EpParameters:
        return self.space.to_params(self.predict_unit(target), base or self.space.base)

    def as_dict(self) -> dict:
        """Everything :meth:`from_dict` needs (written with :func:`cardiotwin.io.checkpoint.write_torch`)."""
        return {"state": self.state, "hidden": self.hidden, "n_inputs": self.n_inputs,
                "names": self.space.names, "low": self.space.low, "high": self.space.high,
                "n_simulations": self.n_simulations, "simulation_s": self.simulation_s,
                "training_s": self.training_s, "validation": self.validation, "base": self.space.base.as_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "Emulator":
        space = SearchSpace.for_stage("QRS", EpParameters.from_dict(d["base"]))
        if tuple(d["names"]) != space.names:
            raise InvalidParameterError(f"the emulator was trained for another search space ({d['names']})")
        return cls(space, d["state"], d["hidden"], d["n_inputs"], d["n_simulations"], d["simulation_s"],
                   d["training_s"], d["validation"])


def _mlp(torch, n_in: int, hidden: int, d: int):
    nn = torch.nn
    return nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                         nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 2 * d))


def _split(torch, out):
    d = out.shape[1] // 2
    return torch.sigmoid(out[:, :d]), out[:, d:].clamp(-12.0, 4.0)


def _augment(ecg: np.ndarray, rng: np.random.Generator, n_feat: int) -> np.ndarray:
    """Random lag crop, lead dropout, noise; returns (b, 12 * n_feat + 12) features."""
    b = len(ecg)
    max_shift = (ecg.shape[2] - n_feat) // 2
    shift = rng.integers(-max_shift, max_shift + 1, b)
    idx = (max_shift + shift)[:, None] + np.arange(n_feat)[None]
    seg = np.take_along_axis(ecg, idx[:, None, :].repeat(12, 1), axis=2)
    mask = (rng.random((b, 12)) > 0.1).astype(float)
    mask[mask.sum(1) < 6] = 1.0
    seg = _normalise(seg, mask)
    seg = seg + 0.03 * rng.standard_normal(seg.shape) * mask[:, :, None]
    return np.concatenate([seg.reshape(b, -1), mask], axis=1)
