// Client operations (see operations.hpp): v1 with one connection per request; v2 over one
// persistent authenticated session; keys and pins kept in the keyring.
#include "operations.hpp"

#include <poll.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include <algorithm>
#include <fstream>

#include "agreement.hpp"
#include "downloads.hpp"
#include "envelope.hpp"
#include "envelope_receiving.hpp"
#include "identity.hpp"
#include "messages_live.hpp"
#include "operation_support.hpp"
#include "safety_number.hpp"
#include "terminal_text.hpp"

namespace letterbox::client {
namespace {

using kind = client_error::kind;
namespace proto = letterbox::protocol;
namespace v2 = letterbox::protocol::v2;

constexpr std::uint32_t max_client_list_payload = 16u << 20;
constexpr std::uint64_t max_file_ciphertext = proto::max_payload_size - proto::send_message_prefix_size;

using detail::discard;     // operation_support.hpp
using detail::translated;

// Reads size bytes of AES-CBC ciphertext from link in chunks and passes each piece of
// plaintext to sink, so memory stays at one chunk whatever the size. All size bytes are
// consumed before it throws crypto_error (bad length or padding: wrong key); connection_error
// may come at any point.
template <typename Sink>
void decrypt_from(connection& link, std::uint64_t size, const symmetric_key& key, Sink&& sink,
                  const progress_callback& progress) {
  aes_stream_decryptor decryptor(key);
  proto::byte_buffer chunk(std::min<std::uint64_t>(size, file_chunk_size)), plain;
  plain.reserve(chunk.size() + proto::aes_block_size);
  for (std::uint64_t done = 0; done < size;) {
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), size - done));
    link.read(std::span(chunk.data(), take));
    done += take;
    plain.clear();
    decryptor.update(std::span(chunk.data(), take), plain);
    sink(proto::bytes_view(plain));
    if (progress) progress(done, size);
  }
  plain.clear();
  decryptor.finish(plain);
  sink(proto::bytes_view(plain));
}

// A v1 file carries no name: "letterbox-<sender>-<message ID>", the sender's name made safe
// (its slashes too: it is part of one file name).
std::string v1_download_name(std::string sender, std::uint32_t message_id) {
  std::replace(sender.begin(), sender.end(), '/', '_');
  std::replace(sender.begin(), sender.end(), '\\', '_');
  return safe_file_name("letterbox-" + sender.substr(0, 60) + "-" + std::to_string(message_id));
}

// The symmetric key shared with target (known by name); throws client_error(missing_key).
const symmetric_key& require_shared_key(const peer& target, const std::string& name) {
  if (!target.shared_key)
    throw client_error(kind::missing_key, "no symmetric key for " + name +
                                              " yet: send yours (52) or request theirs (51) first");
  return *target.shared_key;
}

constexpr auto error_code = static_cast<std::uint16_t>(proto::response_code::error);

// Reads the response header and checks its code: 9000 → server_error, anything other than
// expected → network error. Returns the header (payload not yet read).
proto::response_header expect_response(connection& link, proto::response_code expected) {
  const auto response = link.read_response_header();
  if (response.code == error_code) throw client_error(kind::server_error, "server responded with an error");
  if (response.code != static_cast<std::uint16_t>(expected))
    throw client_error(kind::network, "unexpected response code " + std::to_string(response.code) + " from the server");
  return response;
}

}  // namespace

client_operations::client_operations(client_options options) : options_(std::move(options)) {
  translated([&] {
    keys_ = keyring::load(options_.directory);
    if (std::filesystem::exists(options_.directory / me_info_file)) {
      try {
        me_ = read_me_info(options_.directory);
        me_v2_ = read_me_v2(options_.directory);
        if (me_v2_ && crypto::derive_client_id(crypto::public_key_of(me_v2_->identity)) != me_->id)
          throw config_error((options_.directory / me_v2_file).string() +
                             ": its identity key does not belong to the client ID in me.info");
      } catch (const config_error& e) {
        me_.reset();
        me_v2_.reset();
        me_problem_ = e.what();
      }
    }
  });
}

client_operations::~client_operations() = default;

const std::string& client_operations::my_name() const {
  static const std::string none;
  return me_ ? me_->name : none;
}

proto::client_id client_operations::my_id() {
  return translated([&] { return me().id; });
}

const identity& client_operations::me() {
  if (me_) return *me_;
  if (!me_problem_.empty()) throw client_error(kind::local_file, me_problem_);
  throw client_error(kind::not_registered, "not registered yet: choose 1) Register first (" +
                                               (options_.directory / me_info_file).string() + " not found)");
}

std::filesystem::path client_operations::download_directory() const {
  return options_.download_directory.empty() ? options_.directory / "downloads" : options_.download_directory;
}

std::unique_ptr<connection> client_operations::connect() {
  return std::make_unique<connection>(read_server_info(options_.directory), options_.io_timeout);
}

// ------------------------------------------------------------------------- v2 session

// Decides the protocol on the first use (HELLO), and opens a new session after the previous
// one was dropped. A server in servers.v2 that answers as a v1-only server is refused
// (kind::downgrade) unless allow_v1; otherwise the fallback is announced once.
void client_operations::negotiate() {
  // The server closes a connection left idle longer than its --timeout (a user at the menu):
  // start a new session instead of failing the next request.
  if (session_ && session_->link().peer_closed()) drop_session();
  if (wire_ == wire::v1 || (wire_ == wire::v2 && session_)) return;
  if (options_.protocol == client_options::protocol_choice::v1) {
    wire_ = wire::v1;
    return;
  }
  const auto server = read_server_info(options_.directory);
  auto fresh = std::make_unique<v2_session>(server, options_.io_timeout);
  if (fresh->hello() == v2_session::hello_result::v1_only) {
    if (!options_.allow_v1 && (wire_ == wire::v2 || is_known_v2_server(options_.directory, server)))
      throw client_error(kind::downgrade,
                         "server " + server_key(server) + " spoke protocol v2 before (" +
                             (options_.directory / servers_v2_file).string() +
                             ") and now answers as a v1-only server: refusing to fall back to v1, which is what a "
                             "downgrade attack looks like (--allow-v1 allows it for one run)");
    if (options_.notice)
      options_.notice("server " + server_key(server) +
                      " speaks only protocol v1: falling back to v1 (no authentication, no tamper detection)");
    wire_ = wire::v1;
    return;
  }
  remember_v2_server(options_.directory, server);
  wire_ = wire::v2;
  session_ = std::move(fresh);
}

