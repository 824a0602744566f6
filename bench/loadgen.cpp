// bench/loadgen: a load generator that speaks protocol v1 to a running Letterbox server.
//
//   loadgen --port P [--server-pid PID] SCENARIO [options]
//   scenarios: send, send-v2, send-legacy, pull, pull-v2, file, idle, latency, long-reader, list, group-send, push
//   (see --help of each)
//
// Lean by design, since it shares the machine's cores with the server: a few threads, each
// with its own io_context running many coroutines (one per connection); every request is
// encoded once before the timed loop, responses are read into per-connection buffers, and
// latencies go to a fixed-size histogram, so the hot loop does not allocate. Every scenario is
// bounded in count and in time. Each prints a table and one BENCH_RESULT JSON line; the exit
// status is 1 when any request failed or content did not match.
#include <utility>  // before <boost/asio.hpp> (Boost 1.74 + g++ 12 + C++20)

#include <boost/asio.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cryptopp/osrng.h>
#include <cryptopp/queue.h>
#include <cryptopp/rsa.h>
#include <SQLiteCpp/Database.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "bench_common.hpp"
#include "identity.hpp"
#include "messages.hpp"
#include "messages_v2.hpp"
#include "pulled_message_parser.hpp"

namespace asio = boost::asio;
namespace proto = letterbox::protocol;
namespace proto2 = letterbox::protocol::v2;
namespace crypto = letterbox::crypto;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using namespace letterbox::bench;

namespace {

constexpr std::size_t small_response_capacity = 1024;  // 1000/1002/1003/9000 and empty 1004
constexpr std::size_t stream_chunk_size = 256 * 1024;  // pull and file transfers
constexpr std::size_t file_chunk_size = 1 << 20;
constexpr std::uint64_t file_pattern_seed = 0x1e77e7b0;
constexpr std::size_t connect_concurrency = 256;  // idle: connects in flight at once
constexpr double bytes_per_mb = 1e6;

// ---------------------------------------------------------------------------------------
// Options

struct options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  long server_pid = 0;  // 0: no server memory figures
  int threads = 1;
  int connections = 0;  // 0: the scenario's default
  double duration = 5.0;
  std::uint64_t max_requests = 50'000'000;
  std::uint32_t content_size = 64;
  // pull
  std::uint32_t messages_per_mailbox = 5000;
  int preload_connections = 64;
  double preload_seconds = 60.0;
  // file
  std::uint64_t file_size = 1ull << 30;
  // idle
  int idle_connections = 10'000;
  int fresh_samples = 20;
  double idle_settle_seconds = 10.0;
  // latency, long-reader
  double rate = 1000.0;
  // long-reader
  std::string db_path;
  double reader_start = 2.0;
  double reader_seconds = 15.0;
  // group-send
  int delivery_rounds = 20;
  // list
  std::uint64_t list_clients = 100'000;
  int register_connections = 64;
  std::size_t register_window = 16;
  double register_seconds = 300.0;
  int listers = 1;
  double list_warmup_seconds = 0;
  double list_pause_ms = 0;  // between a lister's 1001 and its next 101
};

// ---------------------------------------------------------------------------------------
// Shared run state: counts failures from every coroutine, on every thread.

class failure_log {
 public:
  void record(const std::string& what) {
    if (count_.fetch_add(1) == 0) {
      std::lock_guard lock(mutex_);
      first_ = what;
    }
  }
  std::uint64_t count() const { return count_.load(); }
  std::string first() const {
    std::lock_guard lock(mutex_);
    return first_;
  }

 private:
  std::atomic<std::uint64_t> count_{0};
  mutable std::mutex mutex_;
  std::string first_;
};

// T io_contexts, each run by its own thread for one phase at a time.
class worker_pool {
 public:
  explicit worker_pool(int threads) {
    for (int i = 0; i < threads; ++i) contexts_.push_back(std::make_unique<asio::io_context>(1));
  }
  std::size_t size() const { return contexts_.size(); }
  asio::io_context& context(std::size_t i) { return *contexts_[i % contexts_.size()]; }

  // Runs every context until it has no more work (one phase), on one thread per context.
  void run_phase() {
    std::vector<std::thread> threads;
    for (auto& io : contexts_) {
      io->restart();
      threads.emplace_back([&io] { io->run(); });
    }
    for (auto& t : threads) t.join();
  }

 private:
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
};

// Per-thread figures, merged after a phase (no sharing in the hot loop).
struct alignas(64) thread_stats {
  latency_histogram latency;
  std::uint64_t completed = 0;
  bench_clock::time_point last_end{};
};

struct merged_stats {
  latency_histogram latency;
  std::uint64_t completed = 0;
  bench_clock::time_point last_end{};
};

merged_stats merge(const std::vector<std::unique_ptr<thread_stats>>& all) {
  merged_stats out;
  for (auto& s : all) {
    out.latency.merge(s->latency);
    out.completed += s->completed;
    out.last_end = std::max(out.last_end, s->last_end);
  }
  return out;
}

std::vector<std::unique_ptr<thread_stats>> make_stats(std::size_t n) {
  std::vector<std::unique_ptr<thread_stats>> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(std::make_unique<thread_stats>());
  return out;
}

// Watches the resources of one timed phase: the server's memory (sampled every few
// milliseconds on its own thread, plus VmHWM, reset at the start) and the CPU time of the
// load generator and of the server.
class resource_probe {
 public:
  explicit resource_probe(long pid) : pid_(pid), own_cpu_start_(own_cpu_seconds()) {
    if (pid_ <= 0) return;
    server_cpu_start_ = process_cpu_seconds(pid_);
    peak_reset_ = reset_peak_memory(pid_);
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        if (auto m = read_process_memory(pid_)) max_rss_ = std::max(max_rss_.load(), m->rss_bytes);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
  }
  ~resource_probe() { stop(); }
  resource_probe(const resource_probe&) = delete;
  resource_probe& operator=(const resource_probe&) = delete;

  // Adds loadgen_cpu_s, server_cpu_s and, with requests > 0, cpu_us_per_request (both
  // processes together), then the server's memory: server_rss_now_mib,
  // server_max_sampled_rss_mib, server_peak_rss_mib (VmHWM since the start).
  void report(result_line& line, std::uint64_t requests = 0) {
    stop();
    const double own = own_cpu_seconds() - own_cpu_start_;
    line.add("loadgen_cpu_s", own);
    if (pid_ <= 0) return;
    const auto server_now = process_cpu_seconds(pid_);
    if (server_cpu_start_ && server_now) {
      const double server = *server_now - *server_cpu_start_;
      line.add("server_cpu_s", server);
      if (requests > 0) line.add("cpu_us_per_request", (own + server) * 1e6 / static_cast<double>(requests));
    }
    auto m = read_process_memory(pid_);
    if (!m) return;
    line.add("server_rss_now_mib", m->rss_bytes / 1048576.0)
        .add("server_max_sampled_rss_mib", max_rss_.load() / 1048576.0)
        .add("server_peak_rss_mib", m->peak_bytes / 1048576.0)
        .add("server_peak_reset", peak_reset_);
  }

