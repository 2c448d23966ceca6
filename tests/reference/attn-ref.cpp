//===- attn-ref.cpp - Runs the double-precision reference on .npy files ---===//
//
// attn-ref FILE.attn [--model NAME] [--weights W.safetensors]
//          --input NAME=FILE.npy ... [--check GOT.npy ...] [--rtol R --atol A]
//
// Evaluates a model with the reference interpreter (tests/reference) on the
// same files attn-run takes, and compares each output that attn-run wrote
// (--check, in declaration order) with it. Prints the max absolute error and
// the max error scaled by (atol + rtol |ref|) per output; exits 1 when an
// output is outside the tolerance, has NaN/Inf, or anything fails to load.
//
//===----------------------------------------------------------------------===//
#include "Compare.h"
#include "Reference.h"

#include "attn/Frontend/Frontend.h"
#include "attn/runtime.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

using namespace attn;

static double elementAsDouble(const attn_tensor *t, int64_t i) {
  const void *p = attn_tensor_data(t);
  switch (attn_tensor_dtype(t)) {
  case ATTN_F32:
    return ((const float *)p)[i];
  case ATTN_F16:
    return attn_f16_to_f32(((const uint16_t *)p)[i]);
  case ATTN_BF16:
    return attn_bf16_to_f32(((const uint16_t *)p)[i]);
  case ATTN_I32:
    return ((const int32_t *)p)[i];
  case ATTN_BOOL:
    return ((const uint8_t *)p)[i] ? 1.0 : 0.0;
  }
  return 0;
}

static ast::DType astType(attn_dtype t) {
  switch (t) {
  case ATTN_F32:
    return ast::DType::F32;
  case ATTN_F16:
    return ast::DType::F16;
  case ATTN_BF16:
    return ast::DType::BF16;
  case ATTN_I32:
    return ast::DType::I32;
  case ATTN_BOOL:
    return ast::DType::Bool;
  }
  return ast::DType::F32;
}

static RefTensor toRef(const attn_tensor *t) {
  const int64_t *d = attn_tensor_dims(t);
  RefTensor r(std::vector<int64_t>(d, d + attn_tensor_rank(t)),
              astType(attn_tensor_dtype(t)));
  for (int64_t i = 0; i < r.numel(); ++i)
    r.data[i] = elementAsDouble(t, i);
  return r;
}

/// True for the safetensors dtypes the runtime views as tensors (the
/// language's dtypes).
static bool viewable(const char *fileDtype) {
  static const char *const known[] = {"F32", "F16", "BF16", "I32", "BOOL"};
  for (const char *k : known)
    if (fileDtype && std::strcmp(fileDtype, k) == 0)
      return true;
  return false;
}

static int fail(const std::string &msg) {
  std::cerr << "attn-ref: error: " << msg << "\n";
  return 1;
}

static const char *usage =
    "usage: attn-ref FILE.attn [--model NAME] [--weights W.safetensors]\n"
    "                --input NAME=FILE.npy ... [--check GOT.npy ...]\n"
    "                [--rtol R] [--atol A]\n"
    "Evaluates the model in double precision (the independent reference).\n"
    "With --check, compares the i-th output with the i-th GOT.npy, prints a\n"
    "report and exits 1 if one differs beyond the tolerances.\n";

