//===- runtime_test.cpp - Tests of the attnc runtime ----------------------===//
//
// .npy and safetensors round trips and error cases, and the whole
// load -> bind -> check -> run path over the hand-written fake libraries of
// fake_model.c, through the C API, the C++ wrapper and the tools.
//
//===----------------------------------------------------------------------===//
#include "attn/runtime.hpp"

#include <HalideRuntime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <vector>

namespace {

namespace fs = std::filesystem;

// A fresh directory per test.
class Tmp {
public:
  Tmp() {
    const auto *info = testing::UnitTest::GetInstance()->current_test_info();
    dir = fs::path(testing::TempDir()) /
          (std::string("attn-rt-") + info->test_suite_name() + "-" +
           info->name() + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Tmp() { fs::remove_all(dir); }
  std::string operator()(const std::string &name) const {
    return (dir / name).string();
  }
  fs::path dir;
};

void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), bytes.size());
}

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A .npy file with the given version, header text and data.
std::string npyBytes(const std::string &dict, const std::string &data,
                     int major = 1) {
  std::string header = dict;
  size_t pre = major == 1 ? 10 : 12;
  while ((pre + header.size() + 1) % 64)
    header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += (char)major;
  out += '\0';
  uint32_t len = (uint32_t)header.size();
  for (size_t i = 0; i < pre - 8; ++i)
    out += (char)((len >> (8 * i)) & 0xff);
  return out + header + data;
}

// A safetensors file from raw header text and data.
std::string stBytes(const std::string &json, const std::string &data) {
  std::string out;
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i)
    out += (char)((n >> (8 * i)) & 0xff);
  return out + json + data;
}

// One tensor of a hand-written safetensors file: raw bytes under any dtype
// string, so that dtypes the writer cannot produce (I64, F8_E4M3, ...) and
// wrong sizes can be tested.
struct RawTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::string data;
};

// A safetensors file holding `tensors` back to back, in order.
std::string stFile(const std::vector<RawTensor> &tensors) {
  std::string json = "{", data;
  for (const RawTensor &t : tensors) {
    std::string shape;
    for (int64_t d : t.shape)
      shape += (shape.empty() ? "" : ",") + std::to_string(d);
    json += (json.size() > 1 ? ",\"" : "\"") + t.name + "\":{\"dtype\":\"" +
            t.dtype + "\",\"shape\":[" + shape + "],\"data_offsets\":[" +
            std::to_string(data.size()) + "," +
            std::to_string(data.size() + t.data.size()) + "]}";
    data += t.data;
  }
  return stBytes(json + "}", data);
}

std::string floatBytes(const std::vector<float> &v) {
  return std::string((const char *)v.data(), v.size() * 4);
}

attn::Tensor makeTensor(attn_dtype dtype, std::vector<int64_t> shape) {
  auto t = attn::Tensor::create(dtype, shape);
  EXPECT_TRUE(t.ok()) << t.status().message;
  return t.take();
}

attn::Tensor f32(std::vector<int64_t> shape, std::vector<float> values) {
  attn::Tensor t = makeTensor(ATTN_F32, shape);
  EXPECT_EQ((size_t)t.numel(), values.size());
  std::memcpy(t.data(), values.data(), values.size() * 4);
  return t;
}

attn::Tensor i32(std::vector<int64_t> shape, std::vector<int32_t> values) {
  attn::Tensor t = makeTensor(ATTN_I32, shape);
  std::memcpy(t.data(), values.data(), values.size() * 4);
  return t;
}

// Checks that `status` failed with `code` and a message containing `text`.
#define EXPECT_ERROR(status, code, text)                                       \
  do {                                                                         \
    attn_status st_ = (status);                                                \
    EXPECT_EQ(st_, code) << attn_status_name(st_);                             \
    EXPECT_NE(std::string(attn_last_error()).find(text), std::string::npos)    \
        << "message: " << attn_last_error();                                   \
  } while (0)

//===-- .npy --------------------------------------------------------------===//

TEST(Npy, RoundTripsEveryDtype) {
  Tmp tmp;
  struct Case {
    attn_dtype dtype;
    std::vector<int64_t> shape;
  };
  for (const Case &c :
       {Case{ATTN_F32, {2, 3}}, Case{ATTN_F16, {5}}, Case{ATTN_BF16, {1, 2, 3}},
        Case{ATTN_I32, {}}, Case{ATTN_BOOL, {4, 1}}, Case{ATTN_F32, {0, 3}}}) {
    attn::Tensor t = makeTensor(c.dtype, c.shape);
    auto *bytes = t.data<uint8_t>();
    for (size_t i = 0; i < t.nbytes(); ++i)
      bytes[i] = c.dtype == ATTN_BOOL ? i % 2 : (uint8_t)(i * 37 + 1);
    std::string path = tmp("t.npy");
    ASSERT_TRUE(t.writeNpy(path).ok());
    EXPECT_EQ(readFile(path).size() % 64, t.nbytes() % 64);
    auto back = attn::Tensor::readNpy(path);
    ASSERT_TRUE(back.ok()) << back.status().message;
    EXPECT_EQ(back->dtype(), c.dtype);
    EXPECT_EQ(back->shape(), c.shape);
    ASSERT_EQ(back->nbytes(), t.nbytes());
    EXPECT_EQ(std::memcmp(back->data(), t.data(), t.nbytes()), 0);
  }
}

TEST(Npy, WritesNumpyHeader) {
  Tmp tmp;
  attn::Tensor t = makeTensor(ATTN_BF16, {7});
  ASSERT_TRUE(t.writeNpy(tmp("b.npy")).ok());
  std::string bytes = readFile(tmp("b.npy"));
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_NE(bytes.find("{'descr': '<u2', 'fortran_order': False, "
                       "'shape': (7,), }"),
            std::string::npos);
  EXPECT_EQ(bytes.size(), 128u + 14u); // the data starts at a multiple of 64
}

TEST(Npy, ReadsVersions2And3) {
  Tmp tmp;
  for (int major : {2, 3}) {
    writeFile(tmp("v.npy"), npyBytes("{'descr': '<f4', 'fortran_order': False, "
                                     "'shape': (2,), }",
                                     floatBytes({1.5f, -2.0f}), major));
    auto t = attn::Tensor::readNpy(tmp("v.npy"));
    ASSERT_TRUE(t.ok()) << t.status().message;
    EXPECT_EQ(t->shape(), std::vector<int64_t>{2});
    EXPECT_EQ(t->data<float>()[1], -2.0f);
  }
}

TEST(Npy, Float64NamesBothDtypes) {
  Tmp tmp;
  writeFile(tmp("x.npy"), npyBytes("{'descr': '<f8', 'fortran_order': False, "
                                   "'shape': (1,), }",
                                   std::string(8, '\0')));
  attn_tensor *t = nullptr;
  EXPECT_EQ(
      attn_npy_read_expect(tmp("x.npy").c_str(), ATTN_F32, "input 'x'", &t),
      ATTN_ERR_DTYPE);
  EXPECT_EQ(std::string(attn_last_error()),
            tmp("x.npy") +
                ": input 'x': got float64 (<f8) but the model expects f32 "
                "(<f4)");
  EXPECT_EQ(t, nullptr);
}

TEST(Npy, OtherDtypesAreRejected) {
  Tmp tmp;
  writeFile(tmp("i.npy"), npyBytes("{'descr': '<i8', 'fortran_order': False, "
                                   "'shape': (1,), }",
                                   std::string(8, '\0')));
  attn_tensor *t = nullptr;
  EXPECT_ERROR(attn_npy_read(tmp("i.npy").c_str(), &t), ATTN_ERR_DTYPE,
               "unsupported dtype int64 (<i8)");
  // A supported dtype that is not the expected one.
  writeFile(tmp("h.npy"), npyBytes("{'descr': '<f2', 'fortran_order': False, "
                                   "'shape': (1,), }",
                                   std::string(2, '\0')));
  EXPECT_ERROR(
      attn_npy_read_expect(tmp("h.npy").c_str(), ATTN_F32, "input 'q'", &t),
      ATTN_ERR_DTYPE,
      "input 'q': got f16 (<f2) but the model expects f32 (<f4)");
}

TEST(Npy, FortranOrderIsRejected) {
  Tmp tmp;
  writeFile(tmp("f.npy"), npyBytes("{'descr': '<f4', 'fortran_order': True, "
                                   "'shape': (2, 2), }",
                                   std::string(16, '\0')));
  attn_tensor *t = nullptr;
  EXPECT_ERROR(attn_npy_read(tmp("f.npy").c_str(), &t), ATTN_ERR_FORMAT,
               "Fortran-order");
}

TEST(Npy, TruncatedDataIsRejected) {
  Tmp tmp;
  writeFile(tmp("t.npy"), npyBytes("{'descr': '<f4', 'fortran_order': False, "
                                   "'shape': (2, 3), }",
                                   std::string(20, '\0')));
  attn_tensor *t = nullptr;
  EXPECT_ERROR(attn_npy_read(tmp("t.npy").c_str(), &t), ATTN_ERR_FORMAT,
               "truncated .npy data: f32[2, 3] needs 24 bytes, the file has "
               "20");
}

TEST(Npy, MalformedFilesAreRejected) {
  Tmp tmp;
  attn_tensor *t = nullptr;
  writeFile(tmp("m.npy"), "not numpy at all");
  EXPECT_ERROR(attn_npy_read(tmp("m.npy").c_str(), &t), ATTN_ERR_FORMAT,
               "bad magic");
  writeFile(tmp("h.npy"), npyBytes("{'descr': '<f4', 'shape': (2,), }", ""));
  EXPECT_ERROR(attn_npy_read(tmp("h.npy").c_str(), &t), ATTN_ERR_FORMAT,
               "header lacks");
  writeFile(tmp("s.npy"), npyBytes("{'descr': '<f4', 'fortran_order': False, "
                                   "'shape': (2, -1), }",
                                   ""));
  EXPECT_ERROR(attn_npy_read(tmp("s.npy").c_str(), &t), ATTN_ERR_FORMAT,
               "non-negative integers");
  std::string longHeader = npyBytes("{'descr': '<f4'}", "");
  writeFile(tmp("l.npy"), longHeader.substr(0, 20));
  EXPECT_ERROR(attn_npy_read(tmp("l.npy").c_str(), &t), ATTN_ERR_FORMAT,
               "extends past the end");
  EXPECT_ERROR(attn_npy_read(tmp("missing.npy").c_str(), &t), ATTN_ERR_IO,
               "cannot open");
}

