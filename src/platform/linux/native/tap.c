/* TAP devices (see tap.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "handles.h"
#include "napi_util.h"
#include "netns.h"
#include "tap.h"

/* new Tap({ name, vnetHdr, offloads, multiQueue, uring, arena, meta: lens, stats, stride, headroom,
 *           tailroom, maxBatch }) */
napi_value tap_ctor(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  if (argc < 1) {
    throw_arg(env, "new Tap(options) needs options");
    return NULL;
  }
  handle_t *h = new_handle(env, KIND_TAP);
  if (!h) {
    throw_sys(env, "ERR_TAP_OPEN", "calloc", ENOMEM, "tap");
    return NULL;
  }
  char name[IFNAMSIZ + 8];
  int nlen = opt_string(env, argv[0], "name", name, sizeof name);
  if (nlen < 0 || nlen >= IFNAMSIZ) {
    discard_handle(env, h);
    throw_arg(env, "tap name must be a string of at most 15 bytes");
    return NULL;
  }
  snprintf(h->name, sizeof h->name, "%.15s", nlen > 0 ? name : "tap");
  if (!init_common(env, argv[0], h, 1, h->name)) {
    discard_handle(env, h);
    return NULL;
  }
  uint32_t offloads = 0;
  if (!opt_u32(env, argv[0], "offloads", 0, &offloads)) {
    discard_handle(env, h);
    return NULL;
  }
  h->vnet = opt_bool(env, argv[0], "vnetHdr", 0);
  int mq = opt_bool(env, argv[0], "multiQueue", 0);
  int want_ring = opt_bool(env, argv[0], "uring", 0);
  char nspath[PATH_MAX];
  int saved_ns;
  if (!opt_netns(env, argv[0], nspath, "ERR_TAP_OPEN")) {
    discard_handle(env, h);
    return NULL;
  }
  int nse = enter_netns(nspath, &saved_ns);
  if (nse) {
    discard_handle(env, h);
    throw_sys(env, "ERR_TAP_OPEN", "setns", nse, nspath);
    return NULL;
  }
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  int tse = 0;
  if (fd >= 0) {
    struct ifreq ifr0;
    memset(&ifr0, 0, sizeof ifr0);
    ifr0.ifr_flags = IFF_TAP | IFF_NO_PI | (h->vnet ? IFF_VNET_HDR : 0) | (mq ? IFF_MULTI_QUEUE : 0);
    memcpy(ifr0.ifr_name, h->name, strlen(h->name));
    /* The device is created (or attached) in the namespace we are in now. */
    if (ioctl(fd, TUNSETIFF, &ifr0) < 0) tse = errno;
  }
  int open_errno = fd < 0 ? errno : 0;
  leave_netns(saved_ns);
  if (fd < 0) {
    errno = open_errno;
    int e = errno;
    discard_handle(env, h);
    throw_sys(env, "ERR_TAP_OPEN", "open", e, "/dev/net/tun");
    return NULL;
  }
  h->fd = fd;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (tse || ioctl(fd, TUNGETIFF, &ifr) < 0) {
    int e = tse ? tse : errno;
    char target[64];
    snprintf(target, sizeof target, "tap %s", h->name);
    discard_handle(env, h);
    throw_sys(env, "ERR_TAP_OPEN", "ioctl(TUNSETIFF)", e, target);
    return NULL;
  }
  memcpy(h->name, ifr.ifr_name, IFNAMSIZ);
  h->name[IFNAMSIZ - 1] = 0;
  if (h->vnet) {
    int sz = 10;
    if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
      int e = errno;
      discard_handle(env, h);
      throw_sys(env, "ERR_TAP_OPEN", "ioctl(TUNSETVNETHDRSZ)", e, name);
      return NULL;
    }
  }
  /* Always explicit: offload flags persist on a device, and a plain reader must never get GSO. */
  if (!h->vnet) offloads = 0;
  int off_rc = ioctl(fd, TUNSETOFFLOAD, (unsigned long)offloads);
  if (off_rc < 0 && errno == EINVAL && (offloads & TAP_OFFLOADS_USO)) {
    offloads &= ~(uint32_t)TAP_OFFLOADS_USO;
    off_rc = ioctl(fd, TUNSETOFFLOAD, (unsigned long)offloads);
  }
  if (off_rc < 0) {
    int e = errno;
    discard_handle(env, h);
    throw_sys(env, "ERR_TAP_OPEN", "ioctl(TUNSETOFFLOAD)", e, h->name);
    return NULL;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    int e = errno;
    discard_handle(env, h);
    throw_sys(env, "ERR_TAP_OPEN", "fcntl(O_NONBLOCK)", e, h->name);
    return NULL;
  }
  if (want_ring) {
    /* Entries: the largest batch, rounded up to a power of two by the kernel. No ring is no
     * error: reads go through read() and tap.uring() says why. */
    int re = 0;
    h->ring = uring_open(h->max_batch, &re);
    h->ring_k = 2;
    h->ring_state = h->ring ? RING_ON : RING_UNAVAILABLE;
    h->ring_errno = h->ring ? 0 : re;
  }
  if (!wrap_handle(env, self, h)) return NULL;
  napi_value v;
  napi_create_string_utf8(env, h->name, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, self, "name", v);
  napi_create_uint32(env, offloads, &v);
  napi_set_named_property(env, self, "offloads", v);
  return self;
}

static const uint8_t zero_vnet[12];

/* write(buf, off, len, prependZeroVnetHdr) -> bytes written or -errno */
napi_value tap_write(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  handle_t *h = unwrap_this(env, info, &argc, argv);
  if (!h) return NULL;
  void *data;
  size_t blen;
  uint32_t off, len;
  bool zero = false;
  if (argc < 3 || napi_get_buffer_info(env, argv[0], &data, &blen) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &off) != napi_ok || napi_get_value_uint32(env, argv[2], &len) != napi_ok) {
    throw_arg(env, "write(buf, off, len, zeroHdr) needs a Buffer and two integers");
    return NULL;
  }
  if (argc > 3) napi_get_value_bool(env, argv[3], &zero);
  if ((size_t)off + len > blen) {
    throw_arg(env, "write: off+len beyond the buffer");
    return NULL;
  }
  ssize_t r;
  if (h->closed) {
    r = -EBADF;
  } else {
    do {
      if (zero && h->vnet) {
        struct iovec iov[2] = {{(void *)zero_vnet, 10}, {(uint8_t *)data + off, len}};
        r = writev(h->fd, iov, 2);
      } else {
        r = write(h->fd, (uint8_t *)data + off, len);
      }
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      r = -errno;
      h->stats[ST_TX_ERRORS] += 1;
      h->stats[ST_LAST_ERRNO] = errno;
    } else {
      h->stats[ST_TX_PACKETS] += 1;
      h->stats[ST_TX_BYTES] += (double)r;
    }
  }
  napi_value v;
  napi_create_int32(env, (int32_t)r, &v);
  return v;
}

/* uring() -> "io_uring" | "read" | "read (io_uring unavailable: <error>)" | "read (io_uring given up: <error>)" */
napi_value tap_uring(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  handle_t *h = unwrap_this(env, info, &argc, NULL);
  if (!h) return NULL;
  char text[160];
  if (h->ring_state == RING_ON) snprintf(text, sizeof text, "io_uring");
  else if (h->ring_state == RING_OFF) snprintf(text, sizeof text, "read");
  else snprintf(text, sizeof text, "read (io_uring %s: %s)", h->ring_state == RING_UNAVAILABLE ? "unavailable" : "given up", strerror(h->ring_errno));
  napi_value v;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &v);
  return v;
}
