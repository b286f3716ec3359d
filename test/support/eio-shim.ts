// A real I/O-error injector for fault tests: an LD_PRELOAD shim, compiled in the test with the
// machine's gcc into a temporary directory (never committed), that makes the write and sync
// calls of a process fail on file descriptors under a path prefix while a control file
// exists. The control file holds the errno name to return (EIO, ENOSPC, EROFS); deleting it
// turns the fault off. Node's libuv does file I/O on its threadpool through these libc calls,
// so the enricher's own fs code meets the error exactly as it would from a failing disk.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const SHIM_C = `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static const char *prefix, *control;
static size_t prefix_len;

__attribute__((constructor)) static void init(void) {
  prefix = getenv("SNOWTAP_SHIM_PREFIX");
  control = getenv("SNOWTAP_SHIM_CONTROL");
  prefix_len = prefix ? strlen(prefix) : 0;
}

/* 0: let the call through; else the errno to fail it with. */
static int fault(int fd) {
  if (!prefix || !control) return 0;
  int c = open(control, O_RDONLY | O_CLOEXEC);
  if (c < 0) return 0;
  char name[16] = {0};
  ssize_t n = read(c, name, sizeof name - 1);
  close(c);
  char proc[64], target[4096];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  ssize_t len = readlink(proc, target, sizeof target - 1);
  if (len < (ssize_t)prefix_len || strncmp(target, prefix, prefix_len) != 0) return 0;
  if (n > 0 && strncmp(name, "ENOSPC", 6) == 0) return ENOSPC;
  if (n > 0 && strncmp(name, "EROFS", 5) == 0) return EROFS;
  return EIO;
}

#define REAL(name) static __typeof__(name) *real; if (!real) real = dlsym(RTLD_NEXT, #name)
#define FAIL(fd) do { int e = fault(fd); if (e) { errno = e; return -1; } } while (0)

ssize_t write(int fd, const void *b, size_t n) { REAL(write); FAIL(fd); return real(fd, b, n); }
ssize_t pwrite(int fd, const void *b, size_t n, off_t o) { REAL(pwrite); FAIL(fd); return real(fd, b, n, o); }
ssize_t pwrite64(int fd, const void *b, size_t n, off_t o) { REAL(pwrite64); FAIL(fd); return real(fd, b, n, o); }
ssize_t writev(int fd, const struct iovec *v, int c) { REAL(writev); FAIL(fd); return real(fd, v, c); }
ssize_t pwritev(int fd, const struct iovec *v, int c, off_t o) { REAL(pwritev); FAIL(fd); return real(fd, v, c, o); }
ssize_t pwritev64(int fd, const struct iovec *v, int c, off_t o) { REAL(pwritev64); FAIL(fd); return real(fd, v, c, o); }
ssize_t pwritev2(int fd, const struct iovec *v, int c, off_t o, int f) { REAL(pwritev2); FAIL(fd); return real(fd, v, c, o, f); }
int fsync(int fd) { REAL(fsync); FAIL(fd); return real(fd); }
int fdatasync(int fd) { REAL(fdatasync); FAIL(fd); return real(fd); }
`;

export interface EioShim {
  /** LD_PRELOAD and the shim's settings, for the child's environment. */
  env: NodeJS.ProcessEnv;
  /** Starts failing writes and syncs under the prefix with `errno`. */
  on(errno?: 'EIO' | 'ENOSPC' | 'EROFS'): void;
  off(): void;
}

/** Whether gcc is there to build the shim. */
export function gccVersion(): string | null {
  try {
    return execFileSync('gcc', ['--version'], { encoding: 'utf8' }).split('\n')[0]!;
  } catch {
    return null;
  }
}

/** Compiles the shim into `dir` (a test's temporary directory); faults files under `prefix`. */
export function buildEioShim(dir: string, prefix: string): EioShim {
  const src = path.join(dir, 'eio-shim.c');
  const so = path.join(dir, 'eio-shim.so');
  fs.writeFileSync(src, SHIM_C);
  execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', so, src, '-ldl']);
  const control = path.join(dir, 'eio-shim.on');
  return {
    env: {
      LD_PRELOAD: so,
      SNOWTAP_SHIM_PREFIX: fs.realpathSync(prefix),
      SNOWTAP_SHIM_CONTROL: control,
    },
    on: (errno = 'EIO') => fs.writeFileSync(control, errno),
    off: () => fs.rmSync(control, { force: true }),
  };
}
