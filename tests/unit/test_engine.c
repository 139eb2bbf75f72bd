/* test_engine.c — engine resolution, download, verification and caching on a real loop.
 *
 * A fake control plane (the https module on loopback, ephemeral port) answers E18/E19 from a table of versions
 * and serves their zips, which the test builds with libarchive: each holds a tiny shell script named terraform
 * (or tofu) that prints its version for `version` and fails otherwise. A second server on another port stands
 * for a third-party download host. Engines go to a fresh data dir per test. Every test runs the loop to the
 * end and closes it, so a leaked handle or a callback that never came fails it (a watchdog ends hangs). */
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <libwebsockets.h>
#include <uv.h>

#include "../../agent/engine.h"
#include "iac/digest.h"
#include "iac/fsutil.h"
#include "iac/httpc.h"
#include "iac/https.h"
#include "iac/log.h"
#include "iac/strbuf.h"

#define TOKEN    "apt_pool_0123456789abcdef"
#define NWAIT    8
#define VPREFIX  "/api/v1/agents/terraform-versions/"

#define TF_SCRIPT(v)   "#!/bin/sh\nif [ \"$1\" = version ]; then echo \"Terraform v" v "\"; exit 0; fi\nexit 1\n"
#define TOFU_SCRIPT(v) "#!/bin/sh\nif [ \"$1\" = version ]; then echo \"OpenTofu v" v "\"; exit 0; fi\nexit 1\n"
#define BROKEN_SCRIPT  "#!/bin/sh\nexit 3\n"

typedef struct fixture fixture;

typedef struct {
    const char *name, *content;
} zip_file;

/* One version the fake plane knows. */
typedef struct {
    const char *version;
    const char *url_path;     /* where its zip is served */
    bool        third_party;  /* served by the other server */
    zip_file    files[3];
    const char *checksum;     /* NULL: the zip's real SHA-256 */
    strbuf      zip;
    char        sha[DIGEST_SHA256_HEX_LEN + 1];
} known_version;

typedef struct {
    fixture *f;
    int      i;
} waiter;

typedef struct {
    int   called;
    char *path, *error;
} got;

struct fixture {
    uv_loop_t      loop;
    uv_timer_t     watchdog;
    bool           timed_out;
    https_server  *plane, *other;
    int            plane_port, other_port;
    httpc         *http;
    engine_cache  *engines;
    engine_cache  *extra;          /* a second cache some tests use; freed with the first */
    bool           free_on_download; /* the plane frees everything while serving a zip */
    char           base_url[64];
    char          *token;
    char           dir[64];
    known_version  versions[8];
    int            nversions;
    const char    *default_version;
    int            lookups_default, lookups_version, downloads, other_downloads;
    char          *lookup_auth, *download_auth, *other_auth;
    waiter         waiters[NWAIT];
    got            got[NWAIT];
    engine_wait   *handles[NWAIT];
    int            outstanding;
    void         (*on_cb)(fixture *f, int i);
};

/* ---- zips ---- */

static void zip_build(known_version *v)
{
    size_t cap = 1 << 16, used = 0;
    char *buf = malloc(cap);
    struct archive *a = archive_write_new();
    assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
    for (int i = 0; i < 3 && v->files[i].name; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, v->files[i].name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0755);
        archive_entry_set_size(e, (la_int64_t)strlen(v->files[i].content));
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        assert_int_equal(archive_write_data(a, v->files[i].content, strlen(v->files[i].content)),
                         (la_ssize_t)strlen(v->files[i].content));
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    strbuf_append(&v->zip, buf, used);
    free(buf);
    digest_sha256_hex(v->zip.data, v->zip.len, v->sha);
}

static void add_version(fixture *f, known_version v)
{
    f->versions[f->nversions] = v;
    zip_build(&f->versions[f->nversions]);
    f->nversions++;
}

/* ---- the fake control plane and the third-party host ---- */

static known_version *version_named(fixture *f, const char *name)
{
    for (int i = 0; i < f->nversions; i++)
        if (!strcmp(f->versions[i].version, name))
            return &f->versions[i];
    return NULL;
}

