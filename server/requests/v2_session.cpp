// v2 200 HELLO, 201 REGISTER, 202 AUTH (docs/PROTOCOL.md §12–§13): the connection's challenge
// and identity. Signatures are checked here, on the I/O thread, with crypto/identity.hpp; the
// storage jobs only look up and store. Any REGISTER or AUTH failure closes the connection
// after its 9000 (a new connection and HELLO give a new challenge).
#include "agreement.hpp"
#include "identity.hpp"
#include "messages_v2.hpp"
#include "request.hpp"

namespace letterbox::server {
namespace asio = boost::asio;
using namespace protocol;
using v2::reason;

namespace {

asio::awaitable<outcome> hello(request& r) {
  const auto payload = co_await read_fixed_payload(r, v2::hello_payload_size);
  const auto hello = v2::decode_hello_request(payload);
  if (!v2::supports_v2(hello))
    throw request_rejected(reason::malformed, "HELLO offers versions " + std::to_string(hello.min_version) + ".." +
                                                  std::to_string(hello.max_version) + ", not 2");
  if (r.v2->hello_done) throw request_rejected(reason::bad_state, "a second HELLO on this connection");
  r.v2->hello_done = true;
  r.v2->challenge = r.server.new_challenge();
  co_return co_await respond(r, v2::encode_hello_response({v2::protocol_version, *r.v2->challenge}));
}

// The connection's challenge, consumed; bad_state without one or once authenticated.
v2::challenge take_challenge(request& r) {
  if (r.v2->client) throw request_rejected(reason::bad_state, "the connection is authenticated already");
  if (!r.v2->challenge) throw request_rejected(reason::bad_state, "no fresh challenge (HELLO first, one REGISTER/AUTH)");
  const auto challenge = *r.v2->challenge;
  r.v2->challenge.reset();
  return challenge;
}

asio::awaitable<outcome> register_client(request& r) {
  const auto payload = co_await read_fixed_payload(r, v2::register_payload_size);
  const auto challenge = take_challenge(r);
  const auto decoded = v2::decode_register_request(payload);  // name valid and canonical
  const bytes_view name_field = bytes_view(payload).first(name_field_size);
  // Every attempt counts against the registration rate before any signature is checked: a flood
  // of REGISTERs with bad signatures costs its address its rate, not the I/O thread ~135 us each.
  if (!r.server.registrations.allow(r.connection.peer_network()))
    throw request_rejected(reason::rate_limited, "registrations from " + r.connection.peer_network().to_string() +
                                                     " exceed " + std::to_string(r.server.limits.registration_rate) +
                                                     " a minute (--registration-rate)");
  // A low-order agreement key would make every sender's X25519 all zeros (§13): refused before
  // the signatures, whoever signed it.
  if (!crypto::valid_agreement_key(decoded.agreement))
    throw request_rejected(reason::malformed, "REGISTER agreement key is of low order");
  if (!crypto::verify(decoded.identity, crypto::labels::register_proof, {challenge, decoded.identity}, decoded.proof))
    throw request_rejected(reason::authentication_failed, "REGISTER proof does not verify");
  if (!crypto::verify(decoded.identity, crypto::labels::keys, {name_field, decoded.agreement, decoded.legacy},
                      decoded.key_signature))
    throw request_rejected(reason::authentication_failed, "REGISTER key signature does not verify");
  const client_id id = crypto::derive_client_id(decoded.identity);
  auto& handler = r.server.handler;
  auto job = [&handler, id, decoded] { handler.register_v2_client(id, decoded); };
  co_await r.server.storage.run<void>(std::move(job));
  r.v2->client = id;
  co_return co_await respond(r, v2::encode_registered_response(id));
}

asio::awaitable<outcome> authenticate(request& r) {
  const auto payload = co_await read_fixed_payload(r, v2::auth_payload_size);
  const auto challenge = take_challenge(r);
  const auto decoded = v2::decode_auth_request(payload);
  // The budget of failed AUTHs (§20.9): while this address has used it, no signature is
  // checked, right or wrong (telling them apart would be the verification it bounds).
  auto& failures = r.server.auth_failures;
  const auto network = r.connection.peer_network();
  const auto check_budget = [&] {
    if (!failures.available(network))
      throw request_rejected(reason::rate_limited, "failed AUTHs from " + network.to_string() + " exceed " +
                                                       std::to_string(r.server.limits.auth_failure_rate) +
                                                       " a minute (--auth-failure-rate)");
  };
  check_budget();
  auto& handler = r.server.handler;
  auto lookup = [&handler, id = decoded.client] { return handler.identity_of(id); };
  const auto identity = co_await r.server.storage.run<std::optional<v2::identity_key>>(std::move(lookup));
  if (!identity) {
    failures.allow(network);
    throw request_rejected(reason::authentication_failed,
                           "AUTH as " + to_hex(decoded.client) + ": not a registered v2 client");
  }
  check_budget();  // again: AUTHs of other connections from there may have failed during the lookup
  if (!crypto::verify(*identity, crypto::labels::auth_proof, {challenge, decoded.client}, decoded.proof)) {
    failures.allow(network);
    throw request_rejected(reason::authentication_failed, "AUTH as " + to_hex(decoded.client) + ": proof does not verify");
  }
  r.v2->client = decoded.client;
  co_return co_await respond(r, v2::encode_authenticated_response());
}

}  // namespace

asio::awaitable<byte_buffer> read_fixed_payload(request& r, std::uint32_t expected) {
  if (r.header.payload_size != expected)
    throw request_rejected(reason::malformed, "payload size " + std::to_string(r.header.payload_size) + " instead of " +
                                                  std::to_string(expected));
  byte_buffer payload(expected);
  if (expected > 0) co_await r.read(asio::buffer(payload));
  co_return payload;
}

client_id require_authenticated(request& r) {
  if (!r.v2->client) throw request_rejected(reason::bad_state, "not authenticated (HELLO, then REGISTER or AUTH)");
  return *r.v2->client;
}

asio::awaitable<outcome> handle_v2_session_request(request& r) {
  switch (static_cast<v2::request_code>(r.header.code)) {
    case v2::request_code::hello: co_return co_await hello(r);
    case v2::request_code::register_client: r.close_after_error = true; co_return co_await register_client(r);
    default: r.close_after_error = true; co_return co_await authenticate(r);  // 202: the session dispatches 200-202 here
  }
}

}  // namespace letterbox::server
