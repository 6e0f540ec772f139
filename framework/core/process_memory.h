// framework/core/process_memory.h — the process's memory as Linux reports
// it: the resident high-water mark (what summary.json and the benchmarks
// call peak memory), resetting it, and the memory still available.
//
// Thread-safety: each function reads or writes /proc once; call from any
// thread. Without /proc (not Linux), the peak falls back to getrusage and
// the others say "unknown".
#ifndef LLMSYS_FRAMEWORK_CORE_PROCESS_MEMORY_H_
#define LLMSYS_FRAMEWORK_CORE_PROCESS_MEMORY_H_

#include <cstdint>
#include <string>

namespace llmsys::core {

// A "Key:   123 kB" line of a /proc file (/proc/self/status,
// /proc/meminfo), in bytes; -1 when the file or the key is absent.
int64_t ProcKilobytesLine(const std::string& file, const std::string& key);

// The resident memory's high-water mark (VmHWM; getrusage's ru_maxrss where
// there is no /proc), in bytes.
int64_t PeakResidentBytes();

// Returns freed heap memory to the system and resets the high-water mark to
// the current resident size (Linux >= 4.0), so the next peak is measured
// from here; false when the mark cannot be reset.
bool ResetPeakResident();

// MemAvailable (/proc/meminfo) in bytes; 0 when unknown.
int64_t AvailableMemoryBytes();

}  // namespace llmsys::core

#endif  // LLMSYS_FRAMEWORK_CORE_PROCESS_MEMORY_H_
