"""Image I/O through SimpleITK: NIfTI, NRRD, MHA/MHD files and DICOM series, geometry preserved.

SimpleITK keeps every image in ITK's LPS physical frame (it converts NIfTI's RAS affine on read and
write), so spacing, origin and direction survive a round trip between any of these formats.
"""

from __future__ import annotations

import gzip
import os
import time
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from cardiotwin.errors import (
    AmbiguousDicomSeriesError,
    CorruptFileError,
    InputFileNotFoundError,
    InvalidImageError,
    UnknownLabelError,
)
from cardiotwin.io.atomic import atomic_path
from cardiotwin.types import Image, LabelImage

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def to_sitk(image: Image) -> sitk.Image:
    """SimpleITK image with the same voxels and geometry."""
    out = sitk.GetImageFromArray(np.ascontiguousarray(image.array.transpose(2, 1, 0)))
    out.SetSpacing(image.spacing)
    out.SetOrigin(image.origin)
    out.SetDirection(tuple(image.direction.ravel()))
    return out


def from_sitk(img: sitk.Image, source: str = "image") -> Image:
    """cardiotwin :class:`Image` from a 3-D scalar SimpleITK image."""
    if img.GetDimension() != 3:
        raise InvalidImageError(f"{source}: expected a 3-D image, got {img.GetDimension()}-D")
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InvalidImageError(
            f"{source}: expected a scalar image, got {img.GetNumberOfComponentsPerPixel()} components per voxel"
        )
    arr = sitk.GetArrayFromImage(img).transpose(2, 1, 0)
    return Image(arr, img.GetSpacing(), img.GetOrigin(), np.array(img.GetDirection()).reshape(3, 3))


def read_image(path: str | os.PathLike, series_uid: str | None = None) -> Image:
    """Read a 3-D image file, or a folder holding a DICOM series.

    A DICOM folder with several series needs ``series_uid`` (the error lists the choices).
    """
    p = Path(path)
    if not p.exists():
        raise InputFileNotFoundError(f"image not found: {p}")
    if p.is_dir():
        img = _read_dicom_series(p, series_uid)
    else:
        if p.name.endswith((".nii", ".nii.gz")):
            _check_nifti_complete(p)
        try:
            img = sitk.ReadImage(str(p))
        except RuntimeError as exc:
            raise CorruptFileError(
                f"cannot read image {p}: the file is corrupt, truncated or not a supported format "
                f"({', '.join(IMAGE_SUFFIXES)} or a DICOM folder). Reader said: {_first_line(exc)}"
            ) from None
    return from_sitk(img, str(p))


def read_labels(path: str | os.PathLike, reference: Image | None = None, convention: str = "auto") -> LabelImage:
    """Read a label map and convert it to the cardiotwin convention.

    ``convention`` names the integer convention of the file (:mod:`cardiotwin.io.conventions`:
    cardiotwin, mmwhs, mmwhs7/heartchambers_highres, totalsegmentator_v1, acdc) or ``auto`` to
    recognise it; a folder of TotalSegmentator per-class masks is read too. With ``reference`` (the
    image it was segmented from), the label map must sample the same physical grid: a map whose
    orientation or origin disagrees with its image is rejected rather than silently producing a
    mirrored heart.
    """
    return read_label_map(path, reference, convention)[0]


def read_label_map(path: str | os.PathLike, reference: Image | None = None,
                   convention: str = "auto") -> tuple[LabelImage, str]:
    """:func:`read_labels`, also returning the name of the convention it was read in."""
    p = Path(path)
    if p.is_dir() and any(p.glob("*.nii*")):
        from cardiotwin.io.totalsegmentator import read_totalsegmentator

        labels, used = read_totalsegmentator(p), "totalsegmentator (mask folder)"
    else:
        labels, used = convert_labels(read_image(p), convention, str(p))
    if reference is not None:
        check_label_grid(labels, reference, str(path))
    return labels, used


def check_label_grid(labels: LabelImage, reference: Image, source: str = "label map") -> None:
    """Raise :class:`InvalidImageError` unless ``labels`` samples the physical grid of its image."""
    if not labels.same_grid(reference):
        raise InvalidImageError(
            f"{source}: label map grid does not match its image (shape {labels.shape} vs {reference.shape}, "
            f"spacing {labels.spacing} vs {reference.spacing}, origin {labels.origin} vs {reference.origin}, "
            f"direction {labels.direction.round(3).tolist()} vs {reference.direction.round(3).tolist()}); "
            "resample the labels onto the image (e.g. SimpleITK.Resample with nearest neighbour) or "
            "export both from the same tool"
        )


def convert_labels(image: Image, convention: str = "auto", source: str = "label map") -> tuple[LabelImage, str]:
    """An integer image in any known label convention -> (cardiotwin :class:`LabelImage`, the
    convention's name); ``auto`` detects it (:func:`cardiotwin.io.conventions.detect_convention`)."""
    from cardiotwin.io.conventions import convention as by_name, detect_convention, to_cardiotwin

    arr = image.array
    if not np.issubdtype(arr.dtype, np.integer):
        rounded = np.rint(arr)
        if not np.allclose(arr, rounded, atol=1e-3):
            raise InvalidImageError(f"{source}: label map has non-integer values; is this an intensity image?")
        arr = rounded.astype(np.int32)
    values = np.unique(arr)
    try:
        conv = detect_convention(values) if convention == "auto" else by_name(convention)
        converted = to_cardiotwin(arr, conv)
    except UnknownLabelError as exc:
        raise UnknownLabelError(f"{source}: {exc}") from None
    return LabelImage(converted, image.spacing, image.origin, image.direction), conv.name


