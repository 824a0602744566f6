// The keyring: what this client knows about its peers (ID, name, public key, symmetric key)
// and the pinned keys of v2 peers, kept in keyring.info next to me.info so conversations and
// pins survive restarts.
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

inline constexpr std::size_t v2_key_size = 32;  // Ed25519 identity and X25519 agreement keys
using v2_public_key = std::array<std::uint8_t, v2_key_size>;

// A v2 peer's keys as first seen and checked (docs/PROTOCOL.md §14, §16): pinned to its name.
// A later directory answer with another identity key for that name is refused until the user
// accepts it (replace_pin, through `client trust NAME`).
struct pin {
  std::string name;
  protocol::client_id id{};
  v2_public_key identity_key{};
  v2_public_key agreement_key{};
  protocol::public_key legacy_key{};
  bool operator==(const pin&) const = default;
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

  // The pin of a name, or of an ID; nullptr when none.
  const pin* find_pin(std::string_view name) const;
  const pin* find_pin(const protocol::client_id& id) const;
  // Pins p (first use, or the user accepted a change): any pin with p's name or p's ID is
  // replaced. The caller saves.
  void replace_pin(const pin& p);
  const std::vector<pin>& pins() const { return pins_; }

  // File format, one line per peer: "<id hex> <public key Base64 or -> <key hex or -> <name>",
  // and one per pin: "pin <id hex> <identity key hex> <agreement key hex> <legacy key Base64> <name>".
  // Files written before pins existed (no pin lines) load unchanged.
  std::string serialize() const;
  struct contents {
    std::vector<peer> peers;
    std::vector<pin> pins;
  };
  // Parses serialize()'s output; throws config_error("line N: ...") on malformed lines.
  static contents parse(std::string_view text);

 private:
  std::filesystem::path path_;
  std::vector<peer> peers_;
  std::vector<pin> pins_;
};

}  // namespace letterbox::client