static void reply_version(fixture *f, known_version *v, https_response *res)
{
    strbuf_printf(&res->body,
                  "{\"version\":{\"id\":7,\"version\":\"%s\",\"download_url\":\"http://127.0.0.1:%d%s\","
                  "\"checksum\":\"%s\",\"enabled\":true,\"deprecated\":false,\"is_default\":false,"
                  "\"created_at\":\"2026-01-02T10:00:00.123+08:00\",\"updated_at\":\"2026-01-02T10:00:00.123+08:00\"}}",
                  v->version, v->third_party ? f->other_port : f->plane_port, v->url_path,
                  v->checksum ? v->checksum : v->sha);
}

static void serve_zip(fixture *f, const https_request *req, https_response *res, bool third_party)
{
    for (int i = 0; i < f->nversions; i++) {
        known_version *v = &f->versions[i];
        if (v->third_party == third_party && !strcmp(v->url_path, req->path)) {
            res->content_type = "application/zip";
            strbuf_append(&res->body, v->zip.data, v->zip.len);
            return;
        }
    }
    https_reply_error(res, 404, "no such file");
}

static void remember(char **slot, const char *value)
{
    free(*slot);
    *slot = value ? strdup(value) : NULL;
}

static void finish(fixture *f);

static void plane_handler(const https_request *req, https_response *res, void *arg)
{
    fixture *f = arg;
    size_t plen = strlen(VPREFIX);
    if (!strncmp(req->path, VPREFIX, plen)) {
        const char *name = req->path + plen;
        known_version *v;
        remember(&f->lookup_auth, req->authorization);
        if (!strcmp(name, "default")) {
            f->lookups_default++;
            v = f->default_version ? version_named(f, f->default_version) : NULL;
            if (!v)
                https_reply_error(res, 404, "no default terraform version configured");
        } else {
            f->lookups_version++;
            v = version_named(f, name);
            if (!v) {
                char msg[128];
                snprintf(msg, sizeof msg, "terraform version %s not found or not enabled", name);
                https_reply_error(res, 404, msg);
            }
        }
        if (v)
            reply_version(f, v, res);
        return;
    }
    f->downloads++;
    remember(&f->download_auth, req->authorization);
    serve_zip(f, req, res, false);
    if (f->free_on_download && f->engines)
        finish(f); /* the answer is on its way; nobody will take it */
}

static void other_handler(const https_request *req, https_response *res, void *arg)
{
    fixture *f = arg;
    f->other_downloads++;
    remember(&f->other_auth, req->authorization);
    serve_zip(f, req, res, true);
}

/* ---- fixture ---- */

static void on_watchdog(uv_timer_t *t)
{
    fixture *f = t->data;
    f->timed_out = true;
    uv_stop(&f->loop);
}

static engine_cache *cache_new(fixture *f, const char *engine_path)
{
    engine_config cfg = { .loop = &f->loop, .http = f->http, .base_url = f->base_url, .token = &f->token,
                          .data_dir = f->dir, .engine_path = engine_path };
    engine_cache *c = engine_cache_new(&cfg);
    assert_non_null(c);
    return c;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[256];
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->watchdog);
    f->watchdog.data = f;
    uv_timer_start(&f->watchdog, on_watchdog, 20000, 0);
    uv_unref((uv_handle_t *)&f->watchdog);

    https_opts o = { .host = "127.0.0.1", .handler = plane_handler, .arg = f };
    f->plane = https_listen(&f->loop, &o, err, sizeof err);
    assert_non_null(f->plane);
    f->plane_port = https_port(f->plane);
    https_opts o2 = { .host = "127.0.0.1", .handler = other_handler, .arg = f };
    f->other = https_listen(&f->loop, &o2, err, sizeof err);
    assert_non_null(f->other);
    f->other_port = https_port(f->other);
    snprintf(f->base_url, sizeof f->base_url, "http://127.0.0.1:%d", f->plane_port);

    f->http = httpc_new(&f->loop, NULL);
    assert_non_null(f->http);
    f->token = strdup(TOKEN);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_engine-XXXXXX");
    assert_non_null(mkdtemp(f->dir));

    add_version(f, (known_version){ .version = "1.6.6", .url_path = "/dl/terraform_1.6.6_linux_amd64.zip",
                                    .files = { { "terraform", TF_SCRIPT("1.6.6") } } });
    add_version(f, (known_version){ .version = "1.5.0", .url_path = "/dl/terraform_1.5.0_linux_amd64.zip",
                                    .files = { { "terraform", TF_SCRIPT("1.5.0") } },
                                    .checksum = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff" });
    add_version(f, (known_version){ .version = "1.7.0", .url_path = "/dl/opentofu/tofu_1.7.0_linux_amd64.zip",
                                    .files = { { "terraform", BROKEN_SCRIPT }, { "tofu", TOFU_SCRIPT("1.7.0") },
                                               { "LICENSE", "MPL-2.0\n" } } });
    add_version(f, (known_version){ .version = "6.6.6", .url_path = "/dl/evil.zip",
                                    .files = { { "terraform", TF_SCRIPT("6.6.6") }, { "../evil", "gotcha\n" } } });
    add_version(f, (known_version){ .version = "2.0.0", .url_path = "/releases/terraform_2.0.0.zip",
                                    .third_party = true, .files = { { "terraform", TF_SCRIPT("2.0.0") } } });
    f->default_version = "1.6.6";
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < NWAIT; i++) {
        free(f->got[i].path);
        free(f->got[i].error);
    }
    for (int i = 0; i < f->nversions; i++)
        strbuf_free(&f->versions[i].zip);
    free(f->lookup_auth);
    free(f->download_auth);
    free(f->other_auth);
    free(f->token);
    fs_rm_rf(f->dir);
    free(f);
    return 0;
}

