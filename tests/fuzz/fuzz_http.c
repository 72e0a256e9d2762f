/* SPDX-License-Identifier: MIT */
/*
 * fuzz_http: the HTTP API's JSON request decoding (controller/http_decode.c)
 * on arbitrary bodies, for every verb that takes one. The first byte picks
 * the verb, the rest is the body. No input may crash, leak or trip a
 * sanitizer; a decoded message must pack again (it is a valid Message) and
 * a refusal must say why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* main.c's part of the controller, which drover_ctl expects from its main. */
void
ctl_shutdown(struct ctl *c, int code)
{
}

void
ctl_maybe_close(struct ctl *c)
{
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum ctl_http_verb verbs[] = {HTTP_SCALE,    HTTP_CONFIG_SET, HTTP_CONFIG_UNSET,
                                               HTTP_ROLLBACK, HTTP_RESTART,    HTTP_CREATE};
    Drover__Message *m = NULL;
    char err[256] = "";
    int rc;

    if (size < 1)
        return 0;
    rc = ctl_http_decode(verbs[data[0] % 6], "shop", (const char *)data + 1, size - 1, &m, err,
                         sizeof(err));
    if (rc == 0 && m != NULL && drover__message__get_packed_size(m) == 0 &&
        m->body_case == DROVER__MESSAGE__BODY__NOT_SET)
        abort();
    if (rc == -EINVAL && err[0] == '\0')
        abort(); /* a refusal always says what was wrong */
    wire_msg_free(m);
    return 0;
}
