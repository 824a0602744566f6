// Helpers shared by the request flows (see request.hpp).
#include "request.hpp"

namespace letterbox::server {

boost::asio::awaitable<outcome> respond(request& r, protocol::byte_buffer response) {
  co_await r.connection.write(boost::asio::buffer(response));
  const auto header = protocol::decode_response_header(protocol::bytes_view(response).first(protocol::response_header_size));
  co_return outcome{header.code, response.size(), {}, false};
}

}  // namespace letterbox::server