 private:
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  long pid_;
  double own_cpu_start_;
  std::optional<double> server_cpu_start_;
  bool peak_reset_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> max_rss_{0};
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------
// Protocol over a socket

struct small_response {
  proto::response_header header;
  proto::bytes_view payload;  // points into the caller's buffer
};

using response_buffer = std::array<std::uint8_t, small_response_capacity>;

// Reads one whole response that fits in buffer. Throws on a larger one, on bytes beyond it
// (we never pipeline) and on a closed connection.
awaitable<small_response> read_small_response(tcp::socket& socket, response_buffer& buffer) {
  std::size_t have = 0;
  while (have < proto::response_header_size)
    have += co_await socket.async_read_some(asio::buffer(buffer.data() + have, buffer.size() - have), use_awaitable);
  const auto header = proto::decode_response_header(proto::bytes_view(buffer.data(), proto::response_header_size));
  if (header.payload_size > buffer.size() - proto::response_header_size)
    throw std::runtime_error("response of " + std::to_string(header.payload_size) + " bytes is not small");
  const std::size_t total = proto::response_header_size + header.payload_size;
  while (have < total)
    have += co_await socket.async_read_some(asio::buffer(buffer.data() + have, buffer.size() - have), use_awaitable);
  if (have != total) throw std::runtime_error("bytes after the response");
  co_return small_response{header, proto::bytes_view(buffer.data() + proto::response_header_size, header.payload_size)};
}

void expect_code(const proto::response_header& header, proto::response_code code, const char* request) {
  if (header.code != static_cast<std::uint16_t>(code))
    throw std::runtime_error(std::string(request) + ": response code " + std::to_string(header.code) +
                             ", expected " + std::to_string(static_cast<int>(code)));
}

// A whole request of a benchmark client (version 2), framed by the protocol library.
proto::byte_buffer benchmark_request(const proto::client_id& from, proto::request_code code, proto::bytes_view payload) {
  return proto::encode_request(from, proto::client_version, static_cast<std::uint8_t>(code), payload);
}

// A complete 103 request (header + prefix + content) from `from` to `to`.
proto::byte_buffer encode_send_request(const proto::client_id& from, const proto::client_id& to,
                                       proto::message_type type, proto::bytes_view content) {
  auto payload = proto::encode_send_message_prefix({to, static_cast<std::uint8_t>(type),
                                                    static_cast<std::uint32_t>(content.size())});
  payload.insert(payload.end(), content.begin(), content.end());
  return benchmark_request(from, proto::request_code::send_message, payload);
}

// A real RSA-1024 public key (e = 17: 160 bytes of X.509 DER), made once and shared by every
// benchmark client: the server may check the key's form, never its uniqueness.
const proto::public_key& benchmark_public_key() {
  static const proto::public_key key = [] {
    CryptoPP::AutoSeededRandomPool rng;
    CryptoPP::InvertibleRSAFunction private_key;
    private_key.GenerateRandomWithKeySize(rng, 1024);
    CryptoPP::RSAFunction public_key(private_key);
    CryptoPP::ByteQueue queue;
    public_key.Save(queue);
    if (queue.MaxRetrievable() != proto::public_key_size)
      throw std::runtime_error("generated public key is not 160 bytes");
    proto::public_key out{};
    queue.Get(out.data(), out.size());
    return out;
  }();
  return key;
}

std::string unique_name(const std::string& scenario, std::size_t index) {
  static const std::string run_tag = std::to_string(::getpid()) + "-" +
                                     std::to_string(bench_clock::now().time_since_epoch().count() % 1'000'000);
  return "bench-" + scenario + "-" + run_tag + "-" + std::to_string(index);
}

void set_no_delay(tcp::socket& socket) { socket.set_option(tcp::no_delay(true)); }

awaitable<void> connect(tcp::socket& socket, const tcp::endpoint& server) {
  co_await socket.async_connect(server, use_awaitable);
  set_no_delay(socket);
}

// Registers `name` on an open connection; returns the new client ID.
awaitable<proto::client_id> register_client(tcp::socket& socket, const std::string& name) {
  const auto payload = proto::encode_register_request({name, benchmark_public_key()});
  const auto request = benchmark_request(proto::client_id{}, proto::request_code::register_client, payload);
  co_await asio::async_write(socket, asio::buffer(request), use_awaitable);
  response_buffer buffer;
  auto response = co_await read_small_response(socket, buffer);
  expect_code(response.header, proto::response_code::registered, "register");
  co_return proto::decode_registered_payload(response.payload);
}

// Protocol v2 (docs/PROTOCOL.md §12–§13) on an open connection: HELLO, then REGISTER `name`
// with a fresh Ed25519 identity (the agreement key is random bytes: the server never uses it;
// the legacy key is the shared benchmark key). The connection is then authenticated; returns
// the client ID the server derived, checked against our own derivation.
awaitable<proto::client_id> register_client_v2(tcp::socket& socket, const std::string& name) {
  response_buffer buffer;
  const auto hello = proto2::encode_request(proto2::request_code::hello, proto2::encode_hello_request());
  co_await asio::async_write(socket, asio::buffer(hello), use_awaitable);
  auto response = co_await read_small_response(socket, buffer);
  expect_code(response.header, static_cast<proto::response_code>(proto2::response_code::hello), "hello");
  const auto challenge = proto2::decode_hello_payload(response.payload).nonce;

  const auto secret = crypto::generate_identity();
  proto2::register_request request;
  request.name = name;
  request.identity = crypto::public_key_of(secret);
  CryptoPP::AutoSeededRandomPool rng;
  rng.GenerateBlock(request.agreement.data(), request.agreement.size());
  request.legacy = benchmark_public_key();
  proto2::name_field field{};
  std::copy(name.begin(), name.end(), field.begin());
  request.key_signature = crypto::sign(secret, crypto::labels::keys, {field, request.agreement, request.legacy});
  request.proof = crypto::sign(secret, crypto::labels::register_proof, {challenge, request.identity});
  const auto frame = proto2::encode_request(proto2::request_code::register_client,
                                            proto2::encode_register_request(request));
  co_await asio::async_write(socket, asio::buffer(frame), use_awaitable);
  response = co_await read_small_response(socket, buffer);
  expect_code(response.header, static_cast<proto::response_code>(proto2::response_code::registered), "v2 register");
  const auto id = proto2::decode_registered_payload(response.payload);
  if (id != crypto::derive_client_id(request.identity)) throw std::runtime_error("v2 register: the ID is not the key's");
  co_return id;
}

// One keep-alive connection of a registered benchmark client.
struct client_connection {
  explicit client_connection(asio::io_context& io) : socket(io) {}
  tcp::socket socket;
  proto::client_id id{};
  response_buffer buffer{};
  proto::byte_buffer request;  // pre-encoded request of the timed loop
};

// Connects and registers every connection (phase 1 of most scenarios); v2: HELLO + REGISTER,
// leaving each connection authenticated.
void connect_and_register(worker_pool& pool, std::vector<std::unique_ptr<client_connection>>& connections,
                          const tcp::endpoint& server, const std::string& scenario, failure_log& failures,
                          bool v2 = false) {
  for (std::size_t i = 0; i < connections.size(); ++i) {
    asio::co_spawn(
        pool.context(i),
        [&, i]() -> awaitable<void> {
          try {
            co_await connect(connections[i]->socket, server);
            // if/else, not ?: — g++ 12 evaluates both co_await operands of a conditional expression.
            if (v2) {
              connections[i]->id = co_await register_client_v2(connections[i]->socket, unique_name(scenario, i));
            } else {
              connections[i]->id = co_await register_client(connections[i]->socket, unique_name(scenario, i));
            }
          } catch (const std::exception& e) {
            failures.record(std::string("setup: ") + e.what());
          }
        },
        asio::detached);
  }
  pool.run_phase();
}

std::vector<std::unique_ptr<client_connection>> make_connections(worker_pool& pool, std::size_t n) {
  std::vector<std::unique_ptr<client_connection>> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(std::make_unique<client_connection>(pool.context(i)));
  return out;
}

// p50_us, p99_us, p999_us and max_us, each name after prefix.
void add_latency(result_line& line, const latency_histogram& latency, const std::string& prefix = "") {
  line.add(prefix + "p50_us", latency.quantile_us(0.50))
      .add(prefix + "p99_us", latency.quantile_us(0.99))
      .add(prefix + "p999_us", latency.quantile_us(0.999))
      .add(prefix + "max_us", latency.max() / 1e3);
}

std::string result_label;  // --label: tells runs of one scenario apart (e.g. against null_server)

int finish(result_line& line, const failure_log& failures) {
  if (!result_label.empty()) line.add("label", result_label);
  line.add("errors", failures.count());
  if (failures.count() > 0) line.add("first_error", failures.first());
  line.print();
  if (failures.count() > 0) std::cerr << "loadgen: " << failures.count() << " failures, first: " << failures.first() << "\n";
  return failures.count() > 0 ? 1 : 0;
}

// Runs request(connection) back to back on every connection (each on its pool thread) until
// the per-connection quota or the deadline; every completed request's latency is recorded.
// request is a coroutine that does one whole request/response and throws on failure.
template <typename Deadline, typename Request>
merged_stats run_closed_loop(worker_pool& pool, std::vector<std::unique_ptr<client_connection>>& connections,
                             std::uint64_t quota, Deadline deadline, failure_log& failures,
                             const std::string& what, Request request) {
  auto stats = make_stats(pool.size());
  for (std::size_t i = 0; i < connections.size(); ++i) {
    asio::co_spawn(
        pool.context(i),
        [&, i]() -> awaitable<void> {
          auto& c = *connections[i];
          auto& s = *stats[i % stats.size()];
          try {
            for (std::uint64_t k = 0; k < quota; ++k) {
              const auto t0 = bench_clock::now();
              if (t0 >= deadline) break;
              co_await request(c);
              const auto t1 = bench_clock::now();
              s.latency.record(t1 - t0);
              ++s.completed;
              s.last_end = t1;
            }
          } catch (const std::exception& e) {
            failures.record(what + ": " + e.what());
          }
        },
        asio::detached);
  }
  pool.run_phase();
  return merge(stats);
}

// One 103 on a keep-alive connection (its pre-encoded request) and its 1003.
awaitable<void> keep_alive_send(client_connection& c) {
  co_await asio::async_write(c.socket, asio::buffer(c.request), use_awaitable);
  auto response = co_await read_small_response(c.socket, c.buffer);
  expect_code(response.header, proto::response_code::message_sent, "send");
}

// One v2 SEND on an authenticated connection and its 2005 (response version 3).
awaitable<void> keep_alive_send_v2(client_connection& c) {
  co_await asio::async_write(c.socket, asio::buffer(c.request), use_awaitable);
  auto response = co_await read_small_response(c.socket, c.buffer);
  expect_code(response.header, static_cast<proto::response_code>(proto2::response_code::message_sent), "v2 send");
  if (response.header.version != proto2::wire_version) throw std::runtime_error("v2 send: response version is not 3");
}

// The result line of send and send-legacy: sends/s and latency over the timed phase.
int report_sends(const char* scenario, const char* count_field, int n, const options& opt, const merged_stats& total,
                 bench_clock::time_point start, resource_probe& resources, const failure_log& failures) {
  const double elapsed = seconds_between(start, std::max(total.last_end, start + std::chrono::microseconds(1)));
  result_line line(scenario);
  line.add(count_field, n)
      .add("threads", opt.threads)
      .add("content_bytes", opt.content_size)
      .add("sends", total.completed)
      .add("seconds", elapsed)
      .add("sends_per_s", total.completed / elapsed);
  add_latency(line, total.latency);
  resources.report(line, total.completed);
  return finish(line, failures);
}

// ---------------------------------------------------------------------------------------
// Scenarios

// send: N keep-alive connections (default 64), each a registered client sending small text
// messages to itself back to back; a message counts once its 1003 arrived.
// send-legacy (legacy = true): the same, but every request opens a new TCP connection and closes
// it after the response (how older clients behave), default 16 clients; latency includes the
// connect.
// send-v2 (v2 = true): the send scenario in protocol v2: each connection says HELLO and
// registers a v2 identity once (untimed, like v1's registration), then sends SENDs of type 16
// (a sealed text; the content is the same pattern bytes, which the server never opens) to
// itself back to back.
int run_sends(const options& opt, const tcp::endpoint& server, bool legacy, bool v2 = false) {
  const char* scenario = legacy ? "send-legacy" : (v2 ? "send-v2" : "send");
  const int n = opt.connections > 0 ? opt.connections : (legacy ? 16 : 64);
  worker_pool pool(opt.threads);
  failure_log failures;
  auto clients = make_connections(pool, static_cast<std::size_t>(n));
  connect_and_register(pool, clients, server, legacy ? "legacy" : (v2 ? "sendv2" : "send"), failures, v2);
  if (failures.count() > 0) {
    result_line line(scenario);
    return finish(line, failures);
  }
  std::vector<std::uint8_t> content(opt.content_size);
  fill_pattern(legacy ? 8 : 7, 0, content);
  for (auto& c : clients) {
    if (v2) {
      auto payload = proto2::encode_send_message_prefix(
          {c->id, static_cast<std::uint8_t>(proto2::message_type::sealed_text), static_cast<std::uint32_t>(content.size())});
      payload.insert(payload.end(), content.begin(), content.end());
      c->request = proto2::encode_request(proto2::request_code::send_message, payload);
    } else {
      c->request = encode_send_request(c->id, c->id, proto::message_type::text, content);
    }
    if (legacy) c->socket.close();  // registered; every send will use a new connection
  }

  resource_probe resources(opt.server_pid);
  const std::uint64_t quota = std::max<std::uint64_t>(1, opt.max_requests / static_cast<std::uint64_t>(n));
  const auto start = bench_clock::now();
  const auto deadline = start + std::chrono::duration<double>(opt.duration);
  auto one_legacy_send = [&server](client_connection& c) -> awaitable<void> {
    tcp::socket socket(co_await asio::this_coro::executor);
    co_await connect(socket, server);
    co_await asio::async_write(socket, asio::buffer(c.request), use_awaitable);
    auto response = co_await read_small_response(socket, c.buffer);
    expect_code(response.header, proto::response_code::message_sent, "send-legacy");
  };
  const auto total = legacy ? run_closed_loop(pool, clients, quota, deadline, failures, scenario, one_legacy_send)
                 : v2       ? run_closed_loop(pool, clients, quota, deadline, failures, scenario, keep_alive_send_v2)
                            : run_closed_loop(pool, clients, quota, deadline, failures, scenario, keep_alive_send);
  return report_sends(scenario, legacy ? "clients" : "connections", n, opt, total, start, resources, failures);
}

// Counts and checks the messages of a pull (small ones against the expected content).
struct pull_counter {
  proto::bytes_view expected_content;
  std::uint64_t messages = 0;
  std::uint64_t content_bytes = 0;
  std::uint64_t mismatches = 0;
  std::uint32_t last_id = 0;
  bool order_ok = true;
  std::vector<std::uint32_t>* ids = nullptr;  // v2: the IDs of this pull, to acknowledge

