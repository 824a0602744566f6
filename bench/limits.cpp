// bench/limits: the ceilings of this machine that bound the server's figures, measured the
// same way in the same run as the load generator. Each limit prints a table and one
// BENCH_RESULT line (see bench_common.hpp):
//   limit-fsync     4 KiB overwrite + fdatasync() rate of the directory's filesystem (WAL reuse)
//   limit-fsync-append  4 KiB append + fdatasync() rate (file grows: journal commit each time)
//   limit-sqlite    SQLite inserts/s with the server's pragmas (WAL, synchronous=FULL) at
//                   1, 16, 64, 100 and 1000 rows per transaction (the server's schema/*.sql),
//                   after an untimed warm-up that makes the WAL wrap like a running server's
//   limit-seqwrite  sequential write of a new file, 1 MiB writes, write-back started every
//                   8 MiB (sync_file_range), fsync at the end; -plain: without early write-back
//   limit-tcp       loopback TCP throughput, one connection, 1 MiB writes
//   limit-tcp-rr    loopback request/response round trips (107-byte request, 27-byte answer,
//                   the sizes of a 64-byte 103/1003), one connection, two threads
// Every loop is bounded by --seconds and by a count.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "bench_common.hpp"
#include "protocol_constants.hpp"

namespace fs = std::filesystem;
using namespace letterbox::bench;