bool client_operations::speaks_v2() {
  return translated([&] {
    negotiate();
    if (wire_ != wire::v2) return false;
    if (me_ && !me_v2_) {  // a v1 registration: it has no key to authenticate with
      if (!v1_identity_noted_ && options_.notice)
        options_.notice("this identity was registered with protocol v1 (no " + std::string(me_v2_file) +
                        "): using v1 requests; register anew in another directory for v2");
      v1_identity_noted_ = true;
      return false;
    }
    return true;
  });
}

v2_session& client_operations::session() {
  negotiate();
  if (wire_ != wire::v2 || !session_) throw client_error(kind::network, "no protocol v2 session");
  if (!session_->authenticated()) {
    const auto& who = me();
    if (!me_v2_) throw client_error(kind::not_registered, "no v2 identity (" + std::string(me_v2_file) + ")");
    try {
      session_->authenticate(who.id, me_v2_->identity);
    } catch (...) {
      drop_session();  // the server closes after a failed AUTH
      throw;
    }
  }
  return *session_;
}

void client_operations::drop_session() noexcept { session_.reset(); }

void client_operations::disconnect() { drop_session(); }

template <typename Body>
auto client_operations::on_session(Body&& body) -> decltype(body(std::declval<v2_session&>())) {
  auto& link = session();
  try {
    return body(link);
  } catch (const connection_error&) {
    drop_session();  // the stream is broken or out of step: the next operation reconnects
    throw;
  } catch (const proto::protocol_error&) {
    drop_session();
    throw;
  } catch (const v2_server_error&) {
    drop_session();  // the server may have closed (a refused large request)
    throw;
  }
}

namespace {

[[noreturn]] void refuse_keys(const std::string& why) { throw client_error(kind::key_refused, why); }

}  // namespace

std::optional<pin> client_operations::checked_keys(v2_session& link, const proto::client_id& id,
                                                   std::string_view expected_name, bool against_pin) {
  const auto response = v2::decode_keys_payload(link.exchange(
      v2::request_code::get_keys, v2::encode_keys_request({id}), v2::response_code::keys, v2::keys_response_size));
  const auto hex = proto::to_hex(id);
  if (response.id != id) refuse_keys("the server answered with the keys of another client than " + hex);
  const bool is_v2 = (response.flags & v2::client_flag_v2) != 0;
  std::erase_if(kinds_, [&](const auto& k) { return k.first == id; });
  kinds_.emplace_back(id, is_v2 ? peer_kind::v2 : peer_kind::legacy);
  const auto& shown = response.name;  // messages hold names raw: the front ends escape what they print
  if (!is_v2) {
    if (const auto* p = keys_.find_pin(id))  // a pinned v2 peer turned "legacy": keys removed
      refuse_keys("the server now says " + p->name +
                  " is a legacy client without an identity key; its pinned key is kept: refused");
    // A legacy client under the name of a pinned v2 peer (§16: another ID for the name).
    for (const std::string_view pinned_name : {std::string_view(response.name), expected_name})
      if (const auto* p = pinned_name.empty() ? nullptr : keys_.find_pin(pinned_name))
        refuse_keys("the server now gives a legacy client " + hex + " for " + p->name +
                    ", a v2 peer pinned with ID " + proto::to_hex(p->id) + ": refused");
    keys_.set_name(id, response.name);
    keys_.upsert(id).public_key = response.legacy;
    keys_.save();
    return std::nullopt;
  }
  if (crypto::derive_client_id(response.identity) != id)
    refuse_keys("the identity key the server gave for " + shown + " does not belong to its client ID " + hex +
                ": refused (were its keys replaced on the server?)");
  if (!crypto::verify(response.identity, crypto::labels::keys,
                      {proto::encode_name(response.name), response.agreement, response.legacy}, response.key_signature))
    refuse_keys("the key signature of " + shown + " does not verify: refused (were its keys replaced on the server?)");
  if (!expected_name.empty() && response.name != expected_name)
    refuse_keys("the server gave the keys of " + shown + " when asked for " + std::string(expected_name));
  pin fresh{response.name, id, response.identity, response.agreement, response.legacy};
  if (!against_pin) return fresh;
  const auto* by_name = keys_.find_pin(response.name);
  const auto* by_id = keys_.find_pin(id);
  if ((by_name && *by_name != fresh) || (by_id && *by_id != fresh))
    refuse_keys("the key of " + shown + " changed: refused. `client trust " + shown +
                "` (menu 7) shows the pinned and the new safety numbers; accept the new key only after comparing "
                "the new number with " + shown + "'s over another channel");
  if (!by_name) keys_.replace_pin(fresh);  // first use
  keys_.set_name(id, response.name);
  keys_.upsert(id).public_key = response.legacy;
  keys_.save();
  return fresh;
}

const pin& client_operations::peer_pin(const std::string& name) {
  const auto id = resolve(name).id;
  const auto* known = keys_.find_pin(name);
  const bool checked = std::find(checked_this_run_.begin(), checked_this_run_.end(), id) != checked_this_run_.end();
  if (!(known && known->id == id && checked)) {
    const auto keys = on_session([&](v2_session& link) { return checked_keys(link, id, name); });
    if (!keys) throw client_error(kind::invalid_input, name + " is a legacy v1 client");
    checked_this_run_.push_back(id);
  }
  return *keys_.find_pin(name);
}

