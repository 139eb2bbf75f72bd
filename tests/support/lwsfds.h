/* lwsfds.h — how many libwebsockets contexts a process holds, counted from outside lws.
 *
 * lws 4.1.6 opens /dev/urandom once per context and keeps it; nothing else in our programs keeps one. So the
 * descriptors of a process that point at /dev/urandom count its contexts: the tests of the shared context
 * (lwsloop_share) use it on themselves and on a running agent. Shared by unit and integration tests. */
#ifndef IAC_TEST_LWSFDS_H
#define IAC_TEST_LWSFDS_H

#include <sys/types.h>

/* Descriptors of process pid (0: this process) that point at /dev/urandom; -1 when they cannot be listed. */
int lwsfds_urandom(pid_t pid);

#endif