  void on_message(const proto::pulled_message_header& header) {
    if (messages > 0 && header.message_id <= last_id) order_ok = false;
    last_id = header.message_id;
    if (ids) ids->push_back(header.message_id);
    ++messages;
    if (header.content_size != expected_content.size()) ++mismatches;
  }
  void on_content(proto::bytes_view bytes, std::uint64_t offset) {
    content_bytes += bytes.size();
    if (offset + bytes.size() > expected_content.size() ||
        !std::equal(bytes.begin(), bytes.end(), expected_content.begin() + static_cast<std::ptrdiff_t>(offset)))
      ++mismatches;
  }
};

// Sends a pull (104) and streams its 1004 response through handler; returns the payload size.
template <typename Handler>
awaitable<std::uint64_t> pull_once(tcp::socket& socket, const proto::byte_buffer& request,
                                   std::vector<std::uint8_t>& buffer, Handler& handler, bool v2 = false) {
  co_await asio::async_write(socket, asio::buffer(request), use_awaitable);
  std::size_t have = 0;
  while (have < proto::response_header_size)
    have += co_await socket.async_read_some(asio::buffer(buffer.data() + have, buffer.size() - have), use_awaitable);
  const auto header = proto::decode_response_header(proto::bytes_view(buffer.data(), proto::response_header_size));
  if (v2) {
    expect_code(header, static_cast<proto::response_code>(proto2::response_code::messages), "v2 pull");
  } else {
    expect_code(header, proto::response_code::messages, "pull");
  }
  pulled_message_parser parser;
  pulled_message_parser_v2 parser_v2;
  auto feed = [&](proto::bytes_view bytes) { v2 ? parser_v2.feed(bytes, handler) : parser.feed(bytes, handler); };
  std::uint64_t left = header.payload_size;
  std::size_t first = std::min<std::uint64_t>(have - proto::response_header_size, left);
  if (have - proto::response_header_size > left) throw std::runtime_error("bytes after the pull response");
  feed(proto::bytes_view(buffer.data() + proto::response_header_size, first));
  left -= first;
  while (left > 0) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, buffer.size()));
    const std::size_t n = co_await socket.async_read_some(asio::buffer(buffer.data(), want), use_awaitable);
    feed(proto::bytes_view(buffer.data(), n));
    left -= n;
  }
  if (!(v2 ? parser_v2.at_message_boundary() : parser.at_message_boundary()))
    throw std::runtime_error("pull response ends inside a message");
  co_return header.payload_size;
}

// pull: preload K messages into each of M mailboxes (through P keep-alive sender connections),
// then every mailbox pulls until it got all of its messages.
// pull-v2 (v2 = true): the same in protocol v2: every client registers a v2 identity, the
// preload is v2 SENDs of type 16, and each mailbox is read by PULL then one ACK of every
// message ID it carried, until all preloaded messages were acknowledged (the timed phase
// includes the ACKs, which commit the removals; v1's 104 removes without a round trip).
int run_pull(const options& opt, const tcp::endpoint& server, bool v2 = false) {
  const char* scenario = v2 ? "pull-v2" : "pull";
  const int mailboxes = opt.connections > 0 ? opt.connections : 16;
  const int senders = std::max(1, opt.preload_connections);
  worker_pool pool(opt.threads);
  failure_log failures;
  auto receivers = make_connections(pool, static_cast<std::size_t>(mailboxes));
  auto preloaders = make_connections(pool, static_cast<std::size_t>(senders));
  connect_and_register(pool, receivers, server, v2 ? "pullv2-mailbox" : "pull-mailbox", failures, v2);
  connect_and_register(pool, preloaders, server, v2 ? "pullv2-sender" : "pull-sender", failures, v2);
  if (failures.count() > 0) {
    result_line line(scenario);
    return finish(line, failures);
  }
  std::vector<std::uint8_t> content(opt.content_size);
  fill_pattern(9, 0, content);

  // Preload: sender j sends to mailboxes j, j+P, ... round robin, K messages per mailbox.
  std::vector<std::atomic<std::uint64_t>> loaded(static_cast<std::size_t>(mailboxes));
  const std::uint64_t total_to_load = static_cast<std::uint64_t>(mailboxes) * opt.messages_per_mailbox;
  std::atomic<std::uint64_t> next_message{0};
  const auto preload_start = bench_clock::now();
  const auto preload_deadline = preload_start + std::chrono::duration<double>(opt.preload_seconds);
  for (std::size_t j = 0; j < preloaders.size(); ++j) {
    asio::co_spawn(
        pool.context(j),
        [&, j]() -> awaitable<void> {
          auto& c = *preloaders[j];
          std::vector<proto::byte_buffer> requests;  // one pre-encoded request per mailbox
          for (auto& r : receivers) {
            if (v2) {
              auto payload = proto2::encode_send_message_prefix(
                  {r->id, static_cast<std::uint8_t>(proto2::message_type::sealed_text),
                   static_cast<std::uint32_t>(content.size())});
              payload.insert(payload.end(), content.begin(), content.end());
              requests.push_back(proto2::encode_request(proto2::request_code::send_message, payload));
            } else {
              requests.push_back(encode_send_request(c.id, r->id, proto::message_type::text, content));
            }
          }
          try {
            for (;;) {
              const std::uint64_t k = next_message.fetch_add(1);
              if (k >= total_to_load || bench_clock::now() >= preload_deadline) break;
              const std::size_t mailbox = k % receivers.size();
              co_await asio::async_write(c.socket, asio::buffer(requests[mailbox]), use_awaitable);
              auto response = co_await read_small_response(c.socket, c.buffer);
              expect_code(response.header,
                          v2 ? static_cast<proto::response_code>(proto2::response_code::message_sent)
                             : proto::response_code::message_sent,
                          "preload send");
              ++loaded[mailbox];
            }
          } catch (const std::exception& e) {
            failures.record(std::string("preload: ") + e.what());
          }
        },
        asio::detached);
  }
  pool.run_phase();
  const double preload_seconds = seconds_between(preload_start, bench_clock::now());
  std::uint64_t preloaded = 0;
  for (auto& l : loaded) preloaded += l.load();

  // Pull.
  std::vector<pull_counter> counters(receivers.size(), pull_counter{content});
  std::atomic<std::uint64_t> pulls{0}, payload_bytes{0};
  const auto pull_start = bench_clock::now();
  const auto pull_deadline = pull_start + std::chrono::duration<double>(opt.duration);
  for (std::size_t i = 0; i < receivers.size(); ++i) {
    asio::co_spawn(
        pool.context(i),
        [&, i]() -> awaitable<void> {
          auto& c = *receivers[i];
          auto& counter = counters[i];
          const auto request = v2 ? proto2::encode_request(proto2::request_code::pull_messages, {})
                                  : benchmark_request(c.id, proto::request_code::pull_messages, {});
          std::vector<std::uint8_t> buffer(stream_chunk_size);
          std::vector<std::uint32_t> ids;
          if (v2) counter.ids = &ids;
          try {
            while (counter.messages < loaded[i].load()) {
              if (bench_clock::now() >= pull_deadline) throw std::runtime_error("pull did not finish in time");
              ids.clear();
              const auto size = co_await pull_once(c.socket, request, buffer, counter, v2);
              ++pulls;
              payload_bytes += size;
              if (size == 0) throw std::runtime_error("empty pull before all preloaded messages arrived");
              for (std::size_t from = 0; v2 && from < ids.size(); from += proto2::max_ack_ids) {
                proto2::ack_request ack;
                ack.message_ids.assign(ids.begin() + static_cast<std::ptrdiff_t>(from),
                                       ids.begin() + static_cast<std::ptrdiff_t>(
                                                         std::min(ids.size(), from + proto2::max_ack_ids)));
                const auto frame = proto2::encode_request(proto2::request_code::ack, proto2::encode_ack_request(ack));
                co_await asio::async_write(c.socket, asio::buffer(frame), use_awaitable);
                auto response = co_await read_small_response(c.socket, c.buffer);
                expect_code(response.header, static_cast<proto::response_code>(proto2::response_code::acknowledged),
                            "ack");
                if (proto2::decode_acknowledged_payload(response.payload) != ack.message_ids.size())
                  throw std::runtime_error("ack removed fewer messages than it named");
              }
            }
          } catch (const std::exception& e) {
            failures.record(std::string("pull: ") + e.what());
          }
        },
        asio::detached);
  }
  resource_probe resources(opt.server_pid);
  pool.run_phase();
  const double pull_seconds = seconds_between(pull_start, bench_clock::now());
  std::uint64_t pulled = 0, content_bytes = 0, mismatches = 0;
  bool order_ok = true;
  for (auto& c : counters) {
    pulled += c.messages;
    content_bytes += c.content_bytes;
    mismatches += c.mismatches;
    order_ok = order_ok && c.order_ok;
  }
  if (mismatches > 0) failures.record("pulled content differs from what was sent");
  if (!order_ok) failures.record("pulled messages out of send order");
  result_line line(scenario);
  line.add("mailboxes", mailboxes)
      .add("threads", opt.threads)
      .add("content_bytes", opt.content_size)
      .add("preloaded", preloaded)
      .add("preload_seconds", preload_seconds)
      .add("preload_sends_per_s", preloaded / preload_seconds)
      .add("pulled", pulled)
      .add("pulls", pulls.load())
      .add("seconds", pull_seconds)
      .add("messages_per_s", pulled / pull_seconds)
      .add("payload_mb_per_s", payload_bytes.load() / bytes_per_mb / pull_seconds)
      .add("content_mb_per_s", content_bytes / bytes_per_mb / pull_seconds);
  resources.report(line, pulled);
  return finish(line, failures);
}

