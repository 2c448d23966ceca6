//===- FuzzFile.h - Fuzz bytes as a file the runtime can open ---*- C++ -*-===//
//
// The runtime's readers take paths. A memfd (a regular file in memory) holds
// the bytes; /proc/self/fd/N names it. One descriptor is reused per process.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_FUZZ_FUZZFILE_H
#define ATTN_FUZZ_FUZZFILE_H

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace attn::fuzz {

/// Replaces the file's contents with `data` and returns its path.
inline const char *writeFuzzFile(const uint8_t *data, size_t size) {
  static int fd = -1;
  static std::string path;
  if (fd < 0) {
    fd = memfd_create("attn-fuzz", 0);
    if (fd < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    path = "/proc/self/fd/" + std::to_string(fd);
  }
  size_t done = 0;
  if (ftruncate(fd, 0) != 0)
    std::abort();
  while (done < size) {
    ssize_t n = pwrite(fd, data + done, size - done, done);
    if (n <= 0)
      std::abort();
    done += size_t(n);
  }
  return path.c_str();
}

} // namespace attn::fuzz

#endif // ATTN_FUZZ_FUZZFILE_H
