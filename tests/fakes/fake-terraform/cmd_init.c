/* cmd_init.c — `terraform init -no-color -input=false`.
 *
 * Prints terraform's init story (modules, backend, provider plugins, lock file, success) and leaves what init
 * leaves: .terraform/ with a provider directory per provider, .terraform.lock.hcl when absent (provider blocks
 * with versions and h1:/zh: hashes, derived deterministically), and an entry in TF_PLUGIN_CACHE_DIR when set.
 * Providers are those of the configuration's resource and data source types and of the state, plus
 * hashicorp/null always (so a lock file is always there for the agent to upload, ref E17).
 *
 * FAKE_TF_INIT_FAIL_TIMES=N makes the first N runs fail with terraform's error for an unreachable registry —
 * the text the agent's retry rule looks for (ref §7.4 step 2). Runs are counted across processes in a file
 * ($FAKE_TF_STATE_DIR/init-attempts, or .fake-terraform-init-attempts in the work directory), updated under an
 * exclusive lock. No network is ever used. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "config.h"
#include "diag.h"
#include "fail.h"
#include "iac/digest.h"
#include "iac/fsutil.h"
#include "iac/strbuf.h"
#include "intr.h"
#include "state.h"

#define FT_LOCK_FILE ".terraform.lock.hcl"

static const ft_flag_spec ft_init_flags[] = {
    { "no-color", true, FT_FLAG_USED },
    { "input", true, FT_FLAG_USED },
    { "upgrade", true, FT_FLAG_USED },
    { "backend", true, FT_FLAG_IGNORED },
    { "backend-config", false, FT_FLAG_IGNORED },
    { "force-copy", true, FT_FLAG_IGNORED },
    { "get", true, FT_FLAG_IGNORED },
    { "lock", true, FT_FLAG_IGNORED },
    { "lock-timeout", false, FT_FLAG_IGNORED },
    { "plugin-dir", false, FT_FLAG_IGNORED },
    { "reconfigure", true, FT_FLAG_IGNORED },
    { "migrate-state", true, FT_FLAG_IGNORED },
    { "lockfile", false, FT_FLAG_IGNORED },
    { "ignore-remote-version", true, FT_FLAG_IGNORED },
    { "from-module", false, FT_FLAG_UNSUPPORTED },
    { "json", true, FT_FLAG_UNSUPPORTED },
    { NULL, false, FT_FLAG_USED },
};

/* Versions the fake "installs"; any other provider gets 1.0.0. */
static const struct { const char *name, *version; } ft_provider_versions[] = {
    { "null", "3.2.2" },   { "random", "3.6.0" },  { "local", "2.4.1" },  { "http", "3.4.1" },
    { "time", "0.10.0" },  { "tls", "4.0.5" },     { "aws", "5.31.0" },   { "google", "5.10.0" },
    { "azurerm", "3.85.0" }, { "kubernetes", "2.24.0" },
};

static const char *const ft_hash_platforms[] = { "darwin_amd64", "darwin_arm64", "linux_amd64", "linux_arm64",
                                                 "windows_amd64" };

static const char *ft_version_for(const char *source)
{
    const char *name = strrchr(source, '/');
    name = name ? name + 1 : source;
    for (size_t i = 0; i < sizeof ft_provider_versions / sizeof ft_provider_versions[0]; i++)
        if (strcmp(ft_provider_versions[i].name, name) == 0)
            return ft_provider_versions[i].version;
    return "1.0.0";
}

/* "registry.terraform.io/hashicorp/null" → "hashicorp/null" (how init names providers in its lines). */
static const char *ft_short(const char *source)
{
    const char *p = strchr(source, '/');
    return p ? p + 1 : source;
}

static void ft_add_provider(cJSON *set, const char *type)
{
    char src[300];
    ft_provider_source(type, src, sizeof src);
    if (strncmp(src, "terraform.io/builtin/", 21) != 0 && !cJSON_GetObjectItemCaseSensitive(set, src))
        cJSON_AddStringToObject(set, src, ft_version_for(src));
}

/* Providers the directory needs: source → version (sorted). */
static cJSON *ft_providers(const ft_config *cfg, const ft_state *st)
{
    cJSON *set = cJSON_CreateObject();
    if (!set)
        return NULL;
    ft_add_provider(set, "null");
    for (size_t i = 0; i < cfg->res.n; i++)
        ft_add_provider(set, cfg->res.v[i].type);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(cfg->blocks, "data");
    for (const cJSON *t = data ? data->child : NULL; t; t = t->next)
        ft_add_provider(set, t->string);
    for (size_t i = 0; i < st->res.n; i++)
        ft_add_provider(set, st->res.v[i].type);
    ft_json_sort_top(set);
    return set;
}