// Checks a pulled file against the pattern it was sent with.
struct file_checker {
  std::uint64_t expected_size = 0;
  std::uint64_t messages = 0;
  std::uint64_t content_bytes = 0;
  bool ok = true;
  std::vector<std::uint8_t> scratch;

  void on_message(const proto::pulled_message_header& header) {
    ++messages;
    if (header.type != static_cast<std::uint8_t>(proto::message_type::file) || header.content_size != expected_size)
      ok = false;
  }
  void on_content(proto::bytes_view bytes, std::uint64_t offset) {
    content_bytes += bytes.size();
    if (ok && !matches_pattern(file_pattern_seed, offset, bytes, scratch)) ok = false;
  }
};

// file: one large file message (type 4) sent and pulled back, content checked; samples the
// server's memory during both.
int run_file(const options& opt, const tcp::endpoint& server) {
  worker_pool pool(1);
  failure_log failures;
  auto connections = make_connections(pool, 2);  // [0] sends, [1] receives
  connect_and_register(pool, connections, server, "file", failures);
  if (failures.count() > 0) {
    result_line line("file");
    return finish(line, failures);
  }
  auto& sender = *connections[0];
  auto& receiver = *connections[1];
  if (opt.file_size > proto::max_payload_size - proto::send_message_prefix_size)
    throw std::runtime_error("--file-size too large for a u32 payload");

  resource_probe resources(opt.server_pid);
  double send_seconds = 0, pull_seconds = 0;
  file_checker checker;
  checker.expected_size = opt.file_size;
  asio::co_spawn(
      pool.context(0),
      [&]() -> awaitable<void> {
        try {
          const auto prefix = proto::encode_send_message_prefix(
              {receiver.id, static_cast<std::uint8_t>(proto::message_type::file), static_cast<std::uint32_t>(opt.file_size)});
          const auto head = proto::encode_request_front(sender.id, proto::client_version,
                                                        static_cast<std::uint8_t>(proto::request_code::send_message),
                                                        prefix.size() + opt.file_size, prefix);
          std::vector<std::uint8_t> chunk(file_chunk_size);
          const auto t0 = bench_clock::now();
          co_await asio::async_write(sender.socket, asio::buffer(head), use_awaitable);
          for (std::uint64_t offset = 0; offset < opt.file_size;) {
            const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), opt.file_size - offset));
            fill_pattern(file_pattern_seed, offset, std::span(chunk.data(), n));
            co_await asio::async_write(sender.socket, asio::buffer(chunk.data(), n), use_awaitable);
            offset += n;
          }
          auto response = co_await read_small_response(sender.socket, sender.buffer);
          expect_code(response.header, proto::response_code::message_sent, "file send");
          const auto t1 = bench_clock::now();
          send_seconds = seconds_between(t0, t1);

          const auto pull = benchmark_request(receiver.id, proto::request_code::pull_messages, {});
          std::vector<std::uint8_t> buffer(file_chunk_size);
          const auto t2 = bench_clock::now();
          while (checker.messages == 0) {
            const auto size = co_await pull_once(receiver.socket, pull, buffer, checker);
            if (size == 0) throw std::runtime_error("the file message was not in the mailbox");
          }
          pull_seconds = seconds_between(t2, bench_clock::now());
        } catch (const std::exception& e) {
          failures.record(std::string("file: ") + e.what());
        }
      },
      asio::detached);
  pool.run_phase();
  if (failures.count() == 0 && (!checker.ok || checker.messages != 1 || checker.content_bytes != opt.file_size))
    failures.record("pulled file differs from the sent one");
  result_line line("file");
  line.add("file_bytes", opt.file_size)
      .add("send_seconds", send_seconds)
      .add("send_mb_per_s", send_seconds > 0 ? opt.file_size / bytes_per_mb / send_seconds : 0.0)
      .add("pull_seconds", pull_seconds)
      .add("pull_mb_per_s", pull_seconds > 0 ? opt.file_size / bytes_per_mb / pull_seconds : 0.0)
      .add("content_ok", failures.count() == 0 && checker.ok);
  resources.report(line);
  return finish(line, failures);
}

// idle: C connections that send nothing, then a fresh client's request latency (connect +
// pull + response) and the server's memory; finally every idle connection must still answer.
int run_idle(const options& opt, const tcp::endpoint& server) {
  const std::size_t idle_count = static_cast<std::size_t>(opt.idle_connections);
  const rlim_t file_limit = raise_file_limit();
  if (file_limit < idle_count + 64)
    throw std::runtime_error("open-file limit " + std::to_string(file_limit) + " is too low for " +
                             std::to_string(idle_count) + " connections");
  worker_pool pool(1);
  auto& io = pool.context(0);
  failure_log failures;
  auto owner = make_connections(pool, 1);
  connect_and_register(pool, owner, server, "idle", failures);
  if (failures.count() > 0) {
    result_line line("idle");
    return finish(line, failures);
  }
  const auto pull = benchmark_request(owner[0]->id, proto::request_code::pull_messages, {});
  owner[0]->socket.close();
  const auto before = opt.server_pid > 0 ? read_process_memory(opt.server_pid) : std::nullopt;

  std::vector<tcp::socket> idle;
  idle.reserve(idle_count);
  for (std::size_t i = 0; i < idle_count; ++i) idle.emplace_back(io);
  std::atomic<std::size_t> next{0};
  const auto connect_start = bench_clock::now();
  for (std::size_t w = 0; w < std::min(connect_concurrency, idle_count); ++w) {
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          for (std::size_t i = next++; i < idle_count; i = next++) {
            try {
              co_await idle[i].async_connect(server, use_awaitable);
            } catch (const std::exception& e) {
              failures.record(std::string("idle connect: ") + e.what());
            }
          }
        },
        asio::detached);
  }
  pool.run_phase();
  const double connect_seconds = seconds_between(connect_start, bench_clock::now());

  // Wait (bounded) until the server holds a descriptor for every idle connection.
  std::size_t server_fds = 0;
  if (opt.server_pid > 0) {
    const auto settle_deadline = bench_clock::now() + std::chrono::duration<double>(opt.idle_settle_seconds);
    while ((server_fds = open_descriptor_count(opt.server_pid)) < idle_count && bench_clock::now() < settle_deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto during = opt.server_pid > 0 ? read_process_memory(opt.server_pid) : std::nullopt;

  // Fresh clients, one at a time.
  latency_histogram fresh;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        response_buffer buffer;
        asio::steady_timer pause(io);
        for (int k = 0; k < opt.fresh_samples; ++k) {
          try {
            const auto t0 = bench_clock::now();
            tcp::socket socket(io);
            co_await connect(socket, server);
            co_await asio::async_write(socket, asio::buffer(pull), use_awaitable);
            auto response = co_await read_small_response(socket, buffer);
            expect_code(response.header, proto::response_code::messages, "fresh client pull");
            fresh.record(bench_clock::now() - t0);
          } catch (const std::exception& e) {
            failures.record(std::string("fresh client: ") + e.what());
          }
          pause.expires_after(std::chrono::milliseconds(10));
          co_await pause.async_wait(use_awaitable);
        }
      },
      asio::detached);
  pool.run_phase();

  // Every idle connection must still be served.
  std::atomic<std::size_t> alive{0};
  next = 0;
  for (std::size_t w = 0; w < std::min(connect_concurrency, idle_count); ++w) {
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          response_buffer buffer;
          for (std::size_t i = next++; i < idle_count; i = next++) {
            try {
              if (!idle[i].is_open()) continue;
              co_await asio::async_write(idle[i], asio::buffer(pull), use_awaitable);
              auto response = co_await read_small_response(idle[i], buffer);
              expect_code(response.header, proto::response_code::messages, "idle connection pull");
              ++alive;
            } catch (const std::exception&) {
              // counted below as not alive
            }
          }
        },
        asio::detached);
  }
  pool.run_phase();
  if (alive.load() != idle_count)
    failures.record(std::to_string(idle_count - alive.load()) + " idle connections were not served");

  result_line line("idle");
  line.add("idle_connections", idle_count)
      .add("connect_seconds", connect_seconds)
      .add("idle_alive", alive.load())
      .add("fresh_samples", fresh.count())
      .add("fresh_p50_ms", fresh.quantile_us(0.5) / 1e3)
      .add("fresh_max_ms", fresh.max() / 1e6);
  if (opt.server_pid > 0) {
    line.add("server_fds", server_fds);
    if (before) line.add("server_rss_before_mib", before->rss_bytes / 1048576.0);
    if (during) line.add("server_rss_idle_mib", during->rss_bytes / 1048576.0);
    if (auto after = read_process_memory(opt.server_pid))
      line.add("server_rss_after_requests_mib", after->rss_bytes / 1048576.0)
          .add("server_peak_rss_mib", after->peak_bytes / 1048576.0);
  }
  for (auto& s : idle) {
    boost::system::error_code ignored;
    s.close(ignored);
  }
  return finish(line, failures);
}

// Connects and registers N connections (default 64) for an open-loop scenario, each with a
// pre-encoded send of --content-size bytes to itself. Empty if any failed (in failures).
std::vector<std::unique_ptr<client_connection>> open_loop_clients(worker_pool& pool, const options& opt,
                                                                  const tcp::endpoint& server, const std::string& scenario,
                                                                  failure_log& failures) {
  const int n = opt.connections > 0 ? opt.connections : 64;
  if (opt.rate <= 0) throw std::runtime_error("--rate must be positive");
  auto connections = make_connections(pool, static_cast<std::size_t>(n));
  connect_and_register(pool, connections, server, scenario, failures);
  if (failures.count() > 0) return {};
  std::vector<std::uint8_t> content(opt.content_size);
  fill_pattern(10, 0, content);
  for (auto& c : connections) c->request = encode_send_request(c->id, c->id, proto::message_type::text, content);
  return connections;
}

