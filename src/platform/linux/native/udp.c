/* UDP sockets (see udp.h). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "handles.h"
#include "napi_util.h"
#include "netns.h"
#include "udp.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define TX_DESC_STRIDE 4
#define TX_IOV_STRIDE 3
#define TX_CTRL_SZ CMSG_SPACE(sizeof(uint16_t))
/* Pieces of one datagram when a GSO message is sent as separate datagrams (send_split). */
#define SPLIT_MAX_IOV 64

static int make_sockaddr(napi_env env, const char *addr, uint32_t port, int family, struct sockaddr_storage *ss,
                         socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct in_addr a4;
  struct in6_addr a6;
  if (inet_pton(AF_INET, addr, &a4) == 1) {
    if (family == 6) {
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons((uint16_t)port);
      s6->sin6_addr.s6_addr[10] = 0xff;
      s6->sin6_addr.s6_addr[11] = 0xff;
      memcpy(&s6->sin6_addr.s6_addr[12], &a4, 4);
      *len = sizeof *s6;
    } else {
      struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
      s4->sin_family = AF_INET;
      s4->sin_port = htons((uint16_t)port);
      s4->sin_addr = a4;
      *len = sizeof *s4;
    }
    return 1;
  }
  if (inet_pton(AF_INET6, addr, &a6) == 1) {
    if (family != 6) {
      throw_arg(env, "an IPv6 destination needs an IPv6 socket (listen on an IPv6 address or ::)");
      return 0;
    }
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    s6->sin6_addr = a6;
    *len = sizeof *s6;
    return 1;
  }
  char msg[160];
  snprintf(msg, sizeof msg, "\"%s\" is not an IP address", addr);
  throw_arg(env, msg);
  return 0;
}

static void set_buf_opt(int fd, int force_opt, int opt, int size) {
  if (size <= 0) return;
  if (setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof size) < 0) setsockopt(fd, SOL_SOCKET, opt, &size, sizeof size);
}

/* new Udp({ address, port, rcvbuf, sndbuf, gro, arena, meta, stats, stride, maxBatch,
 *           txDesc: Int32Array, txIov: Int32Array, txMax, txIovMax, maxDests }) */
