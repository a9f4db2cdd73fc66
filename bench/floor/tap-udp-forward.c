/*
 * The floor of a userspace tunnel on this machine (bench only, never shipped): the least a
 * program can do to carry Ethernet frames between a TAP device and UDP. One frame per read, one
 * datagram per send, no header, no crypto, no batching, no offloads; poll(2) on both fds.
 * Whatever latency this adds over kernel VXLAN is the machine's cost of waking a process and
 * crossing user space four times per round trip, before a tunnel does any work of its own.
 *
 *   tap-udp-forward TAPNAME LOCAL_IPV4 PEER_IPV4 PORT
 *
 * Creates the TAP (IFF_TAP | IFF_NO_PI, gone when the process ends), prints "ready" once both
 * fds are open, and runs until killed. Errors go to stderr with what failed, exit status 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(const char *what, const char *detail) {
  fprintf(stderr, "tap-udp-forward: %s %s: %s\n", what, detail, strerror(errno));
  return 1;
}

static int address(const char *text, const char *port, struct sockaddr_in *out) {
  char *end;
  long p = strtol(port, &end, 10);
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons((uint16_t)p);
  return *end == 0 && p > 0 && p < 65536 && inet_pton(AF_INET, text, &out->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: tap-udp-forward TAPNAME LOCAL_IPV4 PEER_IPV4 PORT\n");
    return 2;
  }
  struct sockaddr_in local, peer;
  if (address(argv[2], argv[4], &local) != 0 || address(argv[3], argv[4], &peer) != 0) {
    fprintf(stderr, "tap-udp-forward: bad address or port: %s %s %s\n", argv[2], argv[3], argv[4]);
    return 2;
  }
  int tap = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (tap < 0) return fail("open", "/dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
  if (ioctl(tap, TUNSETIFF, &ifr) < 0) return fail("TUNSETIFF", argv[1]);
  int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (udp < 0) return fail("socket", "UDP");
  if (bind(udp, (struct sockaddr *)&local, sizeof local) < 0) return fail("bind", argv[2]);
  if (connect(udp, (struct sockaddr *)&peer, sizeof peer) < 0) return fail("connect", argv[3]);
  printf("ready\n");
  fflush(stdout);
  static unsigned char buf[65536];
  struct pollfd fds[2] = {{.fd = tap, .events = POLLIN}, {.fd = udp, .events = POLLIN}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return fail("poll", "");
    }
    if (fds[0].revents & POLLIN) {
      ssize_t n = read(tap, buf, sizeof buf);
      if (n > 0) (void)send(udp, buf, (size_t)n, MSG_DONTWAIT); /* a full queue drops, as a NIC would */
    }
    if (fds[1].revents & POLLIN) {
      ssize_t n = recv(udp, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) (void)write(tap, buf, (size_t)n);
    }
    if ((fds[0].revents | fds[1].revents) & (POLLERR | POLLHUP | POLLNVAL)) {
      if (fds[0].revents & (POLLHUP | POLLNVAL)) {
        fprintf(stderr, "tap-udp-forward: %s hung up\n", argv[1]); /* (no errno to give) */
        return 1;
      }
      int e = 0;
      socklen_t l = sizeof e;
      getsockopt(udp, SOL_SOCKET, SO_ERROR, &e, &l); /* (an ICMP error from the peer: cleared, go on) */
    }
  }
}
