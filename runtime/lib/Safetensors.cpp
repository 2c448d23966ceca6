//===- Safetensors.cpp - safetensors weights reader and writer ------------===//
//
// Layout: an 8-byte little-endian header size N, N bytes of JSON mapping
// each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets relative to the byte after the header), then the data. The file
// is mapped read-only (or copied, with ATTN_WEIGHTS_COPY) and every field is
// checked before any tensor is used, as strictly as the format's reference
// implementation: a header of at most 100 MB, read by events without
// recursion, no duplicate keys, and tensors that fill the data section back
// to back. Every dtype of the format is read and its size checked; tensors
// of the dtypes the runtime lacks (I64, U8, F8_E4M3, ...) are listed but
// cannot be viewed, so a checkpoint's extra buffers do not stop it from
// binding. Offsets need not be aligned (the reference does not ask it);
// binding copies a misaligned tensor to aligned memory.
//
//===----------------------------------------------------------------------===//
#include "Internal.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>
#include <unordered_set>

using namespace attn::detail;
using json = nlohmann::ordered_json; // keeps the writer's field order

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

// The header's limits. 100 MB is the format reference's MAX_HEADER_SIZE.
// The header is read by SAX events (nlohmann's parser is iterative), never
// into a tree, and no field of the format nests deeper than 3 levels
// (header, entry, shape); values of fields the format does not define are
// skipped, but only up to maxDepth levels.
constexpr uint64_t maxHeaderBytes = 100'000'000;
constexpr int maxDepth = 64;

// One tensor entry as the header states it, before its checks.
struct RawEntry {
  std::string name;
  const FileDtype *dtype = nullptr;
  bool haveShape = false, haveOffsets = false;
  std::vector<int64_t> dims;
  std::vector<uint64_t> offsets;
};

// Reads the header into `entries` (in file order), checking each value as
// it arrives: a hostile header fails at its first wrong token, in time and
// memory linear in its size. Failures are thrown with fail().
class HeaderReader : public nlohmann::json_sax<nlohmann::json> {
public:
  explicit HeaderReader(const std::string &path) : path(path) {}

  std::vector<RawEntry> entries;
  std::unordered_map<std::string, size_t> index; // name -> entries position

  // A null __metadata__ is allowed: the reference reads an Option<HashMap>.
  bool null() override {
    return (in == In::Header && metadata) || scalar("null");
  }
  bool boolean(bool v) override { return scalar(v ? "true" : "false"); }
  bool number_integer(int64_t v) override { return scalar(std::to_string(v)); }
  bool number_unsigned(uint64_t v) override {
    if (in == In::Shape) {
      if (v > (uint64_t)INT64_MAX)
        fail(ATTN_ERR_FORMAT, where() + ": shape entry too large");
      if (entries.back().dims.size() == ATTN_MAX_RANK)
        fail(ATTN_ERR_FORMAT,
             where() + ": rank is above " + std::to_string(ATTN_MAX_RANK));
      entries.back().dims.push_back((int64_t)v);
      return true;
    }
    if (in == In::Offsets) {
      if (entries.back().offsets.size() == 2)
        badOffsets();
      entries.back().offsets.push_back(v);
      return true;
    }
    return scalar(std::to_string(v));
  }
  bool number_float(double, const std::string &text) override {
    return scalar(shown(text));
  }
  bool string(std::string &v) override {
    if (in == In::Entry && field == Field::Dtype) {
      entries.back().dtype = findFileDtype(v);
      if (!entries.back().dtype)
        fail(ATTN_ERR_DTYPE, where() + ": dtype \"" + shown(v) + "\"" +
                                 " is not a safetensors dtype, so its size "
                                 "cannot be checked (known: " +
                                 knownFileDtypes() + ")");
      return true;
    }
    return in == In::Metadata || scalar("a string");
  }
  bool binary(binary_t &) override { return scalar("binary data"); }

  bool start_object(std::size_t) override {
    enter();
    switch (in) {
    case In::Start:
      in = In::Header;
      return true;
    case In::Header:
      if (metadata) {
        in = In::Metadata;
        metadataKeys.clear();
        return true;
      }
      entries.push_back({name, nullptr, false, false, {}, {}});
      in = In::Entry;
      return true;
    default:
      return container("an object");
    }
  }
  bool start_array(std::size_t) override {
    enter();
    if (in == In::Entry && field == Field::Shape) {
      entries.back().haveShape = true;
      in = In::Shape;
      return true;
    }
    if (in == In::Entry && field == Field::Offsets) {
      entries.back().haveOffsets = true;
      in = In::Offsets;
      return true;
    }
    return container("an array");
  }
  bool end_object() override { return leave(); }
  bool end_array() override { return leave(); }

