// record_store in memory: the semantics of sqlite_store that the contract tests check (the
// schema's constraints included) without a file, for the handler and worker tests and as the reference a new backend
// is compared with. Transactions keep an undo log; nothing survives the object.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "record_store.hpp"

namespace letterbox::server {

class memory_store final : public record_store {
 public:
  memory_store() = default;
  memory_store(const memory_store&) = delete;
  memory_store& operator=(const memory_store&) = delete;

  // Throws storage_error for a begin() inside a transaction, as SQLite does.
  void begin() override;
  void commit() override;
  void rollback() noexcept override;

  void for_each_client(const client_visitor& fn) override;
  void for_each_message_location(const std::function<void(const message_location&)>& fn) override;
  std::vector<std::string> referenced_content_files() override;

  bool insert_client(const client_record& client, const std::string& now) override;
  void update_last_seen(const std::vector<client_id>& clients, const std::string& now) override;
  void record_last_message_id(const client_id& client, std::uint32_t id) override;
  std::uint64_t insert_message(const new_message& message, std::uint32_t id, const std::string& now) override;
  std::uint64_t insert_group_message(const new_message& message, const group_id& group, std::uint64_t content,
                                     std::uint32_t id, const std::string& now) override;
  std::optional<message_record> read_message(std::uint64_t row) override;
  std::optional<deleted_message> delete_message(std::uint64_t row, const client_id& to, std::uint32_t id) override;

  void for_each_group(const std::function<void(const group_record&)>& fn) override;
  void insert_group(const group_id& id, const std::string& name, const client_id& admin, bool open,
                    const std::string& now) override;
  void delete_group(const group_id& id) override;
  void set_group_admin(const group_id& id, const client_id& admin) override;
  void put_group_member(const group_id& id, const client_id& client, bool member) override;
  void delete_group_member(const group_id& id, const client_id& client) override;
  void put_group_ban(const group_id& id, const client_id& client) override;
  void delete_group_ban(const group_id& id, const client_id& client) override;
  std::uint64_t insert_content(const byte_buffer& inline_content, const std::string& content_file,
                               std::uint32_t content_size, std::uint32_t refs) override;

  // For tests: what is stored, seen from outside the store under test.
  bool has_client(const client_id& id) const { return client_index_.count(id) != 0; }
  std::string last_seen(const client_id& id) const;  // "" when unknown
  void set_last_seen_of_all(const std::string& text);
  std::size_t client_count() const noexcept { return clients_.size(); }
  std::size_t message_count() const noexcept { return messages_.size(); }
  std::size_t content_count() const noexcept { return contents_.size(); }  // shared contents

 private:
  struct client_row {
    client_record record;
    std::string last_seen;
    std::uint32_t last_message_id = 0;
  };
  void on_rollback(std::function<void()> undo);

  std::vector<client_row> clients_;  // registration order
  std::unordered_map<client_id, std::size_t, client_id_hash> client_index_;
  std::unordered_set<std::string> names_;
  std::map<std::uint64_t, message_record> messages_;  // by row
  std::map<std::uint64_t, std::uint64_t> message_refs_;  // row → its shared content (ContentRef)
  struct content_row {
    byte_buffer inline_content;
    std::string content_file;
    std::uint32_t content_size = 0;
    std::uint32_t refs = 0;
  };
  std::map<std::uint64_t, content_row> contents_;
  struct group_row {
    group_record record;  // members and invitations: see memberships
    std::uint64_t created = 0;
  };
  // The groups in creation order, and each (group, client) row with its join sequence.
  std::map<group_id, group_row> groups_;
  std::uint64_t group_sequence_ = 0;
  struct membership {
    bool member = false;
    std::uint64_t sequence = 0;  // as a rowid: order of insertion
  };
  std::map<std::pair<group_id, client_id>, membership> memberships_;
  std::set<std::pair<group_id, client_id>> bans_;
  std::uint64_t membership_sequence_ = 0;
  bool in_transaction_ = false;
  std::vector<std::function<void()>> undo_log_;  // run backwards by rollback()
};

}  // namespace letterbox::server
