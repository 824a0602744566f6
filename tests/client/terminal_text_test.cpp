// Tests of the output hygiene (terminal_text.hpp) and of received file names (downloads.hpp).
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <fstream>

#include "client_files.hpp"
#include "downloads.hpp"
#include "terminal_text.hpp"
#include "test_directory.hpp"

using namespace letterbox::client;

TEST_CASE("escape_for_terminal: printable UTF-8 is kept, controls and bad bytes become visible escapes") {
  CHECK(escape_for_terminal("plain ascii") == "plain ascii");
  CHECK(escape_for_terminal("Grüße, 世界 🙂") == "Grüße, 世界 🙂");
  CHECK(escape_for_terminal("") == "");
  CHECK(escape_for_terminal("\x1b[31mred") == "\\x1b[31mred");
  using namespace std::string_view_literals;
  CHECK(escape_for_terminal("a\rb\bc\0d"sv) == "a\\x0db\\x08c\\x00d");
  CHECK(escape_for_terminal("x\x7fy") == "x\\x7fy");
  CHECK(escape_for_terminal("back\\slash") == "back\\\\slash");  // an escape always means one was made
  // newline and tab: escaped on one-line fields, kept in texts
  CHECK(escape_for_terminal("a\nb\tc") == "a\\x0ab\\x09c");
  CHECK(escape_for_terminal("a\nb\tc\r", line_breaks::keep) == "a\nb\tc\\x0d");
  // C1 controls (U+009B is a one-byte CSI on some terminals) and bidi overrides/isolates
  CHECK(escape_for_terminal("\xc2\x9b" "2J") == "\\u{009b}2J");
  CHECK(escape_for_terminal("abc\xe2\x80\xae" "def") == "abc\\u{202e}def");
  CHECK(escape_for_terminal("\xe2\x81\xa6x") == "\\u{2066}x");
  // invalid UTF-8: lone continuation, truncated sequence, overlong, surrogate, above U+10FFFF
  CHECK(escape_for_terminal("\x80") == "\\x80");
  CHECK(escape_for_terminal("ok\xe4\xb8") == "ok\\xe4\\xb8");
  CHECK(escape_for_terminal("\xc0\xaf") == "\\xc0\\xaf");
  CHECK(escape_for_terminal("\xed\xa0\x80") == "\\xed\\xa0\\x80");
  CHECK(escape_for_terminal("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");
  CHECK(escape_for_terminal("\xffé") == "\\xffé");  // resynchronises on the next character
  CHECK(is_valid_utf8("Grüße 🙂"));
  CHECK(!is_valid_utf8("\xc3"));
  CHECK(!is_valid_utf8("\xed\xbf\xbf"));
}

TEST_CASE("escaped output never contains a control byte or invalid UTF-8, for every byte pair") {
  for (int a = 0; a < 256; ++a)
    for (int b = 0; b < 256; b += 3) {
      const std::string in{static_cast<char>(a), static_cast<char>(b), 'z'};
      const auto out = escape_for_terminal(in);
      CHECK(is_valid_utf8(out));
      for (unsigned char c : out) CHECK((c >= 0x20 && c != 0x7f));
    }
}

TEST_CASE("safe_file_name: a base name, never a path, no hidden or control characters") {
  CHECK(safe_file_name("report.pdf") == "report.pdf");
  CHECK(safe_file_name("Grüße 世界.txt") == "Grüße 世界.txt");
  CHECK(safe_file_name("../../etc/passwd") == "passwd");
  CHECK(safe_file_name("..\\..\\boot.ini") == "boot.ini");
  CHECK(safe_file_name("/abs/path/") == "received-file");
  CHECK(safe_file_name("..") == "_.");
  CHECK(safe_file_name(".") == "_");
  CHECK(safe_file_name(".bashrc") == "_bashrc");
  CHECK(safe_file_name("") == "received-file");
  CHECK(safe_file_name("", "fallback.bin") == "fallback.bin");
  CHECK(safe_file_name("a\nb\x1b[2J\x7f.txt") == "a_b_[2J_.txt");
  CHECK(safe_file_name("evil\xe2\x80\xaetxt.exe") == "evil_txt.exe");
  CHECK(safe_file_name("bad\xff\xc3.bin") == "bad__.bin");
  const auto long_name = safe_file_name(std::string(150, 'a') + std::string(60, '\xc3') );
  CHECK(long_name.size() <= max_download_name);
  std::string many;
  for (int i = 0; i < 150; ++i) many += "é";  // 300 bytes
  const auto cut = safe_file_name(many);
  CHECK(cut.size() == max_download_name);
  CHECK(is_valid_utf8(cut));
}

TEST_CASE("download_file: .part while writing, never overwrites, numbered names, mode 0600") {
  test_directory dir;
  const auto downloads = dir.path / "downloads";
  prepare_download_directory(downloads);
  struct stat info {};
  REQUIRE(::stat(downloads.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0700);
  std::ofstream(downloads / "report.pdf") << "an earlier file";
  {
    download_file file(downloads, "report.pdf");
    CHECK(file.partial_path() == downloads / "report (1).pdf.part");
    CHECK(std::filesystem::exists(file.partial_path()));
    const std::string body = "new body";
    file.write(std::span(reinterpret_cast<const std::uint8_t*>(body.data()), body.size()));
    // someone takes "report (1).pdf" meanwhile: publishing moves on to (2)
    std::ofstream(downloads / "report (1).pdf") << "raced";
    const auto final_path = file.publish();
    CHECK(final_path == downloads / "report (2).pdf");
    CHECK(!std::filesystem::exists(downloads / "report (2).pdf.part"));
    REQUIRE(::stat(final_path.c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == 0600);
  }
  std::ifstream earlier(downloads / "report.pdf");
  std::string text;
  std::getline(earlier, text);
  CHECK(text == "an earlier file");
  {
    download_file abandoned(downloads, "noext");
    CHECK(abandoned.partial_path() == downloads / "noext.part");
  }  // not published: the .part file goes
  CHECK(!std::filesystem::exists(downloads / "noext.part"));
  CHECK(!std::filesystem::exists(downloads / "noext"));
}

TEST_CASE("prepare_download_directory refuses a directory others can read, and a file") {
  test_directory dir;
  const auto open_dir = dir.path / "shared";
  std::filesystem::create_directory(open_dir);
  std::filesystem::permissions(open_dir, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                             std::filesystem::perms::group_exec,
                               std::filesystem::perm_options::replace);
  CHECK_THROWS_WITH_AS(prepare_download_directory(open_dir), doctest::Contains("open to other users"), config_error);
  std::ofstream(dir.path / "plain") << "x";
  CHECK_THROWS_AS(prepare_download_directory(dir.path / "plain"), config_error);
}
