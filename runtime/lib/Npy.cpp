//===- Npy.cpp - NumPy .npy reader and writer -----------------------------===//
//
// Reads format versions 1.0, 2.0 and 3.0 and writes 1.0. The header is a
// Python dict literal, e.g. {'descr': '<f4', 'fortran_order': False,
// 'shape': (2, 3), }, parsed by the small scanner below. Only the five
// dtypes of the language are accepted; anything else is named in the error.
//
//===----------------------------------------------------------------------===//
#include "Internal.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <unistd.h>

using namespace attn::detail;

namespace {

struct FileCloser {
  void operator()(std::FILE *f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// The descr NumPy uses for each dtype (bf16 travels as raw uint16).
const char *npyDescr(attn_dtype dtype) {
  switch (dtype) {
  case ATTN_F32:
    return "<f4";
  case ATTN_F16:
    return "<f2";
  case ATTN_BF16:
    return "<u2";
  case ATTN_I32:
    return "<i4";
  case ATTN_BOOL:
    return "|b1";
  }
  return "?";
}

// Maps a descr to a dtype; false for anything the language has no type for.
bool dtypeFromDescr(const std::string &descr, attn_dtype &out) {
  if (descr.size() < 3)
    return false;
  char order = descr[0];
  std::string kind = descr.substr(1);
  if (kind == "b1" && (order == '|' || order == '<' || order == '='))
    return out = ATTN_BOOL, true;
  if (order != '<' && order != '=')
    return false;
  if (kind == "f4")
    return out = ATTN_F32, true;
  if (kind == "f2")
    return out = ATTN_F16, true;
  if (kind == "u2")
    return out = ATTN_BF16, true;
  if (kind == "i4")
    return out = ATTN_I32, true;
  return false;
}

// NumPy's name for a descr, for messages: '<f8' -> "float64".
std::string descrName(const std::string &descr) {
  if (descr.size() < 2)
    return "unknown dtype";
  char order = descr[0];
  char kind = descr[1];
  std::string size = descr.substr(2);
  long bytes = std::strtol(size.c_str(), nullptr, 10);
  // A size no dtype has ('<f99999999999999999999') names no bit count.
  std::string bits =
      bytes > 0 && bytes <= 1024 ? std::to_string(bytes * 8) : "";
  std::string name;
  switch (kind) {
  case 'f':
    name = "float" + bits;
    break;
  case 'i':
    name = "int" + bits;
    break;
  case 'u':
    name = "uint" + bits;
    break;
  case 'c':
    name = "complex" + bits;
    break;
  case 'b':
    name = "bool";
    break;
  case 'U':
    name = "str";
    break;
  case 'S':
    name = "bytes";
    break;
  case 'O':
    name = "object";
    break;
  case 'M':
    name = "datetime64";
    break;
  case 'm':
    name = "timedelta64";
    break;
  case 'V':
    name = "void";
    break;
  default:
    name = "unknown dtype";
  }
  if (order == '>' && bytes > 1)
    name += " big-endian";
  return name;
}

struct NpyHeader {
  std::string descr;
  bool fortranOrder = false;
  std::vector<int64_t> shape;
  uint64_t dataOffset = 0;
};

// Scanner for the header dict literal.
class DictParser {
public:
  DictParser(const std::string &text, const std::string &path)
      : s(text), path(path) {}

  NpyHeader parse() {
    NpyHeader h;
    bool haveDescr = false, haveOrder = false, haveShape = false;
    skipSpace();
    expect('{');
    while (true) {
      skipSpace();
      if (peek() == '}')
        break;
      std::string key = parseString();
      skipSpace();
      expect(':');
      skipSpace();
      if ((key == "descr" && haveDescr) ||
          (key == "fortran_order" && haveOrder) ||
          (key == "shape" && haveShape))
        bad("key " + quote(key) + " appears twice");
      if (key == "descr") {
        if (peek() == '[')
          bad("structured dtypes are not supported");
        h.descr = parseString();
        haveDescr = true;
      } else if (key == "fortran_order") {
        h.fortranOrder = parseBool();
        haveOrder = true;
      } else if (key == "shape") {
        h.shape = parseShape();
        haveShape = true;
      } else {
        bad("unexpected header key " + quote(key));
      }
      skipSpace();
      if (peek() == ',')
        ++pos;
      else if (peek() != '}')
        bad("expected ',' or '}' at offset " + std::to_string(pos));
    }
    ++pos;
    // NumPy pads the dict with spaces up to a newline; nothing else follows.
    skipSpace();
    if (pos != s.size())
      bad("unexpected text after the header dict at offset " +
          std::to_string(pos));
    if (!haveDescr || !haveOrder || !haveShape)
      bad("header lacks one of 'descr', 'fortran_order', 'shape'");
    return h;
  }

private:
  const std::string &s;
  const std::string &path;
  size_t pos = 0;

  [[noreturn]] void bad(const std::string &what) {
    fail(ATTN_ERR_FORMAT, path + ": malformed .npy header: " + what);
  }
  char peek() const { return pos < s.size() ? s[pos] : '\0'; }
  void skipSpace() {
    while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t' ||
                              s[pos] == '\n' || s[pos] == '\r'))
      ++pos;
  }
  void expect(char c) {
    if (peek() != c)
      bad(std::string("expected '") + c + "' at offset " + std::to_string(pos));
    ++pos;
  }
  std::string parseString() {
    char q = peek();
    if (q != '\'' && q != '"')
      bad("expected a string at offset " + std::to_string(pos));
    size_t end = s.find(q, pos + 1);
    if (end == std::string::npos)
      bad("unterminated string");
    std::string out = s.substr(pos + 1, end - pos - 1);
    pos = end + 1;
    return out;
  }
  bool parseBool() {
    if (s.compare(pos, 4, "True") == 0)
      return pos += 4, true;
    if (s.compare(pos, 5, "False") == 0)
      return pos += 5, false;
    bad("fortran_order is neither True nor False");
  }
  std::vector<int64_t> parseShape() {
    std::vector<int64_t> shape;
    expect('(');
    while (true) {
      skipSpace();
      if (peek() == ')') {
        ++pos;
        return shape;
      }
      if (peek() < '0' || peek() > '9')
        bad("shape entries must be non-negative integers");
      int64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, peek() - '0', &v))
          bad("shape entry too large");
        ++pos;
      }
      if (peek() == 'L') // Python 2 long
        ++pos;
      shape.push_back(v);
      if (shape.size() > ATTN_MAX_RANK)
        bad("rank above " + std::to_string(ATTN_MAX_RANK));
      skipSpace();
      if (peek() == ',')
        ++pos;
      else if (peek() != ')')
        bad("expected ',' or ')' in shape");
    }
  }
};

