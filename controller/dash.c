/* SPDX-License-Identifier: MIT */
/*
 * dash.c: the dashboard's pages (not built yet: every other path is 404).
 */
#include "ctl.h"
#include "http.h"

bool
ctl_dash_handle(struct ctl *ctl, struct httpd_req *r)
{
    return false;
}
