// Entry point of the Letterbox console client: `client` runs the menu, `client test` the self-test.
#include <csignal>
#include <iostream>

#include <CLI/CLI.hpp>

#include "menu.hpp"
#include "self_test.hpp"

int main(int argc, char** argv) {
  namespace lb = letterbox::client;
  std::signal(SIGPIPE, SIG_IGN);  // a closed socket is an error to report, not a reason to die

  CLI::App app{"Letterbox client: end-to-end encrypted messages and files through a Letterbox server.\n"
               "Without a subcommand it runs the numbered menu on stdin/stdout."};
  std::string directory = ".";
  int timeout_seconds = static_cast<int>(lb::default_io_timeout.count());
  app.add_option("--dir", directory, "Directory holding server.info, me.info and keyring.info")
      ->capture_default_str();
  app.add_option("--timeout", timeout_seconds, "Seconds any single network read/write may take")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  auto* test = app.add_subcommand("test", "Self-test against the server in server.info, with throwaway identities");
  std::uint64_t file_mib = 64;
  test->add_option("--file-size-mib", file_mib, "Size of the file transfer check in MiB")
      ->check(CLI::Range(1, 4000))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    if (*test) {
      lb::self_test_options options;
      options.config_directory = directory;
      options.file_size = file_mib << 20;
      options.io_timeout = std::chrono::seconds(timeout_seconds);
      return lb::run_self_test(options, std::cout);
    }
    lb::client_options options;
    options.directory = directory;
    options.io_timeout = std::chrono::seconds(timeout_seconds);
    lb::client_operations client(options);
    return lb::run_menu(client, std::cin, std::cout);
  } catch (const std::exception& e) {  // client_error from start-up, or anything unforeseen
    std::cerr << "client: " << e.what() << "\n";
    return 1;
  }
}
