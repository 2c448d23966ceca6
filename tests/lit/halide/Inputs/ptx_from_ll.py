#!/usr/bin/env python3
"""Writes the PTX that Halide embeds in a CUDA-target LLVM module.

    ptx_from_ll.py MODULE.ll OUT.ptx

Halide's CUDA host code carries the kernels' PTX as the constant
@cuda_gpu_source_kernels.data (c"..." with \\XX escapes); this decodes it so
that ptxas can assemble it. Exits 1 if the module holds no PTX.
"""
import re
import sys


def main():
    text = open(sys.argv[1], encoding="latin-1").read()
    m = re.search(r'@cuda_gpu_source_kernels\.data = [^"]*c"((?:[^"\\]|\\[0-9A-Fa-f]{2}|\\\\)*)"',
                  text)
    if not m:
        sys.exit("ptx_from_ll.py: no @cuda_gpu_source_kernels.data in " + sys.argv[1])
    raw = re.sub(r"\\([0-9A-Fa-f]{2})", lambda h: chr(int(h.group(1), 16)),
                 m.group(1).replace("\\\\", "\\5C"))
    open(sys.argv[2], "w", encoding="latin-1").write(raw.rstrip("\0"))


if __name__ == "__main__":
    main()
