// 100 register, 101 list clients, 102 public key: small fixed-size payloads, read whole and
// decoded here. 100 and 102 are answered by one storage job each; 101 from the client
// directory on the I/O thread, streamed, so a list of 100,000 clients neither waits for nor
// holds up a batch, and is never built whole in memory.
#include <array>

#include "request.hpp"
#include "responses.hpp"

namespace letterbox::server {
namespace asio = boost::asio;
using namespace protocol;

namespace {

// Pieces in which a 1001 is encoded and written.
constexpr std::size_t client_list_piece_bytes = 64 * 1024;

asio::awaitable<outcome> list_clients(request& r) {
  const client_id requester = r.header.client;
  if (!r.server.directory.contains(requester))
    throw request_rejected("client " + to_hex(requester) + " is not registered");
  // Its last-seen time: a storage job nobody waits for.
  auto touch = [&handler = r.server.handler, requester] { handler.touch(requester); };
  asio::co_spawn(r.connection.executor(), r.server.storage.run<void>(std::move(touch)), asio::detached);
  const auto clients = r.server.directory.current();
  const auto header = encode_client_list_header(clients, requester);
  byte_buffer out(header.begin(), header.end());
  std::uint64_t written = 0;
  for (std::size_t next = 0;;) {
    encode_client_list_piece(clients, requester, next, client_list_piece_bytes, out);
    if (out.empty()) break;
    co_await r.connection.write(asio::buffer(out));
    written += out.size();
    out.clear();
  }
  co_return outcome{static_cast<std::uint16_t>(response_code::client_list), written, {}, false};
}

}  // namespace

asio::awaitable<outcome> handle_fixed_request(request& r) {
  const auto expected = *fixed_payload_size(r.header.code);
  if (r.header.payload_size != expected)
    throw request_rejected("payload size " + std::to_string(r.header.payload_size) + " instead of " +
                           std::to_string(expected));
  std::array<std::uint8_t, register_payload_size> storage{};
  const auto payload = std::span<std::uint8_t>(storage).first(expected);
  if (expected > 0) co_await r.read(asio::buffer(payload.data(), payload.size()));
  auto& handler = r.server.handler;
  const client_id requester = r.header.client;
  switch (static_cast<request_code>(r.header.code)) {
    case request_code::register_client: {
      if (!r.server.registrations.allow(r.connection.peer_network()))
        throw request_rejected("registrations from " + r.connection.peer_network().to_string() + " exceed " +
                               std::to_string(r.server.limits.registration_rate) + " a minute (--registration-rate)");
      auto job = [&handler, decoded = decode_register_request(payload)] { return handler.register_client(decoded); };
      const auto result = co_await r.server.storage.run<registered>(std::move(job));
      co_return co_await respond(r, encode_response(result));
    }
    case request_code::list_clients: co_return co_await list_clients(r);
    default: {  // 102: the session dispatches only 100, 101 and 102 here
      auto job = [&handler, requester, decoded = decode_get_public_key_request(payload)] {
        return handler.get_public_key(requester, decoded);
      };
      const auto result = co_await r.server.storage.run<public_key_response>(std::move(job));
      co_return co_await respond(r, encode_response(result));
    }
  }
}

}  // namespace letterbox::server
