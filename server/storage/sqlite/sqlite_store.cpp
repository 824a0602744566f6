// SQLite implementation of record_store (see sqlite_store.hpp).
#include "sqlite_store.hpp"

#include <sqlite3.h>

#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Transaction.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include "schema.hpp"
#include "sqlite_errors.hpp"

namespace letterbox::server {
namespace {

constexpr int busy_timeout_ms = 5000;
constexpr int page_cache_kib = 8192;  // PRAGMA cache_size: bounded, the RSS budget is small
constexpr std::uintmax_t wal_size_limit = 64u << 20;  // the WAL file is brought back to this (wal_checkpointer)
// When the WAL holds more pages than this after a commit, the writer itself finishes the
// checkpoint before the next batch (see sqlite_store::finish_checkpoint)...
constexpr int wal_catch_up_pages = 4096;  // 16 MiB with 4 KiB pages
// ... but only when the background checkpointer has copied all but this many: the most a
// commit ever copies (after a long reader the backlog is hundreds of MiB; it is not the
// commit path's to copy).
constexpr int wal_finish_pages = 1024;  // 4 MiB
// Past this many pages, while the checkpointer's rounds are losing ground (commits as fast as
// the disk takes them), each commit also waits, at most wal_throttle_wait, for the round in
// progress, leaving it the disk: the WAL still starts over. A long reader's backlog alone
// does not: rounds that copy it leave less behind each time.
constexpr int wal_throttle_pages = wal_catch_up_pages + wal_finish_pages;  // 20 MiB
constexpr auto wal_throttle_wait = std::chrono::milliseconds(10);

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

// A message ID column: 0..2^32-1, anything else is a corrupt row.
std::uint32_t message_id_of(const SQLite::Column& column) {
  const auto value = column.getInt64();
  if (value < 0 || value > std::numeric_limits<std::uint32_t>::max())
    throw storage_error("corrupt row: message ID " + std::to_string(value));
  return static_cast<std::uint32_t>(value);
}

template <typename Array>
void bind_blob(SQLite::Statement& statement, int index, const Array& bytes) {
  statement.bind(index, bytes.data(), static_cast<int>(bytes.size()));
}

}  // namespace

void sqlite_store::notice_lost_transaction() noexcept {
  if (in_transaction_ && sqlite3_get_autocommit(db_.getHandle()) != 0) transaction_lost_ = true;
}

template <typename F>
auto sqlite_store::checked(const char* what, F&& fn) {
  if (transaction_lost_)
    throw storage_error(std::string(what) + ": the batch's transaction was rolled back by an earlier failure");
  try {
    return fn();
  } catch (const SQLite::Exception& e) {
    notice_lost_transaction();
    throw storage_error(std::string(what) + ": " + e.what());
  }
}

sqlite_store::sqlite_store(const std::filesystem::path& db_path)
    : db_(translate("open database", [&] {
        // NOMUTEX: the connection is only ever used by one thread at a time (the storage worker).
        return SQLite::Database(db_path.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX,
                                busy_timeout_ms);
      })) {
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
    // No journal_size_limit on this connection: SQLite would cut the WAL file inside the first
    // commit after the WAL started over, all at once. wal_checkpointer keeps it to the limit.
  });
  sqlite3_wal_hook(
      db_.getHandle(),
      [](void* self, sqlite3*, const char*, int pages) {
        auto& store = *static_cast<sqlite_store*>(self);
        store.wal_pages_ = pages;
        store.wal_frames_committed_ = true;
        store.wal_copied_ = false;
        return SQLITE_OK;
      },
      this);
  migrate();
  translate("prepare statements", [&] {
    insert_client_ = std::make_unique<SQLite::Statement>(
        db_, "INSERT INTO clients (ID, Name, PublicKey, LastSeen, IdentityKey, AgreementKey, KeySignature) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)");
    insert_message_ = std::make_unique<SQLite::Statement>(
        db_,
        "INSERT INTO messages (ToClient, FromClient, Type, Content, ContentSize, ContentFile, SentAt, MessageID, "
        "GroupID, ContentRef) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    touch_client_ = std::make_unique<SQLite::Statement>(db_, "UPDATE clients SET LastSeen = ? WHERE ID = ?");
    select_message_ = std::make_unique<SQLite::Statement>(
        db_,
        "SELECT m.ToClient, m.FromClient, m.Type, m.ContentSize, coalesce(c.Content, m.Content), "
        "coalesce(c.ContentFile, m.ContentFile), m.MessageID, m.GroupID, m.ContentRef "
        "FROM messages m LEFT JOIN contents c ON c.ID = m.ContentRef WHERE m.ID = ?");
    delete_message_ = std::make_unique<SQLite::Statement>(
        db_, "DELETE FROM messages WHERE ID = ? AND ToClient = ? AND MessageID = ? RETURNING ContentFile, ContentRef");
    release_content_ = std::make_unique<SQLite::Statement>(
        db_, "UPDATE contents SET Refs = Refs - 1 WHERE ID = ? RETURNING Refs, ContentFile");
    record_last_id_ = std::make_unique<SQLite::Statement>(
        db_, "UPDATE clients SET LastMessageID = max(LastMessageID, ?) WHERE ID = ?");
  });
  checkpointer_ = std::make_unique<wal_checkpointer>(db_path, busy_timeout_ms, wal_size_limit);
}

