// v2 203 LIST and 204 KEYS (docs/PROTOCOL.md §14). LIST is answered from the client directory on
// the I/O thread and streamed, as 101; KEYS by one storage job. The server serves the keys as
// registered: the client checks them (ID derived from the identity key, key signature).
#include "messages_v2.hpp"
#include "request.hpp"
#include "responses.hpp"

namespace letterbox::server {
namespace asio = boost::asio;
using namespace protocol;
using v2::reason;

namespace {

// Pieces in which a 2003 is encoded and written.
constexpr std::size_t client_list_piece_bytes = 64 * 1024;

asio::awaitable<outcome> list_clients(request& r) {
  const client_id requester = require_authenticated(r);  // before any payload byte (§12)
  co_await read_fixed_payload(r, v2::list_payload_size);
  // Its last-seen time: a storage job nobody waits for (as 101).
  auto touch = [&handler = r.server.handler, requester] { handler.touch(requester); };
  asio::co_spawn(r.connection.executor(), r.server.storage.run<void>(std::move(touch)), asio::detached);
  const auto clients = r.server.directory.current();
  const auto header = encode_v2_client_list_header(clients, requester);
  byte_buffer out(header.begin(), header.end());
  std::uint64_t written = 0;
  for (std::size_t next = 0;;) {
    encode_v2_client_list_piece(clients, requester, next, client_list_piece_bytes, out);
    if (out.empty()) break;
    co_await r.connection.write(asio::buffer(out));
    written += out.size();
    out.clear();
  }
  co_return outcome{static_cast<std::uint16_t>(v2::response_code::client_list), written, {}, false};
}

asio::awaitable<outcome> get_keys(request& r) {
  const client_id requester = require_authenticated(r);  // before any payload byte (§12)
  const auto payload = co_await read_fixed_payload(r, v2::keys_payload_size);
  const auto target = v2::decode_keys_request(payload).target;
  auto& handler = r.server.handler;
  auto job = [&handler, requester, target] { return handler.get_keys(requester, target); };
  const auto keys = co_await r.server.storage.run<v2::keys_response>(std::move(job));
  co_return co_await respond(r, v2::encode_keys_response(keys));
}

}  // namespace

asio::awaitable<outcome> handle_v2_directory_request(request& r) {
  if (static_cast<v2::request_code>(r.header.code) == v2::request_code::list_clients) co_return co_await list_clients(r);
  co_return co_await get_keys(r);  // 204: the session dispatches only 203 and 204 here
}

}  // namespace letterbox::server
