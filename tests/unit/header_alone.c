/* header_alone.c - evf.h must compile on its own, pedantic C99, with no
 * other include before it (built by make check, never run). */
#include <evf.h>
#include <evf.h>

int main(void)
{
	evf_options o = EVF_OPTIONS_INIT;
	evf_filter f = EVF_FILTER_INIT;
	evf_worker_options w = EVF_WORKER_OPTIONS_INIT;
	evf_emit_options e = EVF_EMIT_OPTIONS_INIT;
	evf_handler_options h = EVF_HANDLER_OPTIONS_INIT;
	return (int)(o.version + f.version + w.version + e.version + h.version) - 5;
}
