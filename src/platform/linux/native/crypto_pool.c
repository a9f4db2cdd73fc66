/*
 * Crypto pool: AEAD seal and open of a whole batch on several cores, fork-join.
 *
 * new CryptoPool(threads): threads in all, 1..16, of which the JS thread is one: threads - 1
 *   pthreads are started now and joined by close(), at GC, or when the env ends (cleanup hook).
 * new CryptoBatch(pool | null, results: Int32Array, inlineBelow): a job list of results.length
 *   jobs (at most 2^20 - 1).
 *   seal(aead, buf, off, len, adBuf, adOff, ctrBuf, ctrOff), open(...): queue a job and return
 *     its index. The 14 AD bytes and the 8 counter bytes of the nonce are copied now; the message
 *     is sealed or opened in place at run(). A full list throws ERR_CRYPTO_BATCH_FULL (run it
 *     first); misuse throws ERR_INVALID_ARG as Aead's seal/open do. An open whose length cannot
 *     hold a tag or lies outside its buffer is queued as already failed (-1).
 *   run(): runs every queued job, writes results[i] (seal: len + 16; open: the plaintext length;
 *     -1: failed, forged or damaged), empties the list and returns how many failed. A batch of
 *     one job, of fewer than inlineBelow bytes, or without a pool runs on the JS thread alone.
 *   clear(): empties the list without running it. stats(): [runs, pooledRuns, jobs, pooledJobs,
 *     bytes, pooledBytes, helped] (helped: jobs that pool threads ran, the rest ran on the JS thread).
 *
 * Fork-join: run() publishes the batch in one 64-bit claim word (generation 24 bits, job count
 * 20, next job 20), wakes the pool threads that sleep (futex on `gen`), takes jobs itself like
 * any of them, then waits (briefly spinning, then futex on `done`) until every job is done. A job
 * is claimed by a CAS on the claim word, and the batch's jobs and results are read only after a
 * successful claim: a thread that wakes late can only take a job of the batch being run, never
 * one of a batch already finished or not yet published. Nothing is reordered: results are read
 * on the JS thread after run() returns, in batch order. Each thread uses its own EVP contexts per
 * key (aead.h), so no context is ever shared between threads.
 *
 * A queued job pins its key (aead_pin) until the job has run or was cleared, so destroy() or GC
 * of a key between queuing and run() cannot free what a pool thread is about to use.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "aead.h"
#include "crypto_pool.h"
#include "napi_util.h"

#define POOL_MAX AEAD_MAX_THREADS
#define MASK20 0xFFFFFu
#define MASK24 0xFFFFFFu
#define BATCH_MAX MASK20
#define SPIN_ROUNDS 4000

enum { OP_FAILED = 0, OP_SEAL = 1, OP_OPEN = 2 };

typedef struct job {
  aead_t *a;
  uint8_t *m;
  uint32_t len;
  uint32_t op;
  uint8_t ad[AEAD_AD];
  uint8_t nonce[12];
} job_t;

typedef struct pool pool_t;

typedef struct worker {
  pool_t *p;
  int t;
} worker_t;

struct pool {
  int nthreads; /* in all, with the JS thread */
  int started;  /* pthreads started */
  pthread_t th[POOL_MAX];
  worker_t w[POOL_MAX];
  _Atomic uint32_t gen;      /* bumped for each pooled run and at stop: the threads' futex word */
  _Atomic uint32_t sleepers; /* threads in (or about to be in) futex wait on gen */
  _Atomic uint64_t claim;    /* gen:24 | count:20 | next:20 */
  _Atomic uint32_t done;     /* jobs of this run completed: the JS thread's futex word */
  _Atomic uint32_t waiting;  /* the JS thread sleeps on done */
  _Atomic int stop;
  job_t *jobs; /* the running batch: written before the claim word is published */
  int32_t *results;
  /* JS thread only */
  int stopped;
  int js_gone;
  int refs; /* batches that use this pool */
  int hook; /* the env cleanup hook is registered */
  napi_env env;
};

