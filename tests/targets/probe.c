// An unmodified program for the end-to-end tests: one action per invocation, chosen by argv[1].
// Each prints one result line, "ok ..." or "err <errno>", and exits 0, so the tests judge what
// happened from outside. Built by the test helpers both dynamically and statically.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <linux/filter.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static int report_fd(int fd) {
    if (fd < 0) { printf("err %d\n", errno); return 1; }
    char buf[4096]; ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n < 0) { printf("err read %d\n", errno); return 1; }
    buf[n] = 0;
    while (n > 0 && buf[n - 1] == '\n') buf[--n] = 0;
    printf("ok %s\n", buf);
    close(fd);
    return 0;
}

static int result(long r) {
    if (r < 0) printf("err %d\n", errno); else printf("ok %ld\n", r);
    return 0;
}

struct stall { const char *fifo; };
static void *open_fifo(void *arg) {
    struct stall *s = arg;
    open(s->fifo, O_RDONLY); // blocks: nobody ever writes
    return NULL;
}

static const char *thread_path;
static int thread_iters;
static void *open_many(void *arg) {
    long ok = 0;
    for (int i = 0; i < thread_iters; i++) {
        int fd = open(thread_path, O_RDONLY);
        if (fd >= 0) { ok++; close(fd); }
    }
    return (void *)ok;
}

