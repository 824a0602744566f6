// Tests of sqlite_store (server/sqlite_store.hpp) on a database in a temporary directory:
// edge cases first (empty, unknown, newer schema, zero-size content), then clients, messages,
// pull limits, transactions, durability across reopening and the start-up sweep.
#include <doctest/doctest.h>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <memory>
#include <regex>
#include <thread>

#include "schema.hpp"
#include "server_test_support.hpp"
#include "spool.hpp"
#include "sqlite_store.hpp"

using namespace letterbox::server;
using namespace letterbox::server::test;
using letterbox::protocol::byte_buffer;
using letterbox::protocol::client_entry;
using letterbox::protocol::pulled_message_header_size;

namespace {

constexpr std::uint64_t unlimited = ~std::uint64_t{0};
constexpr std::size_t any_count = 1'000'000;

// A store on server.db in a fresh temporary directory; reopen() closes and opens it again.
struct store_fixture {
  temp_dir dir;
  std::filesystem::path db_path = dir / "server.db";
  spool_directory spool{dir / "server.db.spool"};
  std::unique_ptr<sqlite_store> store = std::make_unique<sqlite_store>(db_path, spool);

  void reopen() {
    store.reset();
    store = std::make_unique<sqlite_store>(db_path, spool);
  }
  // A second, independent connection to the same file (what the sqlite3 shell would see).
  SQLite::Database peek(int flags = SQLite::OPEN_READONLY) const { return SQLite::Database(db_path.string(), flags); }

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

std::string utc_text(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
  return text;
}
std::string utc_now_text() { return utc_text(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now())); }

std::string last_seen_of(const SQLite::Database& db, std::uint8_t seed) {
  SQLite::Statement query(db, "SELECT LastSeen FROM clients WHERE ID = ?");
  const auto id = make_id(seed);
  query.bind(1, id.data(), static_cast<int>(id.size()));
  REQUIRE(query.executeStep());
  return query.getColumn(0).getString();
}

std::vector<std::uint32_t> ids_of(const std::vector<stored_message>& messages) {
  std::vector<std::uint32_t> ids;
  for (const auto& m : messages) ids.push_back(m.id);
  return ids;
}

}  // namespace

// --- Edge cases --------------------------------------------------------------------------

TEST_CASE("store: a fresh database gets the whole schema, user_version = number of migrations, WAL mode") {
  store_fixture f;
  const int migrations = static_cast<int>(schema_migrations().size());
  REQUIRE(migrations >= 1);
  CHECK(f.store->schema_version() == migrations);

  auto db = f.peek();
  CHECK(db.execAndGet("PRAGMA user_version").getInt() == migrations);
  CHECK(db.execAndGet("PRAGMA journal_mode").getString() == "wal");
  CHECK(db.tableExists("clients"));
  CHECK(db.tableExists("messages"));
  CHECK(db.execAndGet("SELECT count(*) FROM clients").getInt() == 0);
  CHECK(db.execAndGet("SELECT count(*) FROM messages").getInt() == 0);
  // The column names of the original design are there (PROTOCOL.md "Server storage").
  CHECK_NOTHROW(db.exec("SELECT ID, Name, PublicKey, LastSeen FROM clients"));
  CHECK_NOTHROW(db.exec("SELECT ID, ToClient, FromClient, Type, Content FROM messages"));
  // synchronous is a per-connection setting that a second connection cannot observe and the
  // store does not expose; only the WAL file of the store's connection is checked here.
  CHECK(std::filesystem::exists(f.dir / "server.db-wal"));
}