typedef struct batch {
  pool_t *pool;
  job_t *jobs;
  uint32_t cap, n;
  uint64_t bytes;
  uint32_t inline_below;
  int32_t *results;
  napi_ref results_ref;
  double stats[7];
} batch_t;

static long futex(_Atomic uint32_t *addr, int op, uint32_t val) {
  return syscall(SYS_futex, (uint32_t *)addr, op, val, NULL, NULL, 0);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static inline void run_job(job_t *j, int32_t *res, int t) {
  if (j->op == OP_SEAL) *res = aead_seal_on(j->a, t, j->m, j->len, j->ad, j->nonce);
  else if (j->op == OP_OPEN) *res = aead_open_on(j->a, t, j->m, j->len, j->ad, j->nonce);
}

/* Takes and runs jobs of the published batch until none is left; returns how many it ran. */
static uint32_t claim_jobs(pool_t *p, int t) {
  uint32_t ran = 0;
  uint64_t c = atomic_load_explicit(&p->claim, memory_order_acquire);
  for (;;) {
    uint32_t count = (uint32_t)(c >> 20) & MASK20;
    uint32_t next = (uint32_t)c & MASK20;
    if (next >= count) return ran;
    if (!atomic_compare_exchange_weak_explicit(&p->claim, &c, c + 1, memory_order_acq_rel, memory_order_acquire)) continue;
    run_job(&p->jobs[next], &p->results[next], t);
    ran++;
    uint32_t d = atomic_fetch_add(&p->done, 1) + 1;
    if (d == count && atomic_load(&p->waiting)) futex(&p->done, FUTEX_WAKE_PRIVATE, 1);
    c = atomic_load_explicit(&p->claim, memory_order_acquire);
  }
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  pool_t *p = w->p;
  uint32_t seen = 0;
  for (;;) {
    uint32_t g = atomic_load(&p->gen);
    if (g == seen) {
      atomic_fetch_add(&p->sleepers, 1);
      if (atomic_load(&p->gen) == seen) futex(&p->gen, FUTEX_WAIT_PRIVATE, seen);
      atomic_fetch_sub(&p->sleepers, 1);
      continue;
    }
    seen = g;
    if (atomic_load(&p->stop)) return NULL;
    claim_jobs(p, w->t);
  }
}

/* Runs jobs[0, n) on the JS thread and the pool's threads; returns when all are done, with the
 * number the pool's threads ran. */
static uint32_t pool_run(pool_t *p, job_t *jobs, int32_t *results, uint32_t n) {
  uint32_t gen = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
  p->jobs = jobs;
  p->results = results;
  atomic_store(&p->done, 0);
  atomic_store_explicit(&p->claim, ((uint64_t)(gen & MASK24) << 40) | ((uint64_t)n << 20), memory_order_release);
  atomic_store(&p->gen, gen);
  if (atomic_load(&p->sleepers) > 0) {
    uint32_t want = n - 1 < (uint32_t)p->started ? n - 1 : (uint32_t)p->started;
    futex(&p->gen, FUTEX_WAKE_PRIVATE, want);
  }
  uint32_t mine = claim_jobs(p, 0);
  for (int k = 0; k < SPIN_ROUNDS && atomic_load(&p->done) < n; k++) cpu_relax();
  uint32_t d;
  while ((d = atomic_load(&p->done)) < n) {
    atomic_store(&p->waiting, 1);
    if (atomic_load(&p->done) == d) futex(&p->done, FUTEX_WAIT_PRIVATE, d);
    atomic_store(&p->waiting, 0);
  }
  return n - mine;
}

static void pool_env_cleanup(void *arg);

/* Stops and joins the pool's threads (idempotent; JS thread). */
static void pool_stop(pool_t *p, int from_hook) {
  if (p->stopped) return;
  p->stopped = 1;
  atomic_store(&p->stop, 1);
  atomic_fetch_add(&p->gen, 1);
  futex(&p->gen, FUTEX_WAKE_PRIVATE, INT_MAX);
  for (int i = 0; i < p->started; i++) pthread_join(p->th[i], NULL);
  p->started = 0;
  if (p->hook && !from_hook) napi_remove_env_cleanup_hook(p->env, pool_env_cleanup, p);
  p->hook = 0;
}

static void pool_env_cleanup(void *arg) { pool_stop(arg, 1); }

static void pool_release(pool_t *p) {
  if (--p->refs == 0 && p->js_gone) free(p);
}

static void pool_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  pool_t *p = data;
  pool_stop(p, 0);
  p->js_gone = 1;
  if (p->refs == 0) free(p);
}

