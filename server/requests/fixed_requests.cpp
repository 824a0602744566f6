// 100 register, 101 list clients, 102 public key: small fixed-size payloads, read whole,
// decoded here, answered by one storage job each.
#include <array>

#include "request.hpp"
#include "responses.hpp"

namespace letterbox::server {
namespace asio = boost::asio;
using namespace protocol;

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
      auto job = [&handler, decoded = decode_register_request(payload)] { return handler.register_client(decoded); };
      const auto result = co_await r.server.storage.run<registered>(std::move(job));
      co_return co_await respond(r, encode_response(result));
    }
    case request_code::list_clients: {
      auto job = [&handler, requester] { return handler.list_clients(requester); };
      const auto result = co_await r.server.storage.run<client_list>(std::move(job));
      co_return co_await respond(r, encode_response(result));
    }
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
