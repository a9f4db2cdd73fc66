/*
 * weft-cni: the CNI plugin binary the runtime executes. It starts in about a millisecond and
 * hands the call to the weft router over its local API socket, which runs the plugin's
 * TypeScript code in-process (POST /v1/cni/exec): CNI_* variables as headers, the network
 * config (stdin) as the body; the answer carries the plugin's stdout as its body and its exit
 * code in `X-Cni-Exit`.
 *
 * When the router cannot be reached (not running, socket missing) or does not know the route,
 * it execs the Node plugin beside it (`weft-node`, the wrapper install writes), with the same
 * environment and stdin, so DEL still succeeds (journaling the release), STATUS reports the
 * router as unavailable, and VERSION works. The socket comes from the config's top-level
 * "socket" string (default /run/weft/weft.sock), found by parsing the config as JSON (escapes
 * decoded, the last of duplicate keys taken, as JSON.parse does). A config that is not a JSON
 * object, or whose "socket" is not an absolute path that fits a Unix socket address, goes to the
 * Node plugin too, which reports the problem with the spec's error code.
 *
 * The pod's netns path is valid in the runtime's mount namespace, which need not be the
 * router's (a router in a container, or started by `ip netns exec`). So the binary holds the
 * netns open while the router works and names it as /proc/<pid>/fd/<fd> in `X-Weft-Netns-Via`:
 * that path reaches the namespace from any mount namespace of the same PID namespace.
 *
 * Time limits (the same numbers as src/cni/limits.ts): the router must answer within ADD 10 s,
 * GC 10 s, DEL 5 s, CHECK 5 s, STATUS 3 s, VERSION 3 s from this binary's start. It is told a
 * deadline 1 s earlier (`X-Weft-Deadline`, ms since the epoch) so that it rolls back and answers
 * first. When it does not answer in time (hung, stopped), it is not asked again: the Node plugin
 * runs with WEFT_CNI_ROUTER_TIMED_OUT set (the limit in seconds) and does what it can without the
 * router (DEL removes the host end and journals the release; the others fail with their code).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *const VARS[] = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"};

#define ROUTER_MARGIN_MS 1000
#define TIMED_OUT_ENV "WEFT_CNI_ROUTER_TIMED_OUT"

/* The router's time to answer, per command (src/cni/limits.ts). */
static long limit_ms(const char *command) {
  if (command == NULL) return 3000;
  if (strcmp(command, "ADD") == 0 || strcmp(command, "GC") == 0) return 10000;
  if (strcmp(command, "DEL") == 0 || strcmp(command, "CHECK") == 0) return 5000;
  return 3000;
}

static long long clock_ms(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct buf {
  char *p;
  size_t n, cap;
};

static int append(struct buf *b, const void *data, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap == 0 ? 4096 : b->cap;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) return -1;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, data, n);
  b->n += n;
  b->p[b->n] = '\0';
  return 0;
}

static int read_all(int fd, struct buf *b) {
  char chunk[16384];
  for (;;) {
    ssize_t r = read(fd, chunk, sizeof chunk);
    if (r == 0) return 0;
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (append(b, chunk, (size_t)r) != 0) return -1;
  }
}

/* Like read_all, but gives up at `deadline` (CLOCK_MONOTONIC ms): returns -2 then. */
static int read_until(int fd, struct buf *b, long long deadline) {
  char chunk[16384];
  for (;;) {
    long long left = deadline - clock_ms(CLOCK_MONOTONIC);
    if (left <= 0) return -2;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, (int)left);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) return -2;
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n == 0) return 0;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return -1;
    }
    if (append(b, chunk, (size_t)n) != 0) return -1;
  }
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* ---------- the network config: enough JSON to find the top-level "socket" ---------- */

#define DEFAULT_SOCKET "/run/weft/weft.sock"
#define JSON_MAX_DEPTH 256

struct json {
  const char *p, *end;
  int depth;
};

static void json_ws(struct json *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *out = v;
  return 0;
}

/* Puts byte c at out[*n] while it fits (cap includes the final NUL); counts it either way. */
static void put(char *out, size_t cap, size_t *n, char c) {
  if (out != NULL && *n + 1 < cap) out[*n] = c;
  (*n)++;
}

