// The SQL migrations of server.db, embedded at build time from schema/NNN_*.sql.
// Migration i (1-based) moves a database from PRAGMA user_version i-1 to i.
#pragma once

#include <string_view>
#include <vector>

namespace letterbox::server {

struct migration {
  std::string_view file_name;
  std::string_view sql;
};

// All migrations, ordered by their number.
const std::vector<migration>& schema_migrations();

}  // namespace letterbox::server
