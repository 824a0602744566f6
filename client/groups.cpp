// Groups on protocol v2 (see groups.hpp), and the receiving side of group envelopes in a PULL
// (client_operations::receive_group).
#include "groups.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>

#include "agreement.hpp"
#include "crypto.hpp"
#include "downloads.hpp"
#include "envelope_receiving.hpp"
#include "group_envelope.hpp"
#include "operation_support.hpp"
#include "terminal_text.hpp"

namespace letterbox::client {
namespace {

using kind = client_error::kind;
namespace proto = letterbox::protocol;
namespace v2 = letterbox::protocol::v2;

constexpr std::uint32_t max_group_list_payload = 16u << 20;
constexpr std::uint32_t max_members_payload = 65'536 * v2::group_member_entry_size;

using detail::discard;     // operation_support.hpp
using detail::translated;

std::optional<v2::group_id> group_from_hex(std::string_view text) {
  const auto bytes = proto::from_hex(text);
  if (!bytes || bytes->size() != v2::group_id_size) return std::nullopt;
  v2::group_id id{};
  std::copy(bytes->begin(), bytes->end(), id.begin());
  return id;
}


// groups.v2 beside me.info: "group ID in hex, space, name in hex" a line, the names of the groups
// this client has seen (GROUPS, CREATE), so that a message from a group it left is still shown
// by its name. A cache only: a missing or broken file costs names, never messages.
constexpr std::string_view groups_v2_file = "groups.v2";

std::vector<std::pair<v2::group_id, std::string>> load_group_names(const std::filesystem::path& dir) {
  std::vector<std::pair<v2::group_id, std::string>> out;
  std::ifstream in(dir / groups_v2_file);
  std::string id_hex, name_hex;
  while (in >> id_hex >> name_hex) {
    const auto id = group_from_hex(id_hex);
    if (!id || name_hex.size() % 2 != 0) continue;
    std::string name;
    bool ok = true;
    for (std::size_t i = 0; i + 1 < name_hex.size() && ok; i += 2) {
      const auto byte = std::strtol(name_hex.substr(i, 2).c_str(), nullptr, 16);
      ok = std::isxdigit(static_cast<unsigned char>(name_hex[i])) && std::isxdigit(static_cast<unsigned char>(name_hex[i + 1]));
      name.push_back(static_cast<char>(byte));
    }
    if (ok) out.emplace_back(*id, name);
  }
  return out;
}

void save_group_names(const std::filesystem::path& dir, const std::vector<std::pair<v2::group_id, std::string>>& names) {
  const auto path = dir / groups_v2_file;
  const auto tmp = dir / (std::string(groups_v2_file) + ".tmp");
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& [id, name] : names)
      out << proto::to_hex(id) << " "
          << proto::to_hex(proto::bytes_view(reinterpret_cast<const std::uint8_t*>(name.data()), name.size())) << "\n";
    if (!out) return;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
}

void remember_group(std::vector<std::pair<v2::group_id, std::string>>& names, const v2::group_id& id,
                    const std::string& name) {
  std::erase_if(names, [&](const auto& n) { return n.first == id; });
  names.emplace_back(id, name);
}

class link_sink final : public crypto::byte_sink {
 public:
  explicit link_sink(connection& link) : link_(link) {}
  void write(crypto::bytes_view bytes) override { link_.write(bytes); }

 private:
  connection& link_;
};

}  // namespace

// ------------------------------------------------------------------------- requests

proto::byte_buffer group_operations::request(std::uint8_t code, proto::bytes_view payload, std::uint16_t expected,
                                             std::uint32_t max_response) {
  client_.me();
  if (!client_.speaks_v2()) throw client_error(kind::invalid_input, "groups need protocol v2 (a v2 server and identity)");
  auto& link = client_.session();
  try {
    return link.exchange(static_cast<v2::request_code>(code), payload, static_cast<v2::response_code>(expected),
                         max_response);
  } catch (...) {
    client_.drop_session();  // broken, out of step, or closed by the server: the next request reconnects
    throw;
  }
}