// Reads and validates the preamble and header of a file of `size` bytes,
// leaving `f` at the data.
NpyHeader readHeader(std::FILE *f, const std::string &path, uint64_t size) {
  unsigned char pre[12];
  if (size < 10 || std::fread(pre, 1, 10, f) != 10 ||
      std::memcmp(pre, "\x93NUMPY", 6) != 0)
    fail(ATTN_ERR_FORMAT, path + ": not a .npy file (bad magic string)");
  int major = pre[6], minor = pre[7];
  uint64_t headerLen, preamble;
  if (major == 1) {
    headerLen = pre[8] | (uint64_t)pre[9] << 8;
    preamble = 10;
  } else if (major == 2 || major == 3) {
    if (std::fread(pre + 10, 1, 2, f) != 2)
      fail(ATTN_ERR_FORMAT, path + ": truncated .npy preamble");
    headerLen = pre[8] | (uint64_t)pre[9] << 8 | (uint64_t)pre[10] << 16 |
                (uint64_t)pre[11] << 24;
    preamble = 12;
  } else {
    fail(ATTN_ERR_FORMAT,
         path + ": unsupported .npy version " + std::to_string(major) + "." +
             std::to_string(minor) + " (1.0, 2.0 and 3.0 are read)");
  }
  if (preamble + headerLen > size)
    fail(ATTN_ERR_FORMAT, path + ": .npy header (" + std::to_string(headerLen) +
                              " bytes) extends past the end of the file");
  std::string text(headerLen, '\0');
  if (headerLen && std::fread(&text[0], 1, headerLen, f) != headerLen)
    fail(ATTN_ERR_IO, path + ": read failed: " + systemError());
  NpyHeader h = DictParser(text, path).parse();
  h.dataOffset = preamble + headerLen;
  return h;
}

