// Request handling: the protocol's rules that need storage (who is registered, unique names,
// mailboxes), as pure logic over a mailbox_store. Never sees a socket or a byte of the wire:
// typed requests in, typed results out (encoded in responses.hpp). Runs on the storage
// worker's thread, inside its batch transaction.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "limits.hpp"
#include "mailbox_store.hpp"
#include "messages.hpp"
#include "messages_v2.hpp"

namespace letterbox::server {

// A request that breaks a rule of the protocol (answered with 9000; the text is logged). A v2
// request's 9000 carries `why` (docs/PROTOCOL.md §18); v1's 9000 has no reason.
class request_rejected : public std::runtime_error {
 public:
  explicit request_rejected(const std::string& what, protocol::v2::reason why = protocol::v2::reason::malformed)
      : std::runtime_error(what), why_(why) {}
  request_rejected(protocol::v2::reason why, const std::string& what) : std::runtime_error(what), why_(why) {}
  protocol::v2::reason why() const noexcept { return why_; }

 private:
  protocol::v2::reason why_;
};

// 100 succeeded: the new client's ID (→ 1000).
struct registered {
  client_id id{};
};
// 102 → protocol::public_key_response (1002); 103 → protocol::message_sent (1003).

// Messages handed out by one pull, to be removed once the whole response was written (→ 1004).
struct pull_batch {
  client_id recipient{};
  std::vector<stored_message> messages;
  std::uint32_t payload_size = 0;  // of the 1004 response
};
// The 1004 payload size of these messages (the 2006 one with v2's 26-byte entry headers).
std::uint32_t pull_payload_size(const std::vector<stored_message>& messages,
                                std::size_t entry_header_size = protocol::pulled_message_header_size);

// While the deletes after a delivered pull fail (a full disk), a message is delivered at most
// this many times; then it is held back until a delete succeeds.
inline constexpr int max_deliveries_while_deletes_fail = 2;

class request_handler {
 public:
  // The store must outlive the handler.
  request_handler(mailbox_store& store, const server_limits& limits);

  // 100: registers the name and public key under a new random ID.
  registered register_client(const protocol::register_request& request);
  // Records that the client made a request now (its last-seen time). 101 is answered from the
  // client directory on the I/O thread (requests/fixed_requests.cpp) and only records this.
  void touch(const client_id& requester) { store_.touch(requester); }
  // 102: the target's public key.
  protocol::public_key_response get_public_key(const client_id& requester,
                                               const protocol::get_public_key_request& request);
  // 103, before any content is received: the sender and the destination must be registered.
  void check_send(const client_id& sender, const protocol::send_message_prefix& prefix);
  // 103 with its content (inline or a durable spool file); its ID once committed.
  protocol::message_sent store_message(const client_id& sender, const protocol::send_message_prefix& prefix,
                                       byte_buffer inline_content, std::string content_file);
  // 104: the oldest messages of the requester's mailbox, within the per-pull limits, except
  // quarantined ones and ones held back after failed deletes. Every pull starts from the
  // oldest (the session ends an earlier pull of the same mailbox, see requests/request.hpp).
  // A pull that is never finished leaves its messages where they are.
  // inline_budget: inline content bytes this pull may hold (at most --max-pull-inline-bytes);
  // by default the per-pull limit.
  pull_batch begin_pull(const client_id& requester, std::uint64_t inline_budget = ~std::uint64_t{0});
  // After the whole 1004 response was written: removes the batch's messages (and retries
  // removing those held back). If that fails, deletes_failed(batch) is recorded and it throws.
  void finish_pull(const pull_batch& batch);
  // The removal of a delivered batch failed (its job threw, or its batch did not commit):
  // counts one more delivery without removal for each of its messages.
  void deletes_failed(const pull_batch& batch) noexcept;
  // Messages of `recipient` whose spool file is missing or shorter than the message: kept,
  // never handed out again by this server process. Returns those not quarantined before.
  std::vector<std::uint32_t> quarantine(const client_id& recipient, const std::vector<std::uint32_t>& ids);

