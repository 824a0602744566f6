// The group part of the store contract (docs/PROTOCOL.md Part IV, schema 005), for every
// backend (TEST_CASE_TEMPLATE over STORE_BACKENDS, as store_contract_test.cpp): groups with their
// members in join order, invitations and bans survive reopening; a rolled-back batch leaves the
// cache and the rows as they were; a group message's content is stored once and removed with
// the last mailbox entry referring to it (its spool file after that commit).
#include <doctest/doctest.h>

#include "mailbox_store.hpp"
#include "server_test_support.hpp"
#include "spool.hpp"
#include "store_backends.hpp"

using namespace letterbox::server;
using namespace letterbox::server::test;
using letterbox::protocol::byte_buffer;

namespace {
group_id gid(std::uint8_t seed) { return make_id(static_cast<std::uint8_t>(0xA0 + seed)); }

template <typename F>
void add_v2_clients(F& f, int n) {
  for (int i = 1; i <= n; ++i) {
    std::string name = "c";  // appended: "c" + std::to_string(i) trips g++ 12 -O3 -Wrestrict (falsely)
    name += std::to_string(i);
    REQUIRE(f.add_client(static_cast<std::uint8_t>(i), name));
  }
}
}  // namespace

TEST_CASE_TEMPLATE("groups: members in join order, invitations, bans and the admin survive reopening", B, STORE_BACKENDS) {
  store_fixture<B> f;
  add_v2_clients(f, 5);
  f.store->begin();
  f.store->create_group(gid(1), "room", make_id(1), true);
  f.store->create_group(gid(2), "closed", make_id(2), false);
  f.store->invite_to_group(gid(1), make_id(3));
  f.store->add_group_member(gid(1), make_id(4));
  f.store->add_group_member(gid(1), make_id(3));  // was invited: now a member, joined after 4
  f.store->invite_to_group(gid(1), make_id(5));
  f.store->ban_from_group(gid(2), make_id(4));
  f.store->set_group_admin(gid(1), make_id(4));
  f.store->commit();
  for (int pass = 0; pass < 2; ++pass) {
    CAPTURE(pass);
    const auto* g = f.store->group(gid(1));
    REQUIRE(g != nullptr);
    CHECK(g->name == "room");
    CHECK(g->open);
    CHECK(g->admin == make_id(4));
    CHECK(g->members == std::vector{make_id(1), make_id(4), make_id(3)});
    CHECK(g->invited == std::vector{make_id(5)});
    CHECK(g->banned.empty());
    const auto* c = f.store->group(gid(2));
    REQUIRE(c != nullptr);
    CHECK_FALSE(c->open);
    CHECK(c->members == std::vector{make_id(2)});
    CHECK(c->banned == std::vector{make_id(4)});
    CHECK(f.store->groups_of(make_id(4)) == 1);
    CHECK(f.store->groups_of(make_id(2)) == 1);
    CHECK(f.store->groups_of(make_id(5)) == 0);
    const auto all = f.store->groups();
    REQUIRE(all.size() == 2);
    CHECK(all[0].first == gid(1));  // creation order
    CHECK(all[1].first == gid(2));
    f.reopen();
  }
  f.store->begin();
  f.store->remove_from_group(gid(1), make_id(5));
  f.store->unban_from_group(gid(2), make_id(4));
  f.store->delete_group(gid(2));
  f.store->commit();
  f.reopen();
  CHECK(f.store->group(gid(2)) == nullptr);
  CHECK(f.store->group(gid(1))->invited.empty());
  CHECK(f.store->groups_of(make_id(2)) == 0);
  CHECK(f.store->groups().size() == 1);
}

