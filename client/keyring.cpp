// Keyring file I/O and lookups (see keyring.hpp for the format and contracts).
#include "keyring.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace letterbox::client {
namespace {

constexpr std::string_view header_line =
    "# Letterbox keyring v2: <client ID hex> <public key Base64|-> <symmetric key hex|-> <name>\n"
    "# pin <client ID hex> <identity key hex> <agreement key hex> <legacy key Base64> <name>";
constexpr std::string_view pin_prefix = "pin ";

// The first n space-separated fields of line; line keeps the rest (the name, which may hold
// spaces). Throws config_error when there are fewer.
template <std::size_t N>
std::array<std::string_view, N> split_fields(std::string_view& line, std::size_t expected_total) {
  std::array<std::string_view, N> fields;
  for (auto& field : fields) {
    const auto space = line.find(' ');
    if (space == std::string_view::npos)
      throw config_error("expected " + std::to_string(expected_total) + " space-separated fields");
    field = line.substr(0, space);
    line.remove_prefix(space + 1);
  }
  return fields;
}
constexpr std::string_view absent = "-";

template <std::size_t N>
std::array<std::uint8_t, N> fixed_bytes(const byte_buffer& bytes, const char* what) {
  if (bytes.size() != N) throw config_error(std::string(what) + " has the wrong length");
  std::array<std::uint8_t, N> out{};
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

byte_buffer from_hex(std::string_view hex, const char* what) {
  auto bytes = protocol::from_hex(hex);
  if (!bytes) throw config_error(std::string(what) + " is not hex");
  return std::move(*bytes);
}

}  // namespace

keyring keyring::load(const std::filesystem::path& dir) {
  keyring ring;
  ring.path_ = dir / keyring_file;
  std::ifstream in(ring.path_);
  if (!in) {
    if (std::filesystem::exists(ring.path_)) throw config_error(ring.path_.string() + ": cannot be read");
    return ring;
  }
  std::ostringstream text;
  text << in.rdbuf();
  try {
    auto parsed = parse(text.str());
    ring.peers_ = std::move(parsed.peers);
    ring.pins_ = std::move(parsed.pins);
  } catch (const config_error& e) {
    throw config_error(ring.path_.string() + ": " + e.what());
  }
  return ring;
}

void keyring::save() const { write_private_file(path_, serialize(), true); }

peer* keyring::find(const protocol::client_id& id) {
  auto it = std::find_if(peers_.begin(), peers_.end(), [&](const peer& p) { return p.id == id; });
  return it == peers_.end() ? nullptr : &*it;
}

peer* keyring::find_by_name(std::string_view name) {
  auto it = std::find_if(peers_.begin(), peers_.end(), [&](const peer& p) { return !name.empty() && p.name == name; });
  return it == peers_.end() ? nullptr : &*it;
}

peer& keyring::upsert(const protocol::client_id& id) {
  if (auto* existing = find(id)) return *existing;
  peers_.push_back(peer{id, {}, {}, {}});
  return peers_.back();
}

void keyring::set_name(const protocol::client_id& id, const std::string& name) {
  for (auto& p : peers_)
    if (p.name == name && p.id != id) p.name.clear();
  upsert(id).name = name;
}

const pin* keyring::find_pin(std::string_view name) const {
  auto it = std::find_if(pins_.begin(), pins_.end(), [&](const pin& p) { return p.name == name; });
  return it == pins_.end() ? nullptr : &*it;
}

const pin* keyring::find_pin(const protocol::client_id& id) const {
  auto it = std::find_if(pins_.begin(), pins_.end(), [&](const pin& p) { return p.id == id; });
  return it == pins_.end() ? nullptr : &*it;
}

void keyring::replace_pin(const pin& p) {
  std::erase_if(pins_, [&](const pin& q) { return q.name == p.name || q.id == p.id; });
  pins_.push_back(p);
}

std::string keyring::serialize() const {
  std::string out(header_line);
  out += '\n';
  for (const auto& p : peers_) {
    out += protocol::to_hex(p.id);
    out += ' ';
    out += p.public_key ? base64_encode(*p.public_key) : std::string(absent);
    out += ' ';
    out += p.shared_key ? protocol::to_hex(*p.shared_key) : std::string(absent);
    out += ' ';
    out += p.name;
    out += '\n';
  }
  for (const auto& p : pins_) {
    out += pin_prefix;
    out += protocol::to_hex(p.id) + ' ' + protocol::to_hex(p.identity_key) + ' ' + protocol::to_hex(p.agreement_key) + ' ' +
           base64_encode(p.legacy_key) + ' ' + p.name + '\n';
  }
  return out;
}

keyring::contents keyring::parse(std::string_view text) {
  contents result;
  auto& peers = result.peers;
  std::size_t line_number = 0;
  while (!text.empty()) {
    const auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    try {
      if (line.starts_with(pin_prefix)) {
        line.remove_prefix(pin_prefix.size());
        const auto fields = split_fields<4>(line, 6);
        pin p;
        const auto id = protocol::client_id_from_hex(fields[0]);
        if (!id) throw config_error("pin: client ID is not 32 hex characters");
        p.id = *id;
        p.identity_key = fixed_bytes<v2_key_size>(from_hex(fields[1], "pin: identity key"), "pin: identity key");
        p.agreement_key = fixed_bytes<v2_key_size>(from_hex(fields[2], "pin: agreement key"), "pin: agreement key");
        try {
          p.legacy_key = fixed_bytes<protocol::public_key_size>(base64_decode(fields[3]), "pin: legacy key");
        } catch (const crypto_error& e) {
          throw config_error(std::string("pin: legacy key: ") + e.what());
        }
        p.name = std::string(line);
        protocol::validate_name(p.name);
        if (std::any_of(result.pins.begin(), result.pins.end(), [&](const pin& q) { return q.id == p.id || q.name == p.name; }))
          throw config_error("pin: client ID or name pinned twice");
        result.pins.push_back(std::move(p));
        continue;
      }
      const auto fields = split_fields<3>(line, 4);
      peer p;
      const auto id = protocol::client_id_from_hex(fields[0]);
      if (!id) throw config_error("client ID is not 32 hex characters");
      p.id = *id;
      if (fields[1] != absent) {
        try {
          p.public_key = fixed_bytes<protocol::public_key_size>(base64_decode(fields[1]), "public key");
        } catch (const crypto_error& e) {
          throw config_error(std::string("public key: ") + e.what());
        }
      }
      if (fields[2] != absent)
        p.shared_key = fixed_bytes<protocol::symmetric_key_size>(from_hex(fields[2], "symmetric key"), "symmetric key");
      p.name = std::string(line);
      if (!p.name.empty()) protocol::validate_name(p.name);
      if (std::any_of(peers.begin(), peers.end(), [&](const peer& q) { return q.id == p.id; }))
        throw config_error("client ID appears twice");
      peers.push_back(std::move(p));
    } catch (const std::exception& e) {  // config_error or protocol_error from the name check
      throw config_error("line " + std::to_string(line_number) + ": " + e.what());
    }
  }
  return result;
}

}  // namespace letterbox::client
