"""Writes PREFIX.safetensors (an F32 tensor 'w' [2, 2] = [[1, 2], [3, 4]]
next to an I64 'position_ids', as BERT checkpoints carry), PREFIX.x.npy
(f32 [1, 2] = [1, 1]) and PREFIX.want.npy (x @ w^T = [3, 7]), with the
standard library only."""
import json
import struct
import sys

prefix = sys.argv[1]
ids = struct.pack("<4q", 0, 1, 2, 3)
w = struct.pack("<4f", 1, 2, 3, 4)
header = {
    "position_ids": {"dtype": "I64", "shape": [1, 4], "data_offsets": [0, 32]},
    "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [32, 48]},
}
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(prefix + ".safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + ids + w)


def npy(path, values):
    head = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, %d), }" % len(values)
    head = head.encode()
    head += b" " * (64 - 10 - len(head) - 1) + b"\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head)
        f.write(struct.pack("<%df" % len(values), *values))


npy(prefix + ".x.npy", [1, 1])
npy(prefix + ".want.npy", [3, 7])
