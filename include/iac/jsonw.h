/* jsonw.h — writes a cJSON tree as text the way Go's encoding/json does.
 *
 * The upstream agent writes its files with json.MarshalIndent (ref §1.5 credentials file, §7.2 rendered .tf.json
 * files): object keys sorted, two-space indentation, "<", ">" and "&" escaped as \u003c \u003e \u0026, and
 * U+2028/U+2029 escaped. Matching it byte for byte means a file written by us is identical to one written by the
 * Go agent. Integral numbers are written without a fraction; others with the shortest round-trip form. */
#ifndef IAC_JSONW_H
#define IAC_JSONW_H

#include <cjson/cJSON.h>

#include "iac/strbuf.h"

enum {
    JSONW_INDENT = 1 << 0,      /* two-space indentation and newlines (MarshalIndent "", "  ") */
    JSONW_SORT_KEYS = 1 << 1,   /* Go sorts map keys */
    JSONW_HTML_ESCAPE = 1 << 2, /* Go's default escaping of < > & */
};

#define JSONW_GO (JSONW_INDENT | JSONW_SORT_KEYS | JSONW_HTML_ESCAPE)

/* Appends the text of v to b. Nesting deeper than 512 levels is written as null (cJSON's own parser limit is
 * lower, so this only guards hand-built trees). */
void jsonw_write(strbuf *b, const cJSON *v, int flags);

#endif
