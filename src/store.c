/*
 * store.c - helpers shared by every store backend.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dmfs/store.h"

void dmfs_obj_info_clear(struct dmfs_obj_info *o)
{
	if (!o)
		return;
	free(o->key);
	memset(o, 0, sizeof(*o));
}

void dmfs_list_page_free(struct dmfs_list_page *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nobjs; i++)
		free(p->objs[i].key);
	free(p->objs);
	for (size_t i = 0; i < p->nprefixes; i++)
		free(p->prefixes[i]);
	free(p->prefixes);
	free(p->next_token);
	memset(p, 0, sizeof(*p));
}
