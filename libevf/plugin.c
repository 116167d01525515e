/* plugin.c - handlers from shared objects (evfctl process --plugin). */
#include "evf_internal.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

typedef int (*plugin_init_fn)(evf_worker *w);

int evf_load_plugin(evf_worker *w, const char *path)
{
	if (!path || !*path)
		return evfi_fail(EVF_EINVAL, "empty plugin path");
	/* A bare name would be searched for in the library path; a plugin is
	 * a file the user names, so make it relative to the current directory. */
	evfi_buf p = { 0 };
	if (!strchr(path, '/'))
		evfi_buf_puts(&p, "./");
	evfi_buf_puts(&p, path);
	if (p.oom)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	void *h = dlopen(p.data, RTLD_NOW | RTLD_LOCAL);
	evfi_buf_free(&p);
	if (!h)
		return evfi_fail(EVF_ENOTFOUND, "cannot load plugin %s: %s", path, dlerror());
	void *sym = dlsym(h, "evf_plugin_init");
	if (!sym) {
		dlclose(h);
		return evfi_fail(EVF_EINVAL, "plugin %s has no evf_plugin_init function", path);
	}
	void **list = realloc(w->plugins, (w->nplugins + 1) * sizeof *list);
	if (!list) {
		dlclose(h);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	w->plugins = list;
	w->plugins[w->nplugins++] = h; /* kept open: its handlers live in it */
	plugin_init_fn init;
	memcpy(&init, &sym, sizeof init); /* object to function pointer, portably */
	evfi_error_clear();
	int rc = init(w);
	if (rc)
		return evfi_wrap(rc < 0 ? rc : EVF_ERROR, "plugin %s failed to initialise", path);
	return 0;
}

void evfi_plugins_close(evf_worker *w)
{
	for (size_t i = 0; i < w->nplugins; i++)
		dlclose(w->plugins[i]);
	free(w->plugins);
	w->plugins = NULL;
	w->nplugins = 0;
}
