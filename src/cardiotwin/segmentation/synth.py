"""Training images synthesised from label maps by domain randomisation (SynthSeg).

Billot et al., "SynthSeg: segmentation of brain MRI scans of any contrast and resolution without
retraining", Med Image Anal 86:102789 (2023): a network that only ever sees images drawn from label
maps with random geometry, random intensities per label, bias field, noise, blur and random
resolution learns shapes rather than one scanner's contrast, and carries over to real scans of any
contrast. Here the label maps are whole bodies (the phantom generator's, or a real heart's walls
and extended torso, :mod:`cardiotwin.anatomy`), and one draw is:

1. **Geometry** — a patch of ``PATCH`` voxels at ``SPACING_MM`` (drawn at half that spacing for
   partial volume), centred near the heart (``p_off_heart`` of the time anywhere in the body, so a
   view without a heart is seen too), rotated (``p_any_rotation`` of the time uniformly over SO(3),
   because a short-axis cine stack's affine says nothing of the anatomy; else within
   ``small_rotation_deg`` of the scanner axes), scaled per axis and warped by a smooth random
   displacement (``elastic_mm``). No mirroring: left and right are what the network must tell.
2. **Tissue** — the body (``torso``) is cut into 1-4 random smooth blobs (fat, muscle, liver...),
   each an extra label; valve planes take the blood of their chamber.
3. **Contrast** — per label a mean and a spread, from one of three priors: ``ct`` (arterial or
   venous phase Hounsfield ranges), ``mr`` (bright-blood cine), or ``random`` (any value for any
   label, SynthSeg's own prior), with probabilities ``contrast_p``.
4. **Scanner** — blur (point-spread function ``psf_mm``), thick slices along a random axis
   (``p_thick_slices``, ``slice_mm``: blurred and resampled as a 5-10 mm stack is), a smooth
   multiplicative bias field (``bias``), noise, a random gamma, and a field of view cut to a random
   box (``p_crop_view``: outside it the image is constant and the target ignored, as beyond a
   cropped scan's border).

Everything is PyTorch, on the CPU or a GPU (``device``; the random generators stay on the CPU so a
checkpoint resumes on either), so one draw costs about as much as a training step.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from cardiotwin import labels as lab
from cardiotwin.errors import InputError
from cardiotwin.segmentation.classes import IGNORE, TARGET_OF, class_table
from cardiotwin.segmentation.normalise import normalise
from cardiotwin.types import LabelImage

SPACING_MM = 2.0
PATCH = (64, 64, 64)
BLOB_BASE = 60  # generating labels >= this are random sub-regions of the body

# intensity groups: each label's prior is its group's (the ``random`` prior ignores groups)
_GROUP_OF: dict[str, str] = {
    "background": "air", "lung_left": "lung", "lung_right": "lung", "spine": "bone", "torso": "body",
    "lv_myocardium": "myocardium", "rv_myocardium": "myocardium", "la_wall": "myocardium", "ra_wall": "myocardium",
    "aorta_wall": "vessel_wall", "pulmonary_artery_wall": "vessel_wall", "heart": "myocardium",
    "lv_blood": "left_blood", "la_blood": "left_blood", "aorta": "left_blood", "pulmonary_veins": "left_blood",
    "rv_blood": "right_blood", "ra_blood": "right_blood", "pulmonary_artery": "right_blood",
    "superior_vena_cava": "right_blood", "inferior_vena_cava": "venous_blood",
}
# (low, high) of a group's mean; CT in HU, MR in [0, 1]; right blood's phase is drawn per image
CT_PRIOR = {"air": (-1024, -960), "lung": (-900, -720), "body": (-130, 90), "bone": (180, 900),
            "myocardium": (60, 170), "vessel_wall": (40, 140), "left_blood": (180, 600),
            "right_blood": (100, 600), "venous_blood": (60, 350)}
MR_PRIOR = {"air": (0.0, 0.05), "lung": (0.02, 0.12), "body": (0.1, 0.95), "bone": (0.05, 0.6),
            "myocardium": (0.08, 0.35), "vessel_wall": (0.1, 0.4), "left_blood": (0.55, 1.0),
            "right_blood": (0.5, 1.0), "venous_blood": (0.5, 1.0)}


@dataclass(frozen=True)
class SynthConfig:
    """Every knob of the generator (defaults: the shipped model's training)."""

    spacing_mm: float = SPACING_MM
    patch: tuple[int, int, int] = PATCH
    heart_jitter_mm: float = 30.0
    p_off_heart: float = 0.1
    p_any_rotation: float = 0.4
    small_rotation_deg: float = 20.0
    scale: tuple[float, float] = (0.85, 1.2)
    anisotropic_scale: float = 0.06
    elastic_mm: float = 4.0
    elastic_nodes: int = 5
    blobs: tuple[int, int] = (1, 4)
    contrast_p: dict = field(default_factory=lambda: {"ct": 0.35, "mr": 0.2, "random": 0.45})
    spread: float = 0.06  # within-label spread, fraction of the image's range
    psf_mm: tuple[float, float] = (0.3, 1.5)
    p_thick_slices: float = 0.4
    slice_mm: tuple[float, float] = (5.0, 10.0)
    bias: float = 0.35
    noise: tuple[float, float] = (0.0, 0.05)
    gamma_sd: float = 0.25
    p_crop_view: float = 0.3


@dataclass
class Source:
    """One training label map held as a tensor (cardiotwin integers) with its geometry."""

    name: str
    labels: torch.Tensor  # uint8 (X, Y, Z)
    index_of: np.ndarray  # 3x4: physical LPS mm (homogeneous) -> voxel index
    heart_mm: np.ndarray  # centre of the heart's blood pools
    body_box_mm: tuple[np.ndarray, np.ndarray]

    @classmethod
    def from_labels(cls, name: str, labels: LabelImage) -> "Source":
        arr = labels.array
        heart = np.isin(arr, lab.labels_of(lab.BLOOD_POOLS))
        if not heart.any():
            raise InputError(f"training map {name!r} has no blood pool")
        inv = np.linalg.inv(labels.affine)[:3]
        body = np.argwhere(arr[::4, ::4, ::4] > 0) * 4
        return cls(name, torch.from_numpy(arr.astype(np.uint8)), inv,
                   labels.index_to_physical(np.argwhere(heart).mean(axis=0)),
                   (labels.index_to_physical(body.min(axis=0)), labels.index_to_physical(body.max(axis=0))))


def random_rotation(rng: np.random.Generator, any_rotation: bool, small_deg: float) -> np.ndarray:
    """A rotation matrix: uniform over SO(3) (Shoemake's unit quaternion), or small about each axis."""
    if any_rotation:
        u1, u2, u3 = rng.random(3)
        q = np.array([math.sqrt(1 - u1) * math.sin(2 * math.pi * u2), math.sqrt(1 - u1) * math.cos(2 * math.pi * u2),
                      math.sqrt(u1) * math.sin(2 * math.pi * u3), math.sqrt(u1) * math.cos(2 * math.pi * u3)])
        x, y, z, w = q
        return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                         [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                         [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    r = np.eye(3)
    for axis, angle in enumerate(np.radians(rng.uniform(-small_deg, small_deg, 3))):
        c, s = math.cos(angle), math.sin(angle)
        i, j = [a for a in range(3) if a != axis]
        m = np.eye(3)
        m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
        r = r @ m
    return r


def smooth_noise(shape: tuple[int, int, int], nodes: int, gen: torch.Generator, device="cpu") -> torch.Tensor:
    """A smooth random field on ``shape``: standard normal values on a ``nodes``^3 lattice, upsampled."""
    coarse = torch.randn((1, 1, nodes, nodes, nodes), generator=gen).to(device)
    return F.interpolate(coarse, size=shape, mode="trilinear", align_corners=True)[0, 0]


def _gaussian_blur(x: torch.Tensor, sigma_vox) -> torch.Tensor:
    """Separable Gaussian blur of a (X, Y, Z) tensor with per-axis sigma in voxels."""
    out = x[None, None]
    for axis, s in enumerate(sigma_vox):
        if s < 0.2:
            continue
        r = max(1, int(math.ceil(3 * s)))
        t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
        k = torch.exp(-0.5 * (t / s) ** 2)
        k = (k / k.sum()).reshape([1, 1] + [len(t) if a == axis else 1 for a in range(3)])
        pad = [0] * 6
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = r
        out = F.conv3d(F.pad(out, pad, mode="replicate"), k)
    return out[0, 0]


def _thick_slices(image: torch.Tensor, axis: int, step: int, phase: int) -> torch.Tensor:
    """Keep every ``step``-th plane along ``axis`` and interpolate linearly between them, as a
    thick-slice stack resampled onto a fine grid is."""
    n = image.shape[axis]
    kept = torch.arange(phase % step, n, step, device=image.device)
    pos = (torch.arange(n, dtype=torch.float32, device=image.device) - kept[0]) / step
    lower = pos.floor().clamp(0, len(kept) - 1).long()
    upper = (lower + 1).clamp(max=len(kept) - 1)
    frac = (pos - lower).clamp(0, 1)
    shape = [1, 1, 1]
    shape[axis] = n
    a, b = image.index_select(axis, kept[lower]), image.index_select(axis, kept[upper])
    return a + (b - a) * frac.reshape(shape)


class Synthesiser:
    """Draws (image, target) training pairs from a list of :class:`Source` maps."""

    def __init__(self, sources: list[Source], config: SynthConfig = SynthConfig(), seed: int = 0,
                 device: str = "cpu"):
        if not sources:
            raise InputError("the synthesiser needs at least one training label map")
        self.device = torch.device(device)
        self.sources = [dataclasses.replace(s, labels=s.labels.to(self.device)) for s in sources]
        self.config = config
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.class_table = torch.from_numpy(class_table().astype(np.int64)).to(self.device)
        self.group_of = {lab.label(n): g for n, g in _GROUP_OF.items()}
        self.blood_of_valve = {lab.label(v): lab.label(b) for v, b in TARGET_OF.items() if v in lab.VALVES}

    def draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One pair: image (1, *patch) float32 in [0, 1], target (*patch) int64 class indices
        (:data:`~cardiotwin.segmentation.classes.IGNORE` outside the view)."""
        cfg, rng = self.config, self.rng
        src = self.sources[rng.integers(len(self.sources))]
        fine = tuple(2 * p for p in cfg.patch)
        h = cfg.spacing_mm / 2
        points = self._sample_points(src, fine, h)
        labels = self._lookup(src, points)
        target = self._lookup(src, F.avg_pool3d(points.permute(3, 0, 1, 2)[None], 2)[0].permute(1, 2, 3, 0))
        target = self.class_table[target.long()]
        image = self._contrast(labels)
        image = self._scanner(image, h)
        image = F.avg_pool3d(image[None, None], 2)[0, 0]
        image = normalise(image)
        image = image.clamp(0, 1) ** math.exp(rng.normal(0, cfg.gamma_sd))
        if rng.random() < cfg.p_crop_view:
            inside = self._view_box(cfg.patch)
            image = torch.where(inside, image, torch.zeros((), device=self.device))
            target = torch.where(inside, target, torch.full((), IGNORE, device=self.device))
        return image[None].float(), target

    # ------------------------------------------------------------------ geometry
    def _sample_points(self, src: Source, shape, h: float) -> torch.Tensor:
        cfg, rng = self.config, self.rng
        if rng.random() < cfg.p_off_heart:
            lo, hi = src.body_box_mm
            centre = rng.uniform(lo, hi)
        else:
            centre = src.heart_mm + rng.normal(0, cfg.heart_jitter_mm / 2, 3)
        rot = random_rotation(rng, rng.random() < cfg.p_any_rotation, cfg.small_rotation_deg)
        scale = rng.uniform(*cfg.scale) * (1 + rng.uniform(-cfg.anisotropic_scale, cfg.anisotropic_scale, 3))
        axes = [torch.arange(n, dtype=torch.float32, device=self.device) * h - (n - 1) * h / 2 for n in shape]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # (X, Y, Z, 3) mm about the centre
        m = torch.from_numpy((rot * scale[None, :]).astype(np.float32)).to(self.device)
        pts = grid @ m.T
        amp = rng.uniform(0, cfg.elastic_mm)
        if amp > 0:
            disp = torch.stack([smooth_noise(shape, cfg.elastic_nodes, self.gen, self.device) for _ in range(3)], dim=-1)
            pts = pts + amp * disp
        return pts + torch.from_numpy(centre.astype(np.float32)).to(self.device)

    def _lookup(self, src: Source, points: torch.Tensor) -> torch.Tensor:
        """Nearest-voxel labels of ``src`` at physical points (background outside its grid)."""
        inv = torch.from_numpy(src.index_of.astype(np.float32)).to(self.device)
        idx = torch.round(points @ inv[:, :3].T + inv[:, 3]).long()
        dims = torch.tensor(src.labels.shape, device=self.device)
        inside = ((idx >= 0) & (idx < dims)).all(dim=-1)
        idx = torch.where(inside[..., None], idx, torch.zeros_like(idx))
        flat = (idx[..., 0] * dims[1] + idx[..., 1]) * dims[2] + idx[..., 2]
        values = src.labels.reshape(-1)[flat.reshape(-1)].reshape(points.shape[:-1])
        return torch.where(inside, values, torch.zeros((), dtype=values.dtype, device=self.device))

    def _view_box(self, shape) -> torch.Tensor:
        """A random box covering 45-100 % of each axis (a cropped scan's field of view)."""
        masks = []
        for n in shape:
            length = int(n * self.rng.uniform(0.45, 1.0))
            start = int(self.rng.integers(0, n - length + 1))
            m = torch.zeros(n, dtype=torch.bool, device=self.device)
            m[start:start + length] = True
            masks.append(m)
        return masks[0][:, None, None] & masks[1][None, :, None] & masks[2][None, None, :]

    # ------------------------------------------------------------------ appearance
    def render(self, labels: LabelImage, kind: str) -> torch.Tensor:
        """A whole image of ``labels`` on its own grid (no geometric augmentation) with contrast prior
        ``kind`` (``ct``, ``mr`` or ``random``) and the scanner effects: held-out test images."""
        fine = torch.from_numpy(labels.array.astype(np.int64)).to(self.device)
        return self._scanner(self._contrast(fine, kind), float(min(labels.spacing)))

    def _contrast(self, labels: torch.Tensor, kind: str | None = None) -> torch.Tensor:
        """Per-label Gaussian intensities from one of the contrast priors (drawn when ``kind`` is None)."""
        cfg, rng = self.config, self.rng
        labels = labels.long()
        for valve, blood in self.blood_of_valve.items():
            labels = torch.where(labels == valve, torch.full((), blood, device=self.device), labels)
        body = labels == lab.label("torso")
        if body.any():
            n_blobs = int(rng.integers(cfg.blobs[0], cfg.blobs[1] + 1))
            if n_blobs > 1:
                fields = torch.stack([smooth_noise(labels.shape, int(rng.integers(3, 7)), self.gen, self.device)
                                      for _ in range(n_blobs)])
                labels = torch.where(body, BLOB_BASE + fields.argmax(dim=0), labels)
        present = torch.unique(labels).tolist()
        if kind is None:
            kinds = list(cfg.contrast_p)
            kind = kinds[rng.choice(len(kinds), p=np.array([cfg.contrast_p[k] for k in kinds]))]
        lut_mean = torch.zeros(BLOB_BASE + cfg.blobs[1], device=self.device)
        lut_sd = torch.zeros_like(lut_mean)
        if kind == "random":
            lut_mean[present] = torch.from_numpy(rng.uniform(0, 1, len(present))).float().to(self.device)
            width = 1.0
        else:
            prior = CT_PRIOR if kind == "ct" else MR_PRIOR
            width = prior["bone"][1] - prior["air"][0]
            group_mean = {g: rng.uniform(*r) for g, r in prior.items()}
            for v in present:
                group = "body" if v >= BLOB_BASE else self.group_of.get(v, "myocardium")
                lo, hi = prior[group]
                mean = rng.uniform(lo, hi) if group == "body" else group_mean[group] + rng.normal(0, 0.04 * (hi - lo))
                lut_mean[v] = float(mean)
        lut_sd[present] = torch.from_numpy(rng.uniform(0, cfg.spread * width, len(present))).float().to(self.device)
        noise = self._randn(labels.shape)
        return lut_mean[labels] + lut_sd[labels] * noise

    def _scanner(self, image: torch.Tensor, h: float) -> torch.Tensor:
        """Point-spread blur, thick slices, bias field and noise on the fine grid (spacing ``h``)."""
        cfg, rng = self.config, self.rng
        sigma = [rng.uniform(*cfg.psf_mm) / h for _ in range(3)]
        thick_axis = int(rng.integers(3)) if rng.random() < cfg.p_thick_slices else None
        if thick_axis is not None:
            thickness = rng.uniform(*cfg.slice_mm)
            sigma[thick_axis] = thickness / 2.355 / h  # slice profile of FWHM = slice thickness
        image = _gaussian_blur(image, sigma)
        if thick_axis is not None:
            image = _thick_slices(image, thick_axis, max(1, int(round(thickness / h))), int(rng.integers(1 << 16)))
        lo, hi = torch.quantile(image.reshape(-1)[::97], torch.tensor([0.01, 0.99], device=self.device)).tolist()
        scale = max(hi - lo, 1e-6)
        if cfg.bias > 0:
            image = (image - lo) * torch.exp(rng.uniform(0, cfg.bias) * smooth_noise(image.shape, 4, self.gen, self.device)) + lo
        return image + rng.uniform(*cfg.noise) * scale * self._randn(image.shape)

    def _randn(self, shape) -> torch.Tensor:
        """Standard normal noise from the synthesiser's (CPU) generator, on its device."""
        return torch.randn(shape, generator=self.gen).to(self.device)