static int ft_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void ft_lock_block(strbuf *b, const char *source, const char *version)
{
    char seed[512], hex[DIGEST_SHA256_HEX_LEN + 1], b64[64];
    uint8_t h[DIGEST_SHA256_LEN];
    snprintf(seed, sizeof seed, "h1:%s:%s", source, version);
    digest_sha256(seed, strlen(seed), h);
    digest_base64_encode(h, sizeof h, b64);
    enum { NP = sizeof ft_hash_platforms / sizeof ft_hash_platforms[0] };
    char zh[NP][DIGEST_SHA256_HEX_LEN + 4];
    char *zp[NP];
    for (size_t i = 0; i < NP; i++) {
        snprintf(seed, sizeof seed, "zh:%s:%s:%s", source, version, ft_hash_platforms[i]);
        digest_sha256_hex(seed, strlen(seed), hex);
        snprintf(zh[i], sizeof zh[i], "zh:%s", hex);
        zp[i] = zh[i];
    }
    qsort(zp, NP, sizeof zp[0], ft_cmp_str);
    strbuf_printf(b, "provider \"%s\" {\n  version = \"%s\"\n  hashes = [\n    \"h1:%s\",\n", source, version, b64);
    for (size_t i = 0; i < NP; i++)
        strbuf_printf(b, "    \"%s\",\n", zp[i]);
    strbuf_puts(b, "  ]\n}\n");
}

/* Writes the lock file for the selections (source → version). 0 or -errno. */
static int ft_lock_write(const cJSON *sel)
{
    strbuf b = STRBUF_INIT;
    strbuf_puts(&b, "# This file is maintained automatically by \"terraform init\".\n"
                    "# Manual edits may be lost in future updates.\n");
    for (const cJSON *p = sel->child; p; p = p->next) {
        strbuf_putc(&b, '\n');
        ft_lock_block(&b, p->string, p->valuestring);
    }
    int rc = b.oom ? -ENOMEM : fs_write_atomic(FT_LOCK_FILE, b.data, b.len, 0644);
    strbuf_free(&b);
    return rc;
}

/* Counts this init run; returns the attempt number (1 for the first), or -errno. */
static long ft_init_attempt(const ft_knobs *k)
{
    char path[4096];
    if (k->state_dir) {
        int r = fs_mkdir_p(k->state_dir, 0755);
        if (r < 0)
            return r;
        snprintf(path, sizeof path, "%s/init-attempts", k->state_dir);
    } else {
        snprintf(path, sizeof path, ".fake-terraform-init-attempts");
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    long count = (n > 0 ? strtol(buf, NULL, 10) : 0) + 1;
    int len = snprintf(buf, sizeof buf, "%ld\n", count);
    int rc = 0;
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len)
        rc = -errno;
    close(fd); /* releases the lock */
    return rc < 0 ? rc : count;
}

static int ft_init_transient(const ft_ctx *c)
{
    fputs("\nInitializing the backend...\n\nInitializing provider plugins...\n"
          "- Finding latest version of hashicorp/null...\n", stdout);
    ft_err e;
    ft_err_set(&e, "Failed to query available provider packages",
               "Could not retrieve the list of available versions for provider hashicorp/null: could not connect to "
               "registry.terraform.io: Failed to request discovery document: Get "
               "\"https://registry.terraform.io/.well-known/terraform.json\": dial tcp: lookup registry.terraform.io: "
               "no such host");
    ft_diag_error(c->boxed, &e);
    return 1;
}

static bool ft_local_source(const char *src)
{
    return strncmp(src, "./", 2) == 0 || strncmp(src, "../", 3) == 0;
}

static void ft_init_modules(const ft_config *cfg)
{
    if (!cfg->nmods)
        return;
    fputs("Initializing modules...\n", stdout);
    for (size_t i = 0; i < cfg->nmods; i++) {
        const ft_module_call *m = &cfg->mods[i];
        if (ft_local_source(m->source)) {
            printf("- %s in %s\n", m->name, m->source + (strncmp(m->source, "./", 2) == 0 ? 2 : 0));
            continue;
        }
        char dir[600];
        snprintf(dir, sizeof dir, ".terraform/modules/%s", m->name);
        fs_mkdir_p(dir, 0755);
        printf("Downloading %s%s%s for %s...\n- %s in %s\n", m->source, m->version ? " " : "",
               m->version ? m->version : "", m->name, m->name, dir);
    }
}

/* Installs the providers (directories only) and prints terraform's lines. Returns the lock file message kind:
 * 0 unchanged, 1 created, 2 changed; -errno on failure. */