// Sends at --rate requests/s in total, spread evenly over the connections (open loop: each
// request has its scheduled time, and falling behind shows up in the figures), from start
// until deadline. record(i, scheduled, completed) is called on connection i's pool thread
// after each answer.
template <typename Record>
void run_open_loop(worker_pool& pool, std::vector<std::unique_ptr<client_connection>>& connections, const options& opt,
                   bench_clock::time_point start, bench_clock::time_point deadline, failure_log& failures,
                   const std::string& what, Record record) {
  const auto n = static_cast<long>(connections.size());
  const auto interval = std::chrono::duration_cast<bench_clock::duration>(std::chrono::duration<double>(n / opt.rate));
  const std::uint64_t quota = std::max<std::uint64_t>(1, opt.max_requests / static_cast<std::uint64_t>(n));
  for (std::size_t i = 0; i < connections.size(); ++i) {
    asio::co_spawn(
        pool.context(i),
        [&, i]() -> awaitable<void> {
          auto& c = *connections[i];
          asio::steady_timer timer(c.socket.get_executor());
          auto scheduled = start + interval * static_cast<long>(i) / n;
          try {
            for (std::uint64_t k = 0; k < quota && scheduled < deadline; ++k, scheduled += interval) {
              if (bench_clock::now() < scheduled) {
                timer.expires_at(scheduled);
                co_await timer.async_wait(use_awaitable);
              }
              co_await asio::async_write(c.socket, asio::buffer(c.request), use_awaitable);
              auto response = co_await read_small_response(c.socket, c.buffer);
              expect_code(response.header, proto::response_code::message_sent, "send");
              record(i, scheduled, bench_clock::now());
            }
          } catch (const std::exception& e) {
            failures.record(what + ": " + e.what());
          }
        },
        asio::detached);
  }
  pool.run_phase();
}

// latency: an open-loop fixed request rate spread over N connections; each request's latency
// is measured from its scheduled time.
int run_latency(const options& opt, const tcp::endpoint& server) {
  worker_pool pool(opt.threads);
  failure_log failures;
  auto connections = open_loop_clients(pool, opt, server, "latency", failures);
  if (connections.empty()) {
    result_line line("latency");
    return finish(line, failures);
  }
  const int n = static_cast<int>(connections.size());
  auto stats = make_stats(pool.size());
  const auto start = bench_clock::now() + std::chrono::milliseconds(10);
  const auto deadline = start + std::chrono::duration_cast<bench_clock::duration>(std::chrono::duration<double>(opt.duration));
  resource_probe resources(opt.server_pid);
  run_open_loop(pool, connections, opt, start, deadline, failures, "latency",
                [&](std::size_t i, bench_clock::time_point scheduled, bench_clock::time_point done) {
                  auto& s = *stats[i % stats.size()];
                  s.latency.record(done - scheduled);
                  ++s.completed;
                  s.last_end = done;
                });
  const auto total = merge(stats);
  const double elapsed = seconds_between(start, std::max(total.last_end, start + std::chrono::microseconds(1)));
  result_line line("latency");
  line.add("connections", n)
      .add("threads", opt.threads)
      .add("target_rate", opt.rate)
      .add("sends", total.completed)
      .add("seconds", elapsed)
      .add("achieved_rate", total.completed / elapsed);
  add_latency(line, total.latency);
  resources.report(line, total.completed);
  return finish(line, failures);
}

// long-reader: the latency scenario's load while a reader holds a snapshot of the server's
// database (what `sqlite3 server.db` does inside a transaction): it begins --reader-start
// seconds into the timed phase and ends --reader-seconds later. Behind it no checkpoint can
// copy the WAL, which grows; what matters (issue 8.12) is the latency of the sends answered
// after it ended, while the server catches up. Reported apart for sends answered before,
// during and after the reader, with the WAL file's size.
int run_long_reader(const options& opt, const tcp::endpoint& server) {
  if (opt.db_path.empty()) throw std::runtime_error("long-reader needs --db (the server's database)");
  if (opt.reader_start < 0 || opt.reader_seconds <= 0 || opt.reader_start + opt.reader_seconds >= opt.duration)
    throw std::runtime_error("long-reader needs 0 <= --reader-start, 0 < --reader-seconds and their sum < --duration");
  worker_pool pool(opt.threads);
  failure_log failures;
  auto connections = open_loop_clients(pool, opt, server, "long-reader", failures);
  if (connections.empty()) {
    result_line line("long-reader");
    return finish(line, failures);
  }
  struct alignas(64) phase_stats {
    latency_histogram before, during, after;
    std::uint64_t completed = 0;
    bench_clock::time_point last_end{};
  };
  std::vector<phase_stats> stats(pool.size());
  const auto start = bench_clock::now() + std::chrono::milliseconds(10);
  const auto deadline = start + std::chrono::duration_cast<bench_clock::duration>(std::chrono::duration<double>(opt.duration));
  // Set by the reader thread; until then "never" (the sends compare their answer's time).
  constexpr auto never = bench_clock::rep{std::numeric_limits<bench_clock::rep>::max()};
  std::atomic<bench_clock::rep> reader_began{never}, reader_ended{never};

  const std::filesystem::path wal = opt.db_path + "-wal";
  auto wal_mib = [&] {
    std::error_code error;
    const auto size = std::filesystem::file_size(wal, error);
    return error ? 0.0 : static_cast<double>(size) / 1048576.0;
  };
  double wal_at_begin = 0, wal_at_end = 0, wal_max_after = 0;
  std::thread reader([&] {
    try {
      std::this_thread::sleep_until(start + std::chrono::duration<double>(opt.reader_start));
      SQLite::Database db(opt.db_path, SQLite::OPEN_READONLY);
      db.exec("BEGIN");
      db.execAndGet("SELECT count(*) FROM messages");  // the read transaction, and its snapshot, begin here
      wal_at_begin = wal_mib();
      reader_began = bench_clock::now().time_since_epoch().count();
      std::this_thread::sleep_until(start + std::chrono::duration<double>(opt.reader_start + opt.reader_seconds));
      wal_at_end = wal_mib();
      db.exec("COMMIT");
      reader_ended = bench_clock::now().time_since_epoch().count();
      while (bench_clock::now() < deadline) {
        wal_max_after = std::max(wal_max_after, wal_mib());
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    } catch (const std::exception& e) {
      failures.record(std::string("long-reader: the reader: ") + e.what());
    }
  });
  resource_probe resources(opt.server_pid);
  run_open_loop(pool, connections, opt, start, deadline, failures, "long-reader",
                [&](std::size_t i, bench_clock::time_point scheduled, bench_clock::time_point done) {
                  auto& s = stats[i % stats.size()];
                  const auto at = done.time_since_epoch().count();
                  auto& phase = at < reader_began.load(std::memory_order_relaxed)   ? s.before
                                : at < reader_ended.load(std::memory_order_relaxed) ? s.during
                                                                                     : s.after;
                  phase.record(done - scheduled);
                  ++s.completed;
                  s.last_end = done;
                });
  reader.join();
  latency_histogram before, during, after, all;
  std::uint64_t completed = 0;
  bench_clock::time_point last_end = start;
  for (auto& s : stats) {
    before.merge(s.before);
    during.merge(s.during);
    after.merge(s.after);
    completed += s.completed;
    last_end = std::max(last_end, s.last_end);
  }
  all.merge(before);
  all.merge(during);
  all.merge(after);
  const double elapsed = seconds_between(start, std::max(last_end, start + std::chrono::microseconds(1)));
  result_line line("long-reader");
  line.add("connections", connections.size())
      .add("content_bytes", opt.content_size)
      .add("target_rate", opt.rate)
      .add("sends", completed)
      .add("seconds", elapsed)
      .add("achieved_rate", completed / elapsed)
      .add("reader_start_s", opt.reader_start)
      .add("reader_seconds", opt.reader_seconds)
      .add("wal_mib_reader_begins", wal_at_begin)
      .add("wal_mib_reader_ends", wal_at_end)
      .add("wal_mib_max_after", wal_max_after)
      .add("wal_mib_end", wal_mib())
      .add("before_sends", before.count())
      .add("before_p99_us", before.quantile_us(0.99))
      .add("before_max_us", before.max() / 1e3)
      .add("during_sends", during.count())
      .add("during_p99_us", during.quantile_us(0.99))
      .add("during_max_us", during.max() / 1e3)
      .add("after_sends", after.count())
      .add("after_p50_us", after.quantile_us(0.50))
      .add("after_p99_us", after.quantile_us(0.99))
      .add("after_p999_us", after.quantile_us(0.999))
      .add("after_max_us", after.max() / 1e3);
  add_latency(line, all);
  resources.report(line, completed);
  return finish(line, failures);
}

// ---------------------------------------------------------------------------------------
// list (issue 8.10): a 101 with many registered clients, and the sends' latency meanwhile.

// Registers `count` clients over `connections` (connected here), each writing up to `window`
// registrations before reading their answers (the server answers a connection's requests in
// order), until all are registered or the deadline; returns how many were registered.
std::uint64_t register_pipelined(worker_pool& pool, std::vector<std::unique_ptr<client_connection>>& connections,
                                 const tcp::endpoint& server, std::uint64_t count, std::size_t window,
                                 bench_clock::time_point deadline, failure_log& failures) {
  std::atomic<std::uint64_t> next{0}, registered{0};
  for (std::size_t i = 0; i < connections.size(); ++i) {
    asio::co_spawn(
        pool.context(i),
        [&, i]() -> awaitable<void> {
          auto& c = *connections[i];
          proto::byte_buffer batch;
          try {
            co_await connect(c.socket, server);
            for (;;) {
              const std::uint64_t first = next.fetch_add(window);
              if (first >= count || bench_clock::now() >= deadline) break;
              const std::uint64_t n = std::min<std::uint64_t>(window, count - first);
              batch.clear();
              for (std::uint64_t k = first; k < first + n; ++k) {
                const auto payload = proto::encode_register_request({unique_name("list-client", k), benchmark_public_key()});
                const auto request = benchmark_request(proto::client_id{}, proto::request_code::register_client, payload);
                batch.insert(batch.end(), request.begin(), request.end());
              }
              co_await asio::async_write(c.socket, asio::buffer(batch), use_awaitable);
              for (std::uint64_t k = 0; k < n; ++k) {
                co_await asio::async_read(c.socket, asio::buffer(c.buffer.data(), proto::response_header_size), use_awaitable);
                const auto header = proto::decode_response_header(proto::bytes_view(c.buffer.data(), proto::response_header_size));
                expect_code(header, proto::response_code::registered, "pipelined register");
                if (header.payload_size != proto::client_id_size) throw std::runtime_error("1000 of an unexpected size");
                co_await asio::async_read(c.socket, asio::buffer(c.buffer.data(), proto::client_id_size), use_awaitable);
                ++registered;
              }
            }
          } catch (const std::exception& e) {
            failures.record(std::string("register: ") + e.what());
          }
        },
        asio::detached);
  }
  pool.run_phase();
  return registered.load();
}

struct list_reply {
  std::uint64_t entries = 0;
  bench_clock::time_point first_byte{};
};

// Writes a 101 and reads its 1001 through `buffer` without keeping it (only its size and one
// byte per entry are looked at): the payload must be whole entries, each with a name.
awaitable<list_reply> list_once(tcp::socket& socket, const proto::byte_buffer& request, std::vector<std::uint8_t>& buffer) {
  constexpr std::uint64_t entry = proto::client_list_entry_size;
  constexpr std::uint64_t name_offset = proto::client_id_size;
  co_await asio::async_write(socket, asio::buffer(request), use_awaitable);
  std::array<std::uint8_t, proto::response_header_size> head{};
  co_await asio::async_read(socket, asio::buffer(head), use_awaitable);
  list_reply reply{0, bench_clock::now()};
  const auto header = proto::decode_response_header(proto::bytes_view(head.data(), head.size()));
  expect_code(header, proto::response_code::client_list, "list");
  if (header.payload_size % entry != 0) throw std::runtime_error("1001 payload is not whole entries");
  for (std::uint64_t offset = 0; offset < header.payload_size;) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(header.payload_size - offset, buffer.size()));
    const std::size_t n = co_await socket.async_read_some(asio::buffer(buffer.data(), want), use_awaitable);
    // The first name byte at or after offset: names are never empty.
    for (std::uint64_t at = offset <= name_offset ? name_offset : (offset - name_offset + entry - 1) / entry * entry + name_offset;
         at < offset + n; at += entry)
      if (buffer[static_cast<std::size_t>(at - offset)] == 0) throw std::runtime_error("1001 entry without a name");
    offset += n;
  }
  reply.entries = header.payload_size / entry;
  co_return reply;
}

