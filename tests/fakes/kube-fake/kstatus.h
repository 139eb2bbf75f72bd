/* kstatus.h — Kubernetes Status objects: how kube-fake answers errors (and successful deletes).
 *
 * Every failure is a metav1.Status with the code and reason a real API server gives for it, so clients that
 * branch on reason (client-go's IsNotFound, IsConflict, …) behave as they would against a cluster:
 *
 *   {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
 *    "message":"deployments.apps \"x\" not found","reason":"NotFound","code":404,
 *    "details":{"name":"x","group":"apps","kind":"deployments"}}
 *
 * Also the reply helper for plain objects, so handlers never format JSON by hand. */
#ifndef KUBEFAKE_KSTATUS_H
#define KUBEFAKE_KSTATUS_H

#include <cjson/cJSON.h>

#include "iac/https.h"

typedef enum {
    KS_BAD_REQUEST = 0,
    KS_UNAUTHORIZED,
    KS_FORBIDDEN,
    KS_NOT_FOUND,
    KS_METHOD_NOT_ALLOWED,
    KS_ALREADY_EXISTS,
    KS_CONFLICT,
    KS_INVALID,
    KS_UNSUPPORTED_MEDIA_TYPE,
    KS_INTERNAL,
    KS_EXPIRED, /* 410: a continued list whose resourceVersion was compacted away */
    KS_COUNT
} kstatus_reason;

/* What the Status's "details" carries; every field optional (NULL). */
typedef struct {
    const char *name;
    const char *group;
    const char *kind;          /* the resource ("deployments"), or the Kind for Invalid ("Deployment") */
    const char *cause_field;   /* Invalid: "spec.replicas" */
    const char *cause_reason;  /* Invalid: "FieldValueInvalid" */
} kstatus_details;

/* The HTTP code of a reason (404 for KS_NOT_FOUND, …). */
int kstatus_code(kstatus_reason r);
/* Answers a Failure Status with reason r and the printf message. */
void kstatus_reply(https_response *res, kstatus_reason r, const kstatus_details *d, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Answers 410 Expired: a list continued from a token the store has compacted past. cont, when not NULL, is a
 * token that goes on from the same key at the current version (an inconsistent list), which the API server gives
 * in the Status's metadata.continue. */
void kstatus_reply_expired(https_response *res, const char *cont, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Answers 200 with a Success Status (what DELETE returns for most resources). */
void kstatus_success(https_response *res, const kstatus_details *d);
/* Answers code with obj as compact JSON (obj is not consumed). NULL obj → 500. */
void kstatus_reply_obj(https_response *res, int code, const cJSON *obj);

#endif
