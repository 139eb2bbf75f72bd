/* planjson.c — counts, E10 body, output changes, progress lines and error blocks from terraform's output; see
 * planjson.h.
 *
 * Everything here is a small scan over a cJSON tree or one line of text. The error extractor is the only piece
 * with state, and its state is one bounded buffer, because it reads a log that may be far larger than memory
 * should hold. */
#include "planjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iac/json.h"
#include "iac/jsonw.h"

/* Go's json.Marshal: sorted map keys, compact, <>& escaped. */
#define PLANJSON_GO_COMPACT (JSONW_SORT_KEYS | JSONW_HTML_ESCAPE)

cJSON *planjson_parse(const char *text, size_t len, char *err, size_t errlen)
{
    if (!text) {
        snprintf(err, errlen, "plan JSON: no text");
        return NULL;
    }
    char inner[200];
    cJSON *root = json_parse_object(text, len, inner, sizeof inner);
    if (!root)
        snprintf(err, errlen, "plan JSON: %s", inner);
    return root;
}

/* The top-level array `key` of plan: 1 when absent (or null), 0 with *out set, -1 when plan or the member has the
 * wrong type. */
static int planjson_member(const cJSON *plan, const char *key, bool array, const cJSON **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    if (!cJSON_IsObject(plan)) {
        snprintf(err, errlen, "plan JSON: expected an object");
        return -1;
    }
    char inner[160];
    int rc = array ? json_get_array(plan, key, false, out, inner, sizeof inner)
                   : json_get_object(plan, key, false, out, inner, sizeof inner);
    if (rc < 0)
        snprintf(err, errlen, "plan JSON: %s", inner);
    return rc;
}

/* The `actions` array of an item's object `change`, or NULL when the item lacks either (such items are skipped). */
static const cJSON *planjson_actions(const cJSON *item, const cJSON **change)
{
    const cJSON *c = cJSON_IsObject(item) ? cJSON_GetObjectItemCaseSensitive(item, "change") : NULL;
    if (!cJSON_IsObject(c))
        return NULL;
    const cJSON *actions = cJSON_GetObjectItemCaseSensitive(c, "actions");
    if (!cJSON_IsArray(actions))
        return NULL;
    if (change)
        *change = c;
    return actions;
}

static bool planjson_is_noop(const cJSON *actions)
{
    const cJSON *a = actions ? actions->child : NULL;
    return cJSON_GetArraySize(actions) == 1 && cJSON_IsString(a) && strcmp(a->valuestring, "no-op") == 0;
}

/* ---- counts ---------------------------------------------------------------------------------------------------- */

int planjson_count(const cJSON *plan, planjson_counts *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const cJSON *rcs;
    int rc = planjson_member(plan, "resource_changes", true, &rcs, err, errlen);
    if (rc < 0)
        return -1;
    if (rc > 0)
        return 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, rcs) {
        const cJSON *actions = planjson_actions(item, NULL), *a;
        if (!actions)
            continue;
        cJSON_ArrayForEach(a, actions) {
            if (!cJSON_IsString(a))
                continue;
            if (strcmp(a->valuestring, "create") == 0)
                out->add++;
            else if (strcmp(a->valuestring, "update") == 0)
                out->change++;
            else if (strcmp(a->valuestring, "delete") == 0)
                out->destroy++;
        }
    }
    return 0;
}

/* ---- E10 body -------------------------------------------------------------------------------------------------- */

/* The upload's `action` for an actions list that is not ["no-op"]. */
static const char *planjson_action_name(const cJSON *actions)
{
    int n = cJSON_GetArraySize(actions);
    const cJSON *first = actions->child;
    if (n == 1 && cJSON_IsString(first))
        return first->valuestring;
    if (n == 2 && cJSON_IsString(first) && cJSON_IsString(first->next) && strcmp(first->valuestring, "delete") == 0 &&
        strcmp(first->next->valuestring, "create") == 0)
        return "replace";
    return "unknown";
}

/* A JSON string written the way Go writes it, without building a tree node on the heap. */
static void planjson_put_string(strbuf *b, const char *s)
{
    cJSON tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.type = cJSON_String;
    tmp.valuestring = (char *)s;
    jsonw_write(b, &tmp, PLANJSON_GO_COMPACT);
}

