// The backend-neutral store policy (see mailbox_store.hpp).
#include "mailbox_store.hpp"

#include <algorithm>
#include <ctime>
#include <limits>

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
  std::vector<client_directory::entry> directory;
  records_.for_each_client([&](const client_record& client, std::uint32_t last_message_id) {
    clients_.emplace(client.id, client_state{client.name, client.key, client.v2, last_message_id, last_message_id, {}});
    names_.insert(client.name);
    directory.push_back({{client.id, client.name}, client.v2 ? protocol::v2::client_flag_v2 : std::uint8_t{0}});
  });
  directory_.publish(directory);
  records_.for_each_message_location([this](const message_location& message) {
    mailboxes_[message.to].push_back({message.id, message.row, message.content_size});
    if (auto client = clients_.find(message.to); client != clients_.end()) {
      client->second.last_id = std::max(client->second.last_id, message.id);
      ++client->second.usage.messages;
      client->second.usage.bytes += message.content_size;
    }
  });
  for (auto& [to, pending] : mailboxes_)  // stored order is send order; make sure of it
    if (!std::is_sorted(pending.begin(), pending.end(), [](const auto& a, const auto& b) { return a.id < b.id; }))
      std::sort(pending.begin(), pending.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  records_.for_each_group([this](const group_record& group) {
    replace_group(group.id, group_state{group.name, group.admin, group.open, group.members, group.invited,
                                        group.banned, ++group_sequence_});
  });
  auto files = records_.referenced_content_files();
  swept_files_ = spool_.sweep(std::unordered_set<std::string>(files.begin(), files.end()));
}

mailbox_store::~mailbox_store() {
  if (in_batch_) rollback();
}

std::string mailbox_store::now() const {
  return batch_time_.empty() ? utc_now() : batch_time_;  // outside a batch (tests): the time now
}

namespace {
bool id_less(const auto& entry, std::uint32_t id) { return entry.id < id; }
}  // namespace

const mailbox_store::pending_entry* mailbox_store::find_pending(const client_id& to, std::uint32_t id) const {
  auto it = mailboxes_.find(to);
  if (it == mailboxes_.end()) return nullptr;
  const auto& pending = it->second;
  auto pos = std::lower_bound(pending.begin(), pending.end(), id, id_less<pending_entry>);
  return pos != pending.end() && pos->id == id ? &*pos : nullptr;
}

