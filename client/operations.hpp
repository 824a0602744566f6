// Client operations: the protocol exchanges with the server plus the client's state (identity,
// keyring, keys, pins). No terminal I/O here: results are returned, progress and notices go to
// callbacks. Protocol v2 (one persistent, authenticated connection per client run) with a v2
// server and a v2 identity; v1 (one connection per request) with a v1-only server or a v1
// identity. v1 contents (types 1-4) go to legacy peers on either.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <istream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "client_files.hpp"
#include "client_state.hpp"
#include "connection.hpp"
#include "keyring.hpp"
#include "messages_v2.hpp"
#include "session_v2.hpp"

namespace letterbox::client {

// The one error type of the operations layer; lower layers' errors are translated into it.
class client_error : public std::runtime_error {
 public:
  enum class kind {
    server_error,        // the server answered 9000
    file_not_found,      // a file to send does not exist
    unknown_user,        // no such user name on the server
    not_registered,      // me.info is missing
    already_registered,  // me.info exists, refusing to register again
    missing_key,         // no public/symmetric key for that peer yet
    invalid_input,       // e.g. a name that is not allowed
    local_file,          // server.info, me.info, keyring.info, a file to write
    network,             // cannot connect, timeout, malformed response
    crypto,
    downgrade,           // a server that spoke v2 before answers as a v1-only server
    key_refused,         // a peer's keys failed the checks of §14, or differ from the pinned ones
  };
  client_error(kind k, const std::string& message) : std::runtime_error(message), kind_(k) {}
  kind error_kind() const noexcept { return kind_; }

 private:
  kind kind_;
};

struct client_options {
  std::filesystem::path directory = ".";  // server.info, me.info, keyring.info, me.v2, ...
  // Where received files go; empty: <directory>/downloads. Created (mode 0700) when the first
  // file arrives, so that a bad directory only fails the file, not the client's start.
  std::filesystem::path download_directory;
  std::chrono::steady_clock::duration io_timeout = default_io_timeout;
  // Fall back to v1 even for a server listed in servers.v2 (--allow-v1).
  bool allow_v1 = false;
  // negotiate: HELLO first; v1: never try v2 (tests of the v1 path against scripted servers).
  enum class protocol_choice { negotiate, v1 } protocol = protocol_choice::negotiate;
  // One-line notes for the user (the v1 fallback, once); the front end writes them to stderr.
  std::function<void(const std::string&)> notice;
};

// How a peer is reached: a v2 peer gets sealed envelopes; a legacy one v1 contents (types
// 1-4), unauthenticated; unknown on a v1 server (everyone is reached with v1 there).
enum class peer_kind { unknown, v2, legacy };

struct directory_entry {
  protocol::client_id id{};
  std::string name;
  peer_kind kind = peer_kind::unknown;
  // Presence (docs/PROTOCOL.md Part V §30), for v2 peers when the server has live delivery:
  // online now, and last seen (Unix seconds during the server's run; 0 = not seen).
  std::optional<bool> online;
  std::uint64_t last_seen = 0;
};

// One message out of a pull, already processed (key stored, text or file decrypted).
struct received_message {
  enum class kind {
    key_request, key_received, text, file, undecryptable, too_large, save_failed,
    unverified,  // a v2 envelope that failed verification: nothing of it shown or kept
    duplicate,   // a redelivery or replay of a message already handled: dropped
  };
  protocol::client_id from{};
  std::string sender;  // name if known, else the ID in hex
  std::uint32_t message_id = 0;
  kind what = kind::undecryptable;
  std::string text;                 // text: the decrypted text (one trailing NUL stripped); save_failed: what
                                    // could not be saved (a received file, or a received key) and why
  std::filesystem::path file_path;  // kind::file: where the decrypted file was written
  std::uint64_t content_size = 0;   // ciphertext bytes on the wire
  bool authenticated = false;       // a verified v2 envelope: sender and content are proven
  bool legacy_sender = false;       // v2 pull flag bit 0: a v1 sender, its ID proves nothing
  std::string file_name;            // kind::file from a v2 peer: the name the sender gave (unsafe)
  std::string problem;              // unverified, duplicate: why
  // A group message (types 18/19, pull flag bit 1, docs/PROTOCOL.md §16a, §23).
  bool group_message = false;
  protocol::v2::group_id group_id{};
  std::string group;                // the group's name if known, else its ID in hex
};

// (bytes done, bytes total) of one file transfer.
using progress_callback = std::function<void(std::uint64_t, std::uint64_t)>;
using message_callback = std::function<void(const received_message&)>;

inline constexpr std::uint32_t max_text_in_memory = 32u << 20;  // larger texts are not shown
inline constexpr std::size_t file_chunk_size = 64u << 10;

// All operations throw client_error and nothing else; the keyring file is updated after each
// operation that learnt something. Targets are user names as the server lists them.
class group_operations;

class client_operations {
 public:
  // Loads keyring.info (throws client_error if it is malformed) and me.info and me.v2 if
  // present (a malformed one, or a me.v2 whose key does not derive to me.info's ID, is
  // reported by the first operation that needs them). No network use before the first operation.
  explicit client_operations(client_options options);
  ~client_operations();
  client_operations(const client_operations&) = delete;
  client_operations& operator=(const client_operations&) = delete;

