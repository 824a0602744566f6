// Tests of the pieces the request flows share (server/requests/request.hpp): the registry of
// pulls in progress and the log limiter.
#include <doctest/doctest.h>

#include "request.hpp"
#include "server_test_support.hpp"

using namespace letterbox::server;
using namespace std::chrono_literals;

TEST_CASE("log limiter: one line per interval per key; the next says how many were dropped") {
  log_limiter limiter(1000ms);
  const auto t0 = std::chrono::steady_clock::time_point{} + 10s;
  CHECK(limiter.allow("disk", t0) == 0);
  CHECK(limiter.allow("disk", t0 + 1ms) == -1);
  CHECK(limiter.allow("disk", t0 + 999ms) == -1);
  CHECK(limiter.allow("other", t0 + 999ms) == 0);  // keys are independent
  CHECK(limiter.allow("disk", t0 + 1000ms) == 2);  // two dropped since the last line
  CHECK(limiter.allow("disk", t0 + 1001ms) == -1);
  CHECK(limiter.allow("disk", t0 + 5000ms) == 1);
  // 200 errors a second for 3 seconds: 3 lines, not 600.
  log_limiter burst(1000ms);
  int lines = 0;
  for (int i = 0; i < 600; ++i) lines += burst.allow("pull", t0 + i * 5ms) >= 0;
  CHECK(lines == 3);
}

TEST_CASE("pull registry: a new pull of a mailbox closes an earlier one that is writing, and only such a one") {
  boost::asio::io_context io;
  boost::asio::thread_pool pool(1);
  const boost::asio::ip::tcp::endpoint peer(boost::asio::ip::make_address("127.0.0.1"), 1);
  boost::asio::ip::tcp::socket s1(io), s2(io), s3(io);
  s1.open(boost::asio::ip::tcp::v4());
  s2.open(boost::asio::ip::tcp::v4());
  s3.open(boost::asio::ip::tcp::v4());
  net::connection first(std::move(s1), peer, 1000ms, pool);
  net::connection second(std::move(s2), peer, 1000ms, pool);
  net::connection third(std::move(s3), peer, 1000ms, pool);
  pull_registry pulls;
  const auto bob = letterbox::server::test::make_id(2), carol = letterbox::server::test::make_id(3);

  const auto a = pulls.begin(bob, first);
  const auto c = pulls.begin(carol, third);  // another mailbox: independent
  const auto b = pulls.begin(bob, second);   // a is not writing: left alone
  CHECK_FALSE(first.closing());
  pulls.end(bob, a);  // the replaced pull ending must not drop the newer one
  CHECK(pulls.size() == 2);

  b->writing = true;                       // b is writing its messages
  const auto d = pulls.begin(bob, first);  // a newer pull: b's connection is closed
  CHECK(second.closing());
  CHECK_FALSE(third.closing());
  pulls.end(bob, b);
  pulls.end(bob, d);
  pulls.end(carol, c);
  CHECK(pulls.size() == 0);
  pool.join();
}

TEST_CASE("per-address limits count IPv6 by its /64, IPv4 (also IPv4-mapped) by the address") {
  using boost::asio::ip::make_address;
  CHECK(net::network_of(make_address("2001:db8:1:2:aaaa:bbbb:cccc:dddd")) == make_address("2001:db8:1:2::"));
  CHECK(net::network_of(make_address("2001:db8:1:2::1")) == net::network_of(make_address("2001:db8:1:2:ffff::9")));
  CHECK(net::network_of(make_address("2001:db8:1:3::1")) != net::network_of(make_address("2001:db8:1:2::1")));
  CHECK(net::network_of(make_address("192.0.2.7")) == make_address("192.0.2.7"));
  CHECK(net::network_of(make_address("::ffff:192.0.2.7")) == make_address("192.0.2.7"));
}

TEST_CASE("registration rate: a bucket of N per minute per network, refilled over the minute") {
  rate_limiter limiter(3);
  const auto a = boost::asio::ip::make_address("192.0.2.1"), b = boost::asio::ip::make_address("192.0.2.2");
  const auto t0 = std::chrono::steady_clock::time_point{} + 100s;
  CHECK(limiter.allow(a, t0));
  CHECK(limiter.allow(a, t0));
  CHECK(limiter.allow(a, t0));
  CHECK_FALSE(limiter.allow(a, t0 + 1s));
  CHECK(limiter.allow(b, t0 + 1s));        // another address
  CHECK(limiter.allow(a, t0 + 21s));       // 3 a minute: one more after 20 s
  CHECK_FALSE(limiter.allow(a, t0 + 22s));
}

TEST_CASE("rate limiter: available() tells whether one more would pass, counting nothing (failed AUTHs)") {
  rate_limiter limiter(2);
  const auto a = boost::asio::ip::make_address("192.0.2.1");
  const auto t0 = std::chrono::steady_clock::time_point{} + 100s;
  CHECK(limiter.available(a, t0));  // never seen: a full bucket
  for (int i = 0; i < 5; ++i) CHECK(limiter.available(a, t0));  // asking takes nothing
  CHECK(limiter.allow(a, t0));
  CHECK(limiter.available(a, t0));
  CHECK(limiter.allow(a, t0));
  CHECK_FALSE(limiter.available(a, t0 + 1s));
  CHECK_FALSE(limiter.allow(a, t0 + 1s));
  CHECK(limiter.available(a, t0 + 31s));  // 2 a minute: one more after 30 s
  CHECK(limiter.allow(a, t0 + 31s));
  CHECK_FALSE(limiter.available(a, t0 + 32s));
}

TEST_CASE("free-disk watermark: sends in progress count against the free space") {
  disk_space unlimited(std::filesystem::temp_directory_path(), 0);
  CHECK(unlimited.allows(~std::uint64_t{0} / 2));
  disk_space disk(std::filesystem::temp_directory_path(), 1);
  CHECK(disk.allows(1024));
  CHECK_FALSE(disk.allows(~std::uint64_t{0} / 2));  // more than any disk has
  {
    const disk_space::reservation huge(disk, ~std::uint64_t{0} / 2);  // a send in progress
    CHECK_FALSE(disk.allows(1024));
  }
  CHECK(disk.allows(1024));
}