TEST_CASE_TEMPLATE("groups: a rolled-back batch leaves the cache and the rows as they were", B, STORE_BACKENDS) {
  store_fixture<B> f;
  add_v2_clients(f, 3);
  f.store->begin();
  f.store->create_group(gid(1), "room", make_id(1), false);
  f.store->commit();
  f.store->begin();
  f.store->add_group_member(gid(1), make_id(2));
  f.store->create_group(gid(2), "other", make_id(3), true);
  f.store->ban_from_group(gid(1), make_id(3));
  f.faults->fail_next_commit = true;
  CHECK_THROWS_AS(f.store->commit(), storage_error);
  f.store->rollback();
  CHECK(f.store->group(gid(2)) == nullptr);
  CHECK(f.store->group(gid(1))->members == std::vector{make_id(1)});
  CHECK(f.store->group(gid(1))->banned.empty());
  CHECK(f.store->groups_of(make_id(2)) == 0);
  CHECK(f.store->groups_of(make_id(3)) == 0);
  f.reopen();
  CHECK(f.store->group(gid(2)) == nullptr);
  CHECK(f.store->group(gid(1))->members == std::vector{make_id(1)});
  CHECK(f.store->group(gid(1))->banned.empty());
}

TEST_CASE_TEMPLATE("groups: an inline group content is stored once and removed with the last mailbox entry", B, STORE_BACKENDS) {
  store_fixture<B> f;
  add_v2_clients(f, 4);
  f.store->begin();
  f.store->create_group(gid(1), "room", make_id(1), true);
  f.store->commit();
  const byte_buffer content{1, 2, 3, 4, 5};
  f.store->begin();
  const auto ids = f.store->add_group_message(gid(1), make_id(1), 18, 5, content, {}, {make_id(2), make_id(3), make_id(4)});
  f.store->commit();
  REQUIRE(ids.size() == 3);
  CHECK(f.backend.content_count() == 1);
  CHECK(f.backend.message_count() == 3);
  for (std::uint8_t to = 2; to <= 4; ++to) {
    const auto pending = f.pending(to);
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].type == 18);
    CHECK(pending[0].from == make_id(1));
    CHECK(pending[0].inline_content == content);
    CHECK(pending[0].group == gid(1));
    CHECK(f.store->usage_of(make_id(to)).bytes == 5);
  }
  f.store->begin();
  CHECK(f.store->remove_messages(make_id(2), {ids[0]}) == 1);
  CHECK(f.store->remove_messages(make_id(3), {ids[1]}) == 1);
  f.store->commit();
  f.reopen();
  CHECK(f.backend.content_count() == 1);
  REQUIRE(f.pending(4).size() == 1);
  CHECK(f.pending(4)[0].inline_content == content);
  CHECK(f.pending(4)[0].group == gid(1));
  f.store->begin();
  CHECK(f.store->remove_messages(make_id(4), {ids[2]}) == 1);
  f.store->commit();
  CHECK(f.backend.content_count() == 0);
  CHECK(f.backend.message_count() == 0);
  f.store->begin();  // no recipients: nothing stored
  CHECK(f.store->add_group_message(gid(1), make_id(1), 18, 5, content, {}, {}).empty());
  f.store->commit();
  CHECK(f.backend.content_count() == 0);
}

TEST_CASE_TEMPLATE("groups: a group send one recipient's mailbox refuses writes nothing, and the batch goes on", B, STORE_BACKENDS) {
  store_fixture<B> f;
  add_v2_clients(f, 4);
  f.store->begin();
  f.store->create_group(gid(1), "room", make_id(1), true);
  f.store->commit();
  auto& records = f.backend.records();
  records.begin();
  records.record_last_message_id(make_id(4), 0xFFFFFFFFu);  // member 4's mailbox has used every ID
  records.commit();
  f.reopen();
  // The job's error does not roll back the batch: the other job of it commits. Before the
  // checks came first, members 2 and 3 got the message and the content counted 3 references
  // for 2 rows, so it was never removed.
  f.store->begin();
  CHECK_THROWS_AS(f.store->add_group_message(gid(1), make_id(1), 18, 3, byte_buffer{7, 8, 9}, {}, {make_id(2), make_id(3), make_id(4)}),
                  storage_error);
  CHECK(f.store->add_message({make_id(2), make_id(1), 16, 1, {1}, {}}) == 1);  // another job of the batch
  f.store->commit();
  CHECK(f.backend.content_count() == 0);
  CHECK(f.backend.message_count() == 1);
  CHECK(f.pending(3).empty());
  REQUIRE(f.pending(2).size() == 1);
  CHECK(f.pending(2)[0].type == 16);
}