std::optional<pin> client_operations::sender_keys(const proto::client_id& sender, std::string& why, bool& transient) {
  if (const auto* known = keys_.find_pin(sender)) return *known;
  try {
    if (!lookup_session_) {  // the main connection is in the middle of the PULL response
      auto fresh = std::make_unique<v2_session>(read_server_info(options_.directory), options_.io_timeout);
      if (fresh->hello() != v2_session::hello_result::v2) throw connection_error("the server stopped speaking v2");
      fresh->authenticate(me().id, me_v2_->identity);
      lookup_session_ = std::move(fresh);
    }
    auto keys = checked_keys(*lookup_session_, sender, {});
    if (!keys) why = "a sealed envelope from a legacy client, which has no identity key";
    return keys;
  } catch (const client_error& e) {
    why = e.what();
  } catch (const v2_server_error& e) {
    lookup_session_.reset();
    why = std::string("the sender's keys are not available: ") + e.what();
  } catch (const std::exception& e) {  // connection_error, protocol_error, config_error
    lookup_session_.reset();
    why = std::string("the sender's keys could not be fetched: ") + e.what() + " (kept for the next pull)";
    transient = true;
  }
  return std::nullopt;
}

// ------------------------------------------------------------------------- v1 requests

proto::request_header client_operations::header_for(proto::request_code code, std::uint64_t payload_size) {
  proto::request_header header;
  if (code != proto::request_code::register_client) header.client = me().id;  // 100: zeros
  header.code = static_cast<std::uint8_t>(code);
  if (payload_size > proto::max_payload_size)
    throw client_error(kind::invalid_input, "request of " + std::to_string(payload_size) +
                                                " bytes is too large for the protocol's u32 size field");
  header.payload_size = static_cast<std::uint32_t>(payload_size);
  return header;
}

proto::byte_buffer client_operations::exchange(proto::request_code code, proto::bytes_view payload,
                                               proto::response_code expected, std::uint32_t max_response) {
  const auto header = header_for(code, payload.size());
  auto link = connect();
  link->send_request(header, payload);
  const auto response = expect_response(*link, expected);
  return link->read_payload(response.payload_size, max_response);
}

// ------------------------------------------------------------------------- operations

void client_operations::register_user(const std::string& name) {
  translated([&] {
    if (me_ || std::filesystem::exists(options_.directory / me_info_file))
      throw client_error(kind::already_registered, "already registered: " +
                                                       (options_.directory / me_info_file).string() +
                                                       " exists; refusing to register again");
    try {
      proto::validate_name(name);
    } catch (const proto::protocol_error& e) {
      throw client_error(kind::invalid_input, std::string("invalid name: ") + e.what());
    }
    // Fail before the server reserves the name if me.info could not be written afterwards.
    if (::access(options_.directory.c_str(), W_OK) != 0)
      throw client_error(kind::local_file, options_.directory.string() + ": directory is not writable, cannot create me.info");
    if (std::filesystem::exists(options_.directory / me_v2_file))
      throw client_error(kind::local_file, (options_.directory / me_v2_file).string() +
                                               " exists without me.info: move it away before registering");
    auto key = private_key::generate();
    if (speaks_v2()) {
      v2_secrets secrets{crypto::generate_identity(), crypto::generate_agreement_secret()};
      const auto derived = crypto::derive_client_id(crypto::public_key_of(secrets.identity));
      negotiate();
      const auto given = [&] {
        try {
          return session_->register_client(name, secrets.identity, crypto::agreement_public_of(secrets.agreement),
                                           key.public_key());
        } catch (...) {
          drop_session();  // the server closes after a refused REGISTER
          throw;
        }
      }();
      if (given != derived)
        throw client_error(kind::network, "the server gave the ID " + proto::to_hex(given) +
                                              ", not the one derived from our identity key");
      write_me_v2(options_.directory, secrets);
      write_me_info(options_.directory, identity{name, given, std::move(key)});
      me_ = read_me_info(options_.directory);
      me_v2_ = secrets;
      me_problem_.clear();
      return;
    }
    const auto payload = proto::encode_register_request({name, key.public_key()});
    const auto reply = exchange(proto::request_code::register_client, payload, proto::response_code::registered,
                                proto::client_id_size);
    identity registered{name, proto::decode_registered_payload(reply), std::move(key)};
    write_me_info(options_.directory, registered);
    me_ = std::move(registered);
    me_problem_.clear();
  });
}

std::vector<directory_entry> client_operations::list_clients() {
  return translated([&] {
    me();  // not registered: say so before any network use
    std::vector<directory_entry> clients;
    if (speaks_v2()) {
      const auto reply = on_session([&](v2_session& link) {
        return link.exchange(v2::request_code::list_clients, {}, v2::response_code::client_list, max_client_list_payload);
      });
      kinds_.clear();
      for (const auto& entry : v2::decode_client_list_payload(reply)) {
        auto kind_of_entry = (entry.flags & v2::client_flag_v2) ? peer_kind::v2 : peer_kind::legacy;
        // A pinned v2 peer stays v2 whatever the list says (§16); kind_of() treats a pinned
        // name as v2 too, so the KEYS check against the pin comes before anything is sent.
        if (keys_.find_pin(entry.id) || keys_.find_pin(entry.name)) kind_of_entry = peer_kind::v2;
        clients.push_back({entry.id, entry.name, kind_of_entry, std::nullopt, 0});
        kinds_.emplace_back(entry.id, kind_of_entry);
      }
      // Presence, where the server has live delivery (a server without it answers the unknown
      // code with the v1 error: no presence then, the list stands).
      try {
        const auto presence = on_session([&](v2_session& link) {
          return link.exchange(static_cast<v2::request_code>(proto::live::request_code::presence), {},
                               static_cast<v2::response_code>(proto::live::response_code::presence),
                               max_client_list_payload);
        });
        for (const auto& p : proto::live::decode_presence_payload(presence)) {
          if (!(p.flags & proto::live::presence_flag_v2)) continue;
          for (auto& c : clients)
            if (c.id == p.id) {
              c.online = (p.flags & proto::live::presence_flag_online) != 0;
              c.last_seen = p.last_seen;
            }
        }
      } catch (const v2_server_error&) {
      }
    } else {
      const auto reply = exchange(proto::request_code::list_clients, {}, proto::response_code::client_list,
                                  max_client_list_payload);
      for (const auto& entry : proto::decode_client_list_payload(reply)) clients.push_back({entry.id, entry.name, peer_kind::unknown, std::nullopt, 0});
    }
    for (const auto& client : clients) keys_.set_name(client.id, client.name);
    keys_.save();
    return clients;
  });
}

