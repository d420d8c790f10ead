/*
 * ferry-append-files: a CRIU plugin (loaded by the dump of a rank, --libdir)
 * that records the size of the tree's append-only files.
 *
 * CRIU records no size for a regular file open write-only with O_APPEND (a
 * log opened with fopen "a": its growth is expected) and restores it as it
 * is. A restart from this image cuts such a file back to the size it had at
 * the dump, so that what the rank appends again after the rollback is there
 * once (src/criu/written-files.ts). So at the end of a successful dump, after
 * CRIU has written the images and before it lets the tree run on
 * (--leave-running) or kills it, this writes one line "SIZE PATH" per such
 * file into $FERRY_APPEND_FILES_OUT, a name in the images directory
 * (append-files.ferry).
 *
 * It also holds a dump started ahead of time (src/criu/warm-dump.ts): with
 * FERRY_DUMP_HOLD_FD, its init, which CRIU runs once it has probed the
 * kernel and before it seizes any task, waits for one byte on that
 * descriptor. "g" lets the dump go on; "s" too, and then, once the dump
 * succeeded, stops every process of the tree (SIGSTOP, while CRIU still holds
 * it: it stops as CRIU lets it go), which is what --leave-stopped does, for a
 * rank that will not run on (a migration's, checkpoint --stop's) in a CRIU
 * started with --leave-running; anything else, or the end of the pipe (the
 * agent called it off, or died), makes CRIU stop there with the tree
 * untouched.
 *
 * A plugin, not an --action-script: CRIU runs a script through `sh -c` for
 * every action (pre-dump and post-dump), two process starts per dump while
 * the job is paused; a plugin's exit runs inside CRIU, at the same moment as
 * post-dump.
 *
 * This never fails a dump (a plugin's exit cannot): a file it cannot read is
 * left out and said in CRIU's log, and a restart then leaves that file as it
 * is. Without FERRY_APPEND_FILES_ROOT / _OUT it records nothing (a dump that
 * did not ask for the record).
 *
 * CRIU's plugin interface (criu-plugin.h, version 0.2.0 since CRIU 2.x) is
 * declared here rather than included: only the descriptor's leading fields,
 * and no hooks, so that any CRIU since then loads it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* CRIU's plugin ABI: the stage a dump runs at, and the descriptor it looks up by name. */
#define CR_STAGE_DUMP 0
#define CR_PLUGIN_ABI_VERSION ((0 << 16) + (2 << 8) + 0)

typedef struct {
    const char *name;
    int (*init)(int stage);
    void (*exit)(int stage, int ret);
    unsigned int version;
    unsigned int max_hooks; /* 0: hooks[] is never read */
} ferry_plugin_desc_t;

#define PLUGIN_NAME "ferry-append-files"
#define MAX_TASKS 4096
/* CRIU's log levels (criu-log.h): LOG_WARN 2, LOG_INFO 3. */
#define CRIU_LOG_WARN 2
#define CRIU_LOG_INFO 3

static pid_t tasks[MAX_TASKS];
static int ntasks;
/* The go was "s": the tree is to be left stopped after the dump. */
static int stop_after;

/* Into CRIU's log (its print_on_level, which every CRIU exports to plugins), else stderr. */
static void say(unsigned int level, const char *fmt, ...)
{
    void (*print_on_level)(unsigned int, const char *, ...) =
        (void (*)(unsigned int, const char *, ...))dlsym(RTLD_DEFAULT, "print_on_level");
    char line[PATH_MAX + 128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (print_on_level)
        print_on_level(level, "%s: %s\n", PLUGIN_NAME, line);
    else
        fprintf(stderr, "%s: %s\n", PLUGIN_NAME, line);
}

static int known(pid_t pid)
{
    for (int i = 0; i < ntasks; i++)
        if (tasks[i] == pid)
            return 1;
    return 0;
}

/* Adds `pid` and, through /proc/PID/task/TID/children (which CRIU itself
 * needs), every process below it. The tree is frozen: it cannot change. */
static void collect(pid_t pid)
{
    char path[64];
    DIR *threads;
    struct dirent *t;

    if (ntasks == MAX_TASKS || known(pid))
        return;
    tasks[ntasks++] = pid;
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    threads = opendir(path);
    if (!threads)
        return;
    while ((t = readdir(threads)) != NULL) {
        char children[PATH_MAX];
        FILE *f;
        long child;
        if (t->d_name[0] == '.')
            continue;
        snprintf(children, sizeof children, "/proc/%d/task/%s/children", (int)pid, t->d_name);
        f = fopen(children, "r");
        if (!f)
            continue;
        while (fscanf(f, "%ld", &child) == 1)
            collect((pid_t)child);
        fclose(f);
    }
    closedir(threads);
}

/* The open flags of fd `fd` of `pid` (octal "flags:" of its fdinfo), or -1. */
static long fd_flags(pid_t pid, const char *fd)
{
    char path[PATH_MAX], line[256];
    long flags = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/fdinfo/%s", (int)pid, fd);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "flags:", 6) == 0) {
            flags = strtol(line + 6, NULL, 8);
            break;
        }
    fclose(f);
    return flags;
}

