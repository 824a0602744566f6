// Helpers shared by the server unit tests: a self-deleting temporary directory, deterministic
// client IDs, keys and register payloads, and running a call as one storage job's batch.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include "mailbox_store.hpp"
#include "messages.hpp"
#include "messages_v2.hpp"

namespace letterbox::server::test {

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "letterbox-srvtest-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline protocol::client_id make_id(std::uint8_t seed) {
  protocol::client_id id{};
  for (std::size_t i = 0; i < id.size(); ++i) id[i] = static_cast<std::uint8_t>(seed * 31 + i);
  return id;
}

inline protocol::public_key make_key(std::uint8_t seed) {
  protocol::public_key key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(seed ^ (i * 7));
  return key;
}

inline protocol::byte_buffer make_content(std::size_t size, std::uint8_t seed) {
  protocol::byte_buffer content(size);
  for (std::size_t i = 0; i < size; ++i) content[i] = static_cast<std::uint8_t>(seed + i * 13);
  return content;
}

// A v2 REGISTER request with keys derived from seed (signatures are the request flows' to
// check, not the handler's).
inline protocol::v2::register_request make_v2_request(const std::string& name, std::uint8_t seed) {
  protocol::v2::register_request request;
  request.name = name;
  for (std::size_t i = 0; i < request.identity.size(); ++i) request.identity[i] = static_cast<std::uint8_t>(seed + i);
  for (std::size_t i = 0; i < request.agreement.size(); ++i) request.agreement[i] = static_cast<std::uint8_t>(seed * 3 + i);
  request.legacy = make_key(seed);
  for (std::size_t i = 0; i < request.key_signature.size(); ++i)
    request.key_signature[i] = static_cast<std::uint8_t>(seed * 7 + i);
  return request;
}

// Runs fn as a storage job runs: in a batch of its own, committed, or rolled back when fn
// throws (and the exception goes on). Returns what fn returns.
template <typename F>
auto in_batch(mailbox_store& store, F&& fn) -> decltype(fn()) {
  store.begin();
  try {
    if constexpr (std::is_void_v<decltype(fn())>) {
      fn();
      store.commit();
    } else {
      auto result = fn();
      store.commit();
      return result;
    }
  } catch (...) {
    store.rollback();
    throw;
  }
}

// Files in a directory (not recursive).
inline std::size_t count_files(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) n += entry.is_regular_file() ? 1 : 0;
  return n;
}

}  // namespace letterbox::server::test
