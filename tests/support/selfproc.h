/* selfproc.h — facts about the test process itself, read from /proc/self, for tests that check what a module
 * leaves behind (a thread that should have ended, say). */
#ifndef IAC_TEST_SELFPROC_H
#define IAC_TEST_SELFPROC_H

/* This process's thread count (the Threads line of /proc/self/status), or -1 when it cannot be read. */
int self_threads(void);

#endif