void mailbox_store::apply_batch_to_mailboxes() {
  // A mailbox's new IDs are larger than all its IDs, so appending keeps each mailbox sorted.
  for (const auto& [to, entry] : messages_added_in_batch_) mailboxes_[to].push_back(entry);
  messages_added_in_batch_.clear();
  for (const auto& [to, entry] : messages_removed_in_batch_) {
    auto it = mailboxes_.find(to);
    if (it == mailboxes_.end()) continue;
    auto& pending = it->second;
    if (!pending.empty() && pending.front().id == entry.id) {
      pending.pop_front();  // the usual case: delivered in send order
    } else if (auto pos = std::lower_bound(pending.begin(), pending.end(), entry.id, id_less<pending_entry>);
               pos != pending.end() && pos->id == entry.id) {
      pending.erase(pos);
    }
    if (pending.empty()) mailboxes_.erase(it);
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
  // Delivered IDs are recorded with their removal, so a mailbox emptied by a pull never
  // hands out those IDs again, also after a restart. (Pending IDs are in their rows.)
  for (const auto& [client, id] : removed_up_to_)
    if (auto state = clients_.find(client); state != clients_.end() && id > state->second.recorded_id)
      records_.record_last_message_id(client, id);
  records_.commit();  // a batch that wrote nothing commits without an fsync
  group_undo_.clear();
  for (const auto& [client, id] : removed_up_to_)
    if (auto state = clients_.find(client); state != clients_.end())
      state->second.recorded_id = std::max(state->second.recorded_id, id);
  removed_up_to_.clear();
  in_batch_ = false;
  batch_time_.clear();
  apply_batch_to_mailboxes();
  if (flush_touches) {
    touched_.clear();
    last_touch_flush_ = now;
  }
  directory_.publish(added_in_batch_);  // before any job of this batch is answered
  added_in_batch_.clear();
  if (files_to_remove_.empty()) return;
  if (remover_) {
    try {
      remover_(std::exchange(files_to_remove_, {}));
    } catch (...) {
      // The rows are committed: never fail the batch now. The files stay for the next start-up sweep.
    }
    return;
  }
  for (const auto& name : files_to_remove_) spool_.remove(name);
  files_to_remove_.clear();
}

void mailbox_store::rollback() noexcept {
  records_.rollback();
  try {
    for (auto it = group_undo_.rbegin(); it != group_undo_.rend(); ++it) (*it)();
  } catch (...) {
    // Out of memory while restoring the cache: it can only be reloaded by a restart.
  }
  group_undo_.clear();
  in_batch_ = false;
  batch_time_.clear();
  removed_up_to_.clear();
  for (const auto& [to, entry] : messages_added_in_batch_)  // usage back to what was committed
    if (auto state = clients_.find(to); state != clients_.end()) {
      --state->second.usage.messages;
      state->second.usage.bytes -= entry.content_size;
    }
  for (const auto& [to, entry] : messages_removed_in_batch_)
    if (auto state = clients_.find(to); state != clients_.end()) {
      ++state->second.usage.messages;
      state->second.usage.bytes += entry.content_size;
    }
  messages_added_in_batch_.clear();
  messages_removed_in_batch_.clear();
  // IDs given in the failed batch stay used (last_id is not lowered): never delivered, they
  // leave a gap, never a duplicate.
  for (const auto& entry : added_in_batch_) {
    clients_.erase(entry.client.id);
    names_.erase(entry.client.name);
  }
  added_in_batch_.clear();
  files_to_remove_.clear();
  // touched_ stays: the requests were made, whether or not their batch committed.
}

mailbox_usage mailbox_store::usage_of(const client_id& to) const {
  auto it = clients_.find(to);
  return it == clients_.end() ? mailbox_usage{} : it->second.usage;
}

bool mailbox_store::client_exists(const client_id& id) const { return clients_.count(id) != 0; }

bool mailbox_store::has_message_ids_left(const client_id& to) const {
  auto it = clients_.find(to);
  return it != clients_.end() && it->second.last_id != std::numeric_limits<std::uint32_t>::max();
}

bool mailbox_store::add_client(const client_id& id, const std::string& name, const public_key& key,
                               const std::optional<v2_keys>& v2) {
  if (clients_.count(id) != 0) return false;
  if (!records_.insert_client({id, name, key, v2}, now())) return false;
  clients_.emplace(id, client_state{name, key, v2, 0, 0, {}});
  names_.insert(name);
  added_in_batch_.push_back({{id, name}, v2 ? protocol::v2::client_flag_v2 : std::uint8_t{0}});
  return true;
}

std::optional<mailbox_store::client_info> mailbox_store::client_of(const client_id& id) const {
  auto it = clients_.find(id);
  if (it == clients_.end()) return std::nullopt;
  return client_info{it->second.name, it->second.key, it->second.v2};
}

bool mailbox_store::is_v2_client(const client_id& id) const {
  auto it = clients_.find(id);
  return it != clients_.end() && it->second.v2.has_value();
}

std::optional<public_key> mailbox_store::public_key_of(const client_id& id) const {
  auto it = clients_.find(id);
  if (it == clients_.end()) return std::nullopt;
  return it->second.key;
}

std::vector<protocol::client_entry> mailbox_store::clients_except(const client_id& except) const {
  const auto snapshot = directory_.current();
  std::vector<protocol::client_entry> clients;
  clients.reserve(snapshot.size());
  for (std::size_t i = 0; i < snapshot.size(); ++i)
    if (snapshot[i].id != except) clients.push_back(snapshot[i]);
  return clients;
}

void mailbox_store::touch(const client_id& id) { touched_.insert(id); }

std::uint32_t mailbox_store::add_message(const new_message& message) { return add_message_row(message, nullptr, 0); }

std::uint32_t mailbox_store::add_message_row(const new_message& message, const group_id* group, std::uint64_t content) {
  auto recipient = clients_.find(message.to);
  if (recipient == clients_.end()) throw storage_error("store message: recipient " + protocol::to_hex(message.to) + " is not a client");
  auto& last_id = recipient->second.last_id;
  if (last_id == std::numeric_limits<std::uint32_t>::max())
    throw storage_error("mailbox " + protocol::to_hex(message.to) + " has used every 4-byte message ID");
  const std::uint32_t id = last_id + 1;
  const auto row = group ? records_.insert_group_message(message, *group, content, id, now())
                         : records_.insert_message(message, id, now());
  last_id = id;
  messages_added_in_batch_.push_back({message.to, {id, row, message.content_size}});
  ++recipient->second.usage.messages;
  recipient->second.usage.bytes += message.content_size;
  return id;
}

std::vector<stored_message> mailbox_store::pending_messages(const client_id& to, std::uint32_t after_id,
                                                            std::size_t max_count, std::uint64_t max_inline_bytes,
                                                            std::uint64_t max_payload_bytes,
                                                            const std::function<bool(std::uint32_t)>& skip,
                                                            std::size_t entry_header_size) {
  std::vector<stored_message> result;
  auto mailbox = mailboxes_.find(to);
  if (mailbox == mailboxes_.end()) return result;
  const auto& pending = mailbox->second;
  std::uint64_t payload = 0, inline_bytes = 0;
  auto first = std::upper_bound(pending.begin(), pending.end(), after_id,
                                [](std::uint32_t id, const pending_entry& entry) { return id < entry.id; });
  for (auto it = first; it != pending.end() && result.size() < max_count; ++it) {
    if (skip && skip(it->id)) continue;
    auto record = records_.read_message(it->row);
    // Gone (removed earlier in this batch), or the row now holds another message (a row key
    // is reused after the newest row was deleted): never hand out another mailbox's message.
    if (!record || record->to != to || record->id != it->id) continue;
    const bool in_file = !record->content_file.empty();
    const std::uint64_t size = entry_header_size + record->content_size;
    if (payload + size > max_payload_bytes) break;
    if (!in_file && !result.empty() && inline_bytes + record->content_size > max_inline_bytes) break;
    if (!in_file) {
      if (record->inline_content.size() != record->content_size)
        throw storage_error("corrupt message " + std::to_string(it->id) + ": content size mismatch");
      inline_bytes += record->content_size;
    }
    payload += size;
    result.push_back({it->id, record->from, record->type, record->content_size, std::move(record->inline_content),
                      std::move(record->content_file), record->group});
  }
  return result;
}

std::size_t mailbox_store::remove_messages(const client_id& to, const std::vector<std::uint32_t>& ids) {
  std::size_t removed = 0;
  for (auto id : ids) {
    const auto* entry = find_pending(to, id);
    if (entry == nullptr) continue;  // not (or no longer) in this mailbox
    auto deleted = records_.delete_message(entry->row, to, id);
    if (!deleted) continue;
    ++removed;
    messages_removed_in_batch_.push_back({to, *entry});
    if (auto state = clients_.find(to); state != clients_.end()) {
      --state->second.usage.messages;
      state->second.usage.bytes -= entry->content_size;
    }
    auto& up_to = removed_up_to_[to];
    up_to = std::max(up_to, id);
    if (!deleted->content_file.empty()) files_to_remove_.push_back(std::move(deleted->content_file));
  }
  return removed;
}

// --- Groups -----------------------------------------------------------------------------------

namespace {
bool contains(const std::vector<client_id>& ids, const client_id& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}
void erase_id(std::vector<client_id>& ids, const client_id& id) { std::erase(ids, id); }
}  // namespace

bool mailbox_store::group_state::is_member(const client_id& id) const { return contains(members, id); }
bool mailbox_store::group_state::is_invited(const client_id& id) const { return contains(invited, id); }
bool mailbox_store::group_state::is_banned(const client_id& id) const { return contains(banned, id); }

const mailbox_store::group_state* mailbox_store::group(const group_id& id) const {
  auto it = groups_.find(id);
  return it == groups_.end() ? nullptr : &it->second;
}

std::vector<std::pair<group_id, const mailbox_store::group_state*>> mailbox_store::groups() const {
  std::vector<std::pair<group_id, const group_state*>> all;
  all.reserve(groups_.size());
  for (const auto& [id, state] : groups_) all.emplace_back(id, &state);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.second->created < b.second->created; });
  return all;
}