// A header must be one dict of the three keys, then spaces: text after the
// dict, a missing comma or a repeated key is refused.
TEST(Npy, HeaderWithTrailingTextIsRejected) {
  Tmp tmp;
  attn_tensor *t = nullptr;
  const std::string data = floatBytes({1, 2});
  struct Case {
    const char *name, *dict, *message;
  } cases[] = {
      {"garbage.npy",
       "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk",
       "unexpected text after the header dict"},
      {"two_dicts.npy",
       "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }{}",
       "unexpected text after the header dict"},
      {"no_comma.npy",
       "{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }",
       "expected ',' or '}'"},
      {"repeated.npy",
       "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), "
       "'shape': (1,), }",
       "key 'shape' appears twice"},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.name);
    writeFile(tmp(c.name), npyBytes(c.dict, data));
    EXPECT_ERROR(attn_npy_read(tmp(c.name).c_str(), &t), ATTN_ERR_FORMAT,
                 tmp(c.name) + ": malformed .npy header: " + c.message);
    EXPECT_EQ(t, nullptr);
  }
}

// A 128-byte file claiming f32[1024, 1024, 1024] fails on its size before
// the 4 GiB tensor is allocated (it used to allocate and zero it first).
TEST(Npy, ClaimedSizeIsCheckedBeforeAllocating) {
  Tmp tmp;
  std::string bytes = npyBytes(
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1024, 1024, 1024), }",
      "");
  ASSERT_EQ(bytes.size(), 128u);
  writeFile(tmp("huge.npy"), bytes);
  struct rusage before, after;
  getrusage(RUSAGE_SELF, &before);
  attn_tensor *t = nullptr;
  EXPECT_ERROR(
      attn_npy_read_expect(tmp("huge.npy").c_str(), ATTN_F32, "input 'x'", &t),
      ATTN_ERR_FORMAT,
      tmp("huge.npy") + ": input 'x': truncated .npy data: f32[1024, "
                        "1024, 1024] needs 4294967296 bytes, the "
                        "file has 0");
  getrusage(RUSAGE_SELF, &after);
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 50 * 1024); // KiB
}

TEST(Npy, ShapeProductsThatOverflowAreRejected) {
  Tmp tmp;
  attn_tensor *t = nullptr;
  writeFile(tmp("o.npy"), npyBytes("{'descr': '<f4', 'fortran_order': False, "
                                   "'shape': (4611686018427387904, 4), }",
                                   ""));
  EXPECT_ERROR(attn_npy_read(tmp("o.npy").c_str(), &t), ATTN_ERR_SHAPE,
               tmp("o.npy") + ": shape f32[4611686018427387904, 4] is too "
                              "large");
  writeFile(tmp("b.npy"), npyBytes("{'descr': '<f4', 'fortran_order': False, "
                                   "'shape': (2305843009213693952, 2), }",
                                   ""));
  EXPECT_ERROR(attn_npy_read(tmp("b.npy").c_str(), &t), ATTN_ERR_SHAPE,
               "is too large"); // numel fits, bytes do not
  writeFile(tmp("d.npy"), npyBytes("{'descr': '<f4', 'fortran_order': False, "
                                   "'shape': (99999999999999999999,), }",
                                   ""));
  EXPECT_ERROR(attn_npy_read(tmp("d.npy").c_str(), &t), ATTN_ERR_FORMAT,
               "shape entry too large");
}

// A FIFO (or a directory, or a device) is refused at once, not read: a FIFO
// without a writer used to block forever in open().
TEST(Npy, NonRegularFilesAreRejected) {
  Tmp tmp;
  ASSERT_EQ(mkfifo(tmp("fifo.npy").c_str(), 0600), 0);
  attn_tensor *t = nullptr;
  EXPECT_ERROR(attn_npy_read(tmp("fifo.npy").c_str(), &t), ATTN_ERR_IO,
               tmp("fifo.npy") + " is a FIFO; weights and .npy files must be "
                                 "regular files");
  EXPECT_ERROR(attn_npy_read(tmp("").c_str(), &t), ATTN_ERR_IO,
               "is a directory");
  EXPECT_ERROR(attn_npy_read("/dev/zero", &t), ATTN_ERR_IO,
               "/dev/zero is a character device");
  EXPECT_EQ(t, nullptr);
}

//===-- safetensors -------------------------------------------------------===//

TEST(Safetensors, RoundTrip) {
  Tmp tmp;
  attn::Tensor a = f32({2, 2}, {1, 2, 3, 4});
  attn::Tensor b = makeTensor(ATTN_BF16, {3});
  b.data<uint16_t>()[2] = attn_f32_to_bf16(0.5f);
  attn::Tensor c = i32({1}, {42});
  attn::Tensor d = makeTensor(ATTN_BOOL, {2});
  d.data<uint8_t>()[1] = 1;
  attn::Tensor e = makeTensor(ATTN_F16, {1});
  e.data<uint16_t>()[0] = attn_f32_to_f16(-3.0f);
  ASSERT_TRUE(attn::Weights::write(
                  tmp("w.safetensors"),
                  {{"zeta.a", a}, {"b", b}, {"c", c}, {"d", d}, {"e", e}})
                  .ok());
  EXPECT_EQ(readFile(tmp("w.safetensors")).substr(8).find('{'), 0u);
  auto w = attn::Weights::open(tmp("w.safetensors"));
  ASSERT_TRUE(w.ok()) << w.status().message;
  EXPECT_EQ(w->names(),
            (std::vector<std::string>{"zeta.a", "b", "c", "d", "e"}));
  auto ta = w->get("zeta.a");
  ASSERT_TRUE(ta.ok());
  EXPECT_EQ(ta->shape(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(ta->data<float>()[3], 4.0f);
  EXPECT_EQ(attn_bf16_to_f32(w->get("b")->data<uint16_t>()[2]), 0.5f);
  EXPECT_EQ(w->get("c")->data<int32_t>()[0], 42);
  EXPECT_EQ(w->get("d")->dtype(), ATTN_BOOL);
  EXPECT_EQ(w->get("d")->data<uint8_t>()[1], 1);
  EXPECT_EQ(attn_f16_to_f32(w->get("e")->data<uint16_t>()[0]), -3.0f);
  EXPECT_FALSE(w->get("nope").ok());
  // The writer keeps every tensor aligned to its element size.
  for (const std::string &name : w->names())
    EXPECT_EQ((uintptr_t)w->get(name)->data() %
                  attn_dtype_size(w->get(name)->dtype()),
              0u)
        << name;
}

TEST(Safetensors, MetadataIsIgnored) {
  Tmp tmp;
  writeFile(tmp("m.safetensors"),
            stBytes("{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":"
                    "\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                    floatBytes({1, 2})));
  auto w = attn::Weights::open(tmp("m.safetensors"));
  ASSERT_TRUE(w.ok()) << w.status().message;
  EXPECT_EQ(w->names(), std::vector<std::string>{"w"});
}

struct BadSafetensors {
  const char *name;
  std::string bytes;
  attn_status status;
  const char *message;
};

TEST(Safetensors, EveryErrorClassIsReported) {
  Tmp tmp;
  const std::string ok8 = floatBytes({1, 2});
  std::vector<BadSafetensors> cases = {
      {"short", "abc", ATTN_ERR_FORMAT, "shorter than the 8-byte"},
      {"past_eof", stBytes("{}", "").substr(0, 8) + "{", ATTN_ERR_FORMAT,
       "header length 2 runs past the end of the file (9 bytes)"},
      {"bad_json", stBytes("{\"w\": {\"dtype\": \"F32\",", ""), ATTN_ERR_FORMAT,
       "header is not valid JSON"},
      {"entry_type", stBytes("{\"w\": [1]}", ""), ATTN_ERR_FORMAT,
       "tensor 'w': entry is not a JSON object"},
      {"not_object", stBytes("[1, 2]", ""), ATTN_ERR_FORMAT,
       "header is not a JSON object"},
      {"missing_field",
       stBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", ok8),
       ATTN_ERR_FORMAT, "tensor 'w': missing field 'data_offsets'"},
      {"dtype_type",
       stBytes("{\"w\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}",
               ok8),
       ATTN_ERR_FORMAT, "'dtype' must be a string"},
      {"shape_type",
       stBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":"
               "[0,8]}}",
               ok8),
       ATTN_ERR_FORMAT, "'shape' must be an array"},
      {"negative_dim",
       stBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":"
               "[0,8]}}",
               ok8),
       ATTN_ERR_FORMAT, "'shape' entries must be a non-negative integer"},
      {"offsets_out_of_range",
       stBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":"
               "[8,16]}}",
               ok8),
       ATTN_ERR_FORMAT,
       "data_offsets [8, 16] are out of range (the data section has 8 "
       "bytes)"},
      {"offsets_reversed",
       stBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":"
               "[8,0]}}",
               ok8),
       ATTN_ERR_FORMAT, "are out of range"},
      {"offsets_size",
       stBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":"
               "[0,8]}}",
               ok8),
       ATTN_ERR_FORMAT, "hold 8 bytes but f32[3] needs 12"},
      {"offsets_type",
       stBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":"
               "[0]}}",
               ok8),
       ATTN_ERR_FORMAT, "must be an array [begin, end]"},
      {"unknown_dtype",
       stBytes("{\"w\":{\"dtype\":\"Q4_K\",\"shape\":[1],\"data_offsets\":"
               "[0,8]}}",
               ok8),
       ATTN_ERR_DTYPE,
       "tensor 'w': dtype \"Q4_K\" is not a safetensors dtype, so its size "
       "cannot be checked (known: F32, F16, BF16, I32, BOOL, F64, I64"},
      {"lowercase_dtype",
       stBytes("{\"w\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":"
               "[0,8]}}",
               ok8),
       ATTN_ERR_DTYPE, "dtype \"f32\" is not a safetensors dtype"},
      {"offsets_size_i64",
       stBytes("{\"w\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":"
               "[0,8]}}",
               ok8),
       ATTN_ERR_FORMAT, "hold 8 bytes but I64[2] needs 16"},
      {"partial_byte",
       stBytes("{\"w\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":"
               "[0,2]}}",
               ok8),
       ATTN_ERR_FORMAT, "F4[3] takes 12 bits, not a whole number of bytes"},
  };
  for (const BadSafetensors &c : cases) {
    SCOPED_TRACE(c.name);
    std::string path = tmp(std::string(c.name) + ".safetensors");
    writeFile(path, c.bytes);
    attn_weights *w = nullptr;
    EXPECT_ERROR(attn_weights_open(path.c_str(), &w), c.status, c.message);
    EXPECT_EQ(w, nullptr);
    EXPECT_NE(std::string(attn_last_error()).find(path), std::string::npos);
  }
}

