/*
 * rtnetlink requests from the thread pool: interface, address and route changes without a
 * process per change (the CNI plugin's ADD and DEL run through here).
 *
 *   netnsOpen(path) -> fd        a network namespace file, checked to be one (NS_GET_NSTYPE)
 *   closeFd(fd)
 *   rtnlTransact(nsFd, requests, cb(result), timeoutMs = 10000)
 *
 * rtnlTransact runs on the libuv thread pool: it opens a NETLINK_ROUTE socket in namespace nsFd
 * (-1: the caller's), entering it on that thread only for the socket() call, then sends the
 * requests (netlink messages back to back in one Buffer) one at a time, each with NLM_F_ACK, and
 * stops at the first refusal. The result: { done, errno, code, message, replies } where done
 * counts the acknowledged requests, errno is 0 or the refusal's positive errno (code its name),
 * message is the kernel's extended ack text, else strerror (or "" on success), and replies holds
 * every non-ack message answering the done requests, back to back. A socket per call:
 * concurrent calls never read each other's answers. Each wait for an answer is bounded by
 * timeoutMs (SO_RCVTIMEO): an answer that never comes fails the call with ETIMEDOUT instead of
 * holding a pool thread forever.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "napi_util.h"
#include "rtnl.h"

#define REPLY_BUF 65536
#define DEFAULT_TIMEOUT_MS 10000
#define MAX_TIMEOUT_MS 600000

typedef struct {
  napi_async_work work;
  napi_ref cb;
  int ns_fd;
  uint32_t timeout_ms;
  uint8_t *req;
  size_t req_len;
  uint8_t *replies;
  size_t rep_len, rep_cap;
  int done;
  int err;
  char msg[512];
} txn_t;

static int append(txn_t *t, const void *p, size_t n) {
  if (t->rep_len + n > t->rep_cap) {
    size_t cap = t->rep_cap ? t->rep_cap * 2 : 4096;
    while (cap < t->rep_len + n) cap *= 2;
    uint8_t *r = realloc(t->replies, cap);
    if (r == NULL) return ENOMEM;
    t->replies = r;
    t->rep_cap = cap;
  }
  memcpy(t->replies + t->rep_len, p, n);
  t->rep_len += n;
  return 0;
}

/* The socket, made inside namespace ns_fd (-1: here), receiving with a timeout; -errno on failure. */
static int open_socket(int ns_fd, uint32_t timeout_ms) {
  int self = -1;
  if (ns_fd >= 0) {
    self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self < 0) return -errno;
    if (setns(ns_fd, CLONE_NEWNET) < 0) {
      int e = errno;
      close(self);
      return -e;
    }
  }
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  int e = errno;
  if (self >= 0) {
    if (setns(self, CLONE_NEWNET) < 0) abort(); /* a pool thread left in a pod's namespace would be worse */
    close(self);
  }
  if (s < 0) return -e;
  int one = 1;
  setsockopt(s, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(s, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
  if (setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) {
    e = errno;
    close(s);
    return -e;
  }
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
    e = errno;
    close(s);
    return -e;
  }
  return s;
}

/* The extended ack's message, if the kernel sent one. */
static void extack(txn_t *t, const struct nlmsghdr *m) {
  if (!(m->nlmsg_flags & NLM_F_ACK_TLVS)) return;
  size_t off = NLMSG_HDRLEN + sizeof(struct nlmsgerr); /* NETLINK_CAP_ACK: no copy of the request */
  while (off + NLA_HDRLEN <= m->nlmsg_len) {
    const struct nlattr *a = (const void *)((const uint8_t *)m + off);
    if (a->nla_len < NLA_HDRLEN || off + a->nla_len > m->nlmsg_len) return;
    if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
      size_t n = a->nla_len - NLA_HDRLEN;
      if (n >= sizeof t->msg) n = sizeof t->msg - 1;
      memcpy(t->msg, (const uint8_t *)a + NLA_HDRLEN, n);
      t->msg[n] = 0;
      return;
    }
    off += NLA_ALIGN(a->nla_len);
  }
}

