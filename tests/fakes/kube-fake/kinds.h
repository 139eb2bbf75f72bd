/* kinds.h — what each kind of object must look like, and the defaults the API server fills in.
 *
 * A decoding problem (a member of the wrong JSON type) is a 400 BadRequest, as the API server's JSON decoder
 * makes it; a well-typed value that is not allowed (negative replicas, a selector that does not match the
 * template's labels, a bad name) is a 422 Invalid naming the field. Checked on create, update and on the result
 * of a patch. Pure: no I/O. */
#ifndef KUBEFAKE_KINDS_H
#define KUBEFAKE_KINDS_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "kstatus.h"
#include "resources.h"

typedef struct {
    kstatus_reason reason; /* KS_BAD_REQUEST or KS_INVALID */
    char           field[128];
    char           msg[512];
} kind_error;

/* Checks doc (a whole object of res) and fills defaults in place. 0, or -1 with e filled. */
int kinds_validate(res_id res, cJSON *doc, kind_error *e);

/* Update rules. status is a subresource (clients cannot write it through the main resource); the pod spec cannot
 * change once created; metadata.generation counts spec changes. */
bool kinds_status_is_subresource(res_id res);
bool kinds_spec_immutable(res_id res);
bool kinds_has_generation(res_id res);

/* A DNS-1123 subdomain (names) or label (namespaces, container names): lowercase letters, digits, '-' (and '.'
 * for subdomains), starting and ending alphanumeric, at most 253 (63) characters. */
bool kinds_dns_subdomain(const char *s);
bool kinds_dns_label(const char *s);

#endif