namespace {

constexpr std::size_t fsync_block_size = 4096;
constexpr std::size_t fsync_file_blocks = 256;  // overwrite a 1 MiB file in a ring, like a WAL
constexpr std::uint64_t fsync_max_count = 1'000'000;
constexpr std::uint64_t sqlite_max_rows = 5'000'000;
constexpr std::size_t sqlite_content_size = 64;  // the loadgen's default message
constexpr std::size_t sqlite_clients = 64;  // recipients, like the loadgen's 64 connections
constexpr int sqlite_warmup_max_commits = 3000;
constexpr int sqlite_warmup_max_seconds = 15;
constexpr int sqlite_warmup_steady_commits = 20;  // WAL size unchanged this often: it wraps
constexpr std::size_t sqlite_warmup_row_size = 4000;
constexpr std::size_t seq_chunk_size = 1 << 20;
constexpr std::uint64_t seq_writeback_interval = 8ull << 20;  // as the server's spool files
constexpr double seq_max_seconds = 60.0;
constexpr std::size_t tcp_chunk_size = 1 << 20;
constexpr int sqlite_cache_kib = 8192;  // the server's PRAGMA cache_size (server/sqlite_store.cpp)
// A 103 with 64 B of content and its 1003 answer.
constexpr std::size_t rr_request_size = letterbox::protocol::request_header_size +
                                        letterbox::protocol::send_message_prefix_size + sqlite_content_size;
constexpr std::size_t rr_response_size =
    letterbox::protocol::response_header_size + letterbox::protocol::message_sent_response_size;
constexpr double bytes_per_mb = 1e6;

std::string run_label;  // --label: tells the measurements of one run apart (before/after)

// A result line for one limit, labelled when --label was given.
result_line limit_line(const char* name) {
  result_line line(name);
  if (!run_label.empty()) line.add("label", run_label);
  return line;
}

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// RAII file descriptor.
class unique_fd {
 public:
  explicit unique_fd(int fd = -1) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    reset(std::exchange(o.fd_, -1));
    return *this;
  }
  ~unique_fd() { reset(); }
  int get() const noexcept { return fd_; }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

void write_all(int fd, const std::uint8_t* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write");
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

void read_all(int fd, std::uint8_t* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::read(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read");
    }
    if (n == 0) throw std::runtime_error("unexpected end of stream");
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

// Overwrite mode: 4 KiB pwrite into a preallocated 1 MiB file (ring), then fdatasync(): what
// SQLite's WAL does in steady state (the WAL file is reused from its start after each
// checkpoint, so its size does not change). Append mode: 4 KiB appended to a new file, then
// fdatasync(): the file size changes every time, so each sync also commits the filesystem
// journal (what a growing WAL or a new spool file costs).
void measure_sync(const fs::path& dir, double seconds, bool append) {
  const fs::path path = dir / (append ? "limits-sync-append.tmp" : "limits-sync-overwrite.tmp");
  unique_fd fd(::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600));
  if (fd.get() < 0) throw_errno("open " + path.string());
  std::vector<std::uint8_t> block(fsync_block_size);
  fill_pattern(1, 0, block);
  if (!append) {
    for (std::size_t i = 0; i < fsync_file_blocks; ++i) write_all(fd.get(), block.data(), block.size());
    if (::fsync(fd.get()) != 0) throw_errno("fsync");
  }

  latency_histogram latency;
  const auto start = bench_clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  std::uint64_t count = 0;
  auto now = start;
  while (now < deadline && count < fsync_max_count) {
    const std::uint64_t block_index = append ? count : count % fsync_file_blocks;
    const off_t offset = static_cast<off_t>(block_index * fsync_block_size);
    block[0] = static_cast<std::uint8_t>(count);
    if (::pwrite(fd.get(), block.data(), block.size(), offset) != static_cast<ssize_t>(block.size()))
      throw_errno("pwrite");
    if (::fdatasync(fd.get()) != 0) throw_errno("fdatasync");
    const auto after = bench_clock::now();
    latency.record(after - now);
    now = after;
    ++count;
  }
  const double elapsed = seconds_between(start, now);
  fs::remove(path);
  limit_line(append ? "limit-fsync-append" : "limit-fsync")
      .add("mode", append ? "append 4 KiB + fdatasync" : "overwrite 4 KiB + fdatasync")
      .add("dir", dir.string())
      .add("syncs", count)
      .add("seconds", elapsed)
      .add("fsyncs_per_s", count / elapsed)
      .add("p50_us", latency.quantile_us(0.50))
      .add("p99_us", latency.quantile_us(0.99))
      .print();
}

// SQLite inserts with the server's schema (schema_scripts: schema/*.sql in order, so the table,
// its indexes and its foreign keys are the server's own), pragmas and INSERT, one result per
// batch size. One connection and one database for all sizes: an untimed warm-up first commits
// small transactions until SQLite's auto-checkpoint has restarted the WAL, so the timed
// commits reuse the WAL file as a long-running server's do (a growing WAL costs a filesystem
// journal commit per sync). Checkpoints stay SQLite's default (inline, every 1000 pages).
void measure_sqlite(const fs::path& dir, double seconds, const std::vector<int>& batch_sizes,
                    const std::vector<std::string>& schema_scripts) {
  std::vector<std::array<std::uint8_t, 16>> client_ids(sqlite_clients);
  for (std::size_t k = 0; k < client_ids.size(); ++k) fill_pattern(100 + k, 0, client_ids[k]);
  const fs::path path = dir / "limits-sqlite.db";
  const std::string wal = path.string() + "-wal";
  auto remove_database = [&] {
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix);
  };
  remove_database();
  {
    SQLite::Database db(path.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("PRAGMA journal_mode=WAL");
    db.exec("PRAGMA synchronous=FULL");
    db.exec("PRAGMA cache_size=-" + std::to_string(sqlite_cache_kib));
    db.exec("PRAGMA foreign_keys=ON");
    for (const auto& sql : schema_scripts) db.exec(sql);
    SQLite::Statement add_client(db, "INSERT INTO clients (ID, Name, PublicKey, LastSeen) VALUES (?, ?, ?, NULL)");
    const std::vector<std::uint8_t> key(160, 0x30);
    for (std::size_t k = 0; k < client_ids.size(); ++k) {
      const std::string name = "limits-" + std::to_string(k);
      add_client.bind(1, client_ids[k].data(), static_cast<int>(client_ids[k].size()));
      add_client.bind(2, name);
      add_client.bind(3, key.data(), static_cast<int>(key.size()));
      add_client.exec();
      add_client.reset();
    }
    // The server's own insert (server/sqlite_store.cpp).
    SQLite::Statement insert(db,
                             "INSERT INTO messages (ToClient, FromClient, Type, Content, ContentSize, "
                             "ContentFile, SentAt) VALUES (?, ?, 3, ?, ?, NULL, '2026-01-01 00:00:00')");
    auto insert_row = [&](std::uint64_t row, const std::vector<std::uint8_t>& content) {
      const auto& to = client_ids[row % client_ids.size()];  // 64 recipients, like the loadgen
      const auto& from = client_ids[(row + 1) % client_ids.size()];
      insert.bind(1, to.data(), static_cast<int>(to.size()));
      insert.bind(2, from.data(), static_cast<int>(from.size()));
      insert.bind(3, content.data(), static_cast<int>(content.size()));
      insert.bind(4, static_cast<int>(content.size()));
      insert.exec();
      insert.reset();
    };

    std::vector<std::uint8_t> filler(sqlite_warmup_row_size);
    fill_pattern(5, 0, filler);
    const auto warm_deadline = bench_clock::now() + std::chrono::seconds(sqlite_warmup_max_seconds);
    std::uintmax_t wal_size = 0;
    int warmup_commits = 0;
    for (int unchanged = 0; warmup_commits < sqlite_warmup_max_commits && bench_clock::now() < warm_deadline &&
                            unchanged < sqlite_warmup_steady_commits;
         ++warmup_commits) {
      SQLite::Transaction transaction(db);
      insert_row(static_cast<std::uint64_t>(warmup_commits), filler);
      transaction.commit();
      std::error_code ec;
      const auto size = fs::file_size(wal, ec);
      unchanged = (!ec && size == wal_size && size > 0) ? unchanged + 1 : 0;  // the WAL stopped growing
      if (!ec) wal_size = size;
    }

    std::vector<std::uint8_t> content(sqlite_content_size);
    fill_pattern(2, 0, content);
    std::uint64_t row = 0;
    for (int rows_per_transaction : batch_sizes) {
      latency_histogram transaction_latency;  // inserts + commit (with its sync)
      std::uint64_t rows = 0;
      const auto start = bench_clock::now();
      const auto deadline = start + std::chrono::duration<double>(seconds);
      auto now = start;
      while (now < deadline && rows < sqlite_max_rows) {
        const auto transaction_start = now;
        SQLite::Transaction transaction(db);
        for (int i = 0; i < rows_per_transaction; ++i, ++rows) insert_row(row++, content);
        transaction.commit();
        now = bench_clock::now();
        transaction_latency.record(now - transaction_start);
      }
      const double elapsed = seconds_between(start, now);
      std::error_code ec;
      const auto wal_bytes = fs::file_size(wal, ec);
      limit_line("limit-sqlite")
          .add("rows_per_transaction", rows_per_transaction)
          .add("warmup_commits", warmup_commits)
          .add("wal_bytes", static_cast<std::uint64_t>(wal_bytes))
          .add("rows", rows)
          .add("seconds", elapsed)
          .add("inserts_per_s", rows / elapsed)
          .add("transactions_per_s", rows / static_cast<double>(rows_per_transaction) / elapsed)
          .add("transaction_p50_us", transaction_latency.quantile_us(0.50))
          .add("transaction_p99_us", transaction_latency.quantile_us(0.99))
          .print();
    }
  }
  remove_database();
}

// Sequential write of a new file in 1 MiB writes, then fsync; the time includes the fsync.
// With early_writeback, sync_file_range(SYNC_FILE_RANGE_WRITE) starts the write-back of every
// 8 MiB as soon as it is written, so the device writes while the writer copies (the best a
// writer can do: limit-seqwrite); without it the page cache holds everything until the final
// fsync (limit-seqwrite-plain).
void measure_seqwrite(const fs::path& dir, std::uint64_t total_bytes, double max_seconds, bool early_writeback) {
  const fs::path path = dir / "limits-seqwrite.tmp";
  std::vector<std::uint8_t> chunk(seq_chunk_size);
  fill_pattern(3, 0, chunk);
  unique_fd fd(::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600));
  if (fd.get() < 0) throw_errno("open " + path.string());
  const auto start = bench_clock::now();
  const auto deadline = start + std::chrono::duration<double>(max_seconds);
  std::uint64_t written = 0, flushed = 0;
  while (written < total_bytes && bench_clock::now() < deadline) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), total_bytes - written));
    chunk[0] = static_cast<std::uint8_t>(written >> 20);
    write_all(fd.get(), chunk.data(), n);
    written += n;
    if (early_writeback && written - flushed >= seq_writeback_interval) {
      ::sync_file_range(fd.get(), static_cast<off_t>(flushed), static_cast<off_t>(written - flushed),
                        SYNC_FILE_RANGE_WRITE);
      flushed = written;
    }
  }
  const auto before_fsync = bench_clock::now();
  if (::fsync(fd.get()) != 0) throw_errno("fsync");
  const auto end = bench_clock::now();
  fd.reset();
  fs::remove(path);
  const double elapsed = seconds_between(start, end);
  limit_line(early_writeback ? "limit-seqwrite" : "limit-seqwrite-plain")
      .add("mode", early_writeback ? "1 MiB writes, write-back started every 8 MiB, fsync" : "1 MiB writes, fsync")
      .add("bytes", written)
      .add("seconds", elapsed)
      .add("fsync_seconds", seconds_between(before_fsync, end))
      .add("mb_per_s", written / bytes_per_mb / elapsed)
      .print();
}