/* Receives until the ack of `seq`; 0 when acknowledged, else an errno (t->err set for refusals). */
static int await_ack(txn_t *t, int s, uint32_t seq, uint8_t *buf) {
  for (;;) {
    ssize_t r = recv(s, buf, REPLY_BUF, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        snprintf(t->msg, sizeof t->msg, "no answer from the kernel within %u ms", t->timeout_ms);
        return ETIMEDOUT;
      }
      snprintf(t->msg, sizeof t->msg, "receiving the answer: %s", strerror(errno));
      return errno;
    }
    int len = (int)r;
    for (struct nlmsghdr *m = (struct nlmsghdr *)buf; NLMSG_OK(m, len); m = NLMSG_NEXT(m, len)) {
      if (m->nlmsg_seq != seq) continue;
      if (m->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(m);
        if (e->error == 0) return 0;
        extack(t, m);
        return -e->error;
      }
      if (m->nlmsg_type == NLMSG_DONE) return 0;
      int a = append(t, m, m->nlmsg_len);
      if (a != 0) return a;
    }
  }
}

static void txn_execute(napi_env env, void *data) {
  txn_t *t = data;
  int s = open_socket(t->ns_fd, t->timeout_ms);
  if (s < 0) {
    t->err = -s;
    snprintf(t->msg, sizeof t->msg, "opening a netlink socket%s: %s", t->ns_fd >= 0 ? " in the namespace" : "", strerror(-s));
    return;
  }
  uint8_t *buf = malloc(REPLY_BUF);
  if (buf == NULL) {
    t->err = ENOMEM;
    close(s);
    return;
  }
  uint32_t seq = 0;
  size_t off = 0;
  while (off + NLMSG_HDRLEN <= t->req_len) {
    struct nlmsghdr *h = (struct nlmsghdr *)(t->req + off);
    if (h->nlmsg_len < NLMSG_HDRLEN || off + h->nlmsg_len > t->req_len) {
      t->err = EINVAL;
      snprintf(t->msg, sizeof t->msg, "request %d is malformed (length %u at offset %zu of %zu)", t->done, h->nlmsg_len, off, t->req_len);
      break;
    }
    h->nlmsg_seq = ++seq;
    h->nlmsg_pid = 0;
    h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    ssize_t n;
    do n = send(s, h, h->nlmsg_len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
      t->err = errno;
      snprintf(t->msg, sizeof t->msg, "sending request %d: %s", t->done, strerror(errno));
      break;
    }
    int e = await_ack(t, s, seq, buf);
    if (e != 0) {
      t->err = e;
      break;
    }
    t->done++;
    off += NLMSG_ALIGN(h->nlmsg_len);
  }
  free(buf);
  close(s);
}

static void txn_complete(napi_env env, napi_status status, void *data) {
  txn_t *t = data;
  napi_value cb, global, res, v;
  napi_get_reference_value(env, t->cb, &cb);
  napi_get_global(env, &global);
  napi_create_object(env, &res);
  napi_create_int32(env, t->done, &v);
  napi_set_named_property(env, res, "done", v);
  napi_create_int32(env, t->err, &v);
  napi_set_named_property(env, res, "errno", v);
  napi_create_string_utf8(env, t->err ? errno_name(t->err) : "", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, res, "code", v);
  /* the kernel's own words when it gave some, else the errno's */
  napi_create_string_utf8(env, t->msg[0] == 0 && t->err ? strerror(t->err) : t->msg, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, res, "message", v);
  void *copy;
  napi_create_buffer_copy(env, t->rep_len, t->replies ? (void *)t->replies : (void *)"", &copy, &v);
  napi_set_named_property(env, res, "replies", v);
  napi_call_function(env, global, cb, 1, &res, NULL);
  napi_delete_reference(env, t->cb);
  napi_delete_async_work(env, t->work);
  free(t->req);
  free(t->replies);
  free(t);
}