TEST_CASE("store: a database whose user_version is newer than the server is refused with storage_error") {
  temp_dir dir;
  const auto db_path = dir / "server.db";
  const int newer = static_cast<int>(schema_migrations().size()) + 1;
  {
    SQLite::Database db(db_path.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("CREATE TABLE future_table (x INTEGER)");
    db.exec("PRAGMA user_version = " + std::to_string(newer));
  }
  spool_directory spool(dir / "server.db.spool");
  CHECK_THROWS_AS(sqlite_store(db_path, spool), storage_error);
  SQLite::Database db(db_path.string(), SQLite::OPEN_READONLY);
  CHECK(db.execAndGet("PRAGMA user_version").getInt() == newer);  // left as it was
  CHECK_FALSE(db.tableExists("clients"));
}

TEST_CASE("store: an unknown client does not exist, has no key, and an empty mailbox has nothing pending") {
  store_fixture f;
  CHECK_FALSE(f.store->client_exists(make_id(1)));
  CHECK_FALSE(f.store->public_key_of(make_id(1)).has_value());
  CHECK(f.store->clients_except(make_id(1)).empty());
  CHECK(f.pending(1).empty());
  CHECK(f.store->referenced_content_files().empty());
  f.store->begin();
  CHECK_NOTHROW(f.store->remove_messages(make_id(1), {1, 2, 3}));  // nothing to remove
  CHECK_NOTHROW(f.store->remove_messages(make_id(1), {}));
  f.store->commit();
}

TEST_CASE("store: an empty (0-byte) inline content round-trips, also after reopening") {
  store_fixture f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  const auto id = f.add_inline(2, 1, 1, {});
  for (int pass = 0; pass < 2; ++pass) {
    CAPTURE(pass);
    auto pending = f.pending(2);
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].id == id);
    CHECK(pending[0].from == make_id(1));
    CHECK(pending[0].type == 1);
    CHECK(pending[0].content_size == 0);
    CHECK(pending[0].inline_content.empty());
    CHECK(pending[0].content_file.empty());
    f.reopen();
  }
}

TEST_CASE("store: pending_messages with max_count 0 returns nothing; a tiny inline budget still returns one") {
  store_fixture f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  const auto first = f.add_inline(2, 1, 3, make_content(100, 1));
  f.add_inline(2, 1, 3, make_content(100, 2));
  CHECK(f.store->pending_messages(make_id(2), 0, 0, unlimited, unlimited).empty());
  auto one = f.store->pending_messages(make_id(2), 0, any_count, 0, unlimited);
  REQUIRE(one.size() == 1);  // at least one message even when it alone exceeds the inline budget
  CHECK(one[0].id == first);
  CHECK(one[0].inline_content == make_content(100, 1));
}

TEST_CASE("store: pending_messages returns nothing when the first message does not fit the payload limit") {
  store_fixture f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  f.add_inline(2, 1, 3, make_content(100, 1));
  const std::uint64_t exact = pulled_message_header_size + 100;
  CHECK(f.store->pending_messages(make_id(2), 0, any_count, unlimited, exact - 1).empty());
  CHECK(f.store->pending_messages(make_id(2), 0, any_count, unlimited, exact).size() == 1);
}

// --- Clients -----------------------------------------------------------------------------

TEST_CASE("store: add_client, duplicate name, client_exists, public_key_of") {
  store_fixture f;
  CHECK(f.add_client(1, "alice"));
  CHECK(f.add_client(2, "bob"));
  CHECK_FALSE(f.add_client(3, "alice"));  // name taken: false, nothing changes
  CHECK_FALSE(f.add_client(1, "alice2"));  // ID taken
  CHECK(f.store->client_exists(make_id(1)));
  CHECK(f.store->client_exists(make_id(2)));
  CHECK_FALSE(f.store->client_exists(make_id(3)));
  CHECK(f.store->public_key_of(make_id(1)) == make_key(1));
  CHECK(f.store->public_key_of(make_id(2)) == make_key(2));
  CHECK_FALSE(f.store->public_key_of(make_id(3)).has_value());

  auto db = f.peek();
  CHECK(db.execAndGet("SELECT count(*) FROM clients").getInt() == 2);
  CHECK(db.execAndGet("SELECT count(*) FROM clients WHERE Name = 'alice2'").getInt() == 0);
  SQLite::Statement key_query(db, "SELECT PublicKey FROM clients WHERE Name = 'bob'");
  REQUIRE(key_query.executeStep());
  const auto key = make_key(2);
  REQUIRE(key_query.getColumn(0).getBytes() == static_cast<int>(key.size()));
  CHECK(std::equal(key.begin(), key.end(), static_cast<const std::uint8_t*>(key_query.getColumn(0).getBlob())));
}

TEST_CASE("store: a duplicate name within one batch is refused and the batch goes on") {
  store_fixture f;
  f.store->begin();
  CHECK(f.store->add_client(make_id(1), "carol", make_key(1)));
  CHECK_FALSE(f.store->add_client(make_id(2), "carol", make_key(2)));
  CHECK(f.store->add_client(make_id(3), "dave", make_key(3)));
  f.store->commit();
  CHECK(f.store->client_exists(make_id(1)));
  CHECK_FALSE(f.store->client_exists(make_id(2)));
  CHECK(f.store->client_exists(make_id(3)));
  CHECK(f.peek().execAndGet("SELECT count(*) FROM clients").getInt() == 2);
}

