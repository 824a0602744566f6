// The keyring: what this client knows about its peers (ID, name, public key, symmetric key),
// kept in keyring.info next to me.info so conversations survive restarts.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client_files.hpp"
#include "crypto.hpp"
#include "messages.hpp"

namespace letterbox::client {

inline constexpr std::string_view keyring_file = "keyring.info";

struct peer {
  protocol::client_id id{};
  std::string name;  // empty while unknown (e.g. a message from someone never listed)
  std::optional<protocol::public_key> public_key;
  std::optional<symmetric_key> shared_key;
  bool operator==(const peer&) const = default;
};

// An in-memory keyring bound to a file. Not thread-safe.
class keyring {
 public:
  // Loads dir/keyring.info; a missing file is an empty keyring. Throws config_error naming
  // the file and line when it is malformed.
  static keyring load(const std::filesystem::path& dir);

  // Writes the file owner-only and atomically (temp + fsync + rename). Throws config_error.
  void save() const;

  // The entry for id or with that (non-empty) name, or nullptr. Entries live in a vector:
  // a pointer or reference returned here or by upsert() is invalidated by the next upsert()
  // or set_name() that adds an entry, so do not keep one across those calls.
  peer* find(const protocol::client_id& id);
  peer* find_by_name(std::string_view name);
  // The entry for id, created empty if absent.
  peer& upsert(const protocol::client_id& id);
  // Records a name learnt from the server; a name is unique, so any other entry holding it
  // loses it (that user re-registered under a new ID).
  void set_name(const protocol::client_id& id, const std::string& name);
  const std::vector<peer>& peers() const { return peers_; }

  // File format, one line per peer: "<id hex> <public key Base64 or -> <key hex or -> <name>".
  std::string serialize() const;
  // Parses serialize()'s output; throws config_error("line N: ...") on malformed lines.
  static std::vector<peer> parse(std::string_view text);

 private:
  std::filesystem::path path_;
  std::vector<peer> peers_;
};

}  // namespace letterbox::client
