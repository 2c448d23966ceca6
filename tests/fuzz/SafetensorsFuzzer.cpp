//===- SafetensorsFuzzer.cpp - Fuzz the safetensors weights reader --------===//
//
// Opens the input as a weights file, mapped and copied, and views every
// tensor it lists; reads one element of each so ASan checks its bounds.
//
//===----------------------------------------------------------------------===//
#include "FuzzFile.h"

#include "attn/runtime.h"

#include <cstdint>
#include <cstring>

static void readAll(const char *path, uint32_t flags) {
  attn_weights *w = nullptr;
  if (attn_weights_open_ex(path, flags, &w) != ATTN_OK)
    return;
  for (int32_t i = 0, n = attn_weights_count(w); i < n; ++i) {
    (void)attn_weights_file_dtype(w, i);
    const attn_tensor *t = nullptr;
    if (attn_weights_get(w, attn_weights_name(w, i), &t) != ATTN_OK)
      continue;
    size_t bytes = attn_tensor_nbytes(t);
    if (bytes) {
      volatile uint8_t last;
      std::memcpy(const_cast<uint8_t *>(&last),
                  static_cast<const uint8_t *>(attn_tensor_data(t)) + bytes - 1,
                  1);
    }
  }
  attn_weights_close(w);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = attn::fuzz::writeFuzzFile(data, size);
  readAll(path, ATTN_WEIGHTS_MAP);
  readAll(path, ATTN_WEIGHTS_COPY);
  return 0;
}
