"""The segmentation package: synthetic training data, network, training resume, inference geometry,
post-processing and input checks (the shipped weights are tested in test_segmentation_weights.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch not installed (pip install torch==2.13.0)")

from cardiotwin import labels as lab  # noqa: E402
from cardiotwin.errors import InvalidImageError  # noqa: E402
from cardiotwin.segmentation import check_image  # noqa: E402
from cardiotwin.segmentation.classes import CLASSES, IGNORE, to_classes, to_labels  # noqa: E402
from cardiotwin.segmentation.infer import network_grid, sliding_window, to_input_grid  # noqa: E402
from cardiotwin.segmentation.postprocess import clean  # noqa: E402
from cardiotwin.segmentation.synth import Source, SynthConfig, Synthesiser, _thick_slices, random_rotation  # noqa: E402
from cardiotwin.segmentation.metrics import dice_per_class  # noqa: E402
from cardiotwin.segmentation.train import TrainConfig, export_weights, loss_fn, train  # noqa: E402
from cardiotwin.segmentation.unet import UNet3D  # noqa: E402
from cardiotwin.types import Image, LabelImage  # noqa: E402


def ball_map(shape=(60, 60, 60), spacing=(1.0, 1.0, 1.0)) -> LabelImage:
    """Two touching 'chambers' (LV, LA) in a 'torso', on a 1 mm grid."""
    idx = np.indices(shape).transpose(1, 2, 3, 0) * np.asarray(spacing)
    arr = np.full(shape, lab.label("torso"), dtype=np.int16)
    c = np.asarray(shape) * np.asarray(spacing) / 2
    arr[((idx - c) ** 2).sum(-1) < 12**2] = lab.label("lv_blood")
    arr[((idx - c - [0, 0, 18]) ** 2).sum(-1) < 8**2] = lab.label("la_blood")
    arr[((idx - c - [0, 0, -10]) ** 2).sum(-1) < 3**2] = lab.label("mitral_valve")
    return LabelImage(arr, spacing, (-30.0, -20.0, 5.0))


def test_class_mapping_round_trip_and_valves_join_their_chamber():
    arr = np.array([lab.label(n) for n in CLASSES[1:]] + [lab.label("mitral_valve"), lab.label("rv_myocardium")])
    cls = to_classes(arr)
    assert list(cls[:-2]) == list(range(1, len(CLASSES)))
    assert cls[-2] == CLASSES.index("lv_blood") and cls[-1] == 0  # valve -> its ventricle; RV wall -> background
    assert list(to_labels(cls[:-2])) == list(arr[:-2])


def test_rotations_are_proper_no_mirroring():
    rng = np.random.default_rng(0)
    for any_rot in (True, False):
        for _ in range(20):
            r = random_rotation(rng, any_rot, 20.0)
            assert np.allclose(r @ r.T, np.eye(3), atol=1e-9)
            assert np.isclose(np.linalg.det(r), 1.0)  # a mirror would swap left and right hearts


def test_without_augmentation_the_target_is_the_map_itself():
    """Ground truth for the geometry: no rotation/scale/warp, the target at each 2 mm voxel is the
    map's class at that physical point."""
    labels = ball_map()
    cfg = SynthConfig(patch=(16, 16, 16), heart_jitter_mm=0.0, p_off_heart=0.0, p_any_rotation=0.0,
                      small_rotation_deg=0.0, scale=(1.0, 1.0), anisotropic_scale=0.0, elastic_mm=0.0,
                      p_crop_view=0.0)
    src = Source.from_labels("balls", labels)
    image, target = Synthesiser([src], cfg, seed=3).draw()
    assert image.shape == (1, 16, 16, 16) and 0 <= float(image.min()) and float(image.max()) <= 1
    h = np.arange(16) * 2.0 - 15.0  # 2 mm voxel centres about the heart centre
    pts = np.stack(np.meshgrid(h, h, h, indexing="ij"), -1) + src.heart_mm
    idx = np.rint(labels.physical_to_index(pts)).astype(int)
    expected = to_classes(labels.array[idx[..., 0], idx[..., 1], idx[..., 2]])
    agree = (target.numpy() == expected).mean()
    assert agree > 0.97  # only voxels whose 2 mm centre sits on a 1 mm voxel boundary may differ
    assert set(np.unique(target.numpy())) == {0, CLASSES.index("lv_blood"), CLASSES.index("la_blood")}


def test_the_cropped_view_is_ignored_and_blank():
    cfg = SynthConfig(patch=(16, 16, 16), p_crop_view=1.0)
    synth = Synthesiser([Source.from_labels("balls", ball_map())], cfg, seed=0)
    for _ in range(5):
        image, target = synth.draw()
        outside = target.numpy() == IGNORE
        if outside.any():
            assert np.all(image[0].numpy()[outside] == 0)


