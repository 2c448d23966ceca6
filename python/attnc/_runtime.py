"""The ctypes binding of the attnc runtime's C API (runtime/include/attn/runtime.h).

The attnc package (python/attnc/__init__.py) is built on it; the Hugging Face
checks and the benchmarks use it directly.

It runs a compiled library in-process, so state the model writes in place
(a decoder's `inout` KV cache) survives from one call to the next. NumPy arrays
are passed to the runtime without copying: attn_tensor_wrap borrows their
memory, so an input that the model writes (k_cache, v_cache) is updated in
the caller's array. Outputs are written into NumPy arrays allocated here
(attn_model_run_into), so nothing is copied on the way out either.

  rt = attnrt.Runtime("build/lib/libattn_runtime.so")
  lib = rt.open_library("libgpt2.so")
  model = lib.model("gpt2")
  model.bind_weights(rt.open_weights("model.safetensors"))
  (logits,) = model.run(ids=ids, start=start, k_cache=k, v_cache=v)

Every failing call raises AttnError with the runtime's status and message.
Arrays must already have the model's dtype and be C-contiguous and aligned:
nothing is converted (a converted copy would silently drop in-place writes).
"""

import ctypes as C
import sys

import numpy as np

# attn_dtype (attn/abi.h) -> NumPy dtype; bf16 is raw uint16 storage, as in .npy.
DTYPES = {0: np.dtype(np.float32), 1: np.dtype(np.float16), 2: np.dtype(np.uint16),
          3: np.dtype(np.int32), 4: np.dtype(np.bool_)}
CODES = {d: c for c, d in DTYPES.items()}  # NumPy dtype -> attn_dtype
DTYPE_NAMES = {0: "f32", 1: "f16", 2: "bf16", 3: "i32", 4: "bool"}
ROLES = {0: "input", 1: "param", 2: "output", 3: "inout"}  # inout: an input written in place


def _data_address():
    """A fast array.ctypes.data: NumPy's PyArrayObject holds its data pointer
    right after the object header (what PyArray_DATA reads); ctypes.data
    builds a helper object per call, 10x slower, which the per-call cost of
    a small model feels. Checked here, with ctypes.data as the fallback."""
    at = object.__basicsize__
    probe = np.empty(3, np.float32)
    if (sys.implementation.name == "cpython"  # id() is the object's address
            and C.c_void_p.from_address(id(probe) + at).value == probe.ctypes.data):
        read = C.c_void_p.from_address
        return lambda a: read(id(a) + at).value
    return lambda a: a.ctypes.data


data_address = _data_address()
_DIMS = [C.c_int64 * max(rank, 1) for rank in range(17)]  # ATTN_MAX_RANK = 16


class AttnError(RuntimeError):
    """A failed runtime call: `status` (attn_status), `name` (its
    attn_status_name) and `message` (attn_last_error)."""

    def __init__(self, status, name, message):
        super().__init__(f"{message} ({name})")
        self.status = status
        self.name = name
        self.message = message


class _TensorDesc(C.Structure):
    _fields_ = [("name", C.c_char_p), ("weight_name", C.c_char_p), ("role", C.c_int),
                ("dtype", C.c_int), ("rank", C.c_int32), ("dims", C.POINTER(C.c_int64))]


class _ModelDesc(C.Structure):
    _fields_ = [("name", C.c_char_p), ("num_syms", C.c_int32),
                ("sym_names", C.POINTER(C.c_char_p)), ("num_tensors", C.c_int32),
                ("tensors", C.POINTER(_TensorDesc)), ("entry", C.c_void_p)]


class _LibraryDesc(C.Structure):
    _fields_ = [("abi_version", C.c_int32), ("target", C.c_char_p), ("num_models", C.c_int32),
                ("models", C.POINTER(_ModelDesc)), ("set_num_threads", C.c_void_p),
                ("set_error_handler", C.c_void_p)]