static volatile int racing = 1;
static char race_buf[256];
static void *flip_path(void *arg) {
    const char **paths = arg; int i = 0;
    while (racing) { strcpy(race_buf, paths[i++ & 1]); }
    return NULL;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) return 2;
    const char *c = argv[1];
    const char *a = argc > 2 ? argv[2] : "";
    const char *b = argc > 3 ? argv[3] : "";
    if (!strcmp(c, "read")) return report_fd(open(a, O_RDONLY));
    if (!strcmp(c, "read-ppid")) {
        char path[64]; snprintf(path, sizeof path, "/proc/%d/%s", getppid(), a);
        return report_fd(open(path, O_RDONLY));
    }
    if (!strcmp(c, "page-edge")) {
        // The path's NUL is the last byte before an inaccessible page: it must still be read.
        long pg = sysconf(_SC_PAGESIZE);
        char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        mprotect(m + pg, pg, PROT_NONE);
        size_t len = strlen(a) + 1;
        memcpy(m + pg - len, a, len);
        return report_fd(open(m + pg - len, O_RDONLY));
    }
    if (!strcmp(c, "page-nonul")) {
        // No NUL before an inaccessible page: EFAULT, and the broker carries on.
        long pg = sysconf(_SC_PAGESIZE);
        char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        mprotect(m + pg, pg, PROT_NONE);
        memset(m, '/', pg);
        int r1 = open(m + pg - 100, O_RDONLY), e1 = errno;
        int r2 = open((char *)8, O_RDONLY), e2 = errno;
        printf("ok %d %d %d %d\n", r1, e1, r2, e2);
        return report_fd(open(a, O_RDONLY));
    }
    if (!strcmp(c, "reopen")) {
        // Reopen an own descriptor through /proc/self/fd and /dev/fd with more and with the
        // same access: A is a read-only grant, B a file in a write grant.
        int r = open(a, O_RDONLY), w = open(b, O_WRONLY | O_APPEND);
        if (r < 0 || w < 0) return result(-1);
        char p1[64], p2[64];
        snprintf(p1, sizeof p1, "/proc/self/fd/%d", r);
        snprintf(p2, sizeof p2, "/dev/fd/%d", w);
        int up = open(p1, O_RDWR), e1 = errno;
        int ow = open(p2, O_WRONLY), e2 = errno;
        int same = open(p1, O_RDONLY), ap = open(p2, O_WRONLY | O_APPEND);
        char buf[64] = {0}; read(same, buf, sizeof buf - 1);
        buf[strcspn(buf, "\n")] = 0;
        printf("ok %d/%d %d/%d %s %d\n", up, e1, ow, e2, buf, ap >= 0);
        return 0;
    }
    if (!strcmp(c, "read-raw")) return report_fd(syscall(SYS_open, a, O_RDONLY));
    if (!strcmp(c, "write")) {
        int fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) return result(-1);
        return result(write(fd, b, strlen(b)));
    }
    if (!strcmp(c, "append")) {
        int fd = open(a, O_WRONLY | O_APPEND);
        if (fd < 0) return result(-1);
        return result(write(fd, b, strlen(b)));
    }
    if (!strcmp(c, "openat")) {
        int d = open(a, O_RDONLY | O_DIRECTORY);
        if (d < 0) return result(-1);
        return report_fd(openat(d, b, O_RDONLY));
    }
    if (!strcmp(c, "chdir-read")) {
        if (chdir(a) < 0) return result(-1);
        return report_fd(open(b, O_RDONLY));
    }
    if (!strcmp(c, "fchdir-read")) {
        int d = open(a, O_RDONLY | O_DIRECTORY);
        if (d < 0 || fchdir(d) < 0) return result(-1);
        return report_fd(open(b, O_RDONLY));
    }
    if (!strcmp(c, "openat2")) {
        struct open_how how = { .flags = O_RDONLY, .resolve = strtoull(b, 0, 0) };
        return report_fd(syscall(SYS_openat2, AT_FDCWD, a, &how, sizeof how));
    }
    if (!strcmp(c, "openat2-big")) {
        char big[64] = {0}; struct open_how *how = (void *)big; how->flags = O_RDONLY;
        big[40] = 1; // non-zero beyond the known struct: must be E2BIG
        return report_fd(syscall(SYS_openat2, AT_FDCWD, a, big, sizeof big));
    }
    if (!strcmp(c, "open-flags")) return report_fd(syscall(SYS_openat, AT_FDCWD, a, strtol(b, 0, 0)));
    if (!strcmp(c, "cloexec")) {
        int x = open(a, O_RDONLY | O_CLOEXEC), y = open(a, O_RDONLY);
        if (x < 0 || y < 0) return result(-1);
        printf("ok %d %d\n", !!(fcntl(x, F_GETFD) & FD_CLOEXEC), !!(fcntl(y, F_GETFD) & FD_CLOEXEC));
        return 0;
    }
    if (!strcmp(c, "nonblock")) {
        int y = open(a, O_RDONLY);
        if (y < 0) return result(-1);
        printf("ok %d\n", !!(fcntl(y, F_GETFL) & O_NONBLOCK));
        return 0;
    }
    if (!strcmp(c, "fds")) {
        for (int fd = 3; fd < 1024; fd++) {
            if (fcntl(fd, F_GETFD) < 0) continue;
            struct stat st; fstat(fd, &st);
            printf("fd %d mode %o\n", fd, st.st_mode & S_IFMT);
        }
        printf("ok env %s\n", getenv("BROKER_FD") ? getenv("BROKER_FD") : "unset");
        return 0;
    }
    if (!strcmp(c, "stat")) { struct stat st; return result(stat(a, &st) < 0 ? -1 : (long)st.st_size); }
    if (!strcmp(c, "lstat")) { struct stat st; return result(lstat(a, &st) < 0 ? -1 : (long)(st.st_mode & S_IFMT)); }
    if (!strcmp(c, "access")) return result(access(a, strtol(b, 0, 0)));
    if (!strcmp(c, "readlink")) {
        char buf[256]; ssize_t n = readlink(a, buf, sizeof buf - 1);
        if (n < 0) return result(-1);
        buf[n] = 0; printf("ok %s\n", buf); return 0;
    }
    if (!strcmp(c, "mkdir")) return result(mkdir(a, 0755));
    if (!strcmp(c, "umask-create")) {
        // The target's own umask applies to what the broker creates for it.
        umask(077);
        int fd = open(a, O_WRONLY | O_CREAT, 0666);
        if (fd < 0 || mkdir(b, 0777) < 0) return result(-1);
        struct stat f, d; stat(a, &f); stat(b, &d);
        printf("ok %o %o\n", f.st_mode & 0777, d.st_mode & 0777);
        return 0;
    }
    if (!strcmp(c, "unlink")) return result(unlink(a));
    if (!strcmp(c, "rmdir")) return result(rmdir(a));
    if (!strcmp(c, "rename")) return result(rename(a, b));
    if (!strcmp(c, "link")) return result(link(a, b));
    if (!strcmp(c, "symlink")) return result(symlink(a, b));
    if (!strcmp(c, "chmod")) return result(chmod(a, 0777));
    if (!strcmp(c, "fchmod")) {
        int fd = open(a, O_RDONLY);
        if (fd < 0) return result(-1);
        return result(fchmod(fd, 0777));
    }
    if (!strcmp(c, "futimens")) {
        int fd = open(a, O_RDONLY);
        if (fd < 0) return result(-1);
        struct timespec ts[2] = {{1, 0}, {1, 0}};
        return result(futimens(fd, ts));
    }
    if (!strcmp(c, "fifo-read")) return report_fd(open(a, O_RDONLY));
    if (!strcmp(c, "fifo-write")) {
        int fd = open(a, O_WRONLY);
        if (fd < 0) return result(-1);
        return result(write(fd, b, strlen(b)));
    }
    if (!strcmp(c, "fifo-stall")) {
        // One thread blocks forever opening a FIFO; the main thread must still be served.
        static struct stall s; s.fifo = a;
        pthread_t t; pthread_create(&t, NULL, open_fifo, &s);
        usleep(200 * 1000);
        int r = report_fd(open(b, O_RDONLY));
        fflush(stdout);
        _exit(r); // leave with the other thread still waiting
    }
    if (!strcmp(c, "threads")) {
        thread_path = a; int n = atoi(b); thread_iters = argc > 4 ? atoi(argv[4]) : 50;
        pthread_t t[64]; long total = 0;
        for (int i = 0; i < n && i < 64; i++) pthread_create(&t[i], NULL, open_many, NULL);
        for (int i = 0; i < n && i < 64; i++) { void *r; pthread_join(t[i], &r); total += (long)r; }
        printf("ok %ld\n", total);
        return 0;
    }
    if (!strcmp(c, "flood")) {
        // Many requests of every kind, allowed and refused, from several threads.
        thread_path = a; thread_iters = atoi(b);
        pthread_t t[8];
        for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, open_many, NULL);
        long refused = 0;
        for (int i = 0; i < thread_iters; i++) {
            struct stat st;
            if (open(argv[4], O_RDONLY) < 0) refused++;
            if (stat(argv[4], &st) < 0) refused++;
            if (open("/proc/self/environ", O_RDONLY) < 0) refused++;
            if (syscall(SYS_openat, AT_FDCWD, (char *)1, O_RDONLY) < 0) refused++;
        }
        long total = 0;
        for (int i = 0; i < 8; i++) { void *r; pthread_join(t[i], &r); total += (long)r; }
        printf("ok %ld %ld\n", total, refused);
        return 0;
    }
    if (!strcmp(c, "fifo-flood")) {
        // More blocking FIFO opens than the broker keeps waiters for: the rest get EAGAIN.
        static struct stall s; s.fifo = a;
        int n = atoi(b); pthread_t t;
        for (int i = 0; i < n; i++) pthread_create(&t, NULL, open_fifo, &s);
        usleep(500 * 1000);
        int eagain = 0;
        for (int i = 0; i < 8; i++) { int fd = open(a, O_RDONLY | O_NONBLOCK); if (fd >= 0) close(fd); }
        errno = 0; if (open(a, O_RDONLY) < 0 && errno == EAGAIN) eagain = 1;
        printf("ok %d\n", eagain);
        fflush(stdout);
        _exit(0);
    }
    if (!strcmp(c, "loop-read")) {
        // Read PATH N times; count successes and reads that saw a token.
        int n = atoi(b), ok = 0, leaked = 0;
        for (int i = 0; i < n; i++) {
            int fd = open(a, O_RDONLY);
            if (fd < 0) continue;
            char buf[256] = {0}; read(fd, buf, sizeof buf - 1); close(fd); ok++;
            if (strstr(buf, "TOKEN")) leaked++;
        }
        printf("ok %d leaked %d\n", ok, leaked);
        return 0;
    }
    if (!strcmp(c, "burst-then-sleep")) {
        // Open+close PATH N times as fast as possible, say so, then sleep 3 s.
        int n = atoi(b), ok = 0;
        for (int i = 0; i < n; i++) {
            int fd = open(a, O_RDONLY);
            if (fd >= 0) { close(fd); ok++; }
        }
        printf("burst done %d\n", ok);
        fflush(stdout);
        sleep(3);
        return 0;
    }
    if (!strcmp(c, "race")) {
        // Another thread rewrites the path buffer between allowed and secret while we open it.
        const char *paths[2] = {a, b};
        strcpy(race_buf, a);
        pthread_t t; pthread_create(&t, NULL, flip_path, paths);
        int leaked = 0, ok = 0;
        for (int i = 0; i < 2000; i++) {
            int fd = open(race_buf, O_RDONLY);
            if (fd < 0) continue;
            char buf[256] = {0}; read(fd, buf, sizeof buf - 1); close(fd); ok++;
            if (strstr(buf, "TOKEN")) leaked++;
        }
        racing = 0; pthread_join(t, NULL);
        printf("%s opened %d leaked %d\n", leaked ? "leak" : "ok", ok, leaked);
        return 0;
    }
    if (!strcmp(c, "fork-read")) {
        pid_t p = fork();
        if (p == 0) { report_fd(open(a, O_RDONLY)); _exit(0); }
        int st; waitpid(p, &st, 0);
        return 0;
    }
    if (!strcmp(c, "nofile")) {
        // Fill the descriptor table, then ask for one more: EMFILE, and the broker survives.
        struct rlimit rl = {16, 16}; setrlimit(RLIMIT_NOFILE, &rl);
        int last = 0;
        for (int i = 0; i < 32; i++) { int fd = open(a, O_RDONLY); if (fd < 0) { last = errno; break; } }
        printf("%s %d\n", last == EMFILE ? "ok emfile" : "err", last);
        for (int fd = 4; fd < 16; fd++) close(fd);
        return report_fd(open(a, O_RDONLY));
    }
    if (!strcmp(c, "io_uring")) { char p[120] = {0}; return result(syscall(SYS_io_uring_setup, 4, p)); }
    if (!strcmp(c, "int80")) {
        long r; __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory"); // i386 getpid
        printf("survived %ld\n", r); return 0;
    }
    if (!strcmp(c, "x32")) { printf("survived %ld\n", syscall(0x40000000L | 39)); return 0; }
    if (!strcmp(c, "ptrace")) return result(ptrace(PTRACE_ATTACH, getppid(), 0, 0));
    if (!strcmp(c, "vm-read")) {
        char buf[8]; struct iovec l = {buf, 8}, r = {(void *)0x400000, 8};
        return result(process_vm_readv(getppid(), &l, 1, &r, 1, 0));
    }
    if (!strcmp(c, "vm-write")) {
        char buf[8] = {0}; struct iovec l = {buf, 8}, r = {(void *)0x400000, 8};
        return result(process_vm_writev(getppid(), &l, 1, &r, 1, 0));
    }
    if (!strcmp(c, "tty-inject")) {
        // On an inherited terminal: is fd 0 a tty, and do TIOCSTI and TIOCLINUX get through?
        char ch = 'x', sub = 6;
        int tty = isatty(0);
        long sti = syscall(SYS_ioctl, 0, TIOCSTI, &ch); int e1 = errno;
        long lin = syscall(SYS_ioctl, 0, TIOCLINUX, &sub); int e2 = errno;
        printf("ok tty=%d sti=%ld/%d linux=%ld/%d\n", tty, sti, e1, lin, e2);
        return 0;
    }
    if (!strcmp(c, "kill-parent")) { long r = kill(getppid(), SIGKILL); usleep(100000); return result(r); }
    if (!strcmp(c, "tiocsti")) { char ch = 'x'; return result(syscall(SYS_ioctl, 0, TIOCSTI | (1UL << 32), &ch)); }
    if (!strcmp(c, "socket")) return result(socket(AF_INET, SOCK_STREAM, 0));
    if (!strcmp(c, "socket-unix")) return result(socket(AF_UNIX, SOCK_STREAM, 0));
    if (!strcmp(c, "socketpair")) { int sv[2]; return result(socketpair(AF_UNIX, SOCK_STREAM, 0, sv)); }
    if (!strcmp(c, "unshare")) return result(unshare(CLONE_NEWUSER));
    if (!strcmp(c, "clone-ns")) return result(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
    if (!strcmp(c, "clone3")) { char args[88] = {0}; return result(syscall(SYS_clone3, args, sizeof args)); }
    if (!strcmp(c, "seccomp")) {
        struct sock_filter f[] = {{BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW}};
        struct sock_fprog prog = {1, f};
        return result(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog));
    }
    if (!strcmp(c, "ioctl-prctl-ok")) {
        int p[2]; pipe(p); write(p[1], "abc", 3);
        int avail = -1; char name[16] = {0};
        if (ioctl(p[0], FIONREAD, &avail) < 0) return result(-1);
        if (prctl(PR_SET_NAME, "renamed") < 0 || prctl(PR_GET_NAME, name) < 0) return result(-1);
        printf("ok %d %s\n", avail, name);
        return 0;
    }
    if (!strcmp(c, "prctl-seccomp")) {
        struct sock_filter f[] = {{BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW}};
        struct sock_fprog prog = {1, f};
        return result(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog));
    }
    if (!strcmp(c, "chattr")) {
        int fd = open(a, O_RDONLY);
        if (fd < 0) return result(-1);
        long flags = 0x10; // FS_IMMUTABLE_FL
        return result(syscall(SYS_ioctl, fd, 0x40086602UL, &flags));
    }
    if (!strcmp(c, "caps")) {
        struct { unsigned v; int pid; } h = {0x20080522, 0};
        struct { unsigned e, p, i; } d[2];
        if (syscall(SYS_capget, &h, d) < 0) return result(-1);
        printf("ok %x %x %x\n", d[0].e | d[1].e, d[0].p | d[1].p, d[0].i | d[1].i);
        return 0;
    }
    if (!strcmp(c, "name_to_handle")) {
        char h[128] = {0}; int mnt; *(unsigned *)h = 64;
        return result(syscall(SYS_name_to_handle_at, AT_FDCWD, a, h, &mnt, 0));
    }
    if (!strcmp(c, "mount")) return result(syscall(SYS_mount, "none", a, "tmpfs", 0, NULL));
    if (!strcmp(c, "bpf")) { char attr[128] = {0}; return result(syscall(SYS_bpf, 0, attr, sizeof attr)); }
    if (!strcmp(c, "perf")) { char attr[128] = {0}; *(unsigned *)(attr + 4) = 128; return result(syscall(SYS_perf_event_open, attr, 0, -1, -1, 0)); }
    if (!strcmp(c, "userfaultfd")) return result(syscall(SYS_userfaultfd, 0));
    if (!strcmp(c, "keyctl")) return result(syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0));
    if (!strcmp(c, "landlock-ruleset")) return result(syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* VERSION */));
    if (!strcmp(c, "landlock-restrict")) return result(syscall(SYS_landlock_restrict_self, 0, 0));
    if (!strcmp(c, "tioclinux")) { char sub = 6; return result(syscall(SYS_ioctl, 0, TIOCLINUX, &sub)); }
    if (!strcmp(c, "pidfd-getfd-parent")) {
        long pfd = syscall(SYS_pidfd_open, getppid(), 0);
        if (pfd < 0) return result(pfd);
        return result(syscall(SYS_pidfd_getfd, pfd, 0, 0));
    }
    if (!strcmp(c, "exec")) {
        char *av[] = {(char *)a, NULL};
        execv(a, av);
        return result(-1);
    }
    if (!strcmp(c, "exec-memfd")) {
        // Copy a program (A, which must be readable) into a memfd and run it, two ways.
        int src = open(a, O_RDONLY);
        if (src < 0) return result(-1);
        int m = syscall(SYS_memfd_create, "payload", 0);
        if (m < 0) return result(-1);
        char buf[65536]; ssize_t n;
        while ((n = read(src, buf, sizeof buf)) > 0) write(m, buf, n);
        int chmod_r = fchmod(m, 0755), chmod_e = errno;
        char *av[] = {"payload", NULL}, *ev[] = {NULL};
        syscall(SYS_execveat, m, "", av, ev, AT_EMPTY_PATH);
        int e1 = errno;
        char p[64]; snprintf(p, sizeof p, "/proc/self/fd/%d", m);
        execve(p, av, ev);
        printf("ok %d/%d %d %d\n", chmod_r, chmod_e, e1, errno);
        return 0;
    }
    if (!strcmp(c, "copy-exec")) {
        // Write a copy of program A to B (in a write grant), make it executable, run it.
        int src = open(a, O_RDONLY), dst = open(b, O_WRONLY | O_CREAT | O_TRUNC, 0755);
        if (src < 0 || dst < 0) return result(-1);
        char buf[65536]; ssize_t n;
        while ((n = read(src, buf, sizeof buf)) > 0) write(dst, buf, n);
        fchmod(dst, 0755); close(dst);
        char *av[] = {(char *)b, NULL};
        execv(b, av);
        return result(-1);
    }
    if (!strcmp(c, "memfd-exec-flag")) return result(syscall(SYS_memfd_create, "x", 0x0010 /* MFD_EXEC */));
    if (!strcmp(c, "memfd-rw")) {
        int m = syscall(SYS_memfd_create, "data", 1 /* MFD_CLOEXEC */);
        if (m < 0) return result(-1);
        write(m, "memfd-data", 10); lseek(m, 0, SEEK_SET);
        char buf[16] = {0}; read(m, buf, 10);
        printf("ok %s %d\n", buf, !!(fcntl(m, F_GETFD) & FD_CLOEXEC));
        return 0;
    }
    if (!strcmp(c, "open_by_handle")) return result(syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, O_RDONLY));
    if (!strcmp(c, "exit")) return atoi(a);
    if (!strcmp(c, "signal")) { raise(atoi(a)); return 0; }
    if (!strcmp(c, "sleep")) { sleep(atoi(a)); printf("ok slept\n"); return 0; }
    if (!strcmp(c, "sigterm-exit")) {
        sigset_t s; sigemptyset(&s); sigaddset(&s, SIGTERM); sigprocmask(SIG_BLOCK, &s, NULL);
        printf("ready\n"); int sig; sigwait(&s, &sig); printf("ok got %d\n", sig); return 42;
    }
    if (!strcmp(c, "daemon")) {
        // Leave a grandchild behind in its own session; the broker must still end and reap.
        if (fork() == 0) { setsid(); if (fork() == 0) { sleep(60); _exit(0); } _exit(0); }
        usleep(100000); printf("ok\n"); return 0;
    }
    // Resource-limit targets: they misbehave until a limit stops them.
    if (!strcmp(c, "hog")) {
        // Touch memory 1 MiB at a time; when refused, abort as allocators do.
        long mib = 0;
        for (;;) {
            char *p = malloc(1 << 20);
            if (!p) { fprintf(stderr, "hog: refused after %ld MiB\n", mib); abort(); }
            memset(p, 1, 1 << 20); mib++;
        }
    }
    if (!strcmp(c, "alloc")) {
        // Touch a MiB a given number of times, then exit cleanly.
        for (long i = 0; i < atol(a); i++) { char *p = malloc(1 << 20); if (!p) return 3; memset(p, 1, 1 << 20); }
        printf("ok\n"); return 0;
    }
    if (!strcmp(c, "spin")) { for (volatile unsigned long i = 0;; i++) {} }
    if (!strcmp(c, "spin-children")) {
        // N children burn CPU; the parent only waits.
        for (int i = 0; i < atoi(a); i++) if (fork() == 0) for (volatile unsigned long j = 0;; j++) {}
        while (wait(NULL) > 0) {}
        return 0;
    }
    if (!strcmp(c, "forkbomb")) {
        for (;;) { if (fork() < 0) usleep(1000); }
    }
    if (!strcmp(c, "daemon-pid")) {
        // A grandchild in its own session prints its pid and lives on; the target sleeps a
        // seconds (0: exits at once).
        int p[2]; pipe(p);
        if (fork() == 0) {
            setsid();
            if (fork() == 0) { printf("daemon %d\n", getpid()); close(p[1]); for (;;) pause(); }
            _exit(0);
        }
        close(p[1]); char ch; read(p[0], &ch, 1); // EOF once the daemon has printed
        wait(NULL);
        sleep(atoi(a)); printf("ok\n"); return 0;
    }
    if (!strcmp(c, "write-big")) {
        int fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0) return result(fd);
        static char chunk[4096];
        long total = atol(b), done = 0;
        while (done < total) { ssize_t n = write(fd, chunk, sizeof chunk); if (n < 0) return result(n); done += n; }
        return result(done);
    }
    if (!strcmp(c, "fill-fds")) {
        // Take descriptors until refused, then ask the broker for one more.
        int dups = 0, last = 0;
        for (;;) { if (dup(0) < 0) { last = errno; break; } dups++; }
        int fd = open(a, O_RDONLY);
        printf("ok dups %d dup-errno %d open %d open-errno %d\n", dups, last, fd, fd < 0 ? errno : 0);
        return 0;
    }
    fprintf(stderr, "unknown action %s\n", c);
    return 2;
}