static const char *planjson_string_or_empty(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

int planjson_resource_changes(const cJSON *plan, strbuf *out, int *count, char *err, size_t errlen)
{
    *count = 0;
    const cJSON *rcs;
    int rc = planjson_member(plan, "resource_changes", true, &rcs, err, errlen);
    if (rc < 0)
        return -1;
    strbuf_puts(out, "{\"resource_changes\":[");
    const cJSON *item;
    cJSON_ArrayForEach(item, rcs) { /* rcs is NULL when absent: no iterations */
        const cJSON *change = NULL, *actions = planjson_actions(item, &change);
        if (!actions || planjson_is_noop(actions))
            continue;
        /* Keys in sorted order, as Go writes a map. */
        strbuf_puts(out, *count ? ",{\"action\":" : "{\"action\":");
        planjson_put_string(out, planjson_action_name(actions));
        strbuf_puts(out, ",\"changes_after\":");
        jsonw_write(out, cJSON_GetObjectItemCaseSensitive(change, "after"), PLANJSON_GO_COMPACT);
        strbuf_puts(out, ",\"changes_before\":");
        jsonw_write(out, cJSON_GetObjectItemCaseSensitive(change, "before"), PLANJSON_GO_COMPACT);
        strbuf_puts(out, ",\"module_address\":");
        planjson_put_string(out, planjson_string_or_empty(item, "module_address"));
        strbuf_puts(out, ",\"resource_address\":");
        planjson_put_string(out, planjson_string_or_empty(item, "address"));
        strbuf_puts(out, ",\"resource_name\":");
        planjson_put_string(out, planjson_string_or_empty(item, "name"));
        strbuf_puts(out, ",\"resource_type\":");
        planjson_put_string(out, planjson_string_or_empty(item, "type"));
        strbuf_putc(out, '}');
        (*count)++;
    }
    strbuf_puts(out, "]}");
    if (out->oom) {
        snprintf(err, errlen, "resource changes: out of memory");
        return -1;
    }
    return 0;
}

/* ---- output changes -------------------------------------------------------------------------------------------- */

/* Do a and b (either may be NULL: absent reads as null) encode to different JSON texts? -1 when out of memory. */
static int planjson_differ(const cJSON *a, const cJSON *b)
{
    strbuf ta = STRBUF_INIT, tb = STRBUF_INIT;
    jsonw_write(&ta, a, PLANJSON_GO_COMPACT);
    jsonw_write(&tb, b, PLANJSON_GO_COMPACT);
    int rc = (ta.oom || tb.oom) ? -1 : (ta.len != tb.len || memcmp(ta.data, tb.data, ta.len) != 0);
    strbuf_free(&ta);
    strbuf_free(&tb);
    return rc;
}

int planjson_output_changed(const cJSON *plan, bool *changed, char *err, size_t errlen)
{
    *changed = false;
    const cJSON *ocs;
    int rc = planjson_member(plan, "output_changes", false, &ocs, err, errlen);
    if (rc < 0)
        return -1;
    if (rc > 0)
        return 0;
    const cJSON *oc;
    cJSON_ArrayForEach(oc, ocs) {
        if (!cJSON_IsObject(oc))
            continue;
        const cJSON *actions = cJSON_GetObjectItemCaseSensitive(oc, "actions");
        if (cJSON_IsArray(actions) && planjson_is_noop(actions))
            continue;
        int d = planjson_differ(cJSON_GetObjectItemCaseSensitive(oc, "before"),
                                cJSON_GetObjectItemCaseSensitive(oc, "after"));
        if (d < 0) {
            snprintf(err, errlen, "output changes: out of memory");
            return -1;
        }
        if (d) {
            *changed = true;
            return 0;
        }
    }
    return 0;
}

/* ---- apply progress lines -------------------------------------------------------------------------------------- */

static const struct {
    const char *prefix;
    const char *apply_status;
    const char *action;
} planjson_progress_rules[] = {
    { "Creating...", "applying", "create" },
    { "Modifying...", "applying", "update" },
    { "Destroying...", "applying", "delete" },
    { "Creation complete after", "completed", "create" },
    { "Modifications complete after", "completed", "update" },
    { "Destruction complete after", "completed", "delete" },
};

static bool planjson_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static bool planjson_is_address_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.' || c == '[' || c == ']' || c == '"';
}

/* Narrows [*s, *s + *n) to its text without leading and trailing ASCII whitespace. */
static void planjson_trim(const char **s, size_t *n)
{
    while (*n && planjson_is_space(**s))
        (*s)++, (*n)--;
    while (*n && planjson_is_space((*s)[*n - 1]))
        (*n)--;
}

static bool planjson_has_prefix(const char *s, size_t n, const char *prefix)
{
    size_t p = strlen(prefix);
    return n >= p && memcmp(s, prefix, p) == 0;
}

