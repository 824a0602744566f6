// The client directory (see client_directory.hpp).
#include "client_directory.hpp"

namespace letterbox::server {

void client_directory::publish(const std::vector<entry>& added) {
  if (added.empty()) return;
  std::unique_lock lock(mutex_);
  for (const auto& entry : added) {
    if (count_ % chunk_size == 0) chunks_.push_back(std::make_unique<chunk>());
    (*chunks_.back())[count_ % chunk_size] = entry;
    ++count_;
    ids_.emplace(entry.client.id, entry.flags);
  }
}

client_directory::snapshot client_directory::current() const {
  std::shared_lock lock(mutex_);
  snapshot s;
  s.chunks_.reserve(chunks_.size());
  for (const auto& c : chunks_) s.chunks_.push_back(c.get());
  s.count_ = count_;
  return s;
}

bool client_directory::contains(const client_id& id) const {
  std::shared_lock lock(mutex_);
  return ids_.count(id) != 0;
}

bool client_directory::is_v2(const client_id& id) const {
  std::shared_lock lock(mutex_);
  auto it = ids_.find(id);
  return it != ids_.end() && (it->second & protocol::v2::client_flag_v2) != 0;
}

std::size_t client_directory::size() const {
  std::shared_lock lock(mutex_);
  return count_;
}

}  // namespace letterbox::server