// Every dtype of the format opens and is listed with its size checked;
// those with a runtime dtype are viewed, the others refused by name.
TEST(Safetensors, EveryFormatDtypeIsIndexed) {
  Tmp tmp;
  struct Case {
    const char *dtype;
    std::vector<int64_t> shape;
    size_t bytes;
    int runtime; // attn_dtype, or -1
  };
  std::vector<Case> cases = {
      {"F32", {2}, 8, ATTN_F32},
      {"F16", {3}, 6, ATTN_F16},
      {"BF16", {1, 2}, 4, ATTN_BF16},
      {"I32", {1}, 4, ATTN_I32},
      {"BOOL", {3}, 3, ATTN_BOOL},
      {"F64", {2}, 16, -1},
      {"I64", {1, 3}, 24, -1},
      {"U64", {1}, 8, -1},
      {"C64", {2}, 16, -1},
      {"U32", {3}, 12, -1},
      {"I16", {3}, 6, -1},
      {"U16", {1}, 2, -1},
      {"I8", {5}, 5, -1},
      {"U8", {0}, 0, -1},
      {"F8_E4M3", {2, 2}, 4, -1},
      {"F8_E5M2", {3}, 3, -1},
      {"F8_E8M0", {1}, 1, -1},
      {"F8_E4M3FNUZ", {2}, 2, -1},
      {"F8_E5M2FNUZ", {2}, 2, -1},
      {"F6_E2M3", {4}, 3, -1},
      {"F6_E3M2", {4}, 3, -1},
      {"F4", {2, 3}, 3, -1},
  };
  std::vector<RawTensor> raw;
  for (const Case &c : cases)
    raw.push_back({std::string("t_") + c.dtype, c.dtype, c.shape,
                   std::string(c.bytes, '\x01')});
  std::string path = tmp("all.safetensors");
  writeFile(path, stFile(raw));
  auto w = attn::Weights::open(path);
  ASSERT_TRUE(w.ok()) << w.status().message;
  ASSERT_EQ(w->names().size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case &c = cases[i];
    SCOPED_TRACE(c.dtype);
    EXPECT_EQ(w->names()[i], raw[i].name);
    EXPECT_EQ(w->fileDtype((int32_t)i), c.dtype);
    const attn_tensor *t = nullptr;
    if (c.runtime >= 0) {
      ASSERT_EQ(attn_weights_get(w->get(), raw[i].name.c_str(), &t), ATTN_OK)
          << attn_last_error();
      EXPECT_EQ(attn_tensor_dtype(t), (attn_dtype)c.runtime);
      EXPECT_EQ(attn_tensor_nbytes(t), c.bytes);
      continue;
    }
    EXPECT_ERROR(attn_weights_get(w->get(), raw[i].name.c_str(), &t),
                 ATTN_ERR_DTYPE,
                 path + ": tensor '" + raw[i].name + "' is " + c.dtype +
                     ", which has no runtime dtype");
    EXPECT_EQ(t, nullptr);
  }
  EXPECT_EQ(w->fileDtype((int32_t)cases.size()), "");
  EXPECT_EQ(attn_weights_file_dtype(w->get(), -1), nullptr);
  EXPECT_EQ(attn_weights_file_dtype(nullptr, 0), nullptr);
}

// `depth` levels of nested arrays around a 0.
std::string nested(size_t depth) {
  return std::string(depth, '[') + "0" + std::string(depth, ']');
}

// Expects opening `bytes` as a weights file to fail with `status` and a
// message that starts with the path and holds `text`.
void expectOpenFails(const Tmp &tmp, const std::string &name,
                     const std::string &bytes, attn_status status,
                     const std::string &text) {
  SCOPED_TRACE(name);
  std::string path = tmp(name + ".safetensors");
  writeFile(path, bytes);
  attn_weights *w = nullptr;
  EXPECT_ERROR(attn_weights_open(path.c_str(), &w), status, text);
  EXPECT_EQ(std::string(attn_last_error()).rfind(path + ": ", 0), 0u)
      << attn_last_error();
  EXPECT_EQ(w, nullptr);
}

// A header nested 100,000 levels deep used to overflow the stack of the
// recursive JSON copy. It is read by events now: a nesting where the format
// has none fails at its first token, and in a field the format does not
// define it fails at 64 levels.
TEST(Safetensors, DeepNestingIsAnErrorNotACrash) {
  Tmp tmp;
  const std::string deep = nested(100000), ok8 = floatBytes({1, 2});
  const std::string entry =
      "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]";
  expectOpenFails(tmp, "top", stBytes("{\"a\": " + deep + ", \"b\": 0}", ""),
                  ATTN_ERR_FORMAT, "tensor 'a': entry is not a JSON object");
  expectOpenFails(tmp, "array", stBytes(deep, ""), ATTN_ERR_FORMAT,
                  "header is not a JSON object");
  expectOpenFails(
      tmp, "metadata", stBytes("{\"__metadata__\": {\"x\": " + deep + "}}", ""),
      ATTN_ERR_FORMAT, "'__metadata__' values must be strings, got an array");
  expectOpenFails(
      tmp, "shape",
      stBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[" + deep +
                  "],\"data_offsets\":[0,8]}}",
              ok8),
      ATTN_ERR_FORMAT,
      "tensor 'w': 'shape' entries must be a non-negative integer, got an "
      "array");
  expectOpenFails(tmp, "offsets",
                  stBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],"
                          "\"data_offsets\":" +
                              deep + "}}",
                          ok8),
                  ATTN_ERR_FORMAT,
                  "tensor 'w': 'data_offsets' must be a non-negative "
                  "integer, got an array");
  expectOpenFails(
      tmp, "unknown_field",
      stBytes("{\"w\":{" + entry + ",\"extra\":" + deep + "}}", ok8),
      ATTN_ERR_FORMAT, "header nests deeper than 64 levels");
  expectOpenFails(tmp, "objects",
                  stBytes(
                      "{\"w\":{" + entry + ",\"extra\":" +
                          [] {
                            std::string s;
                            for (int i = 0; i < 100000; ++i)
                              s += "{\"a\":";
                            return s + "0" + std::string(100000, '}');
                          }() +
                          "}}",
                      ok8),
                  ATTN_ERR_FORMAT, "header nests deeper than 64 levels");
  // Fields the format does not define are ignored below the cap, as the
  // reference ignores them.
  std::string path = tmp("extra.safetensors");
  writeFile(path, stBytes("{\"w\":{" + entry +
                              ",\"extra\":{\"k\":" + nested(50) + "}}}",
                          ok8));
  auto w = attn::Weights::open(path);
  ASSERT_TRUE(w.ok()) << w.status().message;
  EXPECT_EQ(w->names(), std::vector<std::string>{"w"});
}

// The format's reference refuses headers over 100 MB before reading them.
TEST(Safetensors, HeaderOver100MBIsRejected) {
  Tmp tmp;
  std::string len(8, '\0');
  uint64_t n = 100000001;
  for (int i = 0; i < 8; ++i)
    len[i] = (char)((n >> (8 * i)) & 0xff);
  expectOpenFails(tmp, "big", len + "{}", ATTN_ERR_FORMAT,
                  "header length 100000001 is above the 100000000-byte "
                  "limit of the format");
}

TEST(Safetensors, DuplicateKeysAreRejected) {
  Tmp tmp;
  const std::string ok8 = floatBytes({1, 2}), ok16 = ok8 + ok8;
  expectOpenFails(
      tmp, "tensor",
      stBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,"
              "16]}}",
              ok16),
      ATTN_ERR_FORMAT, "header: key 'w' appears twice");
  expectOpenFails(tmp, "metadata",
                  stBytes("{\"__metadata__\":{},\"__metadata__\":{}}", ""),
                  ATTN_ERR_FORMAT, "header: key '__metadata__' appears twice");
  expectOpenFails(
      tmp, "metadata_key",
      stBytes("{\"__metadata__\":{\"format\":\"pt\",\"format\":\"np\"}}", ""),
      ATTN_ERR_FORMAT, "'__metadata__': key 'format' appears twice");
  expectOpenFails(tmp, "field",
                  stBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"shape\":"
                          "[2],\"data_offsets\":[0,8]}}",
                          ok8),
                  ATTN_ERR_FORMAT, "tensor 'w': field 'shape' appears twice");
}