/* A string at j->p (its opening quote), decoded (UTF-8) into out when out is not NULL. Returns the
 * decoded length (which may exceed cap - 1: then out holds only the start), or -1 when it is not a
 * JSON string. *nul is set when it holds a NUL character. */
static long json_string(struct json *j, char *out, size_t cap, int *nul) {
  size_t n = 0;
  *nul = 0;
  if (j->p >= j->end || *j->p != '"') return -1;
  j->p++;
  while (j->p < j->end) {
    unsigned char c = (unsigned char)*j->p++;
    if (c == '"') {
      if (out != NULL && cap > 0) out[n < cap ? n : cap - 1] = '\0';
      return (long)n;
    }
    if (c < 0x20) return -1;
    if (c != '\\') {
      put(out, cap, &n, (char)c);
      continue;
    }
    if (j->p >= j->end) return -1;
    char e = *j->p++;
    unsigned u;
    switch (e) {
      case '"': case '\\': case '/': put(out, cap, &n, e); break;
      case 'b': put(out, cap, &n, '\b'); break;
      case 'f': put(out, cap, &n, '\f'); break;
      case 'n': put(out, cap, &n, '\n'); break;
      case 'r': put(out, cap, &n, '\r'); break;
      case 't': put(out, cap, &n, '\t'); break;
      case 'u':
        if (j->end - j->p < 4 || hex4(j->p, &u) != 0) return -1;
        j->p += 4;
        if (u >= 0xD800 && u <= 0xDBFF && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
          unsigned lo;
          if (hex4(j->p + 2, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
            j->p += 6;
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
          }
        }
        if (u >= 0xD800 && u <= 0xDFFF) u = 0xFFFD; /* a lone surrogate, as JSON.parse then UTF-8 gives */
        if (u == 0) *nul = 1;
        if (u < 0x80) {
          put(out, cap, &n, (char)u);
        } else if (u < 0x800) {
          put(out, cap, &n, (char)(0xC0 | (u >> 6)));
          put(out, cap, &n, (char)(0x80 | (u & 0x3F)));
        } else if (u < 0x10000) {
          put(out, cap, &n, (char)(0xE0 | (u >> 12)));
          put(out, cap, &n, (char)(0x80 | ((u >> 6) & 0x3F)));
          put(out, cap, &n, (char)(0x80 | (u & 0x3F)));
        } else {
          put(out, cap, &n, (char)(0xF0 | (u >> 18)));
          put(out, cap, &n, (char)(0x80 | ((u >> 12) & 0x3F)));
          put(out, cap, &n, (char)(0x80 | ((u >> 6) & 0x3F)));
          put(out, cap, &n, (char)(0x80 | (u & 0x3F)));
        }
        break;
      default:
        return -1;
    }
  }
  return -1;
}

static int json_digits(struct json *j) {
  const char *start = j->p;
  while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
  return j->p > start ? 0 : -1;
}

static int json_number(struct json *j) {
  if (j->p < j->end && *j->p == '-') j->p++;
  if (j->p < j->end && *j->p == '0') j->p++;
  else if (json_digits(j) != 0) return -1;
  if (j->p < j->end && *j->p == '.') {
    j->p++;
    if (json_digits(j) != 0) return -1;
  }
  if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
    j->p++;
    if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
    if (json_digits(j) != 0) return -1;
  }
  return 0;
}

static int json_literal(struct json *j, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) return -1;
  j->p += n;
  return 0;
}

static int json_value(struct json *j);

/* An object or array at j->p; 0 when well-formed. */
static int json_container(struct json *j, char close) {
  if (++j->depth > JSON_MAX_DEPTH) return -1;
  j->p++;
  json_ws(j);
  if (j->p < j->end && *j->p == close) {
    j->p++;
    j->depth--;
    return 0;
  }
  for (;;) {
    int nul;
    if (close == '}') {
      if (json_string(j, NULL, 0, &nul) < 0) return -1;
      json_ws(j);
      if (j->p >= j->end || *j->p++ != ':') return -1;
      json_ws(j);
    }
    if (json_value(j) != 0) return -1;
    json_ws(j);
    if (j->p >= j->end) return -1;
    char c = *j->p++;
    if (c == close) break;
    if (c != ',') return -1;
    json_ws(j);
  }
  j->depth--;
  return 0;
}

