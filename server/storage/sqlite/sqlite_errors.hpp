// The SQLite backend's one error translation: SQLiteCpp's exceptions become storage_error.
#pragma once

#include <SQLiteCpp/Exception.h>

#include <string>

#include "store_types.hpp"

namespace letterbox::server {

// Runs fn, translating SQLite exceptions into the storage layer's one error type.
template <typename F>
auto translate(const char* what, F&& fn) {
  try {
    return fn();
  } catch (const SQLite::Exception& e) {
    throw storage_error(std::string(what) + ": " + e.what());
  }
}

}  // namespace letterbox::server
