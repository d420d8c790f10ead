/*
 * ferry-dump-action: CRIU's --action-script for the dump of a rank.
 *
 * At "post-dump" CRIU has written the images and the dumped tree is still
 * frozen: it runs on (--leave-running) or is killed only after this returns.
 * Then every regular file the tree has open write-only with O_APPEND (a log
 * opened with fopen "a") goes into CRTOOLS_IMAGE_DIR/append-files.ferry, one
 * line "SIZE PATH" each. CRIU records no size for such files (their growth is
 * expected) and restores them as they are; a restart from this image cuts
 * them back to that size, so that what the rank appends again after the
 * rollback is there once (src/criu/written-files.ts).
 *
 * Every other action returns at once. This never fails a dump: a file it
 * cannot read is left out (and said on stderr, into CRIU's log), and a
 * restart then leaves that file as it is.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define OUT_NAME "append-files.ferry"
#define MAX_TASKS 4096

static pid_t tasks[MAX_TASKS];
static int ntasks;

static int known(pid_t pid)
{
    for (int i = 0; i < ntasks; i++)
        if (tasks[i] == pid)
            return 1;
    return 0;
}

/* Adds `pid` and, through /proc/PID/task/TID/children (which CRIU itself
 * needs), every process below it. */
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

static void record_appended_files(pid_t pid, FILE *out)
{
    char dir_path[64];
    DIR *fds;
    struct dirent *d;

    snprintf(dir_path, sizeof dir_path, "/proc/%d/fd", (int)pid);
    fds = opendir(dir_path);
    if (!fds) {
        fprintf(stderr, "ferry-dump-action: cannot list %s\n", dir_path);
        return;
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
    }
    closedir(fds);
}

int main(void)
{
    const char *action = getenv("CRTOOLS_SCRIPT_ACTION");
    const char *dir = getenv("CRTOOLS_IMAGE_DIR");
    const char *root = getenv("CRTOOLS_INIT_PID");
    char out_path[PATH_MAX];
    FILE *out;

    if (!action || strcmp(action, "post-dump") != 0)
        return 0;
    if (!dir || !root || atoi(root) <= 0) {
        fprintf(stderr, "ferry-dump-action: post-dump without CRTOOLS_IMAGE_DIR or CRTOOLS_INIT_PID\n");
        return 0;
    }
    collect((pid_t)atoi(root));
    snprintf(out_path, sizeof out_path, "%s/%s", dir, OUT_NAME);
    out = fopen(out_path, "w");
    if (!out) {
        perror(out_path);
        return 0;
    }
    for (int i = 0; i < ntasks; i++)
        record_appended_files(tasks[i], out);
    if (fclose(out) != 0)
        perror(out_path);
    return 0;
}