TEST_CASE("store: clients_except lists the others in registration order") {
  store_fixture f;
  // IDs chosen so that registration order differs from ID byte order.
  REQUIRE(f.add_client(9, "zoe"));
  REQUIRE(f.add_client(2, "adam"));
  REQUIRE(f.add_client(5, "mia"));
  CHECK(f.store->clients_except(make_id(2)) ==
        std::vector<client_entry>{{make_id(9), "zoe"}, {make_id(5), "mia"}});
  CHECK(f.store->clients_except(make_id(9)) ==
        std::vector<client_entry>{{make_id(2), "adam"}, {make_id(5), "mia"}});
  CHECK(f.store->clients_except(make_id(77)) ==
        std::vector<client_entry>{{make_id(9), "zoe"}, {make_id(2), "adam"}, {make_id(5), "mia"}});
}

TEST_CASE("store: touch writes LastSeen as 'YYYY-MM-DD HH:MM:SS' UTC at commit, not before") {
  store_fixture f;
  f.store.reset();
  f.store = std::make_unique<sqlite_store>(f.db_path, f.spool, std::chrono::milliseconds(0));  // no deferral
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  const std::regex format(R"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})");
  CHECK(std::regex_match(last_seen_of(f.peek(), 1), format));  // set at registration

  const std::string old = "2000-01-01 00:00:00";
  f.peek(SQLite::OPEN_READWRITE).exec("UPDATE clients SET LastSeen = '" + old + "'");

  // The request was made even if its batch failed: a rollback keeps the touch for later.
  f.store->begin();
  f.store->touch(make_id(1));
  f.store->rollback();
  CHECK(last_seen_of(f.peek(), 1) == old);
  CHECK(f.store->has_deferred_writes());

  const auto before = utc_now_text();
  f.store->begin();
  f.store->touch(make_id(1));
  f.store->touch(make_id(1));
  CHECK(last_seen_of(f.peek(), 1) == old);  // not written before the commit
  f.store->commit();
  const auto after = utc_now_text();
  const auto seen = last_seen_of(f.peek(), 1);
  CHECK(std::regex_match(seen, format));
  CHECK(seen >= before);
  CHECK(seen <= after);
  CHECK(last_seen_of(f.peek(), 2) == old);  // untouched
  CHECK_FALSE(f.store->has_deferred_writes());
}

TEST_CASE("store: last-seen times are deferred until last_seen_flush_interval passed, then any batch writes them") {
  store_fixture f;  // default interval
  REQUIRE(f.add_client(1, "alice"));
  const std::string old = "2000-01-01 00:00:00";
  f.peek(SQLite::OPEN_READWRITE).exec("UPDATE clients SET LastSeen = '" + old + "'");

  f.store->begin();
  f.store->touch(make_id(1));
  f.store->commit();
  CHECK(last_seen_of(f.peek(), 1) == old);  // deferred: a batch of reads costs no fsync
  CHECK(f.store->has_deferred_writes());

  f.store->begin();
  REQUIRE(f.store->add_client(make_id(2), "bob", make_key(2)));
  f.store->commit();
  CHECK(last_seen_of(f.peek(), 1) == old);  // still deferred, even in a batch that writes
  CHECK(f.store->has_deferred_writes());

  std::this_thread::sleep_for(last_seen_flush_interval + std::chrono::milliseconds(100));
  f.store->begin();
  f.store->commit();  // what the storage worker's idle flush does
  CHECK(last_seen_of(f.peek(), 1) != old);
  CHECK_FALSE(f.store->has_deferred_writes());
}