// The server's CPU seconds and VmHWM over one phase (VmHWM reset at the start when allowed).
class phase_probe {
 public:
  explicit phase_probe(long pid) : pid_(pid) {
    if (pid_ <= 0) return;
    peak_reset_ = reset_peak_memory(pid_);
    cpu_start_ = process_cpu_seconds(pid_);
  }
  // Adds <prefix>server_cpu_s and <prefix>server_peak_rss_mib; returns that peak (0 unknown).
  double report(result_line& line, const std::string& prefix) const {
    if (pid_ <= 0) return 0;
    if (const auto now = process_cpu_seconds(pid_); now && cpu_start_) line.add(prefix + "server_cpu_s", *now - *cpu_start_);
    const auto memory = read_process_memory(pid_);
    if (!memory) return 0;
    const double peak = memory->peak_bytes / 1048576.0;
    line.add(prefix + "server_peak_rss_mib", peak);
    return peak;
  }
  bool peak_reset() const { return peak_reset_; }

 private:
  long pid_;
  bool peak_reset_ = false;
  std::optional<double> cpu_start_;
};

// list: register N clients (pipelined), then (after an optional warm-up of the same sends) the
// send scenario's closed loop over 64 keep-alive connections for D seconds twice: alone, then while L more connections (on their own thread,
// so reading the 1001s does not delay the senders' coroutines) send 101 after 101 and read each
// whole 1001 (N x 271 bytes). A 101's latency runs from its write to the last byte of its 1001.
int run_list(const options& opt, const tcp::endpoint& server) {
  const int n = opt.connections > 0 ? opt.connections : 64;
  worker_pool pool(opt.threads);
  worker_pool list_pool(1);
  failure_log failures;
  result_line line("list");

  auto registrars = make_connections(pool, static_cast<std::size_t>(opt.register_connections));
  const auto register_start = bench_clock::now();
  const auto registered = register_pipelined(pool, registrars, server, opt.list_clients, opt.register_window,
                                             register_start + std::chrono::duration_cast<bench_clock::duration>(
                                                                  std::chrono::duration<double>(opt.register_seconds)),
                                             failures);
  const double register_seconds = seconds_between(register_start, bench_clock::now());
  for (auto& c : registrars) c->socket.close();
  if (registered < opt.list_clients && failures.count() == 0)
    failures.record("registered " + std::to_string(registered) + " of " + std::to_string(opt.list_clients) +
                    " clients within --register-seconds");
  auto senders = make_connections(pool, static_cast<std::size_t>(n));
  auto listers = make_connections(list_pool, static_cast<std::size_t>(opt.listers));
  if (failures.count() == 0) connect_and_register(pool, senders, server, "list-sender", failures);
  if (failures.count() == 0) connect_and_register(list_pool, listers, server, "list-reader", failures);
  line.add("clients", registered)
      .add("register_connections", opt.register_connections)
      .add("register_seconds", register_seconds)
      .add("registrations_per_s", registered / register_seconds);
  if (failures.count() > 0) return finish(line, failures);

  std::vector<std::uint8_t> content(opt.content_size);
  fill_pattern(11, 0, content);
  for (auto& c : senders) c->request = encode_send_request(c->id, c->id, proto::message_type::text, content);
  const std::uint64_t quota = std::max<std::uint64_t>(1, opt.max_requests / static_cast<std::uint64_t>(n));
  const auto phase_length = std::chrono::duration<double>(opt.duration);
  line.add("connections", n)
      .add("threads", opt.threads)
      .add("content_bytes", opt.content_size)
      .add("listers", opt.listers)
      .add("list_pause_ms", opt.list_pause_ms);

  // Sends per second and latency of one phase, under prefix.
  auto report_phase = [&](const std::string& prefix, const merged_stats& total, bench_clock::time_point start) {
    const double elapsed = seconds_between(start, std::max(total.last_end, start + std::chrono::microseconds(1)));
    line.add(prefix + "sends", total.completed)
        .add(prefix + "seconds", elapsed)
        .add(prefix + "sends_per_s", total.completed / elapsed);
    add_latency(line, total.latency, prefix);
  };

  if (opt.list_warmup_seconds > 0) {  // not reported: lets the WAL reach its steady size after the registrations
    const auto warmup_end = bench_clock::now() + std::chrono::duration<double>(opt.list_warmup_seconds);
    run_closed_loop(pool, senders, quota, warmup_end, failures, "warm-up send", keep_alive_send);
  }
  const phase_probe alone_probe(opt.server_pid);
  const auto alone_start = bench_clock::now();
  const auto alone = run_closed_loop(pool, senders, quota, alone_start + phase_length, failures, "send alone", keep_alive_send);
  report_phase("alone_", alone, alone_start);
  const double alone_peak = alone_probe.report(line, "alone_");

  // The same load while the listers run, until the same deadline.
  const std::uint64_t expected_entries = registered + static_cast<std::uint64_t>(n + opt.listers) - 1;  // but the requester
  latency_histogram list_latency, first_byte_latency;
  std::uint64_t lists = 0, listed = 0;
  const phase_probe list_probe(opt.server_pid);
  const auto list_start = bench_clock::now();
  const auto list_deadline = list_start + phase_length;
  for (auto& lister : listers) {
    asio::co_spawn(
        list_pool.context(0),
        [&, &c = *lister]() -> awaitable<void> {
          const auto request = benchmark_request(c.id, proto::request_code::list_clients, {});
          std::vector<std::uint8_t> buffer(stream_chunk_size);
          asio::steady_timer pause(c.socket.get_executor());
          try {
            for (bool first = true; bench_clock::now() < list_deadline; first = false) {
              if (!first && opt.list_pause_ms > 0) {
                pause.expires_after(std::chrono::duration_cast<bench_clock::duration>(
                    std::chrono::duration<double, std::milli>(opt.list_pause_ms)));
                co_await pause.async_wait(use_awaitable);
              }
              const auto t0 = bench_clock::now();
              const auto reply = co_await list_once(c.socket, request, buffer);
              list_latency.record(bench_clock::now() - t0);
              first_byte_latency.record(reply.first_byte - t0);
              if (reply.entries < expected_entries || (listed != 0 && reply.entries != listed))
                throw std::runtime_error("1001 of " + std::to_string(reply.entries) + " entries, expected " +
                                         (listed != 0 ? std::to_string(listed) : "at least " + std::to_string(expected_entries)));
              listed = reply.entries;
              ++lists;
            }
          } catch (const std::exception& e) {
            failures.record(std::string("list: ") + e.what());
          }
        },
        asio::detached);
  }
  std::thread list_thread([&] { list_pool.run_phase(); });
  const auto during = run_closed_loop(pool, senders, quota, list_deadline, failures, "send during 101s", keep_alive_send);
  list_thread.join();
  const double list_seconds = seconds_between(list_start, bench_clock::now());
  if (lists == 0) failures.record("no 101 completed");
  report_phase("during_list_", during, list_start);
  const double during_peak = list_probe.report(line, "during_list_");

  line.add("lists", lists)
      .add("listed_clients", listed)
      .add("list_bytes", listed * proto::client_list_entry_size)
      .add("list_p50_ms", list_latency.quantile_us(0.50) / 1e3)
      .add("list_p99_ms", list_latency.quantile_us(0.99) / 1e3)
      .add("list_max_ms", list_latency.max() / 1e6)
      .add("list_first_byte_p50_ms", first_byte_latency.quantile_us(0.50) / 1e3)
      .add("list_first_byte_max_ms", first_byte_latency.max() / 1e6)
      .add("list_mb_per_s", lists * listed * proto::client_list_entry_size / bytes_per_mb / list_seconds);
  if (opt.server_pid > 0)
    line.add("server_peak_rss_mib", std::max(alone_peak, during_peak)).add("server_peak_reset", list_probe.peak_reset());
  return finish(line, failures);
}

