// The client's protocol-v2 state files beside me.info: me.v2 (the v2 secret keys), servers.v2
// (servers that have spoken v2: no silent fallback to v1 for them), seen.v2 (messages already
// handled: redeliveries and replays are dropped). Formats: docs/CLIENT.md.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string_view>

#include "client_files.hpp"

namespace letterbox::client {

inline constexpr std::string_view me_v2_file = "me.v2";
inline constexpr std::string_view servers_v2_file = "servers.v2";
inline constexpr std::string_view seen_v2_file = "seen.v2";

using secret_32 = std::array<std::uint8_t, 32>;
using replay_id = std::array<std::uint8_t, 16>;

// The v2 secrets of our identity (the RSA legacy key stays in me.info, in its v1 format).
struct v2_secrets {
  secret_32 identity{};   // Ed25519 private seed
  secret_32 agreement{};  // X25519 private key
};

// Reads dir/me.v2; nullopt when it does not exist. Throws config_error naming the file and
// line when it is malformed.
std::optional<v2_secrets> read_me_v2(const std::filesystem::path& dir);
// Writes dir/me.v2 owner-only and atomically; never overwrites (throws config_error).
void write_me_v2(const std::filesystem::path& dir, const v2_secrets& secrets);

// "host:port" as servers.v2 records it (IPv6 hosts in brackets).
std::string server_key(const server_address& server);
// True when dir/servers.v2 lists server. A missing file lists nothing; throws config_error
// when it cannot be read.
bool is_known_v2_server(const std::filesystem::path& dir, const server_address& server);
// Adds server to dir/servers.v2 (atomic rewrite, fsync'd) unless it is there. Throws config_error.
void remember_v2_server(const std::filesystem::path& dir, const server_address& server);

// The messages already handled, by message ID (per mailbox, never reused by the server) and
// by the envelope's replay ID. Each record is appended to seen.v2 and fsync'd before the
// message is acknowledged, so a crash between the two redelivers a message we then drop.
class seen_store {
 public:
  // Loads dir/seen.v2 (missing: empty). Throws config_error on a malformed line.
  static seen_store load(const std::filesystem::path& dir);

  bool has_message(std::uint32_t message_id) const { return messages_.count(message_id) != 0; }
  bool has_replay(const replay_id& id) const { return replays_.count(id) != 0; }
  // Records a handled message durably (append + fsync). Throws config_error.
  void add(std::uint32_t message_id, const std::optional<replay_id>& replay);

 private:
  std::filesystem::path path_;
  std::set<std::uint32_t> messages_;
  std::set<replay_id> replays_;
};

}  // namespace letterbox::client
