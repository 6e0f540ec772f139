#include "framework/core/process_memory.h"

#include <malloc.h>
#include <sys/resource.h>

#include <cstdlib>
#include <fstream>

namespace llmsys::core {

int64_t ProcKilobytesLine(const std::string& file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0)
      return std::atoll(line.c_str() + key.size() + 1) * 1024;
  return -1;
}

int64_t PeakResidentBytes() {
  const int64_t hwm = ProcKilobytesLine("/proc/self/status", "VmHWM");
  if (hwm >= 0) return hwm;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

bool ResetPeakResident() {
  malloc_trim(0);
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return f.good();
}

int64_t AvailableMemoryBytes() {
  const int64_t bytes = ProcKilobytesLine("/proc/meminfo", "MemAvailable");
  return bytes > 0 ? bytes : 0;
}

}  // namespace llmsys::core