// Offsets as the reference checks them: sorted by offsets, the tensors must
// fill the data section back to back. File order does not matter, and
// empty tensors take no bytes.
TEST(Safetensors, OffsetsMustFillTheDataSectionBackToBack) {
  Tmp tmp;
  auto entry = [](const std::string &name, const std::string &shape,
                  uint64_t begin, uint64_t end) {
    return "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[" + shape +
           "],\"data_offsets\":[" + std::to_string(begin) + "," +
           std::to_string(end) + "]}";
  };
  const std::string d16 = floatBytes({1, 2, 3, 4});
  expectOpenFails(
      tmp, "overlap",
      stBytes("{" + entry("a", "3", 0, 12) + "," + entry("b", "2", 8, 16) + "}",
              d16),
      ATTN_ERR_FORMAT, "tensor 'b' [8, 16] overlaps tensor 'a' [0, 12]");
  expectOpenFails(
      tmp, "alias",
      stBytes("{" + entry("a", "4", 0, 16) + "," + entry("b", "4", 0, 16) + "}",
              d16),
      ATTN_ERR_FORMAT, "overlaps tensor 'a' [0, 16]");
  expectOpenFails(
      tmp, "gap",
      stBytes("{" + entry("a", "1", 0, 4) + "," + entry("b", "2", 8, 16) + "}",
              d16),
      ATTN_ERR_FORMAT,
      "bytes [4, 8) of the data section belong to no tensor "
      "(before tensor 'b' [8, 16])");
  expectOpenFails(
      tmp, "trailing", stBytes("{" + entry("a", "2", 0, 8) + "}", d16),
      ATTN_ERR_FORMAT, "bytes [8, 16) of the data section belong to no tensor");
  expectOpenFails(
      tmp, "inside",
      stBytes("{" + entry("a", "4", 0, 16) + "," + entry("e", "0", 4, 4) + "}",
              d16),
      ATTN_ERR_FORMAT, "tensor 'e' [4, 4] overlaps tensor 'a'");

  std::string path = tmp("ok.safetensors");
  writeFile(path,
            stBytes("{" + entry("b", "2", 8, 16) + "," + entry("e", "0", 8, 8) +
                        "," + entry("a", "2", 0, 8) + "}",
                    d16));
  auto w = attn::Weights::open(path);
  ASSERT_TRUE(w.ok()) << w.status().message;
  EXPECT_EQ(w->names(), (std::vector<std::string>{"b", "e", "a"}));
  EXPECT_EQ(w->get("b")->data<float>()[1], 4.0f);
}

TEST(Safetensors, ShapeProductsThatOverflowAreRejected) {
  Tmp tmp;
  auto header = [](const std::string &dtype, const std::string &shape) {
    return "{\"w\":{\"dtype\":\"" + dtype + "\",\"shape\":[" + shape +
           "],\"data_offsets\":[0,8]}}";
  };
  const std::string ok8 = floatBytes({1, 2});
  expectOpenFails(tmp, "f32",
                  stBytes(header("F32", "4611686018427387904,4"), ok8),
                  ATTN_ERR_SHAPE,
                  "tensor 'w': shape f32[4611686018427387904, 4] is too large");
  expectOpenFails(tmp, "f32_bytes",
                  stBytes(header("F32", "2305843009213693952,2"), ok8),
                  ATTN_ERR_SHAPE, "is too large"); // numel fits, bytes do not
  expectOpenFails(tmp, "i64",
                  stBytes(header("I64", "4294967296,4294967296"), ok8),
                  ATTN_ERR_SHAPE,
                  "tensor 'w': shape I64[4294967296, 4294967296] is too large");
  expectOpenFails(tmp, "f4",
                  stBytes(header("F4", "9223372036854775807,9"), ok8),
                  ATTN_ERR_SHAPE, "is too large");
  expectOpenFails(tmp, "dim",
                  stBytes(header("F32", "9223372036854775808"), ok8),
                  ATTN_ERR_FORMAT, "tensor 'w': shape entry too large");
  std::string rank17 = "1";
  for (int i = 1; i < 17; ++i)
    rank17 += ",1";
  expectOpenFails(tmp, "rank", stBytes(header("F32", rank17), ok8),
                  ATTN_ERR_FORMAT, "tensor 'w': rank is above 16");
}

// 100,000 tensors: the header used to be read into an ordered_json, whose
// lookups are linear, so parsing was quadratic (100k took > 20 s).
TEST(Safetensors, HundredThousandTensorsOpen) {
  Tmp tmp;
  std::vector<RawTensor> raw;
  for (int i = 0; i < 100000; ++i)
    raw.push_back({"layer." + std::to_string(i) + ".w",
                   "F32",
                   {1},
                   floatBytes({(float)i})});
  std::string path = tmp("many.safetensors");
  writeFile(path, stFile(raw));
  auto w = attn::Weights::open(path);
  ASSERT_TRUE(w.ok()) << w.status().message;
  EXPECT_EQ(attn_weights_count(w->get()), 100000);
  EXPECT_EQ(w->get("layer.99999.w")->data<float>()[0], 99999.0f);
  EXPECT_STREQ(attn_weights_name(w->get(), 12345), "layer.12345.w");
}

// Names and values from a file reach messages escaped (no raw control
// bytes for the terminal) and cut to 200 bytes; a NUL in a name, which the
// C API's strings could not reach, is refused.
TEST(Safetensors, MessagesEscapeAndCutUntrustedText) {
  Tmp tmp;
  const std::string ok8 = floatBytes({1, 2});
  expectOpenFails(tmp, "esc",
                  stBytes("{\"\\u001b[31mred\":{\"dtype\":\"F32\","
                          "\"shape\":[3],\"data_offsets\":[0,8]}}",
                          ok8),
                  ATTN_ERR_FORMAT, "tensor '\\x1b[31mred': data_offsets");
  std::string longName(5000, 'n');
  std::string path = tmp("long.safetensors");
  writeFile(path, stBytes("{\"" + longName +
                              "\":{\"dtype\":\"F32\",\"shape\":[3],"
                              "\"data_offsets\":[0,8]}}",
                          ok8));
  attn_weights *w = nullptr;
  EXPECT_ERROR(attn_weights_open(path.c_str(), &w), ATTN_ERR_FORMAT,
               "tensor '" + std::string(200, 'n') + "...': data_offsets");
  EXPECT_LT(std::string(attn_last_error()).size(), 400 + path.size());
  expectOpenFails(tmp, "float",
                  stBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[1." +
                              std::string(100000, '5') + "]}}",
                          ok8),
                  ATTN_ERR_FORMAT,
                  "'shape' entries must be a non-negative integer, got 1.555");
  EXPECT_LT(std::string(attn_last_error()).size(), 1000u);
  expectOpenFails(tmp, "nul",
                  stBytes("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":"
                          "[2],\"data_offsets\":[0,8]}}",
                          ok8),
                  ATTN_ERR_FORMAT,
                  "tensor 'a\\x00b' has a NUL byte in its name");
}

// A FIFO given as weights used to block forever in open().
TEST(Safetensors, NonRegularFilesAreRejected) {
  Tmp tmp;
  ASSERT_EQ(mkfifo(tmp("w.safetensors").c_str(), 0600), 0);
  attn_weights *w = nullptr;
  EXPECT_ERROR(attn_weights_open(tmp("w.safetensors").c_str(), &w), ATTN_ERR_IO,
               tmp("w.safetensors") + " is a FIFO; weights and .npy files "
                                      "must be regular files");
  EXPECT_ERROR(attn_weights_open_ex("/dev/zero", ATTN_WEIGHTS_COPY, &w),
               ATTN_ERR_IO, "/dev/zero is a character device");
  EXPECT_ERROR(attn_weights_open(tmp("").c_str(), &w), ATTN_ERR_IO,
               "is a directory");
  EXPECT_EQ(w, nullptr);
}

TEST(Safetensors, CopyFlagReadsTheFileAndUnknownFlagsAreRefused) {
  Tmp tmp;
  std::string path = tmp("w.safetensors");
  ASSERT_TRUE(attn::Weights::write(path, {{"w", f32({2}, {1, 2})}}).ok());
  auto w = attn::Weights::open(path, ATTN_WEIGHTS_COPY);
  ASSERT_TRUE(w.ok()) << w.status().message;
  fs::remove(path);
  EXPECT_EQ(w->get("w")->data<float>()[1], 2.0f);
  attn_weights *raw = nullptr;
  EXPECT_ERROR(attn_weights_open_ex(path.c_str(), 6, &raw),
               ATTN_ERR_INVALID_ARGUMENT, "unknown flags 6");
  EXPECT_EQ(raw, nullptr);
}

