#!/usr/bin/env python3
#===- tests/fuzz/make_seeds.py - Write the binary seed corpora -----------===#
#
# Small .safetensors, .npy and runtime-harness inputs in corpus/. Run from
# anywhere; the files are checked in, so this only documents how they were
# made (and remakes them).
#
#===----------------------------------------------------------------------===#
import json
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(kind, name, data):
    with open(os.path.join(HERE, kind, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, bytes)."""
    header, blob = {}, b""
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + blob


def npy(descr, shape, data, fortran=False, version=1):
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, fortran, "(%s)" % "".join("%d, " % d for d in shape)
        if len(shape) != 1 else "(%d,)" % shape[0])
    prefix = 10 if version == 1 else 12
    header += " " * (-(prefix + len(header) + 1) % 64) + "\n"
    size = struct.pack("<H" if version == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header.encode() + data


f32 = lambda *v: struct.pack("<%df" % len(v), *v)
write("safetensors", "two_f32.safetensors", safetensors(
    [("w", "F32", [2, 3], f32(1, 2, 3, 4, 5, 6)), ("b", "F32", [3], f32(0, 1, 2))]))
write("safetensors", "mixed.safetensors", safetensors(
    [("h", "F16", [2], b"\x00\x3c\x00\x40"), ("bf", "BF16", [1], b"\x80\x3f"),
     ("i", "I32", [], struct.pack("<i", 7)), ("m", "BOOL", [3], b"\x01\x00\x01"),
     ("l", "I64", [1], struct.pack("<q", 9))],
    metadata={"format": "pt"}))
write("safetensors", "empty.safetensors", safetensors([]))
write("safetensors", "zero_dim.safetensors", safetensors([("z", "F32", [0, 4], b"")]))

write("npy", "f32_2x3.npy", npy("<f4", [2, 3], f32(1, 2, 3, 4, 5, 6)))
write("npy", "i32_scalar.npy", npy("<i4", [], struct.pack("<i", -3)))
write("npy", "bool_4.npy", npy("|b1", [4], b"\x01\x00\x00\x01"))
write("npy", "f16_1x2.npy", npy("<f2", [1, 2], b"\x00\x3c\x00\xc0"))
write("npy", "bf16_u2.npy", npy("<u2", [2], b"\x80\x3f\x00\x40"))
write("npy", "f64_v2.npy", npy("<f8", [1], struct.pack("<d", 1.5), version=2))
write("npy", "fortran.npy", npy("<f4", [2, 2], f32(1, 2, 3, 4), fortran=True))

# Runtime harness inputs (see RuntimeFuzzer.cpp): model, count offset,
# output count offset, then per input: dtype, rank, dims, the count of data
# bytes and those bytes.
def tensor(dtype, dims, data=b""):
    return bytes([dtype, len(dims)] + dims + [len(data)]) + data

write("runtime", "mm_proj_ok", bytes([0, 1, 1]) + tensor(0, [1, 2, 24]))
write("runtime", "mm_norm_ok", bytes([1, 1, 1]) + tensor(0, [3, 20]))
write("runtime", "mini_block_ok", bytes([2, 1, 1]) + tensor(0, [1, 3, 32]) +
      tensor(3, [3], struct.pack("<3i", 0, 1, 2)) + tensor(3, [1], struct.pack("<i", 3)))
write("runtime", "mini_block_bad_s", bytes([2, 1, 1]) + tensor(0, [1, 3, 32]) +
      tensor(3, [4]) + tensor(3, [1]))
write("runtime", "mm_proj_f16", bytes([0, 1, 1]) + tensor(1, [1, 2, 24]))
write("runtime", "null_input", bytes([0, 1, 1, 0xff]))
