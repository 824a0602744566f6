// The connections the server holds: shutdown closes them all, the accept loop counts them per
// IP address and, when the server is full, closes the one idle (or slow) longest.
// I/O thread only.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "connection.hpp"

namespace letterbox::server::net {

class connection_registry {
 public:
  std::size_t size() const noexcept { return connections_.size(); }
  // Connections from the address's network (see connection::peer_network).
  std::size_t count_from(const boost::asio::ip::address& address) const;
  // A connection registers for its whole life.
  void add(connection& c);
  void remove(connection& c) noexcept;
  void close_all() noexcept;
  // Closes the connection idle longest — or, when none is idle, the one whose request moves
  // its bytes slowest — and returns a description of it for the log; "" when none.
  std::string close_least_active();

 private:
  std::vector<connection*> connections_;
  std::unordered_map<const connection*, std::size_t> index_;
  std::map<boost::asio::ip::address, std::size_t> per_address_;  // (no std::hash for it in Boost 1.74)
};

}  // namespace letterbox::server::net