static int ft_init_providers(const cJSON *need, bool upgrade)
{
    cJSON *locked = ft_lock_read(FT_LOCK_FILE);
    if (!locked)
        return -ENOMEM;
    bool had_lock = locked->child != NULL;
    fputs("\nInitializing provider plugins...\n", stdout);
    cJSON *sel = cJSON_CreateObject();
    for (const cJSON *p = need->child; p && sel; p = p->next) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(locked, p->string);
        if (l && !upgrade)
            printf("- Reusing previous version of %s from the dependency lock file\n", ft_short(p->string));
        else
            printf("- Finding latest version of %s...\n", ft_short(p->string));
        cJSON_AddStringToObject(sel, p->string, l && !upgrade ? l->valuestring : p->valuestring);
    }
    const char *cache = getenv("TF_PLUGIN_CACHE_DIR");
    for (const cJSON *p = sel ? sel->child : NULL; p; p = p->next) {
        char dir[4096];
        snprintf(dir, sizeof dir, ".terraform/providers/%s/%s/linux_amd64", p->string, p->valuestring);
        int rc = fs_mkdir_p(dir, 0755);
        struct stat sb;
        char cdir[4096] = "";
        if (cache && *cache)
            snprintf(cdir, sizeof cdir, "%s/%s/%s/linux_amd64", cache, p->string, p->valuestring);
        if (rc == 0 && cdir[0] && stat(cdir, &sb) == 0) {
            printf("- Using %s v%s from the shared cache directory\n", ft_short(p->string), p->valuestring);
        } else {
            printf("- Installing %s v%s...\n", ft_short(p->string), p->valuestring);
            if (rc == 0 && cdir[0])
                rc = fs_mkdir_p(cdir, 0755);
            printf("- Installed %s v%s (signed by HashiCorp)\n", ft_short(p->string), p->valuestring);
        }
        if (rc < 0) {
            cJSON_Delete(sel);
            cJSON_Delete(locked);
            return rc;
        }
    }
    int kind = sel ? 0 : -ENOMEM;
    if (sel && !cJSON_Compare(sel, locked, true)) {
        int rc = ft_lock_write(sel);
        kind = rc < 0 ? rc : had_lock ? 2 : 1;
    }
    cJSON_Delete(sel);
    cJSON_Delete(locked);
    return kind;
}

int ft_cmd_init(const ft_ctx *c)
{
    ft_args a;
    if (ft_cmd_args(c, ft_init_flags, &a) < 0)
        return 1;
    bool upgrade = ft_args_bool(&a, "upgrade");
    size_t npos = a.npos;
    ft_args_free(&a);
    if (npos > 0)
        return ft_cmd_too_many(c, "Expected at most zero positional arguments. Did you mean to use -chdir?");

    if (c->k->init_fail_times > 0) {
        long attempt = ft_init_attempt(c->k);
        if (attempt < 0) {
            fprintf(stderr, "fake-terraform: cannot count init attempts: %s\n", strerror((int)-attempt));
            return 1;
        }
        if (attempt <= c->k->init_fail_times) {
            if (ft_intr_sleep(c->k->init_delay_ms, true))
                return ft_cmd_halted(c);
            return ft_init_transient(c);
        }
    }
    if (ft_intr_sleep(c->k->init_delay_ms, true))
        return ft_cmd_halted(c);
    if (ft_cmd_extra_output(c) == 1)
        return ft_cmd_halted(c);
    if (ft_fail_wanted(c->k, "init")) {
        ft_fail_print(c->k, "init", c->boxed, NULL);
        return 1;
    }

    ft_config cfg;
    ft_state st;
    ft_err e;
    int rc = 1;
    bool cfg_ok = ft_config_load(&cfg, NULL, 0, false, &e) == 0;
    bool st_ok = cfg_ok && ft_state_load(FT_STATE_FILE, &st, &e) == 0;
    if (!cfg_ok || !st_ok) {
        ft_diag_error(c->boxed, &e);
        goto out;
    }
    if (cfg.nfiles == 0) {
        fputs("Terraform initialized in an empty directory!\n\n", stdout);
        ft_wrap_print(stdout, "The directory has no Terraform configuration files. You may begin working with "
                              "Terraform immediately by creating Terraform configuration files.", 78);
        rc = 0;
        goto out;
    }
    ft_init_modules(&cfg);
    fputs("\nInitializing the backend...\n", stdout);
    cJSON *need = ft_providers(&cfg, &st);
    int kind = need ? ft_init_providers(need, upgrade) : -ENOMEM;
    cJSON_Delete(need);
    if (kind < 0) {
        ft_err_set(&e, "Failed to install provider", "Error while installing the providers: %s.", strerror(-kind));
        ft_diag_error(c->boxed, &e);
        goto out;
    }
    if (kind == 1)
        fputs("\nTerraform has created a lock file .terraform.lock.hcl to record the provider\n"
              "selections it made above. Include this file in your version control repository\n"
              "so that Terraform can guarantee to make the same selections by default when\n"
              "you run \"terraform init\" in the future.\n", stdout);
    else if (kind == 2)
        fputs("\nTerraform has made some changes to the provider dependency selections recorded\n"
              "in the .terraform.lock.hcl file. Review those changes and commit them to your\n"
              "version control system if they represent changes you intended to make.\n", stdout);
    fputs("\nTerraform has been successfully initialized!\n", stdout);
    if (!c->automation)
        fputs("\nYou may now begin working with Terraform. Try running \"terraform plan\" to see\n"
              "any changes that are required for your infrastructure. All Terraform commands\n"
              "should now work.\n\n"
              "If you ever set or change modules or backend configuration for Terraform,\n"
              "rerun this command to reinitialize your working directory. If you forget, other\n"
              "commands will detect it and remind you to do so if necessary.\n", stdout);
    rc = 0;
out:
    if (cfg_ok)
        ft_state_free(&st);
    ft_config_free(&cfg);
    return rc;
}
