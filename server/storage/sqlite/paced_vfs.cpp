// The paced VFS (see paced_vfs.hpp): every call goes to the default VFS and its files; only
// xWrite on a main database file adds the pacing, and xClose its descriptor.
#include "paced_vfs.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <mutex>

#include "store_types.hpp"

namespace letterbox::server {
namespace {

constexpr const char* vfs_name = "letterbox-paced";

sqlite3_vfs* base_vfs = nullptr;  // SQLite's default, set once before ours is registered

// Our file: the default VFS's file object follows it in the same allocation (szOsFile).
struct alignas(8) paced_file {
  sqlite3_file file;  // first: SQLite sees this
  int fd;             // own descriptor of a main database file for sync_file_range, else -1
  sqlite3_int64 unsynced_from, unsynced_to;  // bytes written since the last wait

  sqlite3_file* base() { return reinterpret_cast<sqlite3_file*>(this + 1); }
  static paced_file& of(sqlite3_file* file) { return *reinterpret_cast<paced_file*>(file); }
};

sqlite3_file* base_of(sqlite3_file* file) { return paced_file::of(file).base(); }

void reset_range(paced_file& p) {
  p.unsynced_from = std::numeric_limits<sqlite3_int64>::max();
  p.unsynced_to = 0;
}

int paced_write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  auto& p = paced_file::of(file);
  const int rc = p.base()->pMethods->xWrite(p.base(), data, amount, offset);
  if (rc != SQLITE_OK || p.fd < 0) return rc;
  p.unsynced_from = std::min(p.unsynced_from, offset);
  p.unsynced_to = std::max(p.unsynced_to, offset + amount);
  if (p.unsynced_to - p.unsynced_from >= paced_write_step) {
    // Start writing the range and wait until it is written (not a durability barrier: the
    // checkpoint's own fsync still follows). Failure only costs the pacing.
    ::sync_file_range(p.fd, p.unsynced_from, p.unsynced_to - p.unsynced_from,
                      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    reset_range(p);
  }
  return rc;
}

int paced_close(sqlite3_file* file) {
  auto& p = paced_file::of(file);
  if (p.fd >= 0) ::close(p.fd);
  p.fd = -1;
  return p.base()->pMethods->xClose(p.base());
}

// Every other method of a file forwards to the default VFS's file.
const sqlite3_io_methods paced_methods = {
    3,
    paced_close,
    [](sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
      return base_of(f)->pMethods->xRead(base_of(f), out, amount, offset);
    },
    paced_write,
    [](sqlite3_file* f, sqlite3_int64 size) { return base_of(f)->pMethods->xTruncate(base_of(f), size); },
    [](sqlite3_file* f, int flags) { return base_of(f)->pMethods->xSync(base_of(f), flags); },
    [](sqlite3_file* f, sqlite3_int64* size) { return base_of(f)->pMethods->xFileSize(base_of(f), size); },
    [](sqlite3_file* f, int level) { return base_of(f)->pMethods->xLock(base_of(f), level); },
    [](sqlite3_file* f, int level) { return base_of(f)->pMethods->xUnlock(base_of(f), level); },
    [](sqlite3_file* f, int* out) { return base_of(f)->pMethods->xCheckReservedLock(base_of(f), out); },
    [](sqlite3_file* f, int op, void* arg) { return base_of(f)->pMethods->xFileControl(base_of(f), op, arg); },
    [](sqlite3_file* f) { return base_of(f)->pMethods->xSectorSize(base_of(f)); },
    [](sqlite3_file* f) { return base_of(f)->pMethods->xDeviceCharacteristics(base_of(f)); },
    [](sqlite3_file* f, int page, int page_size, int extend, void volatile** out) {
      auto* b = base_of(f);
      return b->pMethods->iVersion >= 2 ? b->pMethods->xShmMap(b, page, page_size, extend, out) : SQLITE_IOERR;
    },
    [](sqlite3_file* f, int offset, int n, int flags) {
      auto* b = base_of(f);
      return b->pMethods->iVersion >= 2 ? b->pMethods->xShmLock(b, offset, n, flags) : SQLITE_IOERR;
    },
    [](sqlite3_file* f) {
      auto* b = base_of(f);
      if (b->pMethods->iVersion >= 2) b->pMethods->xShmBarrier(b);
    },
    [](sqlite3_file* f, int delete_flag) {
      auto* b = base_of(f);
      return b->pMethods->iVersion >= 2 ? b->pMethods->xShmUnmap(b, delete_flag) : SQLITE_IOERR;
    },
    [](sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
      auto* b = base_of(f);
      if (b->pMethods->iVersion >= 3) return b->pMethods->xFetch(b, offset, amount, out);
      *out = nullptr;
      return SQLITE_OK;
    },
    [](sqlite3_file* f, sqlite3_int64 offset, void* p) {
      auto* b = base_of(f);
      return b->pMethods->iVersion >= 3 ? b->pMethods->xUnfetch(b, offset, p) : SQLITE_OK;
    },
};

int paced_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  auto& p = paced_file::of(file);
  p.file.pMethods = nullptr;  // until the default VFS opened its file: SQLite then calls no xClose
  p.fd = -1;
  reset_range(p);
  const int rc = base_vfs->xOpen(base_vfs, name, p.base(), flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  if ((flags & SQLITE_OPEN_MAIN_DB) != 0 && name != nullptr) p.fd = ::open(name, O_RDONLY | O_CLOEXEC);
  p.file.pMethods = &paced_methods;
  return SQLITE_OK;
}

sqlite3_vfs make_vfs() {
  sqlite3_vfs vfs{};
  vfs.iVersion = 3;
  vfs.szOsFile = static_cast<int>(sizeof(paced_file)) + base_vfs->szOsFile;
  vfs.mxPathname = base_vfs->mxPathname;
  vfs.zName = vfs_name;
  vfs.xOpen = paced_open;
  // Everything else is the default VFS's, called with its own object.
  vfs.xDelete = [](sqlite3_vfs*, const char* name, int sync_dir) { return base_vfs->xDelete(base_vfs, name, sync_dir); };
  vfs.xAccess = [](sqlite3_vfs*, const char* name, int flags, int* out) {
    return base_vfs->xAccess(base_vfs, name, flags, out);
  };
  vfs.xFullPathname = [](sqlite3_vfs*, const char* name, int size, char* out) {
    return base_vfs->xFullPathname(base_vfs, name, size, out);
  };
  vfs.xDlOpen = [](sqlite3_vfs*, const char* name) { return base_vfs->xDlOpen(base_vfs, name); };
  vfs.xDlError = [](sqlite3_vfs*, int size, char* out) { base_vfs->xDlError(base_vfs, size, out); };
  vfs.xDlSym = [](sqlite3_vfs*, void* handle, const char* symbol) { return base_vfs->xDlSym(base_vfs, handle, symbol); };
  vfs.xDlClose = [](sqlite3_vfs*, void* handle) { base_vfs->xDlClose(base_vfs, handle); };
  vfs.xRandomness = [](sqlite3_vfs*, int size, char* out) { return base_vfs->xRandomness(base_vfs, size, out); };
  vfs.xSleep = [](sqlite3_vfs*, int microseconds) { return base_vfs->xSleep(base_vfs, microseconds); };
  vfs.xCurrentTime = [](sqlite3_vfs*, double* out) { return base_vfs->xCurrentTime(base_vfs, out); };
  vfs.xGetLastError = [](sqlite3_vfs*, int size, char* out) { return base_vfs->xGetLastError(base_vfs, size, out); };
  vfs.xCurrentTimeInt64 = [](sqlite3_vfs*, sqlite3_int64* out) {
    if (base_vfs->iVersion >= 2 && base_vfs->xCurrentTimeInt64 != nullptr)
      return base_vfs->xCurrentTimeInt64(base_vfs, out);
    double days = 0;
    const int rc = base_vfs->xCurrentTime(base_vfs, &days);
    *out = static_cast<sqlite3_int64>(days * 86'400'000.0);
    return rc;
  };
  // No system-call overrides (xSetSystemCall and friends stay null: SQLite then refuses them).
  return vfs;
}

}  // namespace

const char* paced_vfs_name() {
  static std::once_flag once;
  static sqlite3_vfs vfs;
  std::call_once(once, [] {
    base_vfs = sqlite3_vfs_find(nullptr);
    if (base_vfs == nullptr) throw storage_error("SQLite has no default VFS");
    vfs = make_vfs();
    if (sqlite3_vfs_register(&vfs, 0) != SQLITE_OK) throw storage_error("cannot register the paced SQLite VFS");
  });
  return vfs_name;
}

}  // namespace letterbox::server