/* Frees the cache, the client and the servers; the loop then only has closing handles left. */
static void finish(fixture *f)
{
    engine_cache_free(f->engines);
    engine_cache_free(f->extra);
    f->engines = f->extra = NULL;
    httpc_free(f->http);
    f->http = NULL;
    https_free(f->plane);
    https_free(f->other);
    f->plane = f->other = NULL;
}

static void run(fixture *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_false(f->timed_out);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void on_engine(const char *path, const char *error, void *arg)
{
    waiter *w = arg;
    fixture *f = w->f;
    got *g = &f->got[w->i];
    g->called++;
    remember(&g->path, path);
    remember(&g->error, error);
    f->handles[w->i] = NULL;
    if (f->on_cb)
        f->on_cb(f, w->i);
    if (--f->outstanding == 0 && f->engines)
        finish(f);
}

static engine_wait *ensure(fixture *f, int i, const char *version)
{
    f->waiters[i] = (waiter){ f, i };
    f->handles[i] = engine_ensure(f->engines, version, on_engine, &f->waiters[i]);
    assert_non_null(f->handles[i]);
    f->outstanding++;
    return f->handles[i];
}

static void path_of(fixture *f, char *out, size_t outlen, const char *rel)
{
    snprintf(out, outlen, "%s/%s", f->dir, rel);
}

static char *slurp(const char *path)
{
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(fs_read_file(path, 1 << 20, &data, &len), 0);
    return data;
}

/* No download directory is left behind under engines/. */
static void assert_no_tmp(fixture *f)
{
    char engines[128];
    path_of(f, engines, sizeof engines, "engines");
    DIR *d = opendir(engines);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)))
        assert_true(strncmp(de->d_name, ".tmp-", 5) != 0);
    closedir(d);
}

/* ---- tests ---- */

/* A version not on disk is looked up (E19, with the pool token), downloaded (the token goes along: same origin
 * as the plane), checked, unpacked and installed as engines/{version}/terraform, mode 0755, and it runs. */
