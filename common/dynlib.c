/* dynlib.c — a shared library loaded on first use; see dynlib.h. */
#include "iac/dynlib.h"

#include <stdio.h>
#include <string.h>

int dynlib_load(uv_lib_t *lib, const char *file, const char *package, const char *purpose, const dynlib_sym *syms,
                size_t nsyms, void *table, char *err, size_t errlen)
{
    if (uv_dlopen(file, lib) < 0) {
        snprintf(err, errlen, "cannot load %s (package %s), which %s: %s", file, package, purpose, uv_dlerror(lib));
        uv_dlclose(lib); /* frees the message */
        return -1;
    }
    for (size_t i = 0; i < nsyms; i++) {
        void *fn;
        if (uv_dlsym(lib, syms[i].name, &fn) < 0) {
            snprintf(err, errlen, "cannot use %s: %s", file, uv_dlerror(lib));
            uv_dlclose(lib);
            return -1;
        }
        memcpy((char *)table + syms[i].offset, &fn, sizeof fn); /* POSIX: a data pointer holds a function */
    }
    return 0;
}