  // --- Protocol v2 (docs/PROTOCOL.md Part II; the signatures are checked before, on the I/O
  // thread) ---
  // REGISTER: stores the client under `id` (derived from its identity key) with every key.
  // request_rejected name_taken, then key_taken when the ID is in use.
  void register_v2_client(const client_id& id, const protocol::v2::register_request& request);
  // The identity key of a v2 client; nullopt for an unknown or a v1 client. Records nothing.
  std::optional<protocol::v2::identity_key> identity_of(const client_id& id) const;
  // KEYS: the target's keys as registered (zeros for a legacy client); unknown_client.
  protocol::v2::keys_response get_keys(const client_id& requester, const client_id& target);
  // PULL: the oldest messages not in `leased` (sorted IDs leased to a live connection) and not
  // held back, within the per-pull limits counted with 26-byte entry headers. Removes nothing.
  pull_batch begin_v2_pull(const client_id& requester, std::uint64_t inline_budget,
                           const std::vector<std::uint32_t>& leased);
  // Live delivery's push (Part V §29): as begin_v2_pull, but at most max_count messages and
  // max_payload bytes of 2006 entries; when that finds nothing and one_large is set, the oldest
  // free message within the per-pull payload limit alone (a window that is empty takes one
  // message larger than itself).
  pull_batch begin_v2_push(const client_id& requester, std::uint64_t inline_budget,
                           const std::vector<std::uint32_t>& leased, std::size_t max_count,
                           std::uint64_t max_payload, bool one_large);
  // ACK: removes those messages of the requester's mailbox (others ignored); how many.
  std::uint32_t acknowledge(const client_id& requester, const std::vector<std::uint32_t>& ids);

  // --- Groups (docs/PROTOCOL.md Part IV; the rules and their order are §22's) ---
  protocol::v2::group_id create_group(const client_id& requester, const protocol::v2::group_create_request& request);
  void invite_to_group(const client_id& requester, const protocol::v2::group_target_request& request);
  void join_group(const client_id& requester, const protocol::v2::group_id& group);
  void leave_group(const client_id& requester, const protocol::v2::group_id& group);
  void kick_from_group(const client_id& requester, const protocol::v2::group_target_request& request);
  void ban_from_group(const client_id& requester, const protocol::v2::group_target_request& request);
  void unban_from_group(const client_id& requester, const protocol::v2::group_target_request& request);
  void hand_over_group(const client_id& requester, const protocol::v2::group_target_request& request);
  std::vector<protocol::v2::group_member_entry> group_members(const client_id& requester,
                                                              const protocol::v2::group_id& group);
  std::vector<protocol::v2::group_entry> groups_for(const client_id& requester);
  // GROUP SEND, before any content is received: the group exists and the sender is a member.
  void check_group_send(const client_id& sender, const protocol::v2::group_id& group);
  // GROUP SEND with its stored content (group ID ‖ content: inline, or a durable spool file):
  // one content for every member but the sender whose quota allows it; the others are skipped.
  protocol::v2::group_sent store_group_message(const client_id& sender, const protocol::send_message_prefix& prefix,
                                               byte_buffer stored_content, std::string content_file);

  // Every rule violation throws request_rejected; storage failures throw storage_error.

 private:
  void require_registered(const client_id& id);  // and records its last-seen time
  const mailbox_store::group_state& require_group(const protocol::v2::group_id& group) const;
  const mailbox_store::group_state& require_admin(const client_id& requester, const protocol::v2::group_id& group) const;
  void leave(const protocol::v2::group_id& group, const client_id& client);  // hands over or deletes
  std::function<bool(std::uint32_t)> held_back_filter(const client_id& mailbox);

  // A pending message a pull must treat specially.
  struct held_message {
    int deliveries_not_removed = 0;
    bool quarantined = false;
    bool held_back() const noexcept {
      return quarantined || deliveries_not_removed >= max_deliveries_while_deletes_fail;
    }
  };
  mailbox_store& store_;
  server_limits limits_;
  std::unordered_map<client_id, std::map<std::uint32_t, held_message>, client_id_hash> held_;
};

}  // namespace letterbox::server
