// The in-memory record_store (see memory_store.hpp).
#include "memory_store.hpp"

#include <algorithm>
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
  for (const auto& [id, content] : contents_)
    if (!content.content_file.empty()) files.push_back(content.content_file);
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
                                        message.content_file, std::nullopt});
  on_rollback([this, row] { messages_.erase(row); });
  return row;
}

std::uint64_t memory_store::insert_group_message(const new_message& message, const group_id& group,
                                                 std::uint64_t content, std::uint32_t id, const std::string& now) {
  if (contents_.count(content) == 0) throw storage_error("store message: FOREIGN KEY constraint failed (ContentRef)");
  const auto row = insert_message(new_message{message.to, message.from, message.type, message.content_size, {}, {}}, id, now);
  messages_[row].group = group;
  message_refs_[row] = content;
  on_rollback([this, row] { message_refs_.erase(row); });
  return row;
}

std::optional<message_record> memory_store::read_message(std::uint64_t row) {
  auto it = messages_.find(row);
  if (it == messages_.end()) return std::nullopt;
  auto record = it->second;
  if (auto ref = message_refs_.find(row); ref != message_refs_.end()) {
    const auto& content = contents_.at(ref->second);
    record.inline_content = content.content_file.empty() ? content.inline_content : byte_buffer{};
    record.content_file = content.content_file;
  }
  return record;
}

std::optional<deleted_message> memory_store::delete_message(std::uint64_t row, const client_id& to, std::uint32_t id) {
  auto it = messages_.find(row);
  if (it == messages_.end() || it->second.to != to || it->second.id != id) return std::nullopt;
  deleted_message deleted{it->second.content_file};
  on_rollback([this, row, message = std::move(it->second)]() mutable { messages_.emplace(row, std::move(message)); });
  messages_.erase(it);
  if (auto ref = message_refs_.find(row); ref != message_refs_.end()) {
    const auto key = ref->second;
    on_rollback([this, row, key] { message_refs_[row] = key; });
    message_refs_.erase(ref);
    auto content = contents_.find(key);
    if (content != contents_.end()) {
      on_rollback([this, key, old = content->second] { contents_[key] = old; });
      if (--content->second.refs == 0) {
        deleted.content_file = content->second.content_file;
        contents_.erase(content);
      }
    }
  }
  return deleted;
}

// --- Groups ---------------------------------------------------------------------------------

void memory_store::for_each_group(const std::function<void(const group_record&)>& fn) {
  std::vector<const group_row*> order;
  for (const auto& [id, row] : groups_) order.push_back(&row);
  std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) { return a->created < b->created; });
  for (const auto* row : order) {
    group_record record = row->record;
    std::vector<std::pair<std::uint64_t, client_id>> members, invited;
    for (auto it = memberships_.lower_bound({record.id, client_id{}}); it != memberships_.end() && it->first.first == record.id; ++it)
      (it->second.member ? members : invited).push_back({it->second.sequence, it->first.second});
    std::sort(members.begin(), members.end());
    std::sort(invited.begin(), invited.end());
    for (const auto& [seq, id] : members) record.members.push_back(id);
    for (const auto& [seq, id] : invited) record.invited.push_back(id);
    for (auto it = bans_.lower_bound({record.id, client_id{}}); it != bans_.end() && it->first == record.id; ++it)
      record.banned.push_back(it->second);
    fn(record);
  }
}

void memory_store::insert_group(const group_id& id, const std::string& name, const client_id& admin, bool open,
                                const std::string&) {
  if (groups_.count(id) != 0) throw storage_error("add group: UNIQUE constraint failed: groups.ID");
  if (client_index_.count(admin) == 0) throw storage_error("add group: FOREIGN KEY constraint failed");
  groups_.emplace(id, group_row{group_record{id, name, admin, open, {}, {}, {}}, ++group_sequence_});
  on_rollback([this, id] { groups_.erase(id); });
}

void memory_store::delete_group(const group_id& id) {
  auto it = groups_.find(id);
  if (it == groups_.end()) return;
  on_rollback([this, id, old = it->second] { groups_.emplace(id, old); });
  groups_.erase(it);
  for (auto m = memberships_.lower_bound({id, client_id{}}); m != memberships_.end() && m->first.first == id;) {
    on_rollback([this, key = m->first, value = m->second] { memberships_[key] = value; });
    m = memberships_.erase(m);
  }
  for (auto b = bans_.lower_bound({id, client_id{}}); b != bans_.end() && b->first == id;) {
    on_rollback([this, key = *b] { bans_.insert(key); });
    b = bans_.erase(b);
  }
}

void memory_store::set_group_admin(const group_id& id, const client_id& admin) {
  auto it = groups_.find(id);
  if (it == groups_.end()) return;  // as an UPDATE that matches no row
  if (client_index_.count(admin) == 0) throw storage_error("set group admin: FOREIGN KEY constraint failed");
  on_rollback([this, id, old = it->second.record.admin] { groups_.at(id).record.admin = old; });
  it->second.record.admin = admin;
}

void memory_store::put_group_member(const group_id& id, const client_id& client, bool member) {
  if (groups_.count(id) == 0 || client_index_.count(client) == 0)
    throw storage_error("add group member: FOREIGN KEY constraint failed");
  const auto key = std::make_pair(id, client);
  auto it = memberships_.find(key);
  if (it != memberships_.end())
    on_rollback([this, key, old = it->second] { memberships_[key] = old; });
  else
    on_rollback([this, key] { memberships_.erase(key); });
  memberships_[key] = membership{member, ++membership_sequence_};
}

void memory_store::delete_group_member(const group_id& id, const client_id& client) {
  auto it = memberships_.find({id, client});
  if (it == memberships_.end()) return;
  on_rollback([this, key = it->first, old = it->second] { memberships_[key] = old; });
  memberships_.erase(it);
}

void memory_store::put_group_ban(const group_id& id, const client_id& client) {
  if (groups_.count(id) == 0 || client_index_.count(client) == 0)
    throw storage_error("add group ban: FOREIGN KEY constraint failed");
  if (bans_.insert({id, client}).second) on_rollback([this, key = std::make_pair(id, client)] { bans_.erase(key); });
}

void memory_store::delete_group_ban(const group_id& id, const client_id& client) {
  if (bans_.erase({id, client}) != 0) on_rollback([this, key = std::make_pair(id, client)] { bans_.insert(key); });
}

std::uint64_t memory_store::insert_content(const byte_buffer& inline_content, const std::string& content_file,
                                           std::uint32_t content_size, std::uint32_t refs) {
  const std::uint64_t key = contents_.empty() ? 1 : contents_.rbegin()->first + 1;
  contents_.emplace(key, content_row{content_file.empty() ? inline_content : byte_buffer{}, content_file, content_size, refs});
  on_rollback([this, key] { contents_.erase(key); });
  return key;
}

std::string memory_store::last_seen(const client_id& id) const {
  auto it = client_index_.find(id);
  return it == client_index_.end() ? std::string() : clients_[it->second].last_seen;
}

void memory_store::set_last_seen_of_all(const std::string& text) {
  for (auto& row : clients_) row.last_seen = text;
}

}  // namespace letterbox::server
