// container/: the runc and overlayfs code the builder's sandbox and the local provider share. This file:
// the seccomp profile every container (build step or instance) runs under.

/**
 * The seccomp filter of build `run` steps and instances: the syscalls Docker's default profile allows
 * (moby profiles/seccomp/default.json) for the capabilities Grail grants (`CAPS` in sandbox.ts), and
 * nothing more. Everything else fails with EPERM, as there. Kept as data so a review compares it with
 * Docker's list line by line.
 */
import { GrailError } from '../errors.js'

/** Allowed whatever the capabilities (Docker's first, unconditional group). */
const ALLOWED = `
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 clock_adjtime
clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create
epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2
execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark
fchdir fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork
fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex
futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid
geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid
getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage
getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents
io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit io_uring_enter
io_uring_register io_uring_setup ipc kill landlock_add_rule landlock_create_ruleset
landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek
lremovexattr lseek lsetxattr lstat lstat64 madvise membarrier memfd_create memfd_secret mincore mkdir
mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open
mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget
msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open
openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll
ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64
pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg
recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir
rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler
sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64
sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32
setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32
setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn
socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range
syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime
utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
`

/** Docker allows these on kernels ≥ 4.8, where ptrace can no longer be used to bypass seccomp. */
const PTRACE = ['process_vm_readv', 'process_vm_writev', 'ptrace']

/** Docker's grants for capabilities Grail gives (CAP_SYS_CHROOT) and per-architecture extras. */
const BY_CAPABILITY = ['chroot']
const BY_ARCH: Record<string, string[]> = {
  x64: ['arch_prctl', 'modify_ldt'],
  arm64: [
    'arm_fadvise64_64',
    'arm_sync_file_range',
    'sync_file_range2',
    'breakpoint',
    'cacheflush',
    'set_tls',
  ],
}

/** libseccomp architecture names: the native one first, then those its binaries may also run. */
const ARCHES: Record<string, string[]> = {
  x64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
}

/** The personality(2) values Docker allows: PER_LINUX, PER_LINUX32, UNAME26 variants, and the query. */
const PERSONALITIES = [0, 8, 131072, 131080, 4294967295]

/** clone flags that create namespaces (CLONE_NEW*): refused without CAP_SYS_ADMIN, as in Docker. */
const CLONE_NAMESPACE_FLAGS = 2114060288

const AF_VSOCK = 40
const EPERM = 1
const ENOSYS = 38

export interface SeccompRule {
  names: string[]
  action: 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO'
  errnoRet?: number
  args?: Array<{ index: number; value: number; op: 'SCMP_CMP_NE' | 'SCMP_CMP_EQ' | 'SCMP_CMP_MASKED_EQ' }>
}

/** The OCI `linux.seccomp` object for this machine's architecture (`arch` as Node names it). */
export function defaultSeccomp(arch: string = process.arch): Record<string, unknown> {
  const architectures = ARCHES[arch]
  if (!architectures) {
    throw new GrailError('UNSUPPORTED_ARCH', `this machine's architecture ${arch} has no seccomp profile`, {
      hint: 'run Grail on x64 or arm64 (the architectures its RUN sandbox and instances have a profile for)',
    })
  }
  const allow = (names: string[]): SeccompRule => ({ names, action: 'SCMP_ACT_ALLOW' })
  const syscalls: SeccompRule[] = [
    allow([...ALLOWED.trim().split(/\s+/), ...PTRACE, ...BY_CAPABILITY, ...(BY_ARCH[arch] ?? [])]),
    { ...allow(['socket']), args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_NE' }] },
    ...PERSONALITIES.map((value) => ({
      ...allow(['personality']),
      args: [{ index: 0, value, op: 'SCMP_CMP_EQ' as const }],
    })),
    // a thread or a process, never a new namespace (Docker's masked test: no CLONE_NEW* bit set)
    { ...allow(['clone']), args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, op: 'SCMP_CMP_MASKED_EQ' }] },
    // clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc fall back to clone
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
  ]
  return { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: EPERM, architectures, syscalls }
}
