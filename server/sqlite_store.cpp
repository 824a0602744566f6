// SQLite implementation of mailbox_store (see sqlite_store.hpp).
#include "sqlite_store.hpp"

#include <sqlite3.h>

#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Transaction.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <limits>

#include "schema.hpp"

namespace letterbox::server {
namespace {

constexpr int busy_timeout_ms = 5000;
constexpr int page_cache_kib = 8192;  // PRAGMA cache_size: bounded, the RSS budget is small
constexpr auto wal_checkpoint_interval = std::chrono::milliseconds(100);
constexpr std::int64_t wal_size_limit = 64ll << 20;  // PRAGMA journal_size_limit: WAL file kept below
// When the WAL holds more pages than this after a commit, the writer itself finishes the
// checkpoint before the next batch (see sqlite_store::commit).
constexpr int wal_catch_up_pages = 4096;  // 16 MiB with 4 KiB pages

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
  return text;
}

template <typename Array>
Array blob_to_array(const SQLite::Column& column) {
  Array out{};
  if (static_cast<std::size_t>(column.getBytes()) != out.size())
    throw storage_error("corrupt row: blob of " + std::to_string(column.getBytes()) + " bytes, expected " +
                        std::to_string(out.size()));
  const auto* data = static_cast<const std::uint8_t*>(column.getBlob());
  std::copy(data, data + out.size(), out.begin());
  return out;
}

// Runs fn, translating SQLite exceptions into the storage layer's one error type.
template <typename F>
auto translate(const char* what, F&& fn) {
  try {
    return fn();
  } catch (const SQLite::Exception& e) {
    throw storage_error(std::string(what) + ": " + e.what());
  }
}

}  // namespace

sqlite_store::sqlite_store(const std::filesystem::path& db_path, spool_directory& spool,
                           std::chrono::milliseconds last_seen_flush)
    : db_(translate("open database", [&] {
        // NOMUTEX: the connection is only ever used by one thread at a time (the storage worker).
        return SQLite::Database(db_path.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX,
                                busy_timeout_ms);
      })),
      spool_(spool),
      last_seen_flush_(last_seen_flush) {
  const int found_version = schema_version();
  if (found_version > static_cast<int>(schema_migrations().size()))
    throw storage_error("database schema version " + std::to_string(found_version) +
                        " is newer than this server (" + std::to_string(schema_migrations().size()) +
                        "); refusing to touch it");
  translate("configure database", [&] {
    db_.exec("PRAGMA journal_mode=WAL");
    db_.exec("PRAGMA synchronous=FULL");  // a 1003 answer means the message is on disk
    db_.exec("PRAGMA foreign_keys=ON");
    db_.exec("PRAGMA cache_size=-" + std::to_string(page_cache_kib));
    db_.exec("PRAGMA wal_autocheckpoint=0");  // wal_checkpointer does it, off the commit path
    db_.exec("PRAGMA journal_size_limit=" + std::to_string(wal_size_limit));
  });
  sqlite3_wal_hook(
      db_.getHandle(),
      [](void* self, sqlite3*, const char*, int pages) {
        static_cast<sqlite_store*>(self)->wal_pages_ = pages;
        return SQLITE_OK;
      },
      this);
  migrate();
  translate("prepare statements", [&] {
    insert_client_ = std::make_unique<SQLite::Statement>(
        db_, "INSERT INTO clients (ID, Name, PublicKey, LastSeen) VALUES (?, ?, ?, ?)");
    insert_message_ = std::make_unique<SQLite::Statement>(
        db_,
        "INSERT INTO messages (ToClient, FromClient, Type, Content, ContentSize, ContentFile, SentAt) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)");
    touch_client_ = std::make_unique<SQLite::Statement>(db_, "UPDATE clients SET LastSeen = ? WHERE ID = ?");
    select_message_ = std::make_unique<SQLite::Statement>(
        db_, "SELECT FromClient, Type, ContentSize, Content, ContentFile FROM messages WHERE ID = ?");
    delete_message_ = std::make_unique<SQLite::Statement>(
        db_, "DELETE FROM messages WHERE ID = ? AND ToClient = ? RETURNING ContentFile");
    select_clients_ = std::make_unique<SQLite::Statement>(db_, "SELECT ID, Name FROM clients ORDER BY rowid");
  });
  load_clients();
  load_mailboxes();
  checkpointer_ = std::make_unique<wal_checkpointer>(db_path);
  auto files = referenced_content_files();
  swept_files_ = spool_.sweep(std::unordered_set<std::string>(files.begin(), files.end()));
}

wal_checkpointer::wal_checkpointer(const std::filesystem::path& db_path)
    : db_(translate("open checkpoint connection",
                    [&] {
                      return SQLite::Database(db_path.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX,
                                              busy_timeout_ms);
                    })),
      thread_([this] { loop(); }) {}

wal_checkpointer::~wal_checkpointer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void wal_checkpointer::loop() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, wal_checkpoint_interval, [&] { return stopping_; })) {
    lock.unlock();
    try {
      db_.exec("PRAGMA wal_checkpoint(PASSIVE)");
    } catch (const SQLite::Exception&) {
      // Busy or failing now: the WAL only grows a little; the next round tries again.
    }
    lock.lock();
  }
}