TEST(Dtypes, HalfConversions) {
  EXPECT_EQ(attn_f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(attn_f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(attn_f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(attn_f32_to_f16(1e6f), 0x7c00);
  EXPECT_EQ(attn_f32_to_f16(5.960464477539063e-08f), 0x0001);
  EXPECT_EQ(attn_f16_to_f32(0x0001), 5.960464477539063e-08f);
  EXPECT_EQ(attn_f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_TRUE(std::isnan(attn_f16_to_f32(attn_f32_to_f16(NAN))));
  EXPECT_EQ(attn_f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(attn_f32_to_bf16(1.00390625f), 0x3f80); // tie to even
  EXPECT_EQ(attn_bf16_to_f32(0x4049), 3.140625f);
  EXPECT_TRUE(std::isnan(attn_bf16_to_f32(attn_f32_to_bf16(NAN))));
}

//===-- loading and running -----------------------------------------------===//

// The fake library with the axpy model and its weights bound.
class Axpy : public testing::Test {
protected:
  void SetUp() override {
    auto l = attn::Library::open(FAKE_MODEL_PATH);
    ASSERT_TRUE(l.ok()) << l.status().message;
    lib.emplace(l.take());
    auto m = lib->model("axpy");
    ASSERT_TRUE(m.ok()) << m.status().message;
    model.emplace(m.take());
  }
  // Writes a weights file with the given tensors and binds it.
  attn_status
  bind(const std::vector<std::pair<std::string, attn::TensorView>> &tensors) {
    // A new file each time: rewriting a mapped file would pull the pages
    // from under a model that still holds it.
    std::string path = tmp("w" + std::to_string(files++) + ".safetensors");
    EXPECT_TRUE(attn::Weights::write(path, tensors).ok());
    auto w = attn::Weights::open(path);
    EXPECT_TRUE(w.ok()) << w.status().message;
    return attn_model_bind_weights(model->get(), w->get());
  }
  attn_status run(std::vector<attn::TensorView> inputs) {
    std::vector<const attn_tensor *> in;
    for (auto &t : inputs)
      in.push_back(t.get());
    attn_tensor *out[1] = {nullptr};
    attn_status s =
        attn_model_run(model->get(), (int32_t)in.size(), in.data(), 1, out);
    attn_tensor_free(out[0]);
    return s;
  }

  Tmp tmp;
  int files = 0;
  std::optional<attn::Library> lib;
  std::optional<attn::Model> model;
  attn::Tensor w = f32({4}, {1, 2, 3, 4});
};

TEST_F(Axpy, LoadBindRunThroughTheCApi) {
  ASSERT_EQ(bind({{"w", w}}), ATTN_OK) << attn_last_error();
  attn::Tensor x = makeTensor(ATTN_F32, {2, 3, 4});
  for (int i = 0; i < 24; ++i)
    x.data<float>()[i] = (float)i;
  attn::Tensor lengths = i32({2}, {3, 1});
  const attn_tensor *in[] = {x.get(), lengths.get()};
  attn_tensor *out[1] = {nullptr};
  ASSERT_EQ(attn_model_run(model->get(), 2, in, 1, out), ATTN_OK)
      << attn_last_error();
  EXPECT_STREQ(attn_last_error(), "");
  attn::Tensor y(out[0]);
  ASSERT_EQ(y.shape(), (std::vector<int64_t>{2, 3, 4}));
  for (int b = 0; b < 2; ++b)
    for (int s = 0; s < 3; ++s)
      for (int c = 0; c < 4; ++c) {
        int i = (b * 3 + s) * 4 + c;
        float want = s < (b == 0 ? 3 : 1) ? (float)i * (c + 1) : 0.0f;
        EXPECT_EQ(y.data<float>()[i], want) << b << " " << s << " " << c;
      }
}

TEST_F(Axpy, RunsThroughTheCppWrapperAndRunInto) {
  std::string path = tmp("w.safetensors");
  ASSERT_TRUE(attn::Weights::write(path, {{"w", w}}).ok());
  {
    auto weights = attn::Weights::open(path);
    ASSERT_TRUE(weights.ok());
    ASSERT_TRUE(model->bindWeights(*weights).ok());
  }            // the model keeps the mapping alive
  lib.reset(); // and the library loaded
  attn::Tensor x = f32({1, 1, 4}, {1, 1, 1, 1});
  attn::Tensor lengths = i32({1}, {1});
  auto out = model->run({x, lengths});
  ASSERT_TRUE(out.ok()) << out.status().message;
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].data<float>()[3], 4.0f);
  x.data<float>()[3] = -1;
  std::vector<attn::Tensor> outs = out.take();
  ASSERT_TRUE(model->runInto({x, lengths}, outs).ok());
  EXPECT_EQ(outs[0].data<float>()[3], -4.0f);

  attn::Tensor wrong = makeTensor(ATTN_F32, {1, 2, 4});
  std::vector<attn::Tensor> bad;
  bad.push_back(std::move(wrong));
  attn::Status st = model->runInto({x, lengths}, bad);
  EXPECT_EQ(st.code, ATTN_ERR_SHAPE);
  EXPECT_EQ(st.message, "output 'y': got f32[1, 2, 4] but the model produces "
                        "f32[1, 1, 4] for these inputs");
}

TEST_F(Axpy, DescribesItsTensors) {
  const attn_library_desc *d = lib->desc();
  EXPECT_EQ(d->num_models, 3);
  EXPECT_STREQ(d->target, "x86-64-linux-fake");
  ASSERT_EQ(model->inputs().size(), 2u);
  ASSERT_EQ(model->params().size(), 1u);
  ASSERT_EQ(model->outputs().size(), 1u);
  EXPECT_EQ(model->typeString(model->inputs()[0]), "f32[B, S, 4]");
  EXPECT_EQ(model->typeString(model->inputs()[1]), "i32[B]");
  EXPECT_EQ(model->typeString(model->params()[0]), "f32[4]");
  EXPECT_EQ(attn_model_input_index(model->get(), "lengths"), 1);
  EXPECT_EQ(attn_model_input_index(model->get(), "nope"), -1);
  EXPECT_EQ(attn_model_input(model->get(), 2), nullptr);
}

TEST_F(Axpy, UnknownModelName) {
  attn_model *m = nullptr;
  EXPECT_ERROR(attn_model_open(lib->get(), "bert", &m), ATTN_ERR_NOT_FOUND,
               "has no model 'bert' (models: axpy, failing, mixed)");
  EXPECT_ERROR(attn_model_open(lib->get(), nullptr, &m),
               ATTN_ERR_INVALID_ARGUMENT,
               "holds 3 models (axpy, failing, mixed); name the one to run");
  EXPECT_EQ(m, nullptr);
}

TEST_F(Axpy, OnlyModelNeedsNoName) {
  auto single = attn::Library::open(FAKE_SINGLE_PATH);
  ASSERT_TRUE(single.ok());
  auto m = single->model();
  ASSERT_TRUE(m.ok()) << m.status().message;
  EXPECT_STREQ(m->desc()->name, "axpy");
}

TEST_F(Axpy, MissingWeight) {
  attn::Tensor other = f32({4}, {0, 0, 0, 0});
  EXPECT_ERROR(bind({{"v", other}}), ATTN_ERR_NOT_FOUND,
               "lacks the weight for param 'w' (weights name 'w') of model "
               "'axpy'");
}

// Tensors the model does not use are ignored (a whole checkpoint binds to a
// model of one layer, as with Hugging Face's from_pretrained); the param
// still binds to its own tensor, whatever the file's order.
TEST_F(Axpy, ExtraWeightsAreIgnored) {
  attn::Tensor other = f32({1}, {0});
  ASSERT_EQ(bind({{"extra", other}, {"w", w}, {"more", other}}), ATTN_OK)
      << attn_last_error();
  attn::Tensor x = makeTensor(ATTN_F32, {1, 1, 4});
  for (int i = 0; i < 4; ++i)
    x.data<float>()[i] = 1.0f;
  attn::Tensor lengths = i32({1}, {1});
  auto out = model->run({x, lengths});
  ASSERT_TRUE(out.ok()) << out.status().message;
  attn::Tensor y = std::move((*out)[0]);
  for (int c = 0; c < 4; ++c)
    EXPECT_EQ(y.data<float>()[c], (float)(c + 1)) << c;
}

// A checkpoint's buffers of dtypes the runtime lacks (BERT's I64
// position_ids, F8 scales, ...) are ignored like any other extra tensor,
// whatever their offsets' alignment.
TEST_F(Axpy, ExtraTensorsOfOtherDtypesAreIgnored) {
  std::string path = tmp("checkpoint.safetensors");
  writeFile(
      path,
      stFile({
          {"embeddings.position_ids", "I64", {1, 3}, std::string(24, '\0')},
          {"scale", "F64", {2}, std::string(16, '\0')},
          {"q8", "I8", {3}, "\x01\xff\x02"},
          {"w", "F32", {4}, floatBytes({1, 2, 3, 4})},
          {"bytes", "U8", {5}, "abcde"},
          {"keep", "BOOL", {2}, std::string("\x01\x00", 2)},
          {"f8", "F8_E4M3", {2, 2}, "\x38\x38\x38\x38"},
      }));
  auto weights = attn::Weights::open(path);
  ASSERT_TRUE(weights.ok()) << weights.status().message;
  EXPECT_EQ(weights->names().size(), 7u);
  ASSERT_EQ(attn_model_bind_weights(model->get(), weights->get()), ATTN_OK)
      << attn_last_error();
  attn::Tensor x = f32({1, 1, 4}, {1, 1, 1, 1});
  attn::Tensor lengths = i32({1}, {1});
  auto out = model->run({x, lengths});
  ASSERT_TRUE(out.ok()) << out.status().message;
  for (int c = 0; c < 4; ++c)
    EXPECT_EQ((*out)[0].data<float>()[c], (float)(c + 1)) << c;
}

// A param the model binds must have its dtype in the file: one the runtime
// lacks is refused naming the file, the tensor and both dtypes, and
// nothing is bound.
TEST_F(Axpy, BoundParamOfAnotherFileDtypeNamesBothDtypes) {
  std::string path = tmp("i64.safetensors");
  writeFile(path, stFile({{"w", "I64", {4}, std::string(32, '\0')}}));
  auto weights = attn::Weights::open(path);
  ASSERT_TRUE(weights.ok()) << weights.status().message;
  EXPECT_EQ(attn_model_bind_weights(model->get(), weights->get()),
            ATTN_ERR_DTYPE);
  EXPECT_EQ(std::string(attn_last_error()),
            path + ": tensor 'w' is I64 in the file, the model expects f32[4] "
                   "for param 'w'");
  attn::Tensor x = f32({1, 1, 4}, {1, 1, 1, 1});
  attn::Tensor lengths = i32({1}, {1});
  EXPECT_ERROR(run({x, lengths}), ATTN_ERR_NOT_FOUND,
               "param 'w' (weights name 'w') is not bound");

  // The file's name of the param is the one reported.
  auto mixed = lib->model("mixed");
  ASSERT_TRUE(mixed.ok());
  std::string f8 = tmp("f8.safetensors");
  writeFile(f8, stFile({{"model.scale", "F8_E4M3", {2}, "\x38\x38"}}));
  auto f8Weights = attn::Weights::open(f8);
  ASSERT_TRUE(f8Weights.ok()) << f8Weights.status().message;
  attn::Status st = mixed->bindWeights(*f8Weights);
  EXPECT_EQ(st.code, ATTN_ERR_DTYPE);
  EXPECT_EQ(st.message, f8 + ": tensor 'model.scale' is F8_E4M3 in the file, "
                             "the model expects bf16[2] for param 'scale'");
}

TEST_F(Axpy, WeightShapeMismatchNamesBothShapes) {
  attn::Tensor w5 = f32({5}, {1, 2, 3, 4, 5});
  EXPECT_EQ(bind({{"w", w5}}), ATTN_ERR_SHAPE);
  EXPECT_EQ(std::string(attn_last_error()),
            tmp("w0.safetensors") + ": tensor 'w' is f32[5] in the file, the "
                                    "model expects f32[4] for param 'w'");
  attn::Tensor wi = i32({4}, {1, 2, 3, 4});
  EXPECT_EQ(bind({{"w", wi}}), ATTN_ERR_DTYPE);
  EXPECT_EQ(std::string(attn_last_error()),
            tmp("w1.safetensors") + ": tensor 'w' is i32[4] in the file, the "
                                    "model expects f32[4] for param 'w'");
}

TEST_F(Axpy, UnboundParamsAreReported) {
  attn::Tensor x = makeTensor(ATTN_F32, {1, 1, 4});
  attn::Tensor lengths = i32({1}, {1});
  EXPECT_ERROR(run({x, lengths}), ATTN_ERR_NOT_FOUND,
               "param 'w' (weights name 'w') is not bound");
  ASSERT_EQ(attn_model_bind_param(model->get(), "w", w.get()), ATTN_OK);
  EXPECT_EQ(run({x, lengths}), ATTN_OK) << attn_last_error();
  EXPECT_ERROR(attn_model_bind_param(model->get(), "q", w.get()),
               ATTN_ERR_NOT_FOUND, "model 'axpy' has no param 'q'");
}

TEST_F(Axpy, InputChecks) {
  ASSERT_EQ(bind({{"w", w}}), ATTN_OK) << attn_last_error();
  attn::Tensor x = makeTensor(ATTN_F32, {2, 3, 4});
  attn::Tensor lengths = i32({2}, {1, 1});

  EXPECT_ERROR(run({x}), ATTN_ERR_INVALID_ARGUMENT,
               "model 'axpy' takes 2 inputs (x, lengths), got 1");

  attn::Tensor xh = makeTensor(ATTN_F16, {2, 3, 4});
  EXPECT_ERROR(run({xh, lengths}), ATTN_ERR_DTYPE,
               "input 'x': got f16[2, 3, 4] but the model expects "
               "f32[B, S, 4]");

  attn::Tensor x2 = makeTensor(ATTN_F32, {6, 4});
  EXPECT_ERROR(run({x2, lengths}), ATTN_ERR_SHAPE,
               "input 'x': got rank 2 f32[6, 4] but the model expects rank 3 "
               "f32[B, S, 4]");

  attn::Tensor x5 = makeTensor(ATTN_F32, {2, 3, 5});
  EXPECT_ERROR(run({x5, lengths}), ATTN_ERR_SHAPE,
               "input 'x' dim 2 is 5 but the model expects 4");

  attn::Tensor lengths3 = i32({3}, {1, 1, 1});
  EXPECT_ERROR(run({x, lengths3}), ATTN_ERR_SHAPE,
               "input 'lengths' dim 0 is B=3 but 'x' bound B=2");

  alignas(4) char raw[4 * 24 + 1] = {};
  auto shifted = attn::Tensor::wrap(ATTN_F32, {2, 3, 4}, raw + 1);
  ASSERT_TRUE(shifted.ok());
  EXPECT_ERROR(run({*shifted, lengths}), ATTN_ERR_INVALID_ARGUMENT,
               "input 'x': data is not aligned to its 4-byte elements");

  EXPECT_EQ(run({x, lengths}), ATTN_OK) << attn_last_error();
}

TEST_F(Axpy, MisalignedWeightsAreCopied) {
  // A header of 61 bytes puts the data at an odd offset.
  std::string json = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":"
                     "[0,16]}}";
  while ((8 + json.size()) % 4 != 1)
    json += ' ';
  writeFile(tmp("odd.safetensors"), stBytes(json, floatBytes({2, 2, 2, 2})));
  auto weights = attn::Weights::open(tmp("odd.safetensors"));
  ASSERT_TRUE(weights.ok()) << weights.status().message;
  EXPECT_NE((uintptr_t)weights->get("w")->data() % 4, 0u);
  ASSERT_TRUE(model->bindWeights(*weights).ok());
  attn::Tensor x = f32({1, 1, 4}, {1, 2, 3, 4});
  attn::Tensor lengths = i32({1}, {1});
  auto out = model->run({x, lengths});
  ASSERT_TRUE(out.ok()) << out.status().message;
  EXPECT_EQ((*out)[0].data<float>()[3], 8.0f);
}

// Binding is linear in the tensor count: the param is found among 100,000.
TEST_F(Axpy, BindsFromAHundredThousandTensors) {
  std::vector<RawTensor> raw;
  for (int i = 0; i < 100000; ++i)
    raw.push_back({i == 50000 ? "w" : "layer." + std::to_string(i) + ".w",
                   "F32",
                   {4},
                   floatBytes({1, 2, 3, (float)i})});
  std::string path = tmp("many.safetensors");
  writeFile(path, stFile(raw));
  auto weights = attn::Weights::open(path);
  ASSERT_TRUE(weights.ok()) << weights.status().message;
  ASSERT_TRUE(model->bindWeights(*weights).ok());
  attn::Tensor x = f32({1, 1, 4}, {1, 1, 1, 1});
  attn::Tensor lengths = i32({1}, {1});
  auto out = model->run({x, lengths});
  ASSERT_TRUE(out.ok()) << out.status().message;
  EXPECT_EQ((*out)[0].data<float>()[3], 50000.0f);
}

// With ATTN_WEIGHTS_COPY the model holds a copy: the file can be truncated
// (or removed) under it and the model still runs.
TEST_F(Axpy, CopiedWeightsSurviveTruncation) {
  std::string path = tmp("w.safetensors");
  ASSERT_TRUE(attn::Weights::write(path, {{"w", w}}).ok());
  {
    auto weights = attn::Weights::open(path, ATTN_WEIGHTS_COPY);
    ASSERT_TRUE(weights.ok()) << weights.status().message;
    ASSERT_TRUE(model->bindWeights(*weights).ok());
  }
  fs::resize_file(path, 0);
  attn::Tensor x = f32({1, 1, 4}, {1, 1, 1, 1});
  attn::Tensor lengths = i32({1}, {1});
  auto out = model->run({x, lengths});
  ASSERT_TRUE(out.ok()) << out.status().message;
  for (int c = 0; c < 4; ++c)
    EXPECT_EQ((*out)[0].data<float>()[c], (float)(c + 1)) << c;
}

// The trade-off runtime.h documents: a mapped file truncated under a bound
// model raises SIGBUS on the next run (in a child process here). Under
// AddressSanitizer its SIGBUS handler reports and exits non-zero instead.
TEST_F(Axpy, TruncatedMappedWeightsRaiseSigbus) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::string path = tmp("w.safetensors");
  ASSERT_TRUE(attn::Weights::write(path, {{"w", w}}).ok());
  auto weights = attn::Weights::open(path);
  ASSERT_TRUE(weights.ok()) << weights.status().message;
  ASSERT_TRUE(model->bindWeights(*weights).ok());
  attn::Tensor x = f32({1, 1, 4}, {1, 1, 1, 1});
  attn::Tensor lengths = i32({1}, {1});
#if defined(__SANITIZE_ADDRESS__)
  auto sigbus = [](int status) {
    return WIFEXITED(status) && WEXITSTATUS(status) != 0;
  };
#else
  auto sigbus = testing::KilledBySignal(SIGBUS);
#endif
  EXPECT_EXIT(
      {
        fs::resize_file(path, 0);
        (void)model->run({x, lengths});
        std::exit(0);
      },
      sigbus, "");
}

//===-- memory limits -----------------------------------------------------===//

// axpy<B=2, S=3>: inputs 96 + 8 bytes, output 96, scratch 8 * B * S = 48.
TEST_F(Axpy, MemoryLimitRefusesTheCallBeforeAllocating) {
  ASSERT_EQ(bind({{"w", w}}), ATTN_OK) << attn_last_error();
  attn::Tensor x = makeTensor(ATTN_F32, {2, 3, 4});
  attn::Tensor lengths = i32({2}, {3, 1});
  int64_t sizes[] = {2, 3}, scratch = 0;
  ASSERT_EQ(attn_model_scratch_bytes(model->get(), 2, sizes, &scratch),
            ATTN_OK);
  EXPECT_EQ(scratch, 48);
  ASSERT_TRUE(lib->setMemoryLimit(247).ok());
  EXPECT_ERROR(run({x, lengths}), ATTN_ERR_RESOURCE,
               "model 'axpy': the call needs 248 bytes (inputs 104, outputs "
               "96, scratch 48) for B=2, S=3, above the memory limit of 247 "
               "bytes");
  EXPECT_STREQ(attn_status_name(ATTN_ERR_RESOURCE), "resource limit");
  // Into caller outputs: the same sum.
  attn::Tensor y = makeTensor(ATTN_F32, {2, 3, 4});
  const attn_tensor *in[] = {x.get(), lengths.get()};
  attn_tensor *out[] = {y.get()};
  EXPECT_ERROR(attn_model_run_into(model->get(), 2, in, 1, out),
               ATTN_ERR_RESOURCE, "needs 248 bytes");
  ASSERT_TRUE(lib->setMemoryLimit(248).ok());
  EXPECT_EQ(run({x, lengths}), ATTN_OK) << attn_last_error();
  ASSERT_TRUE(lib->setMemoryLimit(0).ok()); // no limit
  EXPECT_EQ(run({x, lengths}), ATTN_OK) << attn_last_error();
  EXPECT_ERROR(attn_library_set_memory_limit(nullptr, 1),
               ATTN_ERR_INVALID_ARGUMENT, "NULL library");
  EXPECT_ERROR(attn_model_scratch_bytes(model->get(), 1, sizes, &scratch),
               ATTN_ERR_INVALID_ARGUMENT, "has 2 sizes, got 1");
}

// The fake library was not compiled with large_buffers: a buffer of 2^31
// bytes or more is refused before the output is allocated (the data of the
// wrapped input is never read).
TEST_F(Axpy, BuffersOver2GiBNeedLargeBuffers) {
  ASSERT_EQ(bind({{"w", w}}), ATTN_OK) << attn_last_error();
  static float data[4];
  int64_t dims[] = {1, (int64_t(1) << 27) + 1, 4};
  attn_tensor *x = nullptr;
  ASSERT_EQ(attn_tensor_wrap(ATTN_F32, 3, dims, data, &x), ATTN_OK);
  attn::Tensor lengths = i32({1}, {1});
  const attn_tensor *in[] = {x, lengths.get()};
  attn_tensor *out[1] = {nullptr};
  EXPECT_ERROR(attn_model_run(model->get(), 2, in, 1, out),
               ATTN_ERR_UNSUPPORTED,
               "model 'axpy': input 'x' f32[1, 134217729, 4] is 2147483664 "
               "bytes, over the 2^31 - 1 of a library compiled without "
               "large_buffers (compile it with attnc "
               "--target=host-large_buffers)");
  EXPECT_EQ(out[0], nullptr);
  attn_tensor_free(x);
}

TEST(MemoryLimit, LibrariesThatDoNotSayCountInputsAndOutputs) {
  // A version 1 table (its memory field is a poison pointer, never read).
  auto lib = attn::Library::open(FAKE_V1_PATH);
  ASSERT_TRUE(lib.ok()) << lib.status().message;
  auto model = lib->model("failing"); // says nothing in version 2 either
  ASSERT_TRUE(model.ok());
  int64_t n = 3, scratch = 0;
  ASSERT_EQ(attn_model_scratch_bytes(model->get(), 1, &n, &scratch), ATTN_OK);
  EXPECT_EQ(scratch, -1);
  ASSERT_TRUE(lib->setMemoryLimit(23).ok());
  attn::Tensor x = f32({3}, {1, 2, 3});
  auto out = model->run({x});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code, ATTN_ERR_RESOURCE);
  EXPECT_EQ(out.status().message,
            "model 'failing': the call needs 24 bytes (inputs 12, outputs 12, "
            "scratch unknown) for N=3, above the memory limit of 23 bytes");
  ASSERT_TRUE(lib->setMemoryLimit(24).ok());
  EXPECT_TRUE(model->run({x}).ok());
}

// A library linked in, with `code` as its one model's scratch program.
attn_status scratchOf(const std::vector<int64_t> &code, int64_t s,
                      int64_t *out) {
  static const attn_dim dims[] = {-1};
  static const char *const syms[] = {"S"};
  static const attn_tensor_desc tensors[] = {
      {"x", nullptr, ATTN_INPUT, ATTN_F32, 1, dims}};
  static const attn_model_desc models[] = {
      {"m", 1, syms, 1, tensors, [](void **) { return 0; }}};
  attn_model_memory memory[] = {
      {{(int32_t)(code.size() / 2), code.empty() ? nullptr : code.data()}}};
  attn_library_desc desc = {ATTN_ABI_VERSION, "t",     1,     models,
                            nullptr,          nullptr, memory};
  attn_library *lib = nullptr;
  attn_status st = attn_library_from_desc(&desc, &lib);
  if (st != ATTN_OK)
    return st;
  attn_model *model = nullptr;
  EXPECT_EQ(attn_model_open(lib, nullptr, &model), ATTN_OK);
  st = attn_model_scratch_bytes(model, 1, &s, out);
  attn_model_close(model);
  attn_library_close(lib);
  return st;
}

TEST(MemoryLimit, SizeProgramsFollowHalideArithmetic) {
  enum : int64_t { C = ATTN_X_CONST, S = ATTN_X_SYM };
  // select(S < 4, (S - 7) / 2, S % 3) + 10: division rounds to -infinity.
  std::vector<int64_t> code = {S, 0, C, 4, ATTN_X_LT, 0, S, 0, C, 7,
                               ATTN_X_SUB, 0, C, 2, ATTN_X_DIV, 0, S, 0,
                               C, 3, ATTN_X_MOD, 0, ATTN_X_SELECT, 0, C, 10,
                               ATTN_X_ADD, 0};
  int64_t out = 0;
  ASSERT_EQ(scratchOf(code, 1, &out), ATTN_OK) << attn_last_error();
  EXPECT_EQ(out, 7); // (1 - 7) / 2 = -3
  ASSERT_EQ(scratchOf(code, 5, &out), ATTN_OK);
  EXPECT_EQ(out, 12);
  // S * S * S saturates rather than wrapping; negatives count as 0.
  std::vector<int64_t> cube = {S, 0, S, 0, ATTN_X_MUL, 0, S, 0, ATTN_X_MUL, 0};
  ASSERT_EQ(scratchOf(cube, int64_t(1) << 30, &out), ATTN_OK);
  EXPECT_EQ(out, INT64_MAX);
  ASSERT_EQ(scratchOf({C, -5}, 1, &out), ATTN_OK);
  EXPECT_EQ(out, 0);
  ASSERT_EQ(scratchOf({}, 1, &out), ATTN_OK);
  EXPECT_EQ(out, -1);
  // Malformed programs are refused when the library is opened.
  EXPECT_ERROR(scratchOf({ATTN_X_ADD, 0}, 1, &out), ATTN_ERR_ABI,
               "model 'm' scratch: size program step 0 is invalid");
  EXPECT_ERROR(scratchOf({S, 1}, 1, &out), ATTN_ERR_ABI,
               "step 0 is invalid (op 1, arg 1)");
  EXPECT_ERROR(scratchOf({C, 1, C, 2}, 1, &out), ATTN_ERR_ABI,
               "size program leaves 2 values");
  EXPECT_ERROR(scratchOf({99, 0}, 1, &out), ATTN_ERR_ABI, "op 99");
}

TEST(Loader, PipelineErrorCarriesItsMessage) {
  auto lib = attn::Library::open(FAKE_MODEL_PATH);
  ASSERT_TRUE(lib.ok());
  auto model = lib->model("failing");
  ASSERT_TRUE(model.ok());
  attn::Tensor x = f32({3}, {-1.5f, 2, 3});
  auto out = model->run({x});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code, ATTN_ERR_PIPELINE);
  EXPECT_EQ(out.status().message,
            "model 'failing' failed (Halide error code -27): fake pipeline "
            "failure: x[0] = -1.5 is negative");
  x.data<float>()[0] = 1;
  auto ok = model->run({x});
  ASSERT_TRUE(ok.ok()) << ok.status().message;
  EXPECT_EQ((*ok)[0].data<float>()[2], 3.0f);
}

