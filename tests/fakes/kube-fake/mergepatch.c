/* mergepatch.c — RFC 7386 merge patch (see mergepatch.h).
 *
 * The RFC's pseudo-code, recursively on cJSON trees:
 *   MergePatch(T, P) = P is an object ? (T := T is an object ? T : {}; for (k, v) in P: v null ? del T[k]
 *                                         : T[k] := MergePatch(T[k], v)); T
 *                                     : P
 * Nesting is bounded by cJSON's parser (1000 levels), so the recursion is too. */
#include "mergepatch.h"

#include <string.h>

/* A copy of patch with null members removed at every object level: what MergePatch({}, patch) yields. */
static cJSON *strip_nulls(const cJSON *patch, bool strategic)
{
    if (!cJSON_IsObject(patch))
        return cJSON_Duplicate(patch, 1);
    cJSON *out = cJSON_CreateObject();
    const cJSON *it;
    cJSON_ArrayForEach(it, patch)
    {
        if (cJSON_IsNull(it) || (strategic && it->string[0] == '$'))
            continue;
        cJSON *v = strip_nulls(it, strategic);
        if (!v || !out || !cJSON_AddItemToObject(out, it->string, v)) {
            cJSON_Delete(v);
            cJSON_Delete(out);
            return NULL;
        }
    }
    return out;
}

static int apply(cJSON *target, const cJSON *patch, bool strategic)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, patch)
    {
        if (strategic && it->string[0] == '$')
            continue;
        if (cJSON_IsNull(it)) {
            cJSON_DeleteItemFromObjectCaseSensitive(target, it->string);
            continue;
        }
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(target, it->string);
        if (cJSON_IsObject(it) && cJSON_IsObject(cur)) {
            if (apply(cur, it, strategic) < 0)
                return -1;
            continue;
        }
        cJSON *v = strip_nulls(it, strategic);
        if (!v)
            return -1;
        bool ok = cur ? cJSON_ReplaceItemInObjectCaseSensitive(target, it->string, v)
                      : cJSON_AddItemToObject(target, it->string, v);
        if (!ok) {
            cJSON_Delete(v);
            return -1;
        }
    }
    return 0;
}

int mergepatch_apply(cJSON **target, const cJSON *patch, bool strategic)
{
    if (!cJSON_IsObject(patch)) {
        cJSON *v = cJSON_Duplicate(patch, 1);
        if (!v)
            return -1;
        cJSON_Delete(*target);
        *target = v;
        return 0;
    }
    if (!cJSON_IsObject(*target)) {
        cJSON *v = strip_nulls(patch, strategic);
        if (!v)
            return -1;
        cJSON_Delete(*target);
        *target = v;
        return 0;
    }
    return apply(*target, patch, strategic);
}
