// Groups on protocol v2 (docs/PROTOCOL.md Part IV, §16a): the group requests 220-230 and group
// envelopes (types 18/19), over client_operations' authenticated session and keyring. No
// terminal I/O. Every operation throws client_error and nothing else.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "group_envelope.hpp"
#include "operations.hpp"

namespace letterbox::client {

struct group_info {
  protocol::v2::group_id id{};
  std::string name;
  bool open = false, member = false, admin = false, invited = false;
  std::uint32_t members = 0;
};

struct group_member_info {
  protocol::client_id id{};
  std::string name;  // as known (keyring, pins, LIST), else the ID in hex
  bool admin = false;
};

struct group_send_result {
  protocol::v2::group_id group{};
  std::uint32_t delivered = 0, skipped = 0;
  std::size_t sealed_for = 0;  // members the content key was wrapped for (ourselves included)
};

class group_operations {
 public:
  explicit group_operations(client_operations& client) : client_(client) {}

  // A group argument: its ID in hex (32 digits), or a name (an optional leading '#' is dropped)
  // that exactly one group listed by GROUPS has. Throws invalid_input when none or several.
  protocol::v2::group_id resolve(std::string_view group);

  protocol::v2::group_id create(const std::string& name, bool open);
  void invite(std::string_view group, const std::string& user);
  void join(std::string_view group);
  void leave(std::string_view group);
  void kick(std::string_view group, const std::string& user);
  void ban(std::string_view group, const std::string& user);
  void unban(std::string_view group, const std::string& user);
  void handover(std::string_view group, const std::string& user);
  std::vector<group_member_info> members(std::string_view group);
  std::vector<group_info> list();

  // MEMBERS, every other member's keys checked and pinned (as for a direct peer; a changed key
  // refuses the send: key_refused), one group envelope sealed for all of them, GROUP SEND.
  group_send_result send_text(std::string_view group, std::string_view text);
  group_send_result send_file(std::string_view group, const std::filesystem::path& file,
                              const progress_callback& progress = {});
  // Live chat in a group we are a member of (client chat '#GROUP'): as client_operations::chat,
  // each line of input sent to the group as send_text does (on_sent after the 2030); every
  // message pushed to us is shown, the group's and any other. Refused (invalid_input) when we
  // are not a member.
  struct chat_events {
    std::function<void()> on_subscribed;
    message_callback on_message;
    std::function<void(const group_send_result& sent, const std::string& line)> on_sent;
    std::function<void(const std::string& line, const client_error& error)> on_send_failed;
  };
  void chat(std::string_view group, std::istream& input, const chat_events& events);

 private:
  protocol::byte_buffer request(std::uint8_t code, protocol::bytes_view payload, std::uint16_t expected,
                                std::uint32_t max_response);
  void target_request(std::uint8_t code, std::uint16_t expected, std::string_view group, const std::string& user);
  std::vector<crypto::group_recipient> recipients(const protocol::v2::group_id& group);
  group_send_result deliver(const protocol::v2::group_id& group, std::uint8_t type, std::uint64_t content_size,
                            const std::function<void(connection&)>& write_content);

  client_operations& client_;
};

}  // namespace letterbox::client