bool planjson_parse_progress(const char *line, size_t len, planjson_progress *out)
{
    if (!line)
        return false;
    const char *s = line;
    size_t n = len;
    planjson_trim(&s, &n);
    /* The address class excludes ':' and whitespace, so the longest run is the only candidate. */
    size_t addr = 0;
    while (addr < n && planjson_is_address_char(s[addr]))
        addr++;
    if (addr == 0 || addr >= n || s[addr] != ':')
        return false;
    size_t i = addr + 1;
    if (i >= n || !planjson_is_space(s[i]))
        return false;
    while (i < n && planjson_is_space(s[i]))
        i++;
    for (size_t r = 0; r < sizeof planjson_progress_rules / sizeof planjson_progress_rules[0]; r++) {
        if (!planjson_has_prefix(s + i, n - i, planjson_progress_rules[r].prefix))
            continue;
        out->address = s;
        out->address_len = addr;
        out->apply_status = planjson_progress_rules[r].apply_status;
        out->action = planjson_progress_rules[r].action;
        return true;
    }
    return false;
}

void planjson_status_update_json(strbuf *out, uint64_t task_id, const planjson_progress *p)
{
    strbuf_printf(out, "{\"task_id\":%llu,\"resource_address\":\"", (unsigned long long)task_id);
    strbuf_json_escape(out, p->address, p->address_len);
    strbuf_printf(out, "\",\"apply_status\":\"%s\",\"action\":\"%s\"}", p->apply_status, p->action);
}

/* ---- error_message extraction ---------------------------------------------------------------------------------- */

#define PLANJSON_BOX "\xe2\x94\x82" /* "│", U+2502, the left edge of terraform's diagnostic box */
#define PLANJSON_TRUNCATED "\xe2\x80\xa6(truncated)"

void planjson_errors_init(planjson_errors *e, size_t cap)
{
    memset(e, 0, sizeof *e);
    e->cap = cap ? cap : PLANJSON_ERRORS_CAP;
}

/* Appends one collected line and its newline, or as much of it as the cap leaves, cut before a UTF-8
 * continuation byte so the message stays valid text. */
static void planjson_errors_collect(planjson_errors *e, const char *s, size_t n)
{
    size_t room = e->text.len < e->cap ? e->cap - e->text.len : 0;
    if (n + 1 <= room) {
        strbuf_append(&e->text, s, n);
        strbuf_putc(&e->text, '\n');
        return;
    }
    size_t cut = n < room ? n : room;
    while (cut > 0 && cut < n && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    strbuf_append(&e->text, s, cut);
    e->truncated = true;
}

void planjson_errors_feed(planjson_errors *e, const char *line, size_t len)
{
    if (e->truncated || !line)
        return;
    if (len && line[len - 1] == '\n')
        len--;
    if (len && line[len - 1] == '\r')
        len--;
    if (e->in_block && len && line[0] == '[') {
        e->in_block = false;
        return;
    }
    const char *s = line;
    size_t n = len;
    planjson_trim(&s, &n);
    if (planjson_has_prefix(s, n, "Error:") || planjson_has_prefix(s, n, PLANJSON_BOX " Error:")) {
        e->in_block = true;
    } else if (e->in_block) {
        s = line; /* keep the indentation of a continuation line ("  on main.tf line 3") */
        n = len;
        while (n && planjson_is_space(s[n - 1]))
            n--;
    } else {
        return;
    }
    size_t box = strlen(PLANJSON_BOX);
    if (n == box && memcmp(s, PLANJSON_BOX, box) == 0)
        n = 0;
    else if (planjson_has_prefix(s, n, PLANJSON_BOX " "))
        s += box + 1, n -= box + 1;
    planjson_errors_collect(e, s, n);
}

char *planjson_errors_finish(planjson_errors *e)
{
    while (e->text.len && e->text.data[e->text.len - 1] == '\n')
        e->text.len--;
    if (e->text.len == 0 || e->text.oom) {
        planjson_errors_free(e);
        return NULL;
    }
    e->text.data[e->text.len] = '\0';
    if (e->truncated)
        strbuf_puts(&e->text, PLANJSON_TRUNCATED);
    char *msg = e->text.oom ? NULL : strbuf_detach(&e->text, NULL);
    planjson_errors_free(e);
    return msg;
}

void planjson_errors_free(planjson_errors *e)
{
    size_t cap = e->cap;
    strbuf_free(&e->text);
    planjson_errors_init(e, cap);
}

char *planjson_errors_extract(const char *text, size_t len, size_t cap)
{
    planjson_errors e;
    planjson_errors_init(&e, cap);
    size_t start = 0;
    for (size_t i = 0; text && i <= len; i++) {
        if (i == len || text[i] == '\n') {
            planjson_errors_feed(&e, text + start, i - start);
            start = i + 1;
        }
    }
    return planjson_errors_finish(&e);
}
