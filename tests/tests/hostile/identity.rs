//! A handle, a command or a cleanup acts only on the object it identified: a name or a key is a
//! pointer, and what stands there now may be someone else's.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use shm_core::{Access, Backend, CreateOptions, Error, Segment, SegmentName};
use shm_sysv::SysV;
use shm_tests::{
    Cleanup, Status, check, in_child, is_root, one_error_line, shm, shm_exists, skip, unique_name,
};

fn sysv_exists(id: i32) -> bool {
    // SAFETY: an all-zero shmid_ds is valid; IPC_STAT writes one.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) == 0 }
}

#[test]
fn a_stale_sysv_handle_never_maps_or_removes_the_segment_that_got_its_id() {
    let test = "a_stale_sysv_handle_never_maps_or_removes_the_segment_that_got_its_id";
    if !is_root() {
        return skip(
            test,
            "needs root for a private IPC namespace (kernel.shm_next_id)",
        );
    }
    let r = in_child(|| {
        // SAFETY: unshare takes a flag; this forked child is single-threaded.
        check("unshare(CLONE_NEWIPC)", unsafe {
            libc::unshare(libc::CLONE_NEWIPC)
        })?;
        let name = SegmentName::new("/stale-handle").unwrap();
        let sysv = SysV::new();
        let mut mine = sysv
            .create(&name, &CreateOptions::new(4096))
            .map_err(|e| e.to_string())?;
        let id = mine.id().as_raw();
        // Someone removes it (not attached anywhere: it is gone at once) ...
        sysv.unlink_id(shm_sysv::ShmId::from_raw(id))
            .map_err(|e| e.to_string())?;
        // ... and a stranger's segment, same key and size, gets the very same id (what a
        // churning neighbour reaches; shm_next_id makes it certain). Made in a grandchild, so
        // that its creator is another process, as a stranger's would be.
        let made = in_child(move || {
            std::fs::write("/proc/sys/kernel/shm_next_id", id.to_string())
                .map_err(|e| format!("shm_next_id: {e}"))?;
            // SAFETY: plain system call.
            let got = unsafe { libc::shmget(mine_key(), 4096, libc::IPC_CREAT | 0o600) };
            if got != id {
                return Err(format!("got id {got}, wanted {id}"));
            }
            Ok(String::new())
        });
        if made.status != Status::Exited(0) {
            return Err(format!("could not reuse the id: {made}"));
        }
        match mine.map() {
            Err(Error::Stale { .. }) => {}
            other => return Err(format!("map of a stale handle: {other:?}")),
        }
        match mine.unlink() {
            Err(Error::Stale { .. }) => {}
            other => return Err(format!("unlink of a stale handle: {other:?}")),
        }
        drop(mine);
        if !sysv_exists(id) {
            return Err("the stale handle removed the stranger's segment".into());
        }
        Ok(format!("id {id} reused; the stale handle left it alone"))
    });
    println!("{r}");
    assert_eq!(r.status, Status::Exited(0), "{r}");
}

fn mine_key() -> libc::key_t {
    shm_sysv::key_for(&SegmentName::new("/stale-handle").unwrap())
        .unwrap()
        .as_raw()
}