static int json_value(struct json *j) {
  int nul;
  if (j->p >= j->end) return -1;
  switch (*j->p) {
    case '{': return json_container(j, '}');
    case '[': return json_container(j, ']');
    case '"': return json_string(j, NULL, 0, &nul) < 0 ? -1 : 0;
    case 't': return json_literal(j, "true");
    case 'f': return json_literal(j, "false");
    case 'n': return json_literal(j, "null");
    default: return json_number(j);
  }
}

/* The router's socket from the network config into out (the default when it names none). Returns
 * NULL when found, else why the config cannot be used (the Node plugin then reports it). */
static const char *socket_path(const char *config, size_t len, char *out, size_t size) {
  struct json j = {config, config + len, 0};
  const char *why = NULL;
  int found = 0;
  snprintf(out, size, "%s", DEFAULT_SOCKET);
  json_ws(&j);
  if (j.p >= j.end || *j.p != '{') return "the network config is not a JSON object";
  j.depth = 1;
  j.p++;
  json_ws(&j);
  if (j.p < j.end && *j.p == '}') j.p++;
  else
    for (;;) {
      char key[8];
      int nul;
      long kn = json_string(&j, key, sizeof key, &nul);
      if (kn < 0) return "the network config is not valid JSON";
      json_ws(&j);
      if (j.p >= j.end || *j.p++ != ':') return "the network config is not valid JSON";
      json_ws(&j);
      if (kn == 6 && !nul && memcmp(key, "socket", 6) == 0) {
        /* the last "socket" counts, as with JSON.parse */
        found = 1;
        why = NULL;
        if (j.p >= j.end || *j.p != '"') {
          why = "\"socket\" in the network config is not a string";
          if (json_value(&j) != 0) return "the network config is not valid JSON";
        } else {
          long n = json_string(&j, out, size, &nul);
          if (n < 0) return "the network config is not valid JSON";
          if ((size_t)n >= size) why = "\"socket\" in the network config is too long for a Unix socket";
          else if (nul) why = "\"socket\" in the network config holds a NUL character";
          else if (out[0] != '/') why = "\"socket\" in the network config is not an absolute path";
        }
      } else if (json_value(&j) != 0) {
        return "the network config is not valid JSON";
      }
      json_ws(&j);
      if (j.p >= j.end) return "the network config is not valid JSON";
      char c = *j.p++;
      if (c == '}') break;
      if (c != ',') return "the network config is not valid JSON";
      json_ws(&j);
    }
  json_ws(&j);
  if (j.p != j.end) return "the network config is not valid JSON";
  if (!found) snprintf(out, size, "%s", DEFAULT_SOCKET);
  if (why != NULL) snprintf(out, size, "%s", DEFAULT_SOCKET);
  return why;
}

/* Writes s as the inside of a JSON string. */
static void print_json_text(const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
}

/* Runs the Node plugin beside this binary with our environment and `config` as its stdin; when
 * it cannot be started, writes a CNI error with `code` saying `why`. */
static int fallback(const struct buf *config, int code, const char *why) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    char node[PATH_MAX];
    snprintf(node, sizeof node, "%s/weft-node", dirname(self));
    int fd = memfd_create("weft-cni-stdin", 0);
    if (fd >= 0 && write_all(fd, config->p == NULL ? "" : config->p, config->n) == 0 && lseek(fd, 0, SEEK_SET) == 0 && dup2(fd, 0) == 0) {
      char *argv[] = {node, NULL};
      execve(node, argv, environ);
    }
  }
  printf("{\"cniVersion\":\"1.0.0\",\"code\":%d,\"msg\":\"", code);
  print_json_text(why);
  printf(", and the Node plugin weft-node beside weft could not be started\"}\n");
  return 1;
}

/* The router accepted the call but did not answer in time: the Node plugin does what it can
 * without asking it again. */
static int timed_out(const struct buf *config, const char *path, long limit) {
  char secs[32], why[PATH_MAX + 96];
  snprintf(secs, sizeof secs, "%ld", (limit + 999) / 1000);
  setenv(TIMED_OUT_ENV, secs, 1);
  snprintf(why, sizeof why, "the weft router at %s did not answer within %s s", path, secs);
  return fallback(config, 11, why);
}

