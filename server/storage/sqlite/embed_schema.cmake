# Generates a C++ source holding every schema/NNN_*.sql file, in order, as a string literal.
# Invoked at build time: cmake -DSCHEMA_DIR=... -DOUTPUT=... -P embed_schema.cmake
file(GLOB migrations "${SCHEMA_DIR}/[0-9][0-9][0-9]_*.sql")
list(SORT migrations)
set(body "")
foreach(path IN LISTS migrations)
  file(READ "${path}" sql)
  get_filename_component(name "${path}" NAME)
  string(APPEND body "  {\"${name}\", R\"letterbox_sql(${sql})letterbox_sql\"},\n")
endforeach()
file(WRITE "${OUTPUT}.tmp"
"// Generated from schema/*.sql by server/embed_schema.cmake. Do not edit.
#include \"schema.hpp\"
namespace letterbox::server {
const std::vector<migration>& schema_migrations() {
  static const std::vector<migration> all = {
${body}  };
  return all;
}
}  // namespace letterbox::server
")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
