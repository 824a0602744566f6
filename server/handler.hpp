// Request handling: the protocol's rules that need storage (who is registered, unique names,
// mailboxes), as pure logic over a mailbox_store. Never sees a socket; runs on the storage
// worker's thread. Each function returns the whole encoded success response or throws.
#pragma once

#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "limits.hpp"
#include "messages.hpp"
#include "sqlite_store.hpp"  // client_id_hash
#include "store.hpp"

namespace letterbox::server {

// A request that breaks a rule of the protocol (answered with 9000; the reason is logged).
class request_rejected : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Messages handed out by one pull, to be removed once the whole response was written.
struct pull_batch {
  client_id recipient{};
  std::vector<stored_message> messages;
  std::uint32_t payload_size = 0;  // of the 1004 response
};

class request_handler {
 public:
  // The store must outlive the handler.
  request_handler(mailbox_store& store, const server_limits& limits);

  // 100: registers the name and public key of the payload under a new random ID → 1000.
  byte_buffer register_client(protocol::bytes_view payload);
  // 101 → 1001 with every other client.
  byte_buffer list_clients(const client_id& requester);
  // 102 → 1002 with the target's public key.
  byte_buffer get_public_key(const client_id& requester, protocol::bytes_view payload);
  // 103, before any content is received: the sender and the destination must be registered.
  void check_send(const client_id& sender, const protocol::send_message_prefix& prefix);
  // 103 with its content (inline or a durable spool file) → 1003 once committed.
  byte_buffer store_message(const client_id& sender, const protocol::send_message_prefix& prefix,
                            byte_buffer inline_content, std::string content_file);
  // 104: reserves the next messages of the requester's mailbox. Concurrent pulls of one
  // mailbox never hand out the same message.
  pull_batch begin_pull(const client_id& requester);
  // After the whole 1004 response was written: removes the batch's messages.
  void finish_pull(const pull_batch& batch);
  // The response could not be written: the messages stay for the next pull.
  void abort_pull(const pull_batch& batch) noexcept;

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