static napi_value pool_ctor(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  uint32_t n;
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &n) != napi_ok || n < 1 || n > POOL_MAX) {
    throw_arg(env, "new CryptoPool(threads) needs 1..16 threads (the JS thread counts as one)");
    return NULL;
  }
  pool_t *p = calloc(1, sizeof *p);
  if (!p) {
    throw_sys(env, "ERR_CRYPTO_POOL", "calloc", ENOMEM, "crypto pool");
    return NULL;
  }
  p->nthreads = (int)n;
  p->env = env;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 << 10);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old); /* the threads inherit it: signals stay with Node's threads */
  int err = 0;
  for (int i = 0; i < (int)n - 1; i++) {
    p->w[i].p = p;
    p->w[i].t = i + 1;
    err = pthread_create(&p->th[i], &attr, worker_main, &p->w[i]);
    if (err) break;
    char name[16];
    snprintf(name, sizeof name, "weft-crypto-%d", i + 1);
    pthread_setname_np(p->th[i], name);
    p->started++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (err) {
    pool_stop(p, 1);
    free(p);
    throw_sys(env, "ERR_CRYPTO_POOL", "pthread_create", err, "crypto pool");
    return NULL;
  }
  if (napi_add_env_cleanup_hook(env, pool_env_cleanup, p) == napi_ok) p->hook = 1;
  if (napi_wrap(env, self, p, pool_finalize, NULL, NULL) != napi_ok) {
    pool_stop(p, 0);
    free(p);
    throw_arg(env, "cannot wrap CryptoPool");
    return NULL;
  }
  napi_value v;
  napi_create_uint32(env, n, &v);
  napi_set_named_property(env, self, "threads", v);
  return self;
}

static pool_t *pool_this(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value self;
  void *data = NULL;
  napi_get_cb_info(env, info, &argc, NULL, &self, NULL);
  if (napi_unwrap(env, self, &data) != napi_ok || !data) {
    throw_arg(env, "not a CryptoPool");
    return NULL;
  }
  return data;
}

/* close(): joins the threads now; batches that use the pool then run on the JS thread alone. */
static napi_value pool_close(napi_env env, napi_callback_info info) {
  pool_t *p = pool_this(env, info);
  if (p) pool_stop(p, 0);
  return NULL;
}

/* running(): the pool threads alive (0 once closed). */
static napi_value pool_running(napi_env env, napi_callback_info info) {
  pool_t *p = pool_this(env, info);
  if (!p) return NULL;
  napi_value v;
  napi_create_uint32(env, (uint32_t)p->started, &v);
  return v;
}

/* ------------------------------------------------------------------------------ batches */

static void batch_unpin(batch_t *b) {
  for (uint32_t i = 0; i < b->n; i++)
    if (b->jobs[i].a) aead_unpin(b->jobs[i].a);
  b->n = 0;
  b->bytes = 0;
}

static void batch_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  batch_t *b = data;
  batch_unpin(b);
  if (b->results_ref) napi_delete_reference(env, b->results_ref);
  if (b->pool) pool_release(b->pool);
  free(b->jobs);
  free(b);
}