static napi_value rtnl_transact(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t ns_fd;
  uint32_t timeout_ms = DEFAULT_TIMEOUT_MS;
  bool is_buf = false;
  napi_valuetype cbt = napi_undefined, tt = napi_undefined;
  if (argc >= 3) {
    napi_is_buffer(env, argv[1], &is_buf);
    napi_typeof(env, argv[2], &cbt);
  }
  if (argc == 4) napi_typeof(env, argv[3], &tt);
  if (argc < 3 || napi_get_value_int32(env, argv[0], &ns_fd) != napi_ok || !is_buf || cbt != napi_function ||
      (tt != napi_undefined && (napi_get_value_uint32(env, argv[3], &timeout_ms) != napi_ok || timeout_ms == 0 ||
                                timeout_ms > MAX_TIMEOUT_MS))) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "rtnlTransact(nsFd: number, requests: Buffer, cb: Function, timeoutMs?: 1..600000)");
    return NULL;
  }
  void *data;
  size_t len;
  napi_get_buffer_info(env, argv[1], &data, &len);
  txn_t *t = calloc(1, sizeof *t);
  if (t != NULL) t->req = malloc(len ? len : 1);
  if (t == NULL || t->req == NULL) {
    free(t);
    napi_throw_error(env, "ERR_NO_MEMORY", "rtnlTransact: out of memory");
    return NULL;
  }
  memcpy(t->req, data, len);
  t->req_len = len;
  t->ns_fd = ns_fd;
  t->timeout_ms = timeout_ms;
  napi_create_reference(env, argv[2], 1, &t->cb);
  napi_value name;
  napi_create_string_utf8(env, "weft:rtnl", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, txn_execute, txn_complete, t, &t->work);
  napi_queue_async_work(env, t->work);
  return NULL;
}

static napi_value netns_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char path[PATH_MAX];
  size_t need, got;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 1 || napi_get_value_string_utf8(env, argv[0], NULL, 0, &need) != napi_ok || need == 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "netnsOpen(path: string)");
    return NULL;
  }
  if (need >= sizeof path) {
    /* never truncated: the first PATH_MAX - 1 bytes could name another namespace */
    char head[65], target[128];
    napi_get_value_string_utf8(env, argv[0], head, sizeof head, &got);
    snprintf(target, sizeof target, "%s... (%zu bytes, at most %d)", head, need, PATH_MAX - 1);
    throw_sys(env, "ERR_NETNS", "open", ENAMETOOLONG, target);
    return NULL;
  }
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &got) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "netnsOpen(path: string)");
    return NULL;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw_sys(env, "ERR_NETNS", "open", errno, path);
    return NULL;
  }
  int type = ioctl(fd, NS_GET_NSTYPE);
  if (type != CLONE_NEWNET) {
    close(fd);
    throw_sys(env, "ERR_NETNS", type < 0 ? "ioctl(NS_GET_NSTYPE)" : "namespace type check", type < 0 && errno != ENOTTY ? errno : EINVAL, path);
    return NULL;
  }
  napi_value v;
  napi_create_int32(env, fd, &v);
  return v;
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc == 1 && napi_get_value_int32(env, argv[0], &fd) == napi_ok && fd > 2) close(fd);
  return NULL;
}

void rtnl_register(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "rtnlTransact", NAPI_AUTO_LENGTH, rtnl_transact, NULL, &fn);
  napi_set_named_property(env, exports, "rtnlTransact", fn);
  napi_create_function(env, "netnsOpen", NAPI_AUTO_LENGTH, netns_open, NULL, &fn);
  napi_set_named_property(env, exports, "netnsOpen", fn);
  napi_create_function(env, "closeFd", NAPI_AUTO_LENGTH, close_fd, NULL, &fn);
  napi_set_named_property(env, exports, "closeFd", fn);
}
