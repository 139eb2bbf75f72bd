/* adminapi.h — the admin API of the task side: create workspaces from a JSON document, queue plan,
 * plan_and_apply and drift_check tasks, confirm their applies and cancel them (also through upstream's user routes
 * /api/v1/workspaces/{id}/tasks/{task_id}/confirm-apply and …/cancel), inspect everything the agent stored
 * (status, outputs, plan, resource changes, state versions, events, stage history), and the test knobs: damaged
 * snapshots and injected agent-API faults. No auth: a dev tool, like api.c's admin routes. See README.md. */
#ifndef DEVPLANE_ADMINAPI_H
#define DEVPLANE_ADMINAPI_H

#include <stdbool.h>

#include "dispatch.h"
#include "faults.h"
#include "iac/https.h"
#include "tasks.h"

typedef struct adminapi adminapi;

/* NULL on OOM. The store, dispatcher and fault rules are the caller's. */
adminapi *adminapi_new(tasks *store, dispatch *disp, faults *faults);
/* The api_more hook: answers a request whose path it knows (true), else false. */
bool adminapi_handle(void *arg, const https_request *req, https_response *res);
void adminapi_free(adminapi *a);

#endif
