#include "fastmlp/sizes.h"

#if defined(_WIN32)
#define NOMINMAX
#include <windows.h>
#else
#include <unistd.h>
#endif

namespace fastmlp {

namespace {

constexpr std::size_t kSizeMax = std::numeric_limits<std::size_t>::max();

}  // namespace

std::size_t checked_mul(std::size_t a, std::size_t b, const char* what) {
  if (b != 0 && a > kSizeMax / b)
    throw SizeError(std::string(what) + ": " + std::to_string(a) + " x " + std::to_string(b) +
                    " is more than " + std::to_string(kSizeMax));
  return a * b;
}

std::size_t checked_add(std::size_t a, std::size_t b, const char* what) {
  if (a > kSizeMax - b)
    throw SizeError(std::string(what) + ": " + std::to_string(a) + " + " + std::to_string(b) +
                    " is more than " + std::to_string(kSizeMax));
  return a + b;
}

std::size_t checked_bytes(std::size_t n, std::size_t element) {
  if (element != 0 && n > kSizeMax / element)
    throw SizeError(std::to_string(n) + " values of " + std::to_string(element) +
                    " bytes are more than " + std::to_string(kSizeMax) + " bytes");
  const std::size_t bytes = n * element;
  if (bytes > kMaxBufferBytes)
    throw SizeError(std::to_string(bytes) + " bytes, more than the " + std::to_string(kMaxBufferBytes) +
                        " (1 TiB) that one buffer may hold",
                    -1, bytes);
  return bytes;
}

std::size_t physical_memory_bytes() {
  static const std::size_t bytes = [] {
#if defined(_WIN32)
    MEMORYSTATUSEX status;
    status.dwLength = sizeof(status);
    return GlobalMemoryStatusEx(&status) ? std::size_t(status.ullTotalPhys) : std::size_t(0);
#else
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return std::size_t(0);
    if (std::size_t(pages) > kSizeMax / std::size_t(page)) return std::size_t(0);
    return std::size_t(pages) * std::size_t(page);
#endif
  }();
  return bytes;
}

void require_memory(std::size_t bytes) {
  const std::size_t memory = physical_memory_bytes();
  if (memory != 0 && bytes > memory)
    throw AllocationError("cannot allocate " + std::to_string(bytes) + " bytes: more than the machine's " +
                              std::to_string(memory) + " bytes of memory",
                          -1, bytes);
}

}  // namespace fastmlp
