/* SPDX-License-Identifier: MIT */
/*
 * dash_assets.h: the dashboard's files (controller/dash/), embedded at build
 * time by controller/dash/embed.cmake; the table ends with a NULL path.
 */
#ifndef DROVER_DASH_ASSETS_H
#define DROVER_DASH_ASSETS_H

#include <stddef.h>

struct dash_asset {
    const char *path; /* "/index.html" */
    const unsigned char *data;
    size_t len;
};

extern const struct dash_asset dash_assets[];

#endif