attn_tensor readNpy(const char *pathC, const attn_dtype *expected,
                    const char *what) {
  if (!pathC)
    fail(ATTN_ERR_INVALID_ARGUMENT, "attn_npy_read: path is NULL");
  std::string path = pathC;
  uint64_t size;
  int fd = openRegularFile(path, size);
  File f(fdopen(fd, "rb"));
  if (!f) {
    std::string err = systemError();
    ::close(fd);
    fail(ATTN_ERR_IO, "cannot open " + path + ": " + err);
  }
  NpyHeader h = readHeader(f.get(), path, size);
  std::string prefix = what && *what ? path + ": " + what : path;

  attn_dtype dtype;
  bool known = dtypeFromDescr(h.descr, dtype);
  if (expected && (!known || dtype != *expected)) {
    std::string got =
        known ? std::string(attn_dtype_name(dtype)) : descrName(h.descr);
    fail(ATTN_ERR_DTYPE,
         prefix + ": got " + got + " (" + shown(h.descr) + ") but the model expects " +
             attn_dtype_name(*expected) + " (" + npyDescr(*expected) + ")");
  }
  if (!known)
    fail(ATTN_ERR_DTYPE,
         prefix + ": unsupported dtype " + descrName(h.descr) + " (" + shown(h.descr) +
             "); supported: <f4 f32, <f2 f16, <u2 bf16, <i4 i32, |b1 bool");
  if (h.fortranOrder)
    fail(ATTN_ERR_FORMAT, prefix + ": Fortran-order arrays are not "
                                   "supported (save a C-contiguous array, "
                                   "e.g. np.ascontiguousarray)");

  // The file must hold the data it claims before anything is allocated: a
  // small file must not make us allocate (and zero) a huge tensor.
  uint64_t need =
      (uint64_t)checkedNumel(h.shape.data(), h.shape.size(), dtype, prefix) *
      attn_dtype_size(dtype);
  uint64_t have = size - h.dataOffset;
  std::string shape = formatShape(dtype, h.shape.data(), h.shape.size());
  if (have < need)
    fail(ATTN_ERR_FORMAT, prefix + ": truncated .npy data: " + shape +
                              " needs " + std::to_string(need) +
                              " bytes, the file has " + std::to_string(have));
  attn_tensor t = makeOwned(dtype, h.shape, prefix);
  if (need && std::fread(t.data, 1, need, f.get()) != need)
    fail(ATTN_ERR_IO,
         path + ": read failed (" + shape + " needs " + std::to_string(need) +
             " bytes): " +
             (std::ferror(f.get()) ? systemError() : "the file shrank"));
  return t;
}

void writeNpy(const char *pathC, const attn_tensor *t) {
  if (!pathC || !t)
    fail(ATTN_ERR_INVALID_ARGUMENT, "attn_npy_write: NULL argument");
  std::string shape = "(";
  for (size_t i = 0; i < t->dims.size(); ++i)
    shape += std::to_string(t->dims[i]) + (t->dims.size() == 1 ? "," : "") +
             (i + 1 < t->dims.size() ? ", " : "");
  shape += ")";
  std::string header = std::string("{'descr': '") + npyDescr(t->dtype) +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces so that the data starts at a multiple of 64 bytes.
  size_t preamble = 10;
  bool v2 = false;
  size_t total = (preamble + header.size() + 1 + 63) / 64 * 64;
  if (total - preamble > 0xffff) {
    v2 = true;
    preamble = 12;
    total = (preamble + header.size() + 1 + 63) / 64 * 64;
  }
  header.append(total - preamble - header.size() - 1, ' ');
  header += '\n';

  std::string path = pathC;
  File f(std::fopen(pathC, "wb"));
  if (!f)
    fail(ATTN_ERR_IO, "cannot create " + path + ": " + systemError());
  unsigned char pre[12] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  pre[6] = v2 ? 2 : 1;
  pre[7] = 0;
  uint32_t len = (uint32_t)header.size();
  pre[8] = len & 0xff;
  pre[9] = (len >> 8) & 0xff;
  pre[10] = (len >> 16) & 0xff;
  pre[11] = (len >> 24) & 0xff;
  size_t bytes = nbytes(*t);
  if (std::fwrite(pre, 1, preamble, f.get()) != preamble ||
      std::fwrite(header.data(), 1, header.size(), f.get()) != header.size() ||
      (bytes && std::fwrite(t->data, 1, bytes, f.get()) != bytes))
    fail(ATTN_ERR_IO, "cannot write " + path + ": " + systemError());
  if (std::fclose(f.release()) != 0)
    fail(ATTN_ERR_IO, "cannot write " + path + ": " + systemError());
}

} // namespace

attn_status attn_npy_read(const char *path, attn_tensor **out) {
  return guarded([&] {
    if (!out)
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_npy_read: out is NULL");
    *out = nullptr;
    *out =
        new attn_tensor(namingOutOfMemory(path ? path : "attn_npy_read", [&] {
          return readNpy(path, nullptr, nullptr);
        }));
    return ATTN_OK;
  });
}

attn_status attn_npy_read_expect(const char *path, attn_dtype expected,
                                 const char *what, attn_tensor **out) {
  return guarded([&] {
    if (!out)
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_npy_read_expect: out is NULL");
    *out = nullptr;
    if (!validDtype(expected))
      fail(ATTN_ERR_INVALID_ARGUMENT, "invalid expected dtype");
    *out =
        new attn_tensor(namingOutOfMemory(path ? path : "attn_npy_read", [&] {
          return readNpy(path, &expected, what);
        }));
    return ATTN_OK;
  });
}

attn_status attn_npy_write(const char *path, const attn_tensor *tensor) {
  return guarded([&] {
    writeNpy(path, tensor);
    return ATTN_OK;
  });
}