class TensorDesc:
    """One input, param or output: name, weight name, role, dtype and dims.

    role is "input", "inout" (an input the model writes in place), "param" or
    "output"; inout tensors are listed among the model's inputs.

    dims holds ints for static sizes and symbol names (str) for symbolic ones."""

    def __init__(self, raw, sym_names):
        self.name = raw.name.decode()
        self.weight_name = raw.weight_name.decode() if raw.weight_name else None
        self.role = ROLES.get(raw.role, str(raw.role))
        self.dtype_code = raw.dtype
        self.dtype = DTYPES[raw.dtype]
        self.dims = [d if d >= 0 else sym_names[-d - 1] for d in raw.dims[:raw.rank]]

    def type_string(self):
        return f"{DTYPE_NAMES[self.dtype_code]}[{', '.join(str(d) for d in self.dims)}]"

    def __repr__(self):
        return f"{self.role} {self.name}: {self.type_string()}"


class Runtime:
    """libattn_runtime.so with the prototypes of the functions used here."""

    def __init__(self, path):
        self.lib = lib = C.CDLL(str(path))
        P, I32, ST = C.c_void_p, C.c_int32, C.c_int
        sigs = {
            "attn_last_error": (C.c_char_p, []),
            "attn_status_name": (C.c_char_p, [ST]),
            "attn_tensor_wrap": (ST, [ST, I32, C.POINTER(C.c_int64), P, C.POINTER(P)]),
            "attn_tensor_free": (None, [P]),
            "attn_weights_open": (ST, [C.c_char_p, C.POINTER(P)]),
            "attn_weights_open_ex": (ST, [C.c_char_p, C.c_uint32, C.POINTER(P)]),
            "attn_weights_close": (None, [P]),
            "attn_weights_count": (I32, [P]),
            "attn_weights_name": (C.c_char_p, [P, I32]),
            "attn_weights_get": (ST, [P, C.c_char_p, C.POINTER(P)]),
            "attn_library_open": (ST, [C.c_char_p, C.POINTER(P)]),
            "attn_library_close": (None, [P]),
            "attn_library_get_desc": (C.POINTER(_LibraryDesc), [P]),
            "attn_library_set_num_threads": (ST, [P, C.c_int]),
            "attn_library_set_memory_limit": (ST, [P, C.c_uint64]),
            "attn_model_open": (ST, [P, C.c_char_p, C.POINTER(P)]),
            "attn_model_close": (None, [P]),
            "attn_model_get_desc": (C.POINTER(_ModelDesc), [P]),
            "attn_model_num_inputs": (I32, [P]),
            "attn_model_num_params": (I32, [P]),
            "attn_model_num_outputs": (I32, [P]),
            "attn_model_input": (C.POINTER(_TensorDesc), [P, I32]),
            "attn_model_param": (C.POINTER(_TensorDesc), [P, I32]),
            "attn_model_output": (C.POINTER(_TensorDesc), [P, I32]),
            "attn_model_scratch_bytes": (ST, [P, I32, C.POINTER(C.c_int64),
                                         C.POINTER(C.c_int64)]),
            "attn_model_bind_weights": (ST, [P, P]),
            "attn_model_bind_param": (ST, [P, C.c_char_p, P]),
            "attn_model_run_into": (ST, [P, I32, C.POINTER(P), I32, C.POINTER(P)]),
        }
        for name, (res, args) in sigs.items():
            f = getattr(lib, name)
            f.restype, f.argtypes = res, args
        # The functions of every call once more, without argtypes: checking
        # and converting each argument costs ctypes about a microsecond per
        # call, so wrap_ref and Model.run_refs pass exactly the C types.
        self._wrap, self._free, self._run_into = (
            lib["attn_tensor_wrap"], lib["attn_tensor_free"], lib["attn_model_run_into"])
        self._wrap.restype, self._free.restype, self._run_into.restype = ST, None, ST

    def check(self, status):
        if status != 0:
            raise AttnError(status, self.lib.attn_status_name(status).decode(),
                            self.lib.attn_last_error().decode(errors="replace"))

    def open_library(self, path):
        return Library(self, path)

    def open_weights(self, path, copy=False):
        return Weights(self, path, copy)

    def ref(self, array, what):
        """(attn_dtype, shape, address) of a NumPy array passed without
        copying; `what` ("input 'x'") names it in errors."""
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{what}: expected a numpy array, got {type(array).__name__}")
        code = CODES.get(array.dtype)
        if code is None:  # ATTN_ERR_DTYPE, as the C runtime says for a wrong dtype
            raise AttnError(4, "dtype", f"{what}: dtype {array.dtype} is not an attnc "
                            "dtype (float32, float16, uint16 for bf16, int32, bool)")
        address = data_address(array)
        if not array.flags.c_contiguous or address % array.itemsize:
            raise ValueError(f"{what}: the array must be C-contiguous and aligned "
                             "(it is passed without copying)")
        return code, array.shape, address

    def wrap_ref(self, code, shape, address):
        """An attn_tensor (a c_void_p) over memory that the caller keeps
        alive; free it with lib.attn_tensor_free."""
        out, rank = C.c_void_p(), len(shape)
        dims = (_DIMS[rank] if rank < len(_DIMS) else C.c_int64 * rank)(*shape)
        status = self._wrap(code, rank, dims, C.c_void_p(address), C.byref(out))
        if status:
            self.check(status)
        return out

    def wrap(self, array, what):
        """An attn_tensor borrowing `array`'s memory (the caller keeps it alive)."""
        return self.wrap_ref(*self.ref(array, what))


