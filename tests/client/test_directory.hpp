// A fresh temporary directory for one test, removed with everything in it afterwards.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>

struct test_directory {
  std::filesystem::path path;
  test_directory() {
    std::string pattern = (std::filesystem::temp_directory_path() / "letterbox-client-test-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("cannot create " + pattern);
    path = pattern;
  }
  ~test_directory() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  test_directory(const test_directory&) = delete;
  test_directory& operator=(const test_directory&) = delete;
};