  bool key(std::string &k) override {
    switch (in) {
    case In::Header:
      if (k.find('\0') != std::string::npos) // unreachable by C strings
        fail(ATTN_ERR_FORMAT,
             path + ": tensor " + quote(k) + " has a NUL byte in its name");
      metadata = k == "__metadata__";
      if (metadata ? seenMetadata : index.count(k))
        fail(ATTN_ERR_FORMAT,
             path + ": header: key " + quote(k) + " appears twice");
      seenMetadata |= metadata;
      if (!metadata)
        index.emplace(k, entries.size());
      name = std::move(k);
      return true;
    case In::Metadata:
      if (!metadataKeys.insert(k).second)
        fail(ATTN_ERR_FORMAT,
             path + ": '__metadata__': key " + quote(k) + " appears twice");
      return true;
    case In::Entry: {
      field = k == "dtype"          ? Field::Dtype
              : k == "shape"        ? Field::Shape
              : k == "data_offsets" ? Field::Offsets
                                    : Field::Other;
      unsigned bit = 1u << (unsigned)field;
      if (field != Field::Other && (fieldsSeen & bit))
        fail(ATTN_ERR_FORMAT,
             where() + ": field " + quote(k) + " appears twice");
      fieldsSeen |= bit;
      return true;
    }
    default:
      return true; // In::Skip
    }
  }

  bool parse_error(std::size_t, const std::string &,
                   const nlohmann::detail::exception &e) override {
    fail(ATTN_ERR_FORMAT,
         path + ": header is not valid JSON: " + std::string(e.what()));
  }

private:
  enum class In { Start, Header, Metadata, Entry, Shape, Offsets, Skip, Done };
  enum class Field { Dtype, Shape, Offsets, Other };

  const std::string &path;
  In in = In::Start;
  int depth = 0, skipDepth = 0;
  std::string name; // of the current top-level key
  bool metadata = false, seenMetadata = false;
  std::unordered_set<std::string> metadataKeys;
  Field field = Field::Other; // of the current entry key
  unsigned fieldsSeen = 0;

  std::string where() const { return path + ": tensor " + quote(name); }
  [[noreturn]] void badOffsets() {
    fail(ATTN_ERR_FORMAT,
         where() + ": 'data_offsets' must be an array [begin, end]");
  }

  void enter() {
    if (++depth > maxDepth)
      fail(ATTN_ERR_FORMAT, path + ": header nests deeper than " +
                                std::to_string(maxDepth) + " levels");
  }
  bool leave() {
    --depth;
    switch (in) {
    case In::Skip:
      if (depth == skipDepth)
        in = In::Entry;
      return true;
    case In::Shape:
    case In::Offsets:
      in = In::Entry;
      return true;
    case In::Entry:
      finishEntry();
      [[fallthrough]];
    case In::Metadata:
      in = In::Header;
      return true;
    default: // In::Header
      in = In::Done;
      return true;
    }
  }

  // A non-container value `what` where the header is at.
  bool scalar(const std::string &what) {
    switch (in) {
    case In::Start:
      fail(ATTN_ERR_FORMAT, path + ": header is not a JSON object");
    case In::Header:
      if (metadata)
        fail(ATTN_ERR_FORMAT, path + ": '__metadata__' must be an object");
      fail(ATTN_ERR_FORMAT, where() + ": entry is not a JSON object");
    case In::Metadata:
      fail(ATTN_ERR_FORMAT,
           path + ": '__metadata__' values must be strings, got " + what);
    case In::Entry:
      if (field == Field::Dtype)
        fail(ATTN_ERR_FORMAT, where() + ": 'dtype' must be a string");
      if (field == Field::Shape)
        fail(ATTN_ERR_FORMAT, where() + ": 'shape' must be an array");
      if (field == Field::Offsets)
        badOffsets();
      return true; // a field the format does not define
    case In::Shape:
      fail(ATTN_ERR_FORMAT,
           where() + ": 'shape' entries must be a non-negative integer, got " +
               what);
    case In::Offsets:
      fail(ATTN_ERR_FORMAT, where() +
                                ": 'data_offsets' must be a non-negative "
                                "integer, got " +
                                what);
    default:
      return true;
    }
  }
  // An object or array (already entered) where no field expects one.
  bool container(const std::string &what) {
    if (in == In::Skip)
      return true;
    if (in == In::Entry && field == Field::Other) {
      in = In::Skip;
      skipDepth = depth - 1;
      return true;
    }
    return scalar(what);
  }