static void download_checks_unpacks_and_installs(void **state)
{
    fixture *f = *state;
    char want[128];
    f->engines = cache_new(f, NULL);
    ensure(f, 0, "1.6.6");
    run(f);
    path_of(f, want, sizeof want, "engines/1.6.6/terraform");
    assert_int_equal(f->got[0].called, 1);
    assert_null(f->got[0].error);
    assert_string_equal(f->got[0].path, want);
    struct stat st;
    assert_int_equal(stat(want, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    char *content = slurp(want);
    assert_string_equal(content, TF_SCRIPT("1.6.6"));
    free(content);
    assert_int_equal(f->lookups_version, 1);
    assert_int_equal(f->lookups_default, 0);
    assert_int_equal(f->downloads, 1);
    assert_string_equal(f->lookup_auth, "Bearer " TOKEN);
    assert_string_equal(f->download_auth, "Bearer " TOKEN);
    assert_no_tmp(f);
}

static void ensure_again(fixture *f, int i)
{
    if (i == 0) {
        ensure(f, 1, "1.6.6");
        assert_int_equal(f->got[1].called, 0); /* never answered from inside engine_ensure */
    }
}

/* Once verified, a version is answered from memory: no second lookup, no second download. */
static void verified_version_is_remembered(void **state)
{
    fixture *f = *state;
    f->engines = cache_new(f, NULL);
    f->on_cb = ensure_again;
    ensure(f, 0, "1.6.6");
    run(f);
    assert_int_equal(f->got[1].called, 1);
    assert_null(f->got[1].error);
    assert_string_equal(f->got[1].path, f->got[0].path);
    assert_int_equal(f->lookups_version, 1);
    assert_int_equal(f->downloads, 1);
}

static void restart_and_ensure(fixture *f, int i)
{
    if (i != 0)
        return;
    engine_cache_free(f->engines); /* a new process: nothing remembered */
    f->engines = cache_new(f, NULL);
    ensure(f, 1, "1.6.6");
}

/* A binary already on disk that runs is used as it is: a new cache looks the version up once and downloads
 * nothing. */
static void cached_binary_skips_download(void **state)
{
    fixture *f = *state;
    f->engines = cache_new(f, NULL);
    f->on_cb = restart_and_ensure;
    ensure(f, 0, "1.6.6");
    run(f);
    assert_null(f->got[1].error);
    assert_string_equal(f->got[1].path, f->got[0].path);
    assert_int_equal(f->lookups_version, 2);
    assert_int_equal(f->downloads, 1);
}

static void remove_and_ensure(fixture *f, int i)
{
    if (i != 0)
        return;
    assert_int_equal(unlink(f->got[0].path), 0);
    ensure(f, 1, "1.6.6");
}

/* A remembered binary that has since disappeared from disk is resolved and installed again. */
static void removed_binary_is_installed_again(void **state)
{
    fixture *f = *state;
    f->engines = cache_new(f, NULL);
    f->on_cb = remove_and_ensure;
    ensure(f, 0, "1.6.6");
    run(f);
    assert_null(f->got[1].error);
    assert_string_equal(f->got[1].path, f->got[0].path);
    assert_int_equal(access(f->got[1].path, X_OK), 0);
    assert_int_equal(f->lookups_version, 2);
    assert_int_equal(f->downloads, 2);
}

/* A cached binary that does not run is replaced by a fresh download. */
static void broken_cached_binary_is_downloaded_again(void **state)
{
    fixture *f = *state;
    char dir[128], bin[160];
    path_of(f, dir, sizeof dir, "engines/1.6.6");
    snprintf(bin, sizeof bin, "%s/terraform", dir);
    assert_int_equal(fs_mkdir_p(dir, 0755), 0);
    assert_int_equal(fs_write_atomic(bin, BROKEN_SCRIPT, strlen(BROKEN_SCRIPT), 0755), 0);
    f->engines = cache_new(f, NULL);
    ensure(f, 0, "1.6.6");
    run(f);
    assert_null(f->got[0].error);
    assert_int_equal(f->downloads, 1);
    char *content = slurp(bin);
    assert_string_equal(content, TF_SCRIPT("1.6.6"));
    free(content);
}

static void latest_again(fixture *f, int i)
{
    if (i == 0)
        ensure(f, 1, "");
}

/* "latest" and "" go through E18 and install the default version under its own name; the default is looked up
 * again at each ensure (an operator may change it) but downloaded once. */
static void latest_resolves_the_default(void **state)
{
    fixture *f = *state;
    char want[128];
    f->engines = cache_new(f, NULL);
    f->on_cb = latest_again;
    ensure(f, 0, "latest");
    run(f);
    path_of(f, want, sizeof want, "engines/1.6.6/terraform");
    for (int i = 0; i < 2; i++) {
        assert_null(f->got[i].error);
        assert_string_equal(f->got[i].path, want);
    }
    assert_int_equal(f->lookups_default, 2);
    assert_int_equal(f->lookups_version, 0);
    assert_int_equal(f->downloads, 1);
}

/* A zip whose SHA-256 is not the announced checksum is refused with both values; nothing is installed and no
 * download directory is left. */
static void checksum_mismatch_is_refused(void **state)
{
    fixture *f = *state;
    char msg[256], bin[128];
    f->engines = cache_new(f, NULL);
    ensure(f, 0, "1.5.0");
    run(f);
    assert_null(f->got[0].path);
    snprintf(msg, sizeof msg, "checksum mismatch: expected %s, got %s", version_named(f, "1.5.0")->checksum,
             version_named(f, "1.5.0")->sha);
    assert_non_null(strstr(f->got[0].error, msg));
    path_of(f, bin, sizeof bin, "engines/1.5.0/terraform");
    assert_int_equal(access(bin, F_OK), -1);
    assert_no_tmp(f);
}

/* A version the plane does not know is reported in upstream's words; a version string that is not one is
 * refused without asking anybody. */
static void unknown_version_is_not_found(void **state)
{
    fixture *f = *state;
    f->engines = cache_new(f, NULL);
    ensure(f, 0, "0.0.1");
    ensure(f, 1, "../../etc");
    run(f);
    assert_null(f->got[0].path);
    assert_string_equal(f->got[0].error, "terraform version 0.0.1 not found or not enabled");
    assert_null(f->got[1].path);
    assert_non_null(strstr(f->got[1].error, "not a valid version"));
    assert_int_equal(f->lookups_version, 1);
    assert_int_equal(f->downloads, 0);
}

/* An OpenTofu URL installs the archive's tofu (under the name terraform), not its terraform. */
static void tofu_url_installs_tofu(void **state)
{
    fixture *f = *state;
    char want[128];
    f->engines = cache_new(f, NULL);
    ensure(f, 0, "1.7.0");
    run(f);
    path_of(f, want, sizeof want, "engines/1.7.0/terraform");
    assert_null(f->got[0].error);
    assert_string_equal(f->got[0].path, want);
    char *content = slurp(want);
    assert_string_equal(content, TOFU_SCRIPT("1.7.0"));
    free(content);
}

/* The name rule of ref §7.3, case-insensitive. */
static void binary_name_follows_the_url(void **state)
{
    (void)state;
    static const struct {
        const char *url, *name;
    } cases[] = {
        { "https://github.com/opentofu/opentofu/releases/download/v1.7.0/tofu_1.7.0_linux_amd64.zip", "tofu" },
        { "https://mirror.example/OpenTofu/1.7.0.zip", "tofu" },
        { "https://mirror.example/TOFU_1.7.0.zip", "tofu" },
        { "https://mirror.example/engines/tofu/1.7.0.zip", "tofu" },
        { "https://releases.hashicorp.com/terraform/1.6.6/terraform_1.6.6_linux_amd64.zip", "terraform" },
        { "https://mirror.example/tofu-1.7.0.zip", "terraform" },
        { "", "terraform" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(engine_binary_name(cases[i].url), cases[i].name);
}

/* Ensures of one version made at the same time share one lookup and one download, and a "latest" that resolves
 * to it joins them; all get the same answer. */
static void concurrent_ensures_share_one_download(void **state)
{
    fixture *f = *state;
    f->engines = cache_new(f, NULL);
    for (int i = 0; i < 4; i++)
        ensure(f, i, "1.6.6");
    ensure(f, 4, "latest");
    run(f);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(f->got[i].called, 1);
        assert_null(f->got[i].error);
        assert_string_equal(f->got[i].path, f->got[0].path);
    }
    assert_int_equal(f->lookups_version, 1);
    assert_int_equal(f->lookups_default, 1);
    assert_int_equal(f->downloads, 1);
}

/* IAC_ENGINE_PATH wins over everything: any version answers with it, with no request at all (and still not from
 * inside engine_ensure); a path that is not an executable file is an error. */
static void engine_path_overrides_everything(void **state)
{
    fixture *f = *state;
    char bin[128], plain[128];
    path_of(f, bin, sizeof bin, "my-terraform");
    path_of(f, plain, sizeof plain, "not-executable");
    assert_int_equal(fs_write_atomic(bin, TF_SCRIPT("9.9.9"), strlen(TF_SCRIPT("9.9.9")), 0755), 0);
    assert_int_equal(fs_write_atomic(plain, "x", 1, 0644), 0);
    f->extra = cache_new(f, plain);
    f->engines = cache_new(f, bin);
    ensure(f, 0, "1.6.6");
    ensure(f, 1, "latest");
    f->waiters[2] = (waiter){ f, 2 };
    assert_non_null(engine_ensure(f->extra, "1.6.6", on_engine, &f->waiters[2]));
    f->outstanding++;
    assert_int_equal(f->got[0].called + f->got[1].called + f->got[2].called, 0);
    run(f);
    assert_string_equal(f->got[0].path, bin);
    assert_string_equal(f->got[1].path, bin);
    assert_null(f->got[2].path);
    assert_non_null(strstr(f->got[2].error, "IAC_ENGINE_PATH"));
    assert_int_equal(f->lookups_version + f->lookups_default + f->downloads, 0);
}

/* A zip with an entry that climbs out of the directory ("../evil") is refused as a whole: nothing from it is
 * written anywhere. */
static void traversal_entry_rejects_the_archive(void **state)
{
    fixture *f = *state;
    char bin[128], evil[128], evil2[128];
    f->engines = cache_new(f, NULL);
    ensure(f, 0, "6.6.6");
    run(f);
    assert_null(f->got[0].path);
    assert_non_null(strstr(f->got[0].error, "\"../evil\""));
    path_of(f, bin, sizeof bin, "engines/6.6.6/terraform");
    path_of(f, evil, sizeof evil, "engines/evil");
    path_of(f, evil2, sizeof evil2, "evil");
    assert_int_equal(access(bin, F_OK), -1);
    assert_int_equal(access(evil, F_OK), -1);
    assert_int_equal(access(evil2, F_OK), -1);
    assert_no_tmp(f);
}

/* A download from another origin carries no Authorization header. */
static void third_party_download_gets_no_token(void **state)
{
    fixture *f = *state;
    f->engines = cache_new(f, NULL);
    ensure(f, 0, "2.0.0");
    run(f);
    assert_null(f->got[0].error);
    assert_int_equal(f->other_downloads, 1);
    assert_null(f->other_auth);
    assert_string_equal(f->lookup_auth, "Bearer " TOKEN);
}

/* A cancelled waiter is never called; the others still get the shared answer. */
static void cancelled_waiter_is_not_called(void **state)
{
    fixture *f = *state;
    f->engines = cache_new(f, NULL);
    ensure(f, 0, "1.6.6");
    engine_wait *w = ensure(f, 1, "1.6.6");
    engine_cancel(w);
    f->outstanding--;
    run(f);
    assert_int_equal(f->got[0].called, 1);
    assert_null(f->got[0].error);
    assert_int_equal(f->got[1].called, 0);
}

/* Freeing the cache with a download in flight calls nobody back, leaves no download directory and lets the
 * loop finish. */
static void free_during_download_is_clean(void **state)
{
    fixture *f = *state;
    f->free_on_download = true;
    f->engines = cache_new(f, NULL);
    ensure(f, 0, "1.6.6");
    run(f);
    assert_int_equal(f->got[0].called, 0);
    assert_no_tmp(f);
}

int main(void)
{
    lws_set_log_level(LLL_ERR, NULL);
    log_setup(LOG_ERROR, LOG_FORMAT_TEXT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(download_checks_unpacks_and_installs, setup, teardown),
        cmocka_unit_test_setup_teardown(verified_version_is_remembered, setup, teardown),
        cmocka_unit_test_setup_teardown(cached_binary_skips_download, setup, teardown),
        cmocka_unit_test_setup_teardown(broken_cached_binary_is_downloaded_again, setup, teardown),
        cmocka_unit_test_setup_teardown(removed_binary_is_installed_again, setup, teardown),
        cmocka_unit_test_setup_teardown(latest_resolves_the_default, setup, teardown),
        cmocka_unit_test_setup_teardown(checksum_mismatch_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_version_is_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(tofu_url_installs_tofu, setup, teardown),
        cmocka_unit_test(binary_name_follows_the_url),
        cmocka_unit_test_setup_teardown(concurrent_ensures_share_one_download, setup, teardown),
        cmocka_unit_test_setup_teardown(engine_path_overrides_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(traversal_entry_rejects_the_archive, setup, teardown),
        cmocka_unit_test_setup_teardown(third_party_download_gets_no_token, setup, teardown),
        cmocka_unit_test_setup_teardown(cancelled_waiter_is_not_called, setup, teardown),
        cmocka_unit_test_setup_teardown(free_during_download_is_clean, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