TEST_CASE("store: a failed LastSeen update at commit does not break later commits") {
  store_fixture f;
  f.store.reset();
  f.store = std::make_unique<sqlite_store>(f.db_path, f.spool, std::chrono::milliseconds(0));  // no deferral
  REQUIRE(f.add_client(1, "alice"));
  // A trigger makes the UPDATE that touch() issues at commit fail once.
  f.peek(SQLite::OPEN_READWRITE)
      .exec("CREATE TRIGGER fail_touch BEFORE UPDATE OF LastSeen ON clients BEGIN SELECT RAISE(ABORT, 'disk trouble'); END");
  f.store->begin();
  f.store->touch(make_id(1));
  CHECK_THROWS_AS(f.store->commit(), storage_error);
  f.store->rollback();
  f.peek(SQLite::OPEN_READWRITE).exec("DROP TRIGGER fail_touch");
  f.peek(SQLite::OPEN_READWRITE).exec("UPDATE clients SET LastSeen = '2000-01-01 00:00:00'");

  // The trouble is gone: the next batch must commit and record the touch.
  f.store->begin();
  f.store->touch(make_id(1));
  CHECK_NOTHROW(f.store->commit());
  f.store->rollback();  // no-op when the commit succeeded; cleans up if it did not
  CHECK(last_seen_of(f.peek(), 1) != "2000-01-01 00:00:00");
}

TEST_CASE("store: rollback undoes an added client in the database and in the cache") {
  store_fixture f;
  REQUIRE(f.add_client(1, "alice"));
  f.store->begin();
  REQUIRE(f.store->add_client(make_id(2), "bob", make_key(2)));
  CHECK(f.store->client_exists(make_id(2)));
  f.store->rollback();
  CHECK_FALSE(f.store->client_exists(make_id(2)));
  CHECK_FALSE(f.store->public_key_of(make_id(2)).has_value());
  CHECK(f.store->clients_except(make_id(1)).empty());
  CHECK(f.peek().execAndGet("SELECT count(*) FROM clients").getInt() == 1);
  CHECK(f.store->client_exists(make_id(1)));  // committed before: untouched
  CHECK(f.add_client(3, "bob"));               // the name is free again
  f.reopen();
  CHECK_FALSE(f.store->client_exists(make_id(2)));
  CHECK(f.store->client_exists(make_id(3)));
}

// --- Messages ----------------------------------------------------------------------------

