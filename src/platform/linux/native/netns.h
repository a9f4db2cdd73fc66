/* Entering a network namespace for the calling thread, around a socket() or open() that must
 * happen there. Includes no other header of the addon. */
#ifndef WEFT_NETNS_H
#define WEFT_NETNS_H

#pragma GCC visibility push(hidden)

/* Enters the network namespace at `path` for this thread ("" = stay); *saved gets the fd to
 * return with. 0 or an errno. */
int enter_netns(const char *path, int *saved);
/* Returns to the namespace saved by enter_netns (aborts if it cannot). */
void leave_netns(int saved);

#pragma GCC visibility pop
#endif