TEST_CASE_TEMPLATE("groups: a spooled group content is one file, kept by the sweep, deleted after the last removal", B, STORE_BACKENDS) {
  store_fixture<B> f;
  add_v2_clients(f, 3);
  f.store->begin();
  f.store->create_group(gid(1), "room", make_id(1), true);
  f.store->commit();
  auto upload = f.spool.create();
  const byte_buffer content(100'000, 0x5A);
  upload.write(content);
  upload.finish();
  const auto file = upload.name();
  f.store->begin();
  const auto ids = f.store->add_group_message(gid(1), make_id(1), 19, 100'000, {}, file, {make_id(2), make_id(3)});
  f.store->commit();
  upload.keep();
  f.reopen();  // the start-up sweep keeps a file the contents table refers to
  REQUIRE(f.spool_file_exists(file));
  CHECK(f.store->referenced_content_files() == std::vector{file});
  CHECK(f.pending(2).at(0).content_file == file);
  CHECK(f.pending(3).at(0).content_file == file);
  f.store->begin();
  f.store->remove_messages(make_id(2), {ids[0]});
  f.store->commit();
  CHECK(f.spool_file_exists(file));
  f.store->begin();
  f.store->remove_messages(make_id(3), {ids[1]});
  CHECK(f.spool_file_exists(file));  // not before the commit
  f.store->commit();
  CHECK_FALSE(f.spool_file_exists(file));
  CHECK(f.backend.content_count() == 0);
}

TEST_CASE_TEMPLATE("groups: a removal rolled back keeps the shared content's count", B, STORE_BACKENDS) {
  store_fixture<B> f;
  add_v2_clients(f, 3);
  f.store->begin();
  f.store->create_group(gid(1), "room", make_id(1), true);
  const auto ids = f.store->add_group_message(gid(1), make_id(1), 18, 3, byte_buffer{7, 8, 9}, {}, {make_id(2), make_id(3)});
  f.store->commit();
  f.store->begin();
  f.store->remove_messages(make_id(2), {ids[0]});
  f.store->remove_messages(make_id(3), {ids[1]});
  f.faults->fail_next_commit = true;
  CHECK_THROWS_AS(f.store->commit(), storage_error);
  f.store->rollback();
  CHECK(f.backend.content_count() == 1);
  f.store->begin();
  CHECK(f.store->remove_messages(make_id(2), {ids[0]}) == 1);
  f.store->commit();
  CHECK(f.backend.content_count() == 1);
  CHECK(f.pending(3).at(0).inline_content == byte_buffer{7, 8, 9});
}

TEST_CASE_TEMPLATE("groups: a failing row write throws storage_error and leaves the cache as committed after the rollback", B, STORE_BACKENDS) {
  store_fixture<B> f;
  add_v2_clients(f, 3);
  f.store->begin();
  f.store->create_group(gid(1), "room", make_id(1), true);
  f.store->commit();
  f.store->begin();
  f.store->add_group_member(gid(1), make_id(2));
  f.faults->fail_next_group_change = true;
  CHECK_THROWS_AS(f.store->add_group_member(gid(1), make_id(3)), storage_error);
  CHECK(f.store->group(gid(1))->members == std::vector{make_id(1), make_id(2)});  // the failed change is not cached
  f.store->rollback();
  CHECK(f.store->group(gid(1))->members == std::vector{make_id(1)});
  CHECK(f.store->groups_of(make_id(2)) == 0);
  f.reopen();
  CHECK(f.store->group(gid(1))->members == std::vector{make_id(1)});
}
