/* adminapi.h — the admin API of the task side: create workspaces from a JSON document, queue plan,
 * plan_and_apply and drift_check tasks, cancel them, and inspect everything the agent stored (status, outputs,
 * plan, resource changes, events). No auth: a dev tool, like api.c's admin routes. See README.md for the routes. */
#ifndef DEVPLANE_ADMINAPI_H
#define DEVPLANE_ADMINAPI_H

#include <stdbool.h>

#include "dispatch.h"
#include "iac/https.h"
#include "tasks.h"

typedef struct adminapi adminapi;

/* NULL on OOM. The store and dispatcher are the caller's. */
adminapi *adminapi_new(tasks *store, dispatch *disp);
/* The api_more hook: answers a request whose path it knows (true), else false. */
bool adminapi_handle(void *arg, const https_request *req, https_response *res);
void adminapi_free(adminapi *a);

#endif
