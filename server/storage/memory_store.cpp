// The in-memory record_store (see memory_store.hpp).
#include "memory_store.hpp"

#include <limits>

namespace letterbox::server {

void memory_store::begin() {
  if (in_transaction_) throw storage_error("begin: a transaction is already open");
  in_transaction_ = true;
  undo_log_.clear();
}

void memory_store::commit() {
  if (!in_transaction_) throw storage_error("commit: no transaction is open");
  in_transaction_ = false;
  undo_log_.clear();
}

void memory_store::rollback() noexcept {
  for (auto it = undo_log_.rbegin(); it != undo_log_.rend(); ++it) (*it)();
  undo_log_.clear();
  in_transaction_ = false;
}

void memory_store::on_rollback(std::function<void()> undo) {
  if (in_transaction_) undo_log_.push_back(std::move(undo));  // outside one, a change is final (autocommit)
}

void memory_store::for_each_client(const client_visitor& fn) {
  for (const auto& row : clients_) fn(row.record, row.last_message_id);
}

void memory_store::for_each_message_location(const std::function<void(const message_location&)>& fn) {
  for (const auto& [row, message] : messages_) fn({row, message.to, message.id, message.content_size});
}

std::vector<std::string> memory_store::referenced_content_files() {
  std::vector<std::string> files;
  for (const auto& [id, message] : messages_)
    if (!message.content_file.empty()) files.push_back(message.content_file);
  return files;
}

bool memory_store::insert_client(const client_record& client, const std::string& now) {
  if (client_index_.count(client.id) != 0 || names_.count(client.name) != 0) return false;
  client_index_.emplace(client.id, clients_.size());
  names_.insert(client.name);
  clients_.push_back({client, now});
  on_rollback([this, id = client.id, name = client.name] {
    clients_.pop_back();  // undone in reverse order: the newest client is the last one
    client_index_.erase(id);
    names_.erase(name);
  });
  return true;
}

void memory_store::update_last_seen(const std::vector<client_id>& clients, const std::string& now) {
  for (const auto& id : clients) {
    auto it = client_index_.find(id);
    if (it == client_index_.end()) continue;  // as an UPDATE that matches no row
    auto& row = clients_[it->second];
    on_rollback([this, index = it->second, old = row.last_seen] { clients_[index].last_seen = old; });
    row.last_seen = now;
  }
}

void memory_store::record_last_message_id(const client_id& client, std::uint32_t id) {
  auto it = client_index_.find(client);
  if (it == client_index_.end()) return;  // as an UPDATE that matches no row
  auto& row = clients_[it->second];
  if (id <= row.last_message_id) return;
  on_rollback([this, index = it->second, old = row.last_message_id] { clients_[index].last_message_id = old; });
  row.last_message_id = id;
}

std::uint64_t memory_store::insert_message(const new_message& message, std::uint32_t id, const std::string&) {
  // The schema's constraints: both ends are clients (foreign keys), the type is 1..4, 16 or 17 (CHECK).
  if (client_index_.count(message.to) == 0 || client_index_.count(message.from) == 0)
    throw storage_error("store message: FOREIGN KEY constraint failed");
  if (!is_storable_type(message.type))
    throw storage_error("store message: CHECK constraint failed: Type");
  // As SQLite's rowid: one more than the largest row stored (so a row key can come back
  // after the newest row was deleted; message IDs never do).
  const std::uint64_t row = messages_.empty() ? 1 : messages_.rbegin()->first + 1;
  // Content is kept inline only when there is no spool file (as the Content column: NULL then).
  messages_.emplace(row, message_record{id, message.to, message.from, message.type, message.content_size,
                                        message.content_file.empty() ? message.inline_content : byte_buffer{},
                                        message.content_file});
  on_rollback([this, row] { messages_.erase(row); });
  return row;
}

std::optional<message_record> memory_store::read_message(std::uint64_t row) {
  auto it = messages_.find(row);
  if (it == messages_.end()) return std::nullopt;
  return it->second;
}

std::optional<deleted_message> memory_store::delete_message(std::uint64_t row, const client_id& to, std::uint32_t id) {
  auto it = messages_.find(row);
  if (it == messages_.end() || it->second.to != to || it->second.id != id) return std::nullopt;
  deleted_message deleted{it->second.content_file};
  on_rollback([this, row, message = std::move(it->second)]() mutable { messages_.emplace(row, std::move(message)); });
  messages_.erase(it);
  return deleted;
}

std::string memory_store::last_seen(const client_id& id) const {
  auto it = client_index_.find(id);
  return it == client_index_.end() ? std::string() : clients_[it->second].last_seen;
}

void memory_store::set_last_seen_of_all(const std::string& text) {
  for (auto& row : clients_) row.last_seen = text;
}

}  // namespace letterbox::server