static napi_value batch_ctor(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  pool_t *pool = NULL;
  napi_valuetype pt = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &pt);
  if (pt != napi_null && pt != napi_undefined) {
    void *data = NULL;
    if (napi_unwrap(env, argv[0], &data) != napi_ok || !data) {
      throw_arg(env, "new CryptoBatch(pool, results, inlineBelow): pool is not a CryptoPool (null: no pool)");
      return NULL;
    }
    pool = data;
  }
  bool is_ta = false;
  napi_typedarray_type tt;
  size_t len = 0;
  void *rdata = NULL;
  if (argc < 2 || napi_is_typedarray(env, argv[1], &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, argv[1], &tt, &len, &rdata, NULL, NULL) != napi_ok || tt != napi_int32_array || len < 1 ||
      len > BATCH_MAX) {
    throw_arg(env, "new CryptoBatch(pool, results, inlineBelow): results must be an Int32Array of 1..1048575 (the capacity)");
    return NULL;
  }
  uint32_t below = 0;
  if (argc >= 3 && napi_get_value_uint32(env, argv[2], &below) != napi_ok) {
    throw_arg(env, "new CryptoBatch(pool, results, inlineBelow): inlineBelow must be a byte count");
    return NULL;
  }
  batch_t *b = calloc(1, sizeof *b);
  job_t *jobs = calloc(len, sizeof *jobs);
  if (!b || !jobs) {
    free(b);
    free(jobs);
    throw_sys(env, "ERR_CRYPTO_POOL", "calloc", ENOMEM, "crypto batch");
    return NULL;
  }
  b->jobs = jobs;
  b->cap = (uint32_t)len;
  b->results = rdata;
  b->inline_below = below;
  napi_create_reference(env, argv[1], 1, &b->results_ref);
  if (napi_wrap(env, self, b, batch_finalize, NULL, NULL) != napi_ok) {
    napi_delete_reference(env, b->results_ref);
    free(jobs);
    free(b);
    throw_arg(env, "cannot wrap CryptoBatch");
    return NULL;
  }
  if (pool) {
    b->pool = pool;
    pool->refs++;
  }
  return self;
}

/* The CryptoBatch a method was called on (its arguments into argv, up to *argc), as unwrap_this
 * does for handles; NULL after throwing. */
static batch_t *batch_this(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  napi_get_cb_info(env, info, argc, argv, &self, NULL);
  void *data = NULL;
  if (napi_unwrap(env, self, &data) != napi_ok || !data) {
    throw_arg(env, "not a CryptoBatch");
    return NULL;
  }
  return data;
}

/* seal/open(aead, buf, off, len, adBuf, adOff, ctrBuf, ctrOff): queues one job, returns its index. */
static napi_value batch_queue(napi_env env, napi_callback_info info, uint32_t op) {
  size_t argc = 8;
  napi_value argv[8];
  batch_t *b = batch_this(env, info, &argc, argv);
  if (!b) return NULL;
  void *d, *adb, *ctrb;
  size_t blen, adlen, ctrlen;
  uint32_t off, len, adoff, ctroff;
  aead_t *a = argc >= 8 ? aead_from(env, argv[0]) : NULL;
  if (!a || napi_get_buffer_info(env, argv[1], &d, &blen) != napi_ok || napi_get_value_uint32(env, argv[2], &off) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &len) != napi_ok || napi_get_buffer_info(env, argv[4], &adb, &adlen) != napi_ok ||
      napi_get_value_uint32(env, argv[5], &adoff) != napi_ok || napi_get_buffer_info(env, argv[6], &ctrb, &ctrlen) != napi_ok ||
      napi_get_value_uint32(env, argv[7], &ctroff) != napi_ok) {
    throw_arg(env, "CryptoBatch seal/open(aead, buf, off, len, adBuf, adOff, ctrBuf, ctrOff)");
    return NULL;
  }
  if (!a->live || a->destroyed) {
    throw_arg(env, "CryptoBatch seal/open: the key was destroyed");
    return NULL;
  }
  if ((size_t)adoff + AEAD_AD > adlen || (size_t)ctroff + 8 > ctrlen) {
    throw_arg(env, "CryptoBatch seal/open: AD or counter outside its buffer");
    return NULL;
  }
  if (op == OP_SEAL && (size_t)off + len + AEAD_TAG > blen) {
    throw_arg(env, "CryptoBatch seal: no room for the tag after the message");
    return NULL;
  }
  if (b->n >= b->cap) {
    char msg[160];
    snprintf(msg, sizeof msg, "crypto batch full: %u jobs queued, its capacity; run() it before queuing more", b->cap);
    napi_throw_error(env, "ERR_CRYPTO_BATCH_FULL", msg);
    return NULL;
  }
  uint32_t i = b->n++;
  job_t *j = &b->jobs[i];
  if (op == OP_OPEN && (len < AEAD_TAG || (size_t)off + len > blen)) {
    j->a = NULL;
    j->op = OP_FAILED;
    b->results[i] = -1;
  } else {
    j->a = a;
    aead_pin(a);
    j->op = op;
    j->m = (uint8_t *)d + off;
    j->len = len;
    memcpy(j->ad, (uint8_t *)adb + adoff, AEAD_AD);
    memset(j->nonce, 0, 4);
    memcpy(j->nonce + 4, (uint8_t *)ctrb + ctroff, 8);
    b->bytes += len;
  }
  napi_value v;
  napi_create_uint32(env, i, &v);
  return v;
}