TEST(Loader, MixedDtypesMultipleOutputsAndWeightNames) {
  Tmp tmp;
  auto lib = attn::Library::open(FAKE_MODEL_PATH);
  ASSERT_TRUE(lib.ok());
  auto model = lib->model("mixed");
  ASSERT_TRUE(model.ok());
  attn::Tensor scale = makeTensor(ATTN_BF16, {2});
  scale.data<uint16_t>()[0] = attn_f32_to_bf16(2.0f);
  scale.data<uint16_t>()[1] = attn_f32_to_bf16(-1.0f);
  ASSERT_TRUE(
      attn::Weights::write(tmp("w.safetensors"), {{"model.scale", scale}})
          .ok());
  auto weights = attn::Weights::open(tmp("w.safetensors"));
  ASSERT_TRUE(model->bindWeights(*weights).ok());

  attn::Tensor a = makeTensor(ATTN_F16, {2});
  a.data<uint16_t>()[0] = attn_f32_to_f16(0.5f);
  a.data<uint16_t>()[1] = attn_f32_to_f16(1.0f);
  attn::Tensor b = makeTensor(ATTN_BF16, {2});
  b.data<uint16_t>()[0] = attn_f32_to_bf16(1.0f);
  b.data<uint16_t>()[1] = attn_f32_to_bf16(3.0f);
  attn::Tensor c = makeTensor(ATTN_BOOL, {3});
  c.data<uint8_t>()[0] = c.data<uint8_t>()[2] = 1;
  attn::Tensor p = i32({5}, {0, 1, 2, 3, 4});
  auto out = model->run({a, b, c, p});
  ASSERT_TRUE(out.ok()) << out.status().message;
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ((*out)[0].data<float>()[0], 2.5f);
  EXPECT_EQ((*out)[0].data<float>()[1], -2.0f);
  EXPECT_EQ((*out)[1].shape(), std::vector<int64_t>{5});
  EXPECT_EQ((*out)[1].data<int32_t>()[4], 6);
}

