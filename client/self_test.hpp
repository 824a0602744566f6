// `client test`: walks the whole protocol against the configured server with two throwaway
// identities in a temporary directory; never touches the user's me.info or keyring.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iosfwd>

#include "connection.hpp"

namespace letterbox::client {

struct self_test_options {
  std::filesystem::path config_directory = ".";  // where server.info is read from
  std::uint64_t file_size = 64ull << 20;          // size of the file transfer check
  std::filesystem::path temp_parent;  // empty: the system temp directory
  std::chrono::steady_clock::duration io_timeout = default_io_timeout;  // per network step
};

// Prints one line per check and a final "N passed, N failed" line to out. Returns 0 if every
// check passed, 1 otherwise (2 if it could not start: no server.info, no temp directory).
int run_self_test(const self_test_options& options, std::ostream& out);

}  // namespace letterbox::client