// ---------------------------------------------------------------------------------------
// push (docs/PROTOCOL.md Part V): N subscribed v2 clients (default 1,000) and one sender
// sending small sealed-text SENDs to them in turn, one at a time; each figure is the time from
// the 2005 arriving at the sender to the 2015 arriving at its recipient (0 when the push came
// first). Every push is acknowledged (207) on the subscribed connection, and the server's pings
// are answered. One loadgen thread: the sender and the subscribers share one clock and signal.

// Reads one whole frame (header and payload) into `payload`; returns its header.
awaitable<proto::response_header> read_frame(tcp::socket& socket, proto::byte_buffer& payload) {
  std::array<std::uint8_t, proto::response_header_size> raw{};
  co_await asio::async_read(socket, asio::buffer(raw), use_awaitable);
  const auto header = proto::decode_response_header(raw);
  if (header.payload_size > (1u << 20)) throw std::runtime_error("frame of " + std::to_string(header.payload_size) + " bytes");
  payload.resize(header.payload_size);
  if (header.payload_size > 0) co_await asio::async_read(socket, asio::buffer(payload), use_awaitable);
  co_return header;
}

proto::byte_buffer empty_v2_request(std::uint8_t code) {
  proto::byte_buffer out(proto::request_header_size, 0);
  out[16] = proto2::wire_version;
  out[17] = code;
  return out;
}

int run_push(const options& opt, const tcp::endpoint& server) {
  constexpr std::uint8_t subscribe_code = 210, ping_code = 212;
  constexpr std::uint16_t subscribed_code = 2010, push_code = 2015, server_ping_code = 2013;
  const int n = opt.connections > 0 ? opt.connections : 1000;
  worker_pool pool(1);
  failure_log failures;
  auto subscribers = make_connections(pool, static_cast<std::size_t>(n));
  connect_and_register(pool, subscribers, server, "push", failures, true);
  auto senders = make_connections(pool, 1);
  connect_and_register(pool, senders, server, "pushsender", failures, true);
  result_line line("push");
  if (failures.count() > 0) return finish(line, failures);
  const auto subscribe = empty_v2_request(subscribe_code);
  for (std::size_t i = 0; i < subscribers.size(); ++i)
    asio::co_spawn(
        pool.context(0),
        [&, i]() -> awaitable<void> {
          try {
            co_await asio::async_write(subscribers[i]->socket, asio::buffer(subscribe), use_awaitable);
            proto::byte_buffer payload;
            const auto header = co_await read_frame(subscribers[i]->socket, payload);
            if (header.code != subscribed_code) throw std::runtime_error("SUBSCRIBE answered " + std::to_string(header.code));
          } catch (const std::exception& e) {
            failures.record(std::string("subscribe: ") + e.what());
          }
        },
        asio::detached);
  pool.run_phase();
  if (failures.count() > 0) return finish(line, failures);

  std::vector<bench_clock::time_point> pushed_at(subscribers.size());
  std::vector<char> pushed(subscribers.size(), 0);
  asio::steady_timer signal(pool.context(0));
  bool done = false;
  latency_histogram latency;
  std::uint64_t completed = 0;
  std::vector<std::uint8_t> content(opt.content_size);
  fill_pattern(9, 0, content);
  resource_probe resources(opt.server_pid);
  const auto start = bench_clock::now();
  const auto deadline = start + std::chrono::duration<double>(opt.duration);
  bench_clock::time_point last_end = start;
  const auto ping = empty_v2_request(ping_code);
  for (std::size_t i = 0; i < subscribers.size(); ++i)
    asio::co_spawn(
        pool.context(0),
        [&, i]() -> awaitable<void> {
          auto& socket = subscribers[i]->socket;
          proto::byte_buffer payload;
          try {
            while (!done) {
              const auto header = co_await read_frame(socket, payload);
              if (header.code == push_code) {
                pushed_at[i] = bench_clock::now();
                pushed[i] = 1;
                signal.cancel();
                proto2::ack_request ack;
                for (std::size_t at = 0; at + proto2::pulled_message_header_size <= payload.size();) {
                  const auto entry = proto2::decode_pulled_message_header(
                      proto::bytes_view(payload).subspan(at, proto2::pulled_message_header_size));
                  ack.message_ids.push_back(entry.message_id);
                  at += proto2::pulled_message_header_size + entry.content_size;
                }
                const auto request = proto2::encode_request(proto2::request_code::ack, proto2::encode_ack_request(ack));
                co_await asio::async_write(socket, asio::buffer(request), use_awaitable);
              } else if (header.code == server_ping_code) {
                co_await asio::async_write(socket, asio::buffer(ping), use_awaitable);
              }  // 2007 (our ACKs) and 2012 (our pings' answers) need nothing
            }
          } catch (const std::exception& e) {
            if (!done) failures.record(std::string("subscriber: ") + e.what());
          }
        },
        asio::detached);
  asio::co_spawn(
      pool.context(0),
      [&]() -> awaitable<void> {
        auto& c = *senders[0];
        try {
          for (std::uint64_t k = 0; k < opt.max_requests && bench_clock::now() < deadline; ++k) {
            const std::size_t to = k % subscribers.size();
            pushed[to] = 0;
            auto payload = proto2::encode_send_message_prefix({subscribers[to]->id,
                                                               static_cast<std::uint8_t>(proto2::message_type::sealed_text),
                                                               static_cast<std::uint32_t>(content.size())});
            payload.insert(payload.end(), content.begin(), content.end());
            const auto request = proto2::encode_request(proto2::request_code::send_message, payload);
            co_await asio::async_write(c.socket, asio::buffer(request), use_awaitable);
            auto response = co_await read_small_response(c.socket, c.buffer);
            const auto at_2005 = bench_clock::now();
            expect_code(response.header, static_cast<proto::response_code>(proto2::response_code::message_sent), "push send");
            const auto give_up = at_2005 + std::chrono::seconds(10);
            while (!pushed[to]) {
              if (bench_clock::now() >= give_up) throw std::runtime_error("no push within 10 s of the 2005");
              signal.expires_at(give_up);
              boost::system::error_code ec;
              co_await signal.async_wait(asio::redirect_error(use_awaitable, ec));
            }
            latency.record(pushed_at[to] - at_2005);  // negative (the push first) counts as 0
            ++completed;
            last_end = bench_clock::now();
          }
        } catch (const std::exception& e) {
          failures.record(std::string("sender: ") + e.what());
        }
        done = true;
        for (auto& s : subscribers) {
          boost::system::error_code ignored;
          s->socket.close(ignored);
        }
      },
      asio::detached);
  pool.run_phase();
  const double elapsed = seconds_between(start, std::max(last_end, start + std::chrono::microseconds(1)));
  line.add("subscribers", n)
      .add("content_bytes", opt.content_size)
      .add("pushes", completed)
      .add("seconds", elapsed)
      .add("pushes_per_s", completed / elapsed);
  add_latency(line, latency);
  resources.report(line, completed);
  return finish(line, failures);
}

}  // namespace

// group-send (docs/PROTOCOL.md Part IV): N v2 members (default 100) in one open group, member 0
// the sender. Phase 1, delivery: R rounds (--rounds) of one GROUP SEND while the other N − 1
// members poll their mailboxes with PULL (a pause of 0.5 ms after an empty one) and ACK it;
// per round, the time from the send until the last member had it (deliver_*), and the 2030's
// latency. Phase 2, throughput: the sender sends back to back for --duration seconds (nobody
// pulls): group sends/s, the mailbox entries they made per second, the 2030 latency. Each
// content is --content-size bytes, stored once per send however many members get it.
awaitable<void> group_request(client_connection& c, const proto::byte_buffer& frame, std::uint16_t expected,
                              const char* what) {
  co_await asio::async_write(c.socket, asio::buffer(frame), use_awaitable);
  auto response = co_await read_small_response(c.socket, c.buffer);
  if (response.header.code != expected)
    throw std::runtime_error(std::string(what) + ": response code " + std::to_string(response.header.code) +
                             (response.header.code == 9000 && response.payload.size() == 2
                                  ? std::string(" (") + proto2::reason_name(proto2::decode_error_payload(response.payload)) + ")"
                                  : std::string()));
}

