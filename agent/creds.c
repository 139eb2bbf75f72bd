/* creds.c — writes or removes the registry credentials file; see creds.h. */
#include "creds.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "iac/fsutil.h"
#include "iac/json.h"
#include "iac/jsonw.h"
#include "iac/strbuf.h"

int creds_apply(const char *home, const char *body, size_t len, bool delete_when_empty, int *count, char *err,
                size_t errlen)
{
    *count = 0;
    if (!home || !home[0]) {
        snprintf(err, errlen, "HOME is not set: nowhere to write the registry credentials file");
        return -1;
    }
    cJSON *root = json_parse_object(body, len, err, errlen);
    if (!root)
        return -1;
    const cJSON *creds = NULL;
    int rc = -1;
    if (json_get_object(root, "credentials", true, &creds, err, errlen) < 0)
        goto out;
    *count = cJSON_GetArraySize(creds);
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/.terraform.d", home);
    snprintf(path, sizeof path, "%s/credentials.tfrc.json", dir);
    if (*count == 0) {
        rc = CREDS_UNCHANGED;
        if (delete_when_empty) {
            if (unlink(path) < 0 && errno != ENOENT) {
                snprintf(err, errlen, "cannot remove %s: %s", path, strerror(errno));
                rc = -1;
            } else {
                rc = CREDS_DELETED;
            }
        }
        goto out;
    }
    int mk = fs_mkdir_p(dir, 0700);
    if (mk < 0) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-mk));
        goto out;
    }
    cJSON *wrapper = cJSON_CreateObject();
    if (!wrapper) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* Borrow the parsed object instead of copying secrets around. */
    cJSON_AddItemReferenceToObject(wrapper, "credentials", (cJSON *)creds);
    strbuf text = STRBUF_INIT;
    jsonw_write(&text, wrapper, JSONW_GO);
    cJSON_Delete(wrapper);
    if (text.oom) {
        snprintf(err, errlen, "out of memory");
        strbuf_free(&text);
        goto out;
    }
    int wr = fs_write_atomic(path, text.data, text.len, 0600);
    explicit_bzero(text.data, text.len);
    strbuf_free(&text);
    if (wr < 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(-wr));
        goto out;
    }
    rc = CREDS_WRITTEN;
out:
    cJSON_Delete(root);
    return rc;
}
