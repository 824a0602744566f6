// The client's files in its working directory: server.info (where the server is), me.info
// (who we are), and the owner-only atomic writer they and the keyring share.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

#include "crypto.hpp"
#include "messages.hpp"

namespace letterbox::client {

// The one error type of the local-files layer: a missing, unreadable or malformed file, or a
// write that failed. The message names the file and what is wrong with it.
class config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr std::string_view server_info_file = "server.info";
inline constexpr std::string_view me_info_file = "me.info";

struct server_address {
  std::string host;
  std::uint16_t port = 0;
  bool operator==(const server_address&) const = default;
};

// Parses "host:port" (IPv6 as "[::1]:port"), surrounding whitespace allowed. Throws
// config_error with the reason.
server_address parse_server_address(std::string_view text);
// Reads server.info from dir; throws config_error naming the file when missing or malformed.
server_address read_server_info(const std::filesystem::path& dir);

// Who we are: what registration produced.
struct identity {
  std::string name;
  protocol::client_id id{};
  private_key key;
};

// Reads me.info from dir: line 1 name, line 2 the ID as 32 hex characters, line 3 (and any
// further lines, for keys written with line breaks) the PKCS#8 DER private key in Base64.
// Throws config_error naming the file and the bad line.
identity read_me_info(const std::filesystem::path& dir);
// Writes me.info owner-only and atomically; throws config_error if it already exists.
void write_me_info(const std::filesystem::path& dir, const identity& me);

// Writes content to path via a temp file in the same directory (mode 0600) + fsync + rename.
// With replace == false the final step refuses to overwrite an existing file (link, not
// rename). Throws config_error on any failure; the temp file never survives.
void write_private_file(const std::filesystem::path& path, std::string_view content, bool replace);

}  // namespace letterbox::client
