"""attnc from Python: compile attention models and run them on NumPy arrays
or torch CPU tensors.

    import attnc, numpy as np
    lib = attnc.compile("examples/bert_layer.attn")        # or Library.load("lib.so")
    model = lib.models["bert_layer"]
    model.bind({p.weight_name: np.random.rand(*shape) ...})   # or a .safetensors path
    (y,) = model(x=x, lengths=lengths)

The runtime is the C API of libattn_runtime.so, called through ctypes
(python/attnc/_runtime.py): no extension module to build, the same checks and
messages as the C runtime (errors are AttnError with its status), and ctypes
releases the GIL for every runtime call, so Python threads run one bound model
at once (runtime.h's thread contract). Inputs are passed without copying when
they are C-contiguous (torch tensors by their data_ptr); a strided input
is copied, and a strided `inout` one (a KV cache, which the model writes
in place) is a ValueError.
Dtypes are never converted: the runtime checks them (int64 ids for an i32
input are an AttnError, as in C).

Where the tools are: $ATTNC (the attnc binary) and $ATTNC_RUNTIME
(libattn_runtime.so); else the build tree this package sits in
(python/../build), else `attnc` on PATH and ../lib next to it.
"""

import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from . import _runtime
from ._runtime import AttnError, TensorDesc

__all__ = ["AttnError", "CompileError", "Library", "Model", "TensorDesc",
           "compile", "emit", "tool_paths"]

EMIT_KINDS = ("ast", "attn", "fused", "scheduled", "halide-stmt", "halide-html",
              "llvm", "asm", "header")
ATTN_ERR_DTYPE, ATTN_ERR_NOT_FOUND = 4, 6


class CompileError(RuntimeError):
    """attnc rejected the source; the message holds its diagnostics
    (file:line:col, the source line and a caret)."""

    def __init__(self, message, returncode):
        super().__init__(message)
        self.returncode = returncode


def tool_paths():
    """(attnc binary, libattn_runtime.so) as found (see the module doc)."""
    attnc = os.environ.get("ATTNC")
    if not attnc:
        tree = Path(__file__).resolve().parents[2] / "build" / "bin" / "attnc"
        attnc = str(tree) if tree.exists() else shutil.which("attnc")
    if not attnc:
        raise FileNotFoundError("attnc not found: set $ATTNC to the attnc binary "
                                "(BUILD/bin/attnc) or put it on PATH")
    runtime = os.environ.get("ATTNC_RUNTIME") or str(
        Path(attnc).resolve().parent.parent / "lib" / "libattn_runtime.so")
    return attnc, runtime


_rt = None
_rt_lock = threading.Lock()


def _runtime_lib():
    global _rt
    with _rt_lock:
        if _rt is None:
            _rt = _runtime.Runtime(tool_paths()[1])
        return _rt


def _source_file(source, tmp):
    """`source` as a path: a path given, or DSL text written to `tmp`."""
    if isinstance(source, Path) or ("\n" not in source and Path(source).exists()):
        return str(source)
    path = Path(tmp) / "model.attn"
    path.write_text(source)
    return str(path)


def _flags(flags):
    """Keyword flags as attnc options: no_fusion=True -> --no-fusion,
    schedule=[...] -> --schedule=... per entry, l2_cache="1M" -> --l2-cache=1M."""
    out = []
    for key, value in flags.items():
        opt = "--" + key.replace("_", "-")
        if value is True:
            out.append(opt)
        elif value is False or value is None:
            continue
        elif isinstance(value, (list, tuple)):
            out += [f"{opt}={v}" for v in value]
        else:
            out.append(f"{opt}={value}")
    return out


