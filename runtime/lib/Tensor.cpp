//===- Tensor.cpp - Errors, dtypes and tensors of the runtime -------------===//
//
// The thread-local error slot, dtype helpers, f16/bf16 conversions and the
// attn_tensor handle functions of the C API.
//
//===----------------------------------------------------------------------===//
#include "Internal.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace attn::detail;

namespace {
thread_local std::string lastError;
} // namespace

namespace attn::detail {

void fail(attn_status status, std::string message) {
  throw Failure{status, std::move(message)};
}

attn_status setError(attn_status status, const std::string &message) {
  try {
    lastError = message;
  } catch (...) {
    // Keep the status even if the message cannot be stored.
  }
  return status;
}

void clearError() { lastError.clear(); }

// strerror_r in either form: GNU's returns the message, XSI's fills `buf`.
// (strerror may share one buffer between threads.)
static const char *errorText(const char *gnu, const char *) { return gnu; }
static const char *errorText(int, const char *buf) { return buf; }

std::string systemError() {
  char buf[256] = "";
  return errorText(strerror_r(errno, buf, sizeof buf), buf);
}

std::string shown(const std::string &s) {
  const size_t maxBytes = 200;
  size_t n = s.size();
  if (n > maxBytes) // cut on a UTF-8 character boundary
    for (n = maxBytes; n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80; --n)
      ;
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != 0x7f) {
      out += (char)c;
      continue;
    }
    char hex[5];
    std::snprintf(hex, sizeof hex, "\\x%02x", c);
    out += hex;
  }
  return n < s.size() ? out + "..." : out;
}

