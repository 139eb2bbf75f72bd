/* engine.h — the terraform/tofu binary a task runs (ref §7.3, DESIGN §4.4): resolved, downloaded, verified and
 * cached under the data dir, asynchronously on the loop.
 *
 * engine_ensure(version) answers with the path of a binary that ran `<bin> version` successfully:
 *   1. version "" or "latest" → GET /api/v1/agents/terraform-versions/default (E18), any other version →
 *      /terraform-versions/{version} (E19): pool token, plain mode. The answer {"version": {"version",
 *      "download_url", "checksum", …}} is parsed strictly; a 404 is "terraform version X not found or not enabled"
 *      ("no default terraform version configured" for E18).
 *   2. {data_dir}/engines/{version}/terraform exists, is executable and `version` exits 0 → done (no download).
 *   3. Otherwise download_url → {data_dir}/engines/.tmp-XXXXXX/iac.zip (the Bearer token only when the URL has the
 *      control plane's origin; redirects followed), SHA-256 of the zip must equal checksum ("checksum mismatch:
 *      expected …, got …"), unpack with libarchive (every entry checked: no absolute path, no "..", regular files
 *      and directories only), pick `tofu` when the lower-cased URL contains "opentofu", "tofu_" or "/tofu/", else
 *      `terraform` (and `terraform` when the wanted name is absent), install it as {data_dir}/engines/{version}/
 *      terraform (0755, fsync, atomic rename), run `version` again. Hashing and unpacking run on libuv's thread
 *      pool; `version` is a libuv child process (30 s limit). libarchive (libarchive.so.13) is loaded at the first
 *      unpack, not linked: when it cannot be loaded, that ensure fails with an error naming it.
 *
 * Deliberate differences from upstream (ref §8 entry 25): upstream calls E18/E19 on every binary check, four or
 * more times per plan. Here a version verified once is remembered for the life of the process: later ensures of
 * that version answer from memory (after a stat that the file is still there) with no lookup at all. "latest" is
 * still looked up each time (one E18 per ensure), because an operator may change the default at any moment; its
 * answer then joins the cache entry of the version it names. Concurrent ensures of one version share one lookup
 * and one download: they wait on a per-version list and all get the same answer. Failures are not remembered: the
 * next ensure tries again.
 *
 * engine_path (IAC_ENGINE_PATH, passed in by the caller — nothing here reads the environment) forces a local
 * binary: no lookup, no download, no version run; it must be an executable file.
 *
 * One cache per data dir (creating one sweeps the download directories it finds there). Callbacks never run
 * from inside engine_ensure(): the answer always comes from the loop. Strings passed to the
 * callback are valid during the callback only. The cache owns the work it started; engine_cache_free() abandons
 * waiters without calling them and finishes its own clean-up on the loop (run the loop once more before closing
 * it). */
#ifndef IAC_AGENT_ENGINE_H
#define IAC_AGENT_ENGINE_H

#include <uv.h>

#include "iac/httpc.h"

typedef struct engine_cache engine_cache;
typedef struct engine_wait engine_wait;

typedef struct {
    uv_loop_t   *loop;
    httpc       *http;        /* shared client; must outlive the cache */
    const char  *base_url;    /* control plane, "http[s]://host:port" (copied) */
    char *const *token;       /* where the current pool token lives (read at each request: it may be replaced) */
    const char  *data_dir;    /* engines go to {data_dir}/engines (copied) */
    const char  *engine_path; /* IAC_ENGINE_PATH, or NULL/"" (copied) */
    long         download_timeout_ms; /* whole download; 0 → 30 minutes */
} engine_config;

/* path on success (error NULL), or error on failure (path NULL). */
typedef void (*engine_cb)(const char *path, const char *error, void *arg);

/* NULL on bad configuration (no loop, client, base URL or data dir; a data dir longer than 890 bytes) or OOM. Removes
 * leftovers of interrupted downloads ({data_dir}/engines/.tmp-*). */
engine_cache *engine_cache_new(const engine_config *cfg);
/* Starts (or joins) the resolution of version. Returns a handle for engine_cancel() valid until the callback
 * runs, or NULL on OOM (the callback will not run). */
engine_wait *engine_ensure(engine_cache *c, const char *version, engine_cb cb, void *arg);
/* Withdraws one waiter (its callback will not run); the shared work goes on for the others and for the cache. */
void engine_cancel(engine_wait *w);
/* Abandons every waiter (no callbacks) and frees the cache once its requests, children and thread-pool jobs have
 * ended. */
void engine_cache_free(engine_cache *c);

/* Which binary an archive from url holds, by ref §7.3's rule: "tofu" or "terraform". */
const char *engine_binary_name(const char *url);

#endif