sqlite_store::~sqlite_store() { rollback(); }

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

void sqlite_store::begin() {
  // Waits while the checkpointer cuts the WAL file (one step); not again inside a transaction,
  // where BEGIN fails.
  std::unique_lock wal_file(checkpointer_->wal_file_mutex(), std::defer_lock);
  if (!wal_file_lock_.owns_lock()) wal_file.lock();
  translate("begin", [&] { db_.exec("BEGIN IMMEDIATE"); });
  if (wal_file.owns_lock()) wal_file_lock_ = std::move(wal_file);
  in_transaction_ = true;
  transaction_lost_ = false;
}

void sqlite_store::commit() {
  checked("commit", [&] { db_.exec("COMMIT"); });  // a batch that wrote nothing commits without an fsync
  in_transaction_ = false;
  if (wal_frames_committed_) checkpointer_->wal_committed(wal_pages_);
  wal_frames_committed_ = false;
  if (wal_file_lock_.owns_lock()) wal_file_lock_.unlock();
  finish_checkpoint();
}

void sqlite_store::finish_checkpoint() noexcept {
  if (wal_pages_ <= wal_catch_up_pages || wal_copied_) return;
  // The background checkpointer copies only what was committed before its round began, and
  // under steady load there is always a newer commit: SQLite would never start the WAL from
  // its beginning again, and it would grow forever. Between two batches nothing else writes,
  // so the writer copies the last frames itself and the next transaction restarts the WAL.
  // Only the last few: with more still to copy (behind a reader that ended, or a slow round)
  // the checkpointer is asked for its next round now, and the writer looks again after the
  // next commit.
  const int copied = checkpointer_->copied_frames();
  if (copied > wal_pages_ || wal_pages_ - copied > wal_finish_pages) {
    checkpointer_->hurry(wal_pages_ > wal_throttle_pages ? wal_throttle_wait : std::chrono::milliseconds(0));
    return;
  }
  int log_pages = 0, checkpointed = 0;
  if (sqlite3_wal_checkpoint_v2(db_.getHandle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &checkpointed) ==
          SQLITE_OK &&
      log_pages == checkpointed)
    wal_copied_ = true;
}

void sqlite_store::rollback() noexcept {
  if (sqlite3_get_autocommit(db_.getHandle()) == 0) sqlite3_exec(db_.getHandle(), "ROLLBACK", nullptr, nullptr, nullptr);
  in_transaction_ = false;
  transaction_lost_ = false;
  wal_frames_committed_ = false;  // a rolled-back transaction commits no frame
  if (wal_file_lock_.owns_lock()) wal_file_lock_.unlock();
}

void sqlite_store::for_each_client(const client_visitor& fn) {
  checked("load clients", [&] {
    SQLite::Statement query(db_,
                            "SELECT ID, Name, PublicKey, LastMessageID, IdentityKey, AgreementKey, KeySignature "
                            "FROM clients ORDER BY rowid");
    while (query.executeStep()) {
      client_record client{blob_to_array<client_id>(query.getColumn(0)), query.getColumn(1).getString(),
                           blob_to_array<public_key>(query.getColumn(2)), std::nullopt};
      const bool has_identity = !query.getColumn(4).isNull();
      if (has_identity != !query.getColumn(5).isNull() || has_identity != !query.getColumn(6).isNull())
        throw storage_error("corrupt row: client " + protocol::to_hex(client.id) +
                            " has some but not all of IdentityKey, AgreementKey, KeySignature");
      if (has_identity)
        client.v2 = v2_keys{blob_to_array<protocol::v2::identity_key>(query.getColumn(4)),
                            blob_to_array<protocol::v2::agreement_key>(query.getColumn(5)),
                            blob_to_array<protocol::v2::signature>(query.getColumn(6))};
      fn(client, message_id_of(query.getColumn(3)));
    }
  });
}

