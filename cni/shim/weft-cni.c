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
 * router as unavailable, and VERSION works. The socket comes from the config's "socket" field
 * (default /run/weft/weft.sock).
 *
 * The pod's netns path is valid in the runtime's mount namespace, which need not be the
 * router's (a router in a container, or started by `ip netns exec`). So the binary holds the
 * netns open while the router works and names it as /proc/<pid>/fd/<fd> in `X-Weft-Netns-Via`:
 * that path reaches the namespace from any mount namespace of the same PID namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

static const char *const VARS[] = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"};

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

/* The "socket" string of the network config, or the default. Paths hold no quotes or escapes. */
static void socket_path(const char *config, char *out, size_t size) {
  snprintf(out, size, "%s", "/run/weft/weft.sock");
  const char *k = strstr(config, "\"socket\"");
  if (k == NULL) return;
  k += 8;
  while (*k == ' ' || *k == '\t' || *k == '\n' || *k == '\r') k++;
  if (*k++ != ':') return;
  while (*k == ' ' || *k == '\t' || *k == '\n' || *k == '\r') k++;
  if (*k++ != '"') return;
  const char *end = strchr(k, '"');
  if (end == NULL || (size_t)(end - k) >= size || memchr(k, '\\', (size_t)(end - k)) != NULL) return;
  memcpy(out, k, (size_t)(end - k));
  out[end - k] = '\0';
}

/* Runs the Node plugin beside this binary with our environment and `config` as its stdin. */
static int fallback(const struct buf *config, const char *why) {
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
  printf("{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"the weft router is not reachable (%s) and the Node plugin weft-node beside weft could not be started\"}\n", why);
  return 1;
}

int main(void) {
  struct buf config = {0};
  if (read_all(0, &config) != 0) {
    printf("{\"cniVersion\":\"1.0.0\",\"code\":6,\"msg\":\"cannot read the network config from stdin\"}\n");
    return 1;
  }
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  socket_path(config.p == NULL ? "" : config.p, path, sizeof path);

  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
  if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) return fallback(&config, strerror(errno));
  struct timeval tv = {.tv_sec = 120};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

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
  append(&req, "\r\n", 2);
  if (config.n > 0) append(&req, config.p, config.n);
  if (req.p == NULL || write_all(s, req.p, req.n) != 0) return fallback(&config, strerror(errno));

  struct buf res = {0};
  if (read_all(s, &res) != 0 || res.p == NULL) return fallback(&config, "no answer");
  close(s);
  int status = 0;
  if (sscanf(res.p, "HTTP/1.%*d %d", &status) != 1 || status != 200) return fallback(&config, "the router does not run CNI calls");
  char *body = strstr(res.p, "\r\n\r\n");
  if (body == NULL) return fallback(&config, "a malformed answer");
  *body = '\0';
  body += 4;
  int code = 1;
  for (char *h = strstr(res.p, "\r\n"); h != NULL; h = strstr(h + 2, "\r\n")) {
    if (strncasecmp(h + 2, "x-cni-exit:", 11) == 0) code = atoi(h + 13);
  }
  write_all(1, body, res.n - (size_t)(body - res.p));
  return code;
}