peer& client_operations::resolve(const std::string& name) {
  if (auto* known = keys_.find_by_name(name)) return *known;
  list_clients();  // maybe a user we have not seen yet
  if (auto* known = keys_.find_by_name(name)) return *known;
  throw client_error(kind::unknown_user, "no user named \"" + name + "\" on the server");
}

peer_kind client_operations::kind_of(const std::string& name) {
  return translated([&] {
    me();  // not registered: say so before any network use
    if (!speaks_v2()) return peer_kind::unknown;
    const auto find = [&](const proto::client_id& id) {
      auto it = std::find_if(kinds_.begin(), kinds_.end(), [&](const auto& k) { return k.first == id; });
      return it == kinds_.end() ? std::optional<peer_kind>{} : it->second;
    };
    // A pinned name or ID is a v2 peer whatever the server says (§16): sealed only, and the
    // KEYS check against the pin comes before anything is sent.
    const auto pinned = [&](const proto::client_id& id) { return keys_.find_pin(name) || keys_.find_pin(id); };
    auto id = resolve(name).id;
    if (auto known = find(id)) return pinned(id) ? peer_kind::v2 : *known;
    list_clients();  // the kinds come with the list (once a run), and a name may have moved
    id = resolve(name).id;
    if (auto known = find(id)) return pinned(id) ? peer_kind::v2 : *known;
    throw client_error(kind::unknown_user, "no user named \"" + name + "\" on the server");
  });
}

proto::public_key client_operations::request_public_key(const std::string& name) {
  return translated([&] {
    me();  // not registered: say so before any network use
    if (speaks_v2()) {
      const auto id = resolve(name).id;
      const auto keys = on_session([&](v2_session& link) { return checked_keys(link, id, name); });
      if (keys) {
        checked_this_run_.push_back(id);
        return keys->legacy_key;
      }
      return *keys_.find(id)->public_key;  // a legacy peer: stored by checked_keys
    }
    auto& target = resolve(name);
    const auto payload = proto::encode_get_public_key_request({target.id});
    const auto reply = exchange(proto::request_code::get_public_key, payload, proto::response_code::public_key,
                                proto::public_key_response_size);
    const auto response = proto::decode_public_key_payload(reply);
    if (response.id != target.id) throw client_error(kind::network, "server returned the key of another client");
    target.public_key = response.key;
    keys_.save();
    return response.key;
  });
}

std::string client_operations::safety_number(const std::string& name) {
  return translated([&] {
    if (!speaks_v2()) throw client_error(kind::invalid_input, "safety numbers need protocol v2 (a v2 server and identity)");
    if (kind_of(name) != peer_kind::v2)
      throw client_error(kind::invalid_input, name + " is a legacy v1 client: it has no identity key");
    return crypto::safety_number(crypto::public_key_of(me_v2_->identity), peer_pin(name).identity_key);
  });
}

client_operations::key_change client_operations::inspect_keys(const std::string& name) {
  return translated([&] {
    if (!speaks_v2()) throw client_error(kind::invalid_input, "pinned keys need protocol v2 (a v2 server and identity)");
    list_clients();  // the name's current ID
    const auto id = resolve(name).id;
    auto current = on_session([&](v2_session& link) { return checked_keys(link, id, name, false); });
    if (!current) throw client_error(kind::invalid_input, name + " is a legacy v1 client: it has no identity key");
    key_change change;
    change.current = *current;
    const auto mine = crypto::public_key_of(me_v2_->identity);
    change.new_number = crypto::safety_number(mine, current->identity_key);
    if (const auto* pinned = keys_.find_pin(name)) {
      change.pinned = *pinned;
      change.old_number = crypto::safety_number(mine, pinned->identity_key);
    }
    return change;
  });
}

void client_operations::trust(const key_change& change) {
  translated([&] {
    keys_.replace_pin(change.current);
    keys_.set_name(change.current.id, change.current.name);
    keys_.upsert(change.current.id).public_key = change.current.legacy_key;
    keys_.save();
    checked_this_run_.push_back(change.current.id);
  });
}

// Sends one message: the 21-byte prefix, then write_content writes exactly content_size bytes
// to the link (streamed or at once). v2: 205 on the session; v1: 103 on its own connection.
std::uint32_t client_operations::deliver(const proto::client_id& to, std::uint8_t type, std::uint64_t content_size,
                                         const std::function<void(connection&)>& write_content) {
  if (content_size > proto::max_payload_size - proto::send_message_prefix_size)
    throw client_error(kind::invalid_input, "content of " + std::to_string(content_size) +
                                                " bytes is too large for the protocol (limit about 4 GiB)");
  const auto prefix = proto::encode_send_message_prefix({to, type, static_cast<std::uint32_t>(content_size)});
  const auto payload_size = proto::send_message_prefix_size + content_size;
  if (speaks_v2()) {
    return on_session([&](v2_session& link) {
      link.send_front(v2::request_code::send_message, payload_size, prefix);
      try {
        write_content(link.link());
      } catch (const connection_error&) {
        link.expect(v2::response_code::message_sent);  // the server refused early (9000, then close)?
        throw;
      }
      return v2::decode_message_sent_payload(
                 link.link().read_payload(link.expect(v2::response_code::message_sent), proto::message_sent_response_size))
          .message_id;
    });
  }
  const auto header = header_for(proto::request_code::send_message, payload_size);
  auto link = connect();
  link->send_request(header, prefix);
  try {
    write_content(*link);
  } catch (const connection_error&) {
    // The server may have refused the request early (9000, then close); report that if so.
    bool refused = false;
    try {
      refused = link->read_response_header().code == error_code;
    } catch (const std::exception&) {
    }
    if (refused) throw client_error(kind::server_error, "server responded with an error");
    throw;
  }
  const auto response = expect_response(*link, proto::response_code::message_sent);
  return proto::decode_message_sent_payload(link->read_payload(response.payload_size, proto::message_sent_response_size))
      .message_id;
}

