// The record_store backends the store contract tests run against, each with a way to look at
// its data from outside the store under test, and faulty_records, a wrapper that makes chosen
// operations of any backend fail (a full disk, say).
//
// store_fixture<Backend> is the store under test over one of them.
//
// A backend fixture has: dir (a temporary directory for its files and the spool), records()
// (the backend under test), reopen() (closes it and opens it again on the same data), and
// the inspection helpers client_count(), message_count(), last_seen(id), set_last_seen(text).
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "mailbox_store.hpp"
#include "memory_store.hpp"
#include "record_store.hpp"
#include "server_test_support.hpp"
#include "spool.hpp"
#include "sqlite_store.hpp"

namespace letterbox::server::test {

// server.db in a temporary directory; inspected through a second connection (what the
// sqlite3 shell would see: committed data only).
struct sqlite_backend {
  temp_dir dir;
  std::filesystem::path db_path = dir / "server.db";
  std::unique_ptr<sqlite_store> db = std::make_unique<sqlite_store>(db_path);

  record_store& records() { return *db; }
  void reopen() {  // closing the connection loses an open transaction
    db.reset();
    db = std::make_unique<sqlite_store>(db_path);
  }
  SQLite::Database peek(int flags = SQLite::OPEN_READONLY) const { return SQLite::Database(db_path.string(), flags); }
  int client_count() const { return peek().execAndGet("SELECT count(*) FROM clients").getInt(); }
  int message_count() const { return peek().execAndGet("SELECT count(*) FROM messages").getInt(); }
  int content_count() const { return peek().execAndGet("SELECT count(*) FROM contents").getInt(); }  // shared contents
  std::string last_seen(const protocol::client_id& id) const {
    auto db = peek();
    SQLite::Statement query(db, "SELECT LastSeen FROM clients WHERE ID = ?");
    query.bind(1, id.data(), static_cast<int>(id.size()));
    if (!query.executeStep()) throw std::runtime_error("no such client");
    return query.getColumn(0).getString();
  }
  void set_last_seen(const std::string& text) const {
    peek(SQLite::OPEN_READWRITE).exec("UPDATE clients SET LastSeen = '" + text + "'");
  }
};

// memory_store: reopen() keeps the object (the committed data) and, as a closed connection
// would, loses an open transaction.
struct memory_backend {
  temp_dir dir;  // for the spool
  memory_store memory;

  record_store& records() { return memory; }
  void reopen() { memory.rollback(); }
  int client_count() const { return static_cast<int>(memory.client_count()); }
  int message_count() const { return static_cast<int>(memory.message_count()); }
  int content_count() const { return static_cast<int>(memory.content_count()); }
  std::string last_seen(const protocol::client_id& id) const {
    if (!memory.has_client(id)) throw std::runtime_error("no such client");
    return memory.last_seen(id);
  }
  void set_last_seen(const std::string& text) { memory.set_last_seen_of_all(text); }
};

// Every contract test runs once per backend listed here.
#define STORE_BACKENDS letterbox::server::test::sqlite_backend, letterbox::server::test::memory_backend

// Forwards to another record_store; an operation whose flag is set throws storage_error
// instead (once, then the flag clears), as a backend would on a full or failing disk.
class faulty_records final : public record_store {
 public:
  explicit faulty_records(record_store& inner) : inner_(inner) {}
  bool fail_next_commit = false;
  bool fail_next_update_last_seen = false;
  bool fail_next_insert_message = false;
  bool fail_next_delete = false;
  bool fail_deletes = false;  // every delete while set
  bool fail_next_group_change = false;  // put_group_member