void sqlite_store::for_each_message_location(const std::function<void(const message_location&)>& fn) {
  checked("load mailboxes", [&] {
    SQLite::Statement query(db_, "SELECT ID, ToClient, MessageID, ContentSize FROM messages ORDER BY ID");
    while (query.executeStep())
      fn({static_cast<std::uint64_t>(query.getColumn(0).getInt64()), blob_to_array<client_id>(query.getColumn(1)),
          message_id_of(query.getColumn(2)), static_cast<std::uint32_t>(query.getColumn(3).getInt64())});
  });
}

std::vector<std::string> sqlite_store::referenced_content_files() {
  return checked("list content files", [&] {
    std::vector<std::string> files;
    SQLite::Statement query(db_, "SELECT ContentFile FROM messages WHERE ContentFile IS NOT NULL "
                                 "UNION ALL SELECT ContentFile FROM contents WHERE ContentFile IS NOT NULL");
    while (query.executeStep()) files.push_back(query.getColumn(0).getString());
    return files;
  });
}

bool sqlite_store::insert_client(const client_record& client, const std::string& now) {
  return checked("add client", [&] {
    auto& insert = *insert_client_;
    insert.tryReset();
    bind_blob(insert, 1, client.id);
    insert.bind(2, client.name);
    bind_blob(insert, 3, client.key);
    insert.bind(4, now);
    if (client.v2) {
      bind_blob(insert, 5, client.v2->identity);
      bind_blob(insert, 6, client.v2->agreement);
      bind_blob(insert, 7, client.v2->key_signature);
    } else {
      insert.bind(5);  // NULL: a v1 client
      insert.bind(6);
      insert.bind(7);
    }
    try {
      insert.exec();
    } catch (const SQLite::Exception& e) {
      insert.tryReset();
      notice_lost_transaction();  // a constraint failure that rolled everything back is no "name taken"
      if ((e.getExtendedErrorCode() & 0xFF) == SQLITE_CONSTRAINT && !transaction_lost_) return false;  // name (or ID) taken
      throw;
    }
    insert.tryReset();
    return true;
  });
}

void sqlite_store::update_last_seen(const std::vector<client_id>& clients, const std::string& now) {
  checked("update last seen", [&] {
    auto& touch = *touch_client_;
    for (const auto& id : clients) {
      touch.tryReset();  // also after an earlier failed exec
      touch.bind(1, now);
      bind_blob(touch, 2, id);
      touch.exec();
      touch.tryReset();
    }
  });
}

void sqlite_store::record_last_message_id(const client_id& client, std::uint32_t id) {
  checked("record delivered message IDs", [&] {
    auto& update = *record_last_id_;
    update.tryReset();
    update.bind(1, static_cast<std::int64_t>(id));
    bind_blob(update, 2, client);
    update.exec();
    update.tryReset();
  });
}

std::uint64_t sqlite_store::insert_message(const new_message& message, std::uint32_t id, const std::string& now) {
  return insert_row(message, nullptr, 0, id, now);
}

std::uint64_t sqlite_store::insert_group_message(const new_message& message, const group_id& group,
                                                 std::uint64_t content, std::uint32_t id, const std::string& now) {
  return insert_row(message, &group, content, id, now);
}