std::uint32_t client_operations::send_message(const peer& to, proto::message_type type, proto::bytes_view content) {
  return deliver(to.id, static_cast<std::uint8_t>(type), content.size(), [&](connection& link) { link.write(content); });
}

std::uint32_t client_operations::send_raw_v2(const std::string& name, std::uint8_t type, proto::bytes_view content) {
  return translated([&] {
    if (!speaks_v2()) throw client_error(kind::invalid_input, "not a protocol v2 session");
    const auto id = resolve(name).id;
    return deliver(id, type, content.size(), [&](connection& link) { link.write(content); });
  });
}

namespace {

std::string not_needed(const std::string& name) {
  return name + " is a v2 peer: no key exchange is needed, messages to it are sealed automatically";
}

}  // namespace

std::uint32_t client_operations::request_symmetric_key(const std::string& name) {
  return translated([&] {
    if (kind_of(name) == peer_kind::v2) throw client_error(kind::invalid_input, not_needed(name));
    return send_message(resolve(name), proto::message_type::symmetric_key_request, {});
  });
}

std::uint32_t client_operations::send_symmetric_key(const std::string& name) {
  return translated([&] {
    if (kind_of(name) == peer_kind::v2) throw client_error(kind::invalid_input, not_needed(name));
    auto* target = &resolve(name);
    if (!target->public_key) {
      request_public_key(name);
      target = &resolve(name);
    }
    const auto key = target->shared_key.value_or(generate_symmetric_key());
    const auto sealed = rsa_encrypt(*target->public_key, key);
    const auto id = send_message(*target, proto::message_type::symmetric_key, sealed);
    target = &resolve(name);
    target->shared_key = key;
    keys_.save();
    return id;
  });
}

std::uint32_t client_operations::send_text(const std::string& name, std::string_view text) {
  return translated([&] {
    if (aes_ciphertext_size(text.size() + 1) > max_text_in_memory)  // before any network use
      throw client_error(kind::invalid_input, "text is too long (receivers show at most " +
                                                  std::to_string(max_text_in_memory >> 20) + " MiB): send it as a file (50)");
    if (kind_of(name) == peer_kind::v2) {
      const pin to = peer_pin(name);
      std::vector<std::uint8_t> sealed;
      try {
        sealed = crypto::seal_text(me_v2_->identity, me().id, to.id, to.agreement_key, text);
      } catch (const std::invalid_argument& e) {
        throw client_error(kind::invalid_input, std::string("this text cannot be sent: ") + e.what());
      }
      return deliver(to.id, static_cast<std::uint8_t>(v2::message_type::sealed_text), sealed.size(),
                     [&](connection& link) { link.write(sealed); });
    }
    const auto& target = resolve(name);
    const auto& key = require_shared_key(target, name);
    proto::byte_buffer plaintext(text.begin(), text.end());
    plaintext.push_back(0);  // legacy clients expect a trailing NUL
    return send_message(target, proto::message_type::text, aes_encrypt(key, plaintext));
  });
}

namespace {

// Sealed bytes straight to the socket (the envelope writer hands over one chunk at a time).
class link_sink final : public crypto::byte_sink {
 public:
  explicit link_sink(connection& link) : link_(link) {}
  void write(crypto::bytes_view bytes) override { link_.write(bytes); }

 private:
  connection& link_;
};

// The name a sealed file carries: the base name of the path, at most 255 bytes (cut on a
// character boundary). The receiver makes it safe again; this only keeps it within the format.
std::string envelope_file_name(const std::filesystem::path& file) {
  return std::string(utf8_prefix(file.filename().string(), crypto::max_name_size));
}

}  // namespace

std::uint32_t client_operations::send_file(const std::string& name, const std::filesystem::path& file,
                                           const progress_callback& progress) {
  return translated([&] {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) throw client_error(kind::file_not_found, "file not found");
    std::ifstream in(file, std::ios::binary);
    if (!in) throw client_error(kind::file_not_found, "file not found");
    const std::uint64_t size = std::filesystem::file_size(file);
    proto::byte_buffer chunk(file_chunk_size), out;
    // Reads the whole file in chunks, handing each to consume; throws if the file shrank.
    const auto stream_file = [&](const std::function<void(proto::bytes_view)>& consume) {
      for (std::uint64_t done = 0; done < size;) {
        const auto want = static_cast<std::streamsize>(std::min<std::uint64_t>(chunk.size(), size - done));
        in.read(reinterpret_cast<char*>(chunk.data()), want);
        if (in.gcount() != want)  // the file shrank: abort; the server stores nothing
          throw client_error(kind::local_file, file.string() + ": file changed while it was being sent");
        consume(std::span(chunk.data(), static_cast<std::size_t>(want)));
        done += static_cast<std::uint64_t>(want);
        if (progress) progress(done, size);
      }
      if (progress && size == 0) progress(0, 0);
    };

    if (kind_of(name) == peer_kind::v2) {
      const pin to = peer_pin(name);
      crypto::seal_request request;
      request.sender = me().id;
      request.recipient = to.id;
      request.recipient_key = to.agreement_key;
      request.type = crypto::envelope_type::file;
      request.name = envelope_file_name(file);
      request.body_size = size;
      std::optional<crypto::envelope_writer> writer;
      try {
        writer.emplace(me_v2_->identity, request);
      } catch (const std::invalid_argument& e) {
        throw client_error(kind::invalid_input, std::string("this file cannot be sent: ") + e.what());
      }
      if (writer->content_size() > v2::max_content_size)
        throw client_error(kind::invalid_input, "file is too large for the protocol (limit about 4 GiB)");
      return deliver(to.id, static_cast<std::uint8_t>(v2::message_type::sealed_file), writer->content_size(),
                     [&](connection& link) {
                       link_sink sink(link);
                       writer->begin(sink);
                       stream_file([&](proto::bytes_view piece) { writer->seal(piece, sink); });
                       writer->finish(sink);
                     });
    }

    const auto& target = resolve(name);
    const auto& key = require_shared_key(target, name);
    const auto ciphertext_size = aes_ciphertext_size(size);
    if (ciphertext_size > max_file_ciphertext)
      throw client_error(kind::invalid_input, "file is too large for the protocol (limit about 4 GiB)");
    out.reserve(file_chunk_size + proto::aes_block_size);
    aes_stream_encryptor encryptor(key);
    return deliver(target.id, static_cast<std::uint8_t>(proto::message_type::file), ciphertext_size,
                   [&](connection& link) {
                     stream_file([&](proto::bytes_view piece) {
                       out.clear();
                       encryptor.update(piece, out);
                       link.write(out);
                     });
                     out.clear();
                     encryptor.finish(out);
                     link.write(out);
                   });
  });
}