def _attnc(args):
    attnc, _ = tool_paths()
    r = subprocess.run([attnc, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise CompileError(r.stderr.strip() or f"attnc exited with {r.returncode}",
                           r.returncode)
    return r


def compile(source, target="host", output=None, **flags):
    """Compiles DSL source (a path, or the text itself) into a shared library
    and loads it. `output` keeps the .so at that path (else a temporary
    file, removed when the Library is closed). Other keywords are attnc
    flags (model="m", no_fusion=True, schedule=["attention:q=32,rqk=32"])."""
    with tempfile.TemporaryDirectory() as tmp:
        src = _source_file(source, tmp)
        keep = output is not None
        if not keep:
            fd, output = tempfile.mkstemp(suffix=".so", prefix="attnc-")
            os.close(fd)
        try:
            _attnc([src, f"--target={target}", "-o", str(output), *_flags(flags)])
        except BaseException:
            if not keep:
                os.unlink(output)
            raise
    return Library(output, _remove=not keep)


def emit(source, kind, target="host", **flags):
    """The text of one stage: "attn", "fused", "scheduled", "halide-stmt",
    "llvm", "asm", "header", ... (attnc --emit=KIND)."""
    if kind not in EMIT_KINDS:
        raise ValueError(f"emit kind {kind!r}: expected one of {', '.join(EMIT_KINDS)}")
    with tempfile.TemporaryDirectory() as tmp:
        src = _source_file(source, tmp)
        out = Path(tmp) / "out.txt"
        _attnc([src, f"--emit={kind}", f"--target={target}", "-o", str(out),
                *_flags(flags)])
        return out.read_text()


class Library:
    """A compiled library, loaded in this process. `models` maps each model's
    name to its Model (opened on first use)."""

    def __init__(self, path, _remove=False):
        self.path = str(path)
        self._lib = _runtime_lib().open_library(self.path)
        self._remove = _remove
        self.target = self._lib.target()
        self.models = _Models(self, self._lib.model_names())

    @classmethod
    def load(cls, path):
        return cls(path)

    def set_num_threads(self, n):
        """The library's Halide worker threads (0: its default)."""
        self._lib.set_num_threads(n)

    def set_memory_limit(self, nbytes):
        """Later runs of this library's models whose inputs, outputs and
        scratch together exceed `nbytes` fail with AttnError (status
        ATTN_ERR_RESOURCE, 12) before allocating anything; 0 lifts it."""
        self._lib.set_memory_limit(nbytes)

    def close(self):
        for m in self.models.opened():
            m.close()
        self._lib.close()
        if self._remove and os.path.exists(self.path):
            os.unlink(self.path)
            self._remove = False

    def __repr__(self):
        return f"<attnc.Library {self.path} ({self.target}): {', '.join(self.models)}>"


class _Models(dict):
    """name -> Model, each opened once, on first use."""

    def __init__(self, library, names):
        super().__init__((n, None) for n in names)
        self._library = library

    def __getitem__(self, name):
        if name not in self:
            raise KeyError(f"library {self._library.path} has no model {name!r} "
                           f"(models: {', '.join(self.keys())})")
        m = super().__getitem__(name)
        if m is None:
            m = Model(self._library, name)
            super().__setitem__(name, m)
        return m

    def values(self):
        return [self[n] for n in self]

    def items(self):
        return [(n, self[n]) for n in self]

    def opened(self):
        return [m for m in dict.values(self) if m is not None]


def _to_numpy(value, what):
    """(array, came_from_torch): torch CPU tensors through DLPack (no copy)."""
    if isinstance(value, np.ndarray):
        return value, False
    mod = type(value).__module__
    if mod.startswith("torch"):
        import torch
        t = value.detach()
        if t.device.type != "cpu":
            raise AttnError(ATTN_ERR_DTYPE, "dtype",
                            f"{what}: a tensor on {t.device}; attnc runs on the CPU")
        if t.dtype == torch.bfloat16:  # NumPy has no bf16: its bits, as .npy does
            t = t.view(torch.int16)
            return np.from_dlpack(t).view(np.uint16), True
        return np.from_dlpack(t), True
    return np.asarray(value), False


_TORCH_CODES = None  # torch dtype -> attn_dtype


def _torch_ref(t, what, inout):
    """(tensor, (attn_dtype, shape, address)) of a torch CPU tensor: itself,
    or a contiguous copy of a strided one that is not inout."""
    global _TORCH_CODES
    import torch
    if _TORCH_CODES is None:
        _TORCH_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2,
                        torch.int32: 3, torch.bool: 4}
    if not t.is_cpu:
        raise AttnError(ATTN_ERR_DTYPE, "dtype",
                        f"{what}: a tensor on {t.device}; attnc runs on the CPU")
    code = _TORCH_CODES.get(t.dtype)
    if code is None:
        raise AttnError(ATTN_ERR_DTYPE, "dtype", f"{what}: dtype {t.dtype} is not an "
                        "attnc dtype (float32, float16, bfloat16, int32, bool)")
    if not t.is_contiguous():
        if inout:
            raise ValueError(f"{what}: the tensor must be contiguous (it is written "
                             "in place, so it is passed without copying)")
        t = t.contiguous()
    address = t.data_ptr()
    if address % t.element_size():
        raise ValueError(f"{what}: the tensor's data is not aligned to its elements")
    return t, (code, t.shape, address)


def _torch_out(array, desc):
    """A NumPy output as a torch tensor over the same memory (bf16 as bfloat16)."""
    import torch
    t = torch.from_numpy(array)
    return t.view(torch.bfloat16) if desc.dtype_code == 2 else t


class Model:
    """One model of a Library: `inputs`, `params` and `outputs` describe its
    tensors (name, weight_name, dtype, dims with symbolic sizes as names);
    bind() its weights, then call it."""

    def __init__(self, library, name):
        self.library = library
        self._m = library._lib.model(name)
        self.name = self._m.name
        self.sizes = list(self._m.sym_names)
        self.inputs, self.params, self.outputs = self._m.inputs, self._m.params, self._m.outputs

    def bind(self, weights, copy=False):
        """Binds every param from a .safetensors path (mapped, or read when
        copy=True), a list of paths (the shards of one checkpoint, as
        attnc.hf.load gives), or a dict of arrays / a torch state_dict keyed
        by weight name. Dict values are borrowed without copying when they
        are C-contiguous; dtypes and shapes are checked by the runtime."""
        rt = self._m.rt
        if isinstance(weights, (str, Path)):
            self._m.bind_weights(rt.open_weights(str(weights), copy=copy))
            return self
        if isinstance(weights, (list, tuple)):
            self._m.bind_shards([rt.open_weights(str(w), copy=copy) for w in weights])
            return self
        for p in self.params:
            key = p.weight_name or p.name
            if key not in weights:
                raise AttnError(ATTN_ERR_NOT_FOUND, "not found",
                                f"weights have no tensor '{key}' for param '{p.name}' "
                                f"({p.type_string()})")
            array, _ = _to_numpy(weights[key], f"weight '{key}'")
            self._m.bind_param(p.name, np.ascontiguousarray(array))
        return self

    def signature(self):
        return self._m.signature()

    def scratch_bytes(self, **sizes):
        """The bytes a call allocates besides its inputs, outputs and params
        for these symbolic sizes (scratch_bytes(B=2, S=128); derived sizes
        such as "T+1" are summed), as the library states it; None when it
        does not say."""
        unknown = sorted(set(sizes) - set(self.sizes))
        if unknown:
            raise KeyError(f"model '{self.name}' has no size {unknown} (sizes: {self.sizes})")
        values = []
        for s in self.sizes:
            terms = s.split("+")
            if s not in sizes and len(terms) > 1 and all(t.isdigit() or t in sizes
                                                         for t in terms):
                sizes[s] = sum(int(t) if t.isdigit() else sizes[t] for t in terms)
            if s not in sizes:
                raise KeyError(f"model '{self.name}': size {s} is not given")
            values.append(sizes[s])
        return self._m.scratch_bytes(values)

    def __call__(self, *args, **kwargs):
        """Runs on NumPy arrays or torch CPU tensors, in declaration order or
        by name. Returns one output, or a tuple of them, as NumPy arrays, or
        torch tensors when torch tensors came in."""
        m = self._m
        args = m.inputs_in_order(args, kwargs)
        refs, keep, torch_in = [], [], False
        for d, what, value in zip(self.inputs, m._in_labels, args):
            inout = d.role == "inout"  # a contiguous copy would drop in-place writes
            if not isinstance(value, np.ndarray) and type(value).__module__.startswith("torch"):
                value, ref = _torch_ref(value, what, inout)
                torch_in = True
            else:
                value = np.asarray(value)
                if not inout and not value.flags.c_contiguous:
                    value = np.ascontiguousarray(value)
                ref = m.rt.ref(value, what)
            keep.append(value)  # alive until the run returns
            refs.append(ref)
        outs = [np.empty(s, d.dtype)
                for s, d in zip(m.output_shapes([r[1] for r in refs]), self.outputs)]
        m.run_refs(refs, [m.rt.ref(o, w) for o, w in zip(outs, m._out_labels)])
        if torch_in:
            outs = [_torch_out(o, d) for o, d in zip(outs, self.outputs)]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def close(self):
        self._m.close()

    def __repr__(self):
        return f"<attnc.Model {self.signature()}>"


from . import hf  # noqa: E402  (attnc.hf.load)