  bool registered() const { return me_.has_value(); }
  const std::string& my_name() const;
  // Our ID (throws client_error(not_registered) when not registered).
  protocol::client_id my_id();
  // True when me.v2 exists: a v2 identity.
  bool has_v2_identity() const { return me_v2_.has_value(); }
  // Which protocol this run speaks (negotiated on first use; v1 for a v1 identity).
  bool speaks_v2();

  // v2 server: 201 REGISTER with fresh Ed25519, X25519 and RSA keys; writes me.info (v1
  // format) and me.v2. v1 server: 100 with a fresh RSA key, me.info only. Refuses if me.info
  // exists.
  void register_user(const std::string& name);
  // 203 (101 on v1): the other registered clients; their names go into the keyring.
  std::vector<directory_entry> list_clients();
  // v2 peer: 204 KEYS, checked (§14) and pinned on first use; returns its legacy key. Legacy
  // peer: its legacy key (204 on v2, 102 on v1), stored.
  protocol::public_key request_public_key(const std::string& name);
  // How name is reached (may list the clients first).
  peer_kind kind_of(const std::string& name);
  // The safety number of us and name (a v2 peer, keys checked): 12 groups of 5 digits.
  std::string safety_number(const std::string& name);
  // The pinned identity key of name differs from what the server now gives: the new keys,
  // checked except against the pin, and the safety numbers before and after.
  struct key_change {
    pin current;                 // what the server gives now, checked (ID derived, signed)
    std::optional<pin> pinned;   // what was pinned, if anything
    std::string old_number, new_number;
  };
  key_change inspect_keys(const std::string& name);
  // Pins change.current in place of the old pin (the user accepted it), saved at once.
  void trust(const key_change& change);
  // 104 (v1), or 206 + 207 (v2, see pull): one pull; calls on_message for each message in send
  // order, returns how many there were. Files are decrypted streaming into the download
  // directory. The first sender not known by name makes one 101 (v1) or KEYS (v2) request on a
  // second connection to learn the names; if that fails, unknown senders are shown by their ID.
  std::size_t pull_messages(const message_callback& on_message, const progress_callback& progress = {});
  // v2: PULL, then each message stored (file fsync'd, text handed to on_message, seen.v2
  // updated), then one ACK for all of them. Duplicates (message ID or replay ID in seen.v2) are
  // reported as kind::duplicate and acknowledged again. ack == false leaves them leased and
  // unacknowledged (the self-test's redelivery check). v1: as pull_messages.
  // (pull_messages is the same with ack == true.)
  std::size_t pull(const message_callback& on_message, const progress_callback& progress, bool ack);
  // Drops the v2 connection (its leases end); the next operation connects anew.
  void disconnect();

  // Live chat with a v2 peer (docs/PROTOCOL.md Part V; operations.cpp): subscribes on a
  // connection of its own, then until `input` ends sends each line read from it to `name` as a
  // text (on_sent with its message ID, after the 2005) and handles every pushed message as a
  // pulled one (on_message; acknowledged on the main connection once handled). Answers the
  // server's pings. Throws client_error (the peer is not v2, the subscription refused, ...).
  struct chat_events {
    std::function<void()> on_subscribed;  // after the 2010: messages are pushed from now on
    message_callback on_message;
    std::function<void(std::uint32_t id, const std::string& line)> on_sent;
    std::function<void(const std::string& line, const client_error& error)> on_send_failed;
  };
  void chat(const std::string& name, std::istream& input, const chat_events& events);
  // (A group chat is group_operations::chat, groups.hpp.)
  // 103/205 type 1. Refused (invalid_input) for a v2 peer: not needed.
  std::uint32_t request_symmetric_key(const std::string& name);
  // 103/205 type 2: sends our symmetric key for name (creating one if we have none), encrypted
  // with name's public key (fetched first if unknown). Returns the message ID. Refused
  // (invalid_input) for a v2 peer: not needed.
  std::uint32_t send_symmetric_key(const std::string& name);
  // v2 peer: 205 type 16, a sealed envelope. Otherwise 103/205 type 3: text + one NUL,
  // AES-CBC with the shared key. A text larger than max_text_in_memory (what receivers show)
  // is refused with invalid_input.
  std::uint32_t send_text(const std::string& name, std::string_view text);
  // v2 peer: 205 type 17, sealed streaming (the file's base name inside). Otherwise type 4,
  // AES-CBC streaming. Constant memory either way.
  std::uint32_t send_file(const std::string& name, const std::filesystem::path& file,
                          const progress_callback& progress = {});
  // 205 with the given type and content as they are (the self-test's tamper check).
  std::uint32_t send_raw_v2(const std::string& name, std::uint8_t type, protocol::bytes_view content);