std::size_t mailbox_store::groups_of(const client_id& client) const {
  auto it = groups_per_client_.find(client);
  return it == groups_per_client_.end() ? 0 : it->second;
}

// Sets the cached group (nullopt: none), keeping the per-client counts right.
void mailbox_store::replace_group(const group_id& id, std::optional<group_state> next) {
  if (auto it = groups_.find(id); it != groups_.end()) {
    for (const auto& member : it->second.members)
      if (auto count = groups_per_client_.find(member); count != groups_per_client_.end() && --count->second == 0)
        groups_per_client_.erase(count);
    groups_.erase(it);
  }
  if (!next) return;
  for (const auto& member : next->members) ++groups_per_client_[member];
  groups_.emplace(id, std::move(*next));
}

// Applies `change` to the cached group and records how to undo it if the batch rolls back.
void mailbox_store::change_group(const group_id& id, const std::function<void(group_state&)>& change) {
  auto it = groups_.find(id);
  if (it == groups_.end()) throw storage_error("group " + protocol::to_hex(id) + " is not cached");
  group_state next = it->second;
  change(next);
  std::optional<group_state> before = it->second;
  replace_group(id, std::move(next));
  if (in_batch_) group_undo_.push_back([this, id, before = std::move(before)] { replace_group(id, before); });
}

