# ===- benchmarks/attnc_build.py - compile a model once per source/flags -=== #
#
# Shared by decode_bench.py and torch_peers.py: WORKDIR/<stem>.<tag>-<hash>.so,
# the hash of the source, the flags and the attnc binary (path, size, mtime),
# so a library is compiled once and recompiled when any of them changes.
#
# ===----------------------------------------------------------------------=== #
import hashlib
import os
import subprocess
import time


def compile_library(attnc, source, workdir, tag, flags, log, fail):
    """Returns (path of the .so, seconds spent compiling: 0 when cached).
    `log(msg)` reports, `fail(msg)` does not return."""
    h = hashlib.sha256(source.read_bytes())
    st = attnc.stat()
    h.update(f"{attnc.resolve()}|{st.st_size}|{st.st_mtime_ns}|{' '.join(flags)}".encode())
    stem = f"{source.stem}.{tag}"
    so = workdir / f"{stem}-{h.hexdigest()[:16]}.so"
    if so.is_file():
        log(f"attnc: {so.name} is up to date (source, flags and attnc unchanged)")
        return so, 0.0
    for old in workdir.glob(f"{stem}-*.so"):
        old.unlink()
    cmd = [str(attnc), str(source), "-o", str(so) + ".tmp"] + list(flags)
    log("$ " + " ".join(cmd))
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        fail(f"attnc exited with {r.returncode}:\n{r.stdout}{r.stderr}")
    os.replace(str(so) + ".tmp", so)
    dt = time.time() - t0
    log(f"attnc: compiled {so.name} in {dt:.1f} s")
    return so, dt