TEST_CASE("store: message IDs increase; inline and file contents come back as stored") {
  store_fixture f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  const auto small = make_content(33, 7);
  const auto large = make_content(200'000, 9);
  const auto a = f.add_inline(2, 1, 2, small);
  const auto [b, file] = f.add_file(2, 1, large);
  const auto c = f.add_inline(2, 1, 3, make_content(1, 3));
  CHECK(a >= 1);
  CHECK(b > a);
  CHECK(c > b);

  auto pending = f.pending(2);
  REQUIRE(pending.size() == 3);
  CHECK(pending[0].id == a);
  CHECK(pending[0].type == 2);
  CHECK(pending[0].content_size == small.size());
  CHECK(pending[0].inline_content == small);
  CHECK(pending[0].content_file.empty());
  CHECK(pending[1].id == b);
  CHECK(pending[1].type == 4);
  CHECK(pending[1].content_size == large.size());
  CHECK(pending[1].inline_content.empty());
  CHECK(pending[1].content_file == file);
  CHECK(pending[2].id == c);
  CHECK(f.store->referenced_content_files() == std::vector<std::string>{file});

  auto db = f.peek();
  SQLite::Statement row(db, "SELECT Content IS NULL, ContentSize, ContentFile FROM messages WHERE ID = ?");
  row.bind(1, static_cast<std::int64_t>(b));
  REQUIRE(row.executeStep());
  CHECK(row.getColumn(0).getInt() == 1);  // not inline
  CHECK(row.getColumn(1).getInt64() == static_cast<std::int64_t>(large.size()));
  CHECK(row.getColumn(2).getString() == file);
}

TEST_CASE("store: pending_messages keeps send order per recipient, honours after_id and max_count") {
  store_fixture f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  REQUIRE(f.add_client(3, "carol"));
  std::vector<std::uint32_t> to_bob, to_carol;
  for (std::uint8_t i = 0; i < 6; ++i) {
    to_bob.push_back(f.add_inline(2, 1, 3, make_content(10 + i, i)));
    to_carol.push_back(f.add_inline(3, 1, 3, make_content(5, i)));
  }
  CHECK(ids_of(f.pending(2)) == to_bob);
  CHECK(ids_of(f.pending(3)) == to_carol);
  CHECK(f.pending(1).empty());

  CHECK(ids_of(f.pending(2, to_bob[2])) == std::vector<std::uint32_t>(to_bob.begin() + 3, to_bob.end()));
  CHECK(f.pending(2, to_bob.back()).empty());
  CHECK(ids_of(f.store->pending_messages(make_id(2), 0, 4, unlimited, unlimited)) ==
        std::vector<std::uint32_t>(to_bob.begin(), to_bob.begin() + 4));
  CHECK(ids_of(f.store->pending_messages(make_id(2), to_bob[1], 2, unlimited, unlimited)) ==
        std::vector<std::uint32_t>{to_bob[2], to_bob[3]});
  auto contents = f.pending(2);
  for (std::size_t i = 0; i < contents.size(); ++i)
    CHECK(contents[i].inline_content == make_content(10 + i, static_cast<std::uint8_t>(i)));
}

TEST_CASE("store: pending_messages stops before the inline budget or the payload limit is exceeded") {
  store_fixture f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  std::vector<std::uint32_t> ids;
  for (std::uint8_t i = 0; i < 5; ++i) ids.push_back(f.add_inline(2, 1, 3, make_content(100, i)));
  const auto [file_id, file] = f.add_file(2, 1, make_content(1000, 42));

  // Inline budget of 250 bytes: two 100-byte contents fit, the third would not.
  CHECK(ids_of(f.store->pending_messages(make_id(2), 0, any_count, 250, unlimited)) ==
        std::vector<std::uint32_t>{ids[0], ids[1]});
  CHECK(ids_of(f.store->pending_messages(make_id(2), 0, any_count, 300, unlimited)).size() == 3);

  // Payload limit: each inline message needs 25 + 100 bytes of the 1004 payload.
  const std::uint64_t each = pulled_message_header_size + 100;
  CHECK(ids_of(f.store->pending_messages(make_id(2), 0, any_count, unlimited, 3 * each)).size() == 3);
  CHECK(ids_of(f.store->pending_messages(make_id(2), 0, any_count, unlimited, 3 * each - 1)).size() == 2);

  // File contents count for the payload but not for the inline budget.
  auto after_inline = f.store->pending_messages(make_id(2), ids[4], any_count, 0, unlimited);
  REQUIRE(after_inline.size() == 1);
  CHECK(after_inline[0].id == file_id);
  CHECK(f.store->pending_messages(make_id(2), ids[4], any_count, unlimited, pulled_message_header_size + 999).empty());
  const std::uint64_t all = 5 * each + pulled_message_header_size + 1000;
  CHECK(f.store->pending_messages(make_id(2), 0, any_count, unlimited, all).size() == 6);
  CHECK(f.store->pending_messages(make_id(2), 0, any_count, unlimited, all - 1).size() == 5);
}

TEST_CASE("store: remove_messages removes only the given recipient's messages") {
  store_fixture f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  const auto to_alice = f.add_inline(1, 2, 3, make_content(4, 1));
  const auto to_bob_1 = f.add_inline(2, 1, 3, make_content(4, 2));
  const auto to_bob_2 = f.add_inline(2, 1, 3, make_content(4, 3));
  f.store->begin();
  f.store->remove_messages(make_id(2), {to_alice, to_bob_1});  // to_alice is not bob's: stays
  f.store->commit();
  CHECK(ids_of(f.pending(1)) == std::vector<std::uint32_t>{to_alice});
  CHECK(ids_of(f.pending(2)) == std::vector<std::uint32_t>{to_bob_2});
  CHECK(f.peek().execAndGet("SELECT count(*) FROM messages").getInt() == 2);
}

TEST_CASE("store: spool files of removed messages are deleted after commit, kept after rollback") {
  store_fixture f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  const auto [first, first_file] = f.add_file(2, 1, make_content(5000, 1));
  const auto [second, second_file] = f.add_file(2, 1, make_content(6000, 2));
  REQUIRE(f.spool_file_exists(first_file));
  REQUIRE(f.spool_file_exists(second_file));

  f.store->begin();
  f.store->remove_messages(make_id(2), {first});
  CHECK(f.spool_file_exists(first_file));  // the row is not gone yet: neither is the file
  f.store->rollback();
  CHECK(f.spool_file_exists(first_file));
  CHECK(ids_of(f.pending(2)) == std::vector<std::uint32_t>{first, second});

  // A later batch that commits must not delete the file the rolled-back batch had listed.
  f.store->begin();
  f.store->touch(make_id(1));
  f.store->commit();
  CHECK(f.spool_file_exists(first_file));

  f.store->begin();
  f.store->remove_messages(make_id(2), {first});
  CHECK(f.spool_file_exists(first_file));
  f.store->commit();
  CHECK_FALSE(f.spool_file_exists(first_file));
  CHECK(f.spool_file_exists(second_file));
  CHECK(ids_of(f.pending(2)) == std::vector<std::uint32_t>{second});
  CHECK(f.store->referenced_content_files() == std::vector<std::string>{second_file});
}

TEST_CASE("store: rollback undoes an added message") {
  store_fixture f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  f.store->begin();
  f.store->add_message({make_id(2), make_id(1), 3, 3, make_content(3, 1), {}});
  f.store->rollback();
  CHECK(f.pending(2).empty());
  CHECK(f.peek().execAndGet("SELECT count(*) FROM messages").getInt() == 0);
}

// --- Durability --------------------------------------------------------------------------

TEST_CASE("store: reopening the database keeps clients, keys, order and messages; new IDs stay larger") {
  store_fixture f;
  REQUIRE(f.add_client(4, "dora"));
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  const auto a = f.add_inline(2, 1, 2, make_content(128, 1));
  const auto [b, file] = f.add_file(2, 4, make_content(70'000, 2));
  f.reopen();

  CHECK(f.store->schema_version() == static_cast<int>(schema_migrations().size()));
  CHECK(f.store->swept_files() == 0);
  CHECK(f.store->client_exists(make_id(1)));
  CHECK(f.store->public_key_of(make_id(4)) == make_key(4));
  CHECK(f.store->clients_except(make_id(1)) ==
        std::vector<client_entry>{{make_id(4), "dora"}, {make_id(2), "bob"}});
  CHECK_FALSE(f.add_client(3, "bob"));  // uniqueness survives too
  auto pending = f.pending(2);
  REQUIRE(pending.size() == 2);
  CHECK(pending[0].id == a);
  CHECK(pending[0].inline_content == make_content(128, 1));
  CHECK(pending[1].id == b);
  CHECK(pending[1].from == make_id(4));
  CHECK(pending[1].content_file == file);
  CHECK(f.spool_file_exists(file));
  CHECK(f.add_inline(2, 1, 3, make_content(1, 1)) > b);
}

TEST_CASE("store: the start-up sweep removes unreferenced spool files and keeps referenced ones") {
  store_fixture f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  const auto [id, kept] = f.add_file(2, 1, make_content(3000, 5));
  {
    auto orphan = f.spool.create();  // an upload interrupted by a stop: kept on disk, no row
    orphan.write(make_content(10, 1));
    orphan.keep();
  }
  { std::ofstream(f.spool.path() / "stray") << "x"; }
  REQUIRE(count_files(f.spool.path()) == 3);
  f.reopen();
  CHECK(f.store->swept_files() == 2);
  CHECK(count_files(f.spool.path()) == 1);
  CHECK(f.spool_file_exists(kept));
  auto pending = f.pending(2);
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].id == id);
}

// --- Schema v2: the mailbox index lives in memory --------------------------------------------

TEST_CASE("store: a version 1 database is migrated to the current schema, keeping its messages in order") {
  temp_dir dir;
  const auto db_path = dir / "server.db";
  const auto alice = make_id(1), bob = make_id(2);
  {
    // What a server of schema version 1 left behind: the v1 tables, its index, two messages.
    SQLite::Database db(db_path.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(std::string(schema_migrations().at(0).sql));
    db.exec("PRAGMA user_version = 1");
    SQLite::Statement add_client(db, "INSERT INTO clients (ID, Name, PublicKey) VALUES (?, ?, ?)");
    for (auto [id, name] : {std::pair{alice, "alice"}, std::pair{bob, "bob"}}) {
      const auto key = make_key(id[0]);
      add_client.bind(1, id.data(), static_cast<int>(id.size()));
      add_client.bind(2, name);
      add_client.bind(3, key.data(), static_cast<int>(key.size()));
      add_client.exec();
      add_client.reset();
    }
    SQLite::Statement add_message(db,
        "INSERT INTO messages (ID, ToClient, FromClient, Type, Content, ContentSize, SentAt) "
        "VALUES (?, ?, ?, 3, x'0102', 2, '2026-01-01 00:00:00')");
    for (int id : {7, 9}) {
      add_message.bind(1, id);
      add_message.bind(2, bob.data(), static_cast<int>(bob.size()));
      add_message.bind(3, alice.data(), static_cast<int>(alice.size()));
      add_message.exec();
      add_message.reset();
    }
  }
  spool_directory spool(dir / "server.db.spool");
  sqlite_store store(db_path, spool);
  CHECK(store.schema_version() == static_cast<int>(schema_migrations().size()));
  SQLite::Database peek(db_path.string(), SQLite::OPEN_READONLY);
  CHECK(peek.execAndGet("SELECT count(*) FROM sqlite_master WHERE name = 'messages_by_recipient'").getInt() == 0);
  const auto pending = store.pending_messages(bob, 0, 100, 1 << 20, 1 << 20);
  CHECK(ids_of(pending) == std::vector<std::uint32_t>{7, 9});
  CHECK(store.pending_messages(alice, 0, 100, 1 << 20, 1 << 20).empty());
}

TEST_CASE("store: a message added in a rolled-back batch is never pulled; the next one is") {
  store_fixture f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  new_message message{make_id(2), make_id(1), 3, 2, {1, 2}, {}};
  f.store->begin();
  f.store->add_message(message);
  f.store->rollback();
  CHECK(f.pending(2).empty());
  const auto kept = f.add_inline(2, 1, 3, {3, 4});
  CHECK(ids_of(f.pending(2)) == std::vector<std::uint32_t>{kept});
}

TEST_CASE("store: a message is not pulled in the batch that added it, but in the next one") {
  store_fixture f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  new_message message{make_id(2), make_id(1), 3, 2, {1, 2}, {}};
  f.store->begin();
  const auto id = f.store->add_message(message);
  CHECK(f.pending(2).empty());  // the mailbox index follows committed state
  f.store->commit();
  CHECK(ids_of(f.pending(2)) == std::vector<std::uint32_t>{id});
}

TEST_CASE("store: a message removed earlier in a batch is not handed out again in that batch") {
  store_fixture f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  const auto first = f.add_inline(2, 1, 3, {1});
  const auto second = f.add_inline(2, 1, 3, {2});
  f.store->begin();
  f.store->remove_messages(make_id(2), {first});
  CHECK(ids_of(f.pending(2)) == std::vector<std::uint32_t>{second});
  f.store->commit();
  CHECK(ids_of(f.pending(2)) == std::vector<std::uint32_t>{second});
  f.store->begin();
  f.store->remove_messages(make_id(2), {second});
  f.store->rollback();  // a failed removal keeps the message
  CHECK(ids_of(f.pending(2)) == std::vector<std::uint32_t>{second});
}

TEST_CASE("store: removing a message out of order keeps the rest of the mailbox in order") {
  store_fixture f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  std::vector<std::uint32_t> ids;
  for (std::uint8_t i = 0; i < 5; ++i) ids.push_back(f.add_inline(2, 1, 3, {i}));
  f.store->begin();
  f.store->remove_messages(make_id(2), {ids[2]});
  f.store->commit();
  CHECK(ids_of(f.pending(2)) == std::vector<std::uint32_t>{ids[0], ids[1], ids[3], ids[4]});
  f.reopen();
  CHECK(ids_of(f.pending(2)) == std::vector<std::uint32_t>{ids[0], ids[1], ids[3], ids[4]});
}

TEST_CASE("store: committed pages reach the database file in the background (no checkpoint inside a commit)") {
  store_fixture f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  const auto initial = std::filesystem::file_size(f.db_path);
  const byte_buffer content(8 * 1024, 0x42);
  for (int i = 0; i < 128; ++i) f.add_inline(2, 1, 3, content);  // 1 MiB in 128 commits
  // The writer never checkpoints itself (wal_autocheckpoint=0); the checkpointer copies the
  // WAL into server.db every 100 ms from its own connection.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::filesystem::file_size(f.db_path) < initial + 1024 * 1024 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(std::filesystem::file_size(f.db_path) >= initial + 1024 * 1024);
  CHECK(f.pending(2).size() == 128);
}

TEST_CASE("store: under continuous commits the WAL file stops growing (the writer finishes checkpoints)") {
  store_fixture f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  const byte_buffer content(64 * 1024, 0x42);
  const auto wal = std::filesystem::path(f.db_path.string() + "-wal");
  std::uintmax_t largest = 0;
  for (int i = 0; i < 512; ++i) {  // 32 MiB of content, back to back
    f.add_inline(2, 1, 3, content);
    largest = std::max(largest, std::filesystem::file_size(wal));
  }
  MESSAGE("largest WAL: " << largest / 1024 << " KiB");
  CHECK(largest < 24ull * 1024 * 1024);  // 16 MiB catch-up threshold + a batch, far below 32 MiB
}