void mailbox_store::create_group(const group_id& id, const std::string& name, const client_id& admin, bool open) {
  if (groups_.count(id) != 0) throw storage_error("group " + protocol::to_hex(id) + " exists");
  // Each row write is followed by its cache change, so that a failing one (the job fails alone,
  // its batch may still commit) leaves the cache as the rows are.
  records_.insert_group(id, name, admin, open, now());
  replace_group(id, group_state{name, admin, open, {}, {}, {}, ++group_sequence_});
  if (in_batch_) group_undo_.push_back([this, id] { replace_group(id, std::nullopt); });
  add_group_member(id, admin);
}

void mailbox_store::delete_group(const group_id& id) {
  auto it = groups_.find(id);
  if (it == groups_.end()) return;
  records_.delete_group(id);
  std::optional<group_state> before = it->second;
  replace_group(id, std::nullopt);
  if (in_batch_) group_undo_.push_back([this, id, before = std::move(before)] { replace_group(id, before); });
}

void mailbox_store::set_group_admin(const group_id& id, const client_id& admin) {
  records_.set_group_admin(id, admin);
  change_group(id, [&](group_state& g) { g.admin = admin; });
}

void mailbox_store::add_group_member(const group_id& id, const client_id& client) {
  records_.put_group_member(id, client, true);
  change_group(id, [&](group_state& g) {
    erase_id(g.invited, client);
    erase_id(g.members, client);
    g.members.push_back(client);
  });
}

void mailbox_store::invite_to_group(const group_id& id, const client_id& client) {
  records_.put_group_member(id, client, false);
  change_group(id, [&](group_state& g) {
    erase_id(g.invited, client);
    g.invited.push_back(client);
  });
}

void mailbox_store::remove_from_group(const group_id& id, const client_id& client) {
  records_.delete_group_member(id, client);
  change_group(id, [&](group_state& g) {
    erase_id(g.members, client);
    erase_id(g.invited, client);
  });
}

void mailbox_store::ban_from_group(const group_id& id, const client_id& client) {
  remove_from_group(id, client);
  records_.put_group_ban(id, client);
  change_group(id, [&](group_state& g) {
    if (!contains(g.banned, client)) g.banned.push_back(client);
  });
}

void mailbox_store::unban_from_group(const group_id& id, const client_id& client) {
  records_.delete_group_ban(id, client);
  change_group(id, [&](group_state& g) { erase_id(g.banned, client); });
}

std::vector<std::uint32_t> mailbox_store::add_group_message(const group_id& group, const client_id& from,
                                                            std::uint8_t type, std::uint32_t content_size,
                                                            const byte_buffer& inline_content,
                                                            const std::string& content_file,
                                                            const std::vector<client_id>& to) {
  std::vector<std::uint32_t> ids;
  if (to.empty()) return ids;
  // Every refusal add_message_row can make, before anything is written: a job's error does not
  // roll back its own earlier writes (the batch commits), and the content's count must match
  // the rows referring to it. What is left is a database error between two rows (ARCHITECTURE).
  for (const auto& recipient : to) {
    auto state = clients_.find(recipient);
    if (state == clients_.end())
      throw storage_error("store group message: recipient " + protocol::to_hex(recipient) + " is not a client");
    if (state->second.last_id == std::numeric_limits<std::uint32_t>::max())
      throw storage_error("mailbox " + protocol::to_hex(recipient) + " has used every 4-byte message ID");
  }
  const auto content = records_.insert_content(inline_content, content_file, content_size,
                                               static_cast<std::uint32_t>(to.size()));
  ids.reserve(to.size());
  for (const auto& recipient : to) {
    const new_message message{recipient, from, type, content_size, {}, {}};
    ids.push_back(add_message_row(message, &group, content));
  }
  return ids;
}

}  // namespace letterbox::server
