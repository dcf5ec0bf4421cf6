//! Where the process's memory comes from, so that it goes back to the system after a
//! burst: `host/scaffolder/tests/http_bodies.rs` posts 16 concurrent 9 MB task bodies and
//! measures the RSS left 10 s later.
//!
//! - mimalloc is the global allocator: glibc malloc keeps freed memory in its per-thread
//!   arenas (860 MiB stayed after the burst with glibc for everything).
//! - mimalloc purges freed memory at once (`purge_delay` 0): with the default 10 ms a
//!   purge waits for the next allocation on the same thread, and the idle server kept
//!   +34 MiB instead of +16 MiB.
//! - SQLite allocates through mimalloc too. It calls C's `malloc` otherwise, and its
//!   allocations (bound copies of a 9 MB spec, the page cache of its overflow pages, the
//!   record it builds) left about 200 MiB in glibc arenas after the burst.
//! - An idle runtime thread collects the blocks other threads freed ([`thread_idle`]).
//! - No transparent huge pages: mimalloc asked for them on its arena (`MADV_HUGEPAGE`),
//!   so the few blocks touched at start-up were backed by 2 MiB pages and an idle server
//!   held 12 MiB of heap instead of 4 MiB (`cargo bench -p scaffolder --bench server`'s
//!   idle RSS). mimalloc is built without that request (`no_thp`), and where the system
//!   gives huge pages unasked (THP `always`) the process opts out (`PR_SET_THP_DISABLE`,
//!   which covers the guests' linear memories too).
//!
//! The store lets go of large specs itself (`Store::let_go_of_large_spec`). Together:
//! 332 MiB after the burst before, 113–122 MiB now, 88 MiB idle (code pages aside).

#![allow(unsafe_code)]

use std::ffi::{c_int, c_void};

use libmimalloc_sys as mi;
use libsqlite3_sys as sqlite;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (`libmimalloc-sys` has no constant for it).
const MI_OPTION_PURGE_DELAY: mi::mi_option_t = 15;

/// Sets up both; call first thing in `main`, before any SQLite connection opens. An error
/// is a warning to log: the process works, with more memory kept after bursts.
pub fn configure() -> Result<(), String> {
    // SAFETY: sets a process-wide option (an atomic store in mimalloc); no pointers.
    unsafe { mi::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    let huge_pages = no_transparent_huge_pages();
    sqlite_allocates_with_mimalloc().and(huge_pages)
}

/// Called when a runtime thread runs out of work: at most once a second, the thread's
/// mimalloc heap takes back the blocks other threads freed (a future allocates on one
/// worker and is often dropped on another; mimalloc leaves such blocks for the owning
/// thread to collect, which an idle thread never does), so their pages can be purged.
pub fn thread_idle() {
    thread_local! {
        static LAST: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
    }
    LAST.with(|last| {
        if last
            .get()
            .is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(1))
        {
            return;
        }
        last.set(Some(std::time::Instant::now()));
        // SAFETY: collects this thread's heap; no pointers.
        unsafe { mi::mi_collect(false) };
    });
}

fn no_transparent_huge_pages() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    rustix::thread::disable_transparent_huge_pages(true)
        .map_err(|e| format!("cannot opt out of transparent huge pages: {e}"))?;
    Ok(())
}

fn sqlite_allocates_with_mimalloc() -> Result<(), String> {
    let methods = sqlite::sqlite3_mem_methods {
        xMalloc: Some(sqlite_malloc),
        xFree: Some(sqlite_free),
        xRealloc: Some(sqlite_realloc),
        xSize: Some(sqlite_size),
        xRoundup: Some(sqlite_roundup),
        xInit: Some(sqlite_init),
        xShutdown: Some(sqlite_shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: SQLite copies `methods` before returning; it is not initialised yet (no
    // connection has been opened), which is when `SQLITE_CONFIG_MALLOC` may be set.
    let code = unsafe { sqlite::sqlite3_config(sqlite::SQLITE_CONFIG_MALLOC, &methods) };
    match code {
        sqlite::SQLITE_OK => Ok(()),
        code => Err(format!(
            "SQLite keeps C's malloc (sqlite3_config answered {code}): memory it frees may stay with the process"
        )),
    }
}

/// SQLite never asks for a negative size; a negative one is answered with no memory.
fn size(n: c_int) -> Option<usize> {
    usize::try_from(n).ok()
}

unsafe extern "C" fn sqlite_malloc(n: c_int) -> *mut c_void {
    match size(n) {
        // SAFETY: mimalloc's malloc; its memory is 16-byte aligned, more than SQLite's 8.
        Some(n) => unsafe { mi::mi_malloc(n) },
        None => std::ptr::null_mut(),
    }
}

unsafe extern "C" fn sqlite_free(p: *mut c_void) {
    // SAFETY: `p` came from `sqlite_malloc`/`sqlite_realloc` (or is null).
    unsafe { mi::mi_free(p) }
}

unsafe extern "C" fn sqlite_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    match size(n) {
        // SAFETY: `p` came from these functions; SQLite passes a positive size.
        Some(n) => unsafe { mi::mi_realloc(p, n) },
        None => std::ptr::null_mut(),
    }
}

unsafe extern "C" fn sqlite_size(p: *mut c_void) -> c_int {
    // SAFETY: `p` came from these functions.
    let usable = unsafe { mi::mi_usable_size(p) };
    c_int::try_from(usable).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn sqlite_roundup(n: c_int) -> c_int {
    match size(n) {
        // SAFETY: a pure size computation.
        Some(n) => c_int::try_from(unsafe { mi::mi_good_size(n) }).unwrap_or(n as c_int),
        None => n,
    }
}

unsafe extern "C" fn sqlite_init(_: *mut c_void) -> c_int {
    sqlite::SQLITE_OK
}

unsafe extern "C" fn sqlite_shutdown(_: *mut c_void) {}
