// Pieces the client's operation files share (operations.cpp, groups.cpp): the translation of
// every lower layer's error into client_error, and dropping the rest of a response. Internal to
// client/.
#pragma once

#include <algorithm>
#include <filesystem>
#include <span>
#include <string>

#include "operations.hpp"

namespace letterbox::client::detail {

// Runs body, translating every lower layer's error into client_error.
template <typename Body>
auto translated(Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const client_error&) {
    throw;
  } catch (const v2_server_error& e) {
    throw client_error(client_error::kind::server_error, e.what());
  } catch (const connection_error& e) {
    throw client_error(client_error::kind::network, e.what());
  } catch (const protocol::protocol_error& e) {
    throw client_error(client_error::kind::network, std::string("malformed response from the server: ") + e.what());
  } catch (const crypto_error& e) {
    throw client_error(client_error::kind::crypto, e.what());
  } catch (const config_error& e) {
    throw client_error(client_error::kind::local_file, e.what());
  } catch (const std::filesystem::filesystem_error& e) {
    throw client_error(client_error::kind::local_file, e.what());
  }
}

// Reads and drops n bytes of a response, in chunks.
inline void discard(connection& link, std::uint64_t n) {
  protocol::byte_buffer chunk(std::min<std::uint64_t>(n, file_chunk_size));
  while (n > 0) {
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(n, chunk.size()));
    link.read(std::span(chunk.data(), take));
    n -= take;
  }
}

}  // namespace letterbox::client::detail
