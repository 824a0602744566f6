// Helpers shared by the request flows (see request.hpp).
#include "request.hpp"

#include <spdlog/spdlog.h>

namespace letterbox::server {

std::shared_ptr<pull_ticket> pull_registry::begin(const client_id& mailbox, net::connection& connection) {
  auto ticket = std::make_shared<pull_ticket>();
  ticket->connection = &connection;
  auto& slot = pulls_[mailbox];
  if (const auto earlier = std::exchange(slot, ticket)) {
    if (earlier->writing) {
      spdlog::info("{}: a new pull of mailbox {} ends the pull in progress on {} (its messages stay)",
                   connection.peer(), protocol::to_hex(mailbox), earlier->connection->peer());
      earlier->connection->close();
    } else {
      earlier->superseded = true;
    }
  }
  return ticket;
}

void pull_registry::end(const client_id& mailbox, const std::shared_ptr<pull_ticket>& ticket) noexcept {
  auto it = pulls_.find(mailbox);
  if (it != pulls_.end() && it->second == ticket) pulls_.erase(it);
}

long log_limiter::allow(const std::string& key, std::chrono::steady_clock::time_point now) {
  auto [it, inserted] = keys_.try_emplace(key);
  auto& entry = it->second;
  if (!inserted && now - entry.last < interval_) {
    ++entry.dropped;
    return -1;
  }
  const long dropped = entry.dropped;
  entry = {now, 0};
  if (keys_.size() > 1024) keys_.clear();  // bounded: keys are error kinds, not per request
  return dropped;
}

boost::asio::awaitable<outcome> respond(request& r, protocol::byte_buffer response) {
  co_await r.connection.write(boost::asio::buffer(response));
  const auto header = protocol::decode_response_header(protocol::bytes_view(response).first(protocol::response_header_size));
  co_return outcome{header.code, response.size(), {}, false};
}

}  // namespace letterbox::server
