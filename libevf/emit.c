/* emit.c - validating and inserting events. */
#include "evf_internal.h"

#include <stdio.h>
#include <string.h>

static int check_item(const evf_emit_item *it, size_t index, size_t n)
{
	char where[48] = "";
	if (n > 1)
		snprintf(where, sizeof where, "event %zu: ", index + 1);
	if (!it->type || !*it->type)
		return evfi_fail(EVF_EINVAL, "%sevent type is empty", where);
	if (strlen(it->type) > 255)
		return evfi_fail(EVF_EINVAL, "%sevent type is longer than 255 bytes", where);
	if (it->parameters && evfi_json_validate(it->parameters))
		return evfi_wrap(EVF_EINVAL, "%s%s", where, it->type);
	if (it->opts.version && it->opts.version != EVF_EMIT_OPTIONS_VERSION)
		return evfi_fail(EVF_EINVAL, "%semit options version %u is not supported",
		                 where, it->opts.version);
	if (it->opts.max_attempts < 0)
		return evfi_fail(EVF_EINVAL, "%smax attempts must be positive", where);
	if (it->opts.delay_ms < 0)
		return evfi_fail(EVF_EINVAL, "%sdelay must not be negative", where);
	if (it->opts.key && !*it->opts.key)
		return evfi_fail(EVF_EINVAL, "%sidempotency key is empty", where);
	return 0;
}

int evf_emit_batch(evf_db *db, const evf_emit_item *items, size_t n,
                   evf_emit_result *out)
{
	int rc;
	for (size_t i = 0; i < n; i++)
		if ((rc = check_item(&items[i], i, n)))
			return rc;
	if (n == 0)
		return 0;
	return db->store->ops->emit(db->store, items, n, out);
}

int evf_emit(evf_db *db, const char *type, const char *parameters,
             const evf_emit_options *opts, evf_emit_result *out)
{
	evf_emit_item it = { type, parameters, EVF_EMIT_OPTIONS_INIT };
	if (opts)
		it.opts = *opts;
	return evf_emit_batch(db, &it, 1, out);
}
