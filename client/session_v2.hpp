// One protocol-v2 conversation with the server over one persistent connection
// (docs/PROTOCOL.md §12–§15): HELLO and the version decision, REGISTER or AUTH, then framed
// v2 requests. Framing only: what the requests mean is client_operations' business.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "client_files.hpp"
#include "connection.hpp"
#include "identity.hpp"
#include "messages_v2.hpp"

namespace letterbox::client {

// A v2 9000: the server refused the request, with the reason of §18.
struct v2_refusal {
  std::uint16_t reason = 0;
  std::string describe() const;  // "name_taken (4)"
};

// The server answered 9000 (v2 form); what() is "server responded with an error (reason)".
class v2_server_error : public std::runtime_error {
 public:
  explicit v2_server_error(v2_refusal refusal);
  std::uint16_t reason() const noexcept { return refusal_.reason; }

 private:
  v2_refusal refusal_;
};

class v2_session {
 public:
  enum class hello_result { v2, v1_only };

  // Connects; throws connection_error.
  v2_session(const server_address& server, std::chrono::steady_clock::duration io_timeout);

  // Sends HELLO. v1_only when the server answered with the v1 error (it speaks only v1; the
  // session must not be used further); v2 when it answered 2000 (the challenge is kept).
  // Throws connection_error, protocol_error (a malformed answer), v2_server_error.
  hello_result hello();

  // REGISTER with a fresh proof over this connection's challenge; returns the ID the server
  // gave (the caller checks it is the derived one). The server closes the connection after a
  // refusal: the session is then unusable. Throws as hello() does.
  protocol::client_id register_client(const std::string& name, const crypto::identity_secret& identity,
                                      const protocol::v2::agreement_key& agreement,
                                      const protocol::public_key& legacy);
  // AUTH as id with identity's proof over the challenge. Throws as hello() does.
  void authenticate(const protocol::client_id& id, const crypto::identity_secret& identity);
  bool authenticated() const { return authenticated_; }

  // One request with a payload in memory; returns the response payload (at most max_response
  // bytes, else connection_error before allocating). 9000 → v2_server_error; another code
  // than expected → protocol_error.
  protocol::byte_buffer exchange(protocol::v2::request_code code, protocol::bytes_view payload,
                                 protocol::v2::response_code expected, std::uint32_t max_response);

  // The pieces of a streamed request or response, for SEND and PULL.
  void send_front(protocol::v2::request_code code, std::uint64_t payload_size, protocol::bytes_view prefix);
  // Reads a response header; 9000 → v2_server_error (its reason read), another code than
  // expected → protocol_error. Returns the payload size.
  std::uint32_t expect(protocol::v2::response_code expected);
  connection& link() { return *link_; }

 private:
  std::unique_ptr<connection> link_;
  std::optional<protocol::v2::challenge> challenge_;  // until REGISTER or AUTH consumed it
  bool authenticated_ = false;
};

}  // namespace letterbox::client
