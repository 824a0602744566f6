// The group rules of request_handler (docs/PROTOCOL.md Part IV §21–§22): membership, admin,
// invitations, bans and the limits, over mailbox_store's group cache. Storage worker's thread.
#include <algorithm>

#include "handler.hpp"
#include "random_bytes.hpp"

namespace letterbox::server {
namespace {
using namespace protocol;
using v2::reason;

std::string hex(const std::array<std::uint8_t, 16>& id) { return to_hex(id); }
}  // namespace

const mailbox_store::group_state& request_handler::require_group(const v2::group_id& group) const {
  const auto* state = store_.group(group);
  if (state == nullptr) throw request_rejected(reason::unknown_group, "no group " + hex(group));
  return *state;
}

const mailbox_store::group_state& request_handler::require_admin(const client_id& requester,
                                                                 const v2::group_id& group) const {
  const auto& state = require_group(group);
  if (state.admin != requester)
    throw request_rejected(reason::not_admin, hex(requester) + " is not the admin of group " + hex(group));
  return state;
}

v2::group_id request_handler::create_group(const client_id& requester, const v2::group_create_request& request) {
  require_registered(requester);
  if (store_.groups_of(requester) >= limits_.max_groups_per_user)
    throw request_rejected(reason::too_many_groups, hex(requester) + " is in " + std::to_string(store_.groups_of(requester)) +
                                                        " groups (--max-groups-per-user)");
  v2::group_id id{};
  do fill_random(id);
  while (store_.group(id) != nullptr);
  store_.create_group(id, request.name, requester, request.open);
  return id;
}

void request_handler::invite_to_group(const client_id& requester, const v2::group_target_request& request) {
  require_registered(requester);
  const auto& group = require_admin(requester, request.group);
  if (!store_.client_exists(request.client))
    throw request_rejected(reason::unknown_client, "client " + hex(request.client) + " is not registered");
  if (!store_.is_v2_client(request.client))
    throw request_rejected(reason::type_not_accepted, "client " + hex(request.client) + " is a legacy client");
  if (group.is_banned(request.client))
    throw request_rejected(reason::banned, hex(request.client) + " is banned from group " + hex(request.group));
  if (group.is_member(request.client) || group.is_invited(request.client)) return;  // nothing changes
  store_.invite_to_group(request.group, request.client);
}

void request_handler::join_group(const client_id& requester, const v2::group_id& id) {
  require_registered(requester);
  const auto& group = require_group(id);
  if (group.is_member(requester)) return;
  if (group.is_banned(requester)) throw request_rejected(reason::banned, hex(requester) + " is banned from group " + hex(id));
  if (!group.open && !group.is_invited(requester))
    throw request_rejected(reason::not_invited, hex(requester) + " is not invited to closed group " + hex(id));
  if (group.members.size() >= limits_.max_group_members)
    throw request_rejected(reason::group_full, "group " + hex(id) + " has " + std::to_string(group.members.size()) +
                                                   " members (--max-group-members)");
  if (store_.groups_of(requester) >= limits_.max_groups_per_user)
    throw request_rejected(reason::too_many_groups, hex(requester) + " is in " + std::to_string(store_.groups_of(requester)) +
                                                        " groups (--max-groups-per-user)");
  store_.add_group_member(id, requester);
}

void request_handler::leave(const v2::group_id& id, const client_id& client) {
  const auto& group = require_group(id);
  const bool was_admin = group.admin == client;
  store_.remove_from_group(id, client);
  const auto& after = *store_.group(id);
  if (after.members.empty()) {
    store_.delete_group(id);  // the last member left
  } else if (was_admin) {
    store_.set_group_admin(id, after.members.front());  // the member who joined earliest
  }
}

void request_handler::leave_group(const client_id& requester, const v2::group_id& id) {
  require_registered(requester);
  if (!require_group(id).is_member(requester))
    throw request_rejected(reason::not_a_member, hex(requester) + " is not a member of group " + hex(id));
  leave(id, requester);
}

void request_handler::kick_from_group(const client_id& requester, const v2::group_target_request& request) {
  require_registered(requester);
  const auto& group = require_admin(requester, request.group);
  if (request.client == requester) throw request_rejected(reason::malformed, "the admin cannot kick itself (LEAVE)");
  if (!group.is_member(request.client) && !group.is_invited(request.client))
    throw request_rejected(reason::not_a_member, hex(request.client) + " is not a member of group " + hex(request.group));
  store_.remove_from_group(request.group, request.client);
}

void request_handler::ban_from_group(const client_id& requester, const v2::group_target_request& request) {
  require_registered(requester);
  require_admin(requester, request.group);
  if (request.client == requester) throw request_rejected(reason::malformed, "the admin cannot ban itself (LEAVE)");
  if (!store_.client_exists(request.client))
    throw request_rejected(reason::unknown_client, "client " + hex(request.client) + " is not registered");
  store_.ban_from_group(request.group, request.client);
}

void request_handler::unban_from_group(const client_id& requester, const v2::group_target_request& request) {
  require_registered(requester);
  const auto& group = require_admin(requester, request.group);
  if (group.is_banned(request.client)) store_.unban_from_group(request.group, request.client);
}

void request_handler::hand_over_group(const client_id& requester, const v2::group_target_request& request) {
  require_registered(requester);
  const auto& group = require_admin(requester, request.group);
  if (request.client == requester) throw request_rejected(reason::malformed, "the admin hands the group over to itself");
  if (!group.is_member(request.client))
    throw request_rejected(reason::not_a_member, hex(request.client) + " is not a member of group " + hex(request.group));
  store_.set_group_admin(request.group, request.client);
}

std::vector<v2::group_member_entry> request_handler::group_members(const client_id& requester, const v2::group_id& id) {
  require_registered(requester);
  const auto& group = require_group(id);
  if (!group.is_member(requester))
    throw request_rejected(reason::not_a_member, hex(requester) + " is not a member of group " + hex(id));
  std::vector<v2::group_member_entry> members;
  members.reserve(group.members.size());
  for (const auto& member : group.members)
    members.push_back({member, member == group.admin ? v2::member_flag_admin : std::uint8_t{0}});
  return members;
}

std::vector<v2::group_entry> request_handler::groups_for(const client_id& requester) {
  require_registered(requester);
  std::vector<v2::group_entry> result;
  for (const auto& [id, group] : store_.groups()) {
    const bool member = group->is_member(requester), invited = group->is_invited(requester);
    if (!member && !invited && !group->open) continue;
    std::uint8_t flags = 0;
    if (group->open) flags |= v2::group_entry_open;
    if (member) flags |= v2::group_entry_member;
    if (group->admin == requester) flags |= v2::group_entry_admin;
    if (invited) flags |= v2::group_entry_invited;
    result.push_back({id, group->name, flags, static_cast<std::uint32_t>(group->members.size())});
  }
  return result;
}

void request_handler::check_group_send(const client_id& sender, const v2::group_id& id) {
  require_registered(sender);
  if (!require_group(id).is_member(sender))
    throw request_rejected(reason::not_a_member, hex(sender) + " is not a member of group " + hex(id));
}

v2::group_sent request_handler::store_group_message(const client_id& sender, const send_message_prefix& prefix,
                                                    byte_buffer stored_content, std::string content_file) {
  check_group_send(sender, prefix.to);
  const std::uint64_t stored_size = v2::group_id_size + std::uint64_t{prefix.content_size};
  if (content_file.empty() && stored_content.size() != stored_size)
    throw request_rejected("content size does not match the content received");
  const auto& group = *store_.group(prefix.to);
  v2::group_sent sent{prefix.to, 0, 0};
  std::vector<client_id> recipients;
  recipients.reserve(group.members.size());
  for (const auto& member : group.members) {
    if (member == sender) continue;
    const auto usage = store_.usage_of(member);
    if (usage.messages >= limits_.max_mailbox_messages || usage.bytes + stored_size > limits_.max_mailbox_bytes ||
        !store_.has_message_ids_left(member)) {
      ++sent.skipped;  // a full mailbox (or one that used every message ID) does not stop the group
      continue;
    }
    recipients.push_back(member);
  }
  store_.add_group_message(prefix.to, sender, prefix.type, static_cast<std::uint32_t>(stored_size), stored_content,
                           content_file, recipients);
  sent.delivered = static_cast<std::uint32_t>(recipients.size());
  return sent;
}

}  // namespace letterbox::server
