// The per-connection session (see session.hpp). The path of one request:
//   header (22 bytes) → dispatch by code → request flow (requests/*.cpp: payload, storage
//   job, response) → log line. Errors become 9000 in handle(), and only there.
#include "session.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <memory>
#include <optional>

#include "messages_live.hpp"
#include "messages_v2.hpp"
#include "responses.hpp"
#include "v2_live.hpp"

namespace letterbox::server {
namespace asio = boost::asio;
using asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using namespace protocol;

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, const tcp::endpoint& peer, server_context& context, net::connection_registry& registry)
      : connection_(std::move(socket), peer,
                    net::timing{context.limits.io_timeout, context.limits.request_grace, context.limits.min_rate},
                    context.file_pool),
        context_(context),
        registry_(registry) {
    registry_.add(connection_);
  }
  ~session() { registry_.remove(connection_); }

  void start() {
    auto self = shared_from_this();
    asio::co_spawn(connection_.executor(), [self] { return self->run(); }, asio::detached);
    asio::co_spawn(connection_.executor(), [self] { return self->connection_.watch(); }, asio::detached);
  }
 private:
  asio::awaitable<void> run() {
    try {
      for (;;) {
        if (live_.subscribed) {  // live delivery (docs/PROTOCOL.md Part V): wait for input, news or the heartbeat
          const live_event event = co_await wait_live();
          if (event == live_event::push) {
            co_await push();
            continue;
          }
          if (event == live_event::ping) {
            co_await connection_.write(asio::buffer(live::encode_empty_response(live::response_code::ping)));
            ping_sent_ = true;
            continue;
          }
          if (event == live_event::silent) {
            spdlog::info("{} client={}: subscribed connection silent for {} ms (--heartbeat-timeout), dropping it",
                         connection_.peer(), to_hex(*v2_.client), context_.limits.heartbeat_timeout.count());
            break;
          }
        }
        if (!co_await connection_.wait_for_input()) break;  // false: the peer closed between requests
        connection_.begin_request();
        request_header_bytes header_bytes;
        co_await connection_.read_exact(header_bytes.data(), header_bytes.size());
        last_heard_ = clock_type::now();
        ping_sent_ = false;
        const auto started = clock_type::now();
        request current{decode_request_header(header_bytes), connection_, context_};
        current.v2 = &v2_;
        if (context_.live) current.live = &live_;
        const outcome result = co_await handle(current);
        connection_.end_request();
        log_request(current.header, result, started);
        if (context_.live && v2_.client) {  // presence: online from its authentication on
          if (!online_) context_.live->connected(*v2_.client);
          else context_.live->seen(*v2_.client);
          online_ = true;
        }
        if (result.close) {
          co_await connection_.linger_before_close();
          break;
        }
      }
    } catch (const boost::system::system_error& e) {
      if (e.code() != asio::error::eof && e.code() != asio::error::operation_aborted &&
          e.code() != asio::error::connection_reset && e.code() != asio::error::bad_descriptor)
        spdlog::debug("{}: connection ended: {}", connection_.peer(), e.what());
    } catch (const std::exception& e) {
      spdlog::error("{}: session failed: {}", connection_.peer(), e.what());
    }
    connection_.close();
    live_.signal.cancel();
    if (v2_.client) {
      context_.leases.release_holder(*v2_.client, v2_.token);  // its leases end with it
      if (context_.live) {
        if (live_.subscribed) context_.live->unsubscribe(*v2_.client, &live_);
        live_.subscribed = false;
        if (online_) context_.live->disconnected(*v2_.client);
        context_.live->notify(*v2_.client);  // its other subscribers take what it held
      }
    }
  }

  // What wakes a subscribed connection.
  enum class live_event { input, push, ping, silent };

  // The one wait of a subscribed connection between requests: a steady_timer used as a signal,
  // cancelled by socket readability (on_readable), by a mailbox notification (live_registry →
  // live_subscription::wake) or expiring at the heartbeat's next deadline.
  asio::awaitable<live_event> wait_live() {
    const auto timeout = context_.limits.heartbeat_timeout;
    lease_check_at_.reset();  // set when this wait arms its timer; stale after a request or a push
    for (;;) {
      if (live_.pending) co_return live_event::push;
      if (readable_ || !connection_.buffered().empty()) {
        readable_ = false;
        co_return live_event::input;
      }
      const auto now = clock_type::now();
      if (now >= last_heard_ + timeout) co_return live_event::silent;
      if (!ping_sent_ && now >= last_heard_ + timeout / 3) co_return live_event::ping;
      if (lease_check_at_ && now >= *lease_check_at_) {  // a lease ended: its message is free to push again
        lease_check_at_.reset();
        co_return live_event::push;
      }
      if (!read_wait_) {
        read_wait_ = true;
        connection_.on_readable([self = shared_from_this()](const boost::system::error_code&) {
          self->read_wait_ = false;
          self->readable_ = true;  // also on an error: the read that follows reports it
          self->live_.signal.cancel();
        });
      }
      auto wake_at = ping_sent_ ? last_heard_ + timeout : last_heard_ + timeout / 3;
      // Also when the next lease on the mailbox runs out (ours unacknowledged, or another
      // connection's PULL): without it, such a message waited for the next new one (issue 10).
      lease_check_at_ = context_.leases.next_expiry(*v2_.client, now);
      if (lease_check_at_ && *lease_check_at_ < wake_at) wake_at = *lease_check_at_;
      live_.signal.expires_at(wake_at);
      boost::system::error_code ec;
      co_await live_.signal.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  // Pushes what is free within the window (between two requests: frames never interleave).
  asio::awaitable<void> push() {
    request pushing{request_header{}, connection_, context_};
    pushing.v2 = &v2_;
    pushing.live = &live_;
    const auto started = clock_type::now();
    try {
      const std::size_t pushed = co_await push_waiting(pushing);
      if (pushed > 0 && spdlog::should_log(spdlog::level::info))
        spdlog::info("{} client={} push -> 2015 messages={} {}us", connection_.peer(), to_hex(*v2_.client), pushed,
                     std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - started).count());
    } catch (const storage_error& e) {
      storage_failure(e);  // nothing was written; the messages wait in the mailbox
    } catch (const request_rejected& e) {
      spdlog::warn("{}: push: {}", connection_.peer(), e.what());  // no memory in time: the next wake tries again
    }
  }

  // Dispatches one request. Every rule violation and storage failure becomes a 9000 here,
  // the one place errors are translated into the protocol.
  asio::awaitable<outcome> handle(request& r) {
    // v2 is version 3, a v2 code and a zero client ID field (docs/PROTOCOL.md §12); any other
    // request with a v2 code is an unknown v1 code, answered as v1 always did.
    if (r.header.version == v2::wire_version &&
        (v2::is_v2_request(r.header.code) || v2::is_group_request(r.header.code)) && r.header.client == client_id{})
      co_return co_await handle_v2(r);
    if (r.header.version == v2::wire_version && r.live && live::is_live_request(r.header.code) &&
        r.header.client == client_id{})
      co_return co_await handle_v2(r);  // live delivery, Part V (only when the server has it)
    std::string failure;
    try {
      // The v1 lock (docs/PROTOCOL.md §17): a v1 request naming a v2 client changes nothing.
      if (is_known_request(r.header.code) && context_.directory.is_v2(r.header.client))
        throw request_rejected("v1 request " + std::to_string(r.header.code) + " naming v2 client " +
                               to_hex(r.header.client) + " (v1 lock)");
      switch (static_cast<request_code>(r.header.code)) {
        case request_code::register_client:
        case request_code::list_clients:
        case request_code::get_public_key: co_return co_await handle_fixed_request(r);
        case request_code::send_message: co_return co_await handle_send_message(r);
        case request_code::pull_messages: co_return co_await handle_pull_messages(r);
      }
      failure = "unknown request code " + std::to_string(r.header.code);
    } catch (const request_rejected& e) {
      failure = e.what();
    } catch (const protocol_error& e) {
      failure = e.what();
    } catch (const storage_error& e) {
      failure = storage_failure(e);
    }
    co_return co_await reject(r, std::move(failure));
  }

  // Logs a storage error (at most once a second: a full disk fails every request) and returns
  // the reason for the request's log line.
  std::string storage_failure(const storage_error& e) {
    if (const long dropped = context_.errors.allow("storage"); dropped >= 0)
      spdlog::error("{}: storage error: {}{}", connection_.peer(), e.what(),
                    dropped > 0 ? " (" + std::to_string(dropped) + " more storage errors not logged)" : std::string());
    return std::string("storage error: ") + e.what();
  }

  // Dispatches one v2 request (version 3, code 200-207): as handle(), with the v2 9000 that
  // carries the reason (§18).
  asio::awaitable<outcome> handle_v2(request& r) {
    std::string failure;
    v2::reason why = v2::reason::malformed;
    try {
      if (v2::is_group_request(r.header.code)) co_return co_await handle_v2_group_request(r);  // Part IV
      if (live::is_live_request(r.header.code)) co_return co_await handle_live_request(r);
      switch (static_cast<v2::request_code>(r.header.code)) {
        case v2::request_code::hello:
        case v2::request_code::register_client:
        case v2::request_code::auth: co_return co_await handle_v2_session_request(r);
        case v2::request_code::list_clients:
        case v2::request_code::get_keys: co_return co_await handle_v2_directory_request(r);
        case v2::request_code::send_message: co_return co_await handle_v2_send(r);
        case v2::request_code::pull_messages: co_return co_await handle_v2_pull(r);
        case v2::request_code::ack: co_return co_await handle_v2_ack(r);
      }
      failure = "unknown v2 request code " + std::to_string(r.header.code);
    } catch (const request_rejected& e) {
      failure = e.what();
      why = e.why();
    } catch (const protocol_error& e) {
      failure = e.what();
    } catch (const storage_error& e) {
      failure = storage_failure(e);
      why = v2::reason::storage_failure;
    }
    failure += std::string(" [") + v2::reason_name(static_cast<std::uint16_t>(why)) + "]";
    co_return co_await reject(r, std::move(failure), v2::encode_error_response(why), r.close_after_error);
  }

  // Answers 9000 after consuming the rest of the request's payload when that is cheap;
  // otherwise the stream cannot be re-synchronised and the connection closes after the answer.
  // A v2 request's 9000 is `response` (with its reason); `close` ends the connection anyway.
  asio::awaitable<outcome> reject(request& r, std::string reason, byte_buffer response = error_response(),
                                  bool close = false) {
    outcome result;
    result.reason = std::move(reason);
    result.close = close || r.unread_payload > max_discard_size;
    if (!result.close) {
      std::array<std::uint8_t, net::input_buffer_size> scratch;  // sized by what arrives, not by the size field
      while (r.unread_payload > 0)
        co_await r.read(asio::buffer(scratch.data(), std::min<std::uint64_t>(r.unread_payload, scratch.size())));
    }
    co_await connection_.write(asio::buffer(response));
    result.response_size = response.size();
    co_return result;
  }

  void log_request(const request_header& header, const outcome& result, clock_type::time_point started) {
    const auto level = result.reason.empty() ? spdlog::level::info : spdlog::level::warn;
    if (!spdlog::should_log(level)) return;
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - started).count();
    if (result.reason.empty())
      spdlog::log(level, "{} client={} code={} in={} -> {} out={} {}us", connection_.peer(), to_hex(header.client),
                  header.code, header.payload_size, result.code, result.response_size, micros);
    else
      spdlog::log(level, "{} client={} code={} in={} -> {} out={} {}us: {}{}", connection_.peer(),
                  to_hex(header.client), header.code, header.payload_size, result.code, result.response_size, micros,
                  result.reason, result.close ? " (closing)" : "");
  }

  net::connection connection_;
  live_subscription live_{connection_.executor()};
  bool read_wait_ = false;   // an on_readable wait is pending
  bool readable_ = false;    // it completed: read the next request
  bool ping_sent_ = false;   // a 2013 went out since the peer was last heard
  std::optional<clock_type::time_point> lease_check_at_;  // subscribed: when the next lease on the mailbox ends
  bool online_ = false;      // counted online in the presence registry
  clock_type::time_point last_heard_ = clock_type::now();
  v2_connection v2_{next_connection_token(), false, std::nullopt, std::nullopt};
  server_context& context_;
  net::connection_registry& registry_;
};

void start_session(tcp::socket socket, const tcp::endpoint& peer, server_context& context,
                   net::connection_registry& registry) {
  std::make_shared<session>(std::move(socket), peer, context, registry)->start();
}

}  // namespace letterbox::server