class Weights:
    """A .safetensors file, mapped (or read into memory with copy=True:
    ATTN_WEIGHTS_COPY, see runtime.h for the trade-off)."""

    def __init__(self, rt, path, copy=False):
        self.rt, self.path = rt, str(path)
        self.handle = C.c_void_p()
        rt.check(rt.lib.attn_weights_open_ex(self.path.encode(), 1 if copy else 0,
                                             C.byref(self.handle)))

    def names(self):
        f = self.rt.lib
        return [f.attn_weights_name(self.handle, i).decode()
                for i in range(f.attn_weights_count(self.handle))]

    def close(self):
        if self.handle:
            self.rt.lib.attn_weights_close(self.handle)
            self.handle = C.c_void_p()

    def __del__(self):
        self.close()


class Library:
    """A compiled library (dlopen()ed by the runtime)."""

    def __init__(self, rt, path):
        self.rt, self.path = rt, str(path)
        self.handle = C.c_void_p()
        rt.check(rt.lib.attn_library_open(self.path.encode(), C.byref(self.handle)))

    def target(self):
        return self.rt.lib.attn_library_get_desc(self.handle).contents.target.decode()

    def model_names(self):
        d = self.rt.lib.attn_library_get_desc(self.handle).contents
        return [d.models[i].name.decode() for i in range(d.num_models)]

    def set_num_threads(self, n):
        self.rt.check(self.rt.lib.attn_library_set_num_threads(self.handle, n))

    def set_memory_limit(self, nbytes):
        """Later runs whose inputs, outputs and scratch exceed `nbytes` fail
        with ATTN_ERR_RESOURCE before allocating; 0: no limit."""
        self.rt.check(self.rt.lib.attn_library_set_memory_limit(self.handle, nbytes))

    def model(self, name=None):
        return Model(self, name)

    def close(self):
        if self.handle:
            self.rt.lib.attn_library_close(self.handle)
            self.handle = C.c_void_p()

    def __del__(self):
        self.close()


