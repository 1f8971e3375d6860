// The one random generator of the core (shuffling now, dropout later): xoshiro256** seeded
// through splitmix64. Same seed, same stream, on every platform and thread count.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace fastmlp {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& word : state_) word = splitmix64(seed);
  }

  std::uint64_t next() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  using State = std::array<std::uint64_t, 4>;
  State state() const { return {state_[0], state_[1], state_[2], state_[3]}; }
  // xoshiro's all-zero state is a fixed point (next() returns 0 forever, and below() would
  // reject forever), so it is never a state of a seeded generator: refused.
  static bool valid_state(const State& s) { return (s[0] | s[1] | s[2] | s[3]) != 0; }
  void set_state(const State& s) {
    if (!valid_state(s)) throw std::invalid_argument("generator state must not be all zero");
    for (int i = 0; i < 4; ++i) state_[i] = s[i];
  }

  // Uniform in [0, n) without modulo bias (Lemire's multiply-and-reject).
  std::uint64_t below(std::uint64_t n) {
    __uint128_t m = __uint128_t(next()) * n;
    auto low = std::uint64_t(m);
    if (low < n) {
      const std::uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = __uint128_t(next()) * n;
        low = std::uint64_t(m);
      }
    }
    return std::uint64_t(m >> 64);
  }

  // Fisher-Yates.
  template <class Index>
  void shuffle(std::vector<Index>& v) {
    for (std::size_t i = v.size(); i > 1; --i) {
      const std::size_t j = std::size_t(below(i));
      const Index tmp = v[i - 1];
      v[i - 1] = v[j];
      v[j] = tmp;
    }
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::uint64_t state_[4];
};

}  // namespace fastmlp
