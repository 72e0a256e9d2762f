/* SPDX-License-Identifier: MIT */
/*
 * shutdown.c: the controller's graceful stop, in the library rather than in
 * main.c so that whatever runs a controller (main.c, the API fuzzer) stops
 * it the same way: stop taking requests, answer the held ones, let work in
 * the thread pool finish and answer (it counts itself out with
 * ctl_work_done), then close every handle so that uv_run returns.
 */
#include "ctl.h"
#include "http.h"
#include "log.h"
#include "notify.h"

static void
close_check(uv_check_t *c)
{
    ctl_maybe_close(c->data);
}

void
ctl_shutdown(struct ctl *ctl, int code)
{
    if (ctl->stopping)
        return;
    ctl->stopping = true;
    ctl->exit_code = code;
    log_info("shutting_down", "inflight=%u", ctl->inflight);
    if (ctl->api != NULL) /* the front ends take no more requests */
        nnuv_stop(ctl->api);
    if (ctl->agents != NULL)
        nnuv_stop(ctl->agents);
    ctl_http_stop(ctl);
    ctl_agents_stop(ctl);
    ctl_logs_stop(ctl->logs);
    ctl_runs_stop(ctl->runs);
    ctl_endpoints_wake(ctl->endpoints, true);
    ctl_store_stop(ctl->store);
    if (!ctl->running)
        return; /* no loop handles (the API fuzzer) */
    /* Work in the thread pool (ctl->inflight) ends on its own; the check
     * closes everything once it has, so nothing else calls back here. */
    uv_check_start(&ctl->close_check, close_check);
    ctl_maybe_close(ctl);
}

/* Once stopping and no work is in flight, close every handle. */
void
ctl_maybe_close(struct ctl *ctl)
{
    if (!ctl->stopping || ctl->inflight > 0 || ctl->closed || !ctl->running)
        return;
    ctl->closed = true;
    notify_watchdog_stop();
    ctl_commits_turn(ctl);
    ctl_notify_flush(ctl);
    ctl_commits_close(ctl);       /* what the notifications answered */
    ctl_leader_stop(ctl->leader); /* ends its session: the lock is free */
    if (ctl->api != NULL)
        nnuv_close(ctl->api);
    if (ctl->agents != NULL)
        nnuv_close(ctl->agents);
    if (ctl->pub != NULL)
        nnuv_close(ctl->pub);
    ctl->api = ctl->agents = ctl->pub = NULL;
    ctl_beats_close(ctl);
    ctl_watches_close(ctl->watches);
    ctl->watches = NULL;
    ctl_logs_close(ctl->logs);
    ctl_runs_close(ctl->runs);
    uv_close((uv_handle_t *)&ctl->node_timer, NULL);
    uv_close((uv_handle_t *)&ctl->notify_check, NULL);
    uv_close((uv_handle_t *)&ctl->close_check, NULL);
    uv_close((uv_handle_t *)&ctl->sigterm, NULL);
    uv_close((uv_handle_t *)&ctl->sigint, NULL);
}
