"""The amortised-inference network (PyTorch, the ``ml`` extra): population cache, training,
prediction and the ML route of ``calibrate``; skipped without PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from cardiotwin.calibration.emulator import MissingDependencyError, torch_available

needs_torch = pytest.mark.skipif(not torch_available(), reason="PyTorch not installed (pip install torch==2.13.0)")


def test_missing_torch_is_a_specific_error(monkeypatch):
    import builtins

    from cardiotwin.calibration import emulator

    real_import = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "torch":
            raise ImportError("no torch")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    assert not emulator.torch_available()
    with pytest.raises(MissingDependencyError, match="pip install torch"):
        emulator._torch()


@pytest.fixture(scope="module")
def model(calibration_model):
    return calibration_model


@needs_torch
def test_population_cache_training_and_ml_route(model, tmp_path):
    """64 coarse simulations (~7 s), cached and reloaded identically; a short training beats the
    prior mean on held-out draws is not asserted at this size (the benchmark trains on 1500: 0.19 vs
    0.26 unit-cube MAE at 800); predictions lie in the unit cube with positive SDs; the ML route runs."""
    from cardiotwin.calibration import SearchSpace, Target, calibrate
    from cardiotwin.calibration.emulator import Emulator
    from cardiotwin.io.checkpoint import read_torch, write_torch
    from cardiotwin.pipeline.population import cached_population
    from cardiotwin.calibration.synthetic import synthetic_beat

    pop = cached_population(model, 64, seed=5, cache_dir=tmp_path)
    files = list(tmp_path.glob("population-*.npz"))
    assert len(files) == 1
    again = cached_population(model, 64, seed=5, cache_dir=tmp_path)
    assert np.array_equal(pop["ecg"], again["ecg"]) and np.array_equal(pop["x"], again["x"])
    assert pop["ecg"].shape[:2] == (64, 12) and np.isfinite(pop["ecg"]).all()
    emu = Emulator.train(model, population=pop, seed=0, epochs=30, hidden=64)
    assert emu.n_simulations == 64 and np.isfinite(emu.validation["mae_unit"])
    space = SearchSpace.for_stage("QRS")
    truth = space.to_params(space.sample(np.random.default_rng(2), 1)[0])
    beat, _ = synthetic_beat(model, truth, np.random.default_rng(2))
    x, sd = emu.predict_unit(Target.from_beat(beat), with_sd=True)
    assert x.shape == (space.ndim,) and np.all((x >= 0) & (x <= 1)) and np.all(sd > 0)
    path = write_torch(emu.as_dict(), tmp_path / "emu.pt")
    assert np.allclose(Emulator.from_dict(read_torch(path)).predict_unit(Target.from_beat(beat)), x)
    res = calibrate(model.twin, beat, method="ml", emulator=emu, budget=24, seed=0, model=model, mapping_rounds=0,
                    stages=("QRS",))
    assert res.method == "ml" and "emulator_inference" in res.timings and res.n_simulations["coarse"] <= 24
    assert np.isfinite(res.median_correlation("QRS"))
