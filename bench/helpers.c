/* The benchmark's helper programs, in C so that they add no noise of their own.
 * One binary, the first argument picks the role:
 *
 *   waitsig FIFO          main process: write 0 to FIFO once ready, then for every
 *                         SIGTERM/SIGUSR1 the CLOCK_MONOTONIC ns it arrived (8 bytes)
 *   ignore FIFO           main process: ignores SIGTERM, holds FIFO open until killed
 *   stamp FILE            write CLOCK_MONOTONIC ns to FILE and exit (ends a preStop)
 *   siglat PID FIFO N     send SIGTERM to PID N times, each after the last arrived;
 *                         print the N latencies (ns), one a line
 *   record NAME FILE MS [FIFO]
 *                         main process or sidecar: append "NAME start NS" to FILE;
 *                         at SIGTERM append "NAME term NS", then after MS ms
 *                         "NAME exit NS" and exit 0; MS -1: ignore SIGTERM (still
 *                         recorded) until killed. With FIFO, hold it open for
 *                         writing, so the reader sees EOF the moment it dies.
 *   orphans N OUT         main process: create N orphans for PID 1 to reap, in bursts
 *                         of 100 (a child forks 100 that exit at once, then exits);
 *                         write "ns_to_last_reap peak_unreaped" to OUT
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(3);
}

static void write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("write");
        p += n;
        len -= (size_t)n;
    }
}

static void read_all(int fd, void *buf, size_t len) {
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            fprintf(stderr, "siglat: the main process went away\n");
            exit(3);
        }
        p += n;
        len -= (size_t)n;
    }
}

static int waitsig(const char *fifo) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int fd = open(fifo, O_WRONLY);
    if (fd < 0) die("open fifo");
    uint64_t ready = 0;
    write_all(fd, &ready, sizeof ready);
    for (;;) {
        int sig = sigwaitinfo(&set, NULL);
        if (sig < 0) continue;
        uint64_t t = now_ns();
        write_all(fd, &t, sizeof t);
    }
    return 0;
}

static int ignore(const char *fifo) {
    signal(SIGTERM, SIG_IGN);
    int fd = open(fifo, O_WRONLY);
    if (fd < 0) die("open fifo");
    uint64_t ready = 0;
    write_all(fd, &ready, sizeof ready);
    for (;;) pause();
    return 0;
}

static int stamp(const char *file) {
    uint64_t t = now_ns();
    FILE *f = fopen(file, "w");
    if (!f) die("open stamp file");
    fprintf(f, "%llu\n", (unsigned long long)t);
    return fclose(f) == 0 ? 0 : 3;
}

static int siglat(pid_t pid, const char *fifo, int n) {
    int fd = open(fifo, O_RDONLY);
    if (fd < 0) die("open fifo");
    uint64_t t;
    read_all(fd, &t, sizeof t); /* ready */
    uint64_t *lat = calloc((size_t)n, sizeof *lat);
    if (!lat) die("calloc");
    for (int i = 0; i < n; i++) {
        uint64_t sent = now_ns();
        if (kill(pid, SIGTERM) != 0) die("kill");
        read_all(fd, &t, sizeof t);
        lat[i] = t - sent;
    }
    for (int i = 0; i < n; i++) printf("%llu\n", (unsigned long long)lat[i]);
    return 0;
}

static void record_line(int fd, const char *name, const char *what) {
    char line[200];
    int n = snprintf(line, sizeof line, "%s %s %llu\n", name, what, (unsigned long long)now_ns());
    write_all(fd, line, (size_t)n); /* one write to an O_APPEND file: lines never mix */
}

static int record(const char *name, const char *file, int ms, const char *fifo) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (fifo && open(fifo, O_WRONLY) < 0) die("open fifo");
    int fd = open(file, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) die("open record file");
    record_line(fd, name, "start");
    for (;;) {
        if (sigwaitinfo(&set, NULL) < 0) continue;
        record_line(fd, name, "term");
        if (ms >= 0) break;
    }
    struct timespec d = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&d, &d) < 0 && errno == EINTR) {
    }
    record_line(fd, name, "exit");
    _exit(0);
}

/* Children of PID 1 (all its threads), the main process included. */
static int children_of_init(void) {
    static char buf[1 << 20];
    int count = 0;
    DIR *d = opendir("/proc/1/task");
    if (!d) die("opendir /proc/1/task");
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/1/task/%s/children", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        ssize_t n, len = 0;
        while ((n = read(fd, buf + len, sizeof buf - 1 - (size_t)len)) > 0) len += n;
        close(fd);
        for (ssize_t i = 0; i < len; i++)
            if (buf[i] == ' ') count++;
    }
    closedir(d);
    return count;
}

#define BURST 100

static int orphans(int n, const char *out) {
    if (getpid() == 1 || getppid() != 1) {
        fprintf(stderr, "orphans: run me as the main process of an init that is PID 1\n");
        return 3;
    }
    int peak = 0;
    uint64_t start = now_ns();
    for (int i = 0; i < n; i += BURST) {
        pid_t c = fork();
        if (c < 0) die("fork");
        if (c == 0) {
            /* BURST children that exit at once; when this one exits they are
             * all handed to PID 1 together, as when a process tree dies. */
            for (int j = 0; j < BURST && i + j < n; j++)
                if (fork() == 0) _exit(0);
            _exit(0);
        }
        while (waitpid(c, NULL, 0) < 0 && errno == EINTR) {
        }
        int left = children_of_init() - 1;
        if (left > peak) peak = left;
    }
    int left;
    while ((left = children_of_init() - 1) > 0) {
        if (left > peak) peak = left;
    }
    uint64_t took = now_ns() - start;
    FILE *f = fopen(out, "w");
    if (!f) die("open out");
    fprintf(f, "%llu %d\n", (unsigned long long)took, peak);
    return fclose(f) == 0 ? 0 : 3;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "waitsig") == 0) return waitsig(argv[2]);
    if (argc == 3 && strcmp(argv[1], "ignore") == 0) return ignore(argv[2]);
    if (argc == 3 && strcmp(argv[1], "stamp") == 0) return stamp(argv[2]);
    if (argc == 5 && strcmp(argv[1], "siglat") == 0) return siglat(atoi(argv[2]), argv[3], atoi(argv[4]));
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "record") == 0)
        return record(argv[2], argv[3], atoi(argv[4]), argc == 6 ? argv[5] : NULL);
    if (argc == 4 && strcmp(argv[1], "orphans") == 0) return orphans(atoi(argv[2]), argv[3]);
    fprintf(stderr, "usage: see the comment at the top of bench/helpers.c\n");
    return 2;
}
