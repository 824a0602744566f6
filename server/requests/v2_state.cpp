// Per-connection v2 state and the lease registry (see v2_state.hpp).
#include "v2_state.hpp"

#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <system_error>

namespace letterbox::server {

std::uint64_t next_connection_token() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

protocol::v2::challenge draw_challenge() {
  protocol::v2::challenge out{};
  std::size_t have = 0;
  for (int attempt = 0; have < out.size() && attempt < 100; ++attempt) {
    const ssize_t got = ::getrandom(out.data() + have, out.size() - have, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "getrandom");
    }
    have += static_cast<std::size_t>(got);
  }
  if (have < out.size()) throw std::system_error(EAGAIN, std::generic_category(), "getrandom returned too little");
  return out;
}

std::vector<std::uint32_t> lease_registry::release_others(const client_id& mailbox, std::uint64_t holder,
                                                          clock::time_point now) {
  std::vector<std::uint32_t> kept;
  auto it = mailboxes_.find(mailbox);
  if (it == mailboxes_.end()) return kept;
  std::erase_if(it->second, [&](const auto& entry) { return entry.second.holder != holder || entry.second.expiry <= now; });
  for (const auto& [id, entry] : it->second) kept.push_back(id);
  if (it->second.empty()) mailboxes_.erase(it);
  std::sort(kept.begin(), kept.end());
  return kept;
}

void lease_registry::lease(const client_id& mailbox, std::uint64_t holder, const std::vector<std::uint32_t>& ids,
                           clock::time_point now) {
  if (ids.empty()) return;
  auto& leases = mailboxes_[mailbox];
  for (const auto id : ids) leases[id] = {holder, now + timeout_};
}

void lease_registry::release(const client_id& mailbox, const std::vector<std::uint32_t>& ids) {
  auto it = mailboxes_.find(mailbox);
  if (it == mailboxes_.end()) return;
  for (const auto id : ids) it->second.erase(id);
  if (it->second.empty()) mailboxes_.erase(it);
}

void lease_registry::release_holder(const client_id& mailbox, std::uint64_t holder) noexcept {
  auto it = mailboxes_.find(mailbox);
  if (it == mailboxes_.end()) return;
  std::erase_if(it->second, [&](const auto& entry) { return entry.second.holder == holder; });
  if (it->second.empty()) mailboxes_.erase(it);
}

std::vector<std::uint32_t> lease_registry::in_force(const client_id& mailbox, clock::time_point now) {
  std::vector<std::uint32_t> ids;
  auto it = mailboxes_.find(mailbox);
  if (it == mailboxes_.end()) return ids;
  std::erase_if(it->second, [&](const auto& entry) { return entry.second.expiry <= now; });
  for (const auto& [id, entry] : it->second) ids.push_back(id);
  if (it->second.empty()) mailboxes_.erase(it);
  std::sort(ids.begin(), ids.end());
  return ids;
}

bool lease_registry::holds(const client_id& mailbox, std::uint64_t holder, std::uint32_t id,
                           clock::time_point now) const {
  auto it = mailboxes_.find(mailbox);
  if (it == mailboxes_.end()) return false;
  auto lease = it->second.find(id);
  return lease != it->second.end() && lease->second.holder == holder && lease->second.expiry > now;
}

std::optional<lease_registry::clock::time_point> lease_registry::next_expiry(const client_id& mailbox,
                                                                              clock::time_point now) const {
  auto it = mailboxes_.find(mailbox);
  if (it == mailboxes_.end()) return std::nullopt;
  std::optional<clock::time_point> earliest;
  for (const auto& [id, entry] : it->second)
    if (entry.expiry > now && (!earliest || entry.expiry < *earliest)) earliest = entry.expiry;
  return earliest;
}

std::size_t lease_registry::leased(const client_id& mailbox) const {
  auto it = mailboxes_.find(mailbox);
  return it == mailboxes_.end() ? 0 : it->second.size();
}

}  // namespace letterbox::server