static int record_appended_files(pid_t pid, FILE *out)
{
    char dir_path[64];
    DIR *fds;
    struct dirent *d;
    int n_files = 0;

    snprintf(dir_path, sizeof dir_path, "/proc/%d/fd", (int)pid);
    fds = opendir(dir_path);
    if (!fds) {
        say(CRIU_LOG_WARN, "cannot list %s: its append-only files go unrecorded", dir_path);
        return 0;
    }
    while ((d = readdir(fds)) != NULL) {
        char link[PATH_MAX], target[PATH_MAX];
        struct stat st;
        ssize_t n;
        long flags;

        if (d->d_name[0] == '.')
            continue;
        snprintf(link, sizeof link, "%s/%s", dir_path, d->d_name);
        if (stat(link, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink == 0)
            continue; /* not a regular file, or deleted (CRIU carries those itself) */
        flags = fd_flags(pid, d->d_name);
        if (flags < 0 || (flags & O_ACCMODE) != O_WRONLY || !(flags & O_APPEND))
            continue;
        n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (target[0] != '/' || strchr(target, '\n'))
            continue;
        fprintf(out, "%lld %s\n", (long long)st.st_size, target);
        n_files++;
    }
    closedir(fds);
    return n_files;
}

static int ferry_init(int stage)
{
    const char *hold = getenv("FERRY_DUMP_HOLD_FD");
    ssize_t n;
    char c = 0;
    int fd;

    if (stage != CR_STAGE_DUMP || !hold)
        return 0;
    fd = atoi(hold);
    if (fd < 3) {
        say(CRIU_LOG_WARN, "FERRY_DUMP_HOLD_FD=%s is not a descriptor to wait on", hold);
        return -1;
    }
    say(CRIU_LOG_INFO, "kernel probed; waiting for the go on descriptor %d", fd);
    do
        n = read(fd, &c, 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n == 1 && (c == 'g' || c == 's')) {
        stop_after = c == 's';
        say(CRIU_LOG_INFO, stop_after ? "go (then leave the tree stopped)" : "go");
        return 0;
    }
    say(CRIU_LOG_INFO, "called off before the dump began (%s)", n == 0 ? "end of the pipe" : n < 0 ? strerror(errno) : "not the go");
    return -1;
}

/* The images directory CRIU has open (criu_get_image_dir, for plugins since CRIU 3.x), or -1. */
static int images_dir_fd(void)
{
    int (*get_image_dir)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "criu_get_image_dir");
    return get_image_dir ? get_image_dir() : -1;
}

/* After a dump that succeeded, with the go "s": every process of the tree stops once CRIU lets it go. */
static void leave_stopped(void)
{
    int stopped = 0;
    for (int i = 0; i < ntasks; i++)
        if (kill(tasks[i], SIGSTOP) == 0)
            stopped++;
        else
            say(CRIU_LOG_WARN, "cannot stop pid %d: %s", (int)tasks[i], strerror(errno));
    say(CRIU_LOG_INFO, "%d of %d task(s) left stopped", stopped, ntasks);
}

static void ferry_exit(int stage, int ret)
{
    const char *root = getenv("FERRY_APPEND_FILES_ROOT");
    const char *out_path = getenv("FERRY_APPEND_FILES_OUT");
    int n_files = 0, dir_fd, out_fd;
    FILE *out;

    if (stage != CR_STAGE_DUMP || ret != 0 || !root)
        return;
    if (atoi(root) <= 0) {
        say(CRIU_LOG_WARN, "FERRY_APPEND_FILES_ROOT=%s is not a pid: append-only files go unrecorded", root);
        return;
    }
    ntasks = 0;
    collect((pid_t)atoi(root));
    if (stop_after)
        leave_stopped();
    if (!out_path)
        return;
    /* A name in the images directory, through CRIU's descriptor: a dump started ahead of time had its
     * directory renamed since CRIU opened it. */
    dir_fd = images_dir_fd();
    if (dir_fd < 0 || strchr(out_path, '/')) {
        say(CRIU_LOG_WARN, "no images directory from CRIU, or %s is not a name: append-only files go unrecorded", out_path);
        return;
    }
    out_fd = openat(dir_fd, out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    out = out_fd < 0 ? NULL : fdopen(out_fd, "w");
    if (!out) {
        if (out_fd >= 0)
            close(out_fd);
        say(CRIU_LOG_WARN, "cannot write %s: append-only files go unrecorded", out_path);
        return;
    }
    for (int i = 0; i < ntasks; i++)
        n_files += record_appended_files(tasks[i], out);
    if (fclose(out) != 0) {
        say(CRIU_LOG_WARN, "cannot write %s: append-only files go unrecorded", out_path);
        return;
    }
    say(CRIU_LOG_INFO, "%d append-only file(s) of %d task(s) recorded in %s", n_files, ntasks, out_path);
}

__attribute__((visibility("default"))) ferry_plugin_desc_t CR_PLUGIN_DESC = {
    .name = PLUGIN_NAME,
    .init = ferry_init,
    .exit = ferry_exit,
    .version = CR_PLUGIN_ABI_VERSION,
    .max_hooks = 0,
};
