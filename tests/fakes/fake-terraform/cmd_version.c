/* cmd_version.c — `terraform version [-json]`.
 *
 * The agent runs it to check an engine binary (ref §7.3); it must be fast and independent of the working
 * directory, so it takes no delay. Provider selections come from .terraform.lock.hcl when there is one, as
 * terraform reports them. */
#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"
#include "fail.h"
#include "iac/jsonw.h"
#include "iac/strbuf.h"

static const ft_flag_spec ft_version_flags[] = {
    { "json", true, FT_FLAG_USED },
    { NULL, false, FT_FLAG_USED },
};

int ft_cmd_version(const ft_ctx *c)
{
    ft_args a;
    if (ft_cmd_args(c, ft_version_flags, &a) < 0)
        return 1;
    bool json = ft_args_bool(&a, "json");
    ft_args_free(&a);
    if (ft_fail_wanted(c->k, "version")) {
        ft_fail_print(c->k, "version", c->boxed, NULL);
        return 1;
    }
    cJSON *sel = ft_lock_read(".terraform.lock.hcl");
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "terraform_version", c->k->version);
        cJSON_AddStringToObject(o, "platform", "linux_amd64");
        cJSON_AddItemToObject(o, "provider_selections", sel ? sel : cJSON_CreateObject());
        cJSON_AddFalseToObject(o, "terraform_outdated");
        strbuf b = STRBUF_INIT;
        jsonw_write(&b, o, JSONW_INDENT | JSONW_HTML_ESCAPE);
        printf("%s\n", b.data ? b.data : "{}");
        strbuf_free(&b);
        cJSON_Delete(o);
        return 0;
    }
    printf("Terraform v%s\non linux_amd64\n", c->k->version);
    for (const cJSON *p = sel ? sel->child : NULL; p; p = p->next)
        printf("+ provider %s v%s\n", p->string, p->valuestring);
    cJSON_Delete(sel);
    return 0;
}
