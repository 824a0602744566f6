// Client operations: the protocol exchanges with the server plus the client's state (identity,
// keyring, keys). No terminal I/O here: results are returned, progress goes to a callback.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "client_files.hpp"
#include "connection.hpp"
#include "keyring.hpp"

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
};

// One message out of a pull, already processed (key stored, text or file decrypted).
struct received_message {
  enum class kind { key_request, key_received, text, file, undecryptable, too_large, save_failed };
  protocol::client_id from{};
  std::string sender;  // name if known, else the ID in hex
  std::uint32_t message_id = 0;
  kind what = kind::undecryptable;
  std::string text;                 // text: the decrypted text (one trailing NUL stripped); save_failed: what
                                    // could not be saved (a received file, or a received key) and why
  std::filesystem::path file_path;  // kind::file: where the decrypted file was written
  std::uint64_t content_size = 0;   // ciphertext bytes on the wire
};

// (bytes done, bytes total) of one file transfer.
using progress_callback = std::function<void(std::uint64_t, std::uint64_t)>;
using message_callback = std::function<void(const received_message&)>;

inline constexpr std::uint32_t max_text_in_memory = 32u << 20;  // larger texts are not shown
inline constexpr std::size_t file_chunk_size = 64u << 10;

// All operations throw client_error and nothing else; the keyring file is updated after each
// operation that learnt something. Targets are user names as the server lists them.
class client_operations {
 public:
  // Loads keyring.info (throws client_error if it is malformed) and me.info if present (a
  // malformed me.info is reported by the first operation that needs it).
  explicit client_operations(client_options options);

  bool registered() const { return me_.has_value(); }
  const std::string& my_name() const;

  // 100: registers name with a fresh RSA key pair and writes me.info. Refuses if me.info exists.
  void register_user(const std::string& name);
  // 101: the other registered clients; their names go into the keyring.
  std::vector<protocol::client_entry> list_clients();
  // 102: fetches and stores name's public key.
  protocol::public_key request_public_key(const std::string& name);
  // 104: one pull; calls on_message for each message in send order, returns how many there were.
  // Files are decrypted streaming into download_directory. The first sender not known by name
  // makes one 101 request (a second connection) to learn the names; if that fails, unknown
  // senders are shown by their ID in hex.
  std::size_t pull_messages(const message_callback& on_message, const progress_callback& progress = {});
  // 103 type 1.
  std::uint32_t request_symmetric_key(const std::string& name);
  // 103 type 2: sends our symmetric key for name (creating one if we have none), encrypted with
  // name's public key (fetched first if unknown). Returns the message ID.
  std::uint32_t send_symmetric_key(const std::string& name);
  // 103 type 3: text + one NUL, AES-CBC with the shared key. A text whose ciphertext would
  // exceed max_text_in_memory (what receivers show) is refused with invalid_input.
  std::uint32_t send_text(const std::string& name, std::string_view text);
  // 103 type 4: the file encrypted streaming from disk to socket in constant memory.
  std::uint32_t send_file(const std::string& name, const std::filesystem::path& file,
                          const progress_callback& progress = {});

  // The display name of a client: its name if known, else its ID in hex.
  std::string display_name(const protocol::client_id& id);
  // The keyring in memory; changes made through it are saved by the next operation that saves.
  keyring& keys() { return keys_; }

 private:
  const identity& me();
  std::filesystem::path download_directory() const;
  peer& resolve(const std::string& name);
  std::unique_ptr<connection> connect();
  protocol::request_header header_for(protocol::request_code code, std::uint64_t payload_size);
  protocol::byte_buffer exchange(protocol::request_code code, protocol::bytes_view payload,
                                 protocol::response_code expected, std::uint32_t max_response);
  std::uint32_t send_message(const peer& to, protocol::message_type type, protocol::bytes_view content);
  received_message receive_one(connection& link, const protocol::pulled_message_header& header,
                               const progress_callback& progress);

  client_options options_;
  std::optional<identity> me_;
  std::string me_problem_;  // why me.info could not be loaded, if it exists but is bad
  keyring keys_;
};

}  // namespace letterbox::client