std::uint64_t sqlite_store::insert_row(const new_message& message, const group_id* group, std::uint64_t content_ref,
                                       std::uint32_t id, const std::string& now) {
  return checked("store message", [&] {
    auto& insert = *insert_message_;
    insert.tryReset();
    bind_blob(insert, 1, message.to);
    bind_blob(insert, 2, message.from);
    insert.bind(3, static_cast<int>(message.type));
    if (message.content_file.empty()) {
      insert.bindNoCopy(4, message.inline_content.data(), static_cast<int>(message.inline_content.size()));
      insert.bind(6);  // NULL
    } else {
      insert.bind(4);  // NULL
      insert.bindNoCopy(6, message.content_file);
    }
    insert.bind(5, static_cast<std::int64_t>(message.content_size));
    insert.bind(7, now);
    insert.bind(8, static_cast<std::int64_t>(id));
    if (group)
      bind_blob(insert, 9, *group);
    else
      insert.bind(9);
    if (group) {
      insert.bind(4);  // the content is the shared one's
      insert.bind(6);
      insert.bind(10, static_cast<std::int64_t>(content_ref));
    } else {
      insert.bind(10);
    }
    insert.exec();
    insert.tryReset();
    return static_cast<std::uint64_t>(db_.getLastInsertRowid());  // 64-bit row keys do not run out
  });
}

std::optional<message_record> sqlite_store::read_message(std::uint64_t row) {
  return checked("read messages", [&]() -> std::optional<message_record> {
    auto& query = *select_message_;
    query.tryReset();
    query.bind(1, static_cast<std::int64_t>(row));
    if (!query.executeStep()) {
      query.tryReset();
      return std::nullopt;
    }
    message_record message;
    message.to = blob_to_array<client_id>(query.getColumn(0));
    message.from = blob_to_array<client_id>(query.getColumn(1));
    message.type = static_cast<std::uint8_t>(query.getColumn(2).getInt());
    message.content_size = static_cast<std::uint32_t>(query.getColumn(3).getInt64());
    message.id = message_id_of(query.getColumn(6));
    if (!query.getColumn(7).isNull()) message.group = blob_to_array<group_id>(query.getColumn(7));
    if (!query.getColumn(8).isNull() && query.getColumn(4).isNull() && query.getColumn(5).isNull())
      throw storage_error("corrupt row: message " + std::to_string(row) + " refers to a missing content");
    if (!query.getColumn(5).isNull()) {
      message.content_file = query.getColumn(5).getString();
    } else {
      const auto& content = query.getColumn(4);
      const auto* data = static_cast<const std::uint8_t*>(content.getBlob());
      message.inline_content.assign(data, data + content.getBytes());
    }
    query.tryReset();
    return message;
  });
}

std::optional<deleted_message> sqlite_store::delete_message(std::uint64_t row, const client_id& to, std::uint32_t id) {
  return checked("remove messages", [&]() -> std::optional<deleted_message> {
    auto& remove = *delete_message_;
    remove.tryReset();
    remove.bind(1, static_cast<std::int64_t>(row));
    bind_blob(remove, 2, to);
    remove.bind(3, static_cast<std::int64_t>(id));
    std::optional<deleted_message> deleted;
    std::optional<std::int64_t> content_ref;
    while (remove.executeStep()) {
      deleted.emplace();
      if (!remove.getColumn(0).isNull()) deleted->content_file = remove.getColumn(0).getString();
      if (!remove.getColumn(1).isNull()) content_ref = remove.getColumn(1).getInt64();
    }
    remove.tryReset();
    if (deleted && content_ref) {  // a group message: the last reference deletes the shared content
      auto& release = *release_content_;
      release.tryReset();
      release.bind(1, *content_ref);
      std::optional<std::int64_t> refs;
      std::string file;
      while (release.executeStep()) {
        refs = release.getColumn(0).getInt64();
        if (!release.getColumn(1).isNull()) file = release.getColumn(1).getString();
      }
      release.tryReset();
      if (refs && *refs == 0) {
        SQLite::Statement drop(db_, "DELETE FROM contents WHERE ID = ?");
        drop.bind(1, *content_ref);
        drop.exec();
        deleted->content_file = std::move(file);
      }
    }
    return deleted;
  });
}

// --- Groups ---------------------------------------------------------------------------------

void sqlite_store::for_each_group(const std::function<void(const group_record&)>& fn) {
  checked("load groups", [&] {
    SQLite::Statement groups(db_, "SELECT ID, Name, Admin, Open FROM groups ORDER BY rowid");
    SQLite::Statement members(db_, "SELECT ClientID, State FROM group_members WHERE GroupID = ? ORDER BY rowid");
    SQLite::Statement bans(db_, "SELECT ClientID FROM group_bans WHERE GroupID = ? ORDER BY rowid");
    while (groups.executeStep()) {
      group_record group;
      group.id = blob_to_array<group_id>(groups.getColumn(0));
      group.name = groups.getColumn(1).getString();
      group.admin = blob_to_array<client_id>(groups.getColumn(2));
      group.open = groups.getColumn(3).getInt() != 0;
      members.reset();
      bind_blob(members, 1, group.id);
      while (members.executeStep())
        (members.getColumn(1).getInt() != 0 ? group.members : group.invited)
            .push_back(blob_to_array<client_id>(members.getColumn(0)));
      bans.reset();
      bind_blob(bans, 1, group.id);
      while (bans.executeStep()) group.banned.push_back(blob_to_array<client_id>(bans.getColumn(0)));
      fn(group);
    }
  });
}