int run_group_send(const options& opt, const tcp::endpoint& server) {
  const char* scenario = "group-send";
  const int members = opt.connections > 0 ? opt.connections : 100;
  worker_pool pool(opt.threads);
  failure_log failures;
  auto connections = make_connections(pool, static_cast<std::size_t>(members));
  connect_and_register(pool, connections, server, "group", failures, true);
  result_line line(scenario);
  if (failures.count() > 0) return finish(line, failures);
  auto& sender = *connections[0];
  proto2::group_id group{};
  const auto created_frame =
      proto2::encode_group_request(proto2::group_request_code::create, proto2::encode_group_create_request({"bench", true}));
  const auto ok = [](proto2::group_request_code code) { return proto2::group_response_for(static_cast<std::uint8_t>(code)); };
  asio::co_spawn(
      pool.context(0),
      [&]() -> awaitable<void> {
        try {
          co_await asio::async_write(sender.socket, asio::buffer(created_frame), use_awaitable);
          auto response = co_await read_small_response(sender.socket, sender.buffer);
          if (response.header.code != ok(proto2::group_request_code::create)) throw std::runtime_error("group create refused");
          group = proto2::decode_group_created_payload(response.payload);
        } catch (const std::exception& e) {
          failures.record(std::string("create: ") + e.what());
        }
      },
      asio::detached);
  pool.run_phase();
  if (failures.count() > 0) return finish(line, failures);
  const auto join_frame = proto2::encode_group_request(proto2::group_request_code::join, proto2::encode_group_payload(group));
  for (std::size_t i = 1; i < connections.size(); ++i)
    asio::co_spawn(
        pool.context(i),
        [&, i]() -> awaitable<void> {
          try {
            co_await group_request(*connections[i], join_frame, ok(proto2::group_request_code::join), "join");
          } catch (const std::exception& e) {
            failures.record(e.what());
          }
        },
        asio::detached);
  pool.run_phase();
  if (failures.count() > 0) return finish(line, failures);

  std::vector<std::uint8_t> content(opt.content_size);
  fill_pattern(5, 0, content);
  auto payload = proto2::encode_send_message_prefix({group, proto2::group_text_type, static_cast<std::uint32_t>(content.size())});
  payload.insert(payload.end(), content.begin(), content.end());
  sender.request = proto2::encode_group_request(proto2::group_request_code::send, payload);
  const auto send_ok = ok(proto2::group_request_code::send);
  const auto pull_frame = proto2::encode_request(proto2::request_code::pull_messages, {});

  // Phase 1: delivery rounds.
  latency_histogram deliver, deliver_send;
  for (int round = 0; round < opt.delivery_rounds && failures.count() == 0; ++round) {
    std::atomic<std::int64_t> last_arrival_ns{0};
    const auto t0 = bench_clock::now();
    asio::co_spawn(
        pool.context(0),
        [&]() -> awaitable<void> {
          try {
            co_await group_request(sender, sender.request, send_ok, "group send");
            deliver_send.record(bench_clock::now() - t0);
          } catch (const std::exception& e) {
            failures.record(e.what());
          }
        },
        asio::detached);
    for (std::size_t i = 1; i < connections.size(); ++i)
      asio::co_spawn(
          pool.context(i),
          [&, i]() -> awaitable<void> {
            auto& c = *connections[i];
            asio::steady_timer pause(c.socket.get_executor());
            try {
              for (;;) {
                if (bench_clock::now() - t0 > std::chrono::seconds(30)) throw std::runtime_error("not delivered in 30 s");
                co_await asio::async_write(c.socket, asio::buffer(pull_frame), use_awaitable);
                auto response = co_await read_small_response(c.socket, c.buffer);
                expect_code(response.header, static_cast<proto::response_code>(proto2::response_code::messages), "pull");
                if (response.payload.empty()) {
                  pause.expires_after(std::chrono::microseconds(500));
                  co_await pause.async_wait(use_awaitable);
                  continue;
                }
                const auto arrived = std::chrono::duration_cast<std::chrono::nanoseconds>(bench_clock::now() - t0).count();
                std::int64_t seen = last_arrival_ns.load();
                while (arrived > seen && !last_arrival_ns.compare_exchange_weak(seen, arrived)) {
                }
                const auto header = proto2::decode_pulled_message_header(response.payload.first(proto2::pulled_message_header_size));
                if ((header.flags & proto2::message_flag_group) == 0 || header.content_size != 16 + content.size())
                  throw std::runtime_error("pulled entry is not the group message");
                const auto ack = proto2::encode_request(proto2::request_code::ack, proto2::encode_ack_request({{header.message_id}}));
                co_await asio::async_write(c.socket, asio::buffer(ack), use_awaitable);
                auto acked = co_await read_small_response(c.socket, c.buffer);
                expect_code(acked.header, static_cast<proto::response_code>(proto2::response_code::acknowledged), "ack");
                break;
              }
            } catch (const std::exception& e) {
              failures.record(std::string("member: ") + e.what());
            }
          },
          asio::detached);
    pool.run_phase();
    deliver.record(static_cast<std::uint64_t>(last_arrival_ns.load()));
  }

  // Phase 2: throughput, nobody pulls.
  const auto start = bench_clock::now();
  const auto deadline = start + std::chrono::duration<double>(opt.duration);
  std::vector<std::unique_ptr<client_connection>> only_sender;
  only_sender.push_back(std::move(connections[0]));
  const auto total = run_closed_loop(pool, only_sender, opt.max_requests, deadline, failures, scenario,
                                     [send_ok](client_connection& c) { return group_request(c, c.request, send_ok, "group send"); });
  const double elapsed = seconds_between(start, std::max(total.last_end, start + std::chrono::microseconds(1)));
  line.add("members", members)
      .add("content_size", opt.content_size)
      .add("rounds", deliver.count())
      .add("deliver_p50_us", deliver.quantile_us(0.50))
      .add("deliver_max_us", deliver.max() / 1e3)
      .add("deliver_send_p50_us", deliver_send.quantile_us(0.50))
      .add("group_sends", total.completed)
      .add("seconds", elapsed)
      .add("group_sends_per_s", static_cast<double>(total.completed) / elapsed)
      .add("mailbox_entries_per_s", static_cast<double>(total.completed) * (members - 1) / elapsed);
  add_latency(line, total.latency, "send_");
  return finish(line, failures);
}

int main(int argc, char** argv) {
  CLI::App app{"Letterbox bench/loadgen: protocol v1 load against a running server"};
  app.require_subcommand(1);
  options opt;
  app.add_option("--host", opt.host, "server address");
  app.add_option("--port", opt.port, "server port")->required();
  app.add_option("--server-pid", opt.server_pid, "server process, to sample its memory from /proc");
  app.add_option("--threads", opt.threads, "load generator threads (each one io_context)")->check(CLI::Range(1, 16));
  app.add_option("--duration", opt.duration, "seconds of the timed phase (upper bound)")->check(CLI::Range(0.01, 600.0));
  app.add_option("--max-requests", opt.max_requests, "upper bound on timed requests");
  app.add_option("--label", result_label, "added to the result line as \"label\"");
  app.add_option("--content-size", opt.content_size, "bytes of content per text message")
      ->check(CLI::Range(0u, 1u << 20));

  auto* send = app.add_subcommand("send", "N keep-alive connections sending small messages back to back");
  auto* send_v2 = app.add_subcommand("send-v2", "send in protocol v2: authenticated once per connection, then SENDs");
  auto* legacy = app.add_subcommand("send-legacy", "N clients, one new TCP connection per send");
  auto* pull = app.add_subcommand("pull", "preload K messages per mailbox, then pull them all");
  auto* pull_v2 = app.add_subcommand("pull-v2", "pull in protocol v2: preload by SEND, then PULL + ACK until all are gone");
  auto* file = app.add_subcommand("file", "one large file message sent and pulled back, content checked");
  auto* idle = app.add_subcommand("idle", "C idle connections, then a fresh client's latency and server RSS");
  auto* latency = app.add_subcommand("latency", "fixed request rate, latency percentiles");
  auto* long_reader = app.add_subcommand(
      "long-reader", "latency's load while a reader holds a snapshot of the server's DB; latency after it ended");
  auto* group_send = app.add_subcommand(
      "group-send", "N members of one open group: delivery time of a group send to all of them, then group sends/s");
  auto* list = app.add_subcommand("list", "N registered clients; sends alone, then while 101s read the whole list");
  auto* push = app.add_subcommand("push", "N subscribed v2 clients (default 1,000), one sender: 2005 -> 2015 latency");
  for (auto* sub : {send, send_v2, legacy, pull, pull_v2, latency, long_reader, list, group_send, push})
    sub->add_option("--connections", opt.connections,
                    "connections (send 64, send-legacy 16, pull 16 mailboxes, latency and long-reader 64, list 64 senders, "
                    "group-send 100 members)")
        ->check(CLI::Range(1, 4096));
  for (auto* sub : {pull, pull_v2}) {
    sub->add_option("--messages-per-mailbox", opt.messages_per_mailbox, "K messages preloaded per mailbox");
    sub->add_option("--preload-connections", opt.preload_connections, "keep-alive connections that preload")
        ->check(CLI::Range(1, 4096));
    sub->add_option("--preload-seconds", opt.preload_seconds, "upper bound on the preload phase");
  }
  file->add_option("--file-size", opt.file_size, "bytes of the file message (default 1 GiB)")
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{0xFFFFFFFF} - 21));
  idle->add_option("--idle-connections", opt.idle_connections, "idle connections to hold open")
      ->check(CLI::Range(1, 1'000'000));
  idle->add_option("--fresh-samples", opt.fresh_samples, "fresh-client requests to time")->check(CLI::Range(1, 10000));
  idle->add_option("--settle-seconds", opt.idle_settle_seconds, "wait at most this long for the server to accept all");
  for (auto* sub : {latency, long_reader})
    sub->add_option("--rate", opt.rate, "requests per second, all connections together")->required();
  long_reader->add_option("--db", opt.db_path, "the server's database file (opened read-only)")->required();
  long_reader->add_option("--reader-start", opt.reader_start, "seconds into the timed phase the reader begins");
  long_reader->add_option("--reader-seconds", opt.reader_seconds, "seconds the reader holds its snapshot");
  group_send->add_option("--rounds", opt.delivery_rounds, "delivery rounds (one send each, every member pulls it)")
      ->check(CLI::Range(0, 100'000));
  list->add_option("--clients", opt.list_clients, "clients registered before the timed phases")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{10'000'000}));
  list->add_option("--register-connections", opt.register_connections, "connections that register them")
      ->check(CLI::Range(1, 4096));
  list->add_option("--register-window", opt.register_window, "registrations written ahead of their answers, per connection")
      ->check(CLI::Range(std::size_t{1}, std::size_t{4096}));
  list->add_option("--register-seconds", opt.register_seconds, "upper bound on the registration phase");
  list->add_option("--listers", opt.listers, "connections sending 101 after 101 in the second phase")
      ->check(CLI::Range(1, 64));
  list->add_option("--warmup-seconds", opt.list_warmup_seconds, "unreported sends between the registrations and the phases")
      ->check(CLI::Range(0.0, 600.0));
  list->add_option("--list-pause-ms", opt.list_pause_ms, "pause of each lister between a 1001 and its next 101 (0: back to back)")
      ->check(CLI::Range(0.0, 60'000.0));
  for (auto* sub : {send, send_v2, legacy, pull, pull_v2, file, idle, latency, long_reader, list, group_send, push}) sub->fallthrough();
  CLI11_PARSE(app, argc, argv);

  try {
    asio::io_context resolver_io;
    tcp::resolver resolver(resolver_io);
    const tcp::endpoint server = *resolver.resolve(opt.host, std::to_string(opt.port)).begin();
    benchmark_public_key();  // make the key before any timing
    if (*send) return run_sends(opt, server, false);
    if (*send_v2) return run_sends(opt, server, false, true);
    if (*legacy) return run_sends(opt, server, true);
    if (*pull) return run_pull(opt, server);
    if (*pull_v2) return run_pull(opt, server, true);
    if (*file) return run_file(opt, server);
    if (*idle) return run_idle(opt, server);
    if (*latency) return run_latency(opt, server);
    if (*long_reader) return run_long_reader(opt, server);
    if (*list) return run_list(opt, server);
    if (*group_send) return run_group_send(opt, server);
    if (*push) return run_push(opt, server);
  } catch (const std::exception& e) {
    std::cerr << "loadgen: " << e.what() << "\n";
    return 2;
  }
  return 2;
}