def test_thick_slices_keep_their_planes_and_interpolate_between():
    x = torch.randn(12, 5, 4)
    out = _thick_slices(x, axis=0, step=4, phase=1)
    for k in (1, 5, 9):
        assert torch.allclose(out[k], x[k])
    assert torch.allclose(out[3], 0.5 * (x[1] + x[5]), atol=1e-6)
    assert torch.allclose(out[0], x[1]) and torch.allclose(out[11], x[9])  # constant beyond the last plane


def test_unet_shapes():
    net = UNet3D(len(CLASSES), width=4, levels=3)
    assert net(torch.zeros(1, 1, 16, 24, 8)).shape == (1, len(CLASSES), 16, 24, 8)


def test_loss_is_small_for_the_right_answer_and_ignores_ignored_voxels():
    target = torch.randint(0, 3, (1, 8, 8, 8))
    good = torch.nn.functional.one_hot(target, 11).permute(0, 4, 1, 2, 3).float() * 20
    bad = torch.roll(good, 1, dims=1)
    assert float(loss_fn(good, target)) < 0.01 < 1.0 < float(loss_fn(bad, target))
    masked = target.clone()
    masked[:, :4] = IGNORE
    half_wrong = good.clone()
    half_wrong[:, :, :4] = bad[:, :, :4]
    assert float(loss_fn(half_wrong, masked)) < 0.01


def test_dice_per_class():
    t = np.zeros((4, 4, 4), dtype=np.uint8)
    t[:2] = 1
    p = np.zeros_like(t)
    p[:1] = 1
    assert dice_per_class(p, t) == {"lv_blood": pytest.approx(2 * 16 / (32 + 16))}


def test_training_resumes_exactly_where_it_stopped(tmp_path):
    """Two iterations, a restart, one more = three iterations in one run (same weights)."""
    cfg = TrainConfig(width=4, levels=2, checkpoint_every=1, synth=SynthConfig(patch=(16, 16, 16)))
    source = [Source.from_labels("balls", ball_map())]
    ck = tmp_path / "a.pt"
    train(Synthesiser(source, cfg.synth, seed=1), ck, cfg, iterations=2, log=lambda m: None)
    resumed = train(Synthesiser(source, cfg.synth, seed=99), ck, cfg, iterations=3, log=lambda m: None)
    straight = train(Synthesiser(source, cfg.synth, seed=1), tmp_path / "b.pt", cfg, iterations=3,
                     log=lambda m: None)
    assert resumed.iteration == straight.iteration == 3
    for a, b in zip(resumed.model.parameters(), straight.model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_training_starts_from_exported_weights_when_the_checkpoint_is_lost(tmp_path):
    cfg = TrainConfig(width=4, levels=2, checkpoint_every=1, synth=SynthConfig(patch=(16, 16, 16)))
    source = [Source.from_labels("balls", ball_map())]
    first = train(Synthesiser(source, cfg.synth, seed=1), tmp_path / "a.pt", cfg, iterations=2, log=lambda m: None)
    weights = export_weights(tmp_path / "a.pt", tmp_path / "w.pt", {"training_hours": 0.5})
    warm = train(Synthesiser(source, cfg.synth, seed=1), tmp_path / "b.pt", cfg, iterations=2, log=lambda m: None,
                 init=weights)  # already at 2 iterations: nothing to do
    assert warm.iteration == 2 and warm.seconds == 1800
    for a, b in zip(warm.model.parameters(), first.model.parameters()):
        assert torch.equal(a, b)
    more = train(Synthesiser(source, cfg.synth, seed=1), tmp_path / "b.pt", cfg, iterations=3, log=lambda m: None)
    assert more.iteration == 3  # resumed from b.pt, the warm start's checkpoint
    with pytest.raises(ValueError, match="differs"):
        train(Synthesiser(source, cfg.synth), tmp_path / "c.pt", dataclasses.replace(cfg, width=8), iterations=3,
              log=lambda m: None, init=weights)


class _Oracle(torch.nn.Module):
    """A stand-in network whose logits are the class given as the input's intensity x 10."""

    divisor = 4

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return torch.nn.functional.one_hot((x[:, 0] * 10).round().long(), len(CLASSES)).permute(0, 4, 1, 2, 3).float()


def test_sliding_window_reassembles_the_volume():
    volume = torch.zeros(40, 30, 20)
    volume[5:25, 3:20, 2:15] = 0.2
    prob = sliding_window(_Oracle(), volume, window=16, overlap=0.5)
    assert torch.equal(prob.argmax(0), (volume * 10).round().long())


@pytest.mark.parametrize("spacing,direction", [((0.8, 0.8, 2.5), np.eye(3)),
                                               ((1.5, 1.2, 1.0), np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1.0]]))])