  void finishEntry() {
    RawEntry &e = entries.back();
    const char *missing = !e.dtype         ? "dtype"
                          : !e.haveShape   ? "shape"
                          : !e.haveOffsets ? "data_offsets"
                                           : nullptr;
    if (missing)
      fail(ATTN_ERR_FORMAT,
           where() + ": missing field '" + std::string(missing) + "'");
    if (e.offsets.size() != 2)
      badOffsets();
    fieldsSeen = 0;
    field = Field::Other;
  }
};

// Turns a raw entry into a tensor viewing `data`, checking its offsets
// against the data section and its size against its shape.
attn_weights::Entry makeEntry(const attn_weights &w, RawEntry &e,
                              const uint8_t *data, uint64_t dataSize) {
  std::string where = w.path + ": tensor " + quote(e.name);
  uint64_t begin = e.offsets[0], end = e.offsets[1];
  std::string offsets =
      "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
  if (begin > end || end > dataSize)
    fail(ATTN_ERR_FORMAT, where + ": data_offsets " + offsets +
                              " are out of range (the data section has " +
                              std::to_string(dataSize) + " bytes)");
  attn_tensor t;
  bool viewable = e.dtype->runtime >= 0;
  if (viewable)
    t.dtype = (attn_dtype)e.dtype->runtime;
  t.dims = std::move(e.dims);
  if (viewable)
    checkedNumel(t.dims.data(), t.dims.size(), t.dtype, where);
  std::string shape = viewable ? formatShape(t) : fileShape(*e.dtype, t.dims);
  uint64_t need = byteSize(*e.dtype, t.dims, shape, where);
  if (end - begin != need)
    fail(ATTN_ERR_FORMAT, where + ": data_offsets " + offsets + " hold " +
                              std::to_string(end - begin) + " bytes but " +
                              shape + " needs " + std::to_string(need));
  t.data = const_cast<uint8_t *>(data + begin);
  t.keep = w.mapping;
  return {std::move(e.name), e.dtype->name, viewable, std::move(t)};
}

// The tensors must fill the data section back to back, as the format's
// reference requires (its Metadata::validate sorts them by offsets, each
// must begin where the previous one ends, and the last must end the file):
// no overlap, no gap, no trailing bytes.
void checkLayout(const attn_weights &w, const std::vector<RawEntry> &raw,
                 uint64_t dataSize) {
  std::vector<size_t> order(raw.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return raw[a].offsets < raw[b].offsets;
  });
  auto span = [&](size_t i) {
    return "tensor " + quote(w.entries[i].name) + " [" +
           std::to_string(raw[i].offsets[0]) + ", " +
           std::to_string(raw[i].offsets[1]) + "]";
  };
  uint64_t at = 0;
  auto unused = [&](uint64_t to, const std::string &before) {
    fail(ATTN_ERR_FORMAT,
         w.path + ": bytes [" + std::to_string(at) + ", " + std::to_string(to) +
             ") of the data section belong to no tensor" + before +
             "; the format stores tensors back to back");
  };
  for (size_t k = 0; k < order.size(); ++k) {
    uint64_t begin = raw[order[k]].offsets[0];
    if (begin < at)
      fail(ATTN_ERR_FORMAT,
           w.path + ": " + span(order[k]) + " overlaps " + span(order[k - 1]));
    if (begin > at)
      unused(begin, " (before " + span(order[k]) + ")");
    at = raw[order[k]].offsets[1];
  }
  if (at != dataSize)
    unused(dataSize, "");
}

struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

std::shared_ptr<void> mapFile(const std::string &path, int fd, uint64_t size) {
  void *addr = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (addr == MAP_FAILED)
    fail(ATTN_ERR_IO, "cannot map " + path + ": " + systemError());
  return std::shared_ptr<void>(addr, [size](void *p) { munmap(p, size); });
}

