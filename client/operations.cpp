// Client operations: one connection per request, keys kept in the keyring (see operations.hpp).
#include "operations.hpp"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "downloads.hpp"

namespace letterbox::client {
namespace {

using kind = client_error::kind;
namespace proto = letterbox::protocol;

constexpr std::uint32_t max_client_list_payload = 16u << 20;
constexpr std::uint64_t max_file_ciphertext = proto::max_payload_size - proto::send_message_prefix_size;

// Runs body, translating every lower layer's error into client_error.
template <typename Body>
auto translated(Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const client_error&) {
    throw;
  } catch (const connection_error& e) {
    throw client_error(kind::network, e.what());
  } catch (const proto::protocol_error& e) {
    throw client_error(kind::network, std::string("malformed response from the server: ") + e.what());
  } catch (const crypto_error& e) {
    throw client_error(kind::crypto, e.what());
  } catch (const config_error& e) {
    throw client_error(kind::local_file, e.what());
  } catch (const std::filesystem::filesystem_error& e) {
    throw client_error(kind::local_file, e.what());
  }
}

// Reads and drops n bytes of a response, in chunks.
void discard(connection& link, std::uint64_t n) {
  proto::byte_buffer chunk(std::min<std::uint64_t>(n, file_chunk_size));
  while (n > 0) {
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(n, chunk.size()));
    link.read(std::span(chunk.data(), take));
    n -= take;
  }
}

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
      } catch (const config_error& e) {
        me_problem_ = e.what();
      }
    }
  });
}

const std::string& client_operations::my_name() const {
  static const std::string none;
  return me_ ? me_->name : none;
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
    auto key = private_key::generate();
    const auto payload = proto::encode_register_request({name, key.public_key()});
    const auto reply = exchange(proto::request_code::register_client, payload, proto::response_code::registered,
                                proto::client_id_size);
    identity registered{name, proto::decode_registered_payload(reply), std::move(key)};
    write_me_info(options_.directory, registered);
    me_ = std::move(registered);
    me_problem_.clear();
  });
}

std::vector<proto::client_entry> client_operations::list_clients() {
  return translated([&] {
    const auto reply = exchange(proto::request_code::list_clients, {}, proto::response_code::client_list,
                                max_client_list_payload);
    auto clients = proto::decode_client_list_payload(reply);
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

proto::public_key client_operations::request_public_key(const std::string& name) {
  return translated([&] {
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

std::uint32_t client_operations::send_message(const peer& to, proto::message_type type, proto::bytes_view content) {
  auto payload = proto::encode_send_message_prefix({to.id, static_cast<std::uint8_t>(type),
                                                    static_cast<std::uint32_t>(content.size())});
  payload.insert(payload.end(), content.begin(), content.end());
  const auto reply = exchange(proto::request_code::send_message, payload, proto::response_code::message_sent,
                              proto::message_sent_response_size);
  return proto::decode_message_sent_payload(reply).message_id;
}

std::uint32_t client_operations::request_symmetric_key(const std::string& name) {
  return translated([&] { return send_message(resolve(name), proto::message_type::symmetric_key_request, {}); });
}

std::uint32_t client_operations::send_symmetric_key(const std::string& name) {
  return translated([&] {
    auto* target = &resolve(name);
    if (!target->public_key) {
      request_public_key(name);
      target = &resolve(name);
    }
    const auto key = target->shared_key.value_or(generate_symmetric_key());
    const auto sealed = rsa_encrypt(*target->public_key, key);
    const auto id = send_message(*target, proto::message_type::symmetric_key, sealed);
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
    const auto& target = resolve(name);
    const auto& key = require_shared_key(target, name);
    proto::byte_buffer plaintext(text.begin(), text.end());
    plaintext.push_back(0);  // legacy clients expect a trailing NUL
    return send_message(target, proto::message_type::text, aes_encrypt(key, plaintext));
  });
}

std::uint32_t client_operations::send_file(const std::string& name, const std::filesystem::path& file,
                                           const progress_callback& progress) {
  return translated([&] {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) throw client_error(kind::file_not_found, "file not found");
    std::ifstream in(file, std::ios::binary);
    if (!in) throw client_error(kind::file_not_found, "file not found");
    const auto& target = resolve(name);
    const auto& key = require_shared_key(target, name);
    const std::uint64_t size = std::filesystem::file_size(file);
    const auto ciphertext_size = aes_ciphertext_size(size);
    if (ciphertext_size > max_file_ciphertext)
      throw client_error(kind::invalid_input, "file is too large for the protocol (limit about 4 GiB)");

    const auto header = header_for(proto::request_code::send_message, proto::send_message_prefix_size + ciphertext_size);
    const auto prefix = proto::encode_send_message_prefix(
        {target.id, static_cast<std::uint8_t>(proto::message_type::file), static_cast<std::uint32_t>(ciphertext_size)});
    auto link = connect();
    link->send_request(header, prefix);

    aes_stream_encryptor encryptor(key);
    proto::byte_buffer chunk(file_chunk_size), out;
    out.reserve(file_chunk_size + proto::aes_block_size);
    std::uint64_t done = 0;
    try {
      while (done < size) {
        const auto want = static_cast<std::streamsize>(std::min<std::uint64_t>(chunk.size(), size - done));
        in.read(reinterpret_cast<char*>(chunk.data()), want);
        if (in.gcount() != want)  // the file shrank: abort; the server stores nothing
          throw client_error(kind::local_file, file.string() + ": file changed while it was being sent");
        out.clear();
        encryptor.update(std::span(chunk.data(), static_cast<std::size_t>(want)), out);
        link->write(out);
        done += static_cast<std::uint64_t>(want);
        if (progress) progress(done, size);
      }
      out.clear();
      encryptor.finish(out);
      link->write(out);
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
    if (progress && size == 0) progress(0, 0);
    const auto response = expect_response(*link, proto::response_code::message_sent);
    return proto::decode_message_sent_payload(link->read_payload(response.payload_size, proto::message_sent_response_size))
        .message_id;
  });
}

std::string client_operations::display_name(const proto::client_id& id) {
  const auto* known = keys_.find(id);
  return known && !known->name.empty() ? known->name : proto::to_hex(id);
}

std::size_t client_operations::pull_messages(const message_callback& on_message, const progress_callback& progress) {
  return translated([&] {
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
  });
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

}  // namespace letterbox::client