TEST(Loader, LibraryWithoutEntry) {
  attn_library *lib = nullptr;
  EXPECT_ERROR(attn_library_open(FAKE_NOENTRY_PATH, &lib), ATTN_ERR_ABI,
               "does not export attn_library_v1");
  EXPECT_EQ(lib, nullptr);
}

TEST(Loader, BadAbiVersion) {
  attn_library *lib = nullptr;
  EXPECT_ERROR(attn_library_open(FAKE_BADABI_PATH, &lib), ATTN_ERR_ABI,
               "ABI version 99, but this runtime reads versions 1 and 2");
}

TEST(Loader, MissingLibraryFile) {
  attn_library *lib = nullptr;
  EXPECT_ERROR(attn_library_open("/nonexistent/libx.so", &lib), ATTN_ERR_IO,
               "cannot load /nonexistent/libx.so");
}

TEST(Loader, InvalidTablesAreRejected) {
  static const attn_dim dims[] = {-3};
  static const char *const syms[] = {"N"};
  static const attn_tensor_desc tensors[] = {
      {"x", nullptr, ATTN_INPUT, ATTN_F32, 1, dims}};
  static const attn_model_desc models[] = {
      {"m", 1, syms, 1, tensors, [](void **) { return 0; }}};
  attn_library_desc desc = {ATTN_ABI_VERSION, "t", 1, models, nullptr, nullptr};
  attn_library *lib = nullptr;
  EXPECT_ERROR(attn_library_from_desc(&desc, &lib), ATTN_ERR_ABI,
               "tensor 'x' dim 0 names symbol 2 of 1");
  EXPECT_ERROR(attn_library_from_desc(nullptr, &lib), ATTN_ERR_ABI,
               "returned NULL");
}

