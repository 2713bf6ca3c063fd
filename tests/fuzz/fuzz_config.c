/*
 * fuzz_config.c - libFuzzer target for the configuration parser: the
 * input is the text of a main file (migd.ini) or, when it starts with
 * '[policy]', of a policy file. Whatever parses is dumped again the way
 * `migd --check-config` prints it; errors are joined the way a reload
 * reports them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors errs = { 0 };
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (strncmp(text, "[policy]", 8) == 0) {
		struct policy p;

		if (policy_parse_string(text, "fuzz", "fuzz.ini", &p, &errs) == 0)
			policy_done(&p);
	} else {
		struct config *cfg = NULL;

		if (config_parse_string(text, "fuzz.ini", &cfg, &errs) == 0) {
			FILE *f = fopen("/dev/null", "we");

			if (f) {
				config_dump(cfg, f);
				fclose(f);
			}
			config_free(cfg);
		}
	}
	free(config_errors_join(&errs));
	config_errors_clear(&errs);
	free(text);
	return 0;
}