def write_image(image: Image, path: str | os.PathLike, compress: bool = True) -> Path:
    """Write an image atomically; the format follows the file extension."""
    target = Path(path)
    if not str(target).endswith(IMAGE_SUFFIXES):
        raise InvalidImageError(f"unsupported image extension for {target}; use one of {IMAGE_SUFFIXES}")
    with atomic_path(target) as tmp:
        sitk.WriteImage(to_sitk(image), str(tmp), compress)
    return target


def write_dicom_series(image: Image, folder: str | os.PathLike, series_uid: str | None = None,
                       description: str = "cardiotwin") -> Path:
    """Write an int16 image as a DICOM series (one file per slice along the third index axis).

    Writes into a temporary folder renamed into place, so a partial series never appears.
    """
    target = Path(folder)
    if target.exists():
        raise InvalidImageError(f"{target} exists; DICOM series are written into a new folder")
    img = sitk.Cast(to_sitk(image), sitk.sitkInt16)
    uid = series_uid or f"1.2.826.0.1.3680043.2.1125.{int(time.time() * 1e3)}.{os.getpid()}"
    direction = img.GetDirection()
    tags = [
        ("0008|0060", "CT"),
        ("0020|000d", uid + ".1"),
        ("0020|000e", uid),
        ("0008|103e", description),
        ("0020|0037", "\\".join(f"{v:.6f}" for v in direction[0:7:3] + direction[1:8:3])),
        ("0028|1050", "40"),
        ("0028|1051", "400"),
    ]
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    with atomic_path(target) as tmp:
        tmp.mkdir()
        for k in range(img.GetDepth()):
            sl = img[:, :, k]
            for tag, value in tags:
                sl.SetMetaData(tag, value)
            sl.SetMetaData("0020|0032", "\\".join(f"{v:.6f}" for v in img.TransformIndexToPhysicalPoint((0, 0, k))))
            sl.SetMetaData("0020|0013", str(k + 1))
            sl.SetMetaData("0008|0018", f"{uid}.{k + 1}")
            writer.SetFileName(str(tmp / f"slice{k:04d}.dcm"))
            writer.Execute(sl)
    return target


def _read_dicom_series(folder: Path, series_uid: str | None) -> sitk.Image:
    series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise CorruptFileError(f"{folder} is a folder but holds no readable DICOM series")
    if series_uid is None:
        if len(series) > 1:
            described = "; ".join(f"{uid} ({_series_summary(folder, uid)})" for uid in series)
            raise AmbiguousDicomSeriesError(
                f"{folder} holds {len(series)} DICOM series: {described}. Choose one with "
                "series_uid=... (CLI: --series-uid)"
            )
        series_uid = series[0]
    elif series_uid not in series:
        raise AmbiguousDicomSeriesError(f"series {series_uid} not in {folder}; available: {list(series)}")
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_uid)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        return reader.Execute()
    except RuntimeError as exc:
        raise CorruptFileError(f"cannot read DICOM series {series_uid} in {folder}: {_first_line(exc)}") from None


def _check_nifti_complete(path: Path) -> None:
    """Raise :class:`CorruptFileError` if a NIfTI file holds fewer voxel bytes than its header promises.

    ITK silently zero-fills a truncated NIfTI; a half-downloaded scan must not become a scan whose
    lower half is air.
    """
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            header = fh.read(540)
            expected = _nifti_data_end(header, path)
            size = len(header)
            while chunk := fh.read(1 << 24):
                size += len(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise CorruptFileError(f"cannot read image {path}: the file is corrupt or truncated ({exc})") from None
    if size < expected:
        raise CorruptFileError(
            f"cannot read image {path}: the file is corrupt, truncated: its header promises {expected} bytes "
            f"of voxels and header, the file holds {size}; re-export or re-download it"
        )


def _nifti_data_end(header: bytes, path: Path) -> int:
    """Byte offset where a NIfTI-1/2 file's voxel data ends, from its header."""
    for order in "<>":
        if len(header) >= 348 and np.frombuffer(header[:4], order + "i4")[0] == 348:
            dims = np.frombuffer(header[40:56], order + "i2").astype(np.int64)
            bitpix = int(np.frombuffer(header[72:74], order + "i2")[0])
            offset = int(np.frombuffer(header[108:112], order + "f4")[0])
            break
        if len(header) >= 540 and np.frombuffer(header[:4], order + "i4")[0] == 540:
            dims = np.frombuffer(header[16:80], order + "i8")
            bitpix = int(np.frombuffer(header[14:16], order + "i2")[0])
            offset = int(np.frombuffer(header[168:176], order + "i8")[0])
            break
    else:
        raise CorruptFileError(f"cannot read image {path}: not a NIfTI file (bad header size field)")
    ndim = int(dims[0])
    if not 1 <= ndim <= 7 or (dims[1 : ndim + 1] < 1).any() or bitpix <= 0:
        raise CorruptFileError(f"cannot read image {path}: corrupt NIfTI header (dim={dims.tolist()}, bitpix={bitpix})")
    return offset + int(np.prod(dims[1 : ndim + 1])) * bitpix // 8


def _series_summary(folder: Path, uid: str) -> str:
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)
    reader = sitk.ImageFileReader()
    reader.SetFileName(files[0])
    reader.ReadImageInformation()
    desc = reader.GetMetaData("0008|103e").strip() if reader.HasMetaDataKey("0008|103e") else "no description"
    return f"{len(files)} files, {desc}"


def _first_line(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    informative = [ln for ln in lines if "ERROR" in ln or "Unable" in ln or "error" in ln]
    return (informative or lines or ["unknown error"])[-1][:300]
