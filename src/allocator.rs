//! The system allocator's one setting we change: large blocks get mappings of their own.

/// Blocks of this many bytes or more are mapped on their own and unmapped when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MAPPED_FROM_BYTES: libc::c_int = 256 * 1024;

/// Has glibc's malloc map every block of 256 KiB or more on its own, so that freeing it gives the
/// memory back. Left alone, glibc raises that threshold to the largest block freed so far (up to
/// 32 MiB); the megabytes of a bulk upload's body, readings and answer then come from the heap of
/// the thread that asked, and stay there, fragmented, after the request. Measured in
/// bench/README.md ("Devices and durability"). An operator's own `MALLOC_MMAP_THRESHOLD_` wins;
/// other platforms and allocators are left as they are. Call it once, before the work starts.
pub fn return_large_blocks_when_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only changes an allocator tunable, which glibc allows at any time and
        // from any thread; it touches no memory of ours. Refused (0), glibc keeps its default.
        #[allow(unsafe_code)]
        let _accepted = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MAPPED_FROM_BYTES) };
    }
}
