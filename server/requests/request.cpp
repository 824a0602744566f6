// Helpers shared by the request flows (see request.hpp).
#include "request.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <sys/statvfs.h>

namespace letterbox::server {

std::shared_ptr<pull_ticket> pull_registry::begin(const client_id& mailbox, net::connection& connection) {
  auto ticket = std::make_shared<pull_ticket>();
  ticket->connection = &connection;
  auto& slot = pulls_[mailbox];
  if (const auto earlier = std::exchange(slot, ticket); earlier && earlier->writing) {
    spdlog::info("{}: a new pull of mailbox {} ends the pull in progress on {} (its messages stay)", connection.peer(),
                 protocol::to_hex(mailbox), earlier->connection->peer());
    earlier->connection->close();
  }
  return ticket;
}

void pull_registry::end(const client_id& mailbox, const std::shared_ptr<pull_ticket>& ticket) noexcept {
  auto it = pulls_.find(mailbox);
  if (it != pulls_.end() && it->second == ticket) pulls_.erase(it);
}

bool disk_space::allows(std::uint64_t bytes, std::chrono::steady_clock::time_point now) {
  if (min_free_ == 0) return true;
  if (!known_ || now - checked_ >= std::chrono::milliseconds(100)) {
    struct statvfs info {};
    if (::statvfs(directory_.c_str(), &info) == 0) {
      free_ = static_cast<std::uint64_t>(info.f_bavail) * info.f_frsize;
      known_ = true;
    }
    checked_ = now;
  }
  const std::uint64_t wanted = bytes + reserved_;
  return !known_ || (free_ >= wanted && free_ - wanted >= min_free_);  // unknown: let the storage say
}

boost::asio::awaitable<std::uint64_t> memory_budget::acquire(std::uint64_t min, std::uint64_t max,
                                                             const net::connection& connection,
                                                             std::chrono::milliseconds patience) {
  min = std::min(min, total_);
  const auto give_up = std::chrono::steady_clock::now() + patience;
  for (;;) {
    if (cancelled_) throw boost::system::system_error(boost::asio::error::operation_aborted);
    const std::uint64_t free = total_ - used_;
    if (free >= min) {
      const std::uint64_t take = std::clamp(free / 8, min, std::max(min, max));
      used_ += take;
      co_return take;
    }
    if (connection.closing()) throw request_rejected("connection closed while waiting for pull memory");
    if (std::chrono::steady_clock::now() >= give_up)
      throw request_rejected("the memory for pulls in progress stayed taken for " + std::to_string(patience.count()) +
                             " ms (--max-pull-memory); try again");
    // Woken by release(), or every 100 ms to look at the connection and the time.
    boost::asio::steady_timer wake(co_await boost::asio::this_coro::executor, std::chrono::milliseconds(100));
    waiters_.push_back(&wake);
    boost::system::error_code ec;
    co_await wake.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    std::erase(waiters_, &wake);
  }
}

void memory_budget::release(std::uint64_t bytes) noexcept {
  used_ -= std::min(bytes, used_);
  for (auto* waiter : waiters_) waiter->cancel();  // each looks again; those that fit go on
}

void memory_budget::cancel_all() noexcept {
  cancelled_ = true;
  for (auto* waiter : waiters_) waiter->cancel();
}

bool rate_limiter::allow(const boost::asio::ip::address& address, std::chrono::steady_clock::time_point now) {
  const double capacity = per_minute_;
  auto [it, inserted] = buckets_.try_emplace(address, bucket{capacity, now});
  auto& b = it->second;
  b.tokens = std::min(capacity, b.tokens + std::chrono::duration<double>(now - b.updated).count() * capacity / 60.0);
  b.updated = now;
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  if (buckets_.size() > 100'000)  // bounded: forget addresses whose bucket is full again
    std::erase_if(buckets_, [&](const auto& entry) {
      return entry.second.tokens + std::chrono::duration<double>(now - entry.second.updated).count() * capacity / 60.0 >=
             capacity;
    });
  return true;
}

bool rate_limiter::available(const boost::asio::ip::address& address, std::chrono::steady_clock::time_point now) const {
  auto it = buckets_.find(address);
  if (it == buckets_.end()) return per_minute_ >= 1;
  const double capacity = per_minute_;
  return std::min(capacity, it->second.tokens + std::chrono::duration<double>(now - it->second.updated).count() *
                                                    capacity / 60.0) >= 1.0;
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