  void begin() override { inner_.begin(); }
  void commit() override {
    fail_if(fail_next_commit, "commit failed: disk full");
    inner_.commit();
  }
  void rollback() noexcept override { inner_.rollback(); }
  void for_each_client(const client_visitor& fn) override { inner_.for_each_client(fn); }
  void for_each_message_location(const std::function<void(const message_location&)>& fn) override {
    inner_.for_each_message_location(fn);
  }
  std::vector<std::string> referenced_content_files() override { return inner_.referenced_content_files(); }
  bool insert_client(const client_record& client, const std::string& now) override {
    return inner_.insert_client(client, now);
  }
  void update_last_seen(const std::vector<protocol::client_id>& ids, const std::string& now) override {
    fail_if(fail_next_update_last_seen, "update last seen failed: disk full");
    inner_.update_last_seen(ids, now);
  }
  void record_last_message_id(const protocol::client_id& client, std::uint32_t id) override {
    inner_.record_last_message_id(client, id);
  }
  std::uint64_t insert_message(const new_message& message, std::uint32_t id, const std::string& now) override {
    fail_if(fail_next_insert_message, "insert failed: disk full");
    return inner_.insert_message(message, id, now);
  }
  std::uint64_t insert_group_message(const new_message& message, const group_id& group, std::uint64_t content,
                                     std::uint32_t id, const std::string& now) override {
    fail_if(fail_next_insert_message, "insert failed: disk full");
    return inner_.insert_group_message(message, group, content, id, now);
  }
  std::optional<message_record> read_message(std::uint64_t row) override { return inner_.read_message(row); }
  std::optional<deleted_message> delete_message(std::uint64_t row, const protocol::client_id& to,
                                                std::uint32_t id) override {
    fail_if(fail_next_delete, "delete failed: disk full");
    if (fail_deletes) throw storage_error("delete failed: disk full");
    return inner_.delete_message(row, to, id);
  }
  void for_each_group(const std::function<void(const group_record&)>& fn) override { inner_.for_each_group(fn); }
  void insert_group(const group_id& id, const std::string& name, const protocol::client_id& admin, bool open,
                    const std::string& now) override {
    inner_.insert_group(id, name, admin, open, now);
  }
  void delete_group(const group_id& id) override { inner_.delete_group(id); }
  void set_group_admin(const group_id& id, const protocol::client_id& admin) override { inner_.set_group_admin(id, admin); }
  void put_group_member(const group_id& id, const protocol::client_id& client, bool member) override {
    fail_if(fail_next_group_change, "group change failed: disk full");
    inner_.put_group_member(id, client, member);
  }
  void delete_group_member(const group_id& id, const protocol::client_id& client) override {
    inner_.delete_group_member(id, client);
  }
  void put_group_ban(const group_id& id, const protocol::client_id& client) override { inner_.put_group_ban(id, client); }
  void delete_group_ban(const group_id& id, const protocol::client_id& client) override {
    inner_.delete_group_ban(id, client);
  }
  std::uint64_t insert_content(const byte_buffer& inline_content, const std::string& content_file,
                               std::uint32_t content_size, std::uint32_t refs) override {
    return inner_.insert_content(inline_content, content_file, content_size, refs);
  }

 private:
  static void fail_if(bool& flag, const char* what) {
    if (flag) {
      flag = false;
      throw storage_error(what);
    }
  }
  record_store& inner_;
};

constexpr std::uint64_t unlimited = ~std::uint64_t{0};
constexpr std::size_t any_count = 1'000'000;

// The store under test: a mailbox_store over a fresh backend of type Backend, through
// faulty_records (faults) so a test can make an operation fail; reopen() closes both and
// opens them again on the same data.
template <typename Backend>
struct store_fixture {
  explicit store_fixture(std::chrono::milliseconds last_seen_flush = deferred_write_interval)
      : last_seen_flush_(last_seen_flush) {}
  Backend backend;
  spool_directory spool{backend.dir / "server.db.spool"};
  std::chrono::milliseconds last_seen_flush_;
  std::unique_ptr<faulty_records> faults = std::make_unique<faulty_records>(backend.records());
  std::unique_ptr<mailbox_store> store = std::make_unique<mailbox_store>(*faults, spool, last_seen_flush_);

  void reopen() {
    store.reset();
    backend.reopen();
    faults = std::make_unique<faulty_records>(backend.records());
    store = std::make_unique<mailbox_store>(*faults, spool, last_seen_flush_);
  }

  bool add_client(std::uint8_t seed, const std::string& name) {
    store->begin();
    const bool added = store->add_client(make_id(seed), name, make_key(seed));
    store->commit();
    return added;
  }
  std::uint32_t add_inline(std::uint8_t to, std::uint8_t from, std::uint8_t type, const byte_buffer& content) {
    new_message message{make_id(to), make_id(from), type, static_cast<std::uint32_t>(content.size()), content, {}};
    store->begin();
    const auto id = store->add_message(message);
    store->commit();
    return id;
  }
  // Writes content to a durable spool file and stores a message referencing it.
  std::pair<std::uint32_t, std::string> add_file(std::uint8_t to, std::uint8_t from, const byte_buffer& content) {
    auto upload = spool.create();
    upload.write(content);
    upload.finish();
    new_message message{make_id(to), make_id(from), 4, static_cast<std::uint32_t>(content.size()), {}, upload.name()};
    store->begin();
    const auto id = store->add_message(message);
    store->commit();
    upload.keep();
    return {id, upload.name()};
  }
  std::vector<stored_message> pending(std::uint8_t to, std::uint32_t after = 0) {
    return store->pending_messages(make_id(to), after, any_count, unlimited, unlimited);
  }
  bool spool_file_exists(const std::string& name) const { return std::filesystem::exists(spool.path() / name); }
};


inline std::vector<std::uint32_t> ids_of(const std::vector<stored_message>& messages) {
  std::vector<std::uint32_t> ids;
  for (const auto& m : messages) ids.push_back(m.id);
  return ids;
}

}  // namespace letterbox::server::test
