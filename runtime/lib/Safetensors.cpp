//===- Safetensors.cpp - safetensors weights reader and writer ------------===//
//
// Layout: an 8-byte little-endian header size N, N bytes of JSON mapping
// each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets relative to the byte after the header), then the data. The file
// is mapped read-only and every field is checked before any tensor is used.
// Every dtype of the format is read and its size checked; tensors of the
// dtypes the runtime lacks (I64, U8, F8_E4M3, ...) are listed but cannot be
// viewed, so a checkpoint's extra buffers do not stop it from binding.
//
//===----------------------------------------------------------------------===//
#include "Internal.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace attn::detail;
using json = nlohmann::ordered_json; // keeps the file order of tensors

namespace {

// Every dtype of the safetensors format, with its bits per element and the
// runtime dtype its tensors are viewed as (-1: none; such tensors are
// indexed and size-checked, but cannot be viewed or bound).
struct FileDtype {
  const char *name;
  unsigned bits;
  int runtime;
};

constexpr FileDtype fileDtypes[] = {
    {"F32", 32, ATTN_F32},  {"F16", 16, ATTN_F16},  {"BF16", 16, ATTN_BF16},
    {"I32", 32, ATTN_I32},  {"BOOL", 8, ATTN_BOOL}, {"F64", 64, -1},
    {"I64", 64, -1},        {"U64", 64, -1},        {"C64", 64, -1},
    {"U32", 32, -1},        {"I16", 16, -1},        {"U16", 16, -1},
    {"I8", 8, -1},          {"U8", 8, -1},          {"F8_E4M3", 8, -1},
    {"F8_E5M2", 8, -1},     {"F8_E8M0", 8, -1},     {"F8_E4M3FNUZ", 8, -1},
    {"F8_E5M2FNUZ", 8, -1}, {"F6_E2M3", 6, -1},     {"F6_E3M2", 6, -1},
    {"F4", 4, -1},
};

const char *safetensorsDtype(attn_dtype dtype) {
  for (const FileDtype &d : fileDtypes)
    if (d.runtime == (int)dtype)
      return d.name;
  return "?";
}

const FileDtype *findFileDtype(const std::string &name) {
  for (const FileDtype &d : fileDtypes)
    if (name == d.name)
      return &d;
  return nullptr;
}

std::string knownFileDtypes() {
  std::string s;
  for (const FileDtype &d : fileDtypes)
    s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

// "I64[2, 3]": a shape in the file's dtype, for tensors without a runtime
// dtype.
std::string fileShape(const FileDtype &dtype,
                      const std::vector<int64_t> &dims) {
  std::string s = dtype.name;
  s += '[';
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + ']';
}

// Bytes that `dims` elements of `dtype` take, failing on overflow and on a
// partial last byte (sub-byte dtypes such as F4).
uint64_t byteSize(const FileDtype &dtype, const std::vector<int64_t> &dims,
                  const std::string &shape, const std::string &where) {
  uint64_t bits = dtype.bits;
  for (int64_t d : dims)
    if (__builtin_mul_overflow(bits, (uint64_t)d, &bits))
      fail(ATTN_ERR_SHAPE, where + ": shape " + shape + " is too large");
  if (bits % 8)
    fail(ATTN_ERR_FORMAT, where + ": " + shape + " takes " +
                              std::to_string(bits) +
                              " bits, not a whole number of bytes");
  return bits / 8;
}

struct Mapping {
  void *addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr)
      munmap(addr, size);
  }
};

// Reads a non-negative integer JSON value, or fails with `what`.
uint64_t asUnsigned(const json &v, const std::string &what) {
  if (v.is_number_unsigned())
    return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0)
    return (uint64_t)v.get<int64_t>();
  fail(ATTN_ERR_FORMAT,
       what + " must be a non-negative integer, got " + v.dump());
}

