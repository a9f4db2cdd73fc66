/* Network namespaces for the calling thread (see netns.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "netns.h"

/* Enters the namespace at `path` for this thread; *saved gets the fd to return with. 0 on success. */
int enter_netns(const char *path, int *saved) {
  *saved = -1;
  if (path[0] == 0) return 0;
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return errno;
  int target = open(path, O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int e = errno;
    close(self);
    return e;
  }
  if (setns(target, CLONE_NEWNET) < 0) {
    int e = errno;
    close(target);
    close(self);
    return e;
  }
  close(target);
  *saved = self;
  return 0;
}

void leave_netns(int saved) {
  if (saved < 0) return;
  if (setns(saved, CLONE_NEWNET) < 0) abort(); /* continuing in the wrong namespace would be worse */
  close(saved);
}
