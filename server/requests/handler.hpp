// Request handling: the protocol's rules that need storage (who is registered, unique names,
// mailboxes), as pure logic over a mailbox_store. Never sees a socket or a byte of the wire:
// typed requests in, typed results out (encoded in responses.hpp). Runs on the storage
// worker's thread, inside its batch transaction.
#pragma once

#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "limits.hpp"
#include "mailbox_store.hpp"
#include "messages.hpp"

namespace letterbox::server {

// A request that breaks a rule of the protocol (answered with 9000; the reason is logged).
class request_rejected : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// 100 succeeded: the new client's ID (→ 1000).
struct registered {
  client_id id{};
};
// 101: every other client (→ 1001).
struct client_list {
  std::vector<protocol::client_entry> clients;
};
// 102 → protocol::public_key_response (1002); 103 → protocol::message_sent (1003).

// Messages handed out by one pull, to be removed once the whole response was written (→ 1004).
struct pull_batch {
  client_id recipient{};
  std::vector<stored_message> messages;
  std::uint32_t payload_size = 0;  // of the 1004 response
};

class request_handler {
 public:
  // The store must outlive the handler.
  request_handler(mailbox_store& store, const server_limits& limits);

  // 100: registers the name and public key under a new random ID.
  registered register_client(const protocol::register_request& request);
  // 101: every client but the requester, in registration order.
  client_list list_clients(const client_id& requester);
  // 102: the target's public key.
  protocol::public_key_response get_public_key(const client_id& requester,
                                               const protocol::get_public_key_request& request);
  // 103, before any content is received: the sender and the destination must be registered.
  void check_send(const client_id& sender, const protocol::send_message_prefix& prefix);
  // 103 with its content (inline or a durable spool file); its ID once committed.
  protocol::message_sent store_message(const client_id& sender, const protocol::send_message_prefix& prefix,
                                       byte_buffer inline_content, std::string content_file);
  // 104: reserves the next messages of the requester's mailbox. Concurrent pulls of one
  // mailbox never hand out the same message.
  pull_batch begin_pull(const client_id& requester);
  // After the whole 1004 response was written: removes the batch's messages.
  void finish_pull(const pull_batch& batch);
  // The response could not be written: the messages stay for the next pull.
  void abort_pull(const pull_batch& batch) noexcept;

  // Every rule violation throws request_rejected; storage failures throw storage_error.

 private:
  void require_registered(const client_id& id);  // and records its last-seen time
  void release(const pull_batch& batch) noexcept;

  struct reservation {
    std::uint32_t last_reserved_id = 0;
    int active_pulls = 0;
  };
  mailbox_store& store_;
  server_limits limits_;
  std::unordered_map<client_id, reservation, client_id_hash> reservations_;
};

}  // namespace letterbox::server