int main(int argc, char **argv) {
  std::string file, modelName, weightsPath;
  std::vector<std::pair<std::string, std::string>> inputs;
  std::vector<std::string> checks;
  double rtol = 1e-3, atol = 1e-4;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      return i + 1 < argc ? argv[++i] : std::string();
    };
    if (a == "-h" || a == "--help") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (a == "--model")
      modelName = next();
    else if (a == "--weights")
      weightsPath = next();
    else if (a == "--input") {
      std::string kv = next();
      size_t eq = kv.find('=');
      if (eq == std::string::npos)
        return fail("--input takes NAME=FILE.npy, got '" + kv + "'");
      inputs.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    } else if (a == "--check")
      checks.push_back(next());
    else if (a == "--rtol")
      rtol = std::atof(next().c_str());
    else if (a == "--atol")
      atol = std::atof(next().c_str());
    else if (!a.empty() && a[0] != '-' && file.empty())
      file = a;
    else
      return fail("unknown argument '" + a + "'");
  }
  if (file.empty())
    return fail(std::string("no model file given\n") + usage);

  std::ifstream in(file);
  if (!in)
    return fail("cannot read " + file);
  std::stringstream text;
  text << in.rdbuf();
  SourceDiagnostics diags(file, text.str(), std::cerr);
  std::optional<ast::Module> module = parseModule(diags);
  if (!module || !checkModule(*module, diags))
    return 1;
  const ast::Model *model = nullptr;
  for (const ast::Model &m : module->models)
    if (modelName.empty() ? module->models.size() == 1 : m.name == modelName)
      model = &m;
  if (!model)
    return fail(modelName.empty() ? "the file holds several models: pass --model"
                                  : "no model named '" + modelName + "'");

  std::map<std::string, RefTensor> inputTensors, weightTensors;
  std::string skipped; // tensors of the weights file no param can bind
  for (auto &[name, path] : inputs) {
    attn_tensor *t = nullptr;
    if (attn_npy_read(path.c_str(), &t) != ATTN_OK)
      return fail(attn_last_error());
    inputTensors[name] = toRef(t);
    attn_tensor_free(t);
  }
  if (!weightsPath.empty()) {
    attn_weights *w = nullptr;
    if (attn_weights_open(weightsPath.c_str(), &w) != ATTN_OK)
      return fail(attn_last_error());
    for (int32_t i = 0; i < attn_weights_count(w); ++i) {
      const attn_tensor *t = nullptr;
      const char *name = attn_weights_name(w, i);
      // Tensors of dtypes the runtime cannot view (I64 position_ids, U8,
      // ...) cannot be params: skip them, as the runtime ignores tensors the
      // model does not use. A model that names one reports it missing.
      if (!viewable(attn_weights_file_dtype(w, i))) {
        skipped += std::string(skipped.empty() ? "" : ", ") + name + " (" +
                   attn_weights_file_dtype(w, i) + ")";
        continue;
      }
      if (attn_weights_get(w, name, &t) != ATTN_OK)
        return fail(attn_last_error());
      weightTensors[name] = toRef(t);
    }
    attn_weights_close(w);
  }

  std::vector<RefTensor> outputs;
  std::string error;
  if (!evaluate(*model, inputTensors, weightTensors, outputs, error))
    return fail(error + (skipped.empty() ? ""
                                         : "\n(skipped, of dtypes no param "
                                           "can have: " +
                                               skipped + ")"));
  if (checks.size() > outputs.size())
    return fail("more --check files than the model has outputs");

  bool ok = true;
  for (size_t o = 0; o < checks.size(); ++o) {
    attn_tensor *t = nullptr;
    if (attn_npy_read(checks[o].c_str(), &t) != ATTN_OK)
      return fail(attn_last_error());
    RefTensor got = toRef(t);
    attn_tensor_free(t);
    if (got.shape != outputs[o].shape)
      return fail(checks[o] + " has shape " + shapeString(got.shape) +
                  " but the reference output is " +
                  shapeString(outputs[o].shape));
    std::string report;
    bool pass = compare(outputs[o], got.data.data(), got.data.size(), rtol,
                        atol, report);
    double sum = 0, sumAbs = 0;
    for (double v : got.data) {
      sum += v;
      sumAbs += std::fabs(v);
    }
    std::printf("output %zu %s: checksum sum=%.6f sum|x|=%.6f\n", o,
                shapeString(got.shape).c_str(), sum, sumAbs);
    std::printf("output %zu: %s (rtol %g, atol %g)\n%s\n", o,
                pass ? "matches the reference" : "DIFFERS from the reference",
                rtol, atol, report.c_str());
    ok &= pass;
  }
  return ok ? 0 : 1;
}
