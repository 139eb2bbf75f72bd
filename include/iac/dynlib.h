/* dynlib.h — a shared library loaded on first use, its functions resolved into a table.
 *
 * Why: some libraries cost every process start milliseconds and megabytes although only a rare path needs them
 * (libcurl's 39-library tree for https, libarchive's for unpacking an engine zip; bench/README.md measures both).
 * Such a library is not linked; its user keeps a struct of function pointers, each typed by the library's own
 * declaration (__typeof__), and a table naming each member, and loads it the first time the feature is used.
 *
 * Ownership: lib and table are the caller's; after a successful load the library stays loaded until the caller
 * closes lib with uv_dlclose(). Loading runs the library's constructors on the calling thread. */
#ifndef IAC_DYNLIB_H
#define IAC_DYNLIB_H

#include <stddef.h>

#include <uv.h>

typedef struct {
    const char *name;   /* the symbol */
    size_t      offset; /* where its address goes in the caller's table (offsetof) */
} dynlib_sym;

/* Loads file (a soname such as "libcurl.so.4") and stores the address of each of syms into table. 0, or -1 with
 * "cannot load FILE (package PACKAGE), which PURPOSE: reason" or "cannot use FILE: reason" in err; then nothing
 * stays loaded and lib must not be closed. */
int dynlib_load(uv_lib_t *lib, const char *file, const char *package, const char *purpose, const dynlib_sym *syms,
                size_t nsyms, void *table, char *err, size_t errlen);

#endif
