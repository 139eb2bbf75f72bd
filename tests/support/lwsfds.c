/* lwsfds.c — libwebsockets contexts of a process, counted by their /dev/urandom descriptors; see lwsfds.h. */
#include "lwsfds.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int lwsfds_urandom(pid_t pid)
{
    char dir[64], target[64];
    if (pid > 0)
        snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    else
        snprintf(dir, sizeof dir, "/proc/self/fd");
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        ssize_t len = readlinkat(dirfd(d), de->d_name, target, sizeof target - 1);
        if (len > 0) {
            target[len] = '\0';
            n += strcmp(target, "/dev/urandom") == 0;
        }
    }
    closedir(d);
    return n;
}