std::string client_operations::display_name(const proto::client_id& id) {
  if (const auto* known = keys_.find(id); known && !known->name.empty()) return known->name;
  if (const auto* pinned = keys_.find_pin(id)) return pinned->name;
  return proto::to_hex(id);
}

std::size_t client_operations::pull_messages(const message_callback& on_message, const progress_callback& progress) {
  return pull(on_message, progress, true);
}

std::size_t client_operations::pull(const message_callback& on_message, const progress_callback& progress, bool ack) {
  return translated([&] {
    me();  // not registered: say so before any network use
    return speaks_v2() ? pull_v2(on_message, progress, ack) : pull_v1(on_message, progress); });
}

std::size_t client_operations::pull_v1(const message_callback& on_message, const progress_callback& progress) {
  const auto header = header_for(proto::request_code::pull_messages, 0);
  auto link = connect();
  link->send_request(header, {});
  const auto response = expect_response(*link, proto::response_code::messages);

  std::uint64_t remaining = response.payload_size;
  std::size_t count = 0;
  bool listed = false;  // at most one 101 per pull to learn unknown senders' names
  while (remaining > 0) {
    if (remaining < proto::pulled_message_header_size)
      throw client_error(kind::network, "malformed response from the server: truncated message header");
    std::array<std::uint8_t, proto::pulled_message_header_size> raw{};
    link->read(raw);
    const auto message = proto::decode_pulled_message_header(raw);
    remaining -= raw.size();
    if (message.content_size > remaining)
      throw client_error(kind::network, "malformed response from the server: content overruns the payload");
    remaining -= message.content_size;
    if (const auto* known = keys_.find(message.from); !listed && (!known || known->name.empty())) {
      listed = true;
      try {
        list_clients();  // on its own connection; the pull's connection waits meanwhile
      } catch (const client_error&) {
        // the sender is shown by its ID in hex
      }
    }
    auto received = receive_one(*link, message, progress);
    ++count;
    if (on_message) on_message(received);
  }
  return count;
}

// The entries of a 2006 (or of a live 2015, Part V) of `remaining` bytes: each handled
// (duplicates dropped by seen.v2), passed to on_message, and its ID added to `handled` unless
// it must come again; returns how many.
std::size_t client_operations::receive_v2_entries(v2_session& link, std::uint64_t remaining,
                                                  const message_callback& on_message, const progress_callback& progress,
                                                  std::vector<std::uint32_t>& handled) {
  if (!seen_) seen_ = seen_store::load(options_.directory);
  std::size_t count = 0;
  bool listed = false;  // at most one LIST per pull to learn legacy senders' names
  while (remaining > 0) {
    if (remaining < v2::pulled_message_header_size)
      throw client_error(kind::network, "malformed response from the server: truncated message header");
    std::array<std::uint8_t, v2::pulled_message_header_size> raw{};
    link.link().read(raw);
    const auto header = v2::decode_pulled_message_header(raw);
    remaining -= raw.size();
    if (header.content_size > remaining)
      throw client_error(kind::network, "malformed response from the server: content overruns the payload");
    remaining -= header.content_size;

    received_message result;
    std::optional<replay_id> replay;
    bool retry_later = false;
    const bool sealed = header.type == static_cast<std::uint8_t>(v2::message_type::sealed_text) ||
                        header.type == static_cast<std::uint8_t>(v2::message_type::sealed_file);
    if (seen_->has_message(header.message_id)) {
      discard(link.link(), header.content_size);
      result.from = header.from;
      result.sender = display_name(header.from);
      result.message_id = header.message_id;
      result.content_size = header.content_size;
      result.what = received_message::kind::duplicate;
      result.problem = "message " + std::to_string(header.message_id) + " was handled before (a redelivery)";
    } else if ((header.flags & v2::message_flag_group) || v2::is_group_message_type(header.type)) {
      result = receive_group(link.link(), header, progress, replay, retry_later);
    } else if (sealed) {
      result = receive_sealed(link.link(), header, progress, replay, retry_later);
    } else if (const auto* pinned = keys_.find_pin(header.from)) {
      // v1 contents "from" a pinned v2 peer (§16): whoever placed them (the server's
      // operator) could have sealed a key of its own to our legacy key; nothing is used.
      discard(link.link(), header.content_size);
      result.from = header.from;
      result.sender = pinned->name;
      result.message_id = header.message_id;
      result.content_size = header.content_size;
      result.what = received_message::kind::unverified;
      result.problem = "v1 content (type " + std::to_string(header.type) + ") from " + pinned->name +
                       ", a pinned v2 peer, who sends only sealed envelopes";
    } else {
      if (const auto* known = keys_.find(header.from); !listed && (!known || known->name.empty())) {
        listed = true;
        std::string ignored;
        bool also_ignored = false;
        sender_keys(header.from, ignored, also_ignored);  // KEYS: its name, and that it is legacy
      }
      result = receive_one(link.link(), {header.from, header.message_id, header.type, header.content_size}, progress);
      result.legacy_sender = true;  // types 1-4 reach a v2 mailbox only from legacy senders
    }
    ++count;
    if (on_message) on_message(result);
    if (retry_later) continue;  // not acknowledged: it comes back with a later pull
    if (result.what != received_message::kind::duplicate) seen_->add(header.message_id, replay);
    handled.push_back(header.message_id);
  }
  return count;
}