int main(void) {
  const long long started = clock_ms(CLOCK_MONOTONIC);
  const long long started_epoch = clock_ms(CLOCK_REALTIME);
  const long limit = limit_ms(getenv("CNI_COMMAND"));
  const long long deadline = started + limit;
  unsetenv(TIMED_OUT_ENV); /* only this binary sets it */
  struct buf config = {0};
  if (read_all(0, &config) != 0) {
    /* Unreadable stdin (closed, a directory): the spec's I/O error, code 5. VERSION needs no
     * input and answers anyway (the Node plugin does so with empty input). */
    int e = errno;
    const char *cmd = getenv("CNI_COMMAND");
    if (cmd == NULL || strcmp(cmd, "VERSION") != 0) {
      printf("{\"cniVersion\":\"1.0.0\",\"code\":5,\"msg\":\"cannot read the network config from stdin: ");
      print_json_text(strerror(e));
      printf("\"}\n");
      return 1;
    }
    config.n = 0;
  }
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  const char *bad = socket_path(config.p == NULL ? "" : config.p, config.n, path, sizeof path);
  if (bad != NULL) return fallback(&config, 7, bad);

  char why[sizeof path + 160];
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  memcpy(addr.sun_path, path, strlen(path) + 1);
  /* connect (when the router's backlog is full) and write wait at most until the deadline */
  long long left = deadline - clock_ms(CLOCK_MONOTONIC);
  struct timeval tv = {.tv_sec = left > 0 ? left / 1000 : 0, .tv_usec = left > 0 ? (left % 1000) * 1000 : 1000};
  if (s >= 0) setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS) return timed_out(&config, path, limit);
    snprintf(why, sizeof why, "the weft router is not reachable at %s (%s)", path, strerror(errno));
    return fallback(&config, 11, why);
  }

  struct buf req = {0};
  char line[8192];
  int len = snprintf(line, sizeof line, "POST /v1/cni/exec HTTP/1.1\r\nHost: weft\r\nConnection: close\r\nContent-Type: application/octet-stream\r\nContent-Length: %zu\r\n", config.n);
  append(&req, line, (size_t)len);
  for (size_t i = 0; i < sizeof VARS / sizeof VARS[0]; i++) {
    const char *v = getenv(VARS[i]);
    if (v == NULL || strpbrk(v, "\r\n") != NULL) continue;
    len = snprintf(line, sizeof line, "X-%s: %s\r\n", VARS[i], v);
    if (len > 0 && (size_t)len < sizeof line) append(&req, line, (size_t)len);
  }
  const char *netns = getenv("CNI_NETNS");
  int nsfd = netns != NULL && *netns != '\0' ? open(netns, O_RDONLY) : -1;
  if (nsfd >= 0) {
    len = snprintf(line, sizeof line, "X-Weft-Netns-Via: /proc/%d/fd/%d\r\n", (int)getpid(), nsfd);
    append(&req, line, (size_t)len);
  }
  len = snprintf(line, sizeof line, "X-Weft-Deadline: %lld\r\n", started_epoch + limit - ROUTER_MARGIN_MS);
  append(&req, line, (size_t)len);
  append(&req, "\r\n", 2);
  if (config.n > 0) append(&req, config.p, config.n);
  if (req.p == NULL || write_all(s, req.p, req.n) != 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return timed_out(&config, path, limit);
    snprintf(why, sizeof why, "the weft router at %s did not take the call (%s)", path, strerror(errno));
    return fallback(&config, 11, why);
  }

  struct buf res = {0};
  int got = read_until(s, &res, deadline);
  if (got == -2) return timed_out(&config, path, limit);
  if (got != 0 || res.p == NULL) return fallback(&config, 11, "the weft router did not answer");
  close(s);
  int status = 0;
  if (sscanf(res.p, "HTTP/1.%*d %d", &status) != 1 || status != 200) return fallback(&config, 11, "the weft router does not run CNI calls");
  char *body = strstr(res.p, "\r\n\r\n");
  if (body == NULL) return fallback(&config, 11, "the weft router gave a malformed answer");
  *body = '\0';
  body += 4;
  int code = 1;
  for (char *h = strstr(res.p, "\r\n"); h != NULL; h = strstr(h + 2, "\r\n")) {
    if (strncasecmp(h + 2, "x-cni-exit:", 11) == 0) code = atoi(h + 13);
  }
  write_all(1, body, res.n - (size_t)(body - res.p));
  return code;
}
