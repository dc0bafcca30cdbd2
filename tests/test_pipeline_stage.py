"""Cached, restartable stages: skip when the record matches, rerun on a changed input or setting
(and then only downstream), survive a kill mid-stage, recognise a moved case folder."""

from __future__ import annotations

import json
import shutil

import pytest

from cardiotwin.pipeline.stage import config_digest, file_digest, record_path, run_stage


def _chain(case, source, calls, scale=2, kill_second=False):
    """Two stages: double (source -> a.txt), then add (a.txt -> b/c.txt)."""
    def double(out):
        calls.append("double")
        (out / "a.txt").write_text(str(int(source.read_text()) * scale))

    def add(out):
        calls.append("add")
        (out / "b").mkdir()
        (out / "b" / "c.txt").write_text(str(int((case / "a.txt").read_text()) + 1))
        if kill_second:
            raise KeyboardInterrupt  # killed after writing part of its output

    first = run_stage(case, "double", {"source": source}, {"scale": scale}, double)
    second = run_stage(case, "add", {"a": case / "a.txt"}, {}, add)
    return first, second


def test_stages_skip_rerun_downstream_and_resume(tmp_path):
    case, source = tmp_path / "case", tmp_path / "input.txt"
    source.write_text("5")
    calls = []
    first, second = _chain(case, source, calls)
    assert calls == ["double", "add"] and (case / "b" / "c.txt").read_text() == "11"
    assert not first.skipped and json.loads(record_path(case, "add").read_text())["inputs"]["a"]["file"] == "a.txt"
    calls.clear()
    first, second = _chain(case, source, calls)
    assert calls == [] and first.skipped and second.skipped
    calls.clear()
    _chain(case, source, calls, scale=3)  # a changed setting reruns that stage and what follows
    assert calls == ["double", "add"] and (case / "b" / "c.txt").read_text() == "16"
    calls.clear()
    source.write_text("5")  # same contents, new modification time: nothing reruns
    _chain(case, source, calls, scale=3)
    assert calls == []
    (case / "b" / "c.txt").write_text("tampered")  # a changed output reruns its stage only
    _chain(case, source, calls, scale=3)
    assert calls == ["add"] and (case / "b" / "c.txt").read_text() == "16"


def test_a_killed_stage_leaves_no_complete_record_and_reruns(tmp_path):
    case, source = tmp_path / "case", tmp_path / "input.txt"
    source.write_text("5")
    calls = []
    _chain(case, source, calls)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        _chain(case, source, calls, scale=4, kill_second=True)
    assert not record_path(case, "add").exists() or json.loads(record_path(case, "add").read_text())[
        "inputs"]["a"]["sha256"] != file_digest(case / "a.txt")
    assert not list(case.glob(".staging-*"))  # the half-written output was discarded
    calls.clear()
    _chain(case, source, calls, scale=4)
    assert calls == ["add"] and (case / "b" / "c.txt").read_text() == "21"


def test_a_moved_case_folder_is_still_up_to_date(tmp_path):
    case, source = tmp_path / "case", tmp_path / "input.txt"
    source.write_text("7")
    _chain(case, source, [])
    moved = tmp_path / "elsewhere" / "case"
    shutil.copytree(case, moved)
    src2 = tmp_path / "elsewhere" / "input.txt"
    shutil.copy(source, src2)
    calls = []
    _chain(moved, src2, calls)
    assert calls == []


def test_digests():
    assert config_digest({"a": 1, "b": [1, 2]}) == config_digest({"b": [1, 2], "a": 1})
    assert config_digest({"a": 1}) != config_digest({"a": 2})
