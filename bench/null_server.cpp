// bench/null_server: a protocol v1 responder that stores nothing (100 → 1000 with a counter ID,
// 103 → 1003, 104 → empty 1004, anything else → 9000). It gives the request/response ceiling
// of this machine for the load generator's scenarios: the same loopback, the same Asio
// coroutine design, no disk and no SQLite. One thread, one coroutine per connection.
//   null_server [--port 0] [--bind 127.0.0.1] [--ready-file F]
#include <utility>  // before <boost/asio.hpp> (Boost 1.74 + g++ 12 + C++20)

#include <boost/asio.hpp>

#include <CLI/CLI.hpp>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "messages.hpp"

namespace asio = boost::asio;
namespace proto = letterbox::protocol;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

namespace {

constexpr std::size_t read_buffer_size = 64 * 1024;

awaitable<void> session(tcp::socket socket, std::uint32_t& next_id) {
  socket.set_option(tcp::no_delay(true));
  std::vector<std::uint8_t> buffer(read_buffer_size);
  std::size_t have = 0;
  proto::message_sent sent{};
  try {
    for (;;) {
      while (have < proto::request_header_size)
        have += co_await socket.async_read_some(asio::buffer(buffer.data() + have, buffer.size() - have), use_awaitable);
      const auto header = proto::decode_request_header(proto::bytes_view(buffer.data(), proto::request_header_size));
      // The 103 destination is the first 16 payload bytes: keep them for the answer.
      std::uint64_t left = header.payload_size;
      std::size_t buffered = have - proto::request_header_size;
      while (header.code == static_cast<std::uint8_t>(proto::request_code::send_message) &&
             buffered < proto::client_id_size && buffered < left) {
        buffered += co_await socket.async_read_some(
            asio::buffer(buffer.data() + have, buffer.size() - have), use_awaitable);
        have = proto::request_header_size + buffered;
      }
      if (buffered >= proto::client_id_size)
        std::memcpy(sent.to.data(), buffer.data() + proto::request_header_size, proto::client_id_size);
      const std::size_t consumed = static_cast<std::size_t>(std::min<std::uint64_t>(buffered, left));
      left -= consumed;
      const std::size_t end = proto::request_header_size + consumed;
      std::memmove(buffer.data(), buffer.data() + end, have - end);
      have -= end;
      while (left > 0) {  // discard the rest of a large payload
        const std::size_t n = co_await socket.async_read_some(
            asio::buffer(buffer.data(), static_cast<std::size_t>(std::min<std::uint64_t>(left, buffer.size()))),
            use_awaitable);
        left -= n;
      }
      proto::byte_buffer response;
      switch (static_cast<proto::request_code>(header.code)) {
        case proto::request_code::register_client: {
          proto::client_id id{};
          proto::store_u32(id.data(), ++next_id);
          response = proto::encode_registered_response(id);
          break;
        }
        case proto::request_code::send_message:
          sent.message_id = ++next_id;
          response = proto::encode_message_sent_response(sent);
          break;
        case proto::request_code::pull_messages: {
          const auto h = proto::encode_response_header(
              {proto::server_version, static_cast<std::uint16_t>(proto::response_code::messages), 0});
          response.assign(h.begin(), h.end());
          break;
        }
        default: response = proto::encode_error_response();
      }
      co_await asio::async_write(socket, asio::buffer(response), use_awaitable);
    }
  } catch (const std::exception&) {
    // connection closed or broken: end this session only
  }
}

awaitable<void> listen(tcp::acceptor& acceptor, std::uint32_t& next_id) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(use_awaitable);
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket), next_id), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Letterbox bench/null_server: a responder that stores nothing (the request/response ceiling)"};
  std::uint16_t port = 0;
  std::string bind = "127.0.0.1";
  std::string ready_file;
  app.add_option("--port", port, "port, 0 = ephemeral");
  app.add_option("--bind", bind, "address to listen on");
  app.add_option("--ready-file", ready_file, "write the bound port here once listening");
  CLI11_PARSE(app, argc, argv);
  try {
    asio::io_context io(1);
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address(bind), port));
    acceptor.listen(asio::socket_base::max_listen_connections);
    std::uint32_t next_id = 0;
    asio::co_spawn(io, listen(acceptor, next_id), asio::detached);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, auto) { io.stop(); });
    if (!ready_file.empty()) {
      const std::string temporary = ready_file + ".tmp";
      std::ofstream(temporary) << acceptor.local_endpoint().port() << "\n";
      std::filesystem::rename(temporary, ready_file);
    }
    io.run();
  } catch (const std::exception& e) {
    std::cerr << "null_server: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
