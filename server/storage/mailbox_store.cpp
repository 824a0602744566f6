// The backend-neutral store policy (see mailbox_store.hpp).
#include "mailbox_store.hpp"

#include <algorithm>
#include <ctime>

namespace letterbox::server {
namespace {

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
  return text;
}

}  // namespace

mailbox_store::mailbox_store(record_store& records, spool_directory& spool, std::chrono::milliseconds last_seen_flush)
    : records_(records), spool_(spool), last_seen_flush_(last_seen_flush) {
  records_.for_each_client([this](const client_id& id, const public_key& key) { clients_.emplace(id, key); });
  records_.for_each_message_location(
      [this](const message_location& message) { mailboxes_[message.to].push_back(message.id); });
  auto files = records_.referenced_content_files();
  swept_files_ = spool_.sweep(std::unordered_set<std::string>(files.begin(), files.end()));
}

mailbox_store::~mailbox_store() {
  if (in_batch_) rollback();
}

std::string mailbox_store::now() const {
  return batch_time_.empty() ? utc_now() : batch_time_;  // outside a batch (tests): the time now
}

void mailbox_store::apply_batch_to_mailboxes() {
  // New IDs are larger than every ID stored, so appending keeps each mailbox sorted.
  for (const auto& [to, id] : messages_added_in_batch_) mailboxes_[to].push_back(id);
  messages_added_in_batch_.clear();
  for (const auto& [to, id] : messages_removed_in_batch_) {
    auto it = mailboxes_.find(to);
    if (it == mailboxes_.end()) continue;
    auto& ids = it->second;
    if (!ids.empty() && ids.front() == id) {
      ids.pop_front();  // the usual case: delivered in send order
    } else if (auto pos = std::lower_bound(ids.begin(), ids.end(), id); pos != ids.end() && *pos == id) {
      ids.erase(pos);
    }
    if (ids.empty()) mailboxes_.erase(it);
  }
  messages_removed_in_batch_.clear();
}

void mailbox_store::begin() {
  records_.begin();
  in_batch_ = true;
  batch_time_ = utc_now();
}

void mailbox_store::commit() {
  const auto now = std::chrono::steady_clock::now();
  const bool flush_touches = !touched_.empty() && now - last_touch_flush_ >= last_seen_flush_;
  if (flush_touches) records_.update_last_seen(std::vector<client_id>(touched_.begin(), touched_.end()), batch_time_);
  records_.commit();  // a batch that wrote nothing commits without an fsync
  in_batch_ = false;
  batch_time_.clear();
  apply_batch_to_mailboxes();
  if (flush_touches) {
    touched_.clear();
    last_touch_flush_ = now;
  }
  added_in_batch_.clear();
  for (const auto& name : files_to_remove_) spool_.remove(name);
  files_to_remove_.clear();
}

void mailbox_store::rollback() noexcept {
  records_.rollback();
  in_batch_ = false;
  batch_time_.clear();
  messages_added_in_batch_.clear();
  messages_removed_in_batch_.clear();
  for (const auto& id : added_in_batch_) clients_.erase(id);
  added_in_batch_.clear();
  files_to_remove_.clear();
  // touched_ stays: the requests were made, whether or not their batch committed.
}

bool mailbox_store::client_exists(const client_id& id) const { return clients_.count(id) != 0; }

bool mailbox_store::add_client(const client_id& id, const std::string& name, const public_key& key) {
  if (clients_.count(id) != 0) return false;
  if (!records_.insert_client({id, name, key}, now())) return false;
  clients_.emplace(id, key);
  added_in_batch_.push_back(id);
  return true;
}

std::optional<public_key> mailbox_store::public_key_of(const client_id& id) const {
  auto it = clients_.find(id);
  if (it == clients_.end()) return std::nullopt;
  return it->second;
}

std::vector<protocol::client_entry> mailbox_store::clients_except(const client_id& except) {
  auto clients = records_.list_clients();
  std::erase_if(clients, [&](const protocol::client_entry& entry) { return entry.id == except; });
  return clients;
}

void mailbox_store::touch(const client_id& id) { touched_.insert(id); }

std::uint32_t mailbox_store::add_message(const new_message& message) {
  const auto id = records_.insert_message(message, now());
  messages_added_in_batch_.emplace_back(message.to, id);
  return id;
}

std::vector<stored_message> mailbox_store::pending_messages(const client_id& to, std::uint32_t after_id,
                                                            std::size_t max_count, std::uint64_t max_inline_bytes,
                                                            std::uint64_t max_payload_bytes) {
  std::vector<stored_message> result;
  auto mailbox = mailboxes_.find(to);
  if (mailbox == mailboxes_.end()) return result;
  const auto& ids = mailbox->second;
  std::uint64_t payload = 0, inline_bytes = 0;
  for (auto it = std::upper_bound(ids.begin(), ids.end(), after_id); it != ids.end() && result.size() < max_count;
       ++it) {
    auto record = records_.read_message(*it);
    if (!record) continue;  // removed earlier in this batch
    const bool in_file = !record->content_file.empty();
    const std::uint64_t size = protocol::pulled_message_header_size + record->content_size;
    if (payload + size > max_payload_bytes) break;
    if (!in_file && !result.empty() && inline_bytes + record->content_size > max_inline_bytes) break;
    if (!in_file) {
      if (record->inline_content.size() != record->content_size)
        throw storage_error("corrupt message " + std::to_string(*it) + ": content size mismatch");
      inline_bytes += record->content_size;
    }
    payload += size;
    result.push_back({*it, record->from, record->type, record->content_size, std::move(record->inline_content),
                      std::move(record->content_file)});
  }
  return result;
}

void mailbox_store::remove_messages(const client_id& to, const std::vector<std::uint32_t>& ids) {
  for (auto id : ids) {
    auto deleted = records_.delete_message(to, id);
    if (!deleted) continue;
    messages_removed_in_batch_.emplace_back(to, id);
    if (!deleted->content_file.empty()) files_to_remove_.push_back(std::move(deleted->content_file));
  }
}

}  // namespace letterbox::server
