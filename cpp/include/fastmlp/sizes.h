// Sizes that become allocations, and the two errors a size that cannot be had raises.
//
// Every product of sizes that becomes an allocation goes through checked_mul / checked_bytes,
// before anything is freed or allocated: a wrapped product would otherwise allocate a small
// buffer that the kernels then overrun. The callers size into fresh buffers and commit only
// once every allocation has succeeded, so a refused size leaves the model as it was.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace fastmlp {

// The largest single buffer fastmlp allocates: 1 TiB. A size beyond it is a mistake (a unit
// count of 10**12), not a model: SizeError, without an attempt.
constexpr std::size_t kMaxBufferBytes = std::size_t(1) << 40;
// Input features of a network and units of a layer: the nonzero lists index features with
// 32-bit integers and class labels are int32.
constexpr std::size_t kMaxDim = std::size_t(std::numeric_limits<std::int32_t>::max());
// Entries of one batch's per-row nonzero lists, rows x (input features + 8): their offsets are
// 32-bit (Network::max_batch_rows).
constexpr std::size_t kMaxIndexEntries = std::numeric_limits<std::uint32_t>::max();

// A size too large to represent or beyond the caps above (Python: fastmlp._core.SizeError, a
// ValueError). layer: the network layer it belongs to, or -1; bytes: what was asked for, or 0
// when the size does not even fit in a size_t.
class SizeError : public std::invalid_argument {
 public:
  SizeError(const std::string& message, long layer = -1, std::size_t bytes = 0)
      : std::invalid_argument(message), layer_(layer), bytes_(bytes) {}
  long layer() const { return layer_; }
  std::size_t bytes() const { return bytes_; }

 private:
  long layer_;
  std::size_t bytes_;
};

// A buffer the system would not give, or one larger than the machine's memory (Python:
// fastmlp._core.AllocationError, a MemoryError). A std::bad_alloc, so generic handlers see it as
// one; the message is held by a runtime_error so that copying the exception cannot throw.
class AllocationError : public std::bad_alloc {
 public:
  AllocationError(const std::string& message, long layer = -1, std::size_t bytes = 0)
      : message_(message), layer_(layer), bytes_(bytes) {}
  const char* what() const noexcept override { return message_.what(); }
  long layer() const { return layer_; }
  std::size_t bytes() const { return bytes_; }

 private:
  std::runtime_error message_;
  long layer_;
  std::size_t bytes_;
};

// a * b, or SizeError naming `what` when the product does not fit in a size_t.
std::size_t checked_mul(std::size_t a, std::size_t b, const char* what);
// a + b, likewise.
std::size_t checked_add(std::size_t a, std::size_t b, const char* what);
// The bytes of n elements of `element` bytes: SizeError when beyond kMaxBufferBytes.
std::size_t checked_bytes(std::size_t n, std::size_t element);
// The machine's physical memory in bytes (0 when unknown: no limit is then applied).
std::size_t physical_memory_bytes();
// AllocationError when `bytes` in all cannot fit in the machine's memory: asking would at best
// fail, and with overcommit the process would be killed when the pages are first touched.
void require_memory(std::size_t bytes);
// "float32" / "float64", for messages.
template <class T>
const char* dtype_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

// Runs f(); a SizeError or AllocationError from it is thrown again with describe() and ": " in
// front of its message, and `layer` (when not -1) as its layer. describe runs only then.
template <class Describe, class F>
decltype(auto) with_context(Describe&& describe, long layer, F&& f) {
  try {
    return std::forward<F>(f)();
  } catch (const SizeError& e) {
    throw SizeError(describe() + ": " + e.what(), layer != -1 ? layer : e.layer(), e.bytes());
  } catch (const AllocationError& e) {
    throw AllocationError(describe() + ": " + e.what(), layer != -1 ? layer : e.layer(), e.bytes());
  }
}

// v.reserve(n), with its size checked first and a failure thrown as AllocationError. Strong:
// v is unchanged when it throws.
template <class Vector>
void reserve_checked(Vector& v, std::size_t n) {
  if (n <= v.capacity()) return;
  const std::size_t bytes = checked_bytes(n, sizeof(typename Vector::value_type));
  require_memory(bytes);
  try {
    v.reserve(n);
  } catch (const std::bad_alloc&) {
    throw AllocationError("cannot allocate " + std::to_string(bytes) + " bytes", -1, bytes);
  } catch (const std::length_error&) {
    throw SizeError(std::to_string(bytes) + " bytes are more than a vector can hold", -1, bytes);
  }
}

}  // namespace fastmlp