void parseEntry(attn_weights &w, const std::string &name, const json &e,
                const uint8_t *data, uint64_t dataSize) {
  std::string where = w.path + ": tensor '" + name + "'";
  if (!e.is_object())
    fail(ATTN_ERR_FORMAT, where + ": entry is not a JSON object");
  for (const char *key : {"dtype", "shape", "data_offsets"})
    if (!e.contains(key))
      fail(ATTN_ERR_FORMAT, where + ": missing field '" + key + "'");
  const json &jd = e["dtype"], &js = e["shape"], &jo = e["data_offsets"];
  if (!jd.is_string())
    fail(ATTN_ERR_FORMAT, where + ": 'dtype' must be a string");
  const FileDtype *dtype = findFileDtype(jd.get<std::string>());
  if (!dtype)
    fail(ATTN_ERR_DTYPE, where + ": dtype " + jd.dump() +
                             " is not a safetensors dtype, so its size "
                             "cannot be checked (known: " +
                             knownFileDtypes() + ")");
  attn_tensor t;
  bool viewable = dtype->runtime >= 0;
  if (viewable)
    t.dtype = (attn_dtype)dtype->runtime;
  if (!js.is_array())
    fail(ATTN_ERR_FORMAT, where + ": 'shape' must be an array");
  if (js.size() > ATTN_MAX_RANK)
    fail(ATTN_ERR_FORMAT, where + ": rank " + std::to_string(js.size()) +
                              " is above " + std::to_string(ATTN_MAX_RANK));
  for (const json &d : js) {
    uint64_t v = asUnsigned(d, where + ": 'shape' entries");
    if (v > (uint64_t)INT64_MAX)
      fail(ATTN_ERR_FORMAT, where + ": shape entry too large");
    t.dims.push_back((int64_t)v);
  }
  if (!jo.is_array() || jo.size() != 2)
    fail(ATTN_ERR_FORMAT,
         where + ": 'data_offsets' must be an array [begin, end]");
  uint64_t begin = asUnsigned(jo[0], where + ": 'data_offsets'");
  uint64_t end = asUnsigned(jo[1], where + ": 'data_offsets'");
  if (begin > end || end > dataSize)
    fail(ATTN_ERR_FORMAT, where + ": data_offsets [" + std::to_string(begin) +
                              ", " + std::to_string(end) +
                              "] are out of range (the data section has " +
                              std::to_string(dataSize) + " bytes)");
  if (viewable)
    checkedNumel(t.dims.data(), t.dims.size(), t.dtype, where);
  std::string shape = viewable ? formatShape(t) : fileShape(*dtype, t.dims);
  uint64_t need = byteSize(*dtype, t.dims, shape, where);
  if (end - begin != need)
    fail(ATTN_ERR_FORMAT, where + ": data_offsets [" + std::to_string(begin) +
                              ", " + std::to_string(end) + "] hold " +
                              std::to_string(end - begin) + " bytes but " +
                              shape + " needs " + std::to_string(need));
  t.data = const_cast<uint8_t *>(data + begin);
  t.keep = w.mapping;
  w.index.emplace(name, w.entries.size());
  w.entries.push_back({name, dtype->name, viewable, std::move(t)});
}

std::unique_ptr<attn_weights> openWeights(const char *pathC) {
  if (!pathC)
    fail(ATTN_ERR_INVALID_ARGUMENT, "attn_weights_open: path is NULL");
  auto w = std::make_unique<attn_weights>();
  w->path = pathC;
  int fd = ::open(pathC, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fail(ATTN_ERR_IO, "cannot open " + w->path + ": " + systemError());
  struct stat st;
  if (fstat(fd, &st) != 0) {
    std::string err = systemError();
    ::close(fd);
    fail(ATTN_ERR_IO, "cannot stat " + w->path + ": " + err);
  }
  uint64_t size = (uint64_t)st.st_size;
  if (size < 8) {
    ::close(fd);
    fail(ATTN_ERR_FORMAT, w->path + ": file has " + std::to_string(size) +
                              " bytes, shorter than the 8-byte safetensors "
                              "header size");
  }
  auto map = std::make_shared<Mapping>();
  map->addr = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  std::string mmapErr = systemError();
  ::close(fd);
  if (map->addr == MAP_FAILED) {
    map->addr = nullptr;
    fail(ATTN_ERR_IO, "cannot map " + w->path + ": " + mmapErr);
  }
  map->size = size;
  w->mapping = map;
  const uint8_t *base = (const uint8_t *)map->addr;

  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = headerLen << 8 | base[i];
  if (headerLen > size - 8)
    fail(ATTN_ERR_FORMAT, w->path + ": header length " +
                              std::to_string(headerLen) +
                              " runs past the end of the file (" +
                              std::to_string(size) + " bytes)");
  const char *text = (const char *)base + 8;
  json header;
  try {
    header = json::parse(text, text + headerLen);
  } catch (const json::exception &e) {
    fail(ATTN_ERR_FORMAT,
         w->path + ": header is not valid JSON: " + std::string(e.what()));
  }
  if (!header.is_object())
    fail(ATTN_ERR_FORMAT, w->path + ": header is not a JSON object");
  const uint8_t *data = base + 8 + headerLen;
  uint64_t dataSize = size - 8 - headerLen;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__")
      continue;
    parseEntry(*w, it.key(), it.value(), data, dataSize);
  }
  return w;
}

