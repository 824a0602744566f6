// The request handler (see handler.hpp).
#include "handler.hpp"

#include "random_bytes.hpp"

namespace letterbox::server {
namespace {

using namespace protocol;

// A version 4 UUID from the system's random source.
client_id new_client_id() {
  client_id id{};
  fill_random(id);
  id[6] = static_cast<std::uint8_t>((id[6] & 0x0F) | 0x40);  // version 4
  id[8] = static_cast<std::uint8_t>((id[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return id;
}

}  // namespace

request_handler::request_handler(mailbox_store& store, const server_limits& limits)
    : store_(store), limits_(limits) {}

void request_handler::require_registered(const client_id& id) {
  if (!store_.client_exists(id)) throw request_rejected("client " + to_hex(id) + " is not registered");
  store_.touch(id);
}

registered request_handler::register_client(const register_request& request) {
  const client_id id = new_client_id();
  if (!store_.add_client(id, request.name, request.key))
    throw request_rejected("name '" + request.name + "' is already registered");
  return {id};
}

client_list request_handler::list_clients(const client_id& requester) {
  require_registered(requester);
  return {store_.clients_except(requester)};
}

public_key_response request_handler::get_public_key(const client_id& requester, const get_public_key_request& request) {
  require_registered(requester);
  const auto key = store_.public_key_of(request.target);
  if (!key) throw request_rejected("no client " + to_hex(request.target) + " for public key");
  return {request.target, *key};
}

void request_handler::check_send(const client_id& sender, const send_message_prefix& prefix) {
  require_registered(sender);
  if (!store_.client_exists(prefix.to)) throw request_rejected("destination " + to_hex(prefix.to) + " is not registered");
}

message_sent request_handler::store_message(const client_id& sender, const send_message_prefix& prefix,
                                           byte_buffer inline_content, std::string content_file) {
  check_send(sender, prefix);
  new_message message{prefix.to, sender, prefix.type, prefix.content_size, std::move(inline_content),
                      std::move(content_file)};
  if (message.content_file.empty() && message.inline_content.size() != prefix.content_size)
    throw request_rejected("content size does not match the content received");
  const auto id = store_.add_message(message);
  return {prefix.to, id};
}

pull_batch request_handler::begin_pull(const client_id& requester) {
  require_registered(requester);
  auto& reserved = reservations_[requester];
  pull_batch batch;
  batch.recipient = requester;
  try {
    batch.messages = store_.pending_messages(requester, reserved.last_reserved_id, limits_.max_messages_per_pull,
                                             limits_.max_pull_inline_bytes, limits_.max_pull_payload);
  } catch (...) {
    if (reserved.active_pulls == 0) reservations_.erase(requester);
    throw;
  }
  std::uint64_t payload = 0;
  for (const auto& message : batch.messages) payload += pulled_message_header_size + message.content_size;
  batch.payload_size = static_cast<std::uint32_t>(payload);  // the store kept it within u32
  if (!batch.messages.empty()) reserved.last_reserved_id = batch.messages.back().id;
  ++reserved.active_pulls;
  return batch;
}

void request_handler::finish_pull(const pull_batch& batch) {
  std::vector<std::uint32_t> ids;
  ids.reserve(batch.messages.size());
  for (const auto& message : batch.messages) ids.push_back(message.id);
  try {
    if (!ids.empty()) store_.remove_messages(batch.recipient, ids);
  } catch (...) {
    release(batch);
    throw;
  }
  release(batch);
}

void request_handler::abort_pull(const pull_batch& batch) noexcept { release(batch); }

void request_handler::release(const pull_batch& batch) noexcept {
  auto it = reservations_.find(batch.recipient);
  if (it == reservations_.end()) return;
  if (--it->second.active_pulls <= 0) reservations_.erase(it);  // next pull starts from the oldest again
}

}  // namespace letterbox::server
