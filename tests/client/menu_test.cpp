// Tests of menu input parsing and the menu loop's handling of bad input and end of input.
#include <doctest/doctest.h>

#include <sstream>

#include "group_commands.hpp"
#include "menu.hpp"
#include "test_directory.hpp"

using namespace letterbox::client;

TEST_CASE("menu choices parse to the numbered options only") {
  CHECK(parse_menu_choice("1") == menu_option::register_user);
  CHECK(parse_menu_choice(" 50 ") == menu_option::send_file);
  CHECK(parse_menu_choice("51\r") == menu_option::request_symmetric_key);
  CHECK(parse_menu_choice("52") == menu_option::send_symmetric_key);
  CHECK(parse_menu_choice("0") == menu_option::exit_client);
  CHECK(parse_menu_choice("4") == menu_option::pull_messages);
  CHECK(!parse_menu_choice(""));
  CHECK(parse_menu_choice("6") == menu_option::show_safety_number);
  CHECK(parse_menu_choice("8") == menu_option::who_am_i);
  CHECK(!parse_menu_choice("9"));
  CHECK(parse_menu_choice("60") == menu_option::group_create);
  CHECK(parse_menu_choice("67") == menu_option::group_list);
  CHECK(parse_menu_choice("69") == menu_option::group_send_file);
  CHECK(!parse_menu_choice("70"));
  CHECK(!parse_menu_choice("53"));
  CHECK(!parse_menu_choice("-1"));
  CHECK(!parse_menu_choice("abc"));
  CHECK(!parse_menu_choice("5x"));
  CHECK(!parse_menu_choice("1 2"));
  CHECK(!parse_menu_choice("99999999999999999999"));
}

TEST_CASE("received messages print in the legacy layout") {
  std::ostringstream out;
  received_message message;
  message.sender = "alice";
  message.what = received_message::kind::text;
  message.text = "hello";
  print_message(out, message);
  message.what = received_message::kind::undecryptable;
  print_message(out, message);
  CHECK(out.str() ==
        "From: alice\nContent:\nhello\n-----<EOM>-----\n\n"
        "From: alice\nContent:\ncan't decrypt message\n-----<EOM>-----\n\n");
}

TEST_CASE("a received text cannot send escape sequences or carriage returns to the terminal") {
  std::ostringstream out;
  received_message message;
  message.sender = "mallory";
  message.what = received_message::kind::text;
  message.text = "a\x1b[2Jb\rc\nd\te\x7f\x07 Grüße \xff\xc3";
  print_message(out, message);
  CHECK(out.str() == "From: mallory\nContent:\na\\x1b[2Jb\\x0dc\nd\te\\x7f\\x07 Grüße \\xff\\xc3\n-----<EOM>-----\n\n");
}

TEST_CASE("a sender name or file path from the network is escaped on one line") {
  std::ostringstream out;
  received_message message;
  message.sender = "eve\n\x1b]0;owned\x07\xe2\x80\xae";  // newline, OSC title, U+202E
  message.what = received_message::kind::file;
  message.file_path = "/tmp/x\r\ny";
  print_message(out, message);
  CHECK(out.str() == "From: eve\\x0a\\x1b]0;owned\\x07\\u{202e}\nContent:\n/tmp/x\\x0d\\x0ay\n-----<EOM>-----\n\n");
}

TEST_CASE("menu survives unknown options and ends cleanly at end of input") {
  test_directory dir;
  client_options options;
  options.directory = dir.path;
  client_operations client(options);
  std::istringstream in("hello\n9\n\n2\n5\nbob\n");  // ends in the middle of option 5
  std::ostringstream out;
  CHECK(run_menu(client, in, out) == 0);
  const auto text = out.str();
  CHECK(text.rfind(
            "\nMessageU client at your service.\n\n"
            "1) Register\n"
            "2) Request for clients list\n"
            "3) Request for public key\n"
            "4) Request for waiting messages\n"
            "5) Send a text message\n"
            "50) Send a file\n"
            "51) Send a request for symmetric key\n"
            "52) Send your symmetric key\n"
            "6) Show the safety number of a user\n"
            "7) Accept a user's changed key\n"
            "8) Who am I\n"
            "10) Live chat with a user, or in a #group (typed lines are sent; the end of input ends it)\n"
            "60) Create a group\n"
            "61) Invite a user to a group\n"
            "62) Join a group\n"
            "63) Leave a group\n"
            "64) Kick a member (admin)\n"
            "65) Ban a user (admin)\n"
            "66) Show the members of a group\n"
            "67) List groups\n"
            "68) Send a text to a group\n"
            "69) Send a file to a group\n"
            "0) Exit client\n"
            "?\n",
            0) == 0);  // the whole menu, exactly, first thing on the screen
  CHECK(text.find("Unknown option \"hello\"") != std::string::npos);
  CHECK(text.find("Unknown option \"9\"") != std::string::npos);
  CHECK(text.find("not registered yet") != std::string::npos);  // option 2 without me.info
  CHECK(text.find("Enter message: ") != std::string::npos);
}

TEST_CASE("registering without server.info names the missing file; 50 with a missing file") {
  test_directory dir;
  client_options options;
  options.directory = dir.path;
  client_operations client(options);
  std::istringstream in("1\nalice\n50\nbob\n" + (dir.path / "missing.bin").string() + "\n0\n");
  std::ostringstream out;
  CHECK(run_menu(client, in, out) == 0);
  CHECK(out.str().find("server.info: file not found") != std::string::npos);
  CHECK(!std::filesystem::exists(dir.path / "me.info"));
  CHECK(out.str().find("Enter file path: file not found\n") != std::string::npos);
}

TEST_CASE("a group text is shown as #group <sender>: text, every part escaped") {
  received_message message;
  message.group_message = true;
  message.group = "room\x1b[2J";
  message.sender = "eve\x07";
  message.what = received_message::kind::text;
  message.text = "hi\x1b]0;owned\x07\nline 2";
  std::ostringstream out;
  print_message(out, message);
  CHECK(out.str() == "#room\\x1b[2J <eve\\x07>: hi\\x1b]0;owned\\x07\nline 2\n");
}
