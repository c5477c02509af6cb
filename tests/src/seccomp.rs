//! A process without `membarrier(2)`: a seccomp filter that makes the call fail, as a
//! container runtime's default profile may. Ends in such a process cannot use the asymmetric
//! fences of `shm_core::fence` and must fall back to full barriers and bounded sleeps.

/// Makes every later `membarrier` call of this process (all its threads) fail with `ENOSYS`.
/// Irreversible. `Err` says why it could not (no seccomp here).
pub fn refuse_membarrier() -> Result<(), String> {
    // offsetof(struct seccomp_data, nr)
    const NR: u32 = 0;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let filter = [
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, NR),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_membarrier as u32,
        },
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with integer arguments only; it sets a flag of this process.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `prog` points at `filter`, both alive for the call, which copies them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &prog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(format!("seccomp: {}", std::io::Error::last_os_error()));
    }
    if r > 0 {
        return Err(format!("seccomp: thread {r} could not take the filter"));
    }
    Ok(())
}