v2::group_id group_operations::resolve(std::string_view group) {
  return translated([&] {
    if (!group.empty() && group.front() == '#') group.remove_prefix(1);
    if (auto id = group_from_hex(group)) return *id;
    std::vector<group_info> found;
    for (auto& g : list())
      if (g.name == group) found.push_back(g);
    if (found.empty()) {  // a group we left or were removed from: the names seen before (groups.v2)
      std::vector<v2::group_id> seen;
      for (const auto& [id, name] : client_.group_names_)
        if (name == group) seen.push_back(id);
      if (seen.size() == 1) return seen.front();
      throw client_error(kind::invalid_input, "no group named \"" + std::string(group) + "\" is listed for you");
    }
    if (found.size() > 1) {
      // Prefer the one we are a member of, when only one is.
      const auto members = std::count_if(found.begin(), found.end(), [](const group_info& g) { return g.member; });
      if (members == 1)
        return std::find_if(found.begin(), found.end(), [](const group_info& g) { return g.member; })->id;
      throw client_error(kind::invalid_input, "several groups are named \"" + std::string(group) +
                                                  "\": give its ID (client group list)");
    }
    return found.front().id;
  });
}

v2::group_id group_operations::create(const std::string& name, bool open) {
  return translated([&] {
    proto::byte_buffer payload;
    try {
      payload = v2::encode_group_create_request({name, open});
    } catch (const proto::protocol_error& e) {
      throw client_error(kind::invalid_input, std::string("invalid group name: ") + e.what());
    }
    const auto id = v2::decode_group_created_payload(
        request(static_cast<std::uint8_t>(v2::group_request_code::create), payload,
                static_cast<std::uint16_t>(v2::group_response_code::created), v2::group_id_size));
    if (client_.group_names_.empty()) client_.group_names_ = load_group_names(client_.options_.directory);
    remember_group(client_.group_names_, id, name);
    save_group_names(client_.options_.directory, client_.group_names_);
    return id;
  });
}

void group_operations::target_request(std::uint8_t code, std::uint16_t expected, std::string_view group,
                                      const std::string& user) {
  translated([&] {
    const auto id = resolve(group);
    const auto target = client_.resolve(user).id;
    request(code, v2::encode_group_target_request({id, target}), expected, 0);
  });
}

void group_operations::invite(std::string_view group, const std::string& user) {
  target_request(static_cast<std::uint8_t>(v2::group_request_code::invite),
                 static_cast<std::uint16_t>(v2::group_response_code::invited), group, user);
}
void group_operations::kick(std::string_view group, const std::string& user) {
  target_request(static_cast<std::uint8_t>(v2::group_request_code::kick),
                 static_cast<std::uint16_t>(v2::group_response_code::kicked), group, user);
}
void group_operations::ban(std::string_view group, const std::string& user) {
  target_request(static_cast<std::uint8_t>(v2::group_request_code::ban),
                 static_cast<std::uint16_t>(v2::group_response_code::banned), group, user);
}
void group_operations::unban(std::string_view group, const std::string& user) {
  target_request(static_cast<std::uint8_t>(v2::group_request_code::unban),
                 static_cast<std::uint16_t>(v2::group_response_code::unbanned), group, user);
}
void group_operations::handover(std::string_view group, const std::string& user) {
  target_request(static_cast<std::uint8_t>(v2::group_request_code::handover),
                 static_cast<std::uint16_t>(v2::group_response_code::handed_over), group, user);
}

void group_operations::join(std::string_view group) {
  translated([&] {
    const auto id = resolve(group);
    request(static_cast<std::uint8_t>(v2::group_request_code::join), v2::encode_group_payload(id),
            static_cast<std::uint16_t>(v2::group_response_code::joined), 0);
  });
}

void group_operations::leave(std::string_view group) {
  translated([&] {
    const auto id = resolve(group);
    request(static_cast<std::uint8_t>(v2::group_request_code::leave), v2::encode_group_payload(id),
            static_cast<std::uint16_t>(v2::group_response_code::left), 0);
  });
}