napi_value udp_ctor(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  if (argc < 1) {
    throw_arg(env, "new Udp(options) needs options");
    return NULL;
  }
  handle_t *h = new_handle(env, KIND_UDP);
  if (!h) {
    throw_sys(env, "ERR_UDP_OPEN", "calloc", ENOMEM, "udp");
    return NULL;
  }
  char addr[INET6_ADDRSTRLEN + 8];
  uint32_t port, rcvbuf, sndbuf, maxd;
  int alen = opt_string(env, argv[0], "address", addr, sizeof addr);
  if (alen <= 0) {
    discard_handle(env, h);
    throw_arg(env, alen == -2 ? "option address is too long to be an IP address" : "option address is required");
    return NULL;
  }
  if (!opt_u32(env, argv[0], "port", 0, &port) || !opt_u32(env, argv[0], "rcvbuf", 8 << 20, &rcvbuf) ||
      !opt_u32(env, argv[0], "sndbuf", 8 << 20, &sndbuf) || !opt_u32(env, argv[0], "maxDests", 256, &maxd) ||
      !opt_u32(env, argv[0], "txMax", 256, &h->tx_max) || !opt_u32(env, argv[0], "txIovMax", 1024, &h->tx_vec_max)) {
    discard_handle(env, h);
    return NULL;
  }
  char target[96];
  snprintf(target, sizeof target, "udp %s%s%s:%u", strchr(addr, ':') ? "[" : "", addr, strchr(addr, ':') ? "]" : "",
           port);
  snprintf(h->name, sizeof h->name, "udp:%u", port);
  if (port > 65535 || h->tx_max == 0 || h->tx_max > MAX_BATCH || h->tx_vec_max == 0 || maxd == 0 || maxd > 65536) {
    discard_handle(env, h);
    throw_arg(env, "udp: port must be 0..65535, txMax 1..1024, txIovMax and maxDests positive");
    return NULL;
  }
  if (!init_common(env, argv[0], h, RX_META_STRIDE, "udp")) {
    discard_handle(env, h);
    return NULL;
  }
  void *p;
  size_t len;
  if (!opt_bytes(env, argv[0], "txDesc", &p, &len, &h->tx_refs[0])) {
    discard_handle(env, h);
    return NULL;
  }
  h->tx_desc = p;
  h->tx_desc_len = len / 4;
  if (!opt_bytes(env, argv[0], "txIov", &p, &len, &h->tx_refs[1])) {
    discard_handle(env, h);
    return NULL;
  }
  h->tx_iovt = p;
  h->tx_iovt_len = len / 4;
  if (h->tx_desc_len < (size_t)h->tx_max * TX_DESC_STRIDE || h->tx_iovt_len < (size_t)h->tx_vec_max * TX_IOV_STRIDE) {
    discard_handle(env, h);
    throw_arg(env, "udp: txDesc needs txMax*4 and txIov needs txIovMax*3 int32 entries");
    return NULL;
  }
  h->gro = opt_bool(env, argv[0], "gro", 1);

  struct sockaddr_storage ss;
  socklen_t sl;
  struct in6_addr tmp6;
  h->family = inet_pton(AF_INET6, addr, &tmp6) == 1 ? 6 : 4;
  if (!make_sockaddr(env, addr, port, h->family, &ss, &sl)) {
    discard_handle(env, h);
    return NULL;
  }
  char nspath[PATH_MAX];
  int saved_ns;
  if (!opt_netns(env, argv[0], nspath, "ERR_UDP_OPEN")) {
    discard_handle(env, h);
    return NULL;
  }
  int nse = enter_netns(nspath, &saved_ns);
  if (nse) {
    discard_handle(env, h);
    throw_sys(env, "ERR_UDP_OPEN", "setns", nse, nspath);
    return NULL;
  }
  /* A socket belongs to the namespace it was created in; bind happens there too. */
  int fd = socket(h->family == 6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int sock_errno = errno;
  leave_netns(saved_ns);
  errno = sock_errno;
  if (fd < 0) {
    int e = errno;
    discard_handle(env, h);
    throw_sys(env, "ERR_UDP_OPEN", "socket", e, target);
    return NULL;
  }
  h->fd = fd;
  if (h->family == 6) {
    int on = IN6_IS_ADDR_UNSPECIFIED(&tmp6) ? 0 : 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    int pmtu = IPV6_PMTUDISC_DO;
    setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu, sizeof pmtu);
  }
  {
    /* Never let the kernel fragment: weft fragments in userspace to the path MTU. */
    int pmtu = IP_PMTUDISC_DO;
    setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu);
  }
  set_buf_opt(fd, SO_RCVBUFFORCE, SO_RCVBUF, (int)rcvbuf);
  set_buf_opt(fd, SO_SNDBUFFORCE, SO_SNDBUF, (int)sndbuf);
  if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
    int e = errno;
    discard_handle(env, h);
    throw_sys(env, "ERR_UDP_BIND", "bind", e, target);
    return NULL;
  }
  if (h->gro) {
    int on = 1;
    if (setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) < 0) h->gro = 0;
  }
  h->gso_ok = 1;
  h->ndests = maxd;
  h->rx_msgs = calloc(h->max_batch, sizeof *h->rx_msgs);
  h->rx_iov = calloc(h->max_batch, sizeof *h->rx_iov);
  h->rx_addr = calloc(h->max_batch, sizeof *h->rx_addr);
  h->rx_ctrl = calloc(h->max_batch, RX_CTRL_SZ);
  h->dests = calloc(maxd, sizeof *h->dests);
  h->dest_len = calloc(maxd, sizeof *h->dest_len);
  h->tx_msgs = calloc(h->tx_max, sizeof *h->tx_msgs);
  h->tx_vec = calloc(h->tx_vec_max + 64, sizeof *h->tx_vec);
  h->tx_ctrl = calloc(h->tx_max, TX_CTRL_SZ);
  if (!h->rx_msgs || !h->rx_iov || !h->rx_addr || !h->rx_ctrl || !h->dests || !h->dest_len || !h->tx_msgs ||
      !h->tx_vec || !h->tx_ctrl) {
    discard_handle(env, h);
    throw_sys(env, "ERR_UDP_OPEN", "calloc", ENOMEM, target);
    return NULL;
  }
  for (uint32_t i = 0; i < h->max_batch; i++) {
    h->rx_iov[i].iov_base = h->arena + (size_t)i * h->stride;
    h->rx_iov[i].iov_len = h->stride;
  }
  if (!wrap_handle(env, self, h)) return NULL;
  struct sockaddr_storage bound;
  socklen_t bl = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &bl);
  uint16_t bport = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                                : ntohs(((struct sockaddr_in *)&bound)->sin_port);
  napi_value v;
  napi_create_uint32(env, bport, &v);
  napi_set_named_property(env, self, "localPort", v);
  napi_create_uint32(env, (uint32_t)h->family, &v);
  napi_set_named_property(env, self, "family", v);
  napi_get_boolean(env, h->gro != 0, &v);
  napi_set_named_property(env, self, "gro", v);
  snprintf(h->name, sizeof h->name, "udp:%u", bport);
  return self;
}