// The whole file in 64-byte-aligned memory (so tensors keep the alignment
// their offsets give them, as in a mapping).
std::shared_ptr<void> copyFile(const std::string &path, int fd, uint64_t size) {
  void *p = std::aligned_alloc(64, (size + 63) / 64 * 64);
  if (!p)
    fail(ATTN_ERR_OUT_OF_MEMORY, path + ": out of memory copying its " +
                                     std::to_string(size) + " bytes");
  std::shared_ptr<void> copy(p, std::free);
  for (uint64_t done = 0; done < size;) {
    ssize_t n = ::pread(fd, (char *)p + done,
                        std::min<uint64_t>(size - done, 1u << 30), done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      fail(ATTN_ERR_IO, "cannot read " + path + ": " + systemError());
    if (n == 0)
      fail(ATTN_ERR_IO, path + " shrank to " + std::to_string(done) +
                            " bytes while being read (it had " +
                            std::to_string(size) + ")");
    done += (uint64_t)n;
  }
  return copy;
}

std::unique_ptr<attn_weights> openWeights(const char *pathC, unsigned flags) {
  if (!pathC)
    fail(ATTN_ERR_INVALID_ARGUMENT, "attn_weights_open: path is NULL");
  if (flags & ~(unsigned)ATTN_WEIGHTS_COPY)
    fail(ATTN_ERR_INVALID_ARGUMENT,
         "attn_weights_open_ex: unknown flags " + std::to_string(flags));
  auto w = std::make_unique<attn_weights>();
  w->path = pathC;
  uint64_t size;
  FdCloser fd{openRegularFile(w->path, size)};
  if (size < 8)
    fail(ATTN_ERR_FORMAT, w->path + ": file has " + std::to_string(size) +
                              " bytes, shorter than the 8-byte safetensors "
                              "header size");
  w->mapping = flags & ATTN_WEIGHTS_COPY ? copyFile(w->path, fd.fd, size)
                                         : mapFile(w->path, fd.fd, size);
  const uint8_t *base = (const uint8_t *)w->mapping.get();

  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = headerLen << 8 | base[i];
  if (headerLen > maxHeaderBytes)
    fail(ATTN_ERR_FORMAT, w->path + ": header length " +
                              std::to_string(headerLen) + " is above the " +
                              std::to_string(maxHeaderBytes) +
                              "-byte limit of the format");
  if (headerLen > size - 8)
    fail(ATTN_ERR_FORMAT, w->path + ": header length " +
                              std::to_string(headerLen) +
                              " runs past the end of the file (" +
                              std::to_string(size) + " bytes)");
  const char *text = (const char *)base + 8;
  HeaderReader reader(w->path);
  nlohmann::json::sax_parse(text, text + headerLen, &reader);
  const uint8_t *data = base + 8 + headerLen;
  uint64_t dataSize = size - 8 - headerLen;
  w->entries.reserve(reader.entries.size());
  for (RawEntry &e : reader.entries)
    w->entries.push_back(makeEntry(*w, e, data, dataSize));
  checkLayout(*w, reader.entries, dataSize);
  w->index = std::move(reader.index);
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
  // The header text is built entry by entry: ordered_json's object finds
  // keys by linear search, which made 100,000 names take minutes.
  std::unordered_set<std::string> seen;
  std::string text = "{";
  for (int32_t i = 0; i < count; ++i) {
    std::string name = names[i];
    if (!seen.insert(name).second || name == "__metadata__")
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_safetensors_write: name " +
                                          quote(name) +
                                          " is repeated or reserved");
    uint64_t n = nbytes(*tensors[i]);
    json entry = {{"dtype", safetensorsDtype(tensors[i]->dtype)},
                  {"shape", tensors[i]->dims},
                  {"data_offsets", {offsets[i], offsets[i] + n}}};
    try {
      text += (i ? "," : "") + json(name).dump() + ":" + entry.dump();
    } catch (const json::exception &) {
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_safetensors_write: name " +
                                          quote(name) + " is not valid UTF-8");
    }
  }
  text += "}";
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

attn_status attn_weights_open_ex(const char *path, uint32_t flags,
                                 attn_weights **out) {
  return guarded([&] {
    if (!out)
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_weights_open: out is NULL");
    *out = nullptr;
    *out = namingOutOfMemory(path ? path : "attn_weights_open", [&] {
             return openWeights(path, flags);
           }).release();
    return ATTN_OK;
  });
}

attn_status attn_weights_open(const char *path, attn_weights **out) {
  return attn_weights_open_ex(path, 0, out);
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
