"""Put the current (freshly forked, single-threaded) process into a sandbox, then drop root.

``enter(box)`` is called by the trusted grading process in a child it has just forked, before any
learner code is imported. On Linux as root it uses the kernel's namespaces directly (through
libc: Python 3.11 has no ``os.unshare``), the way bubblewrap does:

- new mount, pid, ipc and uts namespaces (the network namespace is the grading process's own,
  where only the forwarded mail sink and warehouse answer);
- a filesystem view made of a small tmpfs root with read-only binds of the interpreter, the
  venv and the system's ``/usr``, the submission and the exercise's data, and writable binds of
  the sandbox's scratch folders only; a fresh ``/proc``, a minimal ``/dev``, a private ``/tmp``;
- a second fork, so that the learner's code runs as pid 1 of its namespace: when it ends, or
  when its parent is killed (``PR_SET_PDEATHSIG``), every process it started ends with it;
- a throwaway uid and gid with no supplementary groups, ``no_new_privs``, resource limits, an
  allow-listed environment and no file descriptor but the ones named.

Where that is not possible (not root, macOS, a kernel that refuses), ``available()`` says why and
the caller decides: a learner's own ``make grade`` grades anyway and says "not isolated";
class grading refuses unless told ``--no-sandbox``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1

# Host files a Python program needs to start and to tell the time; everything else of /etc stays
# out of sight.
ETC_FILES = ("ld.so.cache", "localtime", "timezone", "mime.types", "nsswitch.conf")
DEV_NODES = ("null", "zero", "full", "random", "urandom")

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int
    memory_bytes: int
    file_bytes: int
    processes: int = 256
    open_files: int = 1024


@dataclass(frozen=True)
class Box:
    """What one sandboxed process may see and do."""

    root: str                     # an empty host folder; the view is mounted there, privately
    uid: int                      # throwaway uid (and gid) the learner's code runs as
    binds: tuple[tuple[str, str, bool], ...]  # (host path, path in the view, writable)
    env: dict[str, str]
    cwd: str
    limits: Limits
    isolated: bool = True
    keep_fds: tuple[int, ...] = field(default=())


def available() -> str | None:
    """None when this machine can sandbox learner code; else the reason it cannot."""
    if sys.platform != "linux":
        return f"learner code cannot be isolated on {sys.platform} (Linux namespaces are needed)"
    if os.geteuid() != 0:
        return "the grader is not running as root, so it cannot create namespaces for learner code"
    return None


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {target}")


def prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), "prctl")


def loopback_up() -> None:
    """Bring up ``lo`` in a fresh network namespace (what ``ip link set lo up`` does)."""
    import fcntl
    import socket
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def own_network() -> None:
    """Give the calling thread (and the processes it forks later) a network of its own."""
    unshare(CLONE_NEWNET)
    loopback_up()


def set_limits(limits: Limits) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))


def close_fds(keep: set[int]) -> None:
    """Close every inherited file descriptor but ``keep``: the learner gets no handle of ours."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 4096))
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


_prepared: set[str] = set()


def prepare(box: Box) -> bool:
    """Build ``box``'s view once, in a mount namespace of the calling process's own, so that each
    sandbox then only mounts its ``/proc`` and enters it. Must run before the process starts a
    thread (the kernel refuses a new mount namespace to a process whose threads share it); returns
    False when it could not, and each sandbox builds the view itself then."""
    if not box.isolated or box.root in _prepared:
        return box.root in _prepared
    try:
        unshare(CLONE_NEWNS)
    except OSError:
        return False
    _make_view(box, with_proc=False)
    _prepared.add(box.root)
    return True


def enter(box: Box) -> None:
    """Become the sandboxed process ``box`` describes. Returns in the sandbox, never as root."""
    keep = {0, 1, 2, *box.keep_fds}
    if box.isolated:
        unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS)
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # we die with the grading process
        pid = os.fork()  # the child is pid 1 of the new pid namespace
        if pid:
            _stand_by(pid)
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # and the learner's code dies with us
        if box.root in _prepared:
            mount("proc", f"{box.root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            _check(_libc.sethostname(b"grader", 6), "sethostname")
            _enter_root(box.root)
        else:
            _make_view(box)
        os.setgroups([])
        os.setresgid(box.uid, box.uid, box.uid)
        os.setresuid(box.uid, box.uid, box.uid)
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # a change of uid clears it
    set_limits(box.limits)
    if box.isolated:
        resource.setrlimit(resource.RLIMIT_NPROC, (box.limits.processes, box.limits.processes))
    close_fds(keep)
    os.environ.clear()
    os.environ.update(box.env)
    os.chdir(box.cwd)


def _stand_by(pid: int) -> None:
    """The parent of the namespace's pid 1: hold nothing, wait, exit as it exited."""
    close_fds(set())
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            os._exit(70)
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


def _make_view(box: Box, with_proc: bool = True) -> None:
    root = box.root
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=0755")
    for name in ("bin", "lib", "lib64", "sbin", "lib32", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            os.symlink(os.readlink(host), f"{root}/{name}")
        elif host.is_dir():
            _bind(str(host), f"{root}/{name}", writable=False)
    _bind("/usr", f"{root}/usr", writable=False)
    os.makedirs(f"{root}/etc")
    for name in ETC_FILES:
        host = Path("/etc") / name
        if host.exists():
            _bind(str(host.resolve()), f"{root}/etc/{name}", writable=False)
    Path(f"{root}/etc/passwd").write_text(
        f"root:x:0:0:root:/root:/usr/sbin/nologin\nlearner:x:{box.uid}:{box.uid}:learner:"
        f"{box.env.get('HOME', '/')}:/usr/sbin/nologin\n")
    Path(f"{root}/etc/group").write_text(f"root:x:0:\nlearner:x:{box.uid}:\n")
    Path(f"{root}/etc/hosts").write_text("127.0.0.1 localhost\n127.0.1.1 grader\n::1 localhost\n")
    Path(f"{root}/etc/hostname").write_text("grader\n")
    os.makedirs(f"{root}/dev")
    mount("tmpfs", f"{root}/dev", "tmpfs", MS_NOSUID, "size=64k,mode=0755")
    for name in DEV_NODES:
        _bind(f"/dev/{name}", f"{root}/dev/{name}", writable=True)
    os.makedirs(f"{root}/dev/shm")
    mount("tmpfs", f"{root}/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    os.makedirs(f"{root}/proc")
    if with_proc:  # a /proc shows the processes of the pid namespace it is mounted from
        mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(f"{root}/tmp")
    mount("tmpfs", f"{root}/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=256m,mode=1777")
    for host, inside, writable in box.binds:
        _bind(host, f"{root}{inside}", writable=writable)
    mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    if with_proc:
        _check(_libc.sethostname(b"grader", 6), "sethostname")
        _enter_root(root)


def _enter_root(root: str) -> None:
    os.chdir(root)
    os.chroot(".")
    os.chdir("/")


def _bind(source: str, target: str, writable: bool) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            open(target, "w").close()  # noqa: SIM115 - a mount point
    mount(source, target, None, MS_BIND | MS_REC)
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | (0 if writable else MS_RDONLY)
    try:
        mount(None, target, None, flags | (0 if source.startswith("/dev/") else MS_NODEV))
    except OSError as exc:
        if exc.errno != errno.EPERM:
            raise
        mount(None, target, None, flags)  # the source's own locked flags differ: keep them