/* setDest(index, address, port) */
napi_value udp_set_dest(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  handle_t *h = unwrap_this(env, info, &argc, argv);
  if (!h) return NULL;
  uint32_t idx, port;
  char addr[INET6_ADDRSTRLEN + 8];
  size_t got;
  if (argc < 3 || napi_get_value_uint32(env, argv[0], &idx) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], addr, sizeof addr, &got) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &port) != napi_ok || idx >= h->ndests || port == 0 || port > 65535) {
    throw_arg(env, "setDest(index < maxDests, address, port 1..65535)");
    return NULL;
  }
  if (!make_sockaddr(env, addr, port, h->family, &h->dests[idx], &h->dest_len[idx])) return NULL;
  return NULL;
}

/* registerBuffer(id, buf): buffers that send descriptors refer to by id. */
napi_value udp_register(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  handle_t *h = unwrap_this(env, info, &argc, argv);
  if (!h) return NULL;
  uint32_t id;
  void *data;
  size_t len;
  if (argc < 2 || napi_get_value_uint32(env, argv[0], &id) != napi_ok || id >= MAX_BUFS ||
      napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    throw_arg(env, "registerBuffer(id < 8, Buffer)");
    return NULL;
  }
  if (h->buf_refs[id]) napi_delete_reference(env, h->buf_refs[id]);
  napi_create_reference(env, argv[1], 1, &h->buf_refs[id]);
  h->bufs[id] = data;
  h->buf_len[id] = len;
  return NULL;
}

/* Sends one GSO message as separate datagrams of `seg` bytes (the kernel refused GSO). A datagram
 * that needs more than SPLIT_MAX_IOV pieces is dropped whole and counted (ST_TX_IOV_LIMIT), never
 * sent short: its bytes are skipped and the next datagram starts where it would have. Returns the
 * number of datagrams not sent. */
static int send_split(handle_t *h, struct msghdr *mh, uint32_t seg) {
  size_t total = 0;
  for (size_t i = 0; i < mh->msg_iovlen; i++) total += mh->msg_iov[i].iov_len;
  size_t vi = 0, vo = 0;
  int errs = 0;
  for (size_t done = 0; done < total;) {
    struct iovec parts[SPLIT_MAX_IOV];
    int np = 0;
    size_t want = total - done < seg ? total - done : seg;
    size_t got = 0;
    while (got < want && vi < mh->msg_iovlen) {
      size_t avail = mh->msg_iov[vi].iov_len - vo;
      size_t take = avail < want - got ? avail : want - got;
      if (take > 0) {
        if (np < SPLIT_MAX_IOV) {
          parts[np].iov_base = (uint8_t *)mh->msg_iov[vi].iov_base + vo;
          parts[np].iov_len = take;
        }
        np++;
      }
      got += take;
      vo += take;
      if (vo == mh->msg_iov[vi].iov_len) {
        vi++;
        vo = 0;
      }
    }
    if (got == 0) break;
    done += got;
    if (np > SPLIT_MAX_IOV) {
      errs++;
      h->stats[ST_TX_IOV_LIMIT] += 1;
      h->stats[ST_LAST_ERRNO] = EMSGSIZE;
      continue;
    }
    struct msghdr one = {mh->msg_name, mh->msg_namelen, parts, (size_t)np, NULL, 0, 0};
    ssize_t r;
    do r = sendmsg(h->fd, &one, MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
      errs++;
      h->stats[ST_LAST_ERRNO] = errno;
    } else {
      h->stats[ST_TX_PACKETS] += 1;
      h->stats[ST_TX_BYTES] += (double)r;
    }
  }
  return errs;
}