// A connected pair of loopback TCP sockets (client, server side).
std::pair<unique_fd, unique_fd> loopback_pair() {
  unique_fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (listener.get() < 0) throw_errno("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) throw_errno("bind");
  if (::listen(listener.get(), 1) != 0) throw_errno("listen");
  socklen_t length = sizeof address;
  if (::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0)
    throw_errno("getsockname");
  unique_fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(client.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) throw_errno("connect");
  unique_fd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (server.get() < 0) throw_errno("accept");
  int one = 1;
  ::setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(server.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return {std::move(client), std::move(server)};
}

void measure_tcp_throughput(double seconds) {
  auto [client, server] = loopback_pair();
  std::atomic<std::uint64_t> received{0};
  bench_clock::time_point reader_end;
  std::thread reader([&, fd = server.get()] {
    std::vector<std::uint8_t> buffer(tcp_chunk_size);
    std::uint64_t total = 0;
    for (;;) {
      const ssize_t n = ::read(fd, buffer.data(), buffer.size());
      if (n <= 0) break;
      total += static_cast<std::uint64_t>(n);
    }
    reader_end = bench_clock::now();
    received = total;
  });
  std::vector<std::uint8_t> chunk(tcp_chunk_size);
  fill_pattern(4, 0, chunk);
  const auto start = bench_clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  while (bench_clock::now() < deadline) write_all(client.get(), chunk.data(), chunk.size());
  ::shutdown(client.get(), SHUT_WR);
  reader.join();
  const double elapsed = seconds_between(start, reader_end);
  limit_line("limit-tcp")
      .add("bytes", received.load())
      .add("seconds", elapsed)
      .add("mb_per_s", received.load() / bytes_per_mb / elapsed)
      .print();
}

void measure_tcp_round_trips(double seconds) {
  auto [client, server] = loopback_pair();
  std::thread echo([fd = server.get()] {
    std::array<std::uint8_t, rr_request_size> request{};
    std::array<std::uint8_t, rr_response_size> response{};
    try {
      for (;;) {
        read_all(fd, request.data(), request.size());
        write_all(fd, response.data(), response.size());
      }
    } catch (const std::exception&) {
      // the client closed: done
    }
  });
  std::array<std::uint8_t, rr_request_size> request{};
  std::array<std::uint8_t, rr_response_size> response{};
  latency_histogram latency;
  const auto start = bench_clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  auto now = start;
  std::uint64_t count = 0;
  while (now < deadline && count < 10'000'000) {
    write_all(client.get(), request.data(), request.size());
    read_all(client.get(), response.data(), response.size());
    const auto after = bench_clock::now();
    latency.record(after - now);
    now = after;
    ++count;
  }
  ::shutdown(client.get(), SHUT_RDWR);
  echo.join();
  const double elapsed = seconds_between(start, now);
  limit_line("limit-tcp-rr")
      .add("round_trips", count)
      .add("seconds", elapsed)
      .add("round_trips_per_s", count / elapsed)
      .add("p50_us", latency.quantile_us(0.50))
      .add("p99_us", latency.quantile_us(0.99))
      .print();
}

// The SQL of every file in dir ending in .sql, in file-name order (the migration order).
std::vector<std::string> read_schema(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".sql") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw std::runtime_error("no *.sql in " + dir.string());
  std::vector<std::string> scripts;
  for (const auto& file : files) {
    std::ifstream in(file);
    scripts.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return scripts;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Letterbox bench/limits: this machine's ceilings (fsync, SQLite, sequential write, loopback TCP)"};
  std::string dir = ".";
  double seconds = 2.0;
  std::uint64_t seq_bytes = 1ull << 30;
  std::vector<std::string> only;
  app.add_option("--dir", dir, "directory on the filesystem of the server's DB (temp files are made here)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--seconds", seconds, "duration of each timed measurement")->check(CLI::Range(0.05, 60.0));
  app.add_option("--seq-bytes", seq_bytes, "bytes written by the sequential-write test")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{16} << 30));
  std::string schema_dir = LETTERBOX_SCHEMA_DIR;
  app.add_option("--schema-dir", schema_dir, "the server's schema/ (its *.sql migrations make the SQLite table)");
  app.add_option("--label", run_label, "added to every result line as \"label\"");
  app.add_option("--only", only, "run only these: fsync sqlite seqwrite tcp tcp-rr")
      ->check(CLI::IsMember({"fsync", "sqlite", "seqwrite", "tcp", "tcp-rr"}));
  CLI11_PARSE(app, argc, argv);

  const std::set<std::string> selected(only.begin(), only.end());
  auto wanted = [&](const std::string& name) { return selected.empty() || selected.count(name) > 0; };
  try {
    if (wanted("fsync")) {
      measure_sync(dir, seconds, false);
      measure_sync(dir, seconds, true);
    }
    // 16 and 64: the largest group commits of send-legacy (16 clients) and send (64
    // connections), one request in flight each.
    if (wanted("sqlite")) measure_sqlite(dir, seconds, {1, 16, 64, 100, 1000}, read_schema(schema_dir));
    if (wanted("seqwrite")) {
      measure_seqwrite(dir, seq_bytes, seq_max_seconds, true);
      measure_seqwrite(dir, seq_bytes, seq_max_seconds, false);
    }
    if (wanted("tcp")) measure_tcp_throughput(seconds);
    if (wanted("tcp-rr")) measure_tcp_round_trips(seconds);
  } catch (const std::exception& e) {
    std::cerr << "limits: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