class Model:
    """One model of a library; keeps the library loaded and its weights mapped."""

    def __init__(self, library, name=None):
        self.rt = rt = library.rt
        self.handle = C.c_void_p()
        rt.check(rt.lib.attn_model_open(library.handle, name.encode() if name else None,
                                        C.byref(self.handle)))
        f = rt.lib
        md = f.attn_model_get_desc(self.handle).contents
        self.name = md.name.decode()
        self.sym_names = [md.sym_names[i].decode() for i in range(md.num_syms)]

        def descs(count, at):
            return [TensorDesc(at(self.handle, i).contents, self.sym_names)
                    for i in range(count(self.handle))]
        self.inputs = descs(f.attn_model_num_inputs, f.attn_model_input)
        self.params = descs(f.attn_model_num_params, f.attn_model_param)
        self.outputs = descs(f.attn_model_num_outputs, f.attn_model_output)
        self._plan()
        self._weights = None
        self._params = {}  # name -> (attn_tensor handle, array) bound by bind_param

    def input(self, name):
        for d in self.inputs:
            if d.name == name:
                return d
        raise KeyError(f"model '{self.name}' has no input '{name}' "
                       f"(inputs: {', '.join(d.name for d in self.inputs)})")

    def signature(self):
        ins = ", ".join(f"{d.name}: {'inout ' if d.role == 'inout' else ''}{d.type_string()}"
                        for d in self.inputs)
        outs = ", ".join(d.type_string() for d in self.outputs)
        syms = f"<{', '.join(self.sym_names)}>" if self.sym_names else ""
        return f"{self.name}{syms}({ins}) -> {outs}"

    def scratch_bytes(self, sizes):
        """The bytes a run allocates besides its tensors for the symbolic
        sizes `sizes` (in sym_names order), or None when the library does
        not say."""
        vals = (C.c_int64 * max(len(sizes), 1))(*sizes)
        out = C.c_int64()
        self.rt.check(self.rt.lib.attn_model_scratch_bytes(self.handle, len(sizes), vals,
                                                           C.byref(out)))
        return None if out.value < 0 else out.value

    def bind_weights(self, weights):
        self.rt.check(self.rt.lib.attn_model_bind_weights(self.handle, weights.handle))
        self._weights = weights  # the model keeps the file mapped; keep the handle too

    def bind_shards(self, shards):
        """Binds each param from whichever of several weights files (the
        shards of one checkpoint) holds its weight name; the views stay in
        the mapped files, which the model keeps open."""
        f, holder = self.rt.lib, {}
        for w in shards:
            for n in w.names():
                holder.setdefault(n, w)
        for p in self.params:
            key = p.weight_name or p.name
            w = holder.get(key)
            if w is None:
                raise AttnError(6, "not found", f"no shard holds tensor '{key}' for param "
                                f"'{p.name}' ({p.type_string()}); shards: "
                                f"{', '.join(w.path for w in shards)}")
            t = C.c_void_p()
            self.rt.check(f.attn_weights_get(w.handle, key.encode(), C.byref(t)))
            self.rt.check(f.attn_model_bind_param(self.handle, p.name.encode(), t))
        self._weights = list(shards)

    def bind_param(self, name, array):
        """Binds param `name` to `array`, borrowed: the caller keeps it alive
        and unchanged until the param is rebound or the model closed."""
        t = self.rt.wrap(array, f"param '{name}'")
        try:
            self.rt.check(self.rt.lib.attn_model_bind_param(self.handle, name.encode(), t))
        except BaseException:
            self.rt.lib.attn_tensor_free(t)
            raise
        # The runtime borrows the tensor handle too: it lives with the model.
        old = self._params.pop(name, None)
        self._params[name] = (t, array)
        if old:
            self.rt.lib.attn_tensor_free(old[0])

    def _plan(self):
        """What each call needs, worked out once: the labels of errors, the
        input dim that binds each symbolic size, and the output dims."""
        self._in_labels = [f"input '{d.name}'" for d in self.inputs]
        self._out_labels = [f"output '{d.name}'" for d in self.outputs]
        self._binders = {}  # size -> (input, dim) that binds it
        for i, d in enumerate(self.inputs):
            for k, dim in enumerate(d.dims):
                if isinstance(dim, str):
                    self._binders.setdefault(dim, (i, k))
        self._sums = {}  # a derived size ("T+1") -> its terms, when inputs bind them
        for name in self.sym_names:
            terms = name.split("+")
            if (name not in self._binders and len(terms) > 1 and
                    all(t.isdigit() or t in self._binders for t in terms)):
                self._sums[name] = terms

    def output_shapes(self, shapes):
        """The outputs' shapes for inputs of these shapes (the sizes they bind).
        An input of the wrong rank gives size 0: the runtime then says what
        is wrong with it, before it looks at the outputs."""
        sizes = {s: shapes[i][k] if k < len(shapes[i]) else 0
                 for s, (i, k) in self._binders.items()}
        for name, terms in self._sums.items():
            sizes[name] = sum(int(t) if t.isdigit() else sizes[t] for t in terms)
        out = []
        for d in self.outputs:
            try:
                out.append(tuple(sizes[x] if isinstance(x, str) else x for x in d.dims))
            except KeyError as e:
                raise AttnError(6, "not found", f"output '{d.name}' size {e.args[0]} is "
                                "not bound by an input") from None
        return out

    def inputs_in_order(self, args, kwargs):
        """The inputs given in declaration order or by name, as a list."""
        if args and kwargs:
            raise TypeError("give the inputs either in order or by name")
        if kwargs:
            names = [d.name for d in self.inputs]
            unknown = sorted(set(kwargs) - set(names))
            if unknown:
                raise KeyError(f"model '{self.name}' has no input {unknown} "
                               f"(inputs: {', '.join(names)})")
            missing = [n for n in names if n not in kwargs]
            if missing:
                raise KeyError(f"model '{self.name}': missing input(s) {missing}")
            args = [kwargs[n] for n in names]
        if len(args) != len(self.inputs):
            raise TypeError(f"model '{self.name}' takes {len(self.inputs)} inputs, "
                            f"got {len(args)}")
        return args

    def run(self, *args, outputs=None, **kwargs):
        """Runs the model on NumPy inputs, given in declaration order or by name.

        Inputs are borrowed, not copied: the model's in-place writes (inout
        args) land in the caller's arrays. Returns the list of outputs (new
        arrays, or the `outputs` arrays given, which are filled in place)."""
        args = self.inputs_in_order(args, kwargs)
        ref = self.rt.ref
        ins = [ref(a, w) for a, w in zip(args, self._in_labels)]
        if outputs is None:
            outputs = [np.empty(s, d.dtype)
                       for s, d in zip(self.output_shapes([r[1] for r in ins]), self.outputs)]
        self.run_refs(ins, [ref(a, w) for a, w in zip(outputs, self._out_labels)])
        return outputs

    def run_refs(self, ins, outs):
        """attn_model_run_into on (attn_dtype, shape, address) triples (as
        Runtime.ref gives), inputs in declaration order; the caller keeps
        the memory alive."""
        rt, handles = self.rt, []
        try:
            for r in ins:
                handles.append(rt.wrap_ref(*r))
            for r in outs:
                handles.append(rt.wrap_ref(*r))
            n, m = len(ins), len(outs)
            status = rt._run_into(self.handle, n, (C.c_void_p * max(n, 1))(*handles[:n]),
                                  m, (C.c_void_p * max(m, 1))(*handles[n:]))
            if status:
                rt.check(status)
        finally:
            for h in handles:
                rt._free(h)

    def close(self):
        if self.handle:
            self.rt.lib.attn_model_close(self.handle)
            self.handle = C.c_void_p()
        for t, _ in self._params.values():
            self.rt.lib.attn_tensor_free(t)
        self._params = {}

    def __del__(self):
        self.close()