def test_back_to_the_input_grid_keeps_physical_positions(spacing, direction):
    """A sphere labelled on the network grid comes back at the same physical place on an input grid
    of other spacing, origin and orientation (to within a network voxel)."""
    image = Image(np.zeros((50, 60, 30)), spacing, (12.0, -40.0, 100.0), direction)
    grid = network_grid(image, 2.0)
    centre = image.index_to_physical(np.array([20.0, 33.0, 12.0]))
    pts = grid.index_to_physical(np.indices(grid.shape).transpose(1, 2, 3, 0).reshape(-1, 3)).reshape(*grid.shape, 3)
    inside = np.linalg.norm(pts - centre, axis=-1) < 12.0
    prob = torch.zeros((len(CLASSES), *grid.shape))
    prob[0] = torch.from_numpy(~inside).float()
    prob[1] = torch.from_numpy(inside).float()
    out = to_input_grid(prob, grid, image)
    q = image.index_to_physical(np.indices(image.shape).transpose(1, 2, 3, 0).reshape(-1, 3)).reshape(*image.shape, 3)
    r = np.linalg.norm(q - centre, axis=-1)
    assert np.all(out[r < 10.0] == 1) and np.all(out[r > 14.0] == 0)


def test_clean_keeps_one_piece_fills_holes_and_keeps_attached_veins():
    labels = ball_map()
    arr = labels.array.copy()
    arr[2:4, 2:4, 2:4] = lab.label("lv_blood")  # an island
    c = np.asarray(arr.shape) // 2
    arr[c[0], c[1], c[2]] = lab.label("torso")  # a hole inside the LV
    arr[29:34, 29:34, 50:59] = lab.label("pulmonary_veins")  # 0.2 ml reaching into the LA (centre z 48, r 8)
    arr[5:8, 50:53, 5:8] = lab.label("pulmonary_veins")  # floating
    arr[arr == lab.label("torso")] = 0
    arr[c[0], c[1], c[2]] = 0
    out, report = clean(labels.with_array(arr))
    a = out.array
    assert a[2, 2, 2] == 0 and a[c[0], c[1], c[2]] == lab.label("lv_blood")
    assert a[31, 31, 52] == lab.label("pulmonary_veins") and a[6, 51, 6] == 0
    assert report["junctions"]["mitral valve"] is True
    assert any("rv_blood not found" in w for w in report["warnings"])


def test_clean_keeps_the_heart_not_a_larger_heart_like_blob_elsewhere():
    """A whole-trunk image: a ventricle-like blob (LV blood in a myocardium shell, larger than the
    true LV) away from the heart is dropped because the heart cluster holds more chambers."""
    shape = (110, 60, 60)
    labels = ball_map(shape)
    arr = labels.array.copy()
    arr[arr == lab.label("torso")] = 0
    idx = np.indices(shape).transpose(1, 2, 3, 0)
    arr[(np.linalg.norm(idx - [55, 30, 30], axis=-1) < 15) & (arr == 0)] = lab.label("lv_myocardium")
    r = np.linalg.norm(idx - [20, 30, 30], axis=-1)
    arr[r < 17] = lab.label("lv_myocardium")
    arr[r < 13] = lab.label("lv_blood")  # 9 ml against the true LV's 7 ml
    out, report = clean(labels.with_array(arr))
    a = out.array
    assert a[20, 30, 30] == 0 and a[55, 30, 30] == lab.label("lv_blood") and a[55, 30, 48] == lab.label("la_blood")
    assert report["removed_ml"]["outside_the_heart"] > 15


def test_bad_images_are_refused_with_reasons():
    ct = Image(np.full((30, 30, 30), -1000.0), (1.0, 1.0, 1.0))
    ct.array[10:20, 10:20, 10:20] = 300
    with pytest.raises(InvalidImageError, match="too thin"):
        check_image(Image(np.zeros((64, 64, 1)), (1.0, 1.0, 1.0)), "ct")
    with pytest.raises(InvalidImageError, match="MR image"):
        check_image(Image(np.random.default_rng(0).random((30, 30, 30)) * 900, (1.0, 1.0, 1.0)), "ct")
    nan = ct.array.copy()
    nan[:20] = np.nan
    with pytest.raises(InvalidImageError, match="NaN"):
        check_image(ct.with_array(nan), "ct")
    few = ct.array.copy()
    few[0, 0, :5] = np.nan
    fixed, warnings = check_image(ct.with_array(few), "ct")
    assert np.isfinite(fixed.array).all() and "NaN" in warnings[0]
    with pytest.raises(InvalidImageError, match="crop it"):
        network_grid(Image(np.zeros((10, 10, 10)), (100.0, 100.0, 100.0)), 2.0)


