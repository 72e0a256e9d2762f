/* SPDX-License-Identifier: MIT */
/*
 * fuzz_procfile: the Procfile parser, which reads text from a slug anyone
 * with the API token uploads. Whatever it accepts must satisfy the rules in
 * procfile.h: valid, unique type names, non-empty commands within bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "procfile.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct procfile pf = {0};
    char err[200];

    if (procfile_parse((const char *)data, size, &pf, err, sizeof(err)) == 0) {
        if (pf.n == 0 || pf.n > PROCFILE_MAX_TYPES)
            abort();
        for (size_t i = 0; i < pf.n; i++) {
            if (!name_type_valid(pf.entries[i].type) || pf.entries[i].command == NULL ||
                pf.entries[i].command[0] == '\0' ||
                strlen(pf.entries[i].command) > PROCFILE_MAX_COMMAND)
                abort();
            for (size_t j = 0; j < i; j++)
                if (strcmp(pf.entries[i].type, pf.entries[j].type) == 0)
                    abort();
            if (procfile_find(&pf, pf.entries[i].type) != &pf.entries[i])
                abort();
        }
    } else if (err[0] == '\0' || pf.n != 0) {
        abort();
    }
    procfile_fini(&pf);
    return 0;
}
