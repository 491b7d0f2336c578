// A point-to-point link with a fixed one-way delay, for bench/rtt.sh: this kernel has no netem.
// Opens a TUN device in each of two network namespaces and passes every packet from one to the
// other after DELAY_MS, both ways (a round trip is 2 x DELAY_MS). No bandwidth limit, no loss
// unless a queue of QUEUE packets overflows (counted, printed on exit).
//
//   delaylink NS_A DEV_A NS_B DEV_B DELAY_MS     (root; prints "ready" once both devices exist)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define QUEUE 8192
#define MAXPKT 65536

typedef struct {
  int64_t due_ns;
  uint32_t len;
  unsigned char* data;
} pkt_t;

typedef struct {
  pkt_t q[QUEUE];
  uint32_t head, n;
  uint64_t dropped;
} queue_t;

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

static void die(const char* what) {
  fprintf(stderr, "delaylink: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

// A TUN device named dev in namespace ns (/var/run/netns/ns); the thread returns to its own namespace.
static int tun_in(const char* ns, const char* dev) {
  char path[512];
  snprintf(path, sizeof path, "/var/run/netns/%s", ns);
  int self = open("/proc/self/ns/net", O_RDONLY), target = open(path, O_RDONLY);
  if (self < 0 || target < 0) die(path);
  if (setns(target, CLONE_NEWNET)) die("setns");
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK);
  if (fd < 0) die("/dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, dev, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr)) die("TUNSETIFF");
  if (setns(self, CLONE_NEWNET)) die("setns back");
  close(self);
  close(target);
  return fd;
}

// Reads every packet waiting on fd into q, each due delay_ns from now.
static void take(int fd, queue_t* q, int64_t delay_ns, unsigned char* buf) {
  for (;;) {
    ssize_t n = read(fd, buf, MAXPKT);
    if (n <= 0) return;
    if (q->n == QUEUE) {
      q->dropped++;
      continue;
    }
    pkt_t* p = &q->q[(q->head + q->n) % QUEUE];
    p->data = realloc(p->data, (size_t)n);
    if (!p->data) die("realloc");
    memcpy(p->data, buf, (size_t)n);
    p->len = (uint32_t)n;
    p->due_ns = now_ns() + delay_ns;
    q->n++;
  }
}

// Writes q's due packets to fd; returns when the next one is due (INT64_MAX: none queued).
static int64_t give(int fd, queue_t* q) {
  int64_t t = now_ns();
  while (q->n) {
    pkt_t* p = &q->q[q->head];
    if (p->due_ns > t) return p->due_ns;
    if (write(fd, p->data, p->len) < 0 && errno != EAGAIN) q->dropped++;
    q->head = (q->head + 1) % QUEUE;
    q->n--;
  }
  return INT64_MAX;
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: delaylink NS_A DEV_A NS_B DEV_B DELAY_MS\n");
    return 2;
  }
  int64_t delay_ns = (int64_t)(atof(argv[5]) * 1e6);
  int a = tun_in(argv[1], argv[2]), b = tun_in(argv[3], argv[4]);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  static queue_t ab, ba;
  unsigned char* buf = malloc(MAXPKT);
  if (!buf) die("malloc");
  printf("ready\n");
  fflush(stdout);
  while (!stop) {
    int64_t next = give(b, &ab), other = give(a, &ba);
    if (other < next) next = other;
    struct timespec wait = {1, 0};
    if (next != INT64_MAX) {
      int64_t left = next - now_ns();
      if (left < 0) left = 0;
      wait.tv_sec = left / 1000000000;
      wait.tv_nsec = left % 1000000000;
    }
    struct pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    if (ppoll(fds, 2, &wait, NULL) < 0 && errno != EINTR) die("ppoll");
    if (fds[0].revents & POLLIN) take(a, &ab, delay_ns, buf);
    if (fds[1].revents & POLLIN) take(b, &ba, delay_ns, buf);
  }
  fprintf(stderr, "delaylink: dropped %llu a->b, %llu b->a (queue full)\n", (unsigned long long)ab.dropped, (unsigned long long)ba.dropped);
  return 0;
}