// Symbolic dims whose symbol number does not fit: INT64_MIN (where -d-1
// overflows) and -(2^32 + 1) (whose symbol number 2^32 truncates to 0 as an
// int) are refused before any symbol name is read.
TEST(Loader, SymbolicDimsOutOfRangeAreRejected) {
  static const char *const syms[] = {"N"};
  for (attn_dim bad :
       {(attn_dim)INT64_MIN, -((attn_dim)1 << 32) - 1, (attn_dim)-2}) {
    SCOPED_TRACE(bad);
    const attn_dim dims[] = {bad};
    const attn_tensor_desc tensors[] = {
        {"x", nullptr, ATTN_INPUT, ATTN_F32, 1, dims}};
    const attn_model_desc models[] = {
        {"m", 1, syms, 1, tensors, [](void **) { return 0; }}};
    attn_library_desc desc = {ATTN_ABI_VERSION, "t",     1,
                              models,           nullptr, nullptr};
    attn_library *lib = nullptr;
    EXPECT_ERROR(attn_library_from_desc(&desc, &lib), ATTN_ERR_ABI,
                 "tensor 'x' dim 0 names symbol " + std::to_string(-(bad + 1)) +
                     " of 1");
    EXPECT_EQ(lib, nullptr);
  }
}

// Running out of memory names what was being allocated. 2^48 bytes is
// beyond the 47-bit user address space, so the allocation always fails.
TEST(Loader, OutOfMemoryNamesWhatFailed) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer reports huge allocations itself";
#endif
  attn_tensor *t = nullptr;
  int64_t dims[] = {(int64_t)1 << 46};
  EXPECT_ERROR(attn_tensor_create(ATTN_F32, 1, dims, &t),
               ATTN_ERR_OUT_OF_MEMORY,
               "attn_tensor_create: out of memory allocating 281474976710656 "
               "bytes for f32[70368744177664]");
  EXPECT_EQ(t, nullptr);
}

TEST(Loader, LinkedLibraryWithoutOptionalHooks) {
  static const attn_dim dims[] = {2};
  static const attn_tensor_desc tensors[] = {
      {"y", nullptr, ATTN_OUTPUT, ATTN_I32, 1, dims}};
  static const attn_model_desc models[] = {
      {"fill", 0, nullptr, 1, tensors, [](void **bufs) {
         auto *b = (halide_buffer_t *)bufs[0];
         ((int32_t *)b->host)[0] = 7;
         ((int32_t *)b->host)[1] = b->type.code == halide_type_int;
         return 0;
       }}};
  attn_library_desc desc = {ATTN_ABI_VERSION, "t", 1, models, nullptr, nullptr};
  auto lib = attn::Library::fromDesc(&desc);
  ASSERT_TRUE(lib.ok()) << lib.status().message;
  attn::Status st = lib->setNumThreads(2);
  EXPECT_EQ(st.code, ATTN_ERR_UNSUPPORTED);
  auto model = lib->model();
  ASSERT_TRUE(model.ok());
  auto out = model->run({});
  ASSERT_TRUE(out.ok()) << out.status().message;
  EXPECT_EQ((*out)[0].data<int32_t>()[0], 7);
  EXPECT_EQ((*out)[0].data<int32_t>()[1], 1);
}

TEST(Loader, SetNumThreadsReachesTheLibrary) {
  auto lib = attn::Library::open(FAKE_MODEL_PATH);
  ASSERT_TRUE(lib.ok());
  ASSERT_TRUE(lib->setNumThreads(3).ok());
  void *h = dlopen(FAKE_MODEL_PATH, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  ASSERT_NE(h, nullptr);
  auto get = (int (*)())dlsym(h, "fake_num_threads");
  ASSERT_NE(get, nullptr);
  EXPECT_EQ(get(), 3);
  dlclose(h);
  EXPECT_ERROR(attn_library_set_num_threads(lib->get(), -1),
               ATTN_ERR_INVALID_ARGUMENT, "negative");
}

TEST(Loader, NullArgumentsNeverCrash) {
  attn_tensor *t = nullptr;
  EXPECT_EQ(attn_npy_read(nullptr, &t), ATTN_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(attn_npy_write("x", nullptr), ATTN_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(attn_weights_open(nullptr, nullptr), ATTN_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(attn_library_open(nullptr, nullptr), ATTN_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(attn_model_open(nullptr, "m", nullptr), ATTN_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(attn_model_run(nullptr, 0, nullptr, 0, nullptr),
            ATTN_ERR_INVALID_ARGUMENT);
  int64_t dims[] = {-1};
  EXPECT_ERROR(attn_tensor_create(ATTN_F32, 1, dims, &t), ATTN_ERR_SHAPE,
               "negative");
  int64_t huge[] = {INT64_MAX, 4};
  EXPECT_ERROR(attn_tensor_create(ATTN_F32, 2, huge, &t), ATTN_ERR_SHAPE,
               "too large");
  EXPECT_EQ(attn_tensor_create((attn_dtype)7, 0, nullptr, &t),
            ATTN_ERR_INVALID_ARGUMENT);
  attn_tensor_free(nullptr);
  attn_model_close(nullptr);
  attn_library_close(nullptr);
  attn_weights_close(nullptr);
}

//===-- tools -------------------------------------------------------------===//

int shell(const std::string &cmd) {
  int rc = std::system((cmd + " 2>/dev/null").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(Tools, RandnThenRunMatchesTheModel) {
  Tmp tmp;
  std::string randn = std::string(ATTN_RANDN_PATH) + " " + FAKE_MODEL_PATH +
                      " --model axpy --seed 11 --size B=3 --size S=6";
  ASSERT_EQ(shell(randn + " --weights " + tmp("w.safetensors") +
                  " --inputs-dir " + tmp("in")),
            0);
  ASSERT_EQ(shell(randn + " --weights " + tmp("w2.safetensors") +
                  " --inputs-dir " + tmp("in2")),
            0);
  // Deterministic for a seed, different for another.
  EXPECT_EQ(readFile(tmp("in/x.npy")), readFile(tmp("in2/x.npy")));
  EXPECT_EQ(readFile(tmp("w.safetensors")), readFile(tmp("w2.safetensors")));
  ASSERT_EQ(shell(std::string(ATTN_RANDN_PATH) + " " + FAKE_MODEL_PATH +
                  " --model axpy --seed 12 --size B=3 --size S=6 "
                  "--inputs-dir " +
                  tmp("in3")),
            0);
  EXPECT_NE(readFile(tmp("in/x.npy")), readFile(tmp("in3/x.npy")));

  ASSERT_EQ(shell(std::string(ATTN_RUN_PATH) + " " + FAKE_MODEL_PATH +
                  " --model axpy --weights " + tmp("w.safetensors") +
                  " --input x=" + tmp("in/x.npy") + " --input lengths=" +
                  tmp("in/lengths.npy") + " --output " + tmp("y.npy")),
            0);
  auto x = attn::Tensor::readNpy(tmp("in/x.npy"));
  auto lengths = attn::Tensor::readNpy(tmp("in/lengths.npy"));
  auto y = attn::Tensor::readNpy(tmp("y.npy"));
  auto weights = attn::Weights::open(tmp("w.safetensors"));
  ASSERT_TRUE(x.ok() && lengths.ok() && y.ok() && weights.ok());
  auto w = weights->get("w");
  ASSERT_TRUE(w.ok());
  ASSERT_EQ(y->shape(), (std::vector<int64_t>{3, 6, 4}));
  // w is rank 1 and not named like a gain: U(-0.1, 0.1).
  for (int c = 0; c < 4; ++c)
    EXPECT_LE(std::fabs(w->data<float>()[c]), 0.1f);
  for (int b = 0; b < 3; ++b) {
    int len = lengths->data<int32_t>()[b];
    EXPECT_GE(len, 1);
    EXPECT_LE(len, 6);
    for (int s = 0; s < 6; ++s)
      for (int c = 0; c < 4; ++c) {
        int i = (b * 6 + s) * 4 + c;
        float want = s < len ? x->data<float>()[i] * w->data<float>()[c] : 0;
        EXPECT_EQ(y->data<float>()[i], want);
      }
  }
}

TEST(Tools, AttnRunReportsErrorsWithExitStatus1) {
  Tmp tmp;
  std::string run = std::string(ATTN_RUN_PATH) + " " + FAKE_MODEL_PATH;
  EXPECT_EQ(shell(run + " --model nope"), 1);
  EXPECT_EQ(shell(run + " --model failing --input x=/nonexistent.npy"), 1);
  EXPECT_EQ(shell(std::string(ATTN_RUN_PATH) + " --bogus"), 1);
  attn::Tensor x = f32({2}, {-1, 1});
  ASSERT_TRUE(x.writeNpy(tmp("x.npy")).ok());
  EXPECT_EQ(shell(run + " --model failing --input x=" + tmp("x.npy") +
                  " --output " + tmp("y.npy")),
            1);
  EXPECT_FALSE(fs::exists(tmp("y.npy")));
  x.data<float>()[0] = 5;
  ASSERT_TRUE(x.writeNpy(tmp("x.npy")).ok());
  EXPECT_EQ(shell(run + " --model failing --input x=" + tmp("x.npy") +
                  " --output " + tmp("y.npy") + " --repeat 3 >/dev/null"),
            0);
  auto y = attn::Tensor::readNpy(tmp("y.npy"));
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(y->data<float>()[0], 5.0f);
}

} // namespace