void writeSafetensors(const char *pathC, int32_t count,
                      const char *const *names,
                      const attn_tensor *const *tensors) {
  if (!pathC || count < 0 || (count > 0 && (!names || !tensors)))
    fail(ATTN_ERR_INVALID_ARGUMENT,
         "attn_safetensors_write: NULL argument or negative count");
  std::string path = pathC;
  // Lay the data out by decreasing element size, so that with the header
  // padded to 8 bytes every tensor is aligned to its element size (the
  // format allows no padding between tensors).
  std::vector<int32_t> order(count);
  for (int32_t i = 0; i < count; ++i) {
    if (!names[i] || !tensors[i])
      fail(ATTN_ERR_INVALID_ARGUMENT,
           "attn_safetensors_write: entry " + std::to_string(i) + " is NULL");
    order[i] = i;
  }
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return attn_dtype_size(tensors[a]->dtype) >
           attn_dtype_size(tensors[b]->dtype);
  });
  std::vector<uint64_t> offsets(count);
  uint64_t offset = 0;
  for (int32_t i : order) {
    offsets[i] = offset;
    offset += nbytes(*tensors[i]);
  }
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  for (int32_t i = 0; i < count; ++i) {
    if (header.contains(names[i]) || std::string(names[i]) == "__metadata__")
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_safetensors_write: name '" +
                                          std::string(names[i]) +
                                          "' is repeated or reserved");
    uint64_t n = nbytes(*tensors[i]);
    header[names[i]] = {{"dtype", safetensorsDtype(tensors[i]->dtype)},
                        {"shape", tensors[i]->dims},
                        {"data_offsets", {offsets[i], offsets[i] + n}}};
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' '); // align the data section
  unsigned char len[8];
  for (int i = 0; i < 8; ++i)
    len[i] = (uint64_t)text.size() >> (8 * i) & 0xff;

  std::FILE *f = std::fopen(pathC, "wb");
  if (!f)
    fail(ATTN_ERR_IO, "cannot create " + path + ": " + systemError());
  bool ok = std::fwrite(len, 1, 8, f) == 8 &&
            std::fwrite(text.data(), 1, text.size(), f) == text.size();
  for (int32_t i : order) {
    if (!ok)
      break;
    size_t n = nbytes(*tensors[i]);
    ok = n == 0 || std::fwrite(tensors[i]->data, 1, n, f) == n;
  }
  std::string err = systemError();
  if (std::fclose(f) != 0 && ok)
    ok = false, err = systemError();
  if (!ok)
    fail(ATTN_ERR_IO, "cannot write " + path + ": " + err);
}

} // namespace

attn_status attn_weights_open(const char *path, attn_weights **out) {
  return guarded([&] {
    if (!out)
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_weights_open: out is NULL");
    *out = nullptr;
    *out = openWeights(path).release();
    return ATTN_OK;
  });
}

void attn_weights_close(attn_weights *weights) { delete weights; }

int32_t attn_weights_count(const attn_weights *w) {
  return w ? (int32_t)w->entries.size() : 0;
}

const char *attn_weights_name(const attn_weights *w, int32_t index) {
  if (!w || index < 0 || (size_t)index >= w->entries.size())
    return nullptr;
  return w->entries[index].name.c_str();
}

const char *attn_weights_file_dtype(const attn_weights *w, int32_t index) {
  if (!w || index < 0 || (size_t)index >= w->entries.size())
    return nullptr;
  return w->entries[index].fileDtype;
}

attn_status attn_weights_get(const attn_weights *w, const char *name,
                             const attn_tensor **out) {
  return guarded([&] {
    if (!w || !name || !out)
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_weights_get: NULL argument");
    *out = nullptr;
    auto it = w->index.find(name);
    if (it == w->index.end())
      fail(ATTN_ERR_NOT_FOUND,
           w->path + " has no tensor '" + std::string(name) + "'");
    const attn_weights::Entry &e = w->entries[it->second];
    if (!e.viewable)
      fail(ATTN_ERR_DTYPE, w->path + ": tensor " + quote(e.name) + " is " +
                               e.fileDtype +
                               ", which has no runtime dtype (runtime "
                               "tensors are f32, f16, bf16, i32 and bool)");
    *out = &e.tensor;
    return ATTN_OK;
  });
}

attn_status attn_safetensors_write(const char *path, int32_t count,
                                   const char *const *names,
                                   const attn_tensor *const *tensors) {
  return guarded([&] {
    writeSafetensors(path, count, names, tensors);
    return ATTN_OK;
  });
}
