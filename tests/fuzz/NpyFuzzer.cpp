//===- NpyFuzzer.cpp - Fuzz the .npy reader -------------------------------===//
#include "FuzzFile.h"

#include "attn/runtime.h"

#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = attn::fuzz::writeFuzzFile(data, size);
  attn_tensor *t = nullptr;
  if (attn_npy_read(path, &t) == ATTN_OK)
    attn_tensor_free(t);
  t = nullptr;
  if (attn_npy_read_expect(path, ATTN_F32, "input 'x'", &t) == ATTN_OK)
    attn_tensor_free(t);
  return 0;
}