sqlite_store::~sqlite_store() {
  if (in_batch_) rollback();
}

int sqlite_store::schema_version() {
  return translate("read schema version", [&] { return db_.execAndGet("PRAGMA user_version").getInt(); });
}

void sqlite_store::migrate() {
  const auto& migrations = schema_migrations();
  const int current = schema_version();  // the constructor refused a newer one already
  for (int version = current; version < static_cast<int>(migrations.size()); ++version) {
    const auto& step = migrations[static_cast<std::size_t>(version)];
    translate(("apply schema " + std::string(step.file_name)).c_str(), [&] {
      SQLite::Transaction transaction(db_);
      db_.exec(std::string(step.sql));
      db_.exec("PRAGMA user_version = " + std::to_string(version + 1));
      transaction.commit();
    });
  }
}

void sqlite_store::load_clients() {
  translate("load clients", [&] {
    SQLite::Statement query(db_, "SELECT ID, PublicKey FROM clients");
    while (query.executeStep())
      clients_.emplace(blob_to_array<client_id>(query.getColumn(0)), blob_to_array<public_key>(query.getColumn(1)));
  });
}

void sqlite_store::load_mailboxes() {
  translate("load mailboxes", [&] {
    SQLite::Statement query(db_, "SELECT ID, ToClient FROM messages ORDER BY ID");
    while (query.executeStep())
      mailboxes_[blob_to_array<client_id>(query.getColumn(1))].push_back(
          static_cast<std::uint32_t>(query.getColumn(0).getInt64()));
  });
}