std::vector<group_member_info> group_operations::members(std::string_view group) {
  return translated([&] {
    const auto id = resolve(group);
    const auto reply = request(static_cast<std::uint8_t>(v2::group_request_code::members), v2::encode_group_payload(id),
                               static_cast<std::uint16_t>(v2::group_response_code::members), max_members_payload);
    std::vector<group_member_info> out;
    const auto entries = v2::decode_group_members_payload(reply);
    bool unknown = false;
    for (const auto& e : entries)
      if (e.id != client_.me().id && client_.display_name(e.id) == proto::to_hex(e.id)) unknown = true;
    if (unknown) {
      try {
        client_.list_clients();  // learn the names
      } catch (const client_error&) {
      }
    }
    for (const auto& e : entries)
      out.push_back({e.id, e.id == client_.me().id ? client_.my_name() : client_.display_name(e.id),
                     (e.flags & v2::member_flag_admin) != 0});
    return out;
  });
}

std::vector<group_info> group_operations::list() {
  return translated([&] {
    const auto reply = request(static_cast<std::uint8_t>(v2::group_request_code::list), {},
                               static_cast<std::uint16_t>(v2::group_response_code::list), max_group_list_payload);
    std::vector<group_info> out;
    if (client_.group_names_.empty()) client_.group_names_ = load_group_names(client_.options_.directory);
    for (const auto& e : v2::decode_group_list_payload(reply)) {
      out.push_back({e.id, e.name, (e.flags & v2::group_entry_open) != 0, (e.flags & v2::group_entry_member) != 0,
                     (e.flags & v2::group_entry_admin) != 0, (e.flags & v2::group_entry_invited) != 0, e.members});
      remember_group(client_.group_names_, e.id, e.name);
    }
    save_group_names(client_.options_.directory, client_.group_names_);
    return out;
  });
}

// ------------------------------------------------------------------------- sending

std::vector<crypto::group_recipient> group_operations::recipients(const v2::group_id& group) {
  const auto reply = request(static_cast<std::uint8_t>(v2::group_request_code::members), v2::encode_group_payload(group),
                             static_cast<std::uint16_t>(v2::group_response_code::members), max_members_payload);
  const auto entries = v2::decode_group_members_payload(reply);
  const auto mine = client_.me().id;
  if (std::none_of(entries.begin(), entries.end(), [&](const auto& e) { return e.id == mine; }))
    throw client_error(kind::invalid_input, "you are not a member of this group");
  if (entries.size() > crypto::group_max_members)
    throw client_error(kind::invalid_input, "the group has " + std::to_string(entries.size()) +
                                                " members; a group envelope is sealed for at most 1,024");
  std::vector<crypto::group_recipient> out;
  for (const auto& e : entries) {
    if (e.id == mine) {
      out.push_back({mine, crypto::agreement_public_of(client_.me_v2_->agreement)});
      continue;
    }
    const auto& checked = client_.checked_this_run_;
    const auto* pinned = client_.keys_.find_pin(e.id);
    if (!(pinned && std::find(checked.begin(), checked.end(), e.id) != checked.end())) {
      auto& link = client_.session();
      std::optional<pin> keys;
      try {
        keys = client_.checked_keys(link, e.id, {});  // against the pin; pinned on first use
      } catch (const client_error&) {
        throw;
      } catch (...) {
        client_.drop_session();
        throw;
      }
      if (!keys)
        throw client_error(kind::key_refused, "member " + proto::to_hex(e.id) + " is a legacy client: refused");
      client_.checked_this_run_.push_back(e.id);
      pinned = client_.keys_.find_pin(e.id);
      if (!pinned) throw client_error(kind::key_refused, "the keys of member " + proto::to_hex(e.id) + " were not pinned");
    }
    if (!crypto::valid_agreement_key(pinned->agreement_key))
      throw client_error(kind::key_refused, "member " + pinned->name + " has a low-order agreement key: refused");
    out.push_back({e.id, pinned->agreement_key});
  }
  return out;
}

