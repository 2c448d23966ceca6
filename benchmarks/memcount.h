//===- memcount.h - High-water mark of heap allocations ---------*- C++ -*-===//
#ifndef ATTN_BENCH_MEMCOUNT_H
#define ATTN_BENCH_MEMCOUNT_H
namespace attn::bench {
/// Bytes currently allocated through malloc & co. in the whole process.
long memLiveBytes();
/// Starts a new high-water mark at the current live total.
void memResetPeak();
/// The highest live total since the last memResetPeak().
long memPeakBytes();
} // namespace attn::bench
#endif