  // The display name of a client: its name if known (keyring or pin), else its ID in hex.
  std::string display_name(const protocol::client_id& id);
  // The keyring in memory; changes made through it are saved by the next operation that saves.
  keyring& keys() { return keys_; }

 private:
  friend class group_operations;  // groups.cpp: the group requests and envelopes (§16a, Part IV)
  // A group message of a PULL (groups.cpp): group ID[16] then a group envelope.
  received_message receive_group(connection& link, const protocol::v2::pulled_message_header& header,
                                 const progress_callback& progress, std::optional<replay_id>& replay,
                                 bool& retry_later);
  std::vector<std::pair<protocol::v2::group_id, std::string>> group_names_;  // from GROUPS this run
  // chat's loop, for a peer or a group (groups.cpp): subscribes on a connection of its own, hands
  // every pushed message to on_message (acknowledged once handled), answers pings, and passes
  // each non-empty line of input to send_line until input ends. A client_error of send_line
  // other than a network one goes to on_send_failed (when set) and the chat goes on.
  void live_chat(std::istream& input, const std::function<void()>& on_subscribed, const message_callback& on_message,
                 const std::function<void(const std::string& line)>& send_line,
                 const std::function<void(const std::string& line, const client_error& error)>& on_send_failed);
  const identity& me();
  std::filesystem::path download_directory() const;
  peer& resolve(const std::string& name);
  std::unique_ptr<connection> connect();
  protocol::request_header header_for(protocol::request_code code, std::uint64_t payload_size);
  protocol::byte_buffer exchange(protocol::request_code code, protocol::bytes_view payload,
                                 protocol::response_code expected, std::uint32_t max_response);
  std::uint32_t send_message(const peer& to, protocol::message_type type, protocol::bytes_view content);
  std::uint32_t deliver(const protocol::client_id& to, std::uint8_t type, std::uint64_t content_size,
                        const std::function<void(connection&)>& write_content);
  received_message receive_one(connection& link, const protocol::pulled_message_header& header,
                               const progress_callback& progress);
  received_message receive_sealed(connection& link, const protocol::v2::pulled_message_header& header,
                                  const progress_callback& progress, std::optional<replay_id>& replay,
                                  bool& retry_later);
  std::size_t pull_v1(const message_callback& on_message, const progress_callback& progress);
  std::size_t pull_v2(const message_callback& on_message, const progress_callback& progress, bool ack);
  std::size_t receive_v2_entries(v2_session& link, std::uint64_t remaining, const message_callback& on_message,
                                 const progress_callback& progress, std::vector<std::uint32_t>& handled);

  // v2 session management.
  void negotiate();
  v2_session& session();  // negotiated, authenticated
  void drop_session() noexcept;
  template <typename Body>
  auto on_session(Body&& body) -> decltype(body(std::declval<v2_session&>()));
  // The checked keys of a v2 client (KEYS, §14), against the pin unless against_pin is false.
  // expected_name empty: any name. A legacy client: nullopt. Pins on first use.
  std::optional<pin> checked_keys(v2_session& link, const protocol::client_id& id, std::string_view expected_name,
                                  bool against_pin = true);
  const pin& peer_pin(const std::string& name);  // the pinned keys of a v2 peer, checked this run
  // The sender's pinned keys for an incoming envelope, fetched on a second connection when
  // unknown (the main one is busy with the PULL response). nullopt with *why set when refused.
  // transient: the lookup failed for a reason that may pass (network), do not acknowledge.
  std::optional<pin> sender_keys(const protocol::client_id& sender, std::string& why, bool& transient);

  client_options options_;
  std::optional<identity> me_;
  std::optional<v2_secrets> me_v2_;
  std::string me_problem_;  // why me.info (or me.v2) could not be loaded, if it exists but is bad
  keyring keys_;
  std::optional<seen_store> seen_;
  enum class wire { unknown, v1, v2 } wire_ = wire::unknown;
  std::unique_ptr<v2_session> session_;
  std::unique_ptr<v2_session> lookup_session_;  // during a pull, for KEYS and LIST
  bool v1_identity_noted_ = false;
  std::vector<protocol::client_id> checked_this_run_;
  std::vector<std::pair<protocol::client_id, peer_kind>> kinds_;  // from LIST / KEYS this run
};

}  // namespace letterbox::client
