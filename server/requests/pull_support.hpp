// The parts of a pull shared by v1's 104 (pull_messages.cpp) and v2's 206 (v2_mail.cpp): the
// memory budget share, the pull registration, quarantining broken spool files, and streaming
// the entries (inline contents gathered into large writes, spool files by sendfile(2)).
#pragma once

#include <functional>

#include "request.hpp"

namespace letterbox::server {

// Gives the pull's share of the memory budget back when the flow ends, however it ends.
struct budget_share {
  memory_budget& budget;
  std::uint64_t bytes = 0;
  ~budget_share() { budget.release(bytes); }
};

// Ends the pull's registration when the flow ends, however it ends.
struct pull_registration {
  pull_registry& pulls;
  const client_id& mailbox;
  std::shared_ptr<pull_ticket> ticket;
  ~pull_registration() { pulls.end(mailbox, ticket); }
};

// Takes the pull's share of the server-wide budget of inline content (at least one inline
// content's worth, so a pull always makes progress); see memory_budget::acquire.
boost::asio::awaitable<void> acquire_pull_memory(request& r, budget_share& share);
// After the batch was read: keeps only the share its inline contents use.
void trim_pull_memory(const pull_batch& batch, budget_share& share);

// Removes from the batch the messages whose spool file is missing or shorter than the message
// (quarantined, logged once), before the response header announces every size; recomputes
// batch.payload_size with entry_header_size.
boost::asio::awaitable<void> drop_broken_spool_files(request& r, const client_id& mailbox, pull_batch& batch,
                                                     std::size_t entry_header_size);

// Writes `header`, then for each message entry_header(out, message) and its content. A
// storage_error (a spool file breaking mid-write) is rethrown as a plain error: part of the
// response may be on the wire, the connection must end.
using entry_header_writer = std::function<void(protocol::byte_buffer& out, const stored_message& message)>;
boost::asio::awaitable<void> write_pull_entries(request& r, const pull_batch& batch,
                                                const protocol::response_header_bytes& header,
                                                const entry_header_writer& entry_header);

}  // namespace letterbox::server
