import numpy as np
import pytest

from cardiotwin.io import atomic_path, write_image, write_json_atomic
from cardiotwin.types import Image


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "result.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"half": ')
            raise RuntimeError("killed mid-write")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_version(tmp_path, monkeypatch):
    target = write_json_atomic(tmp_path / "x.json", {"v": 1})
    import SimpleITK as sitk

    img = Image(np.zeros((4, 4, 4), np.int16))
    write_image(img, tmp_path / "img.nii.gz")
    before = (tmp_path / "img.nii.gz").read_bytes()

    def crash(image, path, *args):
        open(path, "wb").write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(sitk, "WriteImage", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        write_image(img.with_array(img.array + 1), tmp_path / "img.nii.gz")
    assert (tmp_path / "img.nii.gz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.nii.gz", "x.json"]
    assert target.read_text().strip().endswith("}")
