// Unit tests of the benchmark tools' pure parts: the latency histogram, the streaming 1004
// parser and the content pattern (bench/bench_common.hpp, bench/pulled_message_parser.hpp),
// and of the process probes, read on this test process itself.
#include <doctest/doctest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "bench_common.hpp"
#include "pulled_message_parser.hpp"

using namespace letterbox::bench;
namespace proto = letterbox::protocol;

TEST_CASE("latency_histogram: empty, exact small values, bounded error for large ones") {
  latency_histogram h;
  CHECK(h.count() == 0);
  CHECK(h.quantile(0.5) == 0);

  for (std::uint64_t v = 1; v <= 100; ++v) h.record(v);
  CHECK(h.count() == 100);
  CHECK(h.quantile(0.5) == 50);  // values below 128 are exact
  CHECK(h.quantile(0.99) == 99);
  CHECK(h.quantile(1.0) == 100);
  CHECK(h.max() == 100);

  latency_histogram big;
  for (std::uint64_t us = 1; us <= 10'000; ++us) big.record(us * 1000);  // 1 us .. 10 ms
  const double p50 = static_cast<double>(big.quantile(0.5));
  const double p99 = static_cast<double>(big.quantile(0.99));
  CHECK(p50 == doctest::Approx(5'000'000).epsilon(0.02));
  CHECK(p99 == doctest::Approx(9'900'000).epsilon(0.02));
  CHECK(big.quantile(1.0) <= big.max());
}

TEST_CASE("latency_histogram: buckets tile the value range without gaps") {
  for (std::size_t i = 1; i < latency_histogram::bucket_count - 1; ++i) {
    auto [low, high] = latency_histogram::bucket_range(i);
    auto [next_low, next_high] = latency_histogram::bucket_range(i + 1);
    (void)next_high;
    REQUIRE(next_low == high + 1);
    REQUIRE(latency_histogram::index_of(low) == i);
    REQUIRE(latency_histogram::index_of(high) == i);
  }
  CHECK(latency_histogram::index_of(~std::uint64_t{0}) == latency_histogram::bucket_count - 1);
}

TEST_CASE("latency_histogram: merge adds counts and keeps the max") {
  latency_histogram a, b;
  a.record(std::uint64_t{10});
  b.record(std::uint64_t{20});
  b.record(std::uint64_t{30});
  a.merge(b);
  CHECK(a.count() == 3);
  CHECK(a.max() == 30);
  CHECK(a.quantile(0.5) == 20);
}

namespace {
struct collector {
  std::vector<proto::pulled_message_header> headers;
  std::vector<std::vector<std::uint8_t>> contents;
  void on_message(const proto::pulled_message_header& h) {
    headers.push_back(h);
    contents.emplace_back();
  }
  void on_content(proto::bytes_view bytes, std::uint64_t offset) {
    REQUIRE(offset == contents.back().size());
    contents.back().insert(contents.back().end(), bytes.begin(), bytes.end());
  }
};

proto::byte_buffer pull_payload(const std::vector<std::pair<std::uint32_t, std::string>>& messages) {
  proto::byte_buffer out;
  for (auto& [id, text] : messages) {
    proto::pulled_message_header h;
    h.from[0] = 0xAB;
    h.message_id = id;
    h.type = 3;
    h.content_size = static_cast<std::uint32_t>(text.size());
    auto bytes = proto::encode_pulled_message_header(h);
    out.insert(out.end(), bytes.begin(), bytes.end());
    out.insert(out.end(), text.begin(), text.end());
  }
  return out;
}
}  // namespace

TEST_CASE("pulled_message_parser: any chunking yields the same messages") {
  const auto payload = pull_payload({{1, "hello"}, {2, ""}, {7, std::string(300, 'x')}});
  for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{25}, std::size_t{26}, payload.size()}) {
    CAPTURE(chunk);
    pulled_message_parser parser;
    collector c;
    for (std::size_t at = 0; at < payload.size(); at += chunk) {
      parser.feed(proto::bytes_view(payload).subspan(at, std::min(chunk, payload.size() - at)), c);
    }
    CHECK(parser.at_message_boundary());
    REQUIRE(c.headers.size() == 3);
    CHECK(c.headers[0].message_id == 1);
    CHECK(c.headers[1].content_size == 0);
    CHECK(c.headers[2].message_id == 7);
    CHECK(std::string(c.contents[0].begin(), c.contents[0].end()) == "hello");
    CHECK(c.contents[1].empty());
    CHECK(c.contents[2].size() == 300);
  }
}