group_send_result group_operations::deliver(const v2::group_id& group, std::uint8_t type, std::uint64_t content_size,
                                            const std::function<void(connection&)>& write_content) {
  if (content_size > v2::max_group_content_size)
    throw client_error(kind::invalid_input, "content of " + std::to_string(content_size) +
                                                " bytes is too large for a group message (limit about 4 GiB)");
  const auto prefix = proto::encode_send_message_prefix({group, type, static_cast<std::uint32_t>(content_size)});
  auto& link = client_.session();
  try {
    link.send_front(static_cast<v2::request_code>(v2::group_request_code::send), proto::send_message_prefix_size + content_size,
                    prefix);
    try {
      write_content(link.link());
    } catch (const connection_error&) {
      link.expect(static_cast<v2::response_code>(v2::group_response_code::sent));  // refused early (9000, close)?
      throw;
    }
    const auto sent = v2::decode_group_sent_payload(link.link().read_payload(
        link.expect(static_cast<v2::response_code>(v2::group_response_code::sent)), v2::group_sent_response_size));
    if (sent.group != group) throw proto::protocol_error("GROUP SEND answered for another group");
    return {sent.group, sent.delivered, sent.skipped, 0};
  } catch (...) {
    client_.drop_session();
    throw;
  }
}

group_send_result group_operations::send_text(std::string_view group, std::string_view text) {
  return translated([&] {
    if (text.size() > max_text_in_memory)
      throw client_error(kind::invalid_input, "text is too long (receivers show at most " +
                                                  std::to_string(max_text_in_memory >> 20) + " MiB): send it as a file");
    const auto id = resolve(group);
    const auto members = recipients(id);
    std::vector<std::uint8_t> sealed;
    try {
      sealed = crypto::seal_group_text(client_.me_v2_->identity, client_.me().id, id, members, text);
    } catch (const std::invalid_argument& e) {
      throw client_error(kind::invalid_input, std::string("this text cannot be sent: ") + e.what());
    }
    auto result = deliver(id, v2::group_text_type, sealed.size(), [&](connection& link) { link.write(sealed); });
    result.sealed_for = members.size();
    return result;
  });
}

void group_operations::chat(std::string_view group, std::istream& input, const chat_events& events) {
  translated([&] {
    if (!client_.speaks_v2()) throw client_error(kind::invalid_input, "chat needs a protocol v2 server");
    const auto id = resolve(group);
    const auto listed = list();
    const auto it = std::find_if(listed.begin(), listed.end(), [&](const group_info& g) { return g.id == id; });
    if (it == listed.end() || !it->member)
      throw client_error(kind::invalid_input, "you are not a member of group " + std::string(group) +
                                                  (it != listed.end() && (it->open || it->invited) ? ": join it first" : ""));
    const auto by_id = proto::to_hex(id);  // every line to this group, whatever names change meanwhile
    client_.live_chat(input, events.on_subscribed, events.on_message, [&](const std::string& line) {
      const auto sent = send_text(by_id, line);
      if (events.on_sent) events.on_sent(sent, line);
    }, events.on_send_failed);
  });
}

group_send_result group_operations::send_file(std::string_view group, const std::filesystem::path& file,
                                              const progress_callback& progress) {
  return translated([&] {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) throw client_error(kind::file_not_found, "file not found");
    std::ifstream in(file, std::ios::binary);
    if (!in) throw client_error(kind::file_not_found, "file not found");
    const std::uint64_t size = std::filesystem::file_size(file);
    const auto id = resolve(group);
    const auto members = recipients(id);
    crypto::group_seal_request request;
    request.sender = client_.me().id;
    request.group = id;
    request.members = members;
    request.type = crypto::group_envelope_type::file;
    request.name = std::string(utf8_prefix(file.filename().string(), crypto::max_name_size));
    request.body_size = size;
    std::optional<crypto::group_envelope_writer> writer;
    try {
      writer.emplace(client_.me_v2_->identity, request);
    } catch (const std::invalid_argument& e) {
      throw client_error(kind::invalid_input, std::string("this file cannot be sent: ") + e.what());
    }
    proto::byte_buffer chunk(file_chunk_size);
    auto result = deliver(id, v2::group_file_type, writer->content_size(), [&](connection& link) {
      link_sink sink(link);
      writer->begin(sink);
      for (std::uint64_t done = 0; done < size;) {
        const auto want = static_cast<std::streamsize>(std::min<std::uint64_t>(chunk.size(), size - done));
        in.read(reinterpret_cast<char*>(chunk.data()), want);
        if (in.gcount() != want)
          throw client_error(kind::local_file, file.string() + ": file changed while it was being sent");
        writer->seal(std::span(chunk.data(), static_cast<std::size_t>(want)), sink);
        done += static_cast<std::uint64_t>(want);
        if (progress) progress(done, size);
      }
      writer->finish(sink);
    });
    result.sealed_for = members.size();
    return result;
  });
}