void sqlite_store::insert_group(const group_id& id, const std::string& name, const client_id& admin, bool open,
                                const std::string& now) {
  checked("add group", [&] {
    SQLite::Statement insert(db_, "INSERT INTO groups (ID, Name, Admin, Open, CreatedAt) VALUES (?, ?, ?, ?, ?)");
    bind_blob(insert, 1, id);
    insert.bind(2, name);
    bind_blob(insert, 3, admin);
    insert.bind(4, open ? 1 : 0);
    insert.bind(5, now);
    insert.exec();
  });
}

void sqlite_store::delete_group(const group_id& id) {
  checked("delete group", [&] {
    SQLite::Statement remove(db_, "DELETE FROM groups WHERE ID = ?");  // members and bans: ON DELETE CASCADE
    bind_blob(remove, 1, id);
    remove.exec();
  });
}

void sqlite_store::set_group_admin(const group_id& id, const client_id& admin) {
  checked("set group admin", [&] {
    SQLite::Statement update(db_, "UPDATE groups SET Admin = ? WHERE ID = ?");
    bind_blob(update, 1, admin);
    bind_blob(update, 2, id);
    update.exec();
  });
}

void sqlite_store::put_group_member(const group_id& id, const client_id& client, bool member) {
  checked("add group member", [&] {
    SQLite::Statement remove(db_, "DELETE FROM group_members WHERE GroupID = ? AND ClientID = ?");
    bind_blob(remove, 1, id);
    bind_blob(remove, 2, client);
    remove.exec();
    SQLite::Statement insert(db_, "INSERT INTO group_members (GroupID, ClientID, State) VALUES (?, ?, ?)");
    bind_blob(insert, 1, id);
    bind_blob(insert, 2, client);
    insert.bind(3, member ? 1 : 0);
    insert.exec();
  });
}

void sqlite_store::delete_group_member(const group_id& id, const client_id& client) {
  checked("remove group member", [&] {
    SQLite::Statement remove(db_, "DELETE FROM group_members WHERE GroupID = ? AND ClientID = ?");
    bind_blob(remove, 1, id);
    bind_blob(remove, 2, client);
    remove.exec();
  });
}

void sqlite_store::put_group_ban(const group_id& id, const client_id& client) {
  checked("ban from group", [&] {
    SQLite::Statement insert(db_, "INSERT OR IGNORE INTO group_bans (GroupID, ClientID) VALUES (?, ?)");
    bind_blob(insert, 1, id);
    bind_blob(insert, 2, client);
    insert.exec();
  });
}

void sqlite_store::delete_group_ban(const group_id& id, const client_id& client) {
  checked("unban from group", [&] {
    SQLite::Statement remove(db_, "DELETE FROM group_bans WHERE GroupID = ? AND ClientID = ?");
    bind_blob(remove, 1, id);
    bind_blob(remove, 2, client);
    remove.exec();
  });
}

std::uint64_t sqlite_store::insert_content(const byte_buffer& inline_content, const std::string& content_file,
                                           std::uint32_t content_size, std::uint32_t refs) {
  return checked("store shared content", [&] {
    SQLite::Statement insert(db_, "INSERT INTO contents (Content, ContentSize, ContentFile, Refs) VALUES (?, ?, ?, ?)");
    if (content_file.empty()) {
      insert.bindNoCopy(1, inline_content.data(), static_cast<int>(inline_content.size()));
      insert.bind(3);
    } else {
      insert.bind(1);
      insert.bind(3, content_file);
    }
    insert.bind(2, static_cast<std::int64_t>(content_size));
    insert.bind(4, static_cast<std::int64_t>(refs));
    insert.exec();
    return static_cast<std::uint64_t>(db_.getLastInsertRowid());
  });
}

}  // namespace letterbox::server