def test_synth_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SynthConfig().patch = (8, 8, 8)


def test_nnunet_model_folder_classes_map_to_cardiotwin(tmp_path):
    from cardiotwin.errors import UnknownLabelError
    from cardiotwin.segmentation.adapters import nnunet_class_table

    (tmp_path / "dataset.json").write_text('{"labels": {"background": 0, "lv_blood": 1, '
                                           '"heart_myocardium": 2, "aorta": 3}}')
    table = nnunet_class_table(tmp_path)
    assert list(table) == [0, lab.label("lv_blood"), lab.label("lv_myocardium"), lab.label("aorta")]
    (tmp_path / "dataset.json").write_text('{"labels": {"background": 0, "liver": 1}}')
    with pytest.raises(UnknownLabelError, match="liver"):
        nnunet_class_table(tmp_path)


def test_other_engines_need_a_local_model_and_their_package(tmp_path):
    from cardiotwin.segmentation import segment
    from cardiotwin.segmentation.adapters import MissingEngineError, run_nnunet

    ct = Image(np.full((30, 30, 30), -1000.0), (1.0, 1.0, 1.0))
    ct.array[10:20] = 300
    with pytest.raises(InvalidImageError, match="local path"):
        segment(ct, engine="nnunet")
    try:
        import nnunetv2  # noqa: F401
    except ImportError:
        (tmp_path / "dataset.json").write_text('{"labels": {"background": 0, "lv_blood": 1}}')
        with pytest.raises(MissingEngineError, match="pip install nnunetv2"):
            run_nnunet(ct, tmp_path)
    else:
        pytest.skip("nnunetv2 is installed: the missing-package error cannot be checked here")


def _constant_weights(tmp_path, winner: int):
    """Exported weights of a tiny network that always answers class ``winner``."""
    from cardiotwin.io.checkpoint import write_torch

    net = UNet3D(len(CLASSES), width=4, levels=2)
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.fill_(-10.0)
        net.head.bias[winner] = 10.0
    path = tmp_path / "constant.pt"
    write_torch({"model": net.state_dict(), "model_config": net.config, "classes": list(CLASSES),
                 "spacing_mm": 2.0, "iteration": 1, "metadata": {"iterations": 1, "commit": "test"}}, path)
    return path


def test_no_heart_in_view_is_an_error_not_an_empty_map(tmp_path):
    """A network that finds nothing (e.g. an abdomen-only view) gives a specific error, through the
    API and the CLI (exit status 2), never a silently empty label map."""
    from typer.testing import CliRunner

    from cardiotwin.cli import app
    from cardiotwin.errors import AnatomyError
    from cardiotwin.io import write_image
    from cardiotwin.segmentation import segment

    ct = Image(np.full((40, 40, 40), -1000, dtype=np.int16), (2.0, 2.0, 2.0))
    ct.array[5:35, 5:35, :] = 40
    ct.array[15:25, 15:25, :] = 400  # a vertebra
    weights = _constant_weights(tmp_path, 0)
    with pytest.raises(AnatomyError, match="no heart found"):
        segment(ct, weights=weights)
    image = write_image(ct, tmp_path / "abdomen.nii.gz")
    result = CliRunner().invoke(app, ["segment", "--image", str(image), "--out", str(tmp_path / "l.nii.gz"),
                                      "--weights", str(weights)])
    assert result.exit_code == 2 and "no heart found" in result.output
    assert not (tmp_path / "l.nii.gz").exists()


def test_segment_cli_writes_labels_report_and_picture(tmp_path):
    """End to end with a network that calls everything LV blood: one piece kept, body and lungs of
    the CT added around it, QC report and picture written."""
    import json

    from typer.testing import CliRunner

    from cardiotwin.cli import app
    from cardiotwin.io import read_labels, write_image

    ct = np.full((40, 40, 40), -1000, dtype=np.int16)
    ct[4:36, 4:36, :] = 40
    ct[8:18, 8:30, :] = -850  # a lung on each side
    ct[24:34, 8:30, :] = -850
    ct[18:24, 30:35, 10:30] = 300  # contrast blood
    image = write_image(Image(ct, (2.0, 2.0, 2.0)), tmp_path / "ct.nii.gz")
    out = tmp_path / "seg" / "labels.nii.gz"
    result = CliRunner().invoke(app, ["segment", "--image", str(image), "--out", str(out),
                                      "--weights", str(_constant_weights(tmp_path, 1))])
    assert result.exit_code == 0, result.output
    labels = read_labels(out, convention="cardiotwin")
    assert set(labels.present()) >= {"lv_blood"}
    report = json.loads((out.parent / "labels.json").read_text())
    assert report["volumes_ml"]["lv_blood"] > 10 and (out.parent / "labels.png").exists()