/// A running `shm taller server`, its stdout lines readable.
struct Server {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Server {
    fn start(backend: &str, name: &str, extra: &[&str]) -> Self {
        let mut child = shm()
            .args(["--backend", backend, "taller", "server", "--name", name])
            .args(if extra.contains(&"--rounds") {
                &[][..]
            } else {
                &["--rounds", "100000"][..]
            })
            .args(["--interval", "20ms"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let s = Self { child, lines };
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if let Ok(l) = s.lines.recv_timeout(Duration::from_millis(50)) {
                if l.starts_with("created ") {
                    return s;
                }
            }
        }
        panic!("server on {name} did not start");
    }

    fn signal_and_wait(mut self, sig: libc::c_int) -> (Option<i32>, String) {
        // SAFETY: a signal to our own child, not yet waited for.
        unsafe { libc::kill(self.child.id() as i32, sig) };
        let out = self.child.wait_with_output().unwrap();
        let _ = &mut self.lines;
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[test]
fn a_replaced_taller_server_leaves_the_new_servers_segment_alone() {
    for backend in ["posix", "sysv"] {
        let name = unique_name(&format!("replaced-{backend}"));
        let _g = Cleanup::posix(name.clone());
        let old = Server::start(backend, &name, &[]);
        let new = Server::start(backend, &name, &["--replace"]);
        let (code, err) = old.signal_and_wait(libc::SIGTERM);
        assert_eq!(code, Some(128 + libc::SIGTERM), "{err}");
        assert!(
            err.contains("left") && err.contains("alone"),
            "{backend}: {err}"
        );
        assert!(
            shm_exists(backend, &name),
            "{backend}: the old server removed the new one's segment"
        );
        let (code, err) = new.signal_and_wait(libc::SIGTERM);
        assert_eq!(code, Some(128 + libc::SIGTERM), "{err}");
        assert!(err.contains("removed"), "{err}");
        assert!(
            !shm_exists(backend, &name),
            "{backend}: the new server left its segment"
        );
    }
}

#[test]
fn a_replaced_taller_server_that_ends_its_game_leaves_the_new_one_alone() {
    for backend in ["posix", "sysv"] {
        let name = unique_name(&format!("replended-{backend}"));
        let _g = Cleanup::posix(name.clone());
        let old = Server::start(backend, &name, &["--rounds", "25"]);
        let new = Server::start(backend, &name, &["--replace"]);
        let out = old.child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert!(
            shm_exists(backend, &name),
            "{backend}: the old server's end removed the new one: {text}"
        );
        let (code, _) = new.signal_and_wait(libc::SIGINT);
        assert_eq!(code, Some(128 + libc::SIGINT));
        assert!(!shm_exists(backend, &name));
    }
}

#[test]
fn digits_name_a_key_only_with_backend_sysv() {
    // A key of our own making, in a range no hash-named segment of ours uses.
    let key = 0x5a00_0000 | (std::process::id() as i32 & 0xffff);
    // SAFETY: plain system call.
    let id = unsafe { libc::shmget(key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
    assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
    let _g = Cleanup::sysv_id(id);
    let decimal = (key as u32).to_string();
    // Without --backend, the number is a POSIX name: nothing there, and --force hides that.
    let out = shm().args(["rm", "-f", &decimal]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        sysv_exists(id),
        "`shm rm -f {decimal}` removed another program's key"
    );
    let line = one_error_line(
        "rm by digits",
        &shm().args(["info", &decimal]).output().unwrap(),
    );
    assert!(line.contains("--backend sysv"), "{line}");
    // Said explicitly, it is the key.
    let out = shm()
        .args(["--backend", "sysv", "rm", &decimal])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!sysv_exists(id));
}

#[test]
fn semaphores_and_special_files_are_not_segments() {
    let base = unique_name("special");
    let bare = base.trim_start_matches('/').to_owned();
    // A glibc named semaphore: /dev/shm/sem.NAME.
    let sem_name = std::ffi::CString::new(format!("/{bare}-sem")).unwrap();
    // SAFETY: valid NUL-terminated name; O_CREAT with mode and initial value.
    let sem = unsafe { libc::sem_open(sem_name.as_ptr(), libc::O_CREAT, 0o600, 0) };
    assert_ne!(sem, libc::SEM_FAILED);
    // SAFETY: `sem` came from sem_open.
    unsafe { libc::sem_close(sem) };
    let _sg = Cleanup::semaphore(sem_name.to_str().unwrap());
    // A directory, a FIFO and a socket, as any local user can plant them.
    let dir = format!("/dev/shm/{bare}-dir");
    let fifo = format!("/dev/shm/{bare}-fifo");
    let sock = format!("/dev/shm/{bare}-sock");
    std::fs::create_dir(&dir).unwrap();
    let cfifo = std::ffi::CString::new(fifo.as_str()).unwrap();
    // SAFETY: valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(cfifo.as_ptr(), 0o600) }, 0);
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let _c = [&dir, &fifo, &sock].map(|p| Cleanup::path(p.as_str()));
    for (what, name) in [
        ("a semaphore", format!("sem.{bare}-sem")),
        ("a directory", format!("{bare}-dir")),
        ("a FIFO", format!("{bare}-fifo")),
        ("a socket", format!("{bare}-sock")),
    ] {
        for cmd in ["info", "read", "rm"] {
            let mut c = shm();
            c.args(["--backend", "posix", cmd, &name]);
            let out = shm_tests::run_bounded(&mut c, Duration::from_secs(20));
            let line = one_error_line(&format!("{cmd} {what}"), &out);
            assert!(
                line.contains("not a shared memory object"),
                "{cmd} {what}: {line}"
            );
        }
        // The library too, and nothing was removed.
        let seg = SegmentName::new(&name).unwrap();
        assert!(matches!(
            shm_posix::Posix::new().open(&seg, Access::ReadOnly),
            Err(Error::NotSegment { .. })
        ));
    }
    assert!(std::fs::metadata(&dir).unwrap().is_dir());
    assert!(std::fs::symlink_metadata(&fifo).is_ok() && std::fs::symlink_metadata(&sock).is_ok());
    assert!(std::fs::metadata(format!("/dev/shm/sem.{bare}-sem")).is_ok());
    drop(listener);
    // list shows the semaphore for what it is, and not the others.
    let out = shm()
        .args(["--backend", "posix", "list", "--json"])
        .output()
        .unwrap();
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mine: Vec<&serde_json::Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"].as_str().is_some_and(|n| n.contains(&bare)))
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["semaphore"], true, "{mine:?}");
}

#[test]
fn a_name_that_is_not_utf8_is_listed() {
    use std::os::unix::ffi::OsStrExt;
    let bare = unique_name("latin1").trim_start_matches('/').to_owned();
    let mut bytes = bare.as_bytes().to_vec();
    bytes.extend_from_slice(b"-caf\xe9");
    let path = std::path::Path::new("/dev/shm").join(std::ffi::OsStr::from_bytes(&bytes));
    std::fs::write(&path, [0u8; 100]).unwrap();
    let _rm = Cleanup::path(path);
    let out = shm().args(["--backend", "posix", "list"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("/{bare}-caf\u{fffd}")), "{text}");
}

#[test]
fn rm_by_id_of_a_removed_segment_says_so_and_info_and_read_reach_it() {
    // SAFETY: plain system calls on a segment of our own (IPC_PRIVATE, no name reaches it).
    let id = unsafe { libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600) };
    assert!(id >= 0);
    let _g = Cleanup::sysv_id(id);
    // SAFETY: attach our own segment; detached below.
    let addr = unsafe { libc::shmat(id, std::ptr::null(), 0) };
    assert_ne!(addr as isize, -1);
    // SAFETY: the attachment holds 4096 writable bytes.
    unsafe { std::ptr::copy_nonoverlapping(b"private!".as_ptr(), addr.cast::<u8>(), 8) };
    let ids = id.to_string();
    // IPC_PRIVATE and live: info and read by id.
    let out = shm()
        .args(["info", "--id", &ids, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = shm()
        .args(["read", "--id", &ids, "--len", "8"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"private!", "{out:?}");
    // SAFETY: IPC_RMID ignores the buffer.
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    // Removed but attached (dest): rm says so, every time; info and read still reach it.
    for _ in 0..2 {
        let line = one_error_line(
            "rm --id dest",
            &shm().args(["rm", "--id", &ids]).output().unwrap(),
        );
        assert!(line.contains("already removed"), "{line}");
    }
    let info: serde_json::Value = serde_json::from_slice(
        &shm()
            .args(["info", "--id", &ids, "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(info["removed"], true, "{info}");
    let out = shm()
        .args(["read", "--id", &ids, "--len", "8"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"private!", "{out:?}");
    // SAFETY: detaching what we attached.
    unsafe { libc::shmdt(addr) };
}