TEST_CASE("pulled_message_parser: a payload cut inside a message is not at a boundary") {
  const auto payload = pull_payload({{1, "hello"}});
  pulled_message_parser in_header, in_content;
  collector c1, c2;
  in_header.feed(proto::bytes_view(payload).first(10), c1);
  in_content.feed(proto::bytes_view(payload).first(payload.size() - 1), c2);
  CHECK_FALSE(in_header.at_message_boundary());
  CHECK_FALSE(in_content.at_message_boundary());
  CHECK(c1.headers.empty());
  CHECK(c2.headers.size() == 1);
}

TEST_CASE("fill_pattern: chunks at any offset agree with one whole fill; a changed byte is caught") {
  std::vector<std::uint8_t> whole(1000);
  fill_pattern(42, 0, whole);
  std::vector<std::uint8_t> scratch;
  for (std::size_t offset : {0, 1, 7, 8, 9, 333}) {
    std::vector<std::uint8_t> part(1000 - offset);
    fill_pattern(42, offset, part);
    CHECK(std::equal(part.begin(), part.end(), whole.begin() + static_cast<std::ptrdiff_t>(offset)));
    CHECK(matches_pattern(42, offset, part, scratch));
  }
  whole[500] ^= 1;
  CHECK_FALSE(matches_pattern(42, 0, whole, scratch));
  std::vector<std::uint8_t> other(64);
  fill_pattern(43, 0, other);
  CHECK_FALSE(std::equal(other.begin(), other.end(), whole.begin()));
}

TEST_CASE("result_line: one JSON object, fields in order, numbers and escaped strings") {
  result_line line("send");
  line.add("connections", 64).add("sends_per_s", 1234.5).add("ok", true).add("note", "a \"quoted\" \\ path\n");
  CHECK(line.json() ==
        R"({"scenario":"send","connections":64,"sends_per_s":1234.5,"ok":"true","note":"a \"quoted\" \\ path"})");
  result_line empty("x");
  empty.add("nan", std::nan(""));
  CHECK(empty.json() == R"({"scenario":"x","nan":null})");
}

TEST_CASE("cpu_ticks_from_proc_stat: malformed text is refused") {
  CHECK_FALSE(cpu_ticks_from_proc_stat("").has_value());
  CHECK_FALSE(cpu_ticks_from_proc_stat("1234 (no closing parenthesis S 1 2").has_value());
  CHECK_FALSE(cpu_ticks_from_proc_stat("1234 (x)").has_value());  // nothing after the name
  CHECK_FALSE(cpu_ticks_from_proc_stat("1234 (x) S 1 2 3 4 5 6 7 8 9 10 11\n").has_value());  // no stime
  CHECK_FALSE(cpu_ticks_from_proc_stat("1234 (x) S 1 2 3 4 5 6 7 8 9 10 1x 2 0").has_value());  // utime
}

TEST_CASE("cpu_ticks_from_proc_stat: utime + stime, counted after a name with spaces and parentheses") {
  // pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime ...
  CHECK(cpu_ticks_from_proc_stat("4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 9 20 0 1 0\n") ==
        300u);
  CHECK(cpu_ticks_from_proc_stat("1 (x) R 0 0 0 0 0 0 0 0 0 0 12 34") == 46u);  // ends at stime
}

TEST_CASE("process_cpu_seconds: /proc/self/stat grows with work and agrees with getrusage") {
  CHECK_FALSE(process_cpu_seconds(-1).has_value());  // no such process
  const auto before = process_cpu_seconds(::getpid());
  REQUIRE(before.has_value());
  CHECK(*before >= 0.0);
  const double own_start = own_cpu_seconds();
  volatile std::uint64_t sink = 0;
  while (own_cpu_seconds() - own_start < 0.2)
    for (std::uint64_t i = 0; i < 100'000; ++i) sink = sink + splitmix64(i);
  const auto after = process_cpu_seconds(::getpid());
  const double own_end = own_cpu_seconds();
  REQUIRE(after.has_value());
  CHECK(*after - *before >= 0.1);  // 0.2 s of work, counted in clock ticks
  CHECK(std::fabs(*after - own_end) <= 0.05);  // the same counters, in ticks instead of microseconds
}

TEST_CASE("open_descriptor_count: one more while a file is open; 0 for a missing process") {
  CHECK(open_descriptor_count(-1) == 0);
  const std::size_t before = open_descriptor_count(::getpid());
  CHECK(before > 0);
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  CHECK(open_descriptor_count(::getpid()) == before + 1);
  std::fclose(file);
  CHECK(open_descriptor_count(::getpid()) == before);
}

TEST_CASE("raise_file_limit: a lowered soft limit goes back up to the hard limit, which is returned") {
  rlimit limit{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
  limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 256);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &limit) == 0);
  const rlim_t raised = raise_file_limit();
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
  CHECK(raised == limit.rlim_cur);
  CHECK(limit.rlim_cur == limit.rlim_max);
}
