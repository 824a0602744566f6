// The server executable: configuration, start-up, the accept loop, and graceful shutdown.
#include <utility>  // before Asio (Boost 1.74 + g++ 12 + C++20)

#include <boost/asio.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <fstream>

#include "config.hpp"
#include "handler.hpp"
#include "instance_lock.hpp"
#include "mailbox_store.hpp"
#include "session.hpp"
#include "v2_live.hpp"
#include "spool.hpp"
#include "sqlite_store.hpp"
#include "storage_worker.hpp"

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace letterbox::server;

namespace {

constexpr const char* server_version_text = "1.0.0";

// Lets the server hold as many sockets as the hard limit allows (10,000+ idle clients).
rlim_t raise_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

// Writes the port atomically (temporary file + rename) so a watcher never reads half of it.
void write_ready_file(const std::filesystem::path& path, std::uint16_t port) {
  const auto temporary = path.string() + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << port << '\n';
    if (!out) throw std::runtime_error("cannot write " + temporary);
  }
  std::filesystem::rename(temporary, path);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, server_context& context, net::connection_registry& sessions) {
  for (;;) {
    boost::system::error_code ec;
    tcp::endpoint peer;
    tcp::socket socket = co_await acceptor.async_accept(peer, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // Out of file descriptors and the like: back off briefly instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    // Refusals repeat as fast as a peer can connect: at most a line a second of each kind.
    const auto dropped_note = [](long dropped) {
      return dropped > 0 ? " (" + std::to_string(dropped) + " more such lines dropped)" : std::string();
    };
    if (sessions.count_from(peer.address()) >= context.limits.max_connections_per_ip) {
      if (const long dropped = context.errors.allow("per-ip"); dropped >= 0)
        spdlog::warn("refusing connection from {}: {} connections from its network (--max-connections-per-ip){}",
                     peer.address().to_string(), sessions.count_from(peer.address()), dropped_note(dropped));
      continue;  // the socket closes as it goes out of scope
    }
    if (sessions.size() >= context.limits.max_connections) {
      // Serve the new one anyway: a full server must not lock out legitimate clients.
      const auto closed = sessions.close_least_active();
      if (const long dropped = context.errors.allow("full"); dropped >= 0)
        spdlog::warn("{} connections open (--max-connections): closed {} to serve {}{}", sessions.size(),
                     closed.empty() ? std::string("none") : closed, peer.address().to_string(), dropped_note(dropped));
    }
    start_session(std::move(socket), peer, context, sessions);
  }
}

int run(const server_config& config) {
  const auto file_limit = raise_file_limit();
  const instance_lock lock(config.db_path);  // before anything touches the database or the spool
  spool_directory spool(config.db_path.string() + ".spool");
  sqlite_store records(config.db_path);
  const int schema_version = records.schema_version();  // the store belongs to the worker from here on
  asio::thread_pool file_pool(config.file_threads);  // outlives the store and the worker, which post to it
  mailbox_store store(records, spool);
  if (store.swept_files() > 0)
    spdlog::info("removed {} unreferenced spool file(s) (uploads interrupted by a stop)", store.swept_files());
  // Unlinking a delivered large content takes long (the filesystem frees its blocks): on the
  // file pool, never on the storage thread between two group commits.
  store.remove_files_with([&spool, pool = file_pool.get_executor()](std::vector<std::string> names) {
    asio::post(pool, [&spool, names = std::move(names)] {
      for (const auto& name : names) spool.remove(name);
    });
  });
  request_handler handler(store, config.limits);
  storage_worker storage(store, config.limits.max_batch);
  asio::io_context io(1);
  pull_registry pulls;
  log_limiter errors;
  rate_limiter registrations(config.limits.registration_rate);
  rate_limiter auth_failures(config.limits.auth_failure_rate);
  disk_space disk(std::filesystem::absolute(config.db_path).parent_path(), config.limits.min_free_disk);
  memory_budget pull_memory(config.limits.max_pull_memory);
  lease_registry leases(config.limits.lease_timeout);
  server_context context{storage,       handler, spool,       store.directory(), file_pool, pulls, errors,
                         registrations, auth_failures, disk, pull_memory, leases,   config.limits};
  live_registry live(config.limits.max_subscriptions);
  context.live = &live;
  net::connection_registry sessions;

  tcp::acceptor acceptor(io);
  const tcp::endpoint endpoint(asio::ip::make_address(config.bind_address), config.port);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));  // a restart can bind at once
  acceptor.bind(endpoint);
  acceptor.listen(asio::socket_base::max_listen_connections);
  const auto port = acceptor.local_endpoint().port();

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {} received: closing {} connection(s) and shutting down", signal, sessions.size());
    boost::system::error_code ignored;
    acceptor.close(ignored);
    pull_memory.cancel_all();
    sessions.close_all();
  });
  asio::co_spawn(io, accept_loop(acceptor, context, sessions), asio::detached);

  spdlog::info("letterbox server {} listening on {}:{} db={} schema=v{} timeout={}ms max-message={}B "
               "max-connections={} inline-limit={}B fd-limit={}",
               server_version_text, config.bind_address, port, config.db_path.string(), schema_version,
               config.limits.io_timeout.count(), config.limits.max_message_size, config.limits.max_connections,
               config.limits.inline_content_limit, file_limit);
  if (!config.ready_file.empty()) write_ready_file(config.ready_file, port);

  io.run();  // returns once the acceptor and every session have finished
  storage.stop();
  file_pool.join();
  spdlog::info("stopped: {} storage jobs in {} batches; worker time executing {} ms, committing {} ms",
               storage.jobs(), storage.batches(), storage.execute_ns() / 1'000'000,
               (storage.batch_ns() - storage.execute_ns()) / 1'000'000);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // sendfile(2) to a closed peer must fail with EPIPE, not kill us
  spdlog::set_default_logger(spdlog::stderr_color_mt("server"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  auto parsed = parse_command_line(argc, argv);
  if (!parsed.config) return parsed.exit_status;
  try {
    return run(*parsed.config);
  } catch (const std::exception& e) {
    spdlog::critical("cannot run: {}", e.what());
    return 1;
  }
}