int openRegularFile(const std::string &path, uint64_t &size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    fail(ATTN_ERR_IO, "cannot open " + path + ": " + systemError());
  struct stat st;
  if (fstat(fd, &st) != 0) {
    std::string err = systemError();
    ::close(fd);
    fail(ATTN_ERR_IO, "cannot stat " + path + ": " + err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    const char *kind = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                                              : "not a regular file";
    fail(ATTN_ERR_IO, path + " is " + kind +
                          "; weights and .npy files must be regular files");
  }
  size = (uint64_t)st.st_size;
  return fd;
}

bool validDtype(int dtype) { return dtype >= ATTN_F32 && dtype <= ATTN_BOOL; }

std::string formatShape(attn_dtype dtype, const int64_t *dims, size_t rank) {
  std::string s = attn_dtype_name(dtype);
  s += '[';
  for (size_t i = 0; i < rank; ++i) {
    if (i)
      s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + ']';
}

int64_t checkedNumel(const int64_t *dims, size_t rank, attn_dtype dtype,
                     const std::string &what) {
  int64_t n = 1;
  for (size_t i = 0; i < rank; ++i) {
    if (dims[i] < 0)
      fail(ATTN_ERR_SHAPE, what + ": dim " + std::to_string(i) +
                               " is negative (" + std::to_string(dims[i]) +
                               ")");
    if (__builtin_mul_overflow(n, dims[i], &n))
      fail(ATTN_ERR_SHAPE, what + ": shape " + formatShape(dtype, dims, rank) +
                               " is too large");
  }
  int64_t bytes;
  if (__builtin_mul_overflow(n, (int64_t)attn_dtype_size(dtype), &bytes))
    fail(ATTN_ERR_SHAPE,
         what + ": shape " + formatShape(dtype, dims, rank) + " is too large");
  return n;
}

size_t nbytes(const attn_tensor &t) {
  size_t n = attn_dtype_size(t.dtype);
  for (int64_t d : t.dims)
    n *= (size_t)d;
  return n;
}

attn_tensor makeOwned(attn_dtype dtype, std::vector<int64_t> dims,
                      const std::string &what) {
  checkedNumel(dims.data(), dims.size(), dtype, what);
  attn_tensor t;
  t.dtype = dtype;
  t.dims = std::move(dims);
  // Round up to the alignment; never allocate zero bytes, so that empty
  // tensors still have a valid host pointer.
  size_t bytes = (nbytes(t) + 63) / 64 * 64;
  if (bytes == 0)
    bytes = 64;
  void *p = std::aligned_alloc(64, bytes);
  if (!p)
    fail(ATTN_ERR_OUT_OF_MEMORY, what + ": out of memory allocating " +
                                     std::to_string(bytes) + " bytes for " +
                                     formatShape(t));
  std::memset(p, 0, bytes);
  t.data = p;
  t.keep = std::shared_ptr<void>(p, std::free);
  return t;
}

} // namespace attn::detail

//===-- C API: errors and dtypes ------------------------------------------===//

const char *attn_last_error(void) { return lastError.c_str(); }

const char *attn_status_name(attn_status status) {
  switch (status) {
  case ATTN_OK:
    return "ok";
  case ATTN_ERR_INVALID_ARGUMENT:
    return "invalid argument";
  case ATTN_ERR_IO:
    return "I/O error";
  case ATTN_ERR_FORMAT:
    return "format error";
  case ATTN_ERR_DTYPE:
    return "dtype error";
  case ATTN_ERR_SHAPE:
    return "shape error";
  case ATTN_ERR_NOT_FOUND:
    return "not found";
  case ATTN_ERR_ABI:
    return "ABI error";
  case ATTN_ERR_PIPELINE:
    return "pipeline error";
  case ATTN_ERR_UNSUPPORTED:
    return "unsupported";
  case ATTN_ERR_OUT_OF_MEMORY:
    return "out of memory";
  case ATTN_ERR_INTERNAL:
    return "internal error";
  case ATTN_ERR_RESOURCE:
    return "resource limit";
  }
  return "unknown status";
}

const char *attn_dtype_name(attn_dtype dtype) {
  switch (dtype) {
  case ATTN_F32:
    return "f32";
  case ATTN_F16:
    return "f16";
  case ATTN_BF16:
    return "bf16";
  case ATTN_I32:
    return "i32";
  case ATTN_BOOL:
    return "bool";
  }
  return "?";
}

size_t attn_dtype_size(attn_dtype dtype) {
  switch (dtype) {
  case ATTN_F32:
  case ATTN_I32:
    return 4;
  case ATTN_F16:
  case ATTN_BF16:
    return 2;
  case ATTN_BOOL:
    return 1;
  }
  return 0;
}

int attn_dtype_from_name(const char *name, attn_dtype *out) {
  if (!name || !out)
    return -1;
  for (int d = ATTN_F32; d <= ATTN_BOOL; ++d) {
    if (std::strcmp(name, attn_dtype_name((attn_dtype)d)) == 0) {
      *out = (attn_dtype)d;
      return 0;
    }
  }
  return -1;
}

//===-- C API: f16 / bf16 -------------------------------------------------===//

static uint32_t floatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

static float bitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t attn_f32_to_f16(float value) {
  // Round to nearest even (after F. Giesen's float_to_half_fast3_rtne).
  const uint32_t f32Infinity = 255u << 23;
  const uint32_t f16Max = (127u + 16u) << 23;
  const uint32_t denormMagic = ((127u - 15u) + (23u - 10u) + 1u) << 23;
  uint32_t f = floatBits(value);
  uint32_t sign = f & 0x80000000u;
  f ^= sign;
  uint16_t out;
  if (f >= f16Max) {
    out = f > f32Infinity ? 0x7e00 : 0x7c00;
  } else if (f < (113u << 23)) {
    float v = bitsFloat(f) + bitsFloat(denormMagic);
    out = (uint16_t)(floatBits(v) - denormMagic);
  } else {
    uint32_t mantOdd = (f >> 13) & 1;
    f += ((uint32_t)(15 - 127) << 23) + 0xfff;
    f += mantOdd;
    out = (uint16_t)(f >> 13);
  }
  return (uint16_t)(out | (sign >> 16));
}

float attn_f16_to_f32(uint16_t bits) {
  uint32_t sign = (uint32_t)(bits & 0x8000) << 16;
  uint32_t exp = (bits >> 10) & 0x1f;
  uint32_t mant = bits & 0x3ff;
  if (exp == 0) {
    float v = (float)mant * (1.0f / 16777216.0f); // mant * 2^-24
    return sign ? -v : v;
  }
  if (exp == 31)
    return bitsFloat(sign | 0x7f800000u | (mant << 13));
  return bitsFloat(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t attn_f32_to_bf16(float value) {
  uint32_t u = floatBits(value);
  if ((u & 0x7fffffffu) > 0x7f800000u) // NaN: keep it a (quiet) NaN
    return (uint16_t)((u >> 16) | 0x40);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

float attn_bf16_to_f32(uint16_t bits) {
  return bitsFloat((uint32_t)bits << 16);
}

//===-- C API: tensors ----------------------------------------------------===//

static void checkShapeArgs(attn_dtype dtype, int32_t rank,
                           const int64_t *dims) {
  if (!validDtype(dtype))
    fail(ATTN_ERR_INVALID_ARGUMENT,
         "invalid dtype value " + std::to_string((int)dtype));
  if (rank < 0 || rank > ATTN_MAX_RANK)
    fail(ATTN_ERR_INVALID_ARGUMENT, "rank " + std::to_string(rank) +
                                        " is outside [0, " +
                                        std::to_string(ATTN_MAX_RANK) + "]");
  if (rank > 0 && !dims)
    fail(ATTN_ERR_INVALID_ARGUMENT,
         "dims is NULL for a tensor of rank " + std::to_string(rank));
}

attn_status attn_tensor_create(attn_dtype dtype, int32_t rank,
                               const int64_t *dims, attn_tensor **out) {
  return guarded([&] {
    if (!out)
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_tensor_create: out is NULL");
    *out = nullptr;
    checkShapeArgs(dtype, rank, dims);
    *out = new attn_tensor(makeOwned(
        dtype, std::vector<int64_t>(dims, dims + rank), "attn_tensor_create"));
    return ATTN_OK;
  });
}

attn_status attn_tensor_wrap(attn_dtype dtype, int32_t rank,
                             const int64_t *dims, void *data,
                             attn_tensor **out) {
  return guarded([&] {
    if (!out)
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_tensor_wrap: out is NULL");
    *out = nullptr;
    checkShapeArgs(dtype, rank, dims);
    auto t = std::make_unique<attn_tensor>();
    t->dtype = dtype;
    t->dims.assign(dims, dims + rank);
    if (checkedNumel(dims, rank, dtype, "tensor") > 0 && !data)
      fail(ATTN_ERR_INVALID_ARGUMENT, "attn_tensor_wrap: data is NULL");
    t->data = data;
    *out = t.release();
    return ATTN_OK;
  });
}

void attn_tensor_free(attn_tensor *tensor) { delete tensor; }

attn_dtype attn_tensor_dtype(const attn_tensor *t) {
  return t ? t->dtype : ATTN_F32;
}

int32_t attn_tensor_rank(const attn_tensor *t) {
  return t ? (int32_t)t->dims.size() : 0;
}

const int64_t *attn_tensor_dims(const attn_tensor *t) {
  return t ? t->dims.data() : nullptr;
}

int64_t attn_tensor_numel(const attn_tensor *t) {
  if (!t)
    return 0;
  int64_t n = 1;
  for (int64_t d : t->dims)
    n *= d;
  return n;
}

size_t attn_tensor_nbytes(const attn_tensor *t) { return t ? nbytes(*t) : 0; }

void *attn_tensor_data(const attn_tensor *t) { return t ? t->data : nullptr; }
