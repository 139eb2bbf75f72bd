/* fail.c — FAKE_TF_FAIL errors; see fail.h. "{addr}" and "{version}" in a detail are substituted. */
#include "fail.h"

#include <string.h>

#include "diag.h"
#include "iac/strbuf.h"

static const struct {
    const char *cmd;
    const char *summary;
    const char *detail;
} ft_fail_rules[] = {
    { "init", "Unsupported Terraform Core version",
      "  on main.tf.json line 3, in terraform:\n   3:     \"required_version\": \">= 99.0\"\n\n"
      "This configuration does not support Terraform version {version}. To proceed, either choose another supported "
      "Terraform version or update this version constraint. Version constraints are normally set for good reason, "
      "so updating the constraint may lead to other errors or unexpected behavior." },
    { "plan", "Reference to undeclared resource",
      "  on main.tf.json line 5, in resource.null_resource.a:\n   5:         \"x\": \"${null_resource.missing.id}\"\n\n"
      "A managed resource \"null_resource\" \"missing\" has not been declared in the root module." },
    { "apply", "Provider produced inconsistent result after apply",
      "When applying changes to {addr}, provider "
      "\"provider[\\\"registry.terraform.io/hashicorp/null\\\"]\" produced an unexpected new value: Root resource "
      "was present, but now absent.\n\nThis is a bug in the provider, which should be reported in the provider's "
      "own issue tracker." },
    { "show", "Failed to read the given file as a state or plan file",
      "State read error: Error loading statefile: unsupported state format\n\n"
      "Plan read error: zip: not a valid zip file" },
    { "output", "Failed to load state",
      "Error loading state file terraform.tfstate: unexpected end of JSON input" },
    { "version", "Failed to read CLI configuration",
      "The CLI configuration could not be read: permission denied." },
};

bool ft_fail_wanted(const ft_knobs *k, const char *cmd)
{
    return ft_list_has(k->fail, cmd, false);
}

static void ft_subst(strbuf *b, const char *tmpl, const char *addr, const char *version)
{
    static const struct { const char *token; size_t len; } tokens[] = { { "{addr}", 6 }, { "{version}", 9 } };
    for (const char *p = tmpl; *p;) {
        bool done = false;
        for (size_t i = 0; i < sizeof tokens / sizeof tokens[0] && !done; i++) {
            if (strncmp(p, tokens[i].token, tokens[i].len) == 0) {
                strbuf_puts(b, i == 0 ? addr : version);
                p += tokens[i].len;
                done = true;
            }
        }
        if (!done)
            strbuf_putc(b, *p++);
    }
}

void ft_fail_print(const ft_knobs *k, const char *cmd, bool boxed, const char *address)
{
    for (size_t i = 0; i < sizeof ft_fail_rules / sizeof ft_fail_rules[0]; i++) {
        if (strcmp(ft_fail_rules[i].cmd, cmd) != 0)
            continue;
        strbuf b = STRBUF_INIT;
        ft_subst(&b, ft_fail_rules[i].detail, address ? address : "null_resource.a", k->version);
        ft_err e;
        ft_err_set(&e, k->fail_message ? k->fail_message : ft_fail_rules[i].summary, "%s", b.data ? b.data : "");
        strbuf_free(&b);
        ft_diag_error(boxed, &e);
        return;
    }
}
