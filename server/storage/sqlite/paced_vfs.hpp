// A VFS over SQLite's default one that writes a database file out to the disk as it goes:
// after every paced_write_step bytes written to it, a connection opened with this VFS waits
// until they are on the disk (sync_file_range) before it writes more. The WAL checkpointer
// uses it: a checkpoint copying hundreds of MiB would otherwise leave them all in the page
// cache for its final fsync, one burst that the writer's WAL syncs queue behind. Measured with
// a 320 MiB backlog (sqlite_store_test, "after a long reader ends"), the slowest commit while
// it was copied: 137-254 ms unpaced, 44-65 ms with 4 MiB steps, 18-23 ms with 1 MiB.
#pragma once

#include <cstdint>

namespace letterbox::server {

inline constexpr std::int64_t paced_write_step = 1 << 20;

// The name of the VFS to open a connection with (sqlite3_open_v2). Registers it (not as the
// default) on the first call. Throws storage_error if SQLite has no default VFS.
const char* paced_vfs_name();

}  // namespace letterbox::server