// PULL, each message handled and recorded in seen.v2, then one ACK (in batches of at most
// 65,536 IDs). The lookup session (KEYS, LIST for unknown senders) lives for this pull only.
std::size_t client_operations::pull_v2(const message_callback& on_message, const progress_callback& progress, bool ack) {
  if (!seen_) seen_ = seen_store::load(options_.directory);
  struct lookup_reset {
    std::unique_ptr<v2_session>& session;
    ~lookup_reset() { session.reset(); }
  } reset_lookup{lookup_session_};
  std::size_t count = 0;
  std::vector<std::uint32_t> handled;
  on_session([&](v2_session& link) {
    link.send_front(v2::request_code::pull_messages, 0, {});
    const std::uint64_t remaining = link.expect(v2::response_code::messages);
    count += receive_v2_entries(link, remaining, on_message, progress, handled);
    if (!ack) return;
    for (std::size_t at = 0; at < handled.size(); at += v2::max_ack_ids) {
      const auto end = std::min(handled.size(), at + v2::max_ack_ids);
      v2::ack_request request{std::vector<std::uint32_t>(handled.begin() + static_cast<std::ptrdiff_t>(at),
                                                         handled.begin() + static_cast<std::ptrdiff_t>(end))};
      link.exchange(v2::request_code::ack, v2::encode_ack_request(request), v2::response_code::acknowledged,
                    v2::ack_response_size);
    }
  });
  return count;
}

received_message client_operations::receive_sealed(connection& link, const v2::pulled_message_header& header,
                                                   const progress_callback& progress, std::optional<replay_id>& replay,
                                                   bool& retry_later) {
  received_message result;
  result.from = header.from;
  result.message_id = header.message_id;
  result.content_size = header.content_size;
  result.what = received_message::kind::unverified;
  const bool is_file = header.type == static_cast<std::uint8_t>(v2::message_type::sealed_file);
  const auto unverified = [&](std::string why) {
    discard(link, header.content_size);
    result.sender = display_name(header.from);
    result.problem = std::move(why);
    return result;
  };
  if (header.flags & v2::message_flag_legacy_sender) return unverified("a sealed envelope marked as from a legacy sender");
  if (!is_file && header.content_size > crypto::envelope_content_size(max_text_in_memory)) {
    discard(link, header.content_size);
    result.sender = display_name(header.from);
    result.what = received_message::kind::too_large;
    return result;
  }
  std::string why;
  const auto sender = sender_keys(header.from, why, retry_later);
  if (!sender) return unverified(why);
  result.sender = sender->name;

  crypto::envelope_keys keys{sender->identity_key, me_v2_->agreement};
  detail::envelope_receiver<crypto::envelope_handler, crypto::envelope_header> receiver(keys, is_file,
                                                                                        download_directory(), *seen_);
  crypto::envelope_expectations expect{is_file ? crypto::envelope_type::file : crypto::envelope_type::text, header.from,
                                       me().id, header.content_size};
  crypto::envelope_reader reader(expect, receiver);
  detail::read_envelope(link, header.content_size, reader, receiver, is_file, progress, result, replay);
  return result;
}

// Consumes exactly header.content_size bytes of content from link and interprets them.
received_message client_operations::receive_one(connection& link, const proto::pulled_message_header& header,
                                                const progress_callback& progress) {
  received_message result;
  result.from = header.from;
  result.sender = display_name(header.from);
  result.message_id = header.message_id;
  result.content_size = header.content_size;
  const auto size = header.content_size;
  const auto* sender = keys_.find(header.from);
  const auto shared_key = sender ? sender->shared_key : std::nullopt;

  switch (static_cast<proto::message_type>(header.type)) {
    case proto::message_type::symmetric_key_request:
      discard(link, size);
      result.what = size == 0 ? received_message::kind::key_request : received_message::kind::undecryptable;
      return result;

    case proto::message_type::symmetric_key: {
      if (size != proto::encrypted_symmetric_key_size) break;
      proto::byte_buffer sealed(size);
      link.read(sealed);
      try {
        const auto key = me().key.decrypt(sealed);
        if (key.size() != proto::symmetric_key_size) return result;
        symmetric_key stored{};
        std::copy(key.begin(), key.end(), stored.begin());
        keys_.upsert(header.from).shared_key = stored;
        result.what = received_message::kind::key_received;
        keys_.save();  // at once: the server forgets the message once it is delivered
      } catch (const crypto_error&) {
      } catch (const config_error& e) {  // keep the key for this session and keep pulling
        result.what = received_message::kind::save_failed;
        result.text = std::string("symmetric key received, but not saved: ") + e.what() +
                      " (it is kept until the client exits)";
      }
      return result;
    }

    case proto::message_type::text: {
      if (size > max_text_in_memory) {
        discard(link, size);
        result.what = received_message::kind::too_large;
        return result;
      }
      if (!shared_key) break;
      std::string text;  // grows with the data that arrived, not with the size announced
      try {
        decrypt_from(link, size, *shared_key, [&](proto::bytes_view piece) { text.append(piece.begin(), piece.end()); }, {});
      } catch (const crypto_error&) {
        return result;
      }
      if (!text.empty() && text.back() == '\0') text.pop_back();
      result.text = std::move(text);
      result.what = received_message::kind::text;
      return result;
    }

    case proto::message_type::file: {
      if (!shared_key) break;
      std::optional<download_file> file;
      try {
        const auto directory = download_directory();
        prepare_download_directory(directory);
        file.emplace(directory, v1_download_name(result.sender, header.message_id));
      } catch (const std::exception& e) {  // config_error, filesystem_error: skip this file, keep pulling
        discard(link, size);
        result.what = received_message::kind::save_failed;
        result.text = std::string("cannot save the received file: ") + e.what();
        return result;
      }
      std::string write_failure;  // after a failed write, keep consuming the content
      try {
        const auto write = [&](proto::bytes_view piece) {
          if (!write_failure.empty()) return;
          try {
            file->write(piece);
          } catch (const config_error& e) {
            write_failure = e.what();
          }
        };
        decrypt_from(link, size, *shared_key, write, progress);
      } catch (const crypto_error&) {
        return result;  // can't decrypt; the content was consumed in full (update() never throws); the .part goes
      }
      try {
        if (!write_failure.empty()) throw config_error(write_failure);
        result.file_path = file->publish();
      } catch (const config_error& e) {  // e.g. disk full: the message is consumed, keep pulling the rest
        result.what = received_message::kind::save_failed;
        result.text = std::string("writing the received file failed: ") + e.what();
        return result;
      }
      result.what = received_message::kind::file;
      return result;
    }
  }
  discard(link, size);  // unknown type, wrong size, or no key: consume and report
  return result;
}

