"""Classical peer of the segmenter: multi-atlas registration with SimpleITK.

Atlas-based whole-heart segmentation (Zhuang et al., "A registration-based propagation framework
for automatic whole heart segmentation of cardiac MRI", IEEE TMI 29:1612, 2010; Kirişli et al.,
Med Phys 37:6279, 2010, for CT): each atlas image is registered to the target, first affinely
then by a free-form B-spline deformation (Rueckert et al., IEEE TMI 18:712, 1999), both with
Mattes mutual information so CT and MR targets alike work, and the atlases' warped labels are
fused by majority vote. Here the atlases are the same real MM-WHS maps the network trains on
(walls and torso by rule), rendered with a clean CT- or MR-like intensity per label, since no
atlas image with expert labels is available.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from cardiotwin.io import read_labels, write_image
from cardiotwin.io.image import to_sitk
from cardiotwin.segmentation.classes import to_classes, to_labels
from cardiotwin.segmentation.sources import real_heart_body
from cardiotwin.segmentation.synth import SynthConfig, Synthesiser, Source
from cardiotwin.types import Image, LabelImage

REGISTRATION_MM = 3.0  # registration grid; sampling and B-spline mesh chosen for ~30 s per atlas on 2 cores
CLEAN = SynthConfig(spread=0.0, noise=(0.0, 0.0), bias=0.0, psf_mm=(0.8, 0.8), p_thick_slices=0.0)


def atlas_bodies(mmwhs: Path, cases: list[str], cache: Path) -> list[LabelImage]:
    """The atlases' label maps (real heart, rule-based walls, extended torso), cached."""
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for case in cases:
        path = cache / f"{case}_body.nii.gz"
        if not path.exists():
            write_image(real_heart_body(read_labels(mmwhs / f"{case}.nii.gz")), path)
        out.append(read_labels(path, convention="cardiotwin"))
    return out


def _resampled(img: sitk.Image, spacing: float) -> sitk.Image:
    size = [max(8, int(round(n * s / spacing))) for n, s in zip(img.GetSize(), img.GetSpacing())]
    smooth = sitk.SmoothingRecursiveGaussian(img, [max(spacing / 2.355, 1e-3)] * 3)
    return sitk.Resample(smooth, size, sitk.Transform(), sitk.sitkLinear, img.GetOrigin(), [spacing] * 3,
                         img.GetDirection(), 0.0, sitk.sitkFloat32)


def _mattes_mi(sampling: float, seed: int, shrink: list[int], sigmas_mm: list[float]) -> sitk.ImageRegistrationMethod:
    """A registration method with Mattes mutual information on random samples, linear interpolation
    and a physical-unit smoothing pyramid."""
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(48)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(sampling, seed=seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetShrinkFactorsPerLevel(shrink)
    reg.SetSmoothingSigmasPerLevel(sigmas_mm)
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    return reg


def register(fixed: sitk.Image, moving: sitk.Image) -> sitk.Transform:
    """Affine then B-spline transform mapping fixed-image points into the moving image."""
    fixed = _resampled(fixed, REGISTRATION_MM)
    moving = _resampled(moving, REGISTRATION_MM)
    init = sitk.CenteredTransformInitializer(fixed, moving, sitk.AffineTransform(3),
                                             sitk.CenteredTransformInitializerFilter.GEOMETRY)
    reg = _mattes_mi(0.1, 1, [4, 2, 1], [4.0, 2.0, 0.0])
    reg.SetOptimizerAsRegularStepGradientDescent(2.0, 1e-3, 150, gradientMagnitudeTolerance=1e-6)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetInitialTransform(init, inPlace=False)
    affine = reg.Execute(fixed, moving)

    bspline = sitk.BSplineTransformInitializer(fixed, [5, 5, 5])
    reg = _mattes_mi(0.02, 2, [2, 1], [2.0, 0.0])
    reg.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=50)
    reg.SetMovingInitialTransform(affine)
    reg.SetInitialTransform(bspline, inPlace=True)
    reg.Execute(fixed, moving)
    return sitk.CompositeTransform([affine, bspline])


def atlas_segment(image: Image, modality: str, atlases: list[LabelImage]) -> LabelImage:
    """Heart label map of ``image`` (network classes, cardiotwin integers) by multi-atlas registration."""
    fixed = to_sitk(image.with_array(image.array.astype(np.float32)))
    votes = []
    for i, body in enumerate(atlases):
        synth = Synthesiser([Source.from_labels(f"atlas{i}", body)], CLEAN, seed=i)
        rendered = synth.render(body, modality).cpu().numpy().astype(np.float32)
        moving = to_sitk(Image(rendered, body.spacing, body.origin, body.direction))
        transform = register(fixed, moving)
        classes = to_sitk(Image(to_classes(body.array).astype(np.uint8), body.spacing, body.origin, body.direction))
        warped = sitk.Resample(classes, fixed, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        votes.append(sitk.GetArrayFromImage(warped).transpose(2, 1, 0))
    stack = np.stack(votes)
    counts = np.stack([(stack == c).sum(axis=0) for c in range(int(stack.max()) + 1)])
    fused = counts.argmax(axis=0)  # ties go to the lower class (background first)
    return LabelImage(to_labels(fused), image.spacing, image.origin, image.direction)