static napi_value batch_seal(napi_env env, napi_callback_info info) { return batch_queue(env, info, OP_SEAL); }
static napi_value batch_open(napi_env env, napi_callback_info info) { return batch_queue(env, info, OP_OPEN); }

static napi_value batch_run(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  batch_t *b = batch_this(env, info, &argc, NULL);
  if (!b) return NULL;
  uint32_t n = b->n, failed = 0;
  if (n > 0) {
    pool_t *p = b->pool;
    b->stats[0]++;
    b->stats[2] += n;
    b->stats[4] += (double)b->bytes;
    if (p && p->started > 0 && n > 1 && b->bytes >= b->inline_below) {
      b->stats[1]++;
      b->stats[3] += n;
      b->stats[5] += (double)b->bytes;
      b->stats[6] += pool_run(p, b->jobs, b->results, n);
    } else {
      for (uint32_t i = 0; i < n; i++) run_job(&b->jobs[i], &b->results[i], 0);
    }
    for (uint32_t i = 0; i < n; i++)
      if (b->results[i] < 0) failed++;
    batch_unpin(b);
  }
  napi_value v;
  napi_create_uint32(env, failed, &v);
  return v;
}

static napi_value batch_clear(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  batch_t *b = batch_this(env, info, &argc, NULL);
  if (b) batch_unpin(b);
  return NULL;
}

static napi_value batch_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  batch_t *b = batch_this(env, info, &argc, NULL);
  if (!b) return NULL;
  napi_value arr, v;
  napi_create_array_with_length(env, 7, &arr);
  for (uint32_t i = 0; i < 7; i++) {
    napi_create_double(env, b->stats[i], &v);
    napi_set_element(env, arr, i, v);
  }
  return arr;
}

#define METHOD(n, f) {n, NULL, f, NULL, NULL, NULL, napi_default_method, NULL}

void crypto_pool_register(napi_env env, napi_value exports) {
  napi_property_descriptor pool_props[] = {METHOD("close", pool_close), METHOD("running", pool_running)};
  napi_property_descriptor batch_props[] = {
      METHOD("seal", batch_seal), METHOD("open", batch_open), METHOD("run", batch_run),
      METHOD("clear", batch_clear), METHOD("stats", batch_stats),
  };
  napi_value cls;
  napi_define_class(env, "CryptoPool", NAPI_AUTO_LENGTH, pool_ctor, NULL, sizeof pool_props / sizeof pool_props[0], pool_props, &cls);
  napi_set_named_property(env, exports, "CryptoPool", cls);
  napi_define_class(env, "CryptoBatch", NAPI_AUTO_LENGTH, batch_ctor, NULL, sizeof batch_props / sizeof batch_props[0], batch_props,
                    &cls);
  napi_set_named_property(env, exports, "CryptoBatch", cls);
  napi_value v;
  napi_create_uint32(env, BATCH_MAX, &v);
  napi_set_named_property(env, exports, "CRYPTO_BATCH_MAX", v);
}
