// v2 220..230: groups (docs/PROTOCOL.md Part IV). Each request checks the authentication first
// (bad_state, before any payload byte), then its payload size (malformed), then runs one
// storage job on request_handler's group rules (group_handler.cpp), whose changes are
// committed before the answer. GROUP SEND (230) reads the prefix of SEND and goes the path of
// receive_and_store_group (send_message.cpp): the content stored once for every member.
#include "messages_v2.hpp"
#include "request.hpp"
#include "responses.hpp"

namespace letterbox::server {
namespace asio = boost::asio;
using namespace protocol;
using v2::reason;
using code = v2::group_request_code;

namespace {

asio::awaitable<outcome> group_send(request& r, const client_id& sender) {
  if (r.header.payload_size < v2::group_send_prefix_size)
    throw request_rejected(reason::malformed, "group send payload shorter than its 21-byte prefix");
  std::array<std::uint8_t, v2::group_send_prefix_size> prefix_bytes;
  co_await r.read(asio::buffer(prefix_bytes));
  const auto prefix = v2::decode_send_message_prefix(prefix_bytes);  // `to` is the group
  v2::validate_send_framing(prefix, r.header.payload_size);          // protocol_error: malformed
  if (!v2::is_group_message_type(prefix.type))
    throw request_rejected(reason::type_not_accepted, "group message type " + std::to_string(prefix.type) + " is not 18 or 19");
  if (prefix.content_size > std::min(r.server.limits.max_message_size, v2::max_group_content_size))
    throw request_rejected(reason::too_large, "group content of " + std::to_string(prefix.content_size) +
                                                  " bytes exceeds --max-message-size or one 2006 entry");
  co_return co_await receive_and_store_group(r, sender, prefix);
}

template <typename Job>
asio::awaitable<outcome> run_and_answer_empty(request& r, Job job, v2::group_response_code answer) {
  co_await r.server.storage.run<void>(std::move(job));  // committed
  co_return co_await respond(r, v2::encode_group_empty_response(answer));
}

}  // namespace

asio::awaitable<outcome> handle_v2_group_request(request& r) {
  const client_id requester = require_authenticated(r);  // before any payload byte (§12)
  const auto request_code = static_cast<code>(r.header.code);
  if (request_code == code::send) co_return co_await group_send(r, requester);
  const auto size = v2::group_fixed_payload_size(r.header.code);
  if (!size) throw request_rejected(reason::malformed, "unknown group request code " + std::to_string(r.header.code));
  const auto payload = co_await read_fixed_payload(r, *size);
  auto& handler = r.server.handler;
  auto& storage = r.server.storage;
  switch (request_code) {
    case code::create: {
      const auto decoded = v2::decode_group_create_request(payload);  // protocol_error: malformed
      auto job = [&handler, requester, decoded] { return handler.create_group(requester, decoded); };
      const auto id = co_await storage.run<v2::group_id>(std::move(job));
      co_return co_await respond(r, v2::encode_group_created_response(id));
    }
    case code::join:
    case code::leave: {
      const auto group = v2::decode_group_payload(payload);
      if (request_code == code::join)
        co_return co_await run_and_answer_empty(r, [&handler, requester, group] { handler.join_group(requester, group); },
                                                v2::group_response_code::joined);
      co_return co_await run_and_answer_empty(r, [&handler, requester, group] { handler.leave_group(requester, group); },
                                              v2::group_response_code::left);
    }
    case code::members: {
      const auto group = v2::decode_group_payload(payload);
      auto job = [&handler, requester, group] { return handler.group_members(requester, group); };
      const auto members = co_await storage.run<std::vector<v2::group_member_entry>>(std::move(job));
      co_return co_await respond(r, v2::encode_group_members_response(members));
    }
    case code::list: {
      auto job = [&handler, requester] { return handler.groups_for(requester); };
      const auto groups = co_await storage.run<std::vector<v2::group_entry>>(std::move(job));
      co_return co_await respond(r, v2::encode_group_list_response(groups));
    }
    case code::invite:
    case code::kick:
    case code::ban:
    case code::unban:
    case code::handover: {
      const auto target = v2::decode_group_target_request(payload);
      switch (request_code) {
        case code::invite:
          co_return co_await run_and_answer_empty(
              r, [&handler, requester, target] { handler.invite_to_group(requester, target); }, v2::group_response_code::invited);
        case code::kick:
          co_return co_await run_and_answer_empty(
              r, [&handler, requester, target] { handler.kick_from_group(requester, target); }, v2::group_response_code::kicked);
        case code::ban:
          co_return co_await run_and_answer_empty(
              r, [&handler, requester, target] { handler.ban_from_group(requester, target); }, v2::group_response_code::banned);
        case code::unban:
          co_return co_await run_and_answer_empty(
              r, [&handler, requester, target] { handler.unban_from_group(requester, target); },
              v2::group_response_code::unbanned);
        default:
          co_return co_await run_and_answer_empty(
              r, [&handler, requester, target] { handler.hand_over_group(requester, target); },
              v2::group_response_code::handed_over);
      }
    }
    case code::send: break;
  }
  throw request_rejected(reason::malformed, "unknown group request code " + std::to_string(r.header.code));
}

}  // namespace letterbox::server
