"""A report opened in a real headless browser (Debian's Chromium): does it render, do its pictures load?"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from cardiotwin.errors import InputFileNotFoundError

# flags for a closed network (no background connections) and a root user (no sandbox)
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium() -> str | None:
    """The Chromium executable, if one is installed."""
    return next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             shutil.which("google-chrome")) if p), None)


def images_loaded(page: str | os.PathLike, screenshot: str | os.PathLike | None = None,
                  timeout_s: float = 120.0) -> tuple[int, int]:
    """(pictures decoded, pictures on the page) of a cardiotwin HTML report, read from the
    ``data-images-loaded`` mark its load handler sets; optionally a full-page screenshot."""
    exe = chromium()
    if exe is None:
        raise InputFileNotFoundError("Chromium is not installed (Debian: apt-get install chromium)")
    url = Path(page).resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        flags = [exe, *_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000"]
        dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=timeout_s).stdout
        if screenshot is not None:
            subprocess.run([*flags, "--window-size=1300,6000", f"--screenshot={Path(screenshot).resolve()}", url],
                           capture_output=True, timeout=timeout_s, check=True)
    mark = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    if mark is None:
        raise RuntimeError(f"the page {page} did not finish loading in Chromium (no load mark in its DOM)")
    return int(mark.group(1)), int(mark.group(2))