void sqlite_store::apply_batch_to_mailboxes() {
  // New IDs are larger than every ID in the table, so appending keeps each mailbox sorted.
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

void sqlite_store::begin() {
  translate("begin", [&] { db_.exec("BEGIN IMMEDIATE"); });
  in_batch_ = true;
  batch_time_ = utc_now();
}

void sqlite_store::commit() {
  const auto now = std::chrono::steady_clock::now();
  const bool flush_touches = !touched_.empty() && now - last_touch_flush_ >= last_seen_flush_;
  translate("commit", [&] {
    if (flush_touches) {
      for (const auto& id : touched_) {
        touch_client_->tryReset();  // also after an earlier failed exec
        touch_client_->bind(1, batch_time_);
        touch_client_->bind(2, id.data(), static_cast<int>(id.size()));
        touch_client_->exec();
        touch_client_->tryReset();
      }
    }
    db_.exec("COMMIT");  // a batch that wrote nothing commits without an fsync
  });
  in_batch_ = false;
  apply_batch_to_mailboxes();
  // The background checkpointer copies only what was committed before it started, and under
  // steady load there is always a newer commit: the WAL would grow forever. Between two
  // batches nothing else writes, so the writer finishes the copy (most pages are already
  // done) and the next transaction starts the WAL from its beginning again.
  if (wal_pages_ > wal_catch_up_pages) {
    int log_pages = 0, checkpointed = 0;
    if (sqlite3_wal_checkpoint_v2(db_.getHandle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &checkpointed) ==
            SQLITE_OK &&
        log_pages == checkpointed)
      wal_pages_ = 0;
  }
  if (flush_touches) {
    touched_.clear();
    last_touch_flush_ = now;
  }
  added_in_batch_.clear();
  for (const auto& name : files_to_remove_) spool_.remove(name);
  files_to_remove_.clear();
}

void sqlite_store::rollback() noexcept {
  if (sqlite3_get_autocommit(db_.getHandle()) == 0) sqlite3_exec(db_.getHandle(), "ROLLBACK", nullptr, nullptr, nullptr);
  in_batch_ = false;
  messages_added_in_batch_.clear();
  messages_removed_in_batch_.clear();
  for (const auto& id : added_in_batch_) clients_.erase(id);
  added_in_batch_.clear();
  files_to_remove_.clear();
}

bool sqlite_store::client_exists(const client_id& id) { return clients_.count(id) != 0; }

bool sqlite_store::add_client(const client_id& id, const std::string& name, const public_key& key) {
  if (clients_.count(id) != 0) return false;
  return translate("add client", [&] {
    insert_client_->tryReset();
    insert_client_->bind(1, id.data(), static_cast<int>(id.size()));
    insert_client_->bind(2, name);
    insert_client_->bind(3, key.data(), static_cast<int>(key.size()));
    insert_client_->bind(4, batch_time_.empty() ? utc_now() : batch_time_);
    try {
      insert_client_->exec();
    } catch (const SQLite::Exception& e) {
      insert_client_->tryReset();
      if ((e.getExtendedErrorCode() & 0xFF) == SQLITE_CONSTRAINT) return false;  // name (or ID) taken
      throw;
    }
    insert_client_->tryReset();
    clients_.emplace(id, key);
    added_in_batch_.push_back(id);
    return true;
  });
}

std::optional<public_key> sqlite_store::public_key_of(const client_id& id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return std::nullopt;
  return it->second;
}

std::vector<protocol::client_entry> sqlite_store::clients_except(const client_id& except) {
  return translate("list clients", [&] {
    std::vector<protocol::client_entry> result;
    select_clients_->tryReset();
    while (select_clients_->executeStep()) {
      auto id = blob_to_array<client_id>(select_clients_->getColumn(0));
      if (id != except) result.push_back({id, select_clients_->getColumn(1).getString()});
    }
    select_clients_->tryReset();
    return result;
  });
}

void sqlite_store::touch(const client_id& id) { touched_.insert(id); }

std::uint32_t sqlite_store::add_message(const new_message& message) {
  return translate("store message", [&] {
    auto& insert = *insert_message_;
    insert.tryReset();
    insert.bind(1, message.to.data(), static_cast<int>(message.to.size()));
    insert.bind(2, message.from.data(), static_cast<int>(message.from.size()));
    insert.bind(3, static_cast<int>(message.type));
    if (message.content_file.empty()) {
      insert.bindNoCopy(4, message.inline_content.data(), static_cast<int>(message.inline_content.size()));
      insert.bind(6);  // NULL
    } else {
      insert.bind(4);  // NULL
      insert.bindNoCopy(6, message.content_file);
    }
    insert.bind(5, static_cast<std::int64_t>(message.content_size));
    insert.bind(7, batch_time_.empty() ? utc_now() : batch_time_);
    insert.exec();
    insert.tryReset();
    const auto id = db_.getLastInsertRowid();
    if (id <= 0 || id > std::numeric_limits<std::uint32_t>::max()) {
      SQLite::Statement undo(db_, "DELETE FROM messages WHERE ID = ?");
      undo.bind(1, id);
      undo.exec();
      throw storage_error("message IDs exhausted: the next ID does not fit 4 bytes");
    }
    messages_added_in_batch_.emplace_back(message.to, static_cast<std::uint32_t>(id));
    return static_cast<std::uint32_t>(id);
  });
}

std::vector<stored_message> sqlite_store::pending_messages(const client_id& to, std::uint32_t after_id,
                                                           std::size_t max_count, std::uint64_t max_inline_bytes,
                                                           std::uint64_t max_payload_bytes) {
  std::vector<stored_message> result;
  auto mailbox = mailboxes_.find(to);
  if (mailbox == mailboxes_.end()) return result;
  const auto& ids = mailbox->second;
  return translate("read messages", [&] {
    std::uint64_t payload = 0, inline_bytes = 0;
    auto& query = *select_message_;
    for (auto it = std::upper_bound(ids.begin(), ids.end(), after_id); it != ids.end() && result.size() < max_count;
         ++it) {
      query.tryReset();
      query.bind(1, static_cast<std::int64_t>(*it));
      if (!query.executeStep()) continue;  // removed earlier in this batch
      stored_message message;
      message.id = *it;
      message.from = blob_to_array<client_id>(query.getColumn(0));
      message.type = static_cast<std::uint8_t>(query.getColumn(1).getInt());
      message.content_size = static_cast<std::uint32_t>(query.getColumn(2).getInt64());
      const bool in_file = !query.getColumn(4).isNull();
      const std::uint64_t size = protocol::pulled_message_header_size + message.content_size;
      if (payload + size > max_payload_bytes) break;
      if (!in_file && !result.empty() && inline_bytes + message.content_size > max_inline_bytes) break;
      if (in_file) {
        message.content_file = query.getColumn(4).getString();
      } else {
        const auto& content = query.getColumn(3);
        if (static_cast<std::uint64_t>(content.getBytes()) != message.content_size)
          throw storage_error("corrupt message " + std::to_string(message.id) + ": content size mismatch");
        const auto* data = static_cast<const std::uint8_t*>(content.getBlob());
        message.inline_content.assign(data, data + message.content_size);
        inline_bytes += message.content_size;
      }
      payload += size;
      result.push_back(std::move(message));
    }
    query.tryReset();
    return result;
  });
}

void sqlite_store::remove_messages(const client_id& to, const std::vector<std::uint32_t>& ids) {
  translate("remove messages", [&] {
    auto& remove = *delete_message_;
    for (auto id : ids) {
      remove.tryReset();
      remove.bind(1, static_cast<std::int64_t>(id));
      remove.bind(2, to.data(), static_cast<int>(to.size()));
      while (remove.executeStep()) {
        messages_removed_in_batch_.emplace_back(to, id);
        if (!remove.getColumn(0).isNull()) files_to_remove_.push_back(remove.getColumn(0).getString());
      }
    }
    remove.tryReset();
  });
}

std::vector<std::string> sqlite_store::referenced_content_files() {
  return translate("list content files", [&] {
    std::vector<std::string> files;
    SQLite::Statement query(db_, "SELECT ContentFile FROM messages WHERE ContentFile IS NOT NULL");
    while (query.executeStep()) files.push_back(query.getColumn(0).getString());
    return files;
  });
}

}  // namespace letterbox::server
