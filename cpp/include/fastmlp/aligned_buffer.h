// An owned, 64-byte aligned, zero-initialized array: packed GEMM panels and SIMD loads want
// cache-line alignment, which std::vector does not promise.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "fastmlp/sizes.h"

namespace fastmlp {

template <class T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t n) { allocate(n); }
  AlignedBuffer(const AlignedBuffer& other) {
    allocate(other.size_);
    if (size_ != 0) std::memcpy(data_, other.data_, size_ * sizeof(T));
  }
  AlignedBuffer(AlignedBuffer&& other) noexcept { swap(other); }
  AlignedBuffer& operator=(AlignedBuffer other) noexcept {
    swap(other);
    return *this;
  }
  ~AlignedBuffer() { std::free(data_); }

  // Discards the contents when the size changes. Strong: the new array is allocated before the
  // old one is freed, so when it throws (SizeError, AllocationError) the buffer is unchanged.
  void resize(std::size_t n) {
    if (n == size_) return;
    AlignedBuffer fresh(n);
    swap(fresh);
  }
  // Grows (never shrinks) so that at least n elements fit.
  void reserve_at_least(std::size_t n) {
    if (n > size_) resize(n);
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  void swap(AlignedBuffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
  }

 private:
  // On an empty buffer only.
  void allocate(std::size_t n) {
    if (n == 0) return;
    // checked_bytes caps the size far below the range where rounding up could wrap.
    const std::size_t bytes = (checked_bytes(n, sizeof(T)) + 63) / 64 * 64;
    require_memory(bytes);
    data_ = static_cast<T*>(std::aligned_alloc(64, bytes));
    if (data_ == nullptr) throw AllocationError("cannot allocate " + std::to_string(bytes) + " bytes", -1, bytes);
    std::memset(data_, 0, bytes);
    size_ = n;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace fastmlp
