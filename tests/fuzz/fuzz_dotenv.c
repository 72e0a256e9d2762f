/* SPDX-License-Identifier: MIT */
/*
 * fuzz_dotenv: the .env parser (`drover config:set --env-file`), which reads
 * whatever file a user points it at. Whatever it accepts must hold: keys
 * non-empty and made of dotenv's key characters, unique, with lines inside
 * the file; whatever it refuses says why and returns nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dotenv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dotenv_var *v = NULL;
    size_t n = 0, lines = 1;
    char err[200];

    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n' || (data[i] == '\r' && (i + 1 == size || data[i + 1] != '\n'));
    if (dotenv_parse((const char *)data, size, &v, &n, err, sizeof(err)) == 0) {
        for (size_t i = 0; i < n; i++) {
            const char *k = v[i].key;

            if (k == NULL || k[0] == '\0' || v[i].value == NULL || v[i].line < 1 ||
                v[i].line > lines ||
                strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                          "0123456789_.-") != strlen(k))
                abort();
            for (size_t j = 0; j < i; j++)
                if (strcmp(v[i].key, v[j].key) == 0)
                    abort();
        }
        dotenv_free(v, n);
    } else if (err[0] == '\0' || v != NULL || n != 0) {
        abort();
    }
    return 0;
}
