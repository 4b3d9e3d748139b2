// Heap high-water mark by call site, for finding where a process's peak memory goes (development only).
// An LD_PRELOAD library: records every live allocation of at least 256 KiB (malloc, calloc, realloc,
// posix_memalign, aligned_alloc, memalign) with its call stack, keeps a copy of the live set whenever the live total
// exceeds the previous peak by 4 MiB, and at exit writes that set to $HEAP_PEAK_OUT (default /tmp/heap_peak.PID).
// Allocations below 256 KiB, mappings made without malloc (mmap), and live blocks beyond the first 8192 are not
// counted; the peak it reports can be up to 4 MiB below the true one.
//   gcc -O1 -shared -fPIC -o /tmp/heap_peak.so Pipelines/bench/heap_peak.c -ldl -lpthread
//   LD_PRELOAD=/tmp/heap_peak.so .build/release/mr2ct convert ...
//   python3 Pipelines/bench/heap_peak.py /tmp/heap_peak.PID .build/release/mr2ct   # totals by call site
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
extern void *__libc_malloc(size_t); extern void __libc_free(void*); extern void *__libc_calloc(size_t,size_t);
extern void *__libc_realloc(void*,size_t); extern void *__libc_memalign(size_t,size_t);
#define MAXM 8192
#define TH (256<<10)
typedef struct { void *addr; size_t len; void *bt[20]; int n; } M;
static M live[MAXM]; static int nlive; static size_t total, peak;
static M peakset[MAXM]; static int npeak;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static __thread int inside;
static void rec(void *r, size_t l) {
  if (!r || l < TH || inside) return;
  inside = 1; pthread_mutex_lock(&mu);
  if (nlive < MAXM) { M *m = &live[nlive++]; m->addr = r; m->len = l; m->n = backtrace(m->bt, 20); total += l;
    if (total > peak + (4<<20)) { peak = total; memcpy(peakset, live, sizeof(M)*nlive); npeak = nlive; } }
  pthread_mutex_unlock(&mu); inside = 0;
}
static void unrec(void *a) {
  if (!a) return;
  pthread_mutex_lock(&mu);
  for (int i = nlive - 1; i >= 0; i--) if (live[i].addr == a) { total -= live[i].len; live[i] = live[--nlive]; break; }
  pthread_mutex_unlock(&mu);
}
void *malloc(size_t l) { void *r = __libc_malloc(l); rec(r, l); return r; }
void *calloc(size_t n, size_t l) { void *r = __libc_calloc(n, l); rec(r, n*l); return r; }
void *realloc(void *a, size_t l) { unrec(a); void *r = __libc_realloc(a, l); rec(r, l); return r; }
void free(void *a) { unrec(a); __libc_free(a); }
int posix_memalign(void **p, size_t al, size_t l) { void *r = __libc_memalign(al, l); if (!r) return 12; *p = r; rec(r, l); return 0; }
void *aligned_alloc(size_t al, size_t l) { void *r = __libc_memalign(al, l); rec(r, l); return r; }
void *memalign(size_t al, size_t l) { void *r = __libc_memalign(al, l); rec(r, l); return r; }
__attribute__((destructor)) static void dump(void) {
  char path[512]; const char *out = getenv("HEAP_PEAK_OUT");
  if (out) snprintf(path, sizeof path, "%s", out); else snprintf(path, sizeof path, "/tmp/heap_peak.%d", getpid());
  FILE *f = fopen(path, "w"); if (!f) return;
  fprintf(f, "peak %zu MB in %d blocks\n", peak >> 20, npeak);
  for (int i = 0; i < npeak; i++) { fprintf(f, "BLK %zu", peakset[i].len);
    for (int k = 1; k < peakset[i].n; k++) { Dl_info d; if (dladdr(peakset[i].bt[k], &d) && d.dli_fname) fprintf(f, " %s+0x%lx", strrchr(d.dli_fname,'/')? strrchr(d.dli_fname,'/')+1 : d.dli_fname, (unsigned long)((char*)peakset[i].bt[k] - (char*)d.dli_fbase)); }
    fprintf(f, "\n"); }
  fclose(f);
}
