"""`pip install ./python` works: installs the package into a scratch
directory (no network: the venv's setuptools, --no-build-isolation) and
imports it from there, away from the source tree.

Usage: pip_install.py PYTHON_DIR TARGET_DIR
"""

import shutil
import subprocess
import sys
from pathlib import Path

src, target = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
shutil.rmtree(target, ignore_errors=True)
# Built from a copy: setuptools writes build/ and *.egg-info next to the sources.
copy = target / "src"
shutil.copytree(src, copy, ignore=shutil.ignore_patterns("__pycache__", "build",
                                                          "*.egg-info"))
subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                "--no-build-isolation", "--no-index", "--target", str(target / "site"),
                str(copy)], check=True)
target = target / "site"
code = ("import attnc, sys; "
        f"assert attnc.__file__.startswith({str(target)!r}), attnc.__file__; "
        "print(attnc.emit('model m(x: f32[4]) -> f32[4] {\\n  return relu(x)\\n}\\n', 'attn'))")
out = subprocess.run([sys.executable, "-c", code], cwd=str(target), check=True,
                     capture_output=True, text=True).stdout
assert "attn.relu" in out, out
print("installed and imported from", target)