/* send(count) -> messages handed to the kernel; failures and drops are counted in stats. */
napi_value udp_send(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  handle_t *h = unwrap_this(env, info, &argc, argv);
  if (!h) return NULL;
  uint32_t count;
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &count) != napi_ok || count > h->tx_max) {
    throw_arg(env, "send(count <= txMax)");
    return NULL;
  }
  napi_value v;
  if (h->closed) {
    h->stats[ST_TX_DROPPED] += count;
    napi_create_int32(env, 0, &v);
    return v;
  }
  size_t vec_used = 0;
  for (uint32_t i = 0; i < count; i++) {
    const int32_t *d = h->tx_desc + (size_t)i * TX_DESC_STRIDE;
    uint32_t is = (uint32_t)d[0], ic = (uint32_t)d[1], dst = (uint32_t)d[3];
    int32_t gso = d[2];
    if (ic == 0 || (size_t)is + ic > h->tx_vec_max || dst >= h->ndests || h->dest_len[dst] == 0 || gso < 0 ||
        gso > 65535 || vec_used + ic > h->tx_vec_max + 64) {
      throw_arg(env, "send: descriptor out of range (iov, destination or gso size)");
      return NULL;
    }
    if (ic > IOV_MAX) {
      /* The kernel refuses a message of more pieces (EMSGSIZE); nothing of the batch is sent. */
      char m[128];
      snprintf(m, sizeof m, "send: message %u has %u iovecs, more than the kernel takes (IOV_MAX %d)", i, ic, IOV_MAX);
      napi_throw_range_error(env, "ERR_UDP_IOV_LIMIT", m);
      return NULL;
    }
    struct iovec *vec = h->tx_vec + vec_used;
    for (uint32_t k = 0; k < ic; k++) {
      const int32_t *e = h->tx_iovt + (size_t)(is + k) * TX_IOV_STRIDE;
      uint32_t id = (uint32_t)e[0], off = (uint32_t)e[1], len = (uint32_t)e[2];
      if (id >= MAX_BUFS || !h->bufs[id] || (size_t)off + len > h->buf_len[id]) {
        throw_arg(env, "send: iov entry outside its registered buffer");
        return NULL;
      }
      vec[k].iov_base = h->bufs[id] + off;
      vec[k].iov_len = len;
    }
    vec_used += ic;
    struct msghdr *mh = &h->tx_msgs[i].msg_hdr;
    mh->msg_name = &h->dests[dst];
    mh->msg_namelen = h->dest_len[dst];
    mh->msg_iov = vec;
    mh->msg_iovlen = ic;
    mh->msg_flags = 0;
    if (gso > 0) {
      uint8_t *cb = h->tx_ctrl + (size_t)i * TX_CTRL_SZ;
      memset(cb, 0, TX_CTRL_SZ);
      mh->msg_control = cb;
      mh->msg_controllen = TX_CTRL_SZ;
      struct cmsghdr *c = CMSG_FIRSTHDR(mh);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t g = (uint16_t)gso;
      memcpy(CMSG_DATA(c), &g, sizeof g);
    } else {
      mh->msg_control = NULL;
      mh->msg_controllen = 0;
    }
  }
  uint32_t sent = 0, ok = 0;
  while (sent < count) {
    struct msghdr *mh = &h->tx_msgs[sent].msg_hdr;
    int32_t gso = h->tx_desc[(size_t)sent * TX_DESC_STRIDE + 2];
    if (gso > 0 && !h->gso_ok) {
      if (send_split(h, mh, (uint32_t)gso) == 0) ok++;
      else h->stats[ST_TX_ERRORS] += 1;
      sent++;
      continue;
    }
    int r = sendmmsg(h->fd, h->tx_msgs + sent, count - sent, MSG_DONTWAIT);
    if (r > 0) {
      for (int k = 0; k < r; k++) {
        h->stats[ST_TX_BYTES] += h->tx_msgs[sent + k].msg_len;
        int32_t g = h->tx_desc[(size_t)(sent + k) * TX_DESC_STRIDE + 2];
        h->stats[ST_TX_PACKETS] += g > 0 ? (h->tx_msgs[sent + k].msg_len + g - 1) / g : 1;
      }
      sent += r;
      ok += r;
      continue;
    }
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == ENOBUFS) {
      h->stats[ST_TX_DROPPED] += count - sent;
      h->stats[ST_LAST_ERRNO] = e;
      break;
    }
    if (gso > 0 && (e == EIO || e == EOPNOTSUPP || e == ENOPROTOOPT)) {
      /* The route cannot do UDP GSO (no checksum offload): stop asking for it on this socket. */
      h->gso_ok = 0;
      h->stats[ST_GSO_FALLBACKS] += 1;
      continue;
    }
    if (gso > 0 && e == EINVAL) {
      /* gso size above the path MTU, or too many segments: try plain datagrams once. */
      h->stats[ST_GSO_FALLBACKS] += 1;
      if (send_split(h, mh, (uint32_t)gso) == 0) ok++;
      else h->stats[ST_TX_ERRORS] += 1;
      sent++;
      continue;
    }
    h->stats[ST_TX_ERRORS] += 1;
    h->stats[ST_LAST_ERRNO] = e;
    sent++; /* this message is lost (counted); the rest of the batch still goes */
  }
  napi_create_int32(env, (int32_t)ok, &v);
  return v;
}

napi_value udp_gso(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  handle_t *h = unwrap_this(env, info, &argc, NULL);
  if (!h) return NULL;
  napi_value v;
  napi_get_boolean(env, h->gso_ok != 0, &v);
  return v;
}