// --- Live chat (docs/PROTOCOL.md Part V) -------------------------------------------------------

namespace {

// Lines of an input stream read by a thread of their own, so that one poll(2) waits for a line or
// a frame from the server: each line is queued and a byte written to a pipe.
struct line_feed {
  std::mutex mutex;
  std::deque<std::string> lines;
  bool ended = false;
  int pipe_fds[2] = {-1, -1};
  line_feed() {
    if (::pipe(pipe_fds) != 0) throw client_error(kind::local_file, "pipe: " + std::string(std::strerror(errno)));
  }
  ~line_feed() {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
  }
  void signal() {
    const char byte = 1;
    [[maybe_unused]] const auto written = ::write(pipe_fds[1], &byte, 1);
  }
};

constexpr auto live_subscribe = static_cast<v2::request_code>(proto::live::request_code::subscribe);
constexpr auto live_ping = static_cast<v2::request_code>(proto::live::request_code::ping);

}  // namespace

void client_operations::chat(const std::string& name, std::istream& input, const chat_events& events) {
  translated([&] {
    me();
    if (!speaks_v2()) throw client_error(kind::invalid_input, "chat needs a protocol v2 server");
    if (kind_of(name) != peer_kind::v2)
      throw client_error(kind::invalid_input, name + " is a legacy v1 client: chat needs a v2 peer");
    peer_pin(name);  // its keys checked (and pinned) before anything is sent
    live_chat(input, events.on_subscribed, events.on_message, [&](const std::string& line) {
      const auto id = send_text(name, line);
      if (events.on_sent) events.on_sent(id, line);
    }, events.on_send_failed);
  });
}

void client_operations::live_chat(std::istream& input, const std::function<void()>& on_subscribed,
                                  const message_callback& on_message,
                                  const std::function<void(const std::string& line)>& send_line,
                                  const std::function<void(const std::string& line, const client_error& error)>& on_send_failed) {
  translated([&] {
    if (!me_v2_) throw client_error(kind::not_registered, "no v2 identity (" + std::string(me_v2_file) + ")");
    // The subscription has a connection of its own: frames come on it between any two requests,
    // so sends and ACKs go on the main connection.
    v2_session live(read_server_info(options_.directory), options_.io_timeout);
    if (live.hello() != v2_session::hello_result::v2) throw connection_error("the server stopped speaking v2");
    live.authenticate(me().id, me_v2_->identity);
    live.send_front(live_subscribe, 0, {});
    live.expect(static_cast<v2::response_code>(proto::live::response_code::subscribed));
    if (on_subscribed) on_subscribed();

    auto feed = std::make_shared<line_feed>();
    std::thread([feed, &input] {
      std::string line;
      while (std::getline(input, line)) {
        {
          const std::lock_guard lock(feed->mutex);
          feed->lines.push_back(line);
        }
        feed->signal();
      }
      {
        const std::lock_guard lock(feed->mutex);
        feed->ended = true;
      }
      feed->signal();
    }).detach();  // ends at the end of input, which is when chat returns

    struct lookup_reset {
      std::unique_ptr<v2_session>& session;
      ~lookup_reset() { session.reset(); }
    } reset_lookup{lookup_session_};
    for (;;) {
      pollfd ready[2] = {{feed->pipe_fds[0], POLLIN, 0}, {live.link().descriptor(), POLLIN, 0}};
      if (::poll(ready, 2, 1000) < 0) {
        if (errno == EINTR) continue;
        throw connection_error("poll: " + std::string(std::strerror(errno)));
      }
      if (ready[1].revents != 0) {  // a frame from the server
        const auto header = live.link().read_response_header();
        if (header.version != v2::wire_version) throw proto::protocol_error("a frame of version " + std::to_string(header.version));
        if (header.code == static_cast<std::uint16_t>(proto::live::response_code::push)) {
          std::vector<std::uint32_t> handled;
          receive_v2_entries(live, header.payload_size, on_message, {}, handled);
          if (!handled.empty())
            on_session([&](v2_session& link) {
              link.exchange(v2::request_code::ack, v2::encode_ack_request({handled}), v2::response_code::acknowledged,
                            v2::ack_response_size);
            });
        } else if (header.code == static_cast<std::uint16_t>(proto::live::response_code::ping)) {
          if (header.payload_size != 0) throw proto::protocol_error("a 2013 with a payload");
          live.send_front(live_ping, 0, {});  // any request answers it
        } else if (header.code == static_cast<std::uint16_t>(proto::live::response_code::pong)) {
          if (header.payload_size != 0) throw proto::protocol_error("a 2012 with a payload");
        } else if (header.code == static_cast<std::uint16_t>(proto::response_code::error) &&
                   header.payload_size == v2::error_payload_size) {
          throw v2_server_error({v2::decode_error_payload(live.link().read_payload(header.payload_size, v2::error_payload_size))});
        } else {
          throw proto::protocol_error("unexpected frame " + std::to_string(header.code) + " on the subscription");
        }
        continue;  // frames first: what arrived is shown before more is sent
      }
      if (ready[0].revents != 0) {
        char drained[64];
        [[maybe_unused]] const auto got = ::read(feed->pipe_fds[0], drained, sizeof drained);
        std::deque<std::string> lines;
        bool ended = false;
        {
          const std::lock_guard lock(feed->mutex);
          lines.swap(feed->lines);
          ended = feed->ended;
        }
        for (const auto& line : lines) {
          if (line.empty()) continue;
          try {
            send_line(line);
          } catch (const client_error& e) {
            if (e.error_kind() == kind::network || !on_send_failed) throw;
            on_send_failed(line, e);
          }
        }
        if (ended) return;
      }
    }
  });
}

}  // namespace letterbox::client
