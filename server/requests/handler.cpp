// The request handler (see handler.hpp).
#include "handler.hpp"

#include <algorithm>

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
  if (!store_.client_exists(id))
    throw request_rejected(v2::reason::unknown_client, "client " + to_hex(id) + " is not registered");
  store_.touch(id);
}

registered request_handler::register_client(const register_request& request) {
  const client_id id = new_client_id();
  if (!store_.add_client(id, request.name, request.key))
    throw request_rejected("name '" + request.name + "' is already registered");
  return {id};
}

public_key_response request_handler::get_public_key(const client_id& requester, const get_public_key_request& request) {
  require_registered(requester);
  const auto key = store_.public_key_of(request.target);
  if (!key) throw request_rejected("no client " + to_hex(request.target) + " for public key");
  return {request.target, *key};
}

void request_handler::check_send(const client_id& sender, const send_message_prefix& prefix) {
  require_registered(sender);
  if (!store_.client_exists(prefix.to))
    throw request_rejected(v2::reason::unknown_client, "destination " + to_hex(prefix.to) + " is not registered");
  const auto usage = store_.usage_of(prefix.to);
  if (usage.messages >= limits_.max_mailbox_messages)
    throw request_rejected(v2::reason::mailbox_full, "mailbox " + to_hex(prefix.to) + " holds " +
                                                         std::to_string(usage.messages) + " messages (--max-mailbox-messages)");
  if (usage.bytes + prefix.content_size > limits_.max_mailbox_bytes)
    throw request_rejected(v2::reason::mailbox_full, "mailbox " + to_hex(prefix.to) + " would hold more than " +
                                                         std::to_string(limits_.max_mailbox_bytes) +
                                                         " bytes (--max-mailbox-bytes)");
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

std::uint32_t pull_payload_size(const std::vector<stored_message>& messages, std::size_t entry_header_size) {
  std::uint64_t payload = 0;
  for (const auto& message : messages) payload += entry_header_size + message.content_size;
  return static_cast<std::uint32_t>(payload);  // the store kept it within u32
}

std::function<bool(std::uint32_t)> request_handler::held_back_filter(const client_id& mailbox) {
  const std::map<std::uint32_t, held_message>* held = nullptr;
  if (auto it = held_.find(mailbox); it != held_.end()) {
    std::erase_if(it->second, [&](const auto& entry) { return !store_.is_pending(mailbox, entry.first); });
    if (it->second.empty())
      held_.erase(it);
    else
      held = &it->second;
  }
  return [held](std::uint32_t id) {
    if (held == nullptr) return false;
    auto entry = held->find(id);
    return entry != held->end() && entry->second.held_back();
  };
}

pull_batch request_handler::begin_pull(const client_id& requester, std::uint64_t inline_budget) {
  require_registered(requester);
  pull_batch batch;
  batch.recipient = requester;
  const auto skip = held_back_filter(requester);
  batch.messages = store_.pending_messages(requester, 0, limits_.max_messages_per_pull,
                                           std::min(inline_budget, limits_.max_pull_inline_bytes), limits_.max_pull_payload,
                                           skip);
  batch.payload_size = pull_payload_size(batch.messages);
  return batch;
}

void request_handler::finish_pull(const pull_batch& batch) {
  std::vector<std::uint32_t> ids;
  ids.reserve(batch.messages.size());
  for (const auto& message : batch.messages) ids.push_back(message.id);
  if (auto it = held_.find(batch.recipient); it != held_.end())  // delivered twice already: retry their removal
    for (const auto& [id, entry] : it->second)
      if (!entry.quarantined && entry.deliveries_not_removed >= max_deliveries_while_deletes_fail) ids.push_back(id);
  try {
    if (!ids.empty()) store_.remove_messages(batch.recipient, ids);
  } catch (...) {
    deletes_failed(batch);
    throw;
  }
}

void request_handler::deletes_failed(const pull_batch& batch) noexcept {
  if (batch.messages.empty()) return;
  try {
    auto& held = held_[batch.recipient];
    for (const auto& message : batch.messages) {
      auto& count = held[message.id].deliveries_not_removed;
      count = std::min(count + 1, max_deliveries_while_deletes_fail);
    }
  } catch (...) {
    // Out of memory: the messages are simply delivered again.
  }
}

std::vector<std::uint32_t> request_handler::quarantine(const client_id& recipient,
                                                       const std::vector<std::uint32_t>& ids) {
  std::vector<std::uint32_t> newly;
  auto& held = held_[recipient];
  for (auto id : ids) {
    auto& entry = held[id];
    if (!entry.quarantined) newly.push_back(id);
    entry.quarantined = true;
  }
  return newly;
}

// --- Protocol v2 ------------------------------------------------------------------------------

void request_handler::register_v2_client(const client_id& id, const v2::register_request& request) {
  if (store_.name_taken(request.name))
    throw request_rejected(v2::reason::name_taken, "name '" + request.name + "' is already registered");
  if (store_.client_exists(id))
    throw request_rejected(v2::reason::key_taken, "client " + to_hex(id) + " (from this identity key) exists");
  if (!store_.add_client(id, request.name, request.legacy, v2_keys{request.identity, request.agreement, request.key_signature}))
    throw request_rejected(v2::reason::name_taken, "name '" + request.name + "' or its ID is already registered");
}

std::optional<v2::identity_key> request_handler::identity_of(const client_id& id) const {
  const auto client = store_.client_of(id);
  if (!client || !client->v2) return std::nullopt;
  return client->v2->identity;
}

v2::keys_response request_handler::get_keys(const client_id& requester, const client_id& target) {
  require_registered(requester);
  const auto client = store_.client_of(target);
  if (!client) throw request_rejected(v2::reason::unknown_client, "no client " + to_hex(target) + " for keys");
  v2::keys_response response;
  response.id = target;
  response.name = client->name;
  response.legacy = client->key;
  if (client->v2) {
    response.flags = v2::client_flag_v2;
    response.identity = client->v2->identity;
    response.agreement = client->v2->agreement;
    response.key_signature = client->v2->key_signature;
  }
  return response;
}

pull_batch request_handler::begin_v2_pull(const client_id& requester, std::uint64_t inline_budget,
                                          const std::vector<std::uint32_t>& leased) {
  // A push without a window of its own: 104's budgets only.
  return begin_v2_push(requester, inline_budget, leased, limits_.max_messages_per_pull, limits_.max_pull_payload, false);
}

pull_batch request_handler::begin_v2_push(const client_id& requester, std::uint64_t inline_budget,
                                          const std::vector<std::uint32_t>& leased, std::size_t max_count,
                                          std::uint64_t max_payload, bool one_large) {
  require_registered(requester);
  pull_batch batch;
  batch.recipient = requester;
  const auto held_back = held_back_filter(requester);
  const auto skip = [&](std::uint32_t id) {
    return std::binary_search(leased.begin(), leased.end(), id) || held_back(id);
  };
  const std::uint64_t inline_bytes = std::min(inline_budget, limits_.max_pull_inline_bytes);
  batch.messages = store_.pending_messages(requester, 0, std::min(max_count, limits_.max_messages_per_pull), inline_bytes,
                                           std::min(max_payload, limits_.max_pull_payload), skip,
                                           v2::pulled_message_header_size);
  if (batch.messages.empty() && one_large)
    batch.messages = store_.pending_messages(requester, 0, 1, inline_bytes, limits_.max_pull_payload, skip,
                                             v2::pulled_message_header_size);
  batch.payload_size = pull_payload_size(batch.messages, v2::pulled_message_header_size);
  return batch;
}

std::uint32_t request_handler::acknowledge(const client_id& requester, const std::vector<std::uint32_t>& ids) {
  require_registered(requester);
  return static_cast<std::uint32_t>(store_.remove_messages(requester, ids));
}

}  // namespace letterbox::server