// ------------------------------------------------------------------------- receiving

received_message client_operations::receive_group(connection& link, const v2::pulled_message_header& header,
                                                  const progress_callback& progress, std::optional<replay_id>& replay,
                                                  bool& retry_later) {
  received_message result;
  result.from = header.from;
  result.message_id = header.message_id;
  result.content_size = header.content_size;
  result.what = received_message::kind::unverified;
  result.group_message = true;
  const bool is_file = header.type == v2::group_file_type;
  std::uint64_t left = header.content_size;
  const auto unverified = [&](std::string why) {
    discard(link, left);
    result.sender = display_name(header.from);
    result.problem = std::move(why);
    return result;
  };
  if (!(header.flags & v2::message_flag_group) || !v2::is_group_message_type(header.type) || header.content_size < 16) {
    result.group.assign(1, '?');  // not = "?": g++ 12 -O3 -Wrestrict false positive
    return unverified("a malformed group entry (flag bit 1, type 18/19 and a group ID go together)");
  }
  link.read(result.group_id);
  left -= v2::group_id_size;
  if (group_names_.empty()) group_names_ = load_group_names(options_.directory);
  const auto name_of = [&]() -> std::string {
    for (const auto& [id, name] : group_names_)
      if (id == result.group_id) return name;
    return proto::to_hex(result.group_id);
  };
  result.group = name_of();
  if (header.flags & v2::message_flag_legacy_sender) return unverified("a group envelope marked as from a legacy sender");
  if (!is_file && left > crypto::group_envelope_content_size(crypto::group_max_members, max_text_in_memory)) {
    discard(link, left);
    result.sender = display_name(header.from);
    result.what = received_message::kind::too_large;
    return result;
  }
  std::string why;
  const auto sender = sender_keys(header.from, why, retry_later);
  if (!sender) return unverified(why);
  result.sender = sender->name;
  if (result.group == proto::to_hex(result.group_id)) {
    try {  // the main connection is busy with the PULL answer: GROUPS on the lookup connection
      if (!lookup_session_) {
        auto fresh = std::make_unique<v2_session>(read_server_info(options_.directory), options_.io_timeout);
        if (fresh->hello() != v2_session::hello_result::v2) throw connection_error("the server stopped speaking v2");
        fresh->authenticate(me().id, me_v2_->identity);
        lookup_session_ = std::move(fresh);
      }
      const auto reply = lookup_session_->exchange(static_cast<v2::request_code>(v2::group_request_code::list), {},
                                                   static_cast<v2::response_code>(v2::group_response_code::list),
                                                   max_group_list_payload);
      for (const auto& e : v2::decode_group_list_payload(reply)) remember_group(group_names_, e.id, e.name);
      save_group_names(options_.directory, group_names_);
      result.group = name_of();
    } catch (const std::exception&) {
      lookup_session_.reset();
    }
  }

  crypto::envelope_keys keys{sender->identity_key, me_v2_->agreement};
  detail::envelope_receiver<crypto::group_envelope_handler, crypto::group_envelope_header> receiver(
      keys, is_file, download_directory(), *seen_);
  crypto::group_envelope_expectations expect;
  expect.type = is_file ? crypto::group_envelope_type::file : crypto::group_envelope_type::text;
  expect.sender = header.from;
  expect.self = me().id;
  expect.group = result.group_id;
  expect.content_size = left;
  crypto::group_envelope_reader reader(expect, receiver);
  detail::read_envelope(link, left, reader, receiver, is_file, progress, result, replay);
  return result;
}

}  // namespace letterbox::client
