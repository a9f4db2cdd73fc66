/*
 * UDP sockets: new Udp(options), setDest(), registerBuffer(), send(), gsoActive(), and the batch
 * read that the poll loop (loop.c) runs.
 *
 * Read: one recvmmsg with UDP_GRO per wakeup, per-item metadata into the JS-owned Int32Array:
 *
 *   UDP item i:  meta[i*10 + 0..9] = offset, length, gro segment size (0 none, -1 truncated),
 *                source port, family (4|6), address words a0..a3 (big-endian u32; v4 uses a0)
 *
 * Write: sends take descriptors from JS-owned Int32Arrays: desc[i*4] = iovStart, iovCount,
 * gsoSize (0 = none), destIndex and iov[j*3] = bufferId, offset, length over buffers registered
 * once, so the hot path passes only integers. Messages go out in one sendmmsg; UDP_SEGMENT is a
 * per-message cmsg. When the kernel refuses GSO (EIO: no checksum offload on the route) the addon
 * switches GSO off for the socket and sends the segments one by one; EAGAIN drops the rest of the
 * batch (counted, never queued).
 */
#ifndef WEFT_UDP_H
#define WEFT_UDP_H
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>

#include "handles.h"

#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

#define RX_META_STRIDE 10
#define RX_CTRL_SZ 64

#pragma GCC visibility push(hidden)

napi_value udp_ctor(napi_env env, napi_callback_info info);
napi_value udp_set_dest(napi_env env, napi_callback_info info);
napi_value udp_register(napi_env env, napi_callback_info info);
napi_value udp_send(napi_env env, napi_callback_info info);
napi_value udp_gso(napi_env env, napi_callback_info info);

#pragma GCC visibility pop

/* Inline here, like the TAP read in tap.h: the poll loop's run_batch compiles with the read in it
 * as when all was one file. */
static inline void fill_src(int32_t *m, const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    m[3] = ntohs(s4->sin_port);
    m[4] = 4;
    m[5] = (int32_t)ntohl(s4->sin_addr.s_addr);
    m[6] = m[7] = m[8] = 0;
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    const uint32_t *w = (const uint32_t *)&s6->sin6_addr;
    m[3] = ntohs(s6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
      m[4] = 4;
      m[5] = (int32_t)ntohl(w[3]);
      m[6] = m[7] = m[8] = 0;
    } else {
      m[4] = 6;
      for (int k = 0; k < 4; k++) m[5 + k] = (int32_t)ntohl(w[k]);
    }
  } else {
    m[3] = 0;
    m[4] = 0;
    m[5] = m[6] = m[7] = m[8] = 0;
  }
  m[9] = 0;
}

static inline int udp_batch(handle_t *h) {
  uint32_t max = h->max_batch;
  for (uint32_t i = 0; i < max; i++) {
    struct msghdr *mh = &h->rx_msgs[i].msg_hdr;
    mh->msg_name = &h->rx_addr[i];
    mh->msg_namelen = sizeof(struct sockaddr_storage);
    mh->msg_iov = &h->rx_iov[i];
    mh->msg_iovlen = 1;
    mh->msg_control = h->rx_ctrl + (size_t)i * RX_CTRL_SZ;
    mh->msg_controllen = RX_CTRL_SZ;
    mh->msg_flags = 0;
  }
  int n;
  for (int tries = 0;; tries++) {
    h->stats[ST_RX_CALLS] += 1;
    n = recvmmsg(h->fd, h->rx_msgs, max, MSG_DONTWAIT, NULL);
    if (n >= 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return 0;
    /* A pending socket error (e.g. ICMP) is returned once; count it and try again. */
    h->stats[ST_RX_ERRORS] += 1;
    h->stats[ST_LAST_ERRNO] = errno;
    if (tries >= 3) return 0;
  }
  if (n == 0) return 0;
  for (int i = 0; i < n; i++) {
    int32_t *m = h->meta + (size_t)i * RX_META_STRIDE;
    struct msghdr *mh = &h->rx_msgs[i].msg_hdr;
    int32_t seg = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
      if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
        int v;
        memcpy(&v, CMSG_DATA(c), sizeof v);
        seg = v;
      }
    }
    if (mh->msg_flags & MSG_TRUNC) {
      seg = -1;
      h->stats[ST_TRUNCATED] += 1;
    }
    m[0] = (int32_t)((size_t)i * h->stride);
    m[1] = (int32_t)h->rx_msgs[i].msg_len;
    m[2] = seg;
    fill_src(m, &h->rx_addr[i]);
    h->stats[ST_RX_BYTES] += h->rx_msgs[i].msg_len;
  }
  h->stats[ST_RX_BATCHES] += 1;
  h->stats[ST_RX_PACKETS] += n;
  deliver(h, n);
  return n;
}

#endif
