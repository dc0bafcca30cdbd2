"""``import cardiotwin.io`` loads none of the heavy readers until one is used."""

import subprocess
import sys


def test_io_imports_its_heavy_readers_lazily():
    code = ("import sys, cardiotwin.io as io; heavy = {'SimpleITK', 'meshio', 'wfdb', 'pandas'}; "
            "print(sorted(heavy & set(sys.modules))); io.read_mesh; print('meshio' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True", out
