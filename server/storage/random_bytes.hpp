// Random bytes from the system's random source, for client IDs and spool file names.
#pragma once

#include <cstdint>
#include <random>
#include <span>

namespace letterbox::server {

// Fills out with bytes from std::random_device (the kernel's CSPRNG on Linux).
inline void fill_random(std::span<std::uint8_t> out) {
  static thread_local std::random_device device;
  for (std::size_t i = 0; i < out.size(); i += 4) {
    const std::uint32_t r = device();
    for (std::size_t k = 0; k < 4 && i + k < out.size(); ++k) out[i + k] = static_cast<std::uint8_t>(r >> (8 * k));
  }
}

}  // namespace letterbox::server
