// Protocol v2 framing over one persistent connection (see session_v2.hpp).
#include "session_v2.hpp"

namespace letterbox::client {
namespace {

namespace proto = letterbox::protocol;
namespace v2 = letterbox::protocol::v2;

constexpr auto error_code = static_cast<std::uint16_t>(v2::response_code::error);

}  // namespace

std::string v2_refusal::describe() const {
  return std::string(v2::reason_name(reason)) + " (" + std::to_string(reason) + ")";
}

v2_server_error::v2_server_error(v2_refusal refusal)
    : std::runtime_error("server responded with an error: " + refusal.describe()), refusal_(refusal) {}

v2_session::v2_session(const server_address& server, std::chrono::steady_clock::duration io_timeout)
    : link_(std::make_unique<connection>(server, io_timeout)) {}

v2_session::hello_result v2_session::hello() {
  link_->write(v2::encode_request(v2::request_code::hello, v2::encode_hello_request()));
  const auto header = link_->read_response_header();
  if (header.code == error_code && header.version != v2::wire_version) {
    // The v1 error (02 28 23 00 00 00 00): a server that does not know code 200. Its payload,
    // if any, is read so that nothing is left half-read.
    link_->read_payload(header.payload_size, 64);
    return hello_result::v1_only;
  }
  if (header.version != v2::wire_version)
    throw proto::protocol_error("answer to HELLO has version " + std::to_string(header.version));
  if (header.code == error_code)
    throw v2_server_error({v2::decode_error_payload(link_->read_payload(header.payload_size, v2::error_payload_size))});
  if (header.code != static_cast<std::uint16_t>(v2::response_code::hello))
    throw proto::protocol_error("unexpected answer " + std::to_string(header.code) + " to HELLO");
  const auto response = v2::decode_hello_payload(link_->read_payload(header.payload_size, v2::hello_response_size));
  if (response.version != v2::protocol_version)
    throw proto::protocol_error("server chose protocol version " + std::to_string(response.version));
  challenge_ = response.nonce;
  return hello_result::v2;
}

proto::client_id v2_session::register_client(const std::string& name, const crypto::identity_secret& identity,
                                             const v2::agreement_key& agreement, const proto::public_key& legacy) {
  if (!challenge_) throw proto::protocol_error("no fresh challenge on this connection (HELLO first, one REGISTER/AUTH)");
  v2::register_request request;
  request.name = name;
  request.identity = crypto::public_key_of(identity);
  request.agreement = agreement;
  request.legacy = legacy;
  const auto field = proto::encode_name(name);
  request.key_signature = crypto::sign(identity, crypto::labels::keys, {field, agreement, legacy});
  request.proof = crypto::sign(identity, crypto::labels::register_proof, {*challenge_, request.identity});
  challenge_.reset();
  const auto reply = exchange(v2::request_code::register_client, v2::encode_register_request(request),
                              v2::response_code::registered, v2::registered_response_size);
  authenticated_ = true;
  return v2::decode_registered_payload(reply);
}

void v2_session::authenticate(const proto::client_id& id, const crypto::identity_secret& identity) {
  if (!challenge_) throw proto::protocol_error("no fresh challenge on this connection (HELLO first, one REGISTER/AUTH)");
  v2::auth_request request{id, crypto::sign(identity, crypto::labels::auth_proof, {*challenge_, id})};
  challenge_.reset();
  exchange(v2::request_code::auth, v2::encode_auth_request(request), v2::response_code::authenticated, 0);
  authenticated_ = true;
}

proto::byte_buffer v2_session::exchange(v2::request_code code, proto::bytes_view payload, v2::response_code expected,
                                        std::uint32_t max_response) {
  link_->write(v2::encode_request(code, payload));
  return link_->read_payload(expect(expected), max_response);
}

void v2_session::send_front(v2::request_code code, std::uint64_t payload_size, proto::bytes_view prefix) {
  link_->write(v2::encode_request_front(code, payload_size, prefix));
}

std::uint32_t v2_session::expect(v2::response_code expected) {
  const auto header = link_->read_response_header();
  if (header.code == error_code) {
    if (header.version != v2::wire_version || header.payload_size != v2::error_payload_size)
      throw v2_server_error({0});  // a v1-form 9000 on a v2 connection: no reason given
    throw v2_server_error({v2::decode_error_payload(link_->read_payload(header.payload_size, v2::error_payload_size))});
  }
  if (header.version != v2::wire_version || header.code != static_cast<std::uint16_t>(expected))
    throw proto::protocol_error("unexpected response " + std::to_string(header.code) + " (version " +
                                std::to_string(header.version) + "), expected " +
                                std::to_string(static_cast<std::uint16_t>(expected)));
  return header.payload_size;
}

}  // namespace letterbox::client
