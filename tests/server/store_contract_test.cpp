// The contract of the store: mailbox_store (the backend-neutral policy) over every
// record_store backend, one test suite for all of them (TEST_CASE_TEMPLATE over
// STORE_BACKENDS; a new backend adds its fixture to store_backends.hpp and gets every test).
// Edge cases first (empty, unknown, zero-size content), then clients, messages, pull limits,
// transactions, durability across reopening, the start-up sweep and the mailbox index.
// SQLite-only behaviour (schema, WAL, migrations) is in sqlite_store_test.cpp.
#include <doctest/doctest.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <memory>
#include <regex>
#include <thread>
#include <type_traits>

#include "mailbox_store.hpp"
#include "schema.hpp"
#include "server_test_support.hpp"
#include "spool.hpp"
#include "store_backends.hpp"

using namespace letterbox::server;
using namespace letterbox::server::test;
using letterbox::protocol::byte_buffer;
using letterbox::protocol::client_entry;
using letterbox::protocol::pulled_message_header_size;

namespace {

std::string utc_text(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
  return text;
}
std::string utc_now_text() { return utc_text(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now())); }


}  // namespace

// --- Edge cases --------------------------------------------------------------------------

TEST_CASE_TEMPLATE("store: an unknown client does not exist, has no key, and an empty mailbox has nothing pending", B, STORE_BACKENDS) {
  store_fixture<B> f;
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

TEST_CASE_TEMPLATE("store: an empty (0-byte) inline content round-trips, also after reopening", B, STORE_BACKENDS) {
  store_fixture<B> f;
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

TEST_CASE_TEMPLATE("store: pending_messages with max_count 0 returns nothing; a tiny inline budget still returns one", B, STORE_BACKENDS) {
  store_fixture<B> f;
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

TEST_CASE_TEMPLATE("store: pending_messages returns nothing when the first message does not fit the payload limit", B, STORE_BACKENDS) {
  store_fixture<B> f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  f.add_inline(2, 1, 3, make_content(100, 1));
  const std::uint64_t exact = pulled_message_header_size + 100;
  CHECK(f.store->pending_messages(make_id(2), 0, any_count, unlimited, exact - 1).empty());
  CHECK(f.store->pending_messages(make_id(2), 0, any_count, unlimited, exact).size() == 1);
}

// --- Clients -----------------------------------------------------------------------------

TEST_CASE_TEMPLATE("store: add_client, duplicate name, client_exists, public_key_of", B, STORE_BACKENDS) {
  store_fixture<B> f;
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

  CHECK(f.backend.client_count() == 2);
  if constexpr (std::is_same_v<B, sqlite_backend>) {  // the columns as the sqlite3 shell shows them
    auto db = f.backend.peek();
    CHECK(db.execAndGet("SELECT count(*) FROM clients WHERE Name = 'alice2'").getInt() == 0);
    SQLite::Statement key_query(db, "SELECT PublicKey FROM clients WHERE Name = 'bob'");
    REQUIRE(key_query.executeStep());
    const auto key = make_key(2);
    REQUIRE(key_query.getColumn(0).getBytes() == static_cast<int>(key.size()));
    CHECK(std::equal(key.begin(), key.end(), static_cast<const std::uint8_t*>(key_query.getColumn(0).getBlob())));
  }
}

TEST_CASE_TEMPLATE("store: a duplicate name within one batch is refused and the batch goes on", B, STORE_BACKENDS) {
  store_fixture<B> f;
  f.store->begin();
  CHECK(f.store->add_client(make_id(1), "carol", make_key(1)));
  CHECK_FALSE(f.store->add_client(make_id(2), "carol", make_key(2)));
  CHECK(f.store->add_client(make_id(3), "dave", make_key(3)));
  f.store->commit();
  CHECK(f.store->client_exists(make_id(1)));
  CHECK_FALSE(f.store->client_exists(make_id(2)));
  CHECK(f.store->client_exists(make_id(3)));
  CHECK(f.backend.client_count() == 2);
}

TEST_CASE_TEMPLATE("store: clients_except lists the others in registration order", B, STORE_BACKENDS) {
  store_fixture<B> f;
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

TEST_CASE_TEMPLATE("store: touch writes LastSeen as 'YYYY-MM-DD HH:MM:SS' UTC at commit, not before", B, STORE_BACKENDS) {
  store_fixture<B> f{std::chrono::milliseconds(0)};  // no deferral
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  const std::regex format(R"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})");
  CHECK(std::regex_match(f.backend.last_seen(make_id(1)), format));  // set at registration

  const std::string old = "2000-01-01 00:00:00";
  f.backend.set_last_seen(old);

  // The request was made even if its batch failed: a rollback keeps the touch for later.
  f.store->begin();
  f.store->touch(make_id(1));
  f.store->rollback();
  CHECK(f.backend.last_seen(make_id(1)) == old);
  CHECK(f.store->has_deferred_writes());

  const auto before = utc_now_text();
  f.store->begin();
  f.store->touch(make_id(1));
  f.store->touch(make_id(1));
  CHECK(f.backend.last_seen(make_id(1)) == old);  // not written before the commit
  f.store->commit();
  const auto after = utc_now_text();
  const auto seen = f.backend.last_seen(make_id(1));
  CHECK(std::regex_match(seen, format));
  CHECK(seen >= before);
  CHECK(seen <= after);
  CHECK(f.backend.last_seen(make_id(2)) == old);  // untouched
  CHECK_FALSE(f.store->has_deferred_writes());
}

TEST_CASE_TEMPLATE("store: last-seen times are deferred until deferred_write_interval passed, then any batch writes them", B, STORE_BACKENDS) {
  store_fixture<B> f;  // default interval
  REQUIRE(f.add_client(1, "alice"));
  const std::string old = "2000-01-01 00:00:00";
  f.backend.set_last_seen(old);

  f.store->begin();
  f.store->touch(make_id(1));
  f.store->commit();
  CHECK(f.backend.last_seen(make_id(1)) == old);  // deferred: a batch of reads costs no fsync
  CHECK(f.store->has_deferred_writes());

  f.store->begin();
  REQUIRE(f.store->add_client(make_id(2), "bob", make_key(2)));
  f.store->commit();
  CHECK(f.backend.last_seen(make_id(1)) == old);  // still deferred, even in a batch that writes
  CHECK(f.store->has_deferred_writes());

  std::this_thread::sleep_for(deferred_write_interval + std::chrono::milliseconds(100));
  f.store->begin();
  f.store->commit();  // what the storage worker's idle flush does
  CHECK(f.backend.last_seen(make_id(1)) != old);
  CHECK_FALSE(f.store->has_deferred_writes());
}

TEST_CASE_TEMPLATE("store: rollback undoes an added client in the database and in the cache", B, STORE_BACKENDS) {
  store_fixture<B> f;
  REQUIRE(f.add_client(1, "alice"));
  f.store->begin();
  REQUIRE(f.store->add_client(make_id(2), "bob", make_key(2)));
  CHECK(f.store->client_exists(make_id(2)));
  f.store->rollback();
  CHECK_FALSE(f.store->client_exists(make_id(2)));
  CHECK_FALSE(f.store->public_key_of(make_id(2)).has_value());
  CHECK(f.store->clients_except(make_id(1)).empty());
  CHECK(f.backend.client_count() == 1);
  CHECK(f.store->client_exists(make_id(1)));  // committed before: untouched
  CHECK(f.add_client(3, "bob"));               // the name is free again
  f.reopen();
  CHECK_FALSE(f.store->client_exists(make_id(2)));
  CHECK(f.store->client_exists(make_id(3)));
}

// --- Messages ----------------------------------------------------------------------------

TEST_CASE_TEMPLATE("store: message IDs increase; inline and file contents come back as stored", B, STORE_BACKENDS) {
  store_fixture<B> f;
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

  if constexpr (std::is_same_v<B, sqlite_backend>) {  // the row as the sqlite3 shell shows it
    auto db = f.backend.peek();
    SQLite::Statement row(db, "SELECT Content IS NULL, ContentSize, ContentFile FROM messages WHERE ID = ?");
    row.bind(1, static_cast<std::int64_t>(b));
    REQUIRE(row.executeStep());
    CHECK(row.getColumn(0).getInt() == 1);  // not inline
    CHECK(row.getColumn(1).getInt64() == static_cast<std::int64_t>(large.size()));
    CHECK(row.getColumn(2).getString() == file);
  }
}

TEST_CASE_TEMPLATE("store: pending_messages keeps send order per recipient, honours after_id and max_count", B, STORE_BACKENDS) {
  store_fixture<B> f;
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

TEST_CASE_TEMPLATE("store: pending_messages stops before the inline budget or the payload limit is exceeded", B, STORE_BACKENDS) {
  store_fixture<B> f;
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

TEST_CASE_TEMPLATE("store: remove_messages removes only the given recipient's messages", B, STORE_BACKENDS) {
  store_fixture<B> f;
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
  CHECK(f.backend.message_count() == 2);
}

TEST_CASE_TEMPLATE("store: spool files of removed messages are deleted after commit, kept after rollback", B, STORE_BACKENDS) {
  store_fixture<B> f;
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

TEST_CASE_TEMPLATE("store: with a file remover, files of removed messages go to it after commit, none after rollback", B,
                   STORE_BACKENDS) {
  store_fixture<B> f;
  std::vector<std::vector<std::string>> handed;  // what the remover got, call by call
  f.store->remove_files_with([&](std::vector<std::string> names) { handed.push_back(std::move(names)); });
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  const auto [first, first_file] = f.add_file(2, 1, make_content(5000, 1));
  const auto [second, second_file] = f.add_file(2, 1, make_content(6000, 2));
  CHECK(handed.empty());  // commits that removed nothing call it not at all

  f.store->begin();
  f.store->remove_messages(make_id(2), {first});
  f.store->rollback();
  f.store->begin();
  f.store->touch(make_id(1));
  f.store->commit();
  CHECK(handed.empty());

  f.store->begin();
  f.store->remove_messages(make_id(2), {first, second});
  CHECK(handed.empty());  // not before the commit
  f.store->commit();
  REQUIRE(handed.size() == 1);
  CHECK(handed[0] == std::vector<std::string>{first_file, second_file});
  // The store left the deleting to the remover: both files are still there.
  CHECK(f.spool_file_exists(first_file));
  CHECK(f.spool_file_exists(second_file));
  CHECK(f.store->referenced_content_files().empty());

  // A remover that fails does not fail the committed batch; the files wait for the sweep.
  const auto [third, third_file] = f.add_file(2, 1, make_content(7000, 3));
  f.store->remove_files_with([](std::vector<std::string>) { throw std::runtime_error("cannot queue"); });
  f.store->begin();
  f.store->remove_messages(make_id(2), {third});
  CHECK_NOTHROW(f.store->commit());
  CHECK(f.pending(2).empty());
  CHECK(f.spool_file_exists(third_file));
}

TEST_CASE_TEMPLATE("store: rollback undoes an added message", B, STORE_BACKENDS) {
  store_fixture<B> f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  f.store->begin();
  f.store->add_message({make_id(2), make_id(1), 3, 3, make_content(3, 1), {}});
  f.store->rollback();
  CHECK(f.pending(2).empty());
  CHECK(f.backend.message_count() == 0);
}

// --- Durability --------------------------------------------------------------------------

TEST_CASE_TEMPLATE("store: reopening the database keeps clients, keys, order and messages; new IDs stay larger", B, STORE_BACKENDS) {
  store_fixture<B> f;
  REQUIRE(f.add_client(4, "dora"));
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  const auto a = f.add_inline(2, 1, 2, make_content(128, 1));
  const auto [b, file] = f.add_file(2, 4, make_content(70'000, 2));
  f.reopen();

  if constexpr (std::is_same_v<B, sqlite_backend>)
    CHECK(f.backend.db->schema_version() == static_cast<int>(schema_migrations().size()));
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

TEST_CASE_TEMPLATE("store: the start-up sweep removes unreferenced spool files and keeps referenced ones", B, STORE_BACKENDS) {
  store_fixture<B> f;
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

TEST_CASE_TEMPLATE("store: a message added in a rolled-back batch is never pulled; the next one is", B, STORE_BACKENDS) {
  store_fixture<B> f;
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

TEST_CASE_TEMPLATE("store: a message is not pulled in the batch that added it, but in the next one", B, STORE_BACKENDS) {
  store_fixture<B> f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  new_message message{make_id(2), make_id(1), 3, 2, {1, 2}, {}};
  f.store->begin();
  const auto id = f.store->add_message(message);
  CHECK(f.pending(2).empty());  // the mailbox index follows committed state
  f.store->commit();
  CHECK(ids_of(f.pending(2)) == std::vector<std::uint32_t>{id});
}

TEST_CASE_TEMPLATE("store: a message removed earlier in a batch is not handed out again in that batch", B, STORE_BACKENDS) {
  store_fixture<B> f;
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

TEST_CASE_TEMPLATE("store: removing a message out of order keeps the rest of the mailbox in order", B, STORE_BACKENDS) {
  store_fixture<B> f;
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


// --- What a backend itself must refuse or lose (not answered by mailbox_store's cache) -----

TEST_CASE_TEMPLATE("store: a batch that was not committed is lost when the store closes", B, STORE_BACKENDS) {
  store_fixture<B> f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  f.store->begin();
  REQUIRE(f.store->add_client(make_id(3), "carol", make_key(3)));
  f.store->add_message({make_id(2), make_id(1), 3, 1, {7}, {}});
  f.reopen();  // as a stop or a crash before the commit
  CHECK_FALSE(f.store->client_exists(make_id(3)));
  CHECK(f.pending(2).empty());
  CHECK(f.backend.client_count() == 2);
  CHECK(f.backend.message_count() == 0);
  CHECK(f.add_client(3, "carol"));  // and the store works on
}

TEST_CASE_TEMPLATE("store: the backend itself refuses a taken client ID or name", B, STORE_BACKENDS) {
  store_fixture<B> f;
  auto& records = f.backend.records();
  records.begin();
  CHECK(records.insert_client({make_id(1), "alice", make_key(1), std::nullopt}, "2026-01-01 00:00:00"));
  CHECK_FALSE(records.insert_client({make_id(1), "alice2", make_key(1), std::nullopt}, "2026-01-01 00:00:00"));  // ID taken
  CHECK_FALSE(records.insert_client({make_id(2), "alice", make_key(2), std::nullopt}, "2026-01-01 00:00:00"));   // name taken
  records.commit();
  CHECK(f.backend.client_count() == 1);
}

TEST_CASE_TEMPLATE("store: the backend refuses a message to or from an unknown client, or of a type outside 1..4, 16..19", B,
                   STORE_BACKENDS) {
  store_fixture<B> f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  auto& records = f.backend.records();
  for (const new_message& bad : {new_message{make_id(9), make_id(1), 3, 1, {1}, {}},
                                 new_message{make_id(2), make_id(9), 3, 1, {1}, {}},
                                 new_message{make_id(2), make_id(1), 0, 1, {1}, {}},
                                 new_message{make_id(2), make_id(1), 5, 1, {1}, {}},
                                 new_message{make_id(2), make_id(1), 15, 1, {1}, {}},
                                 new_message{make_id(2), make_id(1), 20, 1, {1}, {}}}) {
    CAPTURE(static_cast<int>(bad.type));
    records.begin();
    CHECK_THROWS_AS(records.insert_message(bad, 1, "2026-01-01 00:00:00"), storage_error);
    records.rollback();
  }
  CHECK(f.backend.message_count() == 0);
}

TEST_CASE_TEMPLATE("store: a message with a spool file has no inline content in the backend", B, STORE_BACKENDS) {
  store_fixture<B> f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  const auto [id, file] = f.add_file(2, 1, make_content(100, 1));
  std::vector<message_location> rows;
  f.backend.records().for_each_message_location([&](const message_location& l) { rows.push_back(l); });
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].id == id);
  CHECK(rows[0].to == make_id(2));
  const auto record = f.backend.records().read_message(rows[0].row);
  REQUIRE(record.has_value());
  CHECK(record->id == id);
  CHECK(record->content_file == file);
  CHECK(record->inline_content.empty());
  CHECK(record->to == make_id(2));
  CHECK(record->from == make_id(1));
  CHECK_FALSE(f.backend.records().read_message(rows[0].row + 1).has_value());
}

// --- Failures: a batch that fails leaves memory as the database is ---------------------------

TEST_CASE_TEMPLATE("store: a failed commit restores the client cache, the mailbox index, the touches and the spool list",
                   B, STORE_BACKENDS) {
  store_fixture<B> f{std::chrono::milliseconds(0)};  // no deferral: the touch is written by this commit
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  const auto [kept, kept_file] = f.add_file(2, 1, make_content(5000, 1));
  f.backend.set_last_seen("2000-01-01 00:00:00");

  f.store->begin();
  REQUIRE(f.store->add_client(make_id(3), "carol", make_key(3)));
  f.store->add_message({make_id(2), make_id(1), 3, 1, {9}, {}});
  f.store->remove_messages(make_id(2), {kept});
  f.store->touch(make_id(1));
  f.faults->fail_next_commit = true;
  CHECK_THROWS_AS(f.store->commit(), storage_error);
  f.store->rollback();

  CHECK_FALSE(f.store->client_exists(make_id(3)));                  // cache
  CHECK(f.store->clients_except(make_id(1)).size() == 1);
  CHECK(ids_of(f.pending(2)) == std::vector<std::uint32_t>{kept});  // index: neither added nor removed
  CHECK(f.spool_file_exists(kept_file));                             // its file was not deleted
  CHECK(f.backend.message_count() == 1);
  CHECK(f.store->has_deferred_writes());                             // the touch waits for the next commit
  CHECK(f.backend.last_seen(make_id(1)) == "2000-01-01 00:00:00");

  f.store->begin();
  f.store->commit();
  CHECK_FALSE(f.store->has_deferred_writes());
  CHECK(f.backend.last_seen(make_id(1)) != "2000-01-01 00:00:00");
  CHECK(f.spool_file_exists(kept_file));  // a later commit does not delete what the failed batch listed
  f.reopen();
  CHECK(ids_of(f.pending(2)) == std::vector<std::uint32_t>{kept});
  CHECK_FALSE(f.store->client_exists(make_id(3)));
}

TEST_CASE_TEMPLATE("store: a failed last-seen write at commit fails that commit only; the next one writes it", B,
                   STORE_BACKENDS) {
  store_fixture<B> f{std::chrono::milliseconds(0)};  // no deferral
  REQUIRE(f.add_client(1, "alice"));
  f.backend.set_last_seen("2000-01-01 00:00:00");
  f.store->begin();
  f.store->touch(make_id(1));
  f.faults->fail_next_update_last_seen = true;
  CHECK_THROWS_AS(f.store->commit(), storage_error);
  f.store->rollback();
  CHECK(f.backend.last_seen(make_id(1)) == "2000-01-01 00:00:00");
  f.store->begin();
  CHECK_NOTHROW(f.store->commit());
  CHECK(f.backend.last_seen(make_id(1)) != "2000-01-01 00:00:00");
}

// --- Message IDs: per mailbox, never reused, 64-bit rows -------------------------------------

TEST_CASE_TEMPLATE("store: message IDs count per mailbox and are not reused after delivery, also across a reopen", B,
                   STORE_BACKENDS) {
  store_fixture<B> f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  REQUIRE(f.add_client(3, "carol"));
  std::vector<std::uint32_t> to_bob;
  for (std::uint8_t i = 0; i < 3; ++i) to_bob.push_back(f.add_inline(2, 1, 3, {i}));
  CHECK(to_bob == std::vector<std::uint32_t>{1, 2, 3});
  CHECK(f.add_inline(3, 1, 3, {9}) == 1);  // carol's own sequence
  f.store->begin();
  f.store->remove_messages(make_id(2), to_bob);
  f.store->commit();
  CHECK(f.pending(2).empty());
  CHECK(f.add_inline(2, 1, 3, {4}) == 4);
  f.store->begin();
  f.store->remove_messages(make_id(2), {4});
  f.store->commit();
  f.reopen();  // the mailbox is empty: the highest delivered ID must have been recorded
  CHECK(f.add_inline(2, 1, 3, {5}) == 5);
  CHECK(f.add_inline(3, 1, 3, {9}) == 2);
}

TEST_CASE_TEMPLATE("store: a mailbox that has used every 4-byte ID refuses more; other mailboxes go on", B,
                   STORE_BACKENDS) {
  store_fixture<B> f;
  REQUIRE(f.add_client(1, "alice"));
  REQUIRE(f.add_client(2, "bob"));
  auto& records = f.backend.records();
  records.begin();
  records.record_last_message_id(make_id(2), 0xFFFFFFFEu);  // as if 2^32 - 2 messages were delivered
  records.commit();
  f.reopen();
  CHECK(f.add_inline(2, 1, 3, {1}) == 0xFFFFFFFFu);
  f.store->begin();
  CHECK_THROWS_AS(f.store->add_message({make_id(2), make_id(1), 3, 1, {2}, {}}), storage_error);
  f.store->rollback();
  CHECK(f.add_inline(1, 2, 3, {3}) == 1);
  CHECK(ids_of(f.pending(2)) == std::vector<std::uint32_t>{0xFFFFFFFFu});
}

// --- v2 clients (schema v4) ------------------------------------------------------------------

namespace {
v2_keys make_v2_keys(std::uint8_t seed) {
  v2_keys keys;
  for (std::size_t i = 0; i < keys.identity.size(); ++i) keys.identity[i] = static_cast<std::uint8_t>(seed + i);
  for (std::size_t i = 0; i < keys.agreement.size(); ++i) keys.agreement[i] = static_cast<std::uint8_t>(seed * 3 + i);
  for (std::size_t i = 0; i < keys.key_signature.size(); ++i)
    keys.key_signature[i] = static_cast<std::uint8_t>(seed * 5 + i);
  return keys;
}
}  // namespace

TEST_CASE_TEMPLATE("store: a v2 client keeps its identity key, agreement key and key signature, also after reopening", B,
                   STORE_BACKENDS) {
  store_fixture<B> f;
  REQUIRE(f.add_client(1, "legacy"));
  f.store->begin();
  REQUIRE(f.store->add_client(make_id(2), "modern", make_key(2), make_v2_keys(2)));
  f.store->commit();
  for (int pass = 0; pass < 2; ++pass) {
    CAPTURE(pass);
    const auto modern = f.store->client_of(make_id(2));
    REQUIRE(modern.has_value());
    CHECK(modern->name == "modern");
    CHECK(modern->key == make_key(2));
    REQUIRE(modern->v2.has_value());
    CHECK(*modern->v2 == make_v2_keys(2));
    CHECK(f.store->is_v2_client(make_id(2)));
    const auto legacy = f.store->client_of(make_id(1));
    REQUIRE(legacy.has_value());
    CHECK(legacy->name == "legacy");
    CHECK_FALSE(legacy->v2.has_value());
    CHECK_FALSE(f.store->is_v2_client(make_id(1)));
    CHECK_FALSE(f.store->client_of(make_id(3)).has_value());
    CHECK_FALSE(f.store->is_v2_client(make_id(3)));
    // The directory, readable from the I/O thread, knows the kind of each client.
    CHECK(f.store->directory().is_v2(make_id(2)));
    CHECK_FALSE(f.store->directory().is_v2(make_id(1)));
    CHECK_FALSE(f.store->directory().is_v2(make_id(3)));
    const auto snapshot = f.store->directory().current();
    REQUIRE(snapshot.size() == 2);
    CHECK(snapshot[0].id == make_id(1));
    CHECK(snapshot.flags(0) == 0);
    CHECK(snapshot[1].id == make_id(2));
    CHECK(snapshot.flags(1) == letterbox::protocol::v2::client_flag_v2);
    f.reopen();
  }
}

TEST_CASE_TEMPLATE("store: the v2 keys reach the backend's rows as given", B, STORE_BACKENDS) {
  store_fixture<B> f;
  auto& records = f.backend.records();
  records.begin();
  REQUIRE(records.insert_client({make_id(1), "v1", make_key(1), std::nullopt}, "2026-01-01 00:00:00"));
  REQUIRE(records.insert_client({make_id(2), "v2", make_key(2), make_v2_keys(7)}, "2026-01-01 00:00:00"));
  records.commit();
  std::vector<client_record> seen;
  records.for_each_client([&](const client_record& client, std::uint32_t) { seen.push_back(client); });
  REQUIRE(seen.size() == 2);
  CHECK_FALSE(seen[0].v2.has_value());
  REQUIRE(seen[1].v2.has_value());
  CHECK(*seen[1].v2 == make_v2_keys(7));
  CHECK(seen[1].key == make_key(2));
}

TEST_CASE_TEMPLATE("store: a rolled-back v2 registration leaves neither the client, its name nor its kind", B,
                   STORE_BACKENDS) {
  store_fixture<B> f;
  f.store->begin();
  REQUIRE(f.store->add_client(make_id(2), "modern", make_key(2), make_v2_keys(2)));
  CHECK(f.store->name_taken("modern"));
  CHECK(f.store->is_v2_client(make_id(2)));
  f.store->rollback();
  CHECK_FALSE(f.store->name_taken("modern"));
  CHECK_FALSE(f.store->client_of(make_id(2)).has_value());
  CHECK_FALSE(f.store->directory().is_v2(make_id(2)));
  CHECK(f.backend.client_count() == 0);
  f.store->begin();
  CHECK(f.store->add_client(make_id(2), "modern", make_key(2), make_v2_keys(2)));
  f.store->commit();
  CHECK(f.store->name_taken("modern"));
}

TEST_CASE_TEMPLATE("store: sealed types 16 and 17 are stored and pulled; a 26-byte entry header counts in the payload limit",
                   B, STORE_BACKENDS) {
  store_fixture<B> f;
  f.store->begin();
  REQUIRE(f.store->add_client(make_id(1), "alice", make_key(1), make_v2_keys(1)));
  REQUIRE(f.store->add_client(make_id(2), "bob", make_key(2), make_v2_keys(2)));
  f.store->commit();
  const auto first = f.add_inline(2, 1, 16, make_content(10, 1));
  const auto second = f.add_inline(2, 1, 17, make_content(10, 2));
  f.reopen();
  auto pending = f.pending(2);
  REQUIRE(pending.size() == 2);
  CHECK(pending[0].id == first);
  CHECK(pending[0].type == 16);
  CHECK(pending[1].id == second);
  CHECK(pending[1].type == 17);
  CHECK(pending[1].inline_content == make_content(10, 2));
  // Two entries of 26 + 10 bytes need 72; 71 fits one with a 26-byte header, two with 25.
  CHECK(f.store->pending_messages(make_id(2), 0, any_count, unlimited, 71, {}, 26).size() == 1);
  CHECK(f.store->pending_messages(make_id(2), 0, any_count, unlimited, 72, {}, 26).size() == 2);
  CHECK(f.store->pending_messages(make_id(2), 0, any_count, unlimited, 70).size() == 2);
}
