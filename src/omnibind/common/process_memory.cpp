#include "omnibind/common/process_memory.h"

#include <malloc.h>

#include <climits>
#include <cstdlib>
#include <cstring>

namespace omnibind::common {

bool keep_freed_memory_in_process() {
  const char* keep_defaults = std::getenv("OMNIBIND_MALLOC_DEFAULTS");
  if (keep_defaults && std::strcmp(keep_defaults, "1") == 0) return false;
  // M_MMAP_MAX 0: no direct mmap from the main arena (threads' arenas still fall back to mmap for
  // blocks above their 64 MB heaps). M_TRIM_THRESHOLD: the heap top is trimmed only above 2 GB free.
  const bool no_mmap = mallopt(M_MMAP_MAX, 0) == 1;
  const bool no_trim = mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1;
  return no_mmap && no_trim;
}

}  // namespace omnibind::common
