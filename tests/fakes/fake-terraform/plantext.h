/* plantext.h — the human-readable plan, as `terraform plan -no-color` prints it.
 *
 * Rendered from the plan document's "show" part, so `plan` and `show PLANFILE` print the same thing: refresh
 * lines, the legend of the symbols in use, one block per changed resource ("# null_resource.a will be created",
 * "+ resource …" with aligned attributes, "(known after apply)", "# (1 unchanged attribute hidden)"), the
 * "Plan: X to add, Y to change, Z to destroy." line and "Changes to Outputs:". Attribute blocks follow
 * terraform's layout (4 columns per level, the symbol right-aligned in 3 columns) closely enough for log
 * parsers, without claiming to match every corner of terraform's renderer. */
#ifndef FT_PLANTEXT_H
#define FT_PLANTEXT_H

#include <cjson/cJSON.h>

#include "iac/strbuf.h"

/* "ADDR: Refreshing state... [id=ID]" for every resource of the plan's prior state. */
void ft_plantext_refresh(strbuf *b, const cJSON *show);

/* From "No changes." or the legend down to "Changes to Outputs:"; mode is the plan's "normal", "refresh-only"
 * or "destroy". */
void ft_plantext_changes(strbuf *b, const cJSON *show, const char *mode);

/* A value in HCL-like form, no trailing newline: nested lines start at indent + step per level ("Outputs:" after
 * an apply uses steps of 2, `show` of a state steps of 4). */
void ft_plantext_value(strbuf *b, const cJSON *v, int indent, int step);

#endif
