// The registry of connections (see connection_registry.hpp).
#include "connection_registry.hpp"

#include <algorithm>

namespace letterbox::server::net {

std::size_t connection_registry::count_from(const boost::asio::ip::address& address) const {
  auto it = per_address_.find(network_of(address));
  return it == per_address_.end() ? 0 : it->second;
}

void connection_registry::add(connection& c) {
  index_[&c] = connections_.size();
  connections_.push_back(&c);
  ++per_address_[c.peer_network()];
}

void connection_registry::remove(connection& c) noexcept {
  auto it = index_.find(&c);
  if (it == index_.end()) return;
  const auto index = it->second;
  index_.erase(it);
  connections_[index] = connections_.back();
  connections_.pop_back();
  if (index < connections_.size()) index_[connections_[index]] = index;
  if (auto count = per_address_.find(c.peer_network()); count != per_address_.end() && --count->second == 0)
    per_address_.erase(count);
}

void connection_registry::close_all() noexcept {
  for (auto* c : std::vector<connection*>(connections_)) c->close();
}

std::string connection_registry::close_least_active() {
  const auto now = std::chrono::steady_clock::now();
  // Bytes per second a request has moved since it began (a drip scores low, a transfer high).
  const auto rate = [now](const activity& a) {
    const double seconds = std::max(std::chrono::duration<double>(now - a.since).count(), 0.001);
    return static_cast<double>(a.moved) / seconds;
  };
  connection* victim = nullptr;
  activity chosen{};
  for (auto* c : connections_) {
    if (c->closing()) continue;  // already on its way out
    const auto a = c->activity();
    // Idle ones first, the one idle longest; else the slowest request.
    const bool better = victim == nullptr || (!a.in_request && chosen.in_request) ||
                        (!a.in_request && !chosen.in_request && a.since < chosen.since) ||
                        (a.in_request && chosen.in_request && rate(a) < rate(chosen));
    if (better) {
      victim = c;
      chosen = a;
    }
  }
  if (victim == nullptr) return {};
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - chosen.since);
  std::string what = victim->peer() + (chosen.in_request ? " (in a request for " : " (idle for ") +
                     std::to_string(ms.count()) + " ms" +
                     (chosen.in_request ? ", " + std::to_string(static_cast<long>(rate(chosen))) + " B/s)" : ")");
  victim->close();
  return what;
}

}  // namespace letterbox::server::net
