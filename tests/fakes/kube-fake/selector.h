/* selector.h — Kubernetes label and field selectors: parsing the query text and matching objects.
 *
 * Label selectors take the whole grammar of labels.Parse: "a=b", "a==b", "a!=b", "a", "!a", "a in (x,y)",
 * "a notin (x,y)", "a>1", "a<1", comma-separated (commas inside parentheses belong to the set). Field selectors take
 * "path=value", "path==value" and "path!=value", where path is any dotted path into the object
 * ("metadata.name", "status.phase", "involvedObject.name"); a missing field reads as "". Pure: no I/O.
 *
 * Ownership: a parsed selector owns its strings; free it with selector_free(). */
#ifndef KUBEFAKE_SELECTOR_H
#define KUBEFAKE_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "iac/strbuf.h"

#define SELECTOR_MAX_REQS   64
#define SELECTOR_MAX_VALUES 64

typedef enum { SEL_EQ, SEL_NE, SEL_IN, SEL_NOTIN, SEL_EXISTS, SEL_NOT_EXISTS, SEL_GT, SEL_LT } sel_op;

typedef struct {
    char   *key;
    sel_op  op;
    size_t  nvalues;
    char  **values;
} sel_req;

typedef struct {
    sel_req *reqs;
    size_t   n;
} selector;

/* Parses a label selector ("" selects everything). 0, or -1 with a message in err (the text of Kubernetes' own
 * messages is not copied; the meaning is). */
int selector_parse_labels(const char *text, selector *out, char *err, size_t errlen);
/* Parses a field selector ("" selects everything). 0, or -1 with a message in err. */
int selector_parse_fields(const char *text, selector *out, char *err, size_t errlen);
/* Whether labels (an object of string values, or NULL for none) satisfy every requirement. */
bool selector_match_labels(const selector *s, const cJSON *labels);
/* Whether the object's fields satisfy every requirement of a field selector. */
bool selector_match_fields(const selector *s, const cJSON *obj);
void selector_free(selector *s);

/* Appends "a=b,c=d" for a matchLabels object, keys sorted (labels.SelectorFromSet(...).String()). */
void selector_format_match_labels(const cJSON *match_labels, strbuf *out);

#endif
